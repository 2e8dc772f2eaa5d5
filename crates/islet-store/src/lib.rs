//! islet's evidence store: the investigation side's memory.
//!
//! Layer: beside the sinks, below the console; it depends on no other islet crate (it stores
//! what sensors emit, EVE records, as JSON). The store is four traits split by concern —
//! [`EvidenceStore`] (what sensors send), [`CaseStore`] (what analysts do), [`AccessStore`]
//! (tokens) and [`ExportQueue`] — together [`Store`], with one implementation now
//! ([`SqliteStore`]: bundled SQLite, WAL, one transaction per ingest batch, versioned
//! migrations, one module per trait). A backend on a distributed engine comes later, so
//! nothing outside this crate sees SQL: callers speak in
//! [`Record`]s, queries and the row types below.
//!
//! What ingest does in one transaction (so that a Forward ack sent after it is true):
//! duplicates are dropped by (sensor, `islet.seq`, record digest); flows go to `flows` with
//! both ends' workloads (labels frozen as they were at the flow's start) and to per-minute
//! `edges` (identity → identity, service, verdict); names seen in DNS, TLS and HTTP go to a
//! search index; alerts are upserted on a fingerprint and triaged into cases by shared
//! observables ([`triage`]). Everything an analyst does to a case is in the audit log.

mod schema;
pub mod sealed;
mod sqlite;
pub mod triage;
mod types;

pub use sqlite::{SqliteStore, Sync};
pub use types::*;

/// What went wrong in the store.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The database said no (I/O, corruption, a full disk).
    Backend(String),
    /// The thing asked for does not exist (a case, an alert, a token).
    NotFound(String),
    /// The request cannot be applied (merging a case into itself, a closed case's alert).
    Invalid(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Backend(m) => write!(f, "store: {m}"),
            StoreError::NotFound(m) => write!(f, "not found: {m}"),
            StoreError::Invalid(m) => write!(f, "invalid: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The evidence sensors send, and what is asked of it: ingest, flows, protocol events and the
/// names in them, the map, sensors, retention. Every time is passed in (Unix ms); the store
/// reads no clock.
pub trait EvidenceStore: Send {
    /// Commit a batch of records in one transaction; nothing of it is kept on error.
    fn ingest(&mut self, batch: &IngestBatch) -> Result<IngestReport>;
    /// Each sensor's chain head as last committed (to resume checking after a restart).
    fn sensor_heads(&self) -> Result<Vec<SensorHead>>;
    fn flows(&self, q: &FlowQuery) -> Result<Page<FlowRow>>;
    /// Every flow and protocol event that mentions an observable.
    fn observable_links(&self, data_type: &str, data: &str, page: &PageReq) -> Result<Links>;
    /// Workloads and their edges over `[from, to)`, including workloads gone since.
    fn map(&self, from_ms: i64, to_ms: i64, max_edges: usize) -> Result<MapView>;
    /// Hosts that resolved or connected to a name (DNS, TLS SNI, HTTP host) in `[from, to)`.
    fn search_name(
        &self,
        name: &str,
        from_ms: i64,
        to_ms: i64,
        page: &PageReq,
    ) -> Result<Page<NameHit>>;
    fn sensors(&self) -> Result<Vec<SensorRow>>;
    fn workloads(&self, q: &WorkloadQuery) -> Result<Page<WorkloadRow>>;
    /// Enforce retention: delete what is older than each table's age limit, then the oldest
    /// rows of tables over their row budget.
    fn prune(&mut self, r: &Retention, now_ms: i64) -> Result<PruneReport>;
    /// Rows per table and bytes on disk.
    fn usage(&self) -> Result<Usage>;
    /// A sensor's chained records as it sealed them, byte for byte, in chain order: those with
    /// `islet.seq` above `after_seq`, at most `limit` (a page; call again from the last seq).
    /// Unknown sensor: empty.
    fn sealed(&self, sensor: &str, after_seq: u64, limit: usize) -> Result<Vec<(u64, String)>>;
}

/// Cases and alerts, and everything an analyst does to them (audited).
pub trait CaseStore: Send {
    fn cases(&self, q: &CaseQuery) -> Result<Page<CaseSummary>>;
    fn case(&self, id: i64) -> Result<CaseDetail>;
    fn alerts(&self, q: &AlertQuery) -> Result<Page<AlertRow>>;
    /// Change a case's status, assignee, tags, TLP or PAP.
    fn update_case(
        &mut self,
        id: i64,
        change: &CaseChange,
        actor: &str,
        now_ms: i64,
    ) -> Result<CaseDetail>;
    fn add_note(&mut self, id: i64, text: &str, actor: &str, now_ms: i64) -> Result<CaseDetail>;
    /// Move every alert and observable of `from` into `into`; `from` becomes Duplicated.
    fn merge_cases(&mut self, into: i64, from: i64, actor: &str, now_ms: i64)
    -> Result<CaseDetail>;
    /// Take one alert out of its case into a new case of its own; returns the new case.
    fn detach_alert(&mut self, alert: i64, actor: &str, now_ms: i64) -> Result<CaseDetail>;
    fn audit(&self, page: &PageReq) -> Result<Page<AuditRow>>;
    /// Record an action that is not a case change (token created, export asked for).
    fn record_audit(
        &mut self,
        actor: &str,
        action: &str,
        case: Option<i64>,
        detail: &str,
        now_ms: i64,
    ) -> Result<()>;
}

/// API tokens: who may use the console.
pub trait AccessStore: Send {
    fn create_token(&mut self, token: &NewToken, now_ms: i64) -> Result<()>;
    fn token(&self, id: &str) -> Result<Option<TokenRow>>;
    fn tokens(&self) -> Result<Vec<TokenRow>>;
    fn revoke_token(&mut self, id: &str, now_ms: i64) -> Result<()>;
}

/// The export queue: cases and sightings kept until TheHive or MISP took them.
pub trait ExportQueue: Send {
    /// Queue an export (kept until delivered or given up); returns its id.
    fn enqueue_export(&mut self, e: &NewExport, now_ms: i64) -> Result<i64>;
    /// Exports due at `now`, oldest first.
    fn due_exports(&self, now_ms: i64, limit: usize) -> Result<Vec<ExportRow>>;
    fn export_outcome(&mut self, id: i64, outcome: &ExportOutcome, now_ms: i64) -> Result<()>;
    fn exports(&self, page: &PageReq) -> Result<Page<ExportRow>>;
    /// Cases at or above `min_severity`, unchanged since `settled_before`, never queued for
    /// `target` (automatic export).
    fn unexported_cases(
        &self,
        target: &str,
        min_severity: u8,
        settled_before: i64,
        limit: usize,
    ) -> Result<Vec<i64>>;
    /// Indicator-hit alerts never queued as a sighting (`misp-sighting`).
    fn unsighted_alerts(&self, limit: usize) -> Result<Vec<AlertRow>>;
}

/// A whole store: the four concerns over one database. Code that needs one concern takes
/// that trait (`&dyn CaseStore`, …); a `&dyn Store` coerces to each.
pub trait Store: EvidenceStore + CaseStore + AccessStore + ExportQueue {}

impl<T: EvidenceStore + CaseStore + AccessStore + ExportQueue + ?Sized> Store for T {}
