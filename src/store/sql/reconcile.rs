//! Reconciliation's bookkeeping: a lease per shop on the database's clock, so
//! that one process at a time reconciles it, and how far each shop got.

use std::time::Duration;

use sqlx::Row;

use super::{clip, opt_text, text, transaction, SqlStore};
use crate::store::{ReconcileRun, ReconciliationView, StoreError};

impl SqlStore {
    pub async fn claim_reconciliation(
        &self,
        platform: &str,
        shop: &str,
        lease: Duration,
    ) -> Result<Option<(String, Option<i64>)>, StoreError> {
        let shop = clip(shop, 255).to_owned();
        transaction!(self, |tx, now| {
            sqlx::query(
                self.sql(
                    &self
                        .dialect
                        .insert_or_ignore("INTO reconciliations (platform, shop) VALUES (?, ?)"),
                ),
            )
            .bind(platform.to_owned())
            .bind(shop.clone())
            .execute(&mut *tx)
            .await?;
            let row = sqlx::query(self.sql(&format!(
                "SELECT watermark, lease_until FROM reconciliations WHERE platform = ? AND shop = ?{}",
                self.dialect.for_update()
            )))
            .bind(platform.to_owned())
            .bind(shop.clone())
            .fetch_one(&mut *tx)
            .await?;
            let lease_until: Option<i64> = row.try_get("lease_until")?;
            if lease_until.is_some_and(|until| until > now) {
                None
            } else {
                let token = uuid::Uuid::new_v4().to_string();
                sqlx::query(self.sql(
                    "UPDATE reconciliations SET lease_token = ?, lease_until = ? \
                     WHERE platform = ? AND shop = ?",
                ))
                .bind(token.clone())
                .bind(now + lease.as_millis() as i64)
                .bind(platform.to_owned())
                .bind(shop.clone())
                .execute(&mut *tx)
                .await?;
                Some((token, row.try_get::<Option<i64>, _>("watermark")?))
            }
        })
    }

    pub async fn finish_reconciliation(
        &self,
        platform: &str,
        shop: &str,
        token: &str,
        run: &ReconcileRun,
    ) -> Result<bool, StoreError> {
        let shop = clip(shop, 255).to_owned();
        let error = run.error.as_deref().map(|e| clip(e, 2000).to_owned());
        transaction!(self, |tx, now| {
            let success = if run.error.is_none() { Some(now) } else { None };
            let done = sqlx::query(self.sql(&format!(
                "UPDATE reconciliations SET \
                 watermark = CASE WHEN ? IS NULL THEN watermark WHEN watermark IS NULL THEN ? ELSE {greatest}(watermark, ?) END, \
                 last_run_at = ?, last_success_at = COALESCE(?, last_success_at), \
                 last_fetched = ?, last_new = ?, last_changed = ?, last_unchanged = ?, last_refused = ?, \
                 found_total = found_total + ?, last_error = ?, lease_token = NULL, lease_until = NULL \
                 WHERE platform = ? AND shop = ? AND lease_token = ?",
                greatest = self.dialect.greatest()
            )))
            .bind(run.watermark)
            .bind(run.watermark)
            .bind(run.watermark)
            .bind(now)
            .bind(success)
            .bind(run.fetched as i64)
            .bind(run.new as i64)
            .bind(run.changed as i64)
            .bind(run.unchanged as i64)
            .bind(run.refused as i64)
            .bind((run.new + run.changed) as i64)
            .bind(error.clone())
            .bind(platform.to_owned())
            .bind(shop.clone())
            .bind(token.to_owned())
            .execute(&mut *tx)
            .await?;
            done.rows_affected() > 0
        })
    }

    pub async fn release_reconciliation(
        &self,
        platform: &str,
        shop: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "UPDATE reconciliations SET lease_token = NULL, lease_until = NULL \
             WHERE platform = ? AND shop = ? AND lease_token = ?",
        ))
        .bind(platform.to_owned())
        .bind(clip(shop, 255).to_owned())
        .bind(token.to_owned())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    pub async fn reconciliations(&self) -> Result<Vec<ReconciliationView>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT platform, shop, watermark, last_run_at, last_success_at, last_fetched, last_new, \
             last_changed, last_unchanged, last_refused, found_total, last_error \
             FROM reconciliations ORDER BY platform, shop",
        ))
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                let count = |name: &str| -> Result<u64, StoreError> {
                    Ok(row.try_get::<i64, _>(name)?.max(0) as u64)
                };
                Ok(ReconciliationView {
                    platform: text(row, "platform")?,
                    shop: text(row, "shop")?,
                    watermark_ms: row.try_get("watermark")?,
                    last_run_at_ms: row.try_get("last_run_at")?,
                    last_success_at_ms: row.try_get("last_success_at")?,
                    last: ReconcileRun {
                        fetched: count("last_fetched")?,
                        new: count("last_new")?,
                        changed: count("last_changed")?,
                        unchanged: count("last_unchanged")?,
                        refused: count("last_refused")?,
                        watermark: None,
                        error: opt_text(row, "last_error")?,
                    },
                    found_total: count("found_total")?,
                })
            })
            .collect()
    }
}
