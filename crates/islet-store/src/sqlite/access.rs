//! API tokens (the console's access).

use super::SqliteStore;
use crate::types::*;
use crate::{AccessStore, Result, StoreError};
use rusqlite::{OptionalExtension, params};

impl AccessStore for SqliteStore {
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
