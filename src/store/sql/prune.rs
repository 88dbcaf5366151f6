//! Housekeeping: finished orders and stray requests past their keeping time go.

use std::time::Duration;

use super::{id_list, integers, transaction, SqlStore};
use crate::domain::OrderState;
use crate::store::{PruneReport, StoreError};

/// Rows deleted per transaction, so that a large prune never holds locks long.
const BATCH: i64 = 200;

/// How long the shared rate limit needs its LMS call records.
const LMS_CALLS_KEPT_MS: i64 = 60_000;

impl SqlStore {
    pub async fn prune(&self, older_than: Duration) -> Result<PruneReport, StoreError> {
        let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let mut report = PruneReport::default();
        loop {
            let deleted = transaction!(self, |tx, now| {
                self.prune_orders(&mut tx, now.saturating_sub(age)).await?
            })?;
            if deleted.0 == 0 {
                break;
            }
            report.orders += deleted.0;
            report.requests += deleted.1;
        }
        loop {
            let deleted = transaction!(self, |tx, now| {
                self.prune_requests(&mut tx, now.saturating_sub(age))
                    .await?
            })?;
            if deleted == 0 {
                break;
            }
            report.requests += deleted;
        }
        transaction!(self, |tx, now| {
            sqlx::query(self.sql("DELETE FROM lms_calls WHERE at <= ?"))
                .bind(now - LMS_CALLS_KEPT_MS)
                .execute(&mut *tx)
                .await?;
        })?;
        Ok(report)
    }

    /// One batch of finished orders last changed before `cutoff`, with their
    /// items, attempts and requests: (orders, requests) deleted.
    async fn prune_orders(
        &self,
        tx: &mut super::Tx,
        cutoff: i64,
    ) -> Result<(u64, u64), StoreError> {
        // Locked and read again under the lock: an order a delivery just
        // reopened is not finished any more.
        let finished = format!(
            "SELECT id FROM orders WHERE state IN ('{}', '{}') AND updated_at < ?",
            OrderState::Enrolled.as_str(),
            OrderState::Cancelled.as_str(),
        );
        let ids = self.batch_before(tx, &finished, cutoff).await?;
        if ids.is_empty() {
            return Ok((0, 0));
        }
        let (list, ids) = id_list(&ids);
        let statements = [
            format!(
                "DELETE FROM attempts WHERE enrollment_id IN (SELECT id FROM enrollments WHERE order_id IN ({list}))"
            ),
            format!("DELETE FROM enrollments WHERE order_id IN ({list})"),
            format!("DELETE FROM requests WHERE order_id IN ({list})"),
            format!("DELETE FROM orders WHERE id IN ({list})"),
        ];
        let mut affected = Vec::with_capacity(statements.len());
        for statement in &statements {
            let query = ids
                .iter()
                .fold(sqlx::query(self.sql(statement)), |q, id| q.bind(*id));
            affected.push(query.execute(&mut **tx).await?.rows_affected());
        }
        Ok((affected[3], affected[2]))
    }

    /// The first `BATCH` ids that `select` (one `?`: the cutoff) finds,
    /// locked for this transaction.
    async fn batch_before(
        &self,
        tx: &mut super::Tx,
        select: &str,
        cutoff: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(self.sql(&format!(
            "{select} ORDER BY id LIMIT ?{}",
            self.dialect.for_update()
        )))
        .bind(cutoff)
        .bind(BATCH)
        .fetch_all(&mut **tx)
        .await?;
        Ok(integers(&rows, "id")?)
    }

    /// One batch of requests of no order (rejected, pings, ignored topics)
    /// received before `cutoff`.
    async fn prune_requests(&self, tx: &mut super::Tx, cutoff: i64) -> Result<u64, StoreError> {
        let orderless = "SELECT id FROM requests WHERE order_id IS NULL AND received_at < ?";
        let ids = self.batch_before(tx, orderless, cutoff).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let (list, ids) = id_list(&ids);
        let statement = format!("DELETE FROM requests WHERE id IN ({list})");
        let query = ids
            .iter()
            .fold(sqlx::query(self.sql(&statement)), |q, id| q.bind(*id));
        Ok(query.execute(&mut **tx).await?.rows_affected())
    }
}
