//! How long work has been waiting, for `/metrics` and the dashboard.

use sqlx::Row;

use super::SqlStore;
use crate::store::StoreError;

impl SqlStore {
    /// How long (ms, on the database's clock) the longest-waiting due pending
    /// enrollment has been due; 0 when nothing due waits.
    pub async fn oldest_due_pending_ms(&self) -> Result<i64, StoreError> {
        let now = match self.dialect.now_query() {
            None => crate::store::now_ms(),
            Some(query) => {
                let (now,): (i64,) = sqlx::query_as(query).fetch_one(&self.reader).await?;
                now
            }
        };
        // Served by the enrollments_due index (state, due_at, id).
        let row = sqlx::query(self.sql(
            "SELECT MIN(due_at) AS oldest FROM enrollments WHERE state = 'pending' AND due_at <= ?",
        ))
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        let oldest: Option<i64> = row.try_get("oldest")?;
        Ok(oldest.map_or(0, |due| (now - due).max(0)))
    }
}
