//! islet's investigation console (`islet serve`): the top layer, beside the sinks.
//!
//! It consumes only what sensors emit — EVE records over the Fluentd Forward protocol (the
//! server codec of `islet-sink`) or from files — and keeps them in `islet-store`. One writer
//! thread commits ingest batches and the Forward ack waits for that commit ([`ingest`]); an
//! export thread drains the on-disk queue to TheHive and MISP ([`export`]); an HTTP server
//! (axum on tokio) answers the JSON API ([`api`]) and the server-rendered web UI ([`ui`]),
//! whose CSS and JavaScript are ours and embedded in the binary. Design choice: the store is
//! reached through its trait only, with a small pool of read-only connections for queries
//! and one write connection for analysts' changes, so the API never waits on ingest.

pub mod access;
pub mod api;
pub mod auth;
pub mod error;
pub mod export;
pub mod follow;
pub mod http;
pub mod identify;
pub mod ingest;
pub mod listen;
pub mod sealed;
pub mod serve;
pub mod ui;

use axum::Router;
use axum::routing::{get, post};
use islet_store::{Retention, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Largest request body the API reads.
pub const MAX_BODY: usize = 64 << 10;
/// Read-only connections kept for queries.
pub const READERS: usize = 8;

/// Everything a handler needs.
pub struct App {
    pub db: PathBuf,
    readers: Mutex<Vec<SqliteStore>>,
    writer: Mutex<SqliteStore>,
    pub verifier: auth::Verifier,
    pub ingest_stats: Arc<ingest::IngestStats>,
    pub export_stats: Arc<export::ExportStats>,
    pub export_cfg: export::ExportConfig,
    exporter_wake: Mutex<Option<crossbeam_channel::Sender<()>>>,
    pub clock: fn() -> i64,
    /// Cookies get `Secure` (the console is served over TLS).
    pub tls: bool,
    /// The HTTP listener's connection counters.
    pub listen: Arc<listen::ListenStats>,
    /// The Forward receiver's counters, once it runs.
    pub forward: std::sync::OnceLock<Arc<islet_sink::forward::ServerStats>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Run `f` on a read-only connection from the pool.
    pub fn with_reader<T, E: From<islet_store::StoreError>>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let pooled = self.readers.lock().ok().and_then(|mut p| p.pop());
        let r = match pooled {
            Some(r) => r,
            None => SqliteStore::open_reader(&self.db)?,
        };
        let out = f(&r);
        if let Ok(mut p) = self.readers.lock()
            && p.len() < READERS
        {
            p.push(r);
        }
        out
    }

    /// Run `f` on the API's write connection.
    pub fn with_writer<T, E: From<islet_store::StoreError>>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| islet_store::StoreError::Backend("writer poisoned".into()))?;
        f(&mut *w)
    }

    pub fn wake_exporter(&self) {
        if let Ok(w) = self.exporter_wake.lock()
            && let Some(w) = w.as_ref()
        {
            let _ = w.try_send(());
        }
    }
}

/// The database file in a data directory.
pub fn db_path(data: &Path) -> PathBuf {
    data.join("islet.sqlite")
}

/// Open (creating) the store in `data`.
pub fn open_store(data: &Path) -> Result<SqliteStore, error::ServeError> {
    std::fs::create_dir_all(data).map_err(error::ServeError::io(data.display()))?;
    SqliteStore::open(&db_path(data), islet_store::Sync::Full).map_err(|source| {
        error::ServeError::Store {
            path: data.to_path_buf(),
            source,
        }
    })
}

/// Build the shared state.
pub fn app(
    data: &Path,
    ingest_stats: Arc<ingest::IngestStats>,
    export_stats: Arc<export::ExportStats>,
    export_cfg: export::ExportConfig,
    wake: Option<crossbeam_channel::Sender<()>>,
    tls: bool,
) -> Result<Arc<App>, error::ServeError> {
    let writer = open_store(data)?;
    Ok(Arc::new(App {
        db: db_path(data),
        readers: Mutex::new(Vec::new()),
        writer: Mutex::new(writer),
        verifier: auth::Verifier::default(),
        ingest_stats,
        export_stats,
        export_cfg,
        exporter_wake: Mutex::new(wake),
        clock: ingest::now_ms,
        tls,
        listen: Arc::default(),
        forward: std::sync::OnceLock::new(),
    }))
}

/// The HTTP routes: API, UI and assets.
pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/cases", get(api::cases))
        .route("/api/cases/{id}", get(api::case).patch(api::update_case))
        .route("/api/cases/{id}/notes", post(api::add_note))
        .route("/api/cases/{id}/merge", post(api::merge))
        .route("/api/cases/{id}/export", post(api::export))
        .route("/api/alerts", get(api::alerts))
        .route("/api/alerts/{id}/detach", post(api::detach))
        .route("/api/flows", get(api::flows))
        .route("/api/map", get(api::map))
        .route("/api/search", get(api::search))
        .route("/api/observables", get(api::links))
        .route("/api/sensors", get(api::sensors))
        .route("/api/workloads", get(api::workloads))
        .route("/api/metrics", get(api::metrics))
        .route("/api/audit", get(api::audit))
        .route("/api/exports", get(api::exports))
        .route("/api/tokens", get(api::tokens).post(api::create_token))
        .route("/api/tokens/{id}", axum::routing::delete(api::revoke_token))
        .route("/api/{*rest}", axum::routing::any(api::not_found));
    api.merge(ui::routes())
        .route("/healthz", get(api::healthz))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(app)
}

async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    ] {
        if let Ok(v) = axum::http::HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    r
}

/// Retention defaults: no age limit (evidence replayed from old captures must not vanish on
/// arrival), row budgets of 50 million flows and 50 million protocol events, and duplicate
/// keys for the last 10 million records of each sensor.
pub fn default_retention() -> Retention {
    Retention {
        flows_rows: 50_000_000,
        events_rows: 50_000_000,
        dedupe_window: 10_000_000,
        ..Retention::default()
    }
}
