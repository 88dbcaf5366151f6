//! Which work a claim takes: a SKU to look up, or the course whose batch is
//! ready. Found by index probes, so that a claim costs the same however many
//! learners wait.

use sqlx::Row;

use super::claims::{RateWindow, CLAIMABLE, CLAIMABLE_STATES, DUE, UNRESOLVED_INDEX};
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
/// The service is busy while an LMS request is in flight or was made this
/// lately: then a course's learners gather while they keep arriving, so that
/// a burst goes in full batches after its first request.
const BUSY_AFTER_CALL_MS: i64 = 200;
/// Learners have stopped arriving for a course when none came for this long;
/// longer than the time between two of intake's commits under load.
const ARRIVALS_PAUSE_MS: i64 = 50;
/// How many courses a claim looks at for one whose batch is ready.
const GROUPS_LOOKED_AT: usize = 100;
/// The items under a lease, found without reading the waiting ones.
const CLAIM_INDEX: &str = "enrollments_by_claim";
/// Due items in the order they fell due.
const DUE_INDEX: &str = "enrollments_due";

impl SqlStore {
    /// What to claim next: a SKU to look up, or the course whose batch is
    /// ready — full, or free: no request to it in flight and, while the
    /// service is busy (a request in flight or made in the last
    /// [`BUSY_AFTER_CALL_MS`]), none of its learners arrived for
    /// [`ARRIVALS_PAUSE_MS`]; or waiting long enough. Once half of the rate
    /// limit's window is spent, no course is free: from then on a steady
    /// trickle of orders would spend the limit one learner at a time. A lone
    /// order into an idle service goes at once; while a course's request is
    /// in flight, and while a burst's learners keep arriving, they gather
    /// into full batches. The courses are taken oldest first, one index
    /// probe each: the cost does not grow with the backlog.
    pub(super) async fn next_work(
        &self,
        tx: &mut Tx,
        now: i64,
        batch: usize,
        window: &RateWindow,
        rate_limit: u32,
    ) -> Result<Result<ClaimedWork, Idle>, StoreError> {
        let scarce = window.used * 2 >= i64::from(rate_limit);
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
        let busy = !in_flight.is_empty()
            || window
                .newest
                .is_some_and(|at| at > now - BUSY_AFTER_CALL_MS);
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
            let free = !scarce && !in_flight.contains(&group);
            let mut ready_at = (oldest + BATCH_LINGER_MS).min(now + GATHER_RECHECK_MS);
            // A call for one learner has no batch to fill.
            if work.one_learner_a_call() || (free && !busy) || oldest + BATCH_LINGER_MS <= now {
                return Ok(Ok(work));
            }
            let gathered = self.gathered(tx, now, &group, batch).await?;
            let paused_at = gathered.newest + ARRIVALS_PAUSE_MS;
            if gathered.learners >= batch || (free && paused_at <= now) {
                return Ok(Ok(work));
            }
            if free {
                ready_at = ready_at.min(paused_at);
            }
            // Looked at again shortly rather than woken by every delivery: the
            // worker whose request is in flight claims the batch when answered.
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

    /// How many of a course's learners are due and free, counting to
    /// `batch` at most, and when the newest of them arrived (fell due), if
    /// fewer.
    async fn gathered(
        &self,
        tx: &mut Tx,
        now: i64,
        group: &Group,
        batch: usize,
    ) -> Result<Gathered, StoreError> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT COUNT(*) AS n, MAX(due_at) AS newest FROM (SELECT due_at FROM enrollments WHERE {DUE} \
             AND course_key = ? AND action = ? AND mode {} ? LIMIT ?) waiting",
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
        Ok(Gathered {
            learners: row.try_get::<i64, _>("n")? as usize,
            newest: row
                .try_get::<Option<i64>, _>("newest")?
                .unwrap_or(i64::MIN / 2),
        })
    }
}

/// A course's learners gathered for its next request.
struct Gathered {
    learners: usize,
    newest: i64,
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::store::sql::{file_store, SqlStore};
    use crate::store::{now_ms, ClaimResult, Idle};

    const COURSE: &str = "course-v1:Org+Burst+2026";
    const BATCH: usize = 5;

    /// A store with learners of one course that arrived (fell due) so many
    /// ms ago, the newest last, and an LMS request (to any course) made
    /// `called` ms ago, if any; a connection to its file; and when "now" was.
    async fn waiting(learners: &[i64], called: Option<i64>) -> Waiting {
        let (dir, store, conn) = file_store().await;
        let now = now_ms();
        conn.execute(
            "INSERT INTO orders (platform, shop, external_id, number, paid, cancelled, state, created_at, updated_at) \
             VALUES ('shopify', 'shop.example', '1', '#1', 1, 0, 'pending', ?1, ?1)",
            [now],
        )
        .unwrap();
        for (n, ago) in learners.iter().enumerate() {
            conn.execute(
                "INSERT INTO enrollments (order_id, line_item_id, sku, course_key, email, action, state, due_at, created_at, updated_at) \
                 VALUES (1, ?1, 'sku', ?2, ?3, 'enroll', 'pending', ?4, ?4, ?4)",
                rusqlite::params![n.to_string(), COURSE, format!("l{n}@example.org"), now - ago],
            )
            .unwrap();
        }
        if let Some(ago) = called {
            conn.execute("INSERT INTO lms_calls (at) VALUES (?1)", [now - ago])
                .unwrap();
        }
        Waiting {
            _dir: dir,
            store,
            conn,
            now,
        }
    }

    struct Waiting {
        _dir: tempfile::TempDir,
        store: SqlStore,
        conn: rusqlite::Connection,
        now: i64,
    }

    async fn claim(store: &SqlStore) -> ClaimResult {
        store
            .claim_next(BATCH, Duration::from_secs(60), 100)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_course_goes_at_once_into_an_idle_service() {
        let w = waiting(&[2], None).await;
        assert!(matches!(claim(&w.store).await, ClaimResult::Claimed(c) if c.items.len() == 1));
        // A request made long ago: the same.
        let w = waiting(&[2], Some(5_000)).await;
        assert!(matches!(claim(&w.store).await, ClaimResult::Claimed(_)));
    }

    #[tokio::test]
    async fn a_busy_service_gathers_a_course_while_its_learners_keep_arriving() {
        // Conclusive only when the claim ran before the newest learner's
        // arrival was ARRIVALS_PAUSE_MS old: on a machine too busy for that,
        // the store is made again.
        for _ in 0..20 {
            let w = waiting(&[30, 2], Some(100)).await;
            let newest = w.now - 2;
            let claimed = claim(&w.store).await;
            if now_ms() >= newest + super::ARRIVALS_PAUSE_MS {
                continue;
            }
            match claimed {
                ClaimResult::Idle(Idle::NothingDue {
                    next_due_ms: Some(at),
                }) => {
                    // Looked at again once arrivals have paused, not later.
                    assert!(at <= newest + super::ARRIVALS_PAUSE_MS + 1, "{at}");
                    return;
                }
                other => panic!("claimed while learners still arrive: {other:?}"),
            }
        }
        panic!(
            "no claim ran within {} ms of the store's making",
            super::ARRIVALS_PAUSE_MS
        );
    }

    #[tokio::test]
    async fn a_request_in_flight_to_another_course_makes_the_service_busy() {
        for _ in 0..20 {
            let w = waiting(&[30, 2], None).await;
            w.conn.execute(
                "INSERT INTO enrollments (order_id, line_item_id, sku, course_key, email, action, state, due_at, \
                 claim_token, lease_until, created_at, updated_at) \
                 VALUES (1, 'other', 'sku', 'course-v1:Org+Other+2026', 'o@example.org', 'enroll', 'pending', ?1, \
                 'token', ?2, ?1, ?1)",
                [w.now - 500, w.now + 60_000],
            )
            .unwrap();
            let claimed = claim(&w.store).await;
            if now_ms() >= w.now - 2 + super::ARRIVALS_PAUSE_MS {
                continue;
            }
            assert!(
                matches!(claimed, ClaimResult::Idle(Idle::NothingDue { .. })),
                "claimed while learners still arrive: {claimed:?}"
            );
            return;
        }
        panic!(
            "no claim ran within {} ms of the store's making",
            super::ARRIVALS_PAUSE_MS
        );
    }

    #[tokio::test]
    async fn a_busy_service_sends_a_course_once_its_arrivals_pause_or_its_batch_is_full() {
        let w = waiting(&[300, 120], Some(100)).await;
        assert!(matches!(claim(&w.store).await, ClaimResult::Claimed(c) if c.items.len() == 2));
        let w = waiting(&[5, 4, 3, 2, 1], Some(100)).await;
        assert!(matches!(claim(&w.store).await, ClaimResult::Claimed(c) if c.items.len() == BATCH));
    }
}
