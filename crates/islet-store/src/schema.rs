//! The SQLite schema, as numbered migrations. `PRAGMA user_version` records how many have been
//! applied; opening a store applies the rest in one transaction each. A migration is never
//! edited once released: a change is a new migration.

/// Migrations in order; index + 1 is the version each one brings the database to.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
CREATE TABLE sensors (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    events INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0,
    next_seq INTEGER NOT NULL DEFAULT 0,
    prev TEXT NOT NULL DEFAULT '',
    chain TEXT NOT NULL DEFAULT 'unchained',
    chain_detail TEXT NOT NULL DEFAULT '',
    drops INTEGER NOT NULL DEFAULT 0,
    eps REAL NOT NULL DEFAULT 0,
    ratio REAL,
    stats TEXT NOT NULL DEFAULT '{}',
    stats_ts INTEGER NOT NULL DEFAULT 0,
    stats_events INTEGER NOT NULL DEFAULT 0
);
-- (sensor, seq, digest prefix): a record already kept.
CREATE TABLE seen (
    sensor INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    digest INTEGER NOT NULL,
    PRIMARY KEY (sensor, seq, digest)
) WITHOUT ROWID;
CREATE TABLE workloads (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    namespace TEXT NOT NULL,
    labels TEXT NOT NULL,
    critical INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE TABLE flows (
    id INTEGER PRIMARY KEY,
    sensor INTEGER NOT NULL,
    flow_id INTEGER,
    ts_start INTEGER NOT NULL,
    ts_end INTEGER NOT NULL,
    src_ip TEXT NOT NULL,
    src_port INTEGER NOT NULL,
    dest_ip TEXT NOT NULL,
    dest_port INTEGER NOT NULL,
    proto TEXT NOT NULL,
    app_proto TEXT,
    pkts INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    verdict TEXT,
    alerted INTEGER NOT NULL,
    community_id TEXT,
    src_wl INTEGER NOT NULL,
    dest_wl INTEGER NOT NULL,
    -- the ends' labels as they were at the flow's start (NULL: as the workload has them)
    src_labels TEXT,
    dest_labels TEXT
);
CREATE INDEX flows_src_ip ON flows (src_ip, ts_start);
CREATE INDEX flows_dest_ip ON flows (dest_ip, ts_start);
CREATE INDEX flows_src_wl ON flows (src_wl, ts_start);
CREATE INDEX flows_dest_wl ON flows (dest_wl, ts_start);
CREATE INDEX flows_ts ON flows (ts_start);
CREATE INDEX flows_flow_id ON flows (flow_id);
-- protocol events, anomalies and alerts as the sensor wrote them
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    sensor INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    flow_id INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX events_flow_id ON events (flow_id);
CREATE INDEX events_ts ON events (ts);
-- names seen (DNS queries, TLS SNI, HTTP Host), for "who resolved or connected to Z"
CREATE TABLE names (
    name TEXT NOT NULL,
    via TEXT NOT NULL,
    ts INTEGER NOT NULL,
    src_ip TEXT NOT NULL,
    dest_ip TEXT NOT NULL,
    flow_id INTEGER,
    sensor INTEGER NOT NULL,
    event INTEGER NOT NULL
);
CREATE INDEX names_name ON names (name, ts);
CREATE INDEX names_ts ON names (ts);
CREATE TABLE edges (
    minute INTEGER NOT NULL,
    src INTEGER NOT NULL,
    dest INTEGER NOT NULL,
    service TEXT NOT NULL,
    verdict TEXT NOT NULL,
    alerted INTEGER NOT NULL,
    flows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (minute, src, dest, service, verdict)
) WITHOUT ROWID;
CREATE TABLE cases (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    severity INTEGER NOT NULL,
    assignee TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    tlp INTEGER NOT NULL DEFAULT 2,
    pap INTEGER NOT NULL DEFAULT 2,
    reasons TEXT NOT NULL DEFAULT '[]',
    techniques TEXT NOT NULL DEFAULT '[]',
    misp TEXT NOT NULL DEFAULT '[]',
    critical INTEGER NOT NULL DEFAULT 0,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    merged_into INTEGER
);
CREATE INDEX cases_updated ON cases (status, last_seen);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    detection TEXT NOT NULL,
    sensor INTEGER NOT NULL,
    signature_id INTEGER NOT NULL,
    signature TEXT NOT NULL,
    category TEXT NOT NULL,
    severity INTEGER NOT NULL,
    action TEXT NOT NULL,
    src_ip TEXT,
    dest_ip TEXT,
    flow_id INTEGER,
    techniques TEXT NOT NULL,
    misp TEXT,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    case_id INTEGER,
    record TEXT NOT NULL
);
CREATE INDEX alerts_case ON alerts (case_id);
CREATE INDEX alerts_last_seen ON alerts (last_seen);
CREATE TABLE observables (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL,
    data_type TEXT NOT NULL,
    data TEXT NOT NULL,
    kind TEXT NOT NULL,
    ioc INTEGER NOT NULL,
    sighted INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    UNIQUE (case_id, data_type, data)
);
CREATE INDEX observables_data ON observables (data_type, data);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL,
    author TEXT NOT NULL,
    ts INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX notes_case ON notes (case_id);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    case_id INTEGER,
    detail TEXT NOT NULL
);
CREATE INDEX audit_case ON audit (case_id);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
);
CREATE TABLE exports (
    id INTEGER PRIMARY KEY,
    target TEXT NOT NULL,
    case_id INTEGER,
    alert_id INTEGER,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL,
    last_error TEXT,
    created INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX exports_due ON exports (state, next_at);
"#,
    // 2: addresses instead of address indexes on flows, ten-minute edge sums, indexes for
    // alert-to-flow links and the export queue; existing rows are carried over.
    r#"
DROP INDEX IF EXISTS flows_src_ip;
DROP INDEX IF EXISTS flows_dest_ip;
DROP INDEX IF EXISTS flows_flow_id;
-- Which workloads held an address: flows are found by address through their ends' workloads.
CREATE TABLE addresses (
    ip TEXT NOT NULL,
    wl INTEGER NOT NULL,
    PRIMARY KEY (ip, wl)
) WITHOUT ROWID;
INSERT OR IGNORE INTO addresses (ip, wl) SELECT src_ip, src_wl FROM flows;
INSERT OR IGNORE INTO addresses (ip, wl) SELECT dest_ip, dest_wl FROM flows;
-- The same edges summed per ten minutes: maps of long windows read these.
CREATE TABLE edges10 (
    bucket INTEGER NOT NULL,
    src INTEGER NOT NULL,
    dest INTEGER NOT NULL,
    service TEXT NOT NULL,
    verdict TEXT NOT NULL,
    alerted INTEGER NOT NULL,
    flows INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    first_minute INTEGER NOT NULL,
    last_minute INTEGER NOT NULL,
    PRIMARY KEY (bucket, src, dest, service, verdict)
) WITHOUT ROWID;
INSERT INTO edges10 (bucket, src, dest, service, verdict, alerted, flows, bytes, first_minute, last_minute)
    SELECT minute / 10, src, dest, service, verdict, max(alerted), sum(flows), sum(bytes), min(minute), max(minute)
    FROM edges GROUP BY minute / 10, src, dest, service, verdict;
CREATE INDEX alerts_flow_id ON alerts (flow_id);
CREATE INDEX exports_case ON exports (case_id, target);
CREATE INDEX exports_alert ON exports (alert_id, target);
"#,
    // 3: every chained record kept as its sensor sealed it, so a sensor's chain can be exported
    // from the store and checked again (`islet log verify`): one row per sensor and ingest
    // batch holding the batch's new records of that sensor, one line each, in arrival order
    // (which is chain order: the console takes records only in order).
    r#"
CREATE TABLE sealed (
    id INTEGER PRIMARY KEY,
    sensor INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    ts_max INTEGER NOT NULL,
    records INTEGER NOT NULL,
    lines BLOB NOT NULL
);
CREATE INDEX sealed_sensor ON sealed (sensor, last_seq);
"#,
    // 4: sealed blocks compressed and framed by length. `codec` 0: the lines as they were
    // (schema 3, one a line); 1: an LZ4 block of records, each a little-endian u32 length and
    // the record's bytes (a record may hold any byte, a newline too); `raw_len`: the block's
    // length before compression.
    r#"
ALTER TABLE sealed ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sealed ADD COLUMN raw_len INTEGER NOT NULL DEFAULT 0;
"#,
];

#[cfg(test)]
mod tests {
    use crate::{EvidenceStore as _, FlowQuery, SqliteStore, Sync};

    /// A store made by the first release (schema 1) with a flow in it opens under the current
    /// schema: the flow is found by address and is on the map.
    #[test]
    fn a_schema_1_store_migrates_with_its_rows() {
        let d = tempfile::tempdir().expect("tmp");
        let p = d.path().join("s.sqlite");
        {
            let c = rusqlite::Connection::open(&p).expect("open");
            c.execute_batch(super::MIGRATIONS[0]).expect("schema 1");
            c.pragma_update(None, "user_version", 1).expect("version");
            c.execute_batch(
                "INSERT INTO sensors (id, name, first_seen, last_seen) VALUES (1, 's', 0, 0);
                 INSERT INTO workloads (id, key, kind, name, namespace, labels, first_seen, last_seen)
                   VALUES (1, '10.0.0.1', 'ip', '10.0.0.1', '', '{}', 0, 0),
                          (2, '10.0.0.2', 'ip', '10.0.0.2', '', '{}', 0, 0);
                 INSERT INTO flows (sensor, ts_start, ts_end, src_ip, src_port, dest_ip, dest_port, proto,
                   pkts, bytes, alerted, src_wl, dest_wl) VALUES (1, 600000, 600000, '10.0.0.1', 1, '10.0.0.2', 80, 'TCP', 2, 100, 0, 1, 2);
                 INSERT INTO edges VALUES (10, 1, 2, 'tcp/80', 'none', 0, 1, 100);",
            )
            .expect("rows");
        }
        let s = SqliteStore::open(&p, Sync::Normal).expect("migrate");
        assert_eq!(
            s.schema_version().expect("v"),
            super::MIGRATIONS.len() as i64
        );
        let f = s
            .flows(&FlowQuery {
                ip: Some("10.0.0.2".into()),
                ..FlowQuery::default()
            })
            .expect("flows");
        assert_eq!(f.total, 1);
        let m = s.map(0, 3_600_000, 10).expect("map");
        assert_eq!(m.edges.len(), 1);
        assert_eq!(m.edges[0].flows, 1);
    }
}
