//! Cases and alerts: the analyst's side (status, notes, merge and detach, the audit log).

use super::{DetachRow, Filter, SqliteStore, json_str, parse_vec};
use crate::triage::{AlertFacts, case_severity};
use crate::types::*;
use crate::{CaseStore, Result, StoreError};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

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

pub(super) const ALERT_COLS: &str =
    "a.id, a.fingerprint, a.detection, s.name, a.signature_id, a.signature,
    a.category, a.severity, a.action, a.src_ip, a.dest_ip, a.flow_id, a.techniques, a.misp,
    a.count, a.first_seen, a.last_seen, a.case_id, a.record";

pub(super) fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
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

impl CaseStore for SqliteStore {
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
        let eve = islet_event::record::EveRecord::decode(record.as_bytes()).unwrap_or_default();
        let facts = AlertFacts::from_record(&sensor, &eve);
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
}
