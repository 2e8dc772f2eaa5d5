//! The web UI: server-rendered pages (maud), our own CSS and a little of our own JavaScript
//! (the SVG map and its time slider), embedded in the binary; nothing is fetched from
//! elsewhere. Login stores the token in an HttpOnly, SameSite=Strict cookie; forms post back
//! to the same origin, and writes that carry only the cookie must come from it.

// Page helpers return the finished error page as their `Err`: one per request, never hot.
#![allow(clippy::result_large_err)]

use crate::App;
use crate::access::{Analyst, Viewer};
pub use crate::access::{cookie_token, same_origin};
use crate::auth::Principal;
use crate::http::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use islet_store::{
    AlertQuery, AlertRow, CaseChange, CaseQuery, FlowQuery, PageReq, Role, Status, StoreError,
};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;
use std::sync::Arc;

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/cases") }))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route(
            "/assets/app.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], CSS) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], JS) }),
        )
        .route("/ui/cases", get(cases))
        .route("/ui/cases/{id}", get(case))
        .route("/ui/cases/{id}/status", post(set_status))
        .route("/ui/cases/{id}/note", post(add_note))
        .route("/ui/cases/{id}/export", post(export))
        .route("/ui/cases/{id}/merge", post(merge))
        .route("/ui/alerts/{id}/detach", post(detach))
        .route("/ui/alerts", get(alerts))
        .route("/ui/intel", get(intel))
        .route("/ui/map", get(map))
        .route("/ui/flows", get(flows))
        .route("/ui/sensors", get(sensors))
}

pub fn fmt_ts(ms: i64) -> String {
    if ms <= 0 {
        return "-".into();
    }
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) / 1000;
    let (y, m, d) = islet_event::time::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn layout(title: &str, who: Option<&Principal>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · islet" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui/cases" { "islet" }
                    @if let Some(p) = who {
                        nav {
                            a href="/ui/cases" { "Cases" }
                            a href="/ui/alerts" { "Alerts" }
                            a href="/ui/map" { "Map" }
                            a href="/ui/flows" { "Flows" }
                            a href="/ui/intel" { "Intel hits" }
                            a href="/ui/sensors" { "Sensors" }
                        }
                        form.logout method="post" action="/logout" {
                            span.who { (p.name) " (" (p.role.name()) ")" }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

fn sev_class(s: u8) -> &'static str {
    match s {
        4 => "sev sev4",
        3 => "sev sev3",
        2 => "sev sev2",
        _ => "sev sev1",
    }
}

fn sev_name(s: u8) -> &'static str {
    match s {
        4 => "critical",
        3 => "high",
        2 => "medium",
        _ => "low",
    }
}

/// A page's role check: the API's role extractor `E`, but a missing or unknown token
/// redirects to the login page and a refusal is an HTML page.
#[derive(Debug)]
pub struct Signed<E>(pub E);

impl<E> FromRequestParts<Arc<App>> for Signed<E>
where
    E: FromRequestParts<Arc<App>, Rejection = ApiError>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, Response> {
        E::from_request_parts(parts, app)
            .await
            .map(Signed)
            .map_err(|e| {
                if e.status == 401 {
                    Redirect::to("/login").into_response()
                } else {
                    (
                        StatusCode::from_u16(e.status).unwrap_or(StatusCode::FORBIDDEN),
                        page_error(&e.error),
                    )
                        .into_response()
                }
            })
    }
}

fn page_error(msg: &str) -> Markup {
    layout(
        "Error",
        None,
        html! { p.error { (msg) } p { a href="/ui/cases" { "Back" } } },
    )
}

async fn run<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(StoreError::NotFound(m))) => {
            Err((StatusCode::NOT_FOUND, page_error(&m)).into_response())
        }
        Ok(Err(e)) => {
            Err((StatusCode::SERVICE_UNAVAILABLE, page_error(&e.to_string())).into_response())
        }
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            page_error("request failed"),
        )
            .into_response()),
    }
}

async fn login_page() -> Markup {
    login_form(None)
}

fn login_form(err: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            section.login {
                h1 { "Sign in" }
                p { "Paste an API token (" code { "islet serve token create --role analyst" } ")." }
                @if let Some(e) = err { p.error { (e) } }
                form method="post" action="/login" {
                    input #token type="password" name="token" autocomplete="off" placeholder="islet_…" required;
                    button #signin type="submit" { "Sign in" }
                }
            }
        },
    )
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(app): State<Arc<App>>, h: HeaderMap, b: Bytes) -> Response {
    // A cross-site form could sign the browser in under the attacker's token (login CSRF):
    // the sign-in form is a write like any other and must come from our own page.
    if !same_origin(&h) {
        return (
            StatusCode::FORBIDDEN,
            login_form(Some("cross-site sign-in refused")),
        )
            .into_response();
    }
    let Ok(f) = serde_urlencoded::from_bytes::<LoginForm>(&b) else {
        return (
            StatusCode::BAD_REQUEST,
            login_form(Some("the form needs a token")),
        )
            .into_response();
    };
    let token = f.token.trim().to_string();
    if token.bytes().any(|c| !c.is_ascii_graphic()) {
        return (
            StatusCode::UNAUTHORIZED,
            login_form(Some("unknown or revoked token")),
        )
            .into_response();
    }
    let a2 = app.clone();
    let t2 = token.clone();
    let checked = tokio::task::spawn_blocking(move || crate::access::verify(&a2, &t2, &h)).await;
    match checked {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            let mut r = (
                StatusCode::from_u16(e.status).unwrap_or(StatusCode::UNAUTHORIZED),
                login_form(Some(&e.error)),
            )
                .into_response();
            if let Some(s) = e.retry_after
                && let Ok(v) = axum::http::HeaderValue::from_str(&s.to_string())
            {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                login_form(Some("sign-in could not be checked")),
            )
                .into_response();
        }
    }
    let secure = if app.tls { "; Secure" } else { "" };
    (
        [(
            header::SET_COOKIE,
            format!("islet_token={token}; HttpOnly; SameSite=Strict; Path=/{secure}"),
        )],
        Redirect::to("/ui/cases"),
    )
        .into_response()
}

async fn logout() -> Response {
    (
        [(
            header::SET_COOKIE,
            "islet_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0".to_string(),
        )],
        Redirect::to("/login"),
    )
        .into_response()
}

#[derive(Deserialize, Default)]
struct CasesF {
    status: Option<String>,
    offset: Option<u32>,
}

async fn cases(
    State(app): State<Arc<App>>,
    Signed(Viewer(p)): Signed<Viewer>,
    uri: Uri,
) -> Response {
    let f: CasesF = crate::http::query(&uri).unwrap_or_default();
    let status = f.status.as_deref().and_then(Status::parse);
    let q = CaseQuery {
        status,
        min_severity: None,
        page: PageReq {
            offset: f.offset.unwrap_or(0),
            limit: 100,
        },
    };
    let a2 = app.clone();
    let page = match run(move || a2.with_reader(|s| s.cases(&q))).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    layout(
        "Cases",
        Some(&p),
        html! {
            h1 { "Cases" span.count { (page.total) } }
            form.filters method="get" {
                select name="status" {
                    option value="" { "any status" }
                    @for s in Status::ALL { option value=(s.name()) selected[status == Some(s)] { (s.name()) } }
                }
                button type="submit" { "Filter" }
            }
            table.cases {
                thead { tr { th { "#" } th { "Severity" } th { "Title" } th { "Status" } th { "Alerts" } th { "Observables" } th { "ATT&CK" } th { "Last seen" } } }
                tbody {
                    @for c in &page.items {
                        tr {
                            td { (c.id) }
                            td { span class=(sev_class(c.severity)) { (sev_name(c.severity)) } }
                            td { a.case-link href={ "/ui/cases/" (c.id) } { (c.title) } }
                            td { span.status { (c.status.name()) } }
                            td { (c.alerts) }
                            td { (c.observables) }
                            td { (c.techniques.join(" ")) }
                            td { (fmt_ts(c.last_seen)) }
                        }
                    }
                }
            }
            (pager(&uri, page.offset, page.limit, page.total))
        },
    )
    .into_response()
}

fn pager(uri: &Uri, offset: u32, limit: u32, total: u64) -> Markup {
    let path = uri.path();
    html! {
        p.pager {
            @if offset > 0 { a href={ (path) "?offset=" (offset.saturating_sub(limit)) } { "← newer" } " " }
            "rows " (offset + 1) "–" ((u64::from(offset) + u64::from(limit)).min(total)) " of " (total)
            @if u64::from(offset) + u64::from(limit) < total { " " a href={ (path) "?offset=" (offset + limit) } { "older →" } }
        }
    }
}

async fn case(
    State(app): State<Arc<App>>,
    Signed(Viewer(who)): Signed<Viewer>,
    p: Path<String>,
) -> Response {
    let Ok(id) = p.0.parse::<i64>() else {
        return (StatusCode::NOT_FOUND, page_error("no such case")).into_response();
    };
    let a2 = app.clone();
    let c = match run(move || a2.with_reader(|s| s.case(id))).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let s = &c.summary;
    let can = who.role >= Role::Analyst;
    layout(
        &format!("Case {}", s.id),
        Some(&who),
        html! {
            h1 { "Case " (s.id) ": " (s.title) }
            div.meta {
                span class=(sev_class(s.severity)) { (sev_name(s.severity)) }
                span #case-status .status { (s.status.name()) }
                span { "TLP " (s.tlp) " · PAP " (s.pap) }
                span { "assignee: " (s.assignee.as_deref().unwrap_or("—")) }
                span { "first " (fmt_ts(s.first_seen)) " · last " (fmt_ts(s.last_seen)) }
                @if let Some(into) = c.merged_into { span { "merged into " a href={ "/ui/cases/" (into) } { "case " (into) } } }
            }
            @if can {
                form.inline #status-form method="post" action={ "/ui/cases/" (s.id) "/status" } {
                    label for="status" { "Status " }
                    select #status name="status" {
                        @for st in Status::ALL { option value=(st.name()) selected[st == s.status] { (st.name()) } }
                    }
                    input name="assignee" placeholder="assignee" value=(s.assignee.as_deref().unwrap_or(""));
                    button #set-status type="submit" { "Update" }
                }
                form.inline method="post" action={ "/ui/cases/" (s.id) "/export" } {
                    button name="target" value="thehive" type="submit" { "Export to TheHive" }
                    button name="target" value="misp" type="submit" { "Export to MISP" }
                }
            }
            section {
                h2 { "Why these alerts are one case" }
                ul.reasons { @for r in &c.reasons { li { (r) } } }
                @if !s.techniques.is_empty() { p { "ATT&CK: " @for t in &s.techniques { span.tag { (t) } " " } } }
            }
            @if !c.misp.is_empty() {
                section #misp {
                    h2 { "MISP context" }
                    table { thead { tr { th { "Event" } th { "Info" } th { "Indicator" } th { "Threat level" } th { "Tags" } } }
                        tbody { @for x in &c.misp { tr {
                            td { code { (x.event_uuid) } } td { (x.event_info) } td { (x.kind) " " code { (x.value) } }
                            td { (x.threat_level) } td { (x.tags.join(", ")) } } } } }
                }
            }
            section #observables {
                h2 { "Observables" }
                table { thead { tr { th { "Type" } th { "Data" } th { "IoC" } th { "Seen" } th { "Flows and events" } } }
                    tbody { @for o in &c.observables { tr {
                        td { (o.data_type) " (" (o.kind) ")" }
                        td.data { code { (o.data) } }
                        td { @if o.ioc { span.ioc { "IoC" } } }
                        td { (o.count) "× · " (fmt_ts(o.last_seen)) }
                        td { @if o.data_type == "ip" { a href={ "/ui/flows?ip=" (o.data) } { "flows" } }
                             @else if o.data_type == "other" { a href={ "/ui/flows?identity=" (o.data) } { "flows" } }
                             @else { a href={ "/api/observables?data_type=" (o.data_type) "&data=" (o.data) } { "links (JSON)" } } }
                    } } } }
            }
            section #alerts {
                h2 { "Alerts" }
                table { thead { tr { th { "#" } th { "Signature" } th { "Sev" } th { "Src → Dest" } th { "Count" } th { "Last" } @if can { th {} } } }
                    tbody { @for a in &c.alerts { tr {
                        td { (a.id) } td { (a.signature) } td { (a.severity) }
                        td { (a.src_ip.as_deref().unwrap_or("-")) " → " (a.dest_ip.as_deref().unwrap_or("-")) }
                        td { (a.count) } td { (fmt_ts(a.last_seen)) }
                        @if can && c.alerts.len() > 1 { td { form method="post" action={ "/ui/alerts/" (a.id) "/detach" } {
                            button.small type="submit" { "Detach into a new case" } } } }
                    } } } }
                @if can {
                    form.inline #merge-form method="post" action={ "/ui/cases/" (s.id) "/merge" } {
                        label for="merge-from" { "Merge case " }
                        input #merge-from name="from" type="number" min="1" required placeholder="id";
                        button type="submit" { "into this one" }
                    }
                }
            }
            section #timeline {
                h2 { "Timeline" }
                ol.timeline { @for e in &c.timeline { li { span.ts { (fmt_ts(e.ts)) } " " span.kind { (e.kind) } " " (e.text)
                    @if let Some(a) = &e.actor { " — " span.actor { (a) } } } } }
            }
            section #notes {
                h2 { "Notes" }
                @for n in &c.notes { div.note { p.by { (n.author) " · " (fmt_ts(n.ts)) } p { (n.text) } } }
                @if can {
                    form #note-form method="post" action={ "/ui/cases/" (s.id) "/note" } {
                        textarea #note name="text" rows="3" required placeholder="Add a note" {}
                        button #add-note type="submit" { "Add note" }
                    }
                }
            }
        },
    )
    .into_response()
}

#[derive(Deserialize)]
struct StatusF {
    status: String,
    #[serde(default)]
    assignee: Option<String>,
}

async fn set_status(
    State(app): State<Arc<App>>,
    Signed(Analyst(who)): Signed<Analyst>,
    p: Path<String>,
    b: Bytes,
) -> Response {
    let (Ok(id), Ok(f)) = (
        p.0.parse::<i64>(),
        serde_urlencoded::from_bytes::<StatusF>(&b),
    ) else {
        return (StatusCode::BAD_REQUEST, page_error("bad form")).into_response();
    };
    let Some(status) = Status::parse(&f.status) else {
        return (StatusCode::BAD_REQUEST, page_error("unknown status")).into_response();
    };
    let change = CaseChange {
        status: Some(status),
        assignee: f.assignee.filter(|a| a.len() <= 128),
        ..CaseChange::default()
    };
    let clock = app.clock;
    let a2 = app.clone();
    match run(move || a2.with_writer(|s| s.update_case(id, &change, &who.name, clock()))).await {
        Ok(_) => Redirect::to(&format!("/ui/cases/{id}")).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct NoteF {
    text: String,
}

async fn add_note(
    State(app): State<Arc<App>>,
    Signed(Analyst(who)): Signed<Analyst>,
    p: Path<String>,
    b: Bytes,
) -> Response {
    let (Ok(id), Ok(f)) = (
        p.0.parse::<i64>(),
        serde_urlencoded::from_bytes::<NoteF>(&b),
    ) else {
        return (StatusCode::BAD_REQUEST, page_error("bad form")).into_response();
    };
    if f.text.trim().is_empty() || f.text.len() > crate::api::MAX_NOTE {
        return (
            StatusCode::BAD_REQUEST,
            page_error("a note is 1 to 16384 bytes"),
        )
            .into_response();
    }
    let clock = app.clock;
    let a2 = app.clone();
    match run(move || a2.with_writer(|s| s.add_note(id, &f.text, &who.name, clock()))).await {
        Ok(_) => Redirect::to(&format!("/ui/cases/{id}#notes")).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct MergeF {
    from: i64,
}

async fn merge(
    State(app): State<Arc<App>>,
    Signed(Analyst(who)): Signed<Analyst>,
    p: Path<String>,
    b: Bytes,
) -> Response {
    let (Ok(id), Ok(f)) = (
        p.0.parse::<i64>(),
        serde_urlencoded::from_bytes::<MergeF>(&b),
    ) else {
        return (StatusCode::BAD_REQUEST, page_error("bad form")).into_response();
    };
    let clock = app.clock;
    let a2 = app.clone();
    match run(move || a2.with_writer(|s| s.merge_cases(id, f.from, &who.name, clock()))).await {
        Ok(_) => Redirect::to(&format!("/ui/cases/{id}")).into_response(),
        Err(r) => r,
    }
}

async fn detach(
    State(app): State<Arc<App>>,
    Signed(Analyst(who)): Signed<Analyst>,
    p: Path<String>,
) -> Response {
    let Ok(id) = p.0.parse::<i64>() else {
        return (StatusCode::BAD_REQUEST, page_error("bad alert id")).into_response();
    };
    let clock = app.clock;
    let a2 = app.clone();
    match run(move || a2.with_writer(|s| s.detach_alert(id, &who.name, clock()))).await {
        Ok(c) => Redirect::to(&format!("/ui/cases/{}", c.summary.id)).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
struct ExportF {
    target: String,
}

async fn export(
    State(app): State<Arc<App>>,
    Signed(Analyst(who)): Signed<Analyst>,
    p: Path<String>,
    b: Bytes,
) -> Response {
    let (Ok(id), Ok(f)) = (
        p.0.parse::<i64>(),
        serde_urlencoded::from_bytes::<ExportF>(&b),
    ) else {
        return (StatusCode::BAD_REQUEST, page_error("bad form")).into_response();
    };
    let a2 = app.clone();
    let r = tokio::task::spawn_blocking(move || -> Result<Vec<i64>, String> {
        let c = a2.with_reader(|s| s.case(id)).map_err(|e| e.to_string())?;
        let now = (a2.clock)();
        a2.with_writer(|s| -> Result<Vec<i64>, crate::http::ApiError> {
            let ids = crate::export::enqueue_case(s, &a2.export_cfg, &c, &f.target, now)
                .map_err(|e| crate::http::ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
            s.record_audit(
                &who.name,
                "export",
                Some(id),
                &format!("export to {} queued", f.target),
                now,
            )?;
            Ok(ids)
        })
        .map_err(|e| e.error)
    })
    .await;
    app.wake_exporter();
    match r {
        Ok(Ok(_)) => Redirect::to(&format!("/ui/cases/{id}")).into_response(),
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, page_error(&e)).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            page_error("request failed"),
        )
            .into_response(),
    }
}

#[derive(Deserialize, Default)]
struct AlertsF {
    detection: Option<String>,
    ip: Option<String>,
    sensor: Option<String>,
    offset: Option<u32>,
}

fn alert_table(items: &[AlertRow], intel: bool) -> Markup {
    html! {
        table.alerts {
            thead { tr { th { "#" } th { "Last seen" } th { "Signature" } th { "Detection" } th { "Sev" } th { "Src → Dest" } th { "×" } th { "Case" }
                @if intel { th { "MISP event" } th { "Indicator" } } } }
            tbody { @for a in items { tr {
                td { (a.id) } td { (fmt_ts(a.last_seen)) } td { (a.signature) } td { (a.detection) } td { (a.severity) }
                td { (a.src_ip.as_deref().unwrap_or("-")) " → " (a.dest_ip.as_deref().unwrap_or("-")) }
                td { (a.count) }
                td { @if let Some(c) = a.case_id { a href={ "/ui/cases/" (c) } { (c) } } }
                @if intel { @if let Some(m) = &a.misp { td { (m.event_info) br; code { (m.event_uuid) } } td { (m.kind) " " code { (m.value) } } } @else { td {} td {} } }
            } } }
        }
    }
}

async fn alerts(
    State(app): State<Arc<App>>,
    Signed(Viewer(p)): Signed<Viewer>,
    uri: Uri,
) -> Response {
    let f: AlertsF = crate::http::query(&uri).unwrap_or_default();
    let nz = |s: &Option<String>| s.clone().filter(|x| !x.is_empty());
    let q = AlertQuery {
        detection: nz(&f.detection),
        ip: nz(&f.ip),
        sensor: nz(&f.sensor),
        page: PageReq {
            offset: f.offset.unwrap_or(0),
            limit: 100,
        },
        ..AlertQuery::default()
    };
    let a2 = app.clone();
    let page = match run(move || a2.with_reader(|s| s.alerts(&q))).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    layout(
        "Alerts",
        Some(&p),
        html! {
            h1 { "Alerts" span.count { (page.total) } }
            form.filters method="get" {
                input name="detection" placeholder="detection" value=(f.detection.as_deref().unwrap_or(""));
                input name="ip" placeholder="IP" value=(f.ip.as_deref().unwrap_or(""));
                input name="sensor" placeholder="sensor" value=(f.sensor.as_deref().unwrap_or(""));
                button type="submit" { "Filter" }
            }
            (alert_table(&page.items, false))
            (pager(&uri, page.offset, page.limit, page.total))
        },
    )
    .into_response()
}

async fn intel(
    State(app): State<Arc<App>>,
    Signed(Viewer(p)): Signed<Viewer>,
    uri: Uri,
) -> Response {
    let q = AlertQuery {
        intel: Some(true),
        page: PageReq {
            offset: 0,
            limit: 500,
        },
        ..AlertQuery::default()
    };
    let a2 = app.clone();
    let page = match run(move || a2.with_reader(|s| s.alerts(&q))).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let _ = uri;
    layout(
        "Intel hits",
        Some(&p),
        html! { h1 { "Intel hits" span.count { (page.total) } } (alert_table(&page.items, true)) },
    )
    .into_response()
}

async fn map(State(app): State<Arc<App>>, Signed(Viewer(p)): Signed<Viewer>) -> Response {
    let a2 = app.clone();
    let sensors = match run(move || a2.with_reader(|s| s.sensors())).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let first = sensors.iter().map(|s| s.first_seen).min().unwrap_or(0);
    let last = sensors.iter().map(|s| s.last_seen).max().unwrap_or(0);
    layout(
        "Map",
        Some(&p),
        html! {
            h1 { "Workloads and their edges" }
            div #map-controls data-first=(first) data-last=(last) {
                label for="slider" { "Time " }
                input #slider type="range" min=(first.div_euclid(60_000)) max=(last.div_euclid(60_000)) step="1" value=(last.div_euclid(60_000));
                select #window { option value="60000" { "1 minute" } option value="600000" { "10 minutes" } option value="3600000" selected { "1 hour" } option value="86400000" { "1 day" } }
                span #map-time {}
                span.legend { span.l-alert { "alerted" } span.l-deny { "denied" } span.l-allow { "allowed" } span.l-none { "no policy" } }
            }
            svg #map viewBox="0 0 1000 640" role="img" aria-label="workload map" {}
            p #map-summary {}
            section #map-flows { h2 { "Flows" } p.hint { "Click a workload or an edge." } div #flow-list {} }
        },
    )
    .into_response()
}

#[derive(Deserialize, Default)]
struct FlowsF {
    ip: Option<String>,
    identity: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    offset: Option<u32>,
}

async fn flows(
    State(app): State<Arc<App>>,
    Signed(Viewer(p)): Signed<Viewer>,
    uri: Uri,
) -> Response {
    let f: FlowsF = crate::http::query(&uri).unwrap_or_default();
    let nz = |s: &Option<String>| s.clone().filter(|x| !x.is_empty());
    let q = FlowQuery {
        ip: nz(&f.ip).filter(|x| x.parse::<std::net::IpAddr>().is_ok()),
        identity: nz(&f.identity),
        from: f.from,
        to: f.to,
        page: PageReq {
            offset: f.offset.unwrap_or(0),
            limit: 200,
        },
        ..FlowQuery::default()
    };
    let a2 = app.clone();
    let page = match run(move || a2.with_reader(|s| s.flows(&q))).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    layout(
        "Flows",
        Some(&p),
        html! {
            h1 { "Flow search" span.count { (page.total) } }
            form.filters method="get" {
                input name="ip" placeholder="IP (either end)" value=(f.ip.as_deref().unwrap_or(""));
                input name="identity" placeholder="identity (ns/name or IP)" value=(f.identity.as_deref().unwrap_or(""));
                button type="submit" { "Search" }
            }
            table.flows {
                thead { tr { th { "Start" } th { "Source" } th { "Destination" } th { "Proto" } th { "App" } th { "Pkts" } th { "Bytes" } th { "Verdict" } th { "Alerted" } } }
                tbody { @for x in &page.items { tr {
                    td { (fmt_ts(x.start)) }
                    td { (x.src_ip) ":" (x.src_port) @if x.src.kind != "ip" { br; small { (x.src.key) } } }
                    td { (x.dest_ip) ":" (x.dest_port) @if x.dest.kind != "ip" { br; small { (x.dest.key) } } }
                    td { (x.proto) } td { (x.app_proto.as_deref().unwrap_or("")) } td { (x.pkts) } td { (x.bytes) }
                    td { (x.verdict.as_deref().unwrap_or("")) } td { @if x.alerted { "yes" } }
                } } }
            }
        },
    )
    .into_response()
}

async fn sensors(State(app): State<Arc<App>>, Signed(Viewer(p)): Signed<Viewer>) -> Response {
    let a2 = app.clone();
    let rows = match run(move || a2.with_reader(|s| s.sensors())).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    layout(
        "Sensors",
        Some(&p),
        html! {
            h1 { "Sensor health" }
            table.sensors {
                thead { tr { th { "Sensor" } th { "Events" } th { "Events/s" } th { "Drops" } th { "Duplicates" } th { "Chain" } th { "Protected pkt / CPU-s" } th { "Last seen" } } }
                tbody { @for s in &rows { tr {
                    td { (s.name) } td { (s.events) } td { (format!("{:.1}", s.events_per_sec)) } td { (s.drops) } td { (s.duplicates) }
                    td { span class={ "chain chain-" (s.chain) } { (s.chain) } @if !s.chain_detail.is_empty() { br; small { (s.chain_detail) } } }
                    td { @if let Some(r) = s.protection_ratio { (format!("{r:.0}")) } @else { "—" } }
                    td { (fmt_ts(s.last_seen)) }
                } } }
            }
            (PreEscaped(""))
        },
    )
    .into_response()
}
