//! The evidence a sensor sends: ingest, flows, protocol events and names, the map, sensors,
//! and retention.

use super::{Filter, SqliteStore};
use crate::types::*;
use crate::{EvidenceStore, Result};
use rusqlite::{OptionalExtension as _, params};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

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

impl EvidenceStore for SqliteStore {
    fn ingest(&mut self, batch: &IngestBatch) -> Result<IngestReport> {
        self.ingest_batch(batch)
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
        if r.flows_age_ms > 0 {
            // The sealed records go with the flows they mostly are: a block once its newest
            // record is older than the flows kept.
            tx.execute(
                "DELETE FROM sealed WHERE ts_max < ?1",
                [now - r.flows_age_ms],
            )?;
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

    fn sealed(&self, sensor: &str, after_seq: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let Some(id) = self
            .conn
            .query_row("SELECT id FROM sensors WHERE name = ?1", [sensor], |r| {
                r.get::<_, i64>(0)
            })
            .optional()?
        else {
            return Ok(Vec::new());
        };
        // Records stored before schema 3 were not kept as sealed: they are not in an export
        // (and its chain check reports them missing).
        let mut st = self.conn.prepare_cached(
            "SELECT lines, codec, raw_len FROM sealed WHERE sensor = ?1 AND last_seq > ?2 ORDER BY id",
        )?;
        let after = after_seq.min(i64::MAX as u64) as i64;
        let mut rows = st.query(params![id, after])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let stored: Vec<u8> = r.get(0)?;
            let block = crate::sealed::Block::open(&stored, r.get(1)?, r.get(2)?)?;
            for l in block.records() {
                let l = l?;
                // The seq of each line, read again (an export is not the hot path).
                let seq = islet_event::record::EveRecord::decode(l)
                    .ok()
                    .and_then(|e| e.seq())
                    .unwrap_or(0);
                if seq > after_seq {
                    out.push((seq, String::from_utf8_lossy(l).into_owned()));
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    fn usage(&self) -> Result<Usage> {
        let mut rows = BTreeMap::new();
        for t in [
            "flows",
            "events",
            "sealed",
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
