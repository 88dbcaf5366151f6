//! Admin sessions: kept in the database, so that every process behind a load
//! balancer, and a restarted one, knows them. Rows are keyed by the hash of
//! the cookie's value; expired ones go whenever a session opens.

use std::time::Duration;

use super::{text, transaction, SqlStore};
use crate::store::StoreError;

impl SqlStore {
    pub async fn open_admin_session(
        &self,
        id_hash: &str,
        csrf: &str,
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        let lifetime = i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX);
        transaction!(self, |tx, now| {
            sqlx::query(self.sql("DELETE FROM admin_sessions WHERE expires_at <= ?"))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(self.sql(
                "INSERT INTO admin_sessions (id_hash, csrf, created_at, expires_at) VALUES (?, ?, ?, ?)",
            ))
            .bind(id_hash.to_owned())
            .bind(csrf.to_owned())
            .bind(now)
            .bind(now.saturating_add(lifetime))
            .execute(&mut *tx)
            .await?;
        })
    }

    /// The CSRF token of a live session.
    pub async fn admin_session(&self, id_hash: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            self.sql("SELECT csrf FROM admin_sessions WHERE id_hash = ? AND expires_at > ?"),
        )
        .bind(id_hash.to_owned())
        .bind(crate::store::now_ms())
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|r| text(&r, "csrf")).transpose()?)
    }

    pub async fn close_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        transaction!(self, |tx, _now| {
            sqlx::query(self.sql("DELETE FROM admin_sessions WHERE id_hash = ?"))
                .bind(id_hash.to_owned())
                .execute(&mut *tx)
                .await?;
        })
    }
}
