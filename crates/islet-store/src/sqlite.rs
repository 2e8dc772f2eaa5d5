//! The SQLite backend: one writer connection, any number of read-only ones (WAL lets readers
//! run beside the writer). Ingest is one transaction per batch with cached statements;
//! workloads' last-seen times and per-minute edges are summed in memory over the batch and
//! written once each at its end.

use crate::triage::{AlertFacts, case_severity};
use crate::types::*;
use crate::{Result, Store, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

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

const SUMMARY_COLS: &str = "c.id, c.title, c.status, c.severity, c.assignee, c.tags, c.tlp, c.pap,
    (SELECT count(*) FROM alerts a WHERE a.case_id = c.id),
    (SELECT count(*) FROM observables o WHERE o.case_id = c.id),
    c.techniques, c.first_seen, c.last_seen, c.created, c.updated";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CaseSummary> {
    Ok(CaseSummary {
        id: r.get(0)?,
        title: r.get(1)?,
        status: Status::parse(&r.get::<_, String>(2)?).unwrap_or(Status::New),
        severity: r.get(3)?,
        assignee: r.get(4)?,
        tags: parse_vec(&r.get::<_, String>(5)?),
        tlp: r.get(6)?,
        pap: r.get(7)?,
        alerts: r.get::<_, i64>(8)? as u64,
        observables: r.get::<_, i64>(9)? as u64,
        techniques: parse_vec(&r.get::<_, String>(10)?),
        first_seen: r.get(11)?,
        last_seen: r.get(12)?,
        created: r.get(13)?,
        updated: r.get(14)?,
    })
}

const ALERT_COLS: &str = "a.id, a.fingerprint, a.detection, s.name, a.signature_id, a.signature,
    a.category, a.severity, a.action, a.src_ip, a.dest_ip, a.flow_id, a.techniques, a.misp,
    a.count, a.first_seen, a.last_seen, a.case_id, a.record";

fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    Ok(AlertRow {
        id: r.get(0)?,
        fingerprint: r.get(1)?,
        detection: r.get(2)?,
        sensor: r.get(3)?,
        signature_id: r.get(4)?,
        signature: r.get(5)?,
        category: r.get(6)?,
        severity: r.get(7)?,
        action: r.get(8)?,
        src_ip: r.get(9)?,
        dest_ip: r.get(10)?,
        flow_id: r.get(11)?,
        techniques: parse_vec(&r.get::<_, String>(12)?),
        misp: r
            .get::<_, Option<String>>(13)?
            .and_then(|m| serde_json::from_str(&m).ok()),
        count: r.get::<_, i64>(14)? as u64,
        first_seen: r.get(15)?,
        last_seen: r.get(16)?,
        case_id: r.get(17)?,
        record: serde_json::from_str(&r.get::<_, String>(18)?).unwrap_or(Value::Null),
    })
}

const FLOW_COLS: &str = "f.id, s.name, f.flow_id, f.ts_start, f.ts_end, f.src_ip, f.src_port,
    f.dest_ip, f.dest_port, f.proto, f.app_proto, f.pkts, f.bytes, f.verdict, f.alerted,
    f.community_id, ws.key, ws.kind, ws.name, ws.namespace, coalesce(f.src_labels, ws.labels),
    ws.critical, wd.key, wd.kind, wd.name, wd.namespace, coalesce(f.dest_labels, wd.labels),
    wd.critical";
const FLOW_FROM: &str = "flows f JOIN sensors s ON s.id = f.sensor
    JOIN workloads ws ON ws.id = f.src_wl JOIN workloads wd ON wd.id = f.dest_wl";

fn flow_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FlowRow> {
    let ep = |i: usize| -> rusqlite::Result<Endpoint> {
        Ok(Endpoint {
            key: r.get(i)?,
            kind: r.get(i + 1)?,
            name: r.get(i + 2)?,
            namespace: r.get(i + 3)?,
            labels: serde_json::from_str(&r.get::<_, String>(i + 4)?).unwrap_or_default(),
            critical: r.get(i + 5)?,
        })
    };
    Ok(FlowRow {
        id: r.get(0)?,
        sensor: r.get(1)?,
        flow_id: r.get(2)?,
        start: r.get(3)?,
        end: r.get(4)?,
        src_ip: r.get(5)?,
        src_port: r.get::<_, i64>(6)? as u16,
        dest_ip: r.get(7)?,
        dest_port: r.get::<_, i64>(8)? as u16,
        proto: r.get(9)?,
        app_proto: r.get(10)?,
        pkts: r.get::<_, i64>(11)? as u64,
        bytes: r.get::<_, i64>(12)? as u64,
        verdict: r.get(13)?,
        alerted: r.get(14)?,
        community_id: r.get(15)?,
        src: ep(16)?,
        dest: ep(22)?,
    })
}

fn node_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MapNode> {
    Ok(MapNode {
        key: r.get(0)?,
        kind: r.get(1)?,
        name: r.get(2)?,
        namespace: r.get(3)?,
        labels: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        critical: r.get(5)?,
        first_seen: r.get(6)?,
        last_seen: r.get(7)?,
    })
}

const EXPORT_COLS: &str =
    "id, target, case_id, alert_id, body, state, attempts, next_at, last_error, created, done_at";

fn export_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExportRow> {
    Ok(ExportRow {
        id: r.get(0)?,
        target: r.get(1)?,
        case_id: r.get(2)?,
        alert_id: r.get(3)?,
        body: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null),
        state: r.get(5)?,
        attempts: r.get::<_, i64>(6)? as u32,
        next_at: r.get(7)?,
        last_error: r.get(8)?,
        created: r.get(9)?,
        done_at: r.get(10)?,
    })
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

impl Store for SqliteStore {
    fn ingest(&mut self, batch: &IngestBatch) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let tx = self.conn.transaction()?;
        let mut sums = BatchSums::default();
        // The caches hold only committed rows: on failure they are dropped whole.
        let mut sensor_cache = std::mem::take(&mut self.sensor_ids);
        let mut wl_cache = std::mem::take(&mut self.workload_ids);
        let mut addr_cache = std::mem::take(&mut self.addresses);
        for rec in &batch.records {
            let sensor = sensor_id(&tx, &mut sensor_cache, &rec.sensor, rec.ts_ms)?;
            let digest = i64::from_le_bytes(rec.digest[..8].try_into().unwrap_or([0; 8]));
            let fresh = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO seen (sensor, seq, digest) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![sensor, rec.seq.map_or(-1, |s| s as i64), digest])?;
            let s = sums
                .sensors
                .entry(sensor)
                .or_insert((rec.ts_ms, rec.ts_ms, 0, 0));
            s.0 = s.0.min(rec.ts_ms);
            s.1 = s.1.max(rec.ts_ms);
            if fresh == 0 {
                s.3 += 1;
                report.duplicates += 1;
                continue;
            }
            s.2 += 1;
            report.stored += 1;
            let et = rec.value["event_type"].as_str().unwrap_or("");
            match et {
                "flow" | "netflow" => {
                    Self::ingest_flow(&tx, &mut wl_cache, &mut addr_cache, &mut sums, sensor, rec)?;
                    report.flows += 1;
                }
                "alert" => {
                    Self::ingest_event(&tx, sensor, rec, et)?;
                    Self::triage(&tx, sensor, rec, batch, &mut sums, &mut report)?;
                }
                "stats" => {
                    Self::ingest_stats(&tx, sensor, rec)?;
                    Self::ingest_event(&tx, sensor, rec, et)?;
                }
                "" => {
                    Self::ingest_event(&tx, sensor, rec, "unknown")?;
                }
                _ => {
                    Self::ingest_event(&tx, sensor, rec, et)?;
                }
            }
        }
        for (id, (first, last)) in &sums.workloads_seen {
            tx.prepare_cached(
                "UPDATE workloads SET first_seen = min(first_seen, ?2), last_seen = max(last_seen, ?3) WHERE id = ?1",
            )?
            .execute(params![id, first, last])?;
        }
        let mut tens: TenSums<'_> = HashMap::new();
        for ((minute, src, dest, service, verdict), (alerted, flows, bytes)) in &sums.edges {
            tx.prepare_cached(
                "INSERT INTO edges (minute, src, dest, service, verdict, alerted, flows, bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (minute, src, dest, service, verdict) DO UPDATE SET
                   alerted = max(alerted, excluded.alerted), flows = flows + excluded.flows,
                   bytes = bytes + excluded.bytes",
            )?
            .execute(params![
                minute,
                src,
                dest,
                service,
                verdict,
                alerted,
                *flows as i64,
                *bytes as i64
            ])?;
            let t = tens
                .entry((
                    minute.div_euclid(10),
                    *src,
                    *dest,
                    service.as_str(),
                    verdict.as_str(),
                ))
                .or_insert((false, 0, 0, *minute, *minute));
            t.0 |= *alerted;
            t.1 += flows;
            t.2 += bytes;
            t.3 = t.3.min(*minute);
            t.4 = t.4.max(*minute);
        }
        for ((bucket, src, dest, service, verdict), (alerted, flows, bytes, first, last)) in &tens {
            tx.prepare_cached(
                "INSERT INTO edges10 (bucket, src, dest, service, verdict, alerted, flows, bytes, first_minute, last_minute)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (bucket, src, dest, service, verdict) DO UPDATE SET
                   alerted = max(alerted, excluded.alerted), flows = flows + excluded.flows,
                   bytes = bytes + excluded.bytes, first_minute = min(first_minute, excluded.first_minute),
                   last_minute = max(last_minute, excluded.last_minute)",
            )?
            .execute(params![bucket, src, dest, service, verdict, alerted, *flows as i64, *bytes as i64, first, last])?;
        }
        for (id, (first, last, stored, dups)) in &sums.sensors {
            tx.prepare_cached(
                "UPDATE sensors SET first_seen = min(first_seen, ?5), last_seen = max(last_seen, ?2),
                   events = events + ?3, duplicates = duplicates + ?4 WHERE id = ?1",
            )?
            .execute(params![id, last, *stored as i64, *dups as i64, first])?;
        }
        for h in &batch.heads {
            let id = sensor_id(&tx, &mut sensor_cache, &h.sensor, batch.now_ms)?;
            tx.execute(
                "UPDATE sensors SET next_seq = ?2, prev = ?3, chain = ?4, chain_detail = ?5 WHERE id = ?1",
                params![id, h.next_seq as i64, h.prev, h.chain, h.detail],
            )?;
        }
        tx.commit()?;
        self.sensor_ids = sensor_cache;
        self.workload_ids = wl_cache;
        self.addresses = addr_cache;
        Ok(report)
    }

    fn sensor_heads(&self) -> Result<Vec<SensorHead>> {
        let mut st = self.conn.prepare(
            "SELECT name, next_seq, prev, chain, chain_detail FROM sensors ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SensorHead {
                sensor: r.get(0)?,
                next_seq: r.get::<_, i64>(1)? as u64,
                prev: r.get(2)?,
                chain: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn cases(&self, q: &CaseQuery) -> Result<Page<CaseSummary>> {
        let mut f = Filter::default();
        f.clauses.push("c.merged_into IS NULL".into());
        if let Some(s) = q.status {
            f.add("c.status = ?", s.name().to_string());
        }
        if let Some(s) = q.min_severity {
            f.add("c.severity >= ?", i64::from(s));
        }
        self.page(
            "cases c",
            SUMMARY_COLS,
            &f,
            "c.last_seen DESC, c.id DESC",
            &q.page,
            summary_row,
        )
    }

    fn case(&self, id: i64) -> Result<CaseDetail> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {SUMMARY_COLS}, c.reasons, c.misp, c.merged_into FROM cases c WHERE c.id = ?1"),
                [id],
                |r| {
                    Ok((
                        summary_row(r)?,
                        parse_vec(&r.get::<_, String>(15)?),
                        serde_json::from_str::<Vec<MispContext>>(&r.get::<_, String>(16)?)
                            .unwrap_or_default(),
                        r.get::<_, Option<i64>>(17)?,
                    ))
                },
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("case {id}")))?;
        let (summary, reasons, misp, merged_into) = row;
        let mut st = self.conn.prepare_cached(
            "SELECT id, data_type, data, kind, ioc, sighted, count, first_seen, last_seen
             FROM observables WHERE case_id = ?1 ORDER BY data_type, data LIMIT 1000",
        )?;
        let observables = st
            .query_map([id], |r| {
                Ok(Observable {
                    id: r.get(0)?,
                    data_type: r.get(1)?,
                    data: r.get(2)?,
                    kind: r.get(3)?,
                    ioc: r.get(4)?,
                    sighted: r.get(5)?,
                    count: r.get::<_, i64>(6)? as u64,
                    first_seen: r.get(7)?,
                    last_seen: r.get(8)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLS} FROM alerts a JOIN sensors s ON s.id = a.sensor
             WHERE a.case_id = ?1 ORDER BY a.first_seen, a.id LIMIT 1000"
        ))?;
        let alerts = st
            .query_map([id], alert_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut st = self.conn.prepare_cached(
            "SELECT id, author, ts, text FROM notes WHERE case_id = ?1 ORDER BY ts, id",
        )?;
        let notes = st
            .query_map([id], |r| {
                Ok(Note {
                    id: r.get(0)?,
                    author: r.get(1)?,
                    ts: r.get(2)?,
                    text: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut timeline: Vec<TimelineEntry> = alerts
            .iter()
            .map(|a| TimelineEntry {
                ts: a.first_seen,
                kind: "alert".into(),
                text: if a.count > 1 {
                    format!("{} (×{}, last {})", a.signature, a.count, a.last_seen)
                } else {
                    a.signature.clone()
                },
                actor: Some(a.sensor.clone()),
            })
            .collect();
        let mut st = self.conn.prepare_cached(
            "SELECT ts, action, detail, actor FROM audit WHERE case_id = ?1 ORDER BY ts, id LIMIT 1000",
        )?;
        for e in st.query_map([id], |r| {
            Ok(TimelineEntry {
                ts: r.get(0)?,
                kind: r.get(1)?,
                text: r.get(2)?,
                actor: Some(r.get(3)?),
            })
        })? {
            timeline.push(e?);
        }
        timeline.sort_by_key(|e| e.ts);
        Ok(CaseDetail {
            summary,
            reasons,
            misp,
            observables,
            alerts,
            notes,
            timeline,
            merged_into,
        })
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Page<AlertRow>> {
        let mut f = Filter::default();
        if let Some(c) = q.case {
            f.add("a.case_id = ?", c);
        }
        if let Some(d) = &q.detection {
            f.add("a.detection = ?", d.clone());
        }
        if let Some(s) = &q.sensor {
            f.add("s.name = ?", s.clone());
        }
        if let Some(ip) = &q.ip {
            f.add("(a.src_ip = ? OR a.dest_ip = ?)", ip.clone());
        }
        if q.intel == Some(true) {
            f.clauses.push("a.misp IS NOT NULL".into());
        } else if q.intel == Some(false) {
            f.clauses.push("a.misp IS NULL".into());
        }
        if let Some(s) = q.max_severity {
            f.add("a.severity <= ?", i64::from(s));
        }
        if let Some(t) = q.from {
            f.add("a.last_seen >= ?", t);
        }
        if let Some(t) = q.to {
            f.add("a.first_seen < ?", t);
        }
        self.page(
            "alerts a JOIN sensors s ON s.id = a.sensor",
            ALERT_COLS,
            &f,
            "a.last_seen DESC, a.id DESC",
            &q.page,
            alert_row,
        )
    }

    fn flows(&self, q: &FlowQuery) -> Result<Page<FlowRow>> {
        let mut f = Filter::default();
        if let Some(ip) = &q.ip {
            // Through the workloads that held the address (the flows table has no address
            // index: two fewer index writes per flow). Each branch is a range of one
            // (workload, start) index.
            let n = f.params.len();
            f.params.push(ip.clone().into());
            f.params.push(q.from.unwrap_or(i64::MIN).into());
            f.params.push(q.to.unwrap_or(i64::MAX).into());
            let (a, b, c) = (n + 1, n + 2, n + 3);
            f.clauses.push(format!(
                "f.id IN (SELECT id FROM flows WHERE src_wl IN (SELECT wl FROM addresses WHERE ip = ?{a})
                   AND src_ip = ?{a} AND ts_start >= ?{b} AND ts_start < ?{c}
                 UNION ALL SELECT id FROM flows WHERE dest_wl IN (SELECT wl FROM addresses WHERE ip = ?{a})
                   AND dest_ip = ?{a} AND ts_start >= ?{b} AND ts_start < ?{c})"
            ));
        }
        if let Some(k) = &q.identity {
            let Some(id) = self.workload_by_key(k)? else {
                return Ok(Page {
                    items: Vec::new(),
                    total: 0,
                    offset: q.page.offset,
                    limit: q.page.limit() as u32,
                });
            };
            match &q.peer {
                Some(p) => {
                    let pid = self.workload_by_key(p)?.unwrap_or(-1);
                    f.add("f.src_wl = ?", id);
                    f.add("f.dest_wl = ?", pid);
                }
                None => f.add("(f.src_wl = ? OR f.dest_wl = ?)", id),
            }
        }
        if let Some(p) = q.port {
            f.add("(f.dest_port = ? OR f.src_port = ?)", i64::from(p));
        }
        if let Some(a) = &q.app_proto {
            f.add("f.app_proto = ?", a.clone());
        }
        if let Some(t) = q.from {
            f.add("f.ts_start >= ?", t);
        }
        if let Some(t) = q.to {
            f.add("f.ts_start < ?", t);
        }
        self.page(
            FLOW_FROM,
            FLOW_COLS,
            &f,
            "f.ts_start DESC, f.id DESC",
            &q.page,
            flow_row,
        )
    }

    fn observable_links(&self, data_type: &str, data: &str, page: &PageReq) -> Result<Links> {
        let mut flows = Vec::new();
        let mut flow_ids: Vec<i64> = Vec::new();
        match data_type {
            "ip" => {
                flows = self
                    .flows(&FlowQuery {
                        ip: Some(data.to_string()),
                        page: *page,
                        ..FlowQuery::default()
                    })?
                    .items;
            }
            "other" => {
                flows = self
                    .flows(&FlowQuery {
                        identity: Some(data.to_string()),
                        page: *page,
                        ..FlowQuery::default()
                    })?
                    .items;
            }
            "domain" => {
                let hits = self.search_name(data, i64::MIN, i64::MAX, page)?;
                flow_ids.extend(hits.items.iter().filter_map(|h| h.flow_id));
                // Each name's flow, found through its client's workloads around that time.
                let mut st = self.conn.prepare_cached(&format!(
                    "SELECT {FLOW_COLS} FROM {FLOW_FROM} WHERE f.id IN (
                       SELECT id FROM flows WHERE src_wl IN (SELECT wl FROM addresses WHERE ip = ?2)
                         AND ts_start >= ?3 - 86400000 AND ts_start <= ?3 + 60000 AND flow_id = ?1)
                     LIMIT 4"
                ))?;
                for h in &hits.items {
                    if let Some(id) = h.flow_id {
                        for r in st.query_map(params![id, h.src_ip, h.ts], flow_row)? {
                            flows.push(r?);
                        }
                    }
                }
            }
            _ => {}
        }
        flow_ids.extend(flows.iter().filter_map(|f| f.flow_id));
        flow_ids.sort_unstable();
        flow_ids.dedup();
        flow_ids.truncate(page.limit() as usize);
        let mut events = Vec::new();
        let mut st = self.conn.prepare_cached(
            "SELECT e.id, s.name, e.ts, e.event_type, e.flow_id, e.record FROM events e
             JOIN sensors s ON s.id = e.sensor WHERE e.flow_id = ?1 ORDER BY e.ts LIMIT 50",
        )?;
        let ev = |r: &rusqlite::Row<'_>| {
            Ok(EventRow {
                id: r.get(0)?,
                sensor: r.get(1)?,
                ts: r.get(2)?,
                event_type: r.get(3)?,
                flow_id: r.get(4)?,
                record: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
            })
        };
        for id in &flow_ids {
            for r in st.query_map([id], ev)? {
                events.push(r?);
                if events.len() >= page.limit() as usize {
                    break;
                }
            }
        }
        if data_type == "hash" {
            // Fingerprints are in protocol records only: the alerts of the cases that hold it.
            let mut st = self.conn.prepare_cached(
                "SELECT e.id, s.name, e.ts, e.event_type, e.flow_id, e.record FROM events e
                 JOIN sensors s ON s.id = e.sensor
                 WHERE e.event_type IN ('tls', 'alert', 'quic') AND instr(e.record, ?1) > 0
                 ORDER BY e.ts DESC LIMIT ?2",
            )?;
            for r in st.query_map(params![data, page.limit()], ev)? {
                events.push(r?);
            }
        }
        Ok(Links { flows, events })
    }

    fn map(&self, from: i64, to: i64, max_edges: usize) -> Result<MapView> {
        let (m0, m1) = (
            from.div_euclid(60_000),
            to.saturating_add(59_999).div_euclid(60_000),
        );
        // One range scan of the per-minute rows (primary key order), summed here: cheaper
        // than SQL's GROUP BY, which sorts every row of the window first.
        struct Agg {
            alerted: bool,
            flows: u64,
            bytes: u64,
            first: i64,
            last: i64,
        }
        let mut labels: Vec<String> = Vec::new();
        let mut label_ids: hashbrown::HashMap<String, u32> = hashbrown::HashMap::new();
        let mut agg: hashbrown::HashMap<(i64, i64, u32, u32), Agg> = hashbrown::HashMap::new();
        // Whole ten-minute buckets from `edges10`, the minutes at either end from `edges`.
        let (b0, b1) = ((m0 + 9).div_euclid(10), m1.div_euclid(10));
        let spans: Vec<(&str, i64, i64)> = if b1 > b0 {
            vec![("m", m0, b0 * 10), ("b", b0, b1), ("m", b1 * 10, m1)]
        } else {
            vec![("m", m0, m1)]
        };
        for (kind, lo, hi) in spans {
            if lo >= hi {
                continue;
            }
            let mut st = self.conn.prepare_cached(if kind == "m" {
                "SELECT minute, src, dest, service, verdict, alerted, flows, bytes, minute FROM edges
                 WHERE minute >= ?1 AND minute < ?2"
            } else {
                "SELECT first_minute, src, dest, service, verdict, alerted, flows, bytes, last_minute FROM edges10
                 WHERE bucket >= ?1 AND bucket < ?2"
            })?;
            let mut rows = st.query(params![lo, hi])?;
            while let Some(r) = rows.next()? {
                let mut intern = |i: usize| -> rusqlite::Result<u32> {
                    let t = r.get_ref(i)?.as_str().unwrap_or("");
                    Ok(match label_ids.get(t) {
                        Some(&x) => x,
                        None => {
                            let x = labels.len() as u32;
                            labels.push(t.to_string());
                            label_ids.insert(t.to_string(), x);
                            x
                        }
                    })
                };
                let (service, verdict) = (intern(3)?, intern(4)?);
                let (first, last): (i64, i64) = (r.get(0)?, r.get(8)?);
                let a = agg
                    .entry((r.get(1)?, r.get(2)?, service, verdict))
                    .or_insert(Agg {
                        alerted: false,
                        flows: 0,
                        bytes: 0,
                        first,
                        last,
                    });
                a.alerted |= r.get::<_, bool>(5)?;
                a.flows += r.get::<_, i64>(6)? as u64;
                a.bytes += r.get::<_, i64>(7)? as u64;
                a.first = a.first.min(first);
                a.last = a.last.max(last);
            }
        }
        let mut all: Vec<((i64, i64, u32, u32), Agg)> = agg.into_iter().collect();
        all.sort_unstable_by(|x, y| {
            (y.1.alerted, y.1.flows, x.0).cmp(&(x.1.alerted, x.1.flows, y.0))
        });
        let truncated = all.len() > max_edges;
        all.truncate(max_edges);
        let mut ids: Vec<i64> = all.iter().flat_map(|((s, d, _, _), _)| [*s, *d]).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut nodes = Vec::with_capacity(ids.len());
        let mut keys: HashMap<i64, usize> = HashMap::with_capacity(ids.len());
        if ids.len() > 256 {
            // Many ends: one pass over the workloads beats a lookup each.
            let want: std::collections::HashSet<i64> = ids.iter().copied().collect();
            let mut st = self.conn.prepare_cached(
                "SELECT key, kind, name, namespace, labels, critical, first_seen, last_seen, id FROM workloads",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let id: i64 = r.get(8)?;
                if want.contains(&id) {
                    keys.insert(id, nodes.len());
                    nodes.push(node_row(r)?);
                }
            }
        } else {
            let mut st = self.conn.prepare_cached(
                "SELECT key, kind, name, namespace, labels, critical, first_seen, last_seen FROM workloads WHERE id = ?1",
            )?;
            for id in ids {
                keys.insert(id, nodes.len());
                nodes.push(st.query_row([id], node_row)?);
            }
        }
        let key = |id: &i64| {
            keys.get(id)
                .map(|&i| nodes[i].key.clone())
                .unwrap_or_default()
        };
        let edges = all
            .iter()
            .map(|((s, d, service, verdict), a)| MapEdge {
                src: key(s),
                dest: key(d),
                service: labels[*service as usize].clone(),
                verdict: labels[*verdict as usize].clone(),
                alerted: a.alerted,
                flows: a.flows,
                bytes: a.bytes,
                first_seen: a.first * 60_000,
                last_seen: a.last * 60_000 + 59_999,
            })
            .collect();
        Ok(MapView {
            from,
            to,
            nodes,
            edges,
            truncated,
        })
    }

    fn search_name(&self, name: &str, from: i64, to: i64, page: &PageReq) -> Result<Page<NameHit>> {
        let mut f = Filter::default();
        f.add(
            "n.name = ?",
            name.trim_end_matches('.').to_ascii_lowercase(),
        );
        f.add("n.ts >= ?", from);
        f.add("n.ts < ?", to);
        self.page(
            "names n JOIN sensors s ON s.id = n.sensor",
            "n.name, n.via, n.ts, n.src_ip, n.dest_ip, n.flow_id, s.name",
            &f,
            "n.ts DESC",
            page,
            |r| {
                Ok(NameHit {
                    name: r.get(0)?,
                    via: r.get(1)?,
                    ts: r.get(2)?,
                    src_ip: r.get(3)?,
                    dest_ip: r.get(4)?,
                    flow_id: r.get(5)?,
                    sensor: r.get(6)?,
                })
            },
        )
    }

    fn sensors(&self) -> Result<Vec<SensorRow>> {
        let mut st = self.conn.prepare(
            "SELECT name, first_seen, last_seen, events, duplicates, next_seq, chain, chain_detail,
                    drops, eps, ratio, stats FROM sensors ORDER BY name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(SensorRow {
                name: r.get(0)?,
                first_seen: r.get(1)?,
                last_seen: r.get(2)?,
                events: r.get::<_, i64>(3)? as u64,
                duplicates: r.get::<_, i64>(4)? as u64,
                next_seq: r.get::<_, i64>(5)? as u64,
                chain: r.get(6)?,
                chain_detail: r.get(7)?,
                drops: r.get::<_, i64>(8)? as u64,
                events_per_sec: r.get(9)?,
                protection_ratio: r.get(10)?,
                last_stats: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn workloads(&self, q: &WorkloadQuery) -> Result<Page<WorkloadRow>> {
        let mut f = Filter::default();
        if let Some(k) = &q.key {
            f.add("w.key = ?", k.clone());
        }
        if let Some(t) = q.from {
            f.add("w.last_seen >= ?", t);
        }
        if let Some(t) = q.to {
            f.add("w.first_seen < ?", t);
        }
        self.page(
            "workloads w",
            "w.key, w.kind, w.name, w.namespace, w.labels, w.critical, w.first_seen, w.last_seen,
             (SELECT count(*) FROM flows f WHERE f.src_wl = w.id) + (SELECT count(*) FROM flows f WHERE f.dest_wl = w.id)",
            &f,
            "w.last_seen DESC",
            &q.page,
            |r| {
                Ok(WorkloadRow {
                    node: node_row(r)?,
                    flows: r.get::<_, i64>(8)? as u64,
                })
            },
        )
    }

    fn update_case(
        &mut self,
        id: i64,
        c: &CaseChange,
        actor: &str,
        now: i64,
    ) -> Result<CaseDetail> {
        let before = self.case_exists(id)?;
        for (name, v) in [("tlp", c.tlp), ("pap", c.pap)] {
            if v.is_some_and(|v| v > 3) {
                return Err(StoreError::Invalid(format!(
                    "{name} is 0 (white) to 3 (red)"
                )));
            }
        }
        let tx = self.conn.transaction()?;
        let mut what = Vec::new();
        if let Some(s) = c.status {
            tx.execute(
                "UPDATE cases SET status = ?2 WHERE id = ?1",
                params![id, s.name()],
            )?;
            Self::audit_tx(
                &tx,
                actor,
                "status",
                Some(id),
                &format!("status {} -> {}", before.name(), s.name()),
                now,
            )?;
        }
        if let Some(a) = &c.assignee {
            let a = (!a.is_empty()).then_some(a.as_str());
            tx.execute(
                "UPDATE cases SET assignee = ?2 WHERE id = ?1",
                params![id, a],
            )?;
            what.push(format!("assignee {}", a.unwrap_or("(none)")));
        }
        if let Some(t) = &c.tags {
            tx.execute(
                "UPDATE cases SET tags = ?2 WHERE id = ?1",
                params![id, json_str(t)],
            )?;
            what.push(format!("tags {}", t.join(",")));
        }
        if let Some(t) = c.tlp {
            tx.execute("UPDATE cases SET tlp = ?2 WHERE id = ?1", params![id, t])?;
            what.push(format!("tlp {t}"));
        }
        if let Some(t) = c.pap {
            tx.execute("UPDATE cases SET pap = ?2 WHERE id = ?1", params![id, t])?;
            what.push(format!("pap {t}"));
        }
        if let Some(t) = &c.title {
            tx.execute("UPDATE cases SET title = ?2 WHERE id = ?1", params![id, t])?;
            what.push(format!("title {t}"));
        }
        if !what.is_empty() {
            Self::audit_tx(&tx, actor, "update", Some(id), &what.join("; "), now)?;
        }
        tx.execute(
            "UPDATE cases SET updated = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        tx.commit()?;
        self.case(id)
    }

    fn add_note(&mut self, id: i64, text: &str, actor: &str, now: i64) -> Result<CaseDetail> {
        self.case_exists(id)?;
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO notes (case_id, author, ts, text) VALUES (?1, ?2, ?3, ?4)",
            params![id, actor, now, text],
        )?;
        let short: String = text.chars().take(200).collect();
        Self::audit_tx(&tx, actor, "note", Some(id), &short, now)?;
        tx.execute(
            "UPDATE cases SET updated = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        tx.commit()?;
        self.case(id)
    }

    fn merge_cases(&mut self, into: i64, from: i64, actor: &str, now: i64) -> Result<CaseDetail> {
        if into == from {
            return Err(StoreError::Invalid(
                "a case cannot be merged into itself".into(),
            ));
        }
        // A merge moves alerts into a live case: a case already merged elsewhere or closed
        // takes none, and a case already merged has nothing left to give.
        let target = self.case_exists(into)?;
        if matches!(target, Status::Duplicated | Status::Closed) {
            return Err(StoreError::Invalid(format!(
                "case {into} is {}: reopen it before merging into it",
                target.name()
            )));
        }
        if self.case_exists(from)? == Status::Duplicated {
            return Err(StoreError::Invalid(format!(
                "case {from} is already merged into another case"
            )));
        }
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE alerts SET case_id = ?1 WHERE case_id = ?2",
            params![into, from],
        )?;
        tx.execute(
            "INSERT INTO observables (case_id, data_type, data, kind, ioc, sighted, count, first_seen, last_seen)
             SELECT ?1, data_type, data, kind, ioc, sighted, count, first_seen, last_seen FROM observables WHERE case_id = ?2
             ON CONFLICT (case_id, data_type, data) DO UPDATE SET count = count + excluded.count,
               ioc = max(ioc, excluded.ioc), sighted = max(sighted, excluded.sighted),
               first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)",
            params![into, from],
        )?;
        tx.execute("DELETE FROM observables WHERE case_id = ?1", [from])?;
        tx.execute(
            "UPDATE notes SET case_id = ?1 WHERE case_id = ?2",
            params![into, from],
        )?;
        let (r, t, m, sev, crit, fs, ls): (String, String, String, i64, bool, i64, i64) = tx.query_row(
            "SELECT reasons, techniques, misp, severity, critical, first_seen, last_seen FROM cases WHERE id = ?1",
            [from],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
        )?;
        let (r0, t0, m0): (String, String, String) = tx.query_row(
            "SELECT reasons, techniques, misp FROM cases WHERE id = ?1",
            [into],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut reasons = parse_vec(&r0);
        reasons.push(format!("merged case {from} by {actor}"));
        reasons.extend(parse_vec(&r));
        let mut techniques = parse_vec(&t0);
        for x in parse_vec(&t) {
            if !techniques.contains(&x) {
                techniques.push(x);
            }
        }
        let mut misp: Vec<MispContext> = serde_json::from_str(&m0).unwrap_or_default();
        for x in serde_json::from_str::<Vec<MispContext>>(&m).unwrap_or_default() {
            if !misp.contains(&x) {
                misp.push(x);
            }
        }
        tx.execute(
            "UPDATE cases SET reasons = ?2, techniques = ?3, misp = ?4, severity = max(severity, ?5),
               critical = max(critical, ?6), first_seen = min(first_seen, ?7), last_seen = max(last_seen, ?8),
               updated = ?9 WHERE id = ?1",
            params![into, json_str(&reasons), json_str(&techniques), json_str(&misp), sev, crit, fs, ls, now],
        )?;
        tx.execute(
            "UPDATE cases SET status = 'Duplicated', merged_into = ?2, updated = ?3 WHERE id = ?1",
            params![from, into, now],
        )?;
        Self::audit_tx(
            &tx,
            actor,
            "merge",
            Some(into),
            &format!("case {from} merged into {into}"),
            now,
        )?;
        Self::audit_tx(
            &tx,
            actor,
            "merge",
            Some(from),
            &format!("merged into case {into}"),
            now,
        )?;
        tx.commit()?;
        self.case(into)
    }

    fn detach_alert(&mut self, alert: i64, actor: &str, now: i64) -> Result<CaseDetail> {
        let row: Option<DetachRow> = self
            .conn
            .query_row(
                "SELECT a.case_id, a.signature, a.record, s.name, a.severity, a.first_seen, a.last_seen
                 FROM alerts a JOIN sensors s ON s.id = a.sensor WHERE a.id = ?1",
                [alert],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
            )
            .optional()?;
        let Some((old, signature, record, sensor, sev, first, last)) = row else {
            return Err(StoreError::NotFound(format!("alert {alert}")));
        };
        let value: Value = serde_json::from_str(&record).unwrap_or(Value::Null);
        let facts = AlertFacts::from_record(&sensor, &value);
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO cases (title, status, severity, reasons, techniques, misp, first_seen, last_seen, created, updated)
             VALUES (?1, 'New', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
            params![
                signature,
                case_severity(sev.clamp(0, 255) as u8, false),
                json_str(&vec![format!("alert {alert} detached from case {} by {actor}", old.unwrap_or(0))]),
                json_str(&facts.techniques),
                json_str(&facts.misp.iter().collect::<Vec<_>>()),
                first,
                last,
                now
            ],
        )?;
        let new = tx.last_insert_rowid();
        tx.execute(
            "UPDATE alerts SET case_id = ?2 WHERE id = ?1",
            params![alert, new],
        )?;
        for o in &facts.observables {
            tx.execute(
                "INSERT OR IGNORE INTO observables (case_id, data_type, data, kind, ioc, count, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7)",
                params![new, o.data_type, o.data, o.kind, o.ioc, first, last],
            )?;
        }
        if let Some(o) = old {
            Self::audit_tx(
                &tx,
                actor,
                "detach",
                Some(o),
                &format!("alert {alert} detached into case {new}"),
                now,
            )?;
            tx.execute(
                "UPDATE cases SET updated = ?2 WHERE id = ?1",
                params![o, now],
            )?;
        }
        Self::audit_tx(
            &tx,
            actor,
            "detach",
            Some(new),
            &format!("opened from alert {alert} of case {}", old.unwrap_or(0)),
            now,
        )?;
        tx.commit()?;
        self.case(new)
    }

    fn audit(&self, page: &PageReq) -> Result<Page<AuditRow>> {
        self.page(
            "audit a",
            "a.id, a.ts, a.actor, a.action, a.case_id, a.detail",
            &Filter::default(),
            "a.id DESC",
            page,
            |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    ts: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    case_id: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
        )
    }

    fn record_audit(
        &mut self,
        actor: &str,
        action: &str,
        case: Option<i64>,
        detail: &str,
        now: i64,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT INTO audit (ts, actor, action, case_id, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![now, actor, action, case, detail],
        )?;
        Ok(())
    }

    fn create_token(&mut self, t: &NewToken, now: i64) -> Result<()> {
        self.conn.execute(
            "INSERT INTO tokens (id, hash, role, name, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![t.id, t.hash, t.role.name(), t.name, now],
        )?;
        Ok(())
    }

    fn token(&self, id: &str) -> Result<Option<TokenRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, hash, role, name, created, revoked FROM tokens WHERE id = ?1",
                [id],
                token_row,
            )
            .optional()?)
    }

    fn tokens(&self) -> Result<Vec<TokenRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, hash, role, name, created, revoked FROM tokens ORDER BY created",
        )?;
        let rows = st.query_map([], token_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_token(&mut self, id: &str, now: i64) -> Result<()> {
        let n = self.conn.execute(
            "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            params![id, now],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        Ok(())
    }

    fn enqueue_export(&mut self, e: &NewExport, now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO exports (target, case_id, alert_id, body, state, next_at, created)
             VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?5)",
            params![e.target, e.case_id, e.alert_id, e.body.to_string(), now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    fn due_exports(&self, now: i64, limit: usize) -> Result<Vec<ExportRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {EXPORT_COLS} FROM exports WHERE state = 'queued' AND next_at <= ?1 ORDER BY next_at, id LIMIT ?2"
        ))?;
        let rows = st.query_map(params![now, limit as i64], export_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn export_outcome(&mut self, id: i64, o: &ExportOutcome, now: i64) -> Result<()> {
        let n = match o {
            ExportOutcome::Sent => self.conn.execute(
                "UPDATE exports SET state = 'sent', attempts = attempts + 1, done_at = ?2, last_error = NULL WHERE id = ?1",
                params![id, now],
            )?,
            ExportOutcome::Retry { at_ms, error } => self.conn.execute(
                "UPDATE exports SET attempts = attempts + 1, next_at = ?2, last_error = ?3 WHERE id = ?1",
                params![id, at_ms, error],
            )?,
            ExportOutcome::Failed { error } => self.conn.execute(
                "UPDATE exports SET state = 'failed', attempts = attempts + 1, done_at = ?2, last_error = ?3 WHERE id = ?1",
                params![id, now, error],
            )?,
        };
        if n == 0 {
            return Err(StoreError::NotFound(format!("export {id}")));
        }
        Ok(())
    }

    fn exports(&self, page: &PageReq) -> Result<Page<ExportRow>> {
        self.page(
            "exports",
            EXPORT_COLS,
            &Filter::default(),
            "id DESC",
            page,
            export_row,
        )
    }

    fn unexported_cases(
        &self,
        target: &str,
        min_severity: u8,
        settled_before: i64,
        limit: usize,
    ) -> Result<Vec<i64>> {
        let mut st = self.conn.prepare_cached(
            "SELECT c.id FROM cases c WHERE c.merged_into IS NULL AND c.severity >= ?2 AND c.updated < ?3
               AND NOT EXISTS (SELECT 1 FROM exports e WHERE e.case_id = c.id AND e.target = ?1)
             ORDER BY c.id LIMIT ?4",
        )?;
        let rows = st.query_map(
            params![target, min_severity, settled_before, limit as i64],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn unsighted_alerts(&self, limit: usize) -> Result<Vec<AlertRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLS} FROM alerts a JOIN sensors s ON s.id = a.sensor
             WHERE a.misp IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM exports e WHERE e.alert_id = a.id AND e.target = 'misp-sighting')
             ORDER BY a.id LIMIT ?1"
        ))?;
        let rows = st.query_map([limit as i64], alert_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn prune(&mut self, r: &Retention, now: i64) -> Result<PruneReport> {
        let mut rep = PruneReport::default();
        let tx = self.conn.transaction()?;
        if r.dedupe_window > 0 {
            // Per sensor, a range of its primary key: never a scan of the whole table.
            let heads: Vec<(i64, i64)> = tx
                .prepare("SELECT id, next_seq FROM sensors")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (sensor, next) in heads {
                let cut = next.saturating_sub(r.dedupe_window as i64);
                if cut > 0 {
                    rep.seen += tx.execute(
                        "DELETE FROM seen WHERE sensor = ?1 AND seq >= 0 AND seq < ?2",
                        params![sensor, cut],
                    )? as u64;
                }
            }
        }
        if r.flows_age_ms > 0 {
            rep.flows += tx.execute(
                "DELETE FROM flows WHERE ts_start < ?1",
                [now - r.flows_age_ms],
            )? as u64;
        }
        if r.flows_rows > 0 {
            rep.flows += tx.execute(
                "DELETE FROM flows WHERE id <= (SELECT max(id) FROM flows) - ?1",
                [r.flows_rows as i64],
            )? as u64;
        }
        if r.events_age_ms > 0 {
            let cut = now - r.events_age_ms;
            rep.events += tx.execute("DELETE FROM events WHERE ts < ?1", [cut])? as u64;
            tx.execute("DELETE FROM names WHERE ts < ?1", [cut])?;
        }
        if r.events_rows > 0 {
            rep.events += tx.execute(
                "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?1",
                [r.events_rows as i64],
            )? as u64;
            tx.execute(
                "DELETE FROM names WHERE event NOT IN (SELECT id FROM events)",
                [],
            )?;
        }
        if r.edges_age_ms > 0 {
            let cut = (now - r.edges_age_ms).div_euclid(60_000);
            rep.edges += tx.execute("DELETE FROM edges WHERE minute < ?1", [cut])? as u64;
            tx.execute(
                "DELETE FROM edges10 WHERE bucket < ?1",
                [cut.div_euclid(10)],
            )?;
        }
        if r.alerts_age_ms > 0 {
            // Alerts of open cases stay: an analyst is working on them.
            rep.alerts += tx.execute(
                "DELETE FROM alerts WHERE last_seen < ?1 AND (case_id IS NULL OR case_id IN
                   (SELECT id FROM cases WHERE status NOT IN ('New', 'InProgress')))",
                [now - r.alerts_age_ms],
            )? as u64;
        }
        tx.commit()?;
        Ok(rep)
    }

    fn usage(&self) -> Result<Usage> {
        let mut rows = BTreeMap::new();
        for t in [
            "flows",
            "events",
            "names",
            "edges",
            "edges10",
            "alerts",
            "cases",
            "observables",
            "workloads",
            "notes",
            "audit",
            "exports",
            "sensors",
            "seen",
        ] {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))?;
            rows.insert(t.to_string(), n as u64);
        }
        let page_count: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let page_size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        let wal = std::fs::metadata(self.path.with_extension("sqlite-wal")).map_or(0, |m| m.len());
        Ok(Usage {
            rows,
            bytes: (page_count * page_size) as u64 + wal,
        })
    }
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        hash: r.get(1)?,
        role: Role::parse(&r.get::<_, String>(2)?).unwrap_or(Role::Viewer),
        name: r.get(3)?,
        created: r.get(4)?,
        revoked: r.get(5)?,
    })
}
