//! The export queue: cases and sightings on their way to TheHive and MISP.

use super::cases::{ALERT_COLS, alert_row};
use super::{Filter, SqliteStore};
use crate::types::*;
use crate::{ExportQueue, Result, StoreError};
use rusqlite::params;
use serde_json::Value;

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

impl ExportQueue for SqliteStore {
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
}
