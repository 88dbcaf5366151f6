//! Which work a claim takes: a SKU to look up, or the course whose batch is
//! ready. Found by index probes, so that a claim costs the same however many
//! learners wait.

use sqlx::Row;

use super::claims::{CLAIMABLE, CLAIMABLE_STATES, DUE, UNRESOLVED_INDEX};
use super::{opt_text, parse, text, SqlStore, Tx};
use crate::domain::CourseKey;
use crate::store::{ClaimedWork, Idle, StoreError};

/// A course's batch gathers while a request to it is in flight, but goes once
/// its oldest learner has waited this long, whatever is in flight.
const BATCH_LINGER_MS: i64 = 1_000;
/// While a course's batch gathers, how soon a claim looks again; shorter than
/// the wait after which a worker is woken by new work, so that a burst's
/// every delivery does not wake the idle workers to find the batch unready.
const GATHER_RECHECK_MS: i64 = 50;
/// How many courses a claim looks at for one whose batch is ready.
const GROUPS_LOOKED_AT: usize = 100;
/// The items under a lease, found without reading the waiting ones.
const CLAIM_INDEX: &str = "enrollments_by_claim";
/// Due items in the order they fell due.
const DUE_INDEX: &str = "enrollments_due";

impl SqlStore {
    /// What to claim next: a SKU to look up, or the course whose batch is
    /// ready — full, or with no request to it in flight (while requests are
    /// not `scarce`: half the rate limit's window spent, from when a steady
    /// trickle of orders would spend the limit one learner at a time), or
    /// waiting long enough. A lone order goes at once; while a course's
    /// request is in flight its next learners gather into one batch. The
    /// courses are taken oldest first, one index probe each: the cost does
    /// not grow with the backlog.
    pub(super) async fn next_work(
        &self,
        tx: &mut Tx,
        now: i64,
        batch: usize,
        scarce: bool,
    ) -> Result<Result<ClaimedWork, Idle>, StoreError> {
        let due = DUE;
        let lookup = sqlx::query(self.sql(&format!(
            "SELECT sku FROM enrollments{} WHERE {due} AND course_key IS NULL ORDER BY due_at, id LIMIT 1{}",
            self.dialect.indexed_by(UNRESOLVED_INDEX),
            self.dialect.skip_locked()
        )))
        .bind(now)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = lookup {
            return Ok(Ok(ClaimedWork::LookupSku {
                sku: text(&row, "sku")?,
            }));
        }

        let in_flight = self.groups_in_flight(tx, now).await?;
        let mut passed: Vec<Group> = Vec::new();
        let mut wake: Option<i64> = None;
        while passed.len() < GROUPS_LOOKED_AT {
            let Some((group, oldest)) = self.oldest_due_group(tx, now, &passed).await? else {
                break;
            };
            let Some(course) = CourseKey::parse(&group.course_key) else {
                passed.push(group);
                continue;
            };
            let work = ClaimedWork::CallLms {
                course,
                action: parse(&group.action)?,
                mode: group.mode.clone(),
            };
            // A call for one learner has no batch to fill.
            let ready = work.one_learner_a_call()
                || (!in_flight.contains(&group) && !scarce)
                || oldest + BATCH_LINGER_MS <= now
                || self.waiting_in(tx, now, &group, batch).await? >= batch;
            if ready {
                return Ok(Ok(work));
            }
            // Looked at again shortly rather than woken by every delivery: the
            // worker whose request is in flight claims the batch when answered.
            let ready_at = (oldest + BATCH_LINGER_MS).min(now + GATHER_RECHECK_MS);
            wake = Some(wake.map_or(ready_at, |w| w.min(ready_at)));
            passed.push(group);
        }
        if wake.is_none() {
            let row = sqlx::query(self.sql(&format!(
                "SELECT MIN({}(due_at, COALESCE(lease_until, 0))) AS next_due FROM enrollments WHERE state IN ({CLAIMABLE})",
                self.dialect.greatest()
            )))
            .fetch_one(&mut **tx)
            .await?;
            wake = row.try_get("next_due")?;
        }
        Ok(Err(Idle::NothingDue { next_due_ms: wake }))
    }

    /// The courses (with action and mode) a request is in flight to: read
    /// from the items under a lease, however many wait.
    async fn groups_in_flight(&self, tx: &mut Tx, now: i64) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(self.sql(&format!(
            "SELECT DISTINCT course_key, action, mode FROM enrollments{} \
             WHERE claim_token IS NOT NULL AND lease_until > ? AND state IN ({CLAIMABLE}) AND course_key IS NOT NULL",
            self.dialect.indexed_by(CLAIM_INDEX)
        )))
        .bind(now)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter().map(Group::of_row).collect()
    }

    /// The course of the item due longest, among those not `passed`, and
    /// when that item fell due. One probe of the due index per state.
    async fn oldest_due_group(
        &self,
        tx: &mut Tx,
        now: i64,
        passed: &[Group],
    ) -> Result<Option<(Group, i64)>, StoreError> {
        let not_passed = format!(
            " AND NOT (course_key = ? AND action = ? AND mode {} ?)",
            self.dialect.null_safe_eq()
        )
        .repeat(passed.len());
        // Each state's oldest in one statement: a probe of the index each.
        let probe = format!(
            "SELECT course_key, action, mode, due_at, id FROM enrollments{} \
             WHERE state = ? AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
             AND course_key IS NOT NULL{not_passed} ORDER BY due_at, id LIMIT 1",
            self.dialect.indexed_by(DUE_INDEX)
        );
        let probes: Vec<String> = (0..CLAIMABLE_STATES.len())
            .map(|n| format!("SELECT * FROM ({probe}) oldest_{n}"))
            .collect();
        let mut query = sqlx::query(self.sql(&probes.join(" UNION ALL ")));
        for state in CLAIMABLE_STATES {
            query = query.bind(state).bind(now).bind(now);
            for group in passed {
                query = query
                    .bind(group.course_key.clone())
                    .bind(group.action.clone())
                    .bind(group.mode.clone());
            }
        }
        let mut oldest: Option<(Group, i64, i64)> = None;
        for row in query.fetch_all(&mut **tx).await? {
            let (due_at, id): (i64, i64) = (row.try_get("due_at")?, row.try_get("id")?);
            if oldest
                .as_ref()
                .is_none_or(|(_, d, i)| (due_at, id) < (*d, *i))
            {
                oldest = Some((Group::of_row(&row)?, due_at, id));
            }
        }
        Ok(oldest.map(|(group, due_at, _)| (group, due_at)))
    }

    /// How many of a course's items are due and free, counting to `batch` at most.
    async fn waiting_in(
        &self,
        tx: &mut Tx,
        now: i64,
        group: &Group,
        batch: usize,
    ) -> Result<usize, StoreError> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT COUNT(*) AS n FROM (SELECT id FROM enrollments WHERE {DUE} AND course_key = ? \
             AND action = ? AND mode {} ? LIMIT ?) waiting",
            self.dialect.null_safe_eq()
        )))
        .bind(now)
        .bind(now)
        .bind(group.course_key.clone())
        .bind(group.action.clone())
        .bind(group.mode.clone())
        .bind(batch as i64)
        .fetch_one(&mut **tx)
        .await?;
        Ok(row.try_get::<i64, _>("n")? as usize)
    }
}

/// A course, action and mode: the items one LMS request may carry.
#[derive(Debug, PartialEq, Eq)]
struct Group {
    course_key: String,
    action: String,
    mode: Option<String>,
}

impl Group {
    fn of_row(row: &sqlx::any::AnyRow) -> Result<Group, StoreError> {
        Ok(Group {
            course_key: text(row, "course_key")?,
            action: text(row, "action")?,
            mode: opt_text(row, "mode")?,
        })
    }
}
