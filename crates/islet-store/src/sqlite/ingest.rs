//! Ingest helpers of the SQLite store: flows with their workloads and edges, protocol events
//! with the name index, sensor stats, and triage of alerts into cases.

use super::{
    BatchSums, SealedBlock, SqliteStore, TenSums, ip_endpoint, json_str, parse_vec, sensor_id,
    workload_id,
};
use crate::Result;
use crate::triage::{AlertFacts, case_severity};
use crate::types::*;
use rusqlite::{OptionalExtension, Transaction, params};
use std::collections::{BTreeMap, HashMap};

/// The statements run for every flow of a batch, prepared once per batch (a statement-cache
/// lookup hashes the SQL text: per flow, that was a tenth of the writer's time).
pub(super) struct FlowStmts<'t> {
    seen: rusqlite::CachedStatement<'t>,
    flow: rusqlite::CachedStatement<'t>,
    address: rusqlite::CachedStatement<'t>,
    alerted: rusqlite::CachedStatement<'t>,
}

impl<'t> FlowStmts<'t> {
    fn new(tx: &'t Transaction<'_>) -> Result<FlowStmts<'t>> {
        Ok(FlowStmts {
            seen: tx
                .prepare_cached("INSERT OR IGNORE INTO seen (sensor, seq, digest) VALUES (?1, ?2, ?3)")?,
            flow: tx.prepare_cached(
                "INSERT INTO flows (sensor, flow_id, ts_start, ts_end, src_ip, src_port, dest_ip, dest_port,
                   proto, app_proto, pkts, bytes, verdict, alerted, community_id, src_wl, dest_wl,
                   src_labels, dest_labels)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
            )?,
            address: tx.prepare_cached("INSERT OR IGNORE INTO addresses (ip, wl) VALUES (?1, ?2)")?,
            alerted: tx.prepare_cached("SELECT 1 FROM alerts WHERE flow_id = ?1 LIMIT 1")?,
        })
    }
}

/// Sealed-block buffers kept between batches (one a sensor in a batch; more are dropped).
const SEALED_BUFS_KEPT: usize = 8;
/// A buffer larger than this (a batch of unusually large records) is freed, not kept.
const SEALED_BUF_KEPT_BYTES: usize = 64 << 20;

impl SqliteStore {
    #[allow(
        clippy::too_many_arguments,
        reason = "the batch's state, passed apart so each part is borrowed apart"
    )]
    pub(super) fn ingest_flow(
        tx: &Transaction<'_>,
        st: &mut FlowStmts<'_>,
        wl: &mut HashMap<String, (i64, i64, i64)>,
        addrs: &mut HashMap<String, Vec<i64>>,
        sums: &mut BatchSums,
        sensor: i64,
        rec: &Record,
    ) -> Result<()> {
        let owned;
        let ff = match &rec.flow {
            Some(f) => f,
            None => {
                owned = FlowFacts::from_record(&rec.eve, rec.ts_ms);
                &owned
            }
        };
        let (start, end) = (ff.start, ff.end);
        let (src_ip, dest_ip) = (ff.src_ip.as_str(), ff.dest_ip.as_str());
        let (src_own, dest_own);
        let src = match &rec.src {
            Some(e) => e,
            None => {
                src_own = ip_endpoint(src_ip);
                &src_own
            }
        };
        let dest = match &rec.dest {
            Some(e) => e,
            None => {
                dest_own = ip_endpoint(dest_ip);
                &dest_own
            }
        };
        let src_wl = workload_id(tx, wl, src, start, end, &mut sums.workloads_seen)?;
        let dest_wl = workload_id(tx, wl, dest, start, end, &mut sums.workloads_seen)?;
        for (ip, id) in [(src_ip, src_wl), (dest_ip, dest_wl)] {
            if !addrs.get(ip).is_some_and(|w| w.contains(&id)) {
                st.address.execute(params![ip, id])?;
                addrs.entry(ip.to_string()).or_default().push(id);
            }
        }
        let verdict = ff.verdict.as_deref();
        // Alerted: the sensor says so, or an alert about this flow arrived before it.
        let alerted = ff.alerted
            || match ff.flow_id {
                Some(id) => st.alerted.exists([id])?,
                None => false,
            };
        let proto = ff.proto.as_str();
        let dport = ff.dest_port;
        let labels = |e: &Endpoint| (!e.labels.is_empty()).then(|| json_str(&e.labels));
        st.flow.execute(params![
            sensor,
            ff.flow_id,
            start,
            end,
            src_ip,
            ff.src_port,
            dest_ip,
            dport,
            proto,
            ff.app_proto,
            ff.pkts,
            ff.bytes,
            verdict,
            alerted,
            ff.community_id,
            src_wl,
            dest_wl,
            labels(src),
            labels(dest),
        ])?;
        let service = match proto {
            "TCP" | "UDP" | "SCTP" => format!("{}/{dport}", proto.to_ascii_lowercase()),
            p => p.to_ascii_lowercase(),
        };
        let e = sums
            .edges
            .entry((
                start.div_euclid(60_000),
                src_wl,
                dest_wl,
                service,
                verdict.unwrap_or("none").to_string(),
            ))
            .or_default();
        e.0 |= alerted;
        e.1 += 1;
        e.2 += ff.bytes as u64;
        Ok(())
    }

    pub(super) fn ingest_event(
        tx: &Transaction<'_>,
        sensor: i64,
        rec: &Record,
        event_type: &str,
    ) -> Result<i64> {
        let v = &rec.eve;
        let flow_id = v.flow_id.and_then(|x| i64::try_from(x).ok());
        tx.prepare_cached(
            "INSERT INTO events (sensor, ts, event_type, flow_id, record) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![sensor, rec.ts_ms, event_type, flow_id, rec.text()])?;
        let id = tx.last_insert_rowid();
        // Names only from the protocol events that carry them (an alert repeats its event's).
        let mut names = match event_type {
            "dns" | "tls" | "quic" | "http" => v.names(),
            _ => Vec::new(),
        };
        names.truncate(16);
        for (n, via) in names {
            let n = n.trim_end_matches('.').to_ascii_lowercase();
            if n.is_empty() || n.len() > 255 {
                continue;
            }
            tx.prepare_cached(
                "INSERT INTO names (name, via, ts, src_ip, dest_ip, flow_id, sensor, event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                n,
                via,
                rec.ts_ms,
                v.src_ip.as_deref().unwrap_or(""),
                v.dest_ip.as_deref().unwrap_or(""),
                flow_id,
                sensor,
                id
            ])?;
        }
        Ok(id)
    }

    pub(super) fn ingest_stats(tx: &Transaction<'_>, sensor: i64, rec: &Record) -> Result<()> {
        let sum = rec.eve.stats_summary().unwrap_or_default();
        let (drops, events) = (sum.drops, sum.events);
        let ratio = sum.protected_pkts_per_cpu_second;
        let prev: Option<(i64, i64)> = tx
            .query_row(
                "SELECT stats_ts, stats_events FROM sensors WHERE id = ?1",
                [sensor],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let eps = match prev {
            Some((pts, pev)) if pts > 0 && rec.ts_ms > pts && events as i64 >= pev => {
                (events as i64 - pev) as f64 * 1000.0 / (rec.ts_ms - pts) as f64
            }
            _ => sum
                .uptime_s
                .filter(|u| *u > 0.0)
                .map_or(0.0, |u| events as f64 / u),
        };
        tx.execute(
            "UPDATE sensors SET drops = ?2, eps = ?3, ratio = ?4, stats = ?5, stats_ts = ?6, stats_events = ?7
             WHERE id = ?1",
            params![
                sensor,
                drops.min(i64::MAX as u64) as i64,
                eps,
                ratio,
                rec.eve.stats.as_ref().map_or("{}", |r| r.get()),
                rec.ts_ms,
                events.min(i64::MAX as u64) as i64
            ],
        )?;
        Ok(())
    }

    pub(super) fn triage(
        tx: &Transaction<'_>,
        sensor: i64,
        rec: &Record,
        batch: &IngestBatch,
        sums: &mut BatchSums,
        report: &mut IngestReport,
    ) -> Result<()> {
        let (window, now) = (batch.case_window_ms, batch.now_ms);
        let f = AlertFacts::from_record(&rec.sensor, &rec.eve);
        let ts = rec.ts_ms;
        let critical = rec.src.as_ref().is_some_and(|e| e.critical)
            || rec.dest.as_ref().is_some_and(|e| e.critical);
        let existing: Option<(i64, Option<i64>)> = tx
            .prepare_cached("SELECT id, case_id FROM alerts WHERE fingerprint = ?1")?
            .query_row([&f.fingerprint], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((id, case)) = existing {
            tx.prepare_cached(
                "UPDATE alerts SET count = count + 1, last_seen = max(last_seen, ?2),
                   first_seen = min(first_seen, ?2), record = ?3 WHERE id = ?1",
            )?
            .execute(params![id, ts, rec.text()])?;
            if let Some(c) = case {
                tx.execute(
                    "UPDATE cases SET last_seen = max(last_seen, ?2), updated = ?3 WHERE id = ?1",
                    params![c, ts, now],
                )?;
            }
            report.alerts_repeated += 1;
            return Ok(());
        }
        // Open cases that share an observable within the window, with what they share.
        let mut shared: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        {
            let mut q = tx.prepare_cached(
                "SELECT o.case_id FROM observables o JOIN cases c ON c.id = o.case_id
                 WHERE o.data_type = ?1 AND o.data = ?2 AND c.status IN ('New', 'InProgress')
                   AND c.merged_into IS NULL AND c.last_seen >= ?3 AND c.first_seen <= ?4",
            )?;
            for o in &f.observables {
                let rows = q.query_map(
                    params![
                        o.data_type,
                        o.data,
                        ts.saturating_sub(window),
                        ts.saturating_add(window)
                    ],
                    |r| r.get::<_, i64>(0),
                )?;
                for c in rows {
                    shared
                        .entry(c?)
                        .or_default()
                        .push(format!("{} {}", o.kind, o.data));
                }
            }
        }
        let best = shared
            .iter()
            .max_by_key(|(id, why)| (why.len(), -**id))
            .map(|(id, why)| (*id, why.clone()));
        let sev = case_severity(f.severity, critical);
        let case_id = match &best {
            Some((id, _)) => *id,
            None => {
                tx.execute(
                    "INSERT INTO cases (title, status, severity, critical, first_seen, last_seen, created, updated)
                     VALUES (?1, 'New', ?2, ?3, ?4, ?4, ?5, ?5)",
                    params![f.signature, sev, critical, ts, now],
                )?;
                report.cases_new += 1;
                tx.last_insert_rowid()
            }
        };
        tx.prepare_cached(
            "INSERT INTO alerts (fingerprint, detection, sensor, signature_id, signature, category,
               severity, action, src_ip, dest_ip, flow_id, techniques, misp, count, first_seen,
               last_seen, case_id, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 1, ?14, ?14, ?15, ?16)",
        )?
        .execute(params![
            f.fingerprint,
            f.detection,
            sensor,
            f.signature_id,
            f.signature,
            f.category,
            f.severity,
            f.action,
            f.src_ip,
            f.dest_ip,
            f.flow_id,
            json_str(&f.techniques),
            f.misp.as_ref().map(json_str),
            ts,
            case_id,
            rec.text()
        ])?;
        let alert_id = tx.last_insert_rowid();
        // The flow it is about, if already stored, and its edge, are now alerted.
        if let Some(fid) = f.flow_id {
            // Found through either end's workloads and the day before the alert (flows have no
            // flow_id index: one less index write per flow).
            let ip = f.src_ip.as_deref().or(f.dest_ip.as_deref()).unwrap_or("");
            let mut st = tx.prepare_cached(
                "UPDATE flows SET alerted = 1 WHERE id IN (
                   SELECT id FROM flows WHERE src_wl IN (SELECT wl FROM addresses WHERE ip = ?2)
                     AND ts_start >= ?3 - 86400000 AND ts_start <= ?3 AND flow_id = ?1
                   UNION ALL
                   SELECT id FROM flows WHERE dest_wl IN (SELECT wl FROM addresses WHERE ip = ?2)
                     AND ts_start >= ?3 - 86400000 AND ts_start <= ?3 AND flow_id = ?1)
                 AND alerted = 0 RETURNING ts_start, src_wl, dest_wl",
            )?;
            let hit: Vec<(i64, i64, i64)> = st
                .query_map(params![fid, ip, ts], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for (start, s, d) in hit {
                let minute = start.div_euclid(60_000);
                tx.prepare_cached(
                    "UPDATE edges SET alerted = 1 WHERE minute = ?1 AND src = ?2 AND dest = ?3",
                )?
                .execute(params![minute, s, d])?;
                tx.prepare_cached(
                    "UPDATE edges10 SET alerted = 1 WHERE bucket = ?1 AND src = ?2 AND dest = ?3",
                )?
                .execute(params![minute.div_euclid(10), s, d])?;
                // Not written yet if the flow came in this batch.
                for (k, e) in sums.edges.iter_mut() {
                    if k.0 == minute && k.1 == s && k.2 == d {
                        e.0 = true;
                    }
                }
            }
        }
        report.alerts_new += 1;
        for o in &f.observables {
            tx.prepare_cached(
                "INSERT INTO observables (case_id, data_type, data, kind, ioc, count, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)
                 ON CONFLICT (case_id, data_type, data) DO UPDATE SET count = count + 1,
                   ioc = max(ioc, excluded.ioc), last_seen = max(last_seen, excluded.last_seen),
                   first_seen = min(first_seen, excluded.first_seen)",
            )?
            .execute(params![case_id, o.data_type, o.data, o.kind, o.ioc, ts])?;
        }
        let (mut reasons, mut techniques, mut misp, cur_sev, title): (
            Vec<String>,
            Vec<String>,
            Vec<MispContext>,
            u8,
            String,
        ) = tx.query_row(
            "SELECT reasons, techniques, misp, severity, title FROM cases WHERE id = ?1",
            [case_id],
            |r| {
                Ok((
                    parse_vec(&r.get::<_, String>(0)?),
                    parse_vec(&r.get::<_, String>(1)?),
                    serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                    r.get(3)?,
                    r.get(4)?,
                ))
            },
        )?;
        reasons.push(match &best {
            Some((_, why)) => format!(
                "alert {alert_id} ({}) shares {}",
                f.detection,
                why.join(", ")
            ),
            None => format!("opened by alert {alert_id} ({})", f.detection),
        });
        if reasons.len() > 200 {
            reasons.drain(..reasons.len() - 200);
        }
        for t in &f.techniques {
            if !techniques.contains(t) {
                techniques.push(t.clone());
            }
        }
        if let Some(m) = &f.misp
            && !misp.iter().any(|x| x == m)
            && misp.len() < 100
        {
            misp.push(m.clone());
        }
        let title = if sev > cur_sev {
            f.signature.clone()
        } else {
            title
        };
        tx.execute(
            "UPDATE cases SET reasons = ?2, techniques = ?3, misp = ?4, severity = max(severity, ?5),
               critical = max(critical, ?6), title = ?7, first_seen = min(first_seen, ?8),
               last_seen = max(last_seen, ?8), updated = ?9 WHERE id = ?1",
            params![
                case_id,
                json_str(&reasons),
                json_str(&techniques),
                json_str(&misp),
                sev,
                critical,
                title,
                ts,
                now
            ],
        )?;
        Ok(())
    }

    pub(super) fn ingest_batch(&mut self, batch: &IngestBatch) -> Result<IngestReport> {
        let mut report = IngestReport::default();
        let tx = self.conn.transaction()?;
        let mut sums = BatchSums::default();
        // Sized ahead: growing a map of tens of thousands of edges rehashes it a dozen times.
        sums.edges.reserve(batch.records.len());
        // The caches hold only committed rows: on failure they are dropped whole.
        let mut sensor_cache = std::mem::take(&mut self.sensor_ids);
        let mut wl_cache = std::mem::take(&mut self.workload_ids);
        let mut addr_cache = std::mem::take(&mut self.addresses);
        let mut st = FlowStmts::new(&tx)?;
        for rec in &batch.records {
            let sensor = sensor_id(&tx, &mut sensor_cache, &rec.sensor, rec.ts_ms)?;
            let digest = i64::from_le_bytes(rec.digest[..8].try_into().unwrap_or([0; 8]));
            let fresh =
                st.seen
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
            if let Some(seq) = rec.seq {
                let b = sums.sealed.entry(sensor).or_insert_with(|| SealedBlock {
                    first_seq: seq,
                    last_seq: seq,
                    ts_max: rec.ts_ms,
                    records: 0,
                    lines: self.sealed_bufs.pop().unwrap_or_default(),
                });
                b.last_seq = seq;
                b.ts_max = b.ts_max.max(rec.ts_ms);
                b.records += 1;
                crate::sealed::frame(
                    &mut b.lines,
                    rec.line.strip_suffix(b"\n").unwrap_or(&rec.line),
                );
            }
            let et = rec.eve.event_type.as_str();
            match et {
                "flow" | "netflow" => {
                    Self::ingest_flow(
                        &tx,
                        &mut st,
                        &mut wl_cache,
                        &mut addr_cache,
                        &mut sums,
                        sensor,
                        rec,
                    )?;
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
        drop(st);
        for (id, (first, last)) in &sums.workloads_seen {
            tx.prepare_cached(
                "UPDATE workloads SET first_seen = min(first_seen, ?2), last_seen = max(last_seen, ?3) WHERE id = ?1",
            )?
            .execute(params![id, first, last])?;
        }
        let mut tens: TenSums<'_> = HashMap::with_capacity(sums.edges.len());
        let mut edge = tx.prepare_cached(
            "INSERT INTO edges (minute, src, dest, service, verdict, alerted, flows, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (minute, src, dest, service, verdict) DO UPDATE SET
               alerted = max(alerted, excluded.alerted), flows = flows + excluded.flows,
               bytes = bytes + excluded.bytes",
        )?;
        for ((minute, src, dest, service, verdict), (alerted, flows, bytes)) in &sums.edges {
            edge.execute(params![
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
        drop(edge);
        let mut ten = tx.prepare_cached(
            "INSERT INTO edges10 (bucket, src, dest, service, verdict, alerted, flows, bytes, first_minute, last_minute)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (bucket, src, dest, service, verdict) DO UPDATE SET
               alerted = max(alerted, excluded.alerted), flows = flows + excluded.flows,
               bytes = bytes + excluded.bytes, first_minute = min(first_minute, excluded.first_minute),
               last_minute = max(last_minute, excluded.last_minute)",
        )?;
        for ((bucket, src, dest, service, verdict), (alerted, flows, bytes, first, last)) in &tens {
            ten.execute(params![
                bucket,
                src,
                dest,
                service,
                verdict,
                alerted,
                *flows as i64,
                *bytes as i64,
                first,
                last
            ])?;
        }
        drop(ten);
        for (id, (first, last, stored, dups)) in &sums.sensors {
            tx.prepare_cached(
                "UPDATE sensors SET first_seen = min(first_seen, ?5), last_seen = max(last_seen, ?2),
                   events = events + ?3, duplicates = duplicates + ?4 WHERE id = ?1",
            )?
            .execute(params![id, last, *stored as i64, *dups as i64, first])?;
        }
        for (sensor, b) in &mut sums.sealed {
            crate::sealed::compress(&b.lines, &mut self.sealed_packed);
            tx.prepare_cached(
                "INSERT INTO sealed (sensor, first_seq, last_seq, ts_max, records, lines, codec, raw_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                sensor,
                b.first_seq.min(i64::MAX as u64) as i64,
                b.last_seq.min(i64::MAX as u64) as i64,
                b.ts_max,
                b.records,
                self.sealed_packed,
                crate::sealed::CODEC_LZ4_FRAMED,
                b.lines.len() as i64
            ])?;
            if self.sealed_bufs.len() < SEALED_BUFS_KEPT
                && b.lines.capacity() <= SEALED_BUF_KEPT_BYTES
            {
                let mut buf = std::mem::take(&mut b.lines);
                buf.clear();
                self.sealed_bufs.push(buf);
            }
        }
        if self.sealed_packed.capacity() > SEALED_BUF_KEPT_BYTES {
            self.sealed_packed = Vec::new();
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
}
