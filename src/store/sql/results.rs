//! An LMS answer recorded: a claim's results written to its items, in a few
//! statements whatever its size, and what every worker must learn of the LMS.

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use super::claims::HELD;
use super::{clip, id_list, parse, sources_of, text, transaction, value_runs_of, SqlStore, Tx};
use crate::domain::{Action, EnrollmentState};
use crate::store::dialect::Dialect;
use crate::store::{ClaimReport, ItemResult, LmsCondition, StoreError};

impl SqlStore {
    pub async fn finish_claim(
        &self,
        report: &ClaimReport,
        unenroll_on_cancel: bool,
    ) -> Result<usize, StoreError> {
        let written = transaction!(self, |tx, now| {
            self.write_results(&mut tx, now, report, unenroll_on_cancel)
                .await?
        })?;
        if written == 0 && !report.results.is_empty() {
            return Err(StoreError::LeaseLost);
        }
        Ok(written)
    }

    /// Writes a claim's results in a few statements whatever its size: items
    /// with the same result are updated together.
    async fn write_results(
        &self,
        tx: &mut Tx,
        now: i64,
        report: &ClaimReport,
        unenroll_on_cancel: bool,
    ) -> Result<usize, StoreError> {
        let mut orders = BTreeSet::new();
        let mut written = 0;
        // Only what this claim still holds: a lost lease writes nothing.
        let held: HashMap<i64, (i64, EnrollmentState)> = if report.results.is_empty() {
            HashMap::new()
        } else {
            let ids: Vec<i64> = report.results.iter().map(|(id, _, _)| *id).collect();
            let (among, listed) = id_list(&ids);
            let mut query = sqlx::query(self.sql(&format!(
                "SELECT id, order_id, state FROM enrollments WHERE claim_token = ? AND state IN ({HELD}) \
                 AND id IN ({among}) ORDER BY id{}",
                self.dialect.for_update()
            )))
            .bind(report.token.clone());
            for id in listed {
                query = query.bind(id);
            }
            let rows = query.fetch_all(&mut **tx).await?;
            rows.iter()
                .map(|r| {
                    let state = parse(&text(r, "state")?)?;
                    Ok((r.try_get("id")?, (r.try_get("order_id")?, state)))
                })
                .collect::<Result<_, StoreError>>()?
        };
        let mut updates: Vec<(ResultColumns, Vec<i64>)> = Vec::new();
        let mut attempts = Vec::new();
        for (id, result, attempt) in &report.results {
            let Some(&(order_id, state)) = held.get(id) else {
                continue;
            };
            let columns = if state == EnrollmentState::Cancelled {
                ResultColumns::after_cancellation(now, result, attempt.as_ref(), unenroll_on_cancel)
            } else {
                ResultColumns::new(now, result, attempt.as_ref())
            };
            match updates.iter_mut().find(|(c, _)| *c == columns) {
                Some((_, ids)) => ids.push(*id),
                None => updates.push((columns, vec![*id])),
            }
            if let Some(a) = attempt {
                attempts.push((*id, a));
            }
            orders.insert(order_id);
            written += 1;
        }
        for (columns, ids) in &updates {
            let (among, ids) = id_list(ids);
            let mut query =
                sqlx::query(self.sql(&result_update(self.dialect, &among, columns.state)))
                    .bind(columns.state.as_str())
                    .bind(columns.reason.clone())
                    .bind(columns.keep_due)
                    .bind(columns.keep_due)
                    .bind(columns.due_at)
                    .bind(columns.course_key.clone())
                    .bind(columns.before)
                    .bind(columns.spent)
                    .bind(columns.action)
                    .bind(columns.waits)
                    .bind(now)
                    .bind(now);
            for id in ids {
                query = query.bind(id);
            }
            query.execute(&mut **tx).await?;
        }
        // A batch's attempts in few statements: 8 values a row, far below
        // every database's limit on a statement's values.
        for attempts in value_runs_of(&attempts, 128) {
            let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; attempts.len()].join(", ");
            let mut query = sqlx::query(self.sql(&format!(
                "INSERT INTO attempts (enrollment_id, at, action, http_status, outcome, detail, duration_ms, counted) \
                 VALUES {rows}"
            )));
            for &(id, a) in attempts {
                query = query
                    .bind(id)
                    .bind(now)
                    .bind(a.action.as_str())
                    .bind(a.http_status.map(i64::from))
                    .bind(a.outcome.clone())
                    .bind(clip(&a.detail, 4000).to_owned())
                    .bind(a.duration_ms)
                    .bind(i64::from(a.counted));
            }
            query.execute(&mut **tx).await?;
        }
        match &report.lms {
            Some(LmsCondition::Throttled { until_ms }) => {
                sqlx::query(self.sql(&format!(
                    "UPDATE lms_state SET paused_until = {}(paused_until, ?) WHERE id = 1",
                    self.dialect.greatest()
                )))
                .bind(*until_ms)
                .execute(&mut **tx)
                .await?;
            }
            Some(LmsCondition::Misconfigured { reason, probe_in }) => {
                sqlx::query(
                    self.sql("UPDATE lms_state SET misconfigured = ?, probe_at = ? WHERE id = 1"),
                )
                .bind(clip(reason, 2000).to_owned())
                .bind(now + probe_in.as_millis() as i64)
                .execute(&mut **tx)
                .await?;
            }
            None => {}
        }
        let orders: Vec<i64> = orders.into_iter().collect();
        self.update_orders_state(tx, &orders, now).await?;
        Ok(written)
    }
}

/// Writes one result to the items listed (`among`), where the result may
/// follow their state; the items are found by their ids.
fn result_update(dialect: Dialect, among: &str, state: EnrollmentState) -> String {
    format!(
        "UPDATE enrollments{} SET state = ?, reason = COALESCE(?, CASE WHEN ? = 1 THEN reason END), \
         due_at = CASE WHEN ? = 1 THEN due_at ELSE ? END, course_key = COALESCE(?, course_key), \
         before_enrollment = COALESCE(?, before_enrollment), attempts = attempts + ?, \
         action = COALESCE(?, action), \
         account_wait_since = CASE WHEN ? = 1 THEN COALESCE(account_wait_since, ?) ELSE account_wait_since END, \
         claim_token = NULL, lease_until = NULL, updated_at = ? WHERE id IN ({among}) AND state IN ({})",
        dialect.by_id(),
        sources_of(state)
    )
}

/// The columns one result writes to its enrollment: results alike are
/// written by one statement.
#[derive(Debug, PartialEq, Eq)]
struct ResultColumns {
    state: EnrollmentState,
    reason: Option<String>,
    /// Keeps the due time and reason as they were (a released claim).
    keep_due: i64,
    due_at: i64,
    course_key: Option<String>,
    before: Option<i64>,
    /// Whether an attempt was spent.
    spent: i64,
    /// The action from now on, where it changes (an invitation, then the seat).
    action: Option<&'static str>,
    /// Whether the item waits for an account (the wait starts, if not begun).
    waits: i64,
}

impl ResultColumns {
    /// The result of a call that was in flight when its item was cancelled.
    /// A learner the call enrolled keeps the course, unless the order's
    /// enrollment gave it and cancellations unenroll: then the unenroll is
    /// queued. Any other answer leaves the item cancelled.
    fn after_cancellation(
        now: i64,
        result: &ItemResult,
        attempt: Option<&crate::store::AttemptRecord>,
        unenroll_on_cancel: bool,
    ) -> Self {
        let columns = ResultColumns::new(now, result, attempt);
        match result {
            ItemResult::Enrolled {
                before_enrollment: Some(false),
            } if unenroll_on_cancel => ResultColumns {
                state: EnrollmentState::Pending,
                reason: Some(
                    "cancelled while the LMS was enrolling the learner: to be unenrolled".into(),
                ),
                action: Some(Action::Unenroll.as_str()),
                ..columns
            },
            ItemResult::Enrolled { before_enrollment } => ResultColumns {
                reason: Some(
                    if *before_enrollment == Some(true) {
                        "cancelled while the LMS was enrolling the learner, who was enrolled before this order"
                    } else {
                        "cancelled while the LMS was enrolling the learner, who keeps the course \
                         (EDX_WEBHOOKS_UNENROLL_ON_CANCEL is off)"
                    }
                    .into(),
                ),
                ..columns
            },
            _ => ResultColumns {
                state: EnrollmentState::Cancelled,
                reason: None,
                keep_due: 1,
                before: None,
                action: None,
                waits: 0,
                ..columns
            },
        }
    }

    fn new(now: i64, result: &ItemResult, attempt: Option<&crate::store::AttemptRecord>) -> Self {
        let (state, reason, due_at, course_key, before) = match result {
            ItemResult::Enrolled { before_enrollment } => (
                EnrollmentState::Enrolled,
                None,
                now,
                None,
                before_enrollment.map(i64::from),
            ),
            ItemResult::Unenrolled => (EnrollmentState::Unenrolled, None, now, None, None),
            ItemResult::Failed { reason } => (
                EnrollmentState::Failed,
                Some(reason.as_str()),
                now,
                None,
                None,
            ),
            ItemResult::RetryLater { delay, reason } => (
                EnrollmentState::Pending,
                Some(reason.as_str()),
                now + delay.as_millis() as i64,
                None,
                None,
            ),
            ItemResult::Released => (EnrollmentState::Pending, None, now, None, None),
            ItemResult::CourseResolved(key) => (
                EnrollmentState::Pending,
                None,
                now,
                Some(key.as_str()),
                None,
            ),
            ItemResult::Skipped { reason } => (
                EnrollmentState::Skipped,
                Some(reason.as_str()),
                now,
                None,
                None,
            ),
            ItemResult::AwaitingAccount { delay, .. } => (
                EnrollmentState::AwaitingAccount,
                Some("the learner has no LMS account yet: invited to register; the paid seat follows once they do"),
                now + delay.as_millis() as i64,
                None,
                // Nothing of the course was theirs before: the seat will be our order's.
                Some(0),
            ),
            ItemResult::AccountFound => (EnrollmentState::Pending, None, now, None, None),
        };
        let action = match result {
            ItemResult::AwaitingAccount { invite: true, .. } => Some(Action::Invite.as_str()),
            ItemResult::AwaitingAccount { invite: false, .. } | ItemResult::AccountFound => {
                Some(Action::Enroll.as_str())
            }
            _ => None,
        };
        ResultColumns {
            state,
            reason: reason.map(|r| clip(r, 2000).to_owned()),
            keep_due: i64::from(matches!(result, ItemResult::Released)),
            due_at,
            course_key: course_key.map(str::to_owned),
            before,
            spent: i64::from(attempt.is_some_and(|a| a.counted)),
            action,
            waits: i64::from(matches!(result, ItemResult::AwaitingAccount { .. })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::result_update;
    use crate::domain::EnrollmentState;
    use crate::store::dialect::Dialect;
    use crate::store::sql::{file_store, id_list};

    /// Given a batch's hundred ids beside `state IN (…)`, SQLite's planner
    /// read the whole range of the state index instead: every waiting item,
    /// so that a result cost more the longer the backlog.
    #[tokio::test]
    async fn a_batch_of_results_finds_its_items_by_id() {
        let (_dir, _store, conn) = file_store().await;
        for size in [1, 25, 100, 256] {
            let ids: Vec<i64> = (1..=size).collect();
            let (among, _) = id_list(&ids);
            for state in [EnrollmentState::Enrolled, EnrollmentState::Pending] {
                let sql = result_update(Dialect::Sqlite, &among, state);
                let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
                let unbound = vec![rusqlite::types::Null; plan.parameter_count()];
                let steps: Vec<String> = plan
                    .query_map(rusqlite::params_from_iter(unbound), |row| row.get(3))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert!(
                    steps.iter().all(|s| s.contains("INTEGER PRIMARY KEY")),
                    "{size} ids, {state:?}: {steps:?}"
                );
            }
        }
    }
}
