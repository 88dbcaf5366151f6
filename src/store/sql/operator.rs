//! What operators look at and do: find orders, read them, retry them.

use std::collections::BTreeSet;

use sqlx::Row;

use super::browse::{attempt_view, item_view, request_view};
use super::{clip, integers, parse, sources_of, text, transaction, SqlStore};
use crate::domain::{Action, EnrollmentState, LearnerEmail};
use crate::store::{AttemptView, OrderView, RequestView, StoreError};

impl SqlStore {
    pub async fn find_order(&self, order: &str, shop: Option<&str>) -> Result<i64, StoreError> {
        let hashed = format!("#{}", order.trim_start_matches('#'));
        // The number's search column finds it with or without its '#', in
        // any case; only the number as given, or with a '#', is taken.
        let rows = sqlx::query(self.sql(
            "SELECT id, shop, external_id, number FROM orders WHERE (external_id = ? OR number_search = ?) \
             AND (? IS NULL OR shop = ?)",
        ))
        .bind(order.to_owned())
        .bind(self.dialect.lowercase(order).trim_start_matches('#').to_owned())
        .bind(shop.map(str::to_owned))
        .bind(shop.map(str::to_owned))
        .fetch_all(&self.reader)
        .await?;
        let mut found: Vec<(i64, String)> = Vec::new();
        for row in &rows {
            let number = text(row, "number")?;
            if text(row, "external_id")? == order || number == order || number == hashed {
                found.push((row.try_get("id")?, text(row, "shop")?));
            }
        }
        match found.as_slice() {
            [(id, _)] => Ok(*id),
            [] => {
                let own = match order.parse::<i64>() {
                    Ok(n) if shop.is_none() => {
                        sqlx::query(self.sql("SELECT id FROM orders WHERE id = ?"))
                            .bind(n)
                            .fetch_optional(&self.reader)
                            .await?
                            .map(|r| r.try_get::<i64, _>("id"))
                            .transpose()?
                    }
                    _ => None,
                };
                own.ok_or_else(|| StoreError::NotFound(format!("no order {order}")))
            }
            many => {
                let shops: BTreeSet<&str> = many.iter().map(|(_, s)| s.as_str()).collect();
                Err(StoreError::Invalid(format!(
                    "order {order} exists in several shops ({}): name one with --shop",
                    shops.into_iter().collect::<Vec<_>>().join(", ")
                )))
            }
        }
    }

    /// Failed items (of one order, or all) pending again with fresh attempts.
    /// Items without a valid learner email stay failed: their email needs fixing first.
    pub async fn retry_failed(&self, order_id: Option<i64>) -> Result<u64, StoreError> {
        transaction!(self, |tx, now| {
            let rows = sqlx::query(self.sql(
                "SELECT DISTINCT order_id FROM enrollments WHERE state = 'failed' AND email IS NOT NULL \
                 AND (? IS NULL OR order_id = ?)",
            ))
            .bind(order_id)
            .bind(order_id)
            .fetch_all(&mut *tx)
            .await?;
            let orders = integers(&rows, "order_id")?;
            let retried = sqlx::query(self.sql(&format!(
                "UPDATE enrollments SET state = 'pending', attempts = 0, reason = NULL, due_at = ?, claim_token = NULL, \
                 lease_until = NULL, account_wait_since = NULL, updated_at = ? WHERE state IN ({}) AND state = 'failed' \
                 AND email IS NOT NULL AND (? IS NULL OR order_id = ?)",
                sources_of(EnrollmentState::Pending)
            )))
            .bind(now)
            .bind(now)
            .bind(order_id)
            .bind(order_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // Paid seats waiting for an account are checked again now.
            let rechecked = sqlx::query(self.sql(
                "UPDATE enrollments SET due_at = ?, updated_at = ? WHERE state = 'awaiting_account' \
                 AND due_at > ? AND (? IS NULL OR order_id = ?)",
            ))
            .bind(now)
            .bind(now)
            .bind(now)
            .bind(order_id)
            .bind(order_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            for id in orders {
                self.update_order_state(&mut tx, id, now).await?;
            }
            retried + rechecked
        })
    }

    /// A failed item's learner email corrected, and the item pending again
    /// with fresh attempts.
    pub async fn set_email(
        &self,
        enrollment_id: i64,
        email: &LearnerEmail,
    ) -> Result<(), StoreError> {
        transaction!(self, |tx, now| {
            let row = sqlx::query(self.sql(&format!(
                "SELECT order_id, state, action FROM enrollments WHERE id = ?{}",
                self.dialect.for_update()
            )))
            .bind(enrollment_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no item {enrollment_id}")))?;
            let order_id: i64 = row.try_get("order_id")?;
            let state: EnrollmentState = parse(&text(&row, "state")?)?;
            let action: Action = parse(&text(&row, "action")?)?;
            if state != EnrollmentState::Failed {
                return Err(StoreError::Invalid(format!(
                    "item {enrollment_id} is {state}: only a failed item's email can be changed"
                )));
            }
            if action == Action::Unenroll {
                return Err(StoreError::Invalid(format!(
                    "item {enrollment_id} failed to unenroll its learner, who cannot be changed: \
                     use orders retry instead"
                )));
            }
            sqlx::query(self.sql(&format!(
                "UPDATE enrollments SET email = ?, state = 'pending', attempts = 0, reason = NULL, due_at = ?, \
                 claim_token = NULL, lease_until = NULL, account_wait_since = NULL, updated_at = ? \
                 WHERE id = ? AND state IN ({}) \
                 AND state = 'failed'",
                sources_of(EnrollmentState::Pending)
            )))
            .bind(clip(email.as_str(), 320).to_owned())
            .bind(now)
            .bind(now)
            .bind(enrollment_id)
            .execute(&mut *tx)
            .await?;
            self.update_order_state(&mut tx, order_id, now).await?;
        })
    }

    pub async fn order_view(&self, order_id: i64) -> Result<OrderView, StoreError> {
        let row =
            sqlx::query(self.sql(
                "SELECT id, platform, shop, external_id, number, state FROM orders WHERE id = ?",
            ))
            .bind(order_id)
            .fetch_optional(&self.reader)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no order with id {order_id}")))?;
        let items = sqlx::query(self.sql(
            "SELECT id, line_item_id, sku, course_key, mode, email, action, state, reason, attempts FROM enrollments \
             WHERE order_id = ? ORDER BY id",
        ))
        .bind(order_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(item_view)
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(OrderView {
            id: row.try_get("id")?,
            platform: text(&row, "platform")?,
            shop: text(&row, "shop")?,
            external_id: text(&row, "external_id")?,
            number: text(&row, "number")?,
            state: text(&row, "state")?,
            items,
        })
    }

    pub async fn attempts(&self, enrollment_id: i64) -> Result<Vec<AttemptView>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT at, action, http_status, outcome, detail, duration_ms, counted FROM attempts \
             WHERE enrollment_id = ? ORDER BY id",
        ))
        .bind(enrollment_id)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(attempt_view)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn link_replay(&self, replay: i64, original: i64) -> Result<(), StoreError> {
        transaction!(self, |tx, _now| {
            sqlx::query(self.sql("UPDATE requests SET replay_of = ? WHERE id = ?"))
                .bind(original)
                .bind(replay)
                .execute(&mut *tx)
                .await?;
        })
    }

    pub async fn requests(&self, limit: i64) -> Result<Vec<RequestView>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, received_at, platform, http_status, outcome, reason, shop, topic, body_size, body_truncated, \
             LENGTH(body) AS stored, source_ip, replay_of, NULL AS replayed_by, NULL AS taken_in_by \
             FROM requests ORDER BY id DESC LIMIT ?",
        ))
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(request_view)
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn count_enrollments(&self) -> Result<Vec<(EnrollmentState, i64)>, StoreError> {
        self.count_by_state("enrollments", EnrollmentState::ALL, EnrollmentState::as_str)
            .await
    }
}

#[cfg(test)]
mod tests {
    use crate::store::sql::file_store;
    use crate::store::StoreError;

    /// An order is found by its number as given or with its '#', however
    /// the database lowers letters for the number's search column.
    #[tokio::test]
    async fn an_order_is_found_by_its_number_with_or_without_its_hash() {
        let (_dir, store, conn) = file_store().await;
        for (id, number) in [(1, "#Ä-12"), (2, "#ä-12"), (3, "#1001")] {
            conn.execute(
                "INSERT INTO orders (id, platform, shop, external_id, number, paid, cancelled, state, created_at, updated_at) \
                 VALUES (?1, 'shopify', 'shop.example', ?2, ?3, 1, 0, 'enrolled', 0, 0)",
                rusqlite::params![id, format!("ext-{id}"), number],
            )
            .unwrap();
        }
        for (asked, id) in [
            ("Ä-12", 1),
            ("#Ä-12", 1),
            ("ä-12", 2),
            ("1001", 3),
            ("#1001", 3),
            ("ext-2", 2),
        ] {
            assert_eq!(store.find_order(asked, None).await.unwrap(), id, "{asked}");
        }
        assert!(matches!(
            store.find_order("1002", None).await,
            Err(StoreError::NotFound(_))
        ));
    }
}
