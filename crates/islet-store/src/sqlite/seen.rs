//! Whether a chained record is already kept: the console asks before it accepts a record whose
//! sequence number its chain has passed (a resend is kept already; anything else is not the
//! sensor's record).

use super::SqliteStore;
use crate::Result;
use rusqlite::{OptionalExtension, params};

impl SqliteStore {
    /// Whether the record `seq` of `sensor` with this SHA-256 is kept (within the duplicate
    /// window, `[console.retention] dedupe_records`).
    pub fn is_kept(&self, sensor: &str, seq: u64, digest: &[u8; 32]) -> Result<bool> {
        let prefix = i64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
        let Ok(seq) = i64::try_from(seq) else {
            return Ok(false);
        };
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM seen WHERE sensor = (SELECT id FROM sensors WHERE name = ?1)
                 AND seq = ?2 AND digest = ?3",
            )?
            .query_row(params![sensor, seq, prefix], |_| Ok(()))
            .optional()?
            .is_some())
    }
}
