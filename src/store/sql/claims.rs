//! Claims: a batch of one course's due enrollments to exactly one worker under
//! a lease on the database's clock; the shared rate limit and LMS condition.
//! (Which work goes next: `readiness`; what its answer does: `results`.)

use std::time::Duration;

use sqlx::Row;

use super::{id_list, opt_text, parse, text, transaction, SqlStore, Tx};
use crate::domain::LearnerEmail;
use crate::store::{Claim, ClaimResult, ClaimedItem, ClaimedWork, Idle, LmsStatus, StoreError};

/// Finds the items whose SKU is not resolved yet (`course_key IS NULL`)
/// without reading every waiting item.
pub(super) const UNRESOLVED_INDEX: &str = "enrollments_by_course";
/// Due work: pending items, and paid seats waiting for an account whose next
/// check (or invitation) is due; not held under another claim's lease.
pub(super) const DUE: &str = "state IN ('pending', 'awaiting_account') AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?)";
/// [`DUE`] in one state (the first value bound).
pub(super) const DUE_IN_STATE: &str =
    "state = ? AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?)";
/// The states of due work, each read on its own.
pub(super) const CLAIMABLE_STATES: [&str; 2] = ["pending", "awaiting_account"];
/// The states claimed work is in (a lease is renewed, a result written).
pub(super) const CLAIMABLE: &str = "'pending', 'awaiting_account'";
/// The states of items a claim still holds: its work, and items cancelled
/// while their enrollment call was in flight (its result is still recorded).
pub(super) const HELD: &str = "'pending', 'awaiting_account', 'cancelled'";
/// The window of the shared rate limit.
pub(super) const WINDOW_MS: i64 = 60_000;
/// Due items locked by a delivery being taken right now: look again after this.
const LOCKED_RECHECK_MS: i64 = 5;

impl SqlStore {
    pub async fn claim_next(
        &self,
        batch: usize,
        lease: Duration,
        rate_limit: u32,
    ) -> Result<ClaimResult, StoreError> {
        let claimed = transaction!(self, |tx, now| {
            self.claim(&mut tx, now, batch, lease, rate_limit).await?
        })?;
        // Read after the commit, outside the write turn: the items are the
        // claim's until its results are written.
        Ok(match claimed {
            Err(idle) => ClaimResult::Idle(idle),
            Ok((token, work, ids)) => {
                let items = self.claimed_items(&ids).await?;
                ClaimResult::Claimed(Claim { token, work, items })
            }
        })
    }

    async fn claim(
        &self,
        tx: &mut Tx,
        now: i64,
        batch: usize,
        lease: Duration,
        rate_limit: u32,
    ) -> Result<Result<(String, ClaimedWork, Vec<i64>), Idle>, StoreError> {
        // Claims take turns on the LMS state row: a burst of one course's work
        // goes to one claim, and the shared rate limit is counted one at a time.
        let state = sqlx::query(self.sql(&format!(
            "SELECT paused_until, misconfigured FROM lms_state WHERE id = 1{}",
            self.dialect.for_update()
        )))
        .fetch_one(&mut **tx)
        .await?;
        if let Some(reason) = opt_text(&state, "misconfigured")? {
            return Ok(Err(Idle::Misconfigured { reason }));
        }
        let paused_until: i64 = state.try_get("paused_until")?;
        if paused_until > now {
            return Ok(Err(Idle::Throttled {
                until_ms: paused_until,
            }));
        }

        let window = self.rate_window(tx, now).await?;
        let work = match self.next_work(tx, now, batch, &window, rate_limit).await? {
            Ok(work) => work,
            Err(idle) => return Ok(Err(idle)),
        };
        let limit = if work.one_learner_a_call() { 1 } else { batch };
        let ids = self.pick(tx, now, &work, limit).await?;
        if ids.is_empty() {
            // Locked by a delivery being taken right now: look again shortly.
            return Ok(Err(Idle::NothingDue {
                next_due_ms: Some(now + LOCKED_RECHECK_MS),
            }));
        }
        if let ClaimedWork::CallLms { .. } = work {
            if let Some(until_ms) = self.take_rate_slot(tx, now, &window, rate_limit).await? {
                return Ok(Err(Idle::RateLimited { until_ms }));
            }
        }

        let token = uuid::Uuid::new_v4().to_string();
        let lease_until = now + lease.as_millis() as i64;
        let (among, listed) = id_list(&ids);
        let mut mark = sqlx::query(self.sql(&format!(
            "UPDATE enrollments SET claim_token = ?, lease_until = ? WHERE id IN ({among})"
        )))
        .bind(token.clone())
        .bind(lease_until);
        for id in &listed {
            mark = mark.bind(*id);
        }
        mark.execute(&mut **tx).await?;
        Ok(Ok((token, work, ids)))
    }

    /// What a worker needs to know of its claimed items, in the order due.
    async fn claimed_items(&self, ids: &[i64]) -> Result<Vec<ClaimedItem>, StoreError> {
        let (among, listed) = id_list(ids);
        let mut claimed = sqlx::query(self.sql(&format!(
            "SELECT e.id, e.order_id, e.email, e.attempts, e.account_wait_since, o.platform, o.shop, o.number \
             FROM enrollments e JOIN orders o ON o.id = e.order_id WHERE e.id IN ({among}) \
             ORDER BY e.due_at, e.id"
        )));
        for id in &listed {
            claimed = claimed.bind(*id);
        }
        claimed
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|row| {
                Ok(ClaimedItem {
                    enrollment_id: row.try_get("id")?,
                    order_id: row.try_get("order_id")?,
                    platform: parse(&text(row, "platform")?)?,
                    shop: text(row, "shop")?,
                    order_number: text(row, "number")?,
                    email: opt_text(row, "email")?
                        .as_deref()
                        .and_then(|e| LearnerEmail::parse(e).ok()),
                    attempts: row.try_get::<i64, _>("attempts")? as u32,
                    awaiting_since_ms: row.try_get("account_wait_since")?,
                })
            })
            .collect()
    }

    /// The `limit` items of the work due longest. Each state is read on its
    /// own, in the index's order, and the two merged: one index range read
    /// with both states would be sorted whole, as long as the backlog.
    async fn pick(
        &self,
        tx: &mut Tx,
        now: i64,
        work: &ClaimedWork,
        limit: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let mut due: Vec<(i64, i64)> = Vec::new();
        for state in CLAIMABLE_STATES {
            let query = match work {
                ClaimedWork::LookupSku { sku } => sqlx::query(self.sql(&format!(
                    "SELECT id, due_at FROM enrollments{} WHERE {DUE_IN_STATE} AND course_key IS NULL AND sku = ? \
                     ORDER BY due_at, id LIMIT ?{}",
                    self.dialect.indexed_by(UNRESOLVED_INDEX),
                    self.dialect.skip_locked()
                )))
                .bind(state)
                .bind(now)
                .bind(now)
                .bind(sku.clone()),
                ClaimedWork::CallLms {
                    course,
                    action,
                    mode,
                } => {
                    let query = sqlx::query(self.sql(&format!(
                        "SELECT id, due_at FROM enrollments WHERE {DUE_IN_STATE} AND course_key = ? AND action = ? AND {} \
                         ORDER BY due_at, id LIMIT ?{}",
                        if mode.is_some() { "mode = ?" } else { "mode IS NULL" },
                        self.dialect.skip_locked()
                    )))
                    .bind(state)
                    .bind(now)
                    .bind(now)
                    .bind(course.as_str().to_owned())
                    .bind(action.as_str());
                    match mode {
                        Some(mode) => query.bind(mode.clone()),
                        None => query,
                    }
                }
            };
            for row in query.bind(limit as i64).fetch_all(&mut **tx).await? {
                due.push((row.try_get("due_at")?, row.try_get("id")?));
            }
        }
        due.sort_unstable();
        Ok(due.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    /// The LMS requests of the shared window. Only read: a claim that ends
    /// idle writes nothing, and its commit costs no flush to the disk.
    async fn rate_window(&self, tx: &mut Tx, now: i64) -> Result<RateWindow, StoreError> {
        let row = sqlx::query(
            self.sql("SELECT COUNT(*) AS used, MIN(at) AS oldest, MAX(at) AS newest FROM lms_calls WHERE at > ?"),
        )
        .bind(now - WINDOW_MS)
        .fetch_one(&mut **tx)
        .await?;
        Ok(RateWindow {
            used: row.try_get("used")?,
            oldest: row.try_get("oldest")?,
            newest: row.try_get("newest")?,
        })
    }

    /// Takes one LMS request from the shared window, or says when one frees up.
    async fn take_rate_slot(
        &self,
        tx: &mut Tx,
        now: i64,
        window: &RateWindow,
        rate_limit: u32,
    ) -> Result<Option<i64>, StoreError> {
        if window.used >= i64::from(rate_limit) {
            return Ok(Some(window.oldest.unwrap_or(now) + WINDOW_MS));
        }
        sqlx::query(self.sql("DELETE FROM lms_calls WHERE at <= ?"))
            .bind(now - WINDOW_MS)
            .execute(&mut **tx)
            .await?;
        sqlx::query(self.sql("INSERT INTO lms_calls (at) VALUES (?)"))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(None)
    }

    pub async fn renew_claim(&self, token: &str, lease: Duration) -> Result<(), StoreError> {
        let renewed = transaction!(self, |tx, now| {
            sqlx::query(self.sql(&format!("UPDATE enrollments SET lease_until = ? WHERE claim_token = ? AND state IN ({HELD})")))
                .bind(now + lease.as_millis() as i64)
                .bind(token.to_owned())
                .execute(&mut *tx)
                .await?
                .rows_affected()
        })?;
        if renewed == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    pub async fn lms_status(&self) -> Result<LmsStatus, StoreError> {
        let row =
            sqlx::query(self.sql("SELECT paused_until, misconfigured FROM lms_state WHERE id = 1"))
                .fetch_one(&self.reader)
                .await?;
        Ok(LmsStatus {
            paused_until_ms: row.try_get("paused_until")?,
            misconfigured: opt_text(&row, "misconfigured")?,
        })
    }

    pub async fn claim_probe(&self, interval: Duration) -> Result<Option<String>, StoreError> {
        transaction!(self, |tx, now| {
            let row = sqlx::query(self.sql(&format!(
                "SELECT misconfigured, probe_at FROM lms_state WHERE id = 1{}",
                self.dialect.for_update()
            )))
            .fetch_one(&mut *tx)
            .await?;
            let probe_at: i64 = row.try_get("probe_at")?;
            match opt_text(&row, "misconfigured")?.filter(|_| probe_at <= now) {
                None => None,
                Some(reason) => {
                    sqlx::query(self.sql("UPDATE lms_state SET probe_at = ? WHERE id = 1"))
                        .bind(now + interval.as_millis() as i64)
                        .execute(&mut *tx)
                        .await?;
                    Some(reason)
                }
            }
        })
    }

    pub async fn clear_misconfigured(&self) -> Result<(), StoreError> {
        transaction!(self, |tx, _now| {
            sqlx::query(
                self.sql("UPDATE lms_state SET misconfigured = NULL, probe_at = 0 WHERE id = 1"),
            )
            .execute(&mut *tx)
            .await?;
        })
    }
}

/// The LMS requests made in the last [`WINDOW_MS`], by every process.
pub(super) struct RateWindow {
    pub(super) used: i64,
    oldest: Option<i64>,
    /// When the latest request started.
    pub(super) newest: Option<i64>,
}
