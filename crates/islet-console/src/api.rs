//! The JSON API. Every route but `/healthz` needs a token (`Authorization: Bearer …`, or the
//! UI's cookie); roles gate what it may do. Bad input gets a 4xx with `{"error", "field"}`,
//! never a 500: query strings and bodies are decoded here with the failing field named, and
//! every list is paged (`offset`, `limit` ≤ 1000). The OpenAPI document at
//! `/api/openapi.json` is generated from these handlers' annotations.

use crate::App;
pub use crate::access::{Admin, Analyst, Viewer, authorize, peer_of, verify};
pub use crate::http::{ApiError, JsonBody, PathId, Q, body, query};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use islet_store::{
    AlertQuery, AlertRow, AuditRow, CaseChange, CaseDetail, CaseQuery, CaseSummary, ExportRow,
    FlowQuery, FlowRow, Links, MAX_PAGE, MapView, NameHit, Page, PageReq, Role, SensorRow, Status,
    TokenRow, WorkloadQuery, WorkloadRow,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use utoipa::{IntoParams, OpenApi, ToSchema};

type R<T> = Result<Json<T>, ApiError>;

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the request could not be completed",
        )
    })?
}

fn page(offset: Option<u32>, limit: Option<u32>) -> Result<PageReq, ApiError> {
    let limit = limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "limit",
            format!("limit is 1 to {MAX_PAGE}"),
        ));
    }
    Ok(PageReq {
        offset: offset.unwrap_or(0),
        limit,
    })
}

fn range(from: Option<i64>, to: Option<i64>) -> Result<(), ApiError> {
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "from",
            "from is after to",
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CasesQ {
    /// New, InProgress, TruePositive, FalsePositive, Duplicated, Closed.
    pub status: Option<Status>,
    /// At least this severity (1–4).
    pub min_severity: Option<u8>,
    pub offset: Option<u32>,
    /// 1–1000 (default 100).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/cases", params(CasesQ), responses(
    (status = 200, body = Page<CaseSummary>), (status = 400, body = ApiError), (status = 401, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn cases(
    State(app): State<Arc<App>>,
    _: Viewer,
    Q(q): Q<CasesQ>,
) -> R<Page<CaseSummary>> {
    let cq = CaseQuery {
        status: q.status,
        min_severity: q.min_severity,
        page: page(q.offset, q.limit)?,
    };
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.cases(&cq)?))).await?,
    ))
}

#[utoipa::path(get, path = "/api/cases/{id}", params(("id" = i64, Path, description = "Case id")), responses(
    (status = 200, body = CaseDetail), (status = 404, body = ApiError), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn case(State(app): State<Arc<App>>, _: Viewer, PathId(id): PathId) -> R<CaseDetail> {
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.case(id)?))).await?,
    ))
}

#[utoipa::path(patch, path = "/api/cases/{id}", params(("id" = i64, Path, description = "Case id")),
    request_body = CaseChange, responses(
    (status = 200, body = CaseDetail), (status = 404, body = ApiError), (status = 400, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn update_case(
    State(app): State<Arc<App>>,
    Analyst(who): Analyst,
    PathId(id): PathId,
    JsonBody(change): JsonBody<CaseChange>,
) -> R<CaseDetail> {
    for (name, v) in [("tlp", change.tlp), ("pap", change.pap)] {
        if v.is_some_and(|v| v > 3) {
            return Err(ApiError::field(
                StatusCode::BAD_REQUEST,
                name,
                format!("{name} is 0 to 3"),
            ));
        }
    }
    if change.assignee.as_ref().is_some_and(|a| a.len() > 128) {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "assignee",
            "at most 128 bytes",
        ));
    }
    if change
        .tags
        .as_ref()
        .is_some_and(|t| t.len() > 64 || t.iter().any(|x| x.len() > 128))
    {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "tags",
            "at most 64 tags of 128 bytes",
        ));
    }
    if change
        .title
        .as_ref()
        .is_some_and(|t| t.is_empty() || t.len() > 512)
    {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "title",
            "1 to 512 bytes",
        ));
    }
    let clock = app.clock;
    Ok(Json(
        blocking(move || {
            app.with_writer(|s| Ok(s.update_case(id, &change, &who.name, clock())?))
        })
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteIn {
    /// 1 to 16384 bytes.
    pub text: String,
}

/// Longest note.
pub const MAX_NOTE: usize = 16 << 10;

#[utoipa::path(post, path = "/api/cases/{id}/notes", params(("id" = i64, Path, description = "Case id")),
    request_body = NoteIn, responses((status = 200, body = CaseDetail), (status = 404, body = ApiError), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn add_note(
    State(app): State<Arc<App>>,
    Analyst(who): Analyst,
    PathId(id): PathId,
    JsonBody(n): JsonBody<NoteIn>,
) -> R<CaseDetail> {
    if n.text.trim().is_empty() || n.text.len() > MAX_NOTE {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "text",
            format!("a note is 1 to {MAX_NOTE} bytes"),
        ));
    }
    let clock = app.clock;
    Ok(Json(
        blocking(move || app.with_writer(|s| Ok(s.add_note(id, &n.text, &who.name, clock())?)))
            .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeIn {
    /// The case merged into this one (it becomes Duplicated).
    pub from: i64,
}

#[utoipa::path(post, path = "/api/cases/{id}/merge", params(("id" = i64, Path, description = "Case id")),
    request_body = MergeIn, responses((status = 200, body = CaseDetail), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn merge(
    State(app): State<Arc<App>>,
    Analyst(who): Analyst,
    PathId(id): PathId,
    JsonBody(m): JsonBody<MergeIn>,
) -> R<CaseDetail> {
    let clock = app.clock;
    Ok(Json(
        blocking(move || app.with_writer(|s| Ok(s.merge_cases(id, m.from, &who.name, clock())?)))
            .await?,
    ))
}

#[utoipa::path(post, path = "/api/alerts/{id}/detach", params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = CaseDetail), (status = 404, body = ApiError)),
    security(("bearer" = [])), tag = "alerts")]
pub async fn detach(
    State(app): State<Arc<App>>,
    Analyst(who): Analyst,
    PathId(id): PathId,
) -> R<CaseDetail> {
    let clock = app.clock;
    Ok(Json(
        blocking(move || app.with_writer(|s| Ok(s.detach_alert(id, &who.name, clock())?))).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportIn {
    /// `thehive` or `misp`.
    pub target: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Queued {
    /// Export queue ids.
    pub queued: Vec<i64>,
}

#[utoipa::path(post, path = "/api/cases/{id}/export", params(("id" = i64, Path, description = "Case id")),
    request_body = ExportIn, responses((status = 200, body = Queued), (status = 404, body = ApiError), (status = 422, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn export(
    State(app): State<Arc<App>>,
    Analyst(who): Analyst,
    PathId(id): PathId,
    JsonBody(e): JsonBody<ExportIn>,
) -> R<Queued> {
    if !matches!(e.target.as_str(), "thehive" | "misp") {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "target",
            "thehive or misp",
        ));
    }
    let a2 = app.clone();
    let ids = blocking(move || {
        let c = a2.with_reader(|s| Ok::<_, ApiError>(s.case(id)?))?;
        let now = (a2.clock)();
        a2.with_writer(|s| {
            let ids = crate::export::enqueue_case(s, &a2.export_cfg, &c, &e.target, now)
                .map_err(|m| ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "target", m))?;
            s.record_audit(
                &who.name,
                "export",
                Some(id),
                &format!("export to {} queued ({ids:?})", e.target),
                now,
            )?;
            Ok(ids)
        })
    })
    .await?;
    app.wake_exporter();
    Ok(Json(Queued { queued: ids }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQ {
    pub case: Option<i64>,
    pub detection: Option<String>,
    pub sensor: Option<String>,
    /// Either end.
    pub ip: Option<String>,
    /// Only alerts with (true) or without (false) an indicator hit.
    pub intel: Option<bool>,
    /// At most this Suricata severity (1 highest).
    pub max_severity: Option<u8>,
    /// Unix ms.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/alerts", params(AlertsQ), responses((status = 200, body = Page<AlertRow>), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "alerts")]
pub async fn alerts(State(app): State<Arc<App>>, _: Viewer, Q(q): Q<AlertsQ>) -> R<Page<AlertRow>> {
    range(q.from, q.to)?;
    let aq = AlertQuery {
        case: q.case,
        detection: q.detection,
        sensor: q.sensor,
        ip: q.ip,
        intel: q.intel,
        max_severity: q.max_severity,
        from: q.from,
        to: q.to,
        page: page(q.offset, q.limit)?,
    };
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.alerts(&aq)?))).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowsQ {
    /// Either end's address: who talked to it.
    pub ip: Option<String>,
    /// Either end's identity (`namespace/name` or an address).
    pub identity: Option<String>,
    /// With `identity`: only flows from it to this one.
    pub peer: Option<String>,
    pub port: Option<u16>,
    pub app_proto: Option<String>,
    /// Flow start at or after (Unix ms).
    pub from: Option<i64>,
    /// Flow start before (Unix ms).
    pub to: Option<i64>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/flows", params(FlowsQ), responses((status = 200, body = Page<FlowRow>), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "flows")]
pub async fn flows(State(app): State<Arc<App>>, _: Viewer, Q(q): Q<FlowsQ>) -> R<Page<FlowRow>> {
    range(q.from, q.to)?;
    if let Some(ip) = &q.ip
        && ip.parse::<std::net::IpAddr>().is_err()
    {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "ip",
            "not an IP address",
        ));
    }
    let fq = FlowQuery {
        ip: q.ip,
        identity: q.identity,
        peer: q.peer,
        port: q.port,
        app_proto: q.app_proto,
        from: q.from,
        to: q.to,
        page: page(q.offset, q.limit)?,
    };
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.flows(&fq)?))).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MapQ {
    /// Window start (Unix ms); default: an hour before `to`.
    pub from: Option<i64>,
    /// Window end (Unix ms); default: now.
    pub to: Option<i64>,
    /// A moment instead of a window: the minute around it.
    pub at: Option<i64>,
    /// Most edges (1–5000, default 2000).
    pub max_edges: Option<u32>,
}

#[utoipa::path(get, path = "/api/map", params(MapQ), responses((status = 200, body = MapView), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "map")]
pub async fn map(State(app): State<Arc<App>>, _: Viewer, Q(q): Q<MapQ>) -> R<MapView> {
    let (from, to) = match q.at {
        Some(t) => (t.saturating_sub(30_000), t.saturating_add(30_000)),
        None => {
            let to = q.to.unwrap_or_else(app.clock);
            (q.from.unwrap_or(to.saturating_sub(3_600_000)), to)
        }
    };
    range(Some(from), Some(to))?;
    let max = q.max_edges.unwrap_or(2000);
    if max == 0 || max > 5000 {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "max_edges",
            "1 to 5000",
        ));
    }
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.map(from, to, max as usize)?))).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQ {
    /// A name: every host that resolved it (DNS) or connected to it (TLS SNI, HTTP Host).
    pub name: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/search", params(SearchQ), responses((status = 200, body = Page<NameHit>), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "search")]
pub async fn search(State(app): State<Arc<App>>, _: Viewer, Q(q): Q<SearchQ>) -> R<Page<NameHit>> {
    range(q.from, q.to)?;
    if q.name.is_empty() || q.name.len() > 255 {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "name",
            "1 to 255 bytes",
        ));
    }
    let pg = page(q.offset, q.limit)?;
    let (from, to) = (q.from.unwrap_or(i64::MIN), q.to.unwrap_or(i64::MAX));
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.search_name(&q.name, from, to, &pg)?))).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LinksQ {
    /// `ip`, `domain`, `hash` or `other` (an identity).
    pub data_type: String,
    pub data: String,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/observables", params(LinksQ), responses((status = 200, body = Links), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "cases")]
pub async fn links(State(app): State<Arc<App>>, _: Viewer, Q(q): Q<LinksQ>) -> R<Links> {
    if !matches!(q.data_type.as_str(), "ip" | "domain" | "hash" | "other") {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "data_type",
            "ip, domain, hash or other",
        ));
    }
    if q.data.is_empty() || q.data.len() > 512 {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "data",
            "1 to 512 bytes",
        ));
    }
    let pg = page(q.offset, q.limit)?;
    Ok(Json(
        blocking(move || {
            app.with_reader(|s| Ok(s.observable_links(&q.data_type, &q.data, &pg)?))
        })
        .await?,
    ))
}

#[utoipa::path(get, path = "/api/sensors", responses((status = 200, body = Vec<SensorRow>)), security(("bearer" = [])), tag = "sensors")]
pub async fn sensors(State(app): State<Arc<App>>, _: Viewer) -> R<Vec<SensorRow>> {
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.sensors()?))).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WorkloadsQ {
    pub key: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/workloads", params(WorkloadsQ), responses((status = 200, body = Page<WorkloadRow>), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "map")]
pub async fn workloads(
    State(app): State<Arc<App>>,
    _: Viewer,
    Q(q): Q<WorkloadsQ>,
) -> R<Page<WorkloadRow>> {
    range(q.from, q.to)?;
    let wq = WorkloadQuery {
        key: q.key,
        from: q.from,
        to: q.to,
        page: page(q.offset, q.limit)?,
    };
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.workloads(&wq)?))).await?,
    ))
}

#[utoipa::path(get, path = "/api/metrics", responses((status = 200, body = Object)), security(("bearer" = [])), tag = "metrics")]
pub async fn metrics(State(app): State<Arc<App>>, _: Viewer) -> R<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let i = &app.ingest_stats;
    let e = &app.export_stats;
    let l = &app.listen;
    let usage = blocking({
        let app = app.clone();
        move || app.with_reader(|s| Ok(s.usage()?))
    })
    .await?;
    Ok(Json(json!({
        "ingest": {
            "received": i.received.load(Relaxed), "stored": i.stored.load(Relaxed),
            "duplicates": i.duplicates.load(Relaxed), "malformed": i.malformed.load(Relaxed),
            "commits": i.commits.load(Relaxed), "failed_commits": i.failed_commits.load(Relaxed),
            "chain_alerts": i.chain_alerts.load(Relaxed),
        },
        "export": {
            "sent": e.sent.load(Relaxed), "duplicates": e.duplicates.load(Relaxed),
            "retried": e.retried.load(Relaxed), "failed": e.failed.load(Relaxed),
        },
        "http": {
            "accepted": l.accepted.load(Relaxed), "open": l.open.load(Relaxed),
            "refused": l.refused.load(Relaxed), "evicted_idle": l.evicted.load(Relaxed),
            "handshake_timeouts": l.handshake_timeouts.load(Relaxed),
            "handshake_failures": l.handshake_failures.load(Relaxed),
            "idle_timeouts": l.idle_timeouts.load(Relaxed),
            "throttled_logins": app.verifier.throttled(),
        },
        "forward": app.forward.get().map(|f| {
            let a = &f.admission;
            let closed = f.closed.lock().map(|c| c.clone()).unwrap_or_default();
            json!({
                "connections": f.connections.load(Relaxed), "open": a.open.load(Relaxed),
                "events": f.events.load(Relaxed), "acks": f.acks.load(Relaxed),
                "refused": a.refused_total.load(Relaxed),
                "refused_per_peer": a.refused_per_peer.load(Relaxed),
                "evicted": a.evicted.load(Relaxed),
                "memory_bytes": f.memory_bytes.load(Relaxed),
                "memory_peak_bytes": f.memory_peak_bytes.load(Relaxed),
                "closed": closed,
            })
        }),
        "store": usage,
    })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQ {
    pub offset: Option<u32>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/api/audit", params(PageQ), responses((status = 200, body = Page<AuditRow>), (status = 403, body = ApiError)),
    security(("bearer" = [])), tag = "admin")]
pub async fn audit(State(app): State<Arc<App>>, _: Admin, Q(q): Q<PageQ>) -> R<Page<AuditRow>> {
    let pg = page(q.offset, q.limit)?;
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.audit(&pg)?))).await?,
    ))
}

#[utoipa::path(get, path = "/api/exports", params(PageQ), responses((status = 200, body = Page<ExportRow>)),
    security(("bearer" = [])), tag = "cases")]
pub async fn exports(State(app): State<Arc<App>>, _: Viewer, Q(q): Q<PageQ>) -> R<Page<ExportRow>> {
    let pg = page(q.offset, q.limit)?;
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.exports(&pg)?))).await?,
    ))
}

#[utoipa::path(get, path = "/api/tokens", responses((status = 200, body = Vec<TokenRow>), (status = 403, body = ApiError)),
    security(("bearer" = [])), tag = "admin")]
pub async fn tokens(State(app): State<Arc<App>>, _: Admin) -> R<Vec<TokenRow>> {
    Ok(Json(
        blocking(move || app.with_reader(|s| Ok(s.tokens()?))).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    pub role: Role,
    /// Who or what holds it (audit log name), up to 64 bytes.
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct TokenOut {
    pub id: String,
    /// The token: shown once, never stored.
    pub token: String,
    pub role: Role,
}

#[utoipa::path(post, path = "/api/tokens", request_body = TokenIn, responses((status = 200, body = TokenOut), (status = 403, body = ApiError), (status = 400, body = ApiError)),
    security(("bearer" = [])), tag = "admin")]
pub async fn create_token(
    State(app): State<Arc<App>>,
    Admin(who): Admin,
    JsonBody(t): JsonBody<TokenIn>,
) -> R<TokenOut> {
    if t.name.len() > 64 {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "name",
            "at most 64 bytes",
        ));
    }
    let clock = app.clock;
    Ok(Json(
        blocking(move || {
            let (secret, nt) = crate::auth::mint(t.role, &t.name)
                .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
            app.with_writer(|s| {
                s.create_token(&nt, clock())?;
                s.record_audit(
                    &who.name,
                    "token",
                    None,
                    &format!("token {} created ({})", nt.id, t.role.name()),
                    clock(),
                )?;
                Ok::<_, ApiError>(())
            })?;
            Ok(TokenOut {
                id: nt.id,
                token: secret,
                role: t.role,
            })
        })
        .await?,
    ))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Object), (status = 404, body = ApiError), (status = 403, body = ApiError)),
    security(("bearer" = [])), tag = "admin")]
pub async fn revoke_token(
    State(app): State<Arc<App>>,
    Admin(who): Admin,
    p: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> R<Value> {
    let Path(id) = p.map_err(|e| ApiError::field(StatusCode::BAD_REQUEST, "id", e.body_text()))?;
    if id.len() != 16 || !id.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::field(
            StatusCode::BAD_REQUEST,
            "id",
            "a token id is 16 hex digits",
        ));
    }
    let clock = app.clock;
    let a2 = app.clone();
    blocking(move || {
        a2.with_writer(|s| {
            s.revoke_token(&id, clock())?;
            s.record_audit(
                &who.name,
                "token",
                None,
                &format!("token {id} revoked"),
                clock(),
            )?;
            Ok(())
        })
    })
    .await?;
    app.verifier.forget();
    Ok(Json(json!({"revoked": true})))
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Object)), tag = "health")]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/api/openapi.json", responses((status = 200, body = Object)), security(("bearer" = [])), tag = "health")]
pub async fn openapi(_: Viewer) -> Result<Response, ApiError> {
    Ok(Json(ApiDoc::openapi()).into_response())
}

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, o: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(c) = o.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "islet console API", description = "Cases, alerts, flows, the time-travel map, search, sensors and metrics of islet serve."),
    paths(healthz, openapi, cases, case, update_case, add_note, merge, detach, export, alerts, flows, map, search, links,
          sensors, workloads, metrics, audit, exports, tokens, create_token, revoke_token),
    components(schemas(ApiError, NoteIn, MergeIn, ExportIn, Queued, TokenIn, TokenOut)),
    modifiers(&Security)
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Anything else under `/api`: a JSON 404.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route")
}
