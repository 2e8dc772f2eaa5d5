//! Export to the tools teams already run: TheHive 5 alerts (`POST /api/v1/alert`, Bearer key,
//! `X-Organisation`) and MISP events and sightings. Every export is first written to the
//! store's queue (on disk), then sent by one thread; a failure is retried with capped
//! exponential backoff up to a bound, after which it stays in the queue as `failed`, visible
//! in the API. TheHive refusing an alert because its (type, source, sourceRef) already exists
//! counts as delivered: the sourceRef is stable per case, so that is TheHive's own dedup.

use islet_store::{
    CaseDetail, CaseStore as _, ExportOutcome, ExportQueue as _, ExportRow, NewExport, SqliteStore,
    Store,
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// TheHive 5.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TheHiveConfig {
    /// Base URL, e.g. `https://thehive.example:9000`.
    pub url: String,
    /// The API key; or `api_key_env`, the environment variable holding it.
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Sent as `X-Organisation`.
    #[serde(default)]
    pub organisation: Option<String>,
    /// Cases at or above this severity (1–4) are exported once they have settled; 0: only on
    /// demand.
    #[serde(default)]
    pub auto_min_severity: u8,
    /// Seconds a case must go unchanged before it is exported automatically (so that the
    /// alerts that join it in a burst travel together).
    #[serde(default = "default_settle")]
    pub auto_settle_s: u64,
}

fn default_settle() -> u64 {
    60
}

/// MISP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MispConfig {
    pub url: String,
    #[serde(default)]
    pub api_key: Option<String>,
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Push a sighting for every matched indicator as its alert arrives.
    #[serde(default)]
    pub sightings: bool,
}

/// Retry policy.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_ms: i64,
    pub cap_ms: i64,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base_ms: 1000,
            cap_ms: 300_000,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Where exports go.
#[derive(Debug, Clone, Default)]
pub struct ExportConfig {
    pub thehive: Option<TheHiveConfig>,
    pub misp: Option<MispConfig>,
    pub retry: RetryPolicy,
    /// `source` of TheHive alerts and MISP sightings.
    pub source: String,
}

fn key(k: &Option<String>, env: &Option<String>) -> String {
    k.clone()
        .or_else(|| env.as_ref().and_then(|e| std::env::var(e).ok()))
        .unwrap_or_default()
}

const TLP_NAMES: [&str; 4] = ["white", "green", "amber", "red"];

/// The TheHive alert of a case.
pub fn thehive_alert(c: &CaseDetail, source: &str) -> Value {
    let s = &c.summary;
    let first_ref = c
        .alerts
        .first()
        .map_or_else(|| format!("case-{}", s.id), |a| a.fingerprint.clone());
    let mut d = String::new();
    d.push_str(&format!("islet case {}: {}\n\n", s.id, s.title));
    d.push_str("**Why these alerts are one case**\n\n");
    for r in &c.reasons {
        d.push_str(&format!("- {r}\n"));
    }
    d.push_str("\n**Alerts**\n\n");
    for a in &c.alerts {
        d.push_str(&format!(
            "- {} (sid {}, severity {}, ×{}) {} → {}\n",
            a.signature,
            a.signature_id,
            a.severity,
            a.count,
            a.src_ip.as_deref().unwrap_or("-"),
            a.dest_ip.as_deref().unwrap_or("-")
        ));
    }
    if !c.misp.is_empty() {
        d.push_str("\n**MISP context**\n\n");
        for m in &c.misp {
            d.push_str(&format!(
                "- event {} '{}': {} {} (attribute {})\n",
                m.event_uuid, m.event_info, m.kind, m.value, m.attribute_uuid
            ));
        }
    }
    let mut tags: Vec<String> = vec!["islet".into()];
    tags.extend(s.tags.iter().cloned());
    tags.extend(s.techniques.iter().map(|t| format!("mitre:{t}")));
    for m in &c.misp {
        tags.extend(m.tags.iter().cloned());
    }
    tags.dedup();
    let observables: Vec<Value> = c
        .observables
        .iter()
        .map(|o| {
            json!({
                "dataType": o.data_type,
                "data": o.data,
                "tlp": s.tlp,
                "ioc": o.ioc,
                "sighted": o.sighted || o.ioc,
                "tags": [format!("islet:{}", o.kind)],
            })
        })
        .collect();
    let procedures: Vec<Value> = s
        .techniques
        .iter()
        .map(|t| {
            json!({
                "patternId": t,
                "occurDate": s.first_seen,
                "description": format!("seen by islet in case {}", s.id),
            })
        })
        .collect();
    json!({
        "type": "islet",
        "source": source,
        "sourceRef": format!("islet-{first_ref}"),
        "title": s.title,
        "description": d,
        "severity": s.severity.clamp(1, 4),
        "date": s.first_seen,
        "tags": tags,
        "tlp": s.tlp,
        "pap": s.pap,
        "observables": observables,
        "procedures": procedures,
    })
}

/// MISP's attribute type and whether it is an IDS signature, per observable.
fn misp_attribute(data_type: &str, kind: &str) -> (&'static str, bool) {
    match (data_type, kind) {
        ("ip", _) => ("ip-dst", false),
        ("domain", "dns") | ("domain", "domain") | ("domain", "sni") | ("domain", "http_host") => {
            ("domain", true)
        }
        ("hash", "ja3") => ("ja3-fingerprint-md5", true),
        ("hash", _) => ("text", false),
        _ => ("text", false),
    }
}

/// The MISP event of a case. Indicator hits keep `to_ids` true (they are known bad); plain
/// addresses seen in the case are context (`to_ids` false: they include victims).
pub fn misp_event(c: &CaseDetail) -> Value {
    let s = &c.summary;
    let attrs: Vec<Value> = c
        .observables
        .iter()
        .map(|o| {
            let (t, ids) = misp_attribute(&o.data_type, &o.kind);
            json!({
                "type": t,
                "category": if o.kind == "identity" { "Other" } else { "Network activity" },
                "value": o.data,
                "to_ids": ids || o.ioc,
                "comment": format!("islet case {} ({})", s.id, o.kind),
            })
        })
        .collect();
    let date = {
        let days = s.first_seen.div_euclid(86_400_000);
        let (y, m, d) = islet_event::time::civil_from_days(days);
        format!("{y:04}-{m:02}-{d:02}")
    };
    let threat = match s.severity {
        4 | 3 => "1",
        2 => "2",
        _ => "3",
    };
    let mut tags: Vec<Value> =
        vec![json!({"name": format!("tlp:{}", TLP_NAMES[usize::from(s.tlp.min(3))])})];
    for t in &s.techniques {
        tags.push(json!({"name": format!("mitre-attack:{t}")}));
    }
    json!({"Event": {
        "info": format!("islet case {}: {}", s.id, s.title),
        "date": date,
        "threat_level_id": threat,
        "analysis": "1",
        "distribution": "0",
        "Attribute": attrs,
        "Tag": tags,
    }})
}

/// Sightings of the case's matched indicators.
pub fn misp_sightings(c: &CaseDetail, source: &str) -> Option<Value> {
    let mut values: Vec<&str> = c.misp.iter().map(|m| m.value.as_str()).collect();
    values.sort_unstable();
    values.dedup();
    (!values.is_empty()).then(|| {
        json!({
            "values": values,
            "source": source,
            "timestamp": (c.summary.last_seen / 1000).to_string(),
        })
    })
}

/// Queue the exports of a case for `target` (`thehive` or `misp`).
pub fn enqueue_case(
    store: &mut dyn Store,
    cfg: &ExportConfig,
    c: &CaseDetail,
    target: &str,
    now: i64,
) -> Result<Vec<i64>, String> {
    let mut ids = Vec::new();
    let mut put = |target: &str, body: Value| -> Result<(), String> {
        ids.push(
            store
                .enqueue_export(
                    &NewExport {
                        target: target.into(),
                        case_id: Some(c.summary.id),
                        alert_id: None,
                        body,
                    },
                    now,
                )
                .map_err(|e| e.to_string())?,
        );
        Ok(())
    };
    match target {
        "thehive" => {
            if cfg.thehive.is_none() {
                return Err("no TheHive is configured ([console.thehive])".into());
            }
            put("thehive", thehive_alert(c, &cfg.source))?;
        }
        "misp" => {
            if cfg.misp.is_none() {
                return Err("no MISP is configured ([console.misp])".into());
            }
            put("misp-event", misp_event(c))?;
            if let Some(s) = misp_sightings(c, &cfg.source) {
                put("misp-sighting", s)?;
            }
        }
        other => return Err(format!("unknown export target {other:?} (thehive, misp)")),
    }
    Ok(ids)
}

/// Queue what is exported without being asked: settled cases to TheHive, sightings of
/// indicator hits to MISP.
fn auto_enqueue(store: &mut SqliteStore, cfg: &ExportConfig, now: i64) {
    if let Some(h) = &cfg.thehive
        && h.auto_min_severity > 0
    {
        let settled = now - (h.auto_settle_s as i64).saturating_mul(1000);
        for id in store
            .unexported_cases("thehive", h.auto_min_severity, settled, 64)
            .unwrap_or_default()
        {
            if let Ok(c) = store.case(id) {
                let _ = enqueue_case(store, cfg, &c, "thehive", now);
                let _ = store.record_audit(
                    "islet",
                    "export",
                    Some(id),
                    "export to thehive queued (automatic)",
                    now,
                );
            }
        }
    }
    if cfg.misp.as_ref().is_some_and(|m| m.sightings) {
        for a in store.unsighted_alerts(256).unwrap_or_default() {
            let Some(m) = &a.misp else { continue };
            let body = json!({
                "values": [m.value],
                "source": cfg.source,
                "timestamp": (a.last_seen / 1000).to_string(),
            });
            let _ = store.enqueue_export(
                &NewExport {
                    target: "misp-sighting".into(),
                    case_id: a.case_id,
                    alert_id: Some(a.id),
                    body,
                },
                now,
            );
        }
    }
}

/// What the sender counted.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub sent: AtomicU64,
    pub duplicates: AtomicU64,
    pub retried: AtomicU64,
    pub failed: AtomicU64,
}

/// The outcome of one HTTP attempt.
enum Sent {
    Ok,
    Duplicate,
    /// Worth retrying (connection refused, 5xx, 429, timeout).
    Transient(String),
    /// Not worth retrying (4xx other than a duplicate).
    Permanent(String),
}

fn post(cfg: &ExportConfig, row: &ExportRow) -> Sent {
    let agent = ureq::AgentBuilder::new().timeout(cfg.retry.timeout).build();
    let (url, req) = match row.target.as_str() {
        "thehive" => {
            let Some(h) = &cfg.thehive else {
                return Sent::Permanent("TheHive is no longer configured".into());
            };
            let url = format!("{}/api/v1/alert", h.url.trim_end_matches('/'));
            let mut r = agent.post(&url).set(
                "Authorization",
                &format!("Bearer {}", key(&h.api_key, &h.api_key_env)),
            );
            if let Some(o) = &h.organisation {
                r = r.set("X-Organisation", o);
            }
            (url, r)
        }
        "misp-event" | "misp-sighting" => {
            let Some(m) = &cfg.misp else {
                return Sent::Permanent("MISP is no longer configured".into());
            };
            let path = if row.target == "misp-event" {
                "/events/add"
            } else {
                "/sightings/add"
            };
            let url = format!("{}{path}", m.url.trim_end_matches('/'));
            let r = agent
                .post(&url)
                .set("Authorization", &key(&m.api_key, &m.api_key_env))
                .set("Accept", "application/json");
            (url, r)
        }
        other => return Sent::Permanent(format!("unknown target {other}")),
    };
    match req
        .set("Content-Type", "application/json")
        .send_string(&row.body.to_string())
    {
        Ok(_) => Sent::Ok,
        Err(ureq::Error::Status(code, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            let short: String = body.chars().take(300).collect();
            let dup = body.to_ascii_lowercase().contains("already exist");
            if (code == 400 || code == 409 || code == 403) && dup {
                Sent::Duplicate
            } else if code == 429 || code >= 500 {
                Sent::Transient(format!("{url}: HTTP {code}: {short}"))
            } else {
                Sent::Permanent(format!("{url}: HTTP {code}: {short}"))
            }
        }
        Err(e) => Sent::Transient(format!("{url}: {e}")),
    }
}

/// The sender thread.
pub struct Exporter {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub stats: Arc<ExportStats>,
    wake: crossbeam_channel::Sender<()>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter").finish_non_exhaustive()
    }
}

impl Exporter {
    /// Send what is queued in `store`, now and whenever woken or every second.
    pub fn start(mut store: SqliteStore, cfg: ExportConfig, clock: fn() -> i64) -> Exporter {
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ExportStats::default());
        let (wake, woken) = crossbeam_channel::bounded::<()>(1);
        let (s, st) = (stop.clone(), stats.clone());
        let thread = std::thread::Builder::new()
            .name("console-export".into())
            .spawn(move || {
                let mut last_auto = 0i64;
                while !s.load(Ordering::SeqCst) {
                    let now = clock();
                    if now - last_auto >= 1000 {
                        last_auto = now;
                        auto_enqueue(&mut store, &cfg, now);
                    }
                    let due = store.due_exports(now, 32).unwrap_or_default();
                    for row in &due {
                        if s.load(Ordering::SeqCst) {
                            break;
                        }
                        let outcome = match post(&cfg, row) {
                            Sent::Ok => {
                                st.sent.fetch_add(1, Ordering::Relaxed);
                                ExportOutcome::Sent
                            }
                            Sent::Duplicate => {
                                st.duplicates.fetch_add(1, Ordering::Relaxed);
                                ExportOutcome::Sent
                            }
                            Sent::Transient(e) if row.attempts + 1 < cfg.retry.max_attempts => {
                                st.retried.fetch_add(1, Ordering::Relaxed);
                                let back = (cfg.retry.base_ms << row.attempts.min(20))
                                    .min(cfg.retry.cap_ms);
                                ExportOutcome::Retry {
                                    at_ms: clock() + back,
                                    error: e,
                                }
                            }
                            Sent::Transient(e) | Sent::Permanent(e) => {
                                st.failed.fetch_add(1, Ordering::Relaxed);
                                eprintln!(
                                    "islet serve: export {} to {} given up: {e}",
                                    row.id, row.target
                                );
                                ExportOutcome::Failed { error: e }
                            }
                        };
                        if let Err(e) = store.export_outcome(row.id, &outcome, clock()) {
                            eprintln!("islet serve: export {}: {e}", row.id);
                        }
                    }
                    if due.len() < 32 {
                        let _ = woken.recv_timeout(Duration::from_millis(250));
                    }
                }
            })
            .ok();
        Exporter {
            stop,
            thread,
            stats,
            wake,
        }
    }

    /// A handle that wakes the sender (the API, after queueing).
    pub fn waker(&self) -> crossbeam_channel::Sender<()> {
        self.wake.clone()
    }

    /// Look at the queue now.
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        crate::ingest::now_ms()
    }

    /// Retries are bounded: a server that never answers ends as `failed` after the configured
    /// attempts, and the row stays in the queue with the last error.
    #[test]
    fn retries_stop_at_the_bound_and_the_export_stays_visible() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("s.sqlite");
        let mut store = SqliteStore::open(&p, islet_store::Sync::Normal).expect("open");
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let id = store
            .enqueue_export(
                &NewExport {
                    target: "thehive".into(),
                    case_id: Some(1),
                    alert_id: None,
                    body: json!({"title": "t"}),
                },
                now(),
            )
            .expect("enqueue");
        let cfg = ExportConfig {
            thehive: Some(TheHiveConfig {
                url: format!("http://127.0.0.1:{port}"),
                api_key: Some("k".into()),
                api_key_env: None,
                organisation: None,
                auto_min_severity: 0,
                auto_settle_s: 60,
            }),
            misp: None,
            retry: RetryPolicy {
                max_attempts: 3,
                base_ms: 10,
                cap_ms: 50,
                timeout: Duration::from_secs(1),
            },
            source: "t".into(),
        };
        let mut ex = Exporter::start(
            SqliteStore::open(&p, islet_store::Sync::Normal).expect("open"),
            cfg,
            now,
        );
        let t = std::time::Instant::now();
        loop {
            let rows = store
                .exports(&islet_store::PageReq::default())
                .expect("rows");
            let row = rows.items.iter().find(|r| r.id == id).expect("row");
            if row.state == "failed" {
                assert_eq!(row.attempts, 3);
                assert!(
                    row.last_error
                        .as_deref()
                        .is_some_and(|e| e.contains("127.0.0.1"))
                );
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "never gave up: {row:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(ex.stats.retried.load(Ordering::Relaxed), 2);
        assert_eq!(ex.stats.failed.load(Ordering::Relaxed), 1);
        ex.stop();
    }
}
