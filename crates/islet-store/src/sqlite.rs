//! The SQLite backend: one writer connection, any number of read-only ones (WAL lets readers
//! run beside the writer). Ingest is one transaction per batch with cached statements;
//! workloads' last-seen times and per-minute edges are summed in memory over the batch and
//! written once each at its end.

//!
//! One module per concern, each implementing its trait of the store: [`evidence`]
//! (`EvidenceStore`: ingest, flows, names, the map, sensors, retention), [`cases`]
//! (`CaseStore`), [`access`] (`AccessStore`) and [`exports`] (`ExportQueue`).

use crate::types::*;
use crate::{Result, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

mod access;
mod cases;
mod evidence;
mod exports;
mod ingest;
mod seen;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

/// Durability of a commit: `Full` survives power loss, `Normal` survives a crash of islet
/// (WAL), not of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sync {
    #[default]
    Full,
    Normal,
}

/// The SQLite store.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    sensor_ids: HashMap<String, i64>,
    /// Workload key → (id, last_seen written).
    /// Workload key → (id, first seen, last seen) as stored (or in the open transaction).
    workload_ids: HashMap<String, (i64, i64, i64)>,
    /// Address → workloads known to be in `addresses` with it.
    addresses: HashMap<String, Vec<i64>>,
    /// Emptied sealed-block buffers, kept for the next batch: a fresh multi-megabyte buffer
    /// per sensor and batch costs the writer its page faults.
    sealed_bufs: Vec<Vec<u8>>,
    /// The compressed block being written (reused).
    sealed_packed: Vec<u8>,
}

fn json_str<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn parse_vec(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

impl SqliteStore {
    /// Open (creating and migrating) the database at `path` for writing.
    pub fn open(path: &Path, sync: Sync) -> Result<SqliteStore> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                Sync::Full => "FULL",
                Sync::Normal => "NORMAL",
            },
        )?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        // The console checkpoints from a background connection (`checkpoint`); the writer
        // does it itself only if the log reaches 64 MiB.
        conn.pragma_update(None, "wal_autocheckpoint", 16384)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            sensor_ids: HashMap::new(),
            workload_ids: HashMap::new(),
            addresses: HashMap::new(),
            sealed_bufs: Vec::new(),
            sealed_packed: Vec::new(),
        })
    }

    /// A read-only connection to the same database (queries only; writes are refused).
    pub fn reader(&self) -> Result<SqliteStore> {
        SqliteStore::open_reader(&self.path)
    }

    pub fn open_reader(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "cache_size", -32768)?;
        Ok(SqliteStore {
            conn,
            path: path.to_path_buf(),
            sensor_ids: HashMap::new(),
            workload_ids: HashMap::new(),
            addresses: HashMap::new(),
            sealed_bufs: Vec::new(),
            sealed_packed: Vec::new(),
        })
    }

    /// Copy what the write-ahead log holds into the database, as far as readers allow
    /// (PASSIVE: never waits). Run from a connection other than the writer's.
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The schema version (number of migrations applied).
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let have: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let have = usize::try_from(have).unwrap_or(0);
    if have > crate::schema::MIGRATIONS.len() {
        return Err(StoreError::Invalid(format!(
            "the database is at schema version {have}, newer than this islet ({})",
            crate::schema::MIGRATIONS.len()
        )));
    }
    for (i, m) in crate::schema::MIGRATIONS.iter().enumerate().skip(have) {
        let tx = conn.transaction()?;
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Ten-minute sums of a batch: (bucket, src, dest, service, verdict) → (alerted, flows,
/// bytes, first minute, last minute).
type TenSums<'a> = HashMap<(i64, i64, i64, &'a str, &'a str), (bool, u64, u64, i64, i64)>;
/// (minute, src, dest, service, verdict).
type EdgeKey = (i64, i64, i64, String, String);
/// (case, signature, record, sensor, severity, first seen, last seen) of a detached alert.
type DetachRow = (Option<i64>, String, String, String, i64, i64, i64);

/// Sums kept over one batch and written at its end.
#[derive(Default)]
struct BatchSums {
    workloads_seen: HashMap<i64, (i64, i64)>,
    edges: HashMap<EdgeKey, (bool, u64, u64)>,
    /// Sensor → (first seen, last seen, stored, duplicates).
    sensors: HashMap<i64, (i64, i64, u64, u64)>,
    /// Sensor → its new chained records of the batch, as sealed.
    sealed: HashMap<i64, SealedBlock>,
}

/// One sensor's new chained records of one batch, framed ([`crate::sealed`]), in arrival order.
struct SealedBlock {
    first_seq: u64,
    last_seq: u64,
    ts_max: i64,
    records: i64,
    lines: Vec<u8>,
}

fn sensor_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    name: &str,
    ts: i64,
) -> Result<i64> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    tx.execute(
        "INSERT INTO sensors (name, first_seen, last_seen) VALUES (?1, ?2, ?2) ON CONFLICT(name) DO NOTHING",
        params![name, ts],
    )?;
    let id: i64 = tx.query_row("SELECT id FROM sensors WHERE name = ?1", [name], |r| {
        r.get(0)
    })?;
    cache.insert(name.to_string(), id);
    Ok(id)
}

/// A workload's id, created if new. Its first/last seen are widened in `seen` (written at the
/// end of the batch) only when the flow moves them by more than a minute: last-seen is kept
/// to the minute, so a busy workload costs no write per flow.
fn workload_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, (i64, i64, i64)>,
    e: &Endpoint,
    start: i64,
    end: i64,
    seen: &mut HashMap<i64, (i64, i64)>,
) -> Result<i64> {
    let widen = |c: &mut (i64, i64, i64), seen: &mut HashMap<i64, (i64, i64)>| {
        if start < c.1 || end > c.2.saturating_add(60_000) {
            c.1 = c.1.min(start);
            c.2 = c.2.max(end);
            let s = seen.entry(c.0).or_insert((c.1, c.2));
            s.0 = s.0.min(c.1);
            s.1 = s.1.max(c.2);
        }
    };
    if let Some(c) = cache.get_mut(&e.key) {
        widen(c, seen);
        return Ok(c.0);
    }
    let found: Option<(i64, i64, i64)> = tx
        .prepare_cached("SELECT id, first_seen, last_seen FROM workloads WHERE key = ?1")?
        .query_row([&e.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let mut c = match found {
        Some(c) => c,
        None => {
            tx.prepare_cached(
                "INSERT INTO workloads (key, kind, name, namespace, labels, critical, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                e.key,
                e.kind,
                e.name,
                e.namespace,
                json_str(&e.labels),
                e.critical,
                start,
                end
            ])?;
            (tx.last_insert_rowid(), start, end)
        }
    };
    widen(&mut c, seen);
    cache.insert(e.key.clone(), c);
    Ok(c.0)
}

fn ip_endpoint(ip: &str) -> Endpoint {
    Endpoint {
        key: ip.to_string(),
        kind: "ip".into(),
        name: ip.to_string(),
        namespace: String::new(),
        labels: BTreeMap::new(),
        critical: false,
    }
}

/// A WHERE clause built from optional filters, with its parameters.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<rusqlite::types::Value>,
}

impl Filter {
    /// Every `?` of `clause` names this one parameter.
    fn add(&mut self, clause: &str, v: impl Into<rusqlite::types::Value>) {
        self.params.push(v.into());
        let n = self.params.len();
        self.clauses.push(clause.replace('?', &format!("?{n}")));
    }
    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

impl SqliteStore {
    fn page<T>(
        &self,
        from: &str,
        cols: &str,
        f: &Filter,
        order: &str,
        page: &PageReq,
        map: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Page<T>> {
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM {from}{}", f.sql()),
            rusqlite::params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let n = f.params.len();
        let sql = format!(
            "SELECT {cols} FROM {from}{} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
            f.sql(),
            n + 1,
            n + 2
        );
        let mut params = f.params.clone();
        params.push(page.limit().into());
        params.push(page.offset().into());
        let mut st = self.conn.prepare_cached(&sql)?;
        let items = st
            .query_map(rusqlite::params_from_iter(params.iter()), map)?
            .collect::<rusqlite::Result<Vec<T>>>()?;
        Ok(Page {
            items,
            total: total as u64,
            offset: page.offset,
            limit: page.limit() as u32,
        })
    }

    fn workload_by_key(&self, key: &str) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT id FROM workloads WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    fn case_exists(&self, id: i64) -> Result<Status> {
        let s: Option<String> = self
            .conn
            .query_row("SELECT status FROM cases WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        s.and_then(|s| Status::parse(&s))
            .ok_or_else(|| StoreError::NotFound(format!("case {id}")))
    }

    fn audit_tx(
        tx: &Transaction<'_>,
        actor: &str,
        action: &str,
        case: Option<i64>,
        detail: &str,
        now: i64,
    ) -> Result<()> {
        tx.execute(
            "INSERT INTO audit (ts, actor, action, case_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now, actor, action, case, detail],
        )?;
        Ok(())
    }
}
