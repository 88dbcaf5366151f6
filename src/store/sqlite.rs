//! SQLite: WAL, `synchronous=FULL` (an answered delivery survives a power cut),
//! one writer connection per process and `BEGIN IMMEDIATE` for every write, so
//! writers queue instead of failing with "database is locked".

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool, Transaction};

use super::intake::{self, ItemChange, StoredItem};
use super::*;
use crate::domain::{Acceptance, Delivery};
use crate::shops::Verified;

type Tx = Transaction<'static, sqlx::Sqlite>;

#[derive(Clone)]
pub(super) struct Sqlite {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// `'a','b'`: the states a row may be in to move to `next` (and `next` itself).
fn sources_of(next: EnrollmentState) -> String {
    let mut states: Vec<&str> = next.reachable_from().iter().map(|s| s.as_str()).collect();
    states.push(next.as_str());
    states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}

impl Sqlite {
    pub async fn connect(url: &str) -> Result<Sqlite, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Sqlite { writer, reader })
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT id FROM lms_state WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok(())
    }

    async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn record_request(
        &self,
        request: &RequestRecord,
        http_status: u16,
        outcome: &str,
        reason: Option<&str>,
    ) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id = insert_request(&mut tx, request, None, http_status, outcome, reason, None).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn accept_delivery(
        &self,
        request: &RequestRecord,
        verified: &Verified,
        policy: IntakePolicy,
    ) -> Result<(i64, Acceptance, bool), StoreError> {
        let mut tx = self.begin().await?;
        let platform = request.platform.as_str();
        let shop = verified.shop.as_str();

        if let Some(webhook_id) = &verified.webhook_id {
            let seen: Option<(Option<i64>,)> = sqlx::query_as(
                "SELECT order_id FROM requests WHERE platform = ? AND shop = ? AND webhook_id = ? \
                 AND outcome IN ('accepted', 'awaiting_payment') LIMIT 1",
            )
            .bind(platform)
            .bind(shop)
            .bind(webhook_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((order_id,)) = seen {
                let reason = format!("webhook {webhook_id} was accepted before");
                let id = insert_request(
                    &mut tx,
                    request,
                    Some(verified),
                    200,
                    "duplicate",
                    Some(&reason),
                    order_id,
                )
                .await?;
                tx.commit().await?;
                return Ok((id, Acceptance::Duplicate, false));
            }
        }

        let (acceptance, order_id, reason, new_work) = match &verified.delivery {
            Delivery::Ignored { topic } => (
                Acceptance::Ignored,
                None,
                Some(format!("topic {topic} needs nothing from us")),
                false,
            ),
            Delivery::Refund {
                order_id,
                line_items,
            } => match find_order_row(&mut tx, platform, shop, order_id).await? {
                None => (
                    Acceptance::Ignored,
                    None,
                    Some(format!(
                        "refund for order {order_id}, which we never received"
                    )),
                    false,
                ),
                Some((id, _, _)) => {
                    let stored = load_items(&mut tx, id).await?;
                    let changes = intake::plan_refund(&stored, line_items, policy);
                    let new_work = apply_changes(&mut tx, id, &changes).await?;
                    update_order_state(&mut tx, id).await?;
                    let acceptance = if changes.is_empty() {
                        Acceptance::Duplicate
                    } else {
                        Acceptance::Accepted
                    };
                    (acceptance, Some(id), None, new_work)
                }
            },
            Delivery::Order(order) => {
                let now = now_ms();
                let existing = find_order_row(&mut tx, platform, shop, &order.id).await?;
                let (paid, cancelled) =
                    intake::merged_flags(existing.map(|(_, p, c)| (p, c)), order);
                let (id, row_changed) = match existing {
                    Some((id, _, _)) => {
                        let result = sqlx::query(
                            "UPDATE orders SET number = ?, buyer_email = ?, paid = ?, cancelled = ?, updated_at = ? \
                             WHERE id = ? AND NOT (number = ? AND buyer_email IS ? AND paid = ? AND cancelled = ?)",
                        )
                        .bind(&order.number)
                        .bind(&order.buyer_email)
                        .bind(paid)
                        .bind(cancelled)
                        .bind(now)
                        .bind(id)
                        .bind(&order.number)
                        .bind(&order.buyer_email)
                        .bind(paid)
                        .bind(cancelled)
                        .execute(&mut *tx)
                        .await?;
                        (id, result.rows_affected() > 0)
                    }
                    None => {
                        let result = sqlx::query(
                            "INSERT INTO orders (platform, shop, external_id, number, buyer_email, paid, cancelled, state, created_at, updated_at) \
                             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        )
                        .bind(platform)
                        .bind(shop)
                        .bind(&order.id)
                        .bind(&order.number)
                        .bind(&order.buyer_email)
                        .bind(paid)
                        .bind(cancelled)
                        .bind(OrderState::Processing.as_str())
                        .bind(now)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        (result.last_insert_rowid(), true)
                    }
                };
                let stored = load_items(&mut tx, id).await?;
                let changes = intake::plan_order(&stored, order, paid, cancelled, policy);
                let new_work = apply_changes(&mut tx, id, &changes).await?;
                update_order_state(&mut tx, id).await?;
                let acceptance = if changes.is_empty() && !row_changed {
                    Acceptance::Duplicate
                } else if policy.require_payment && !paid && !cancelled {
                    Acceptance::AwaitingPayment
                } else {
                    Acceptance::Accepted
                };
                (acceptance, Some(id), None, new_work)
            }
        };
        let id = insert_request(
            &mut tx,
            request,
            Some(verified),
            200,
            acceptance.as_str(),
            reason.as_deref(),
            order_id,
        )
        .await?;
        tx.commit().await?;
        Ok((id, acceptance, new_work))
    }

    pub async fn claim_next(
        &self,
        batch: usize,
        lease: Duration,
        rate_limit: u32,
    ) -> Result<ClaimResult, StoreError> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let (paused_until, misconfigured): (i64, Option<String>) =
            sqlx::query_as("SELECT paused_until, misconfigured FROM lms_state WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        if let Some(reason) = misconfigured {
            return Ok(ClaimResult::Idle(Idle::Misconfigured { reason }));
        }
        if paused_until > now {
            return Ok(ClaimResult::Idle(Idle::Throttled {
                until_ms: paused_until,
            }));
        }

        let head: Option<(Option<String>, String, String)> = sqlx::query_as(
            "SELECT course_key, sku, action FROM enrollments \
             WHERE state = 'pending' AND due_at <= ? AND (lease_until IS NULL OR lease_until <= ?) \
             ORDER BY due_at, id LIMIT 1",
        )
        .bind(now)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((course_key, sku, action)) = head else {
            let (next_due_ms,): (Option<i64>,) = sqlx::query_as(
                "SELECT MIN(MAX(due_at, COALESCE(lease_until, 0))) FROM enrollments WHERE state = 'pending'",
            )
            .fetch_one(&mut *tx)
            .await?;
            return Ok(ClaimResult::Idle(Idle::NothingDue { next_due_ms }));
        };

        let work = match course_key.as_deref().and_then(CourseKey::parse) {
            None => ClaimedWork::LookupSku { sku },
            Some(course) => {
                sqlx::query("DELETE FROM lms_calls WHERE at <= ?")
                    .bind(now - 60_000)
                    .execute(&mut *tx)
                    .await?;
                let (used, oldest): (i64, Option<i64>) =
                    sqlx::query_as("SELECT COUNT(*), MIN(at) FROM lms_calls")
                        .fetch_one(&mut *tx)
                        .await?;
                if used >= i64::from(rate_limit) {
                    let until_ms = oldest.unwrap_or(now) + 60_000;
                    return Ok(ClaimResult::Idle(Idle::RateLimited { until_ms }));
                }
                sqlx::query("INSERT INTO lms_calls (at) VALUES (?)")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                let action =
                    Action::from_str(&action).map_err(|e| StoreError::Invalid(e.to_string()))?;
                ClaimedWork::CallLms { course, action }
            }
        };

        let select = match &work {
            ClaimedWork::LookupSku { .. } => {
                "SELECT e.id FROM enrollments e WHERE e.state = 'pending' AND e.due_at <= ? \
                 AND (e.lease_until IS NULL OR e.lease_until <= ?) AND e.course_key IS NULL AND e.sku = ? \
                 ORDER BY e.due_at, e.id LIMIT ?"
            }
            ClaimedWork::CallLms { .. } => {
                "SELECT e.id FROM enrollments e WHERE e.state = 'pending' AND e.due_at <= ? \
                 AND (e.lease_until IS NULL OR e.lease_until <= ?) AND e.course_key = ? AND e.action = ? \
                 ORDER BY e.due_at, e.id LIMIT ?"
            }
        };
        let mut query = sqlx::query_as::<_, (i64,)>(select).bind(now).bind(now);
        query = match &work {
            ClaimedWork::LookupSku { sku } => query.bind(sku.clone()),
            ClaimedWork::CallLms { course, action } => {
                query.bind(course.as_str().to_owned()).bind(action.as_str())
            }
        };
        let ids: Vec<(i64,)> = query.bind(batch as i64).fetch_all(&mut *tx).await?;

        let token = uuid::Uuid::new_v4().to_string();
        let lease_until = now + lease.as_millis() as i64;
        let mut items = Vec::with_capacity(ids.len());
        for (id,) in ids {
            sqlx::query("UPDATE enrollments SET claim_token = ?, lease_until = ? WHERE id = ?")
                .bind(&token)
                .bind(lease_until)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let row = sqlx::query(
                "SELECT e.order_id, e.email, e.attempts, o.platform, o.shop, o.number \
                 FROM enrollments e JOIN orders o ON o.id = e.order_id WHERE e.id = ?",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let email: Option<String> = row.try_get("email")?;
            let platform: String = row.try_get("platform")?;
            items.push(ClaimedItem {
                enrollment_id: id,
                order_id: row.try_get("order_id")?,
                platform: platform
                    .parse()
                    .map_err(|e: crate::domain::UnknownValue| StoreError::Invalid(e.to_string()))?,
                shop: row.try_get("shop")?,
                order_number: row.try_get("number")?,
                email: email.as_deref().and_then(|e| LearnerEmail::parse(e).ok()),
                attempts: row.try_get::<i64, _>("attempts")? as u32,
            });
        }
        tx.commit().await?;
        Ok(ClaimResult::Claimed(Claim { token, work, items }))
    }

    pub async fn renew_claim(&self, token: &str, lease: Duration) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let result = sqlx::query(
            "UPDATE enrollments SET lease_until = ? WHERE claim_token = ? AND state = 'pending'",
        )
        .bind(now_ms() + lease.as_millis() as i64)
        .bind(token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::LeaseLost);
        }
        Ok(())
    }

    pub async fn finish_claim(&self, report: &ClaimReport) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let mut orders = BTreeSet::new();
        let mut written = 0;
        for (id, result, attempt) in &report.results {
            let held: Option<(i64,)> =
                sqlx::query_as("SELECT order_id FROM enrollments WHERE id = ? AND claim_token = ? AND state = 'pending'")
                    .bind(id)
                    .bind(&report.token)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some((order_id,)) = held else { continue };
            let spent = i64::from(attempt.as_ref().is_some_and(|a| a.counted));
            let (state, reason, due_at, course_key, before): (
                EnrollmentState,
                Option<&str>,
                i64,
                Option<&str>,
                Option<bool>,
            ) = match result {
                ItemResult::Enrolled { before_enrollment } => (
                    EnrollmentState::Enrolled,
                    None,
                    now,
                    None,
                    *before_enrollment,
                ),
                ItemResult::Unenrolled => (EnrollmentState::Unenrolled, None, now, None, None),
                ItemResult::Failed { reason } => {
                    (EnrollmentState::Failed, Some(reason), now, None, None)
                }
                ItemResult::RetryLater { delay, reason } => (
                    EnrollmentState::Pending,
                    Some(reason),
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
                ItemResult::Skipped { reason } => {
                    (EnrollmentState::Skipped, Some(reason), now, None, None)
                }
            };
            let keep_due = matches!(result, ItemResult::Released);
            let sql = format!(
                "UPDATE enrollments SET state = ?, reason = COALESCE(?, CASE WHEN ? THEN reason END), \
                 due_at = CASE WHEN ? THEN due_at ELSE ? END, course_key = COALESCE(?, course_key), \
                 before_enrollment = COALESCE(?, before_enrollment), attempts = attempts + ?, \
                 claim_token = NULL, lease_until = NULL, updated_at = ? WHERE id = ? AND state IN ({})",
                sources_of(state)
            );
            sqlx::query(&sql)
                .bind(state.as_str())
                .bind(reason)
                .bind(keep_due)
                .bind(keep_due)
                .bind(due_at)
                .bind(course_key)
                .bind(before)
                .bind(spent)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if let Some(a) = attempt {
                sqlx::query(
                    "INSERT INTO attempts (enrollment_id, at, action, http_status, outcome, detail, duration_ms, counted) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(id)
                .bind(now)
                .bind(a.action.as_str())
                .bind(a.http_status.map(i64::from))
                .bind(&a.outcome)
                .bind(&a.detail)
                .bind(a.duration_ms)
                .bind(a.counted)
                .execute(&mut *tx)
                .await?;
            }
            orders.insert(order_id);
            written += 1;
        }
        match &report.lms {
            Some(LmsCondition::Throttled { until_ms }) => {
                sqlx::query(
                    "UPDATE lms_state SET paused_until = MAX(paused_until, ?) WHERE id = 1",
                )
                .bind(until_ms)
                .execute(&mut *tx)
                .await?;
            }
            Some(LmsCondition::Misconfigured { reason, probe_in }) => {
                sqlx::query("UPDATE lms_state SET misconfigured = ?, probe_at = ? WHERE id = 1")
                    .bind(reason)
                    .bind(now + probe_in.as_millis() as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            None => {}
        }
        for order_id in orders {
            update_order_state(&mut tx, order_id).await?;
        }
        tx.commit().await?;
        if written == 0 && !report.results.is_empty() {
            return Err(StoreError::LeaseLost);
        }
        Ok(written)
    }

    pub async fn lms_status(&self) -> Result<LmsStatus, StoreError> {
        let (paused_until_ms, misconfigured): (i64, Option<String>) =
            sqlx::query_as("SELECT paused_until, misconfigured FROM lms_state WHERE id = 1")
                .fetch_one(&self.reader)
                .await?;
        Ok(LmsStatus {
            paused_until_ms,
            misconfigured,
        })
    }

    pub async fn claim_probe(&self, interval: Duration) -> Result<Option<String>, StoreError> {
        let mut tx = self.begin().await?;
        let now = now_ms();
        let (misconfigured, probe_at): (Option<String>, i64) =
            sqlx::query_as("SELECT misconfigured, probe_at FROM lms_state WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
        let Some(reason) = misconfigured.filter(|_| probe_at <= now) else {
            return Ok(None);
        };
        sqlx::query("UPDATE lms_state SET probe_at = ? WHERE id = 1")
            .bind(now + interval.as_millis() as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(reason))
    }

    pub async fn clear_misconfigured(&self) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE lms_state SET misconfigured = NULL, probe_at = 0 WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn find_order(&self, order: &str, shop: Option<&str>) -> Result<i64, StoreError> {
        let hashed = format!("#{}", order.trim_start_matches('#'));
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "SELECT id, shop FROM orders WHERE (external_id = ? OR number = ? OR number = ?) AND (? IS NULL OR shop = ?)",
        )
        .bind(order)
        .bind(order)
        .bind(&hashed)
        .bind(shop)
        .bind(shop)
        .fetch_all(&self.reader)
        .await?;
        match rows.as_slice() {
            [(id, _)] => Ok(*id),
            [] => {
                let own: Option<(i64,)> = match order.parse::<i64>() {
                    Ok(n) if shop.is_none() => {
                        sqlx::query_as("SELECT id FROM orders WHERE id = ?")
                            .bind(n)
                            .fetch_optional(&self.reader)
                            .await?
                    }
                    _ => None,
                };
                own.map(|(id,)| id)
                    .ok_or_else(|| StoreError::NotFound(format!("no order {order}")))
            }
            many => {
                let shops: Vec<&str> = many.iter().map(|(_, s)| s.as_str()).collect();
                Err(StoreError::Invalid(format!(
                    "order {order} exists in several shops ({}): name one with --shop",
                    shops.join(", ")
                )))
            }
        }
    }

    pub async fn retry_failed(&self, order_id: Option<i64>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let orders: Vec<(i64,)> = sqlx::query_as(
            "SELECT DISTINCT order_id FROM enrollments WHERE state = 'failed' AND email IS NOT NULL AND (? IS NULL OR order_id = ?)",
        )
        .bind(order_id)
        .bind(order_id)
        .fetch_all(&mut *tx)
        .await?;
        let sql = format!(
            "UPDATE enrollments SET state = 'pending', attempts = 0, reason = NULL, due_at = ?, claim_token = NULL, \
             lease_until = NULL, updated_at = ? WHERE state IN ({}) AND state = 'failed' AND email IS NOT NULL \
             AND (? IS NULL OR order_id = ?)",
            sources_of(EnrollmentState::Pending)
        );
        let now = now_ms();
        let result = sqlx::query(&sql)
            .bind(now)
            .bind(now)
            .bind(order_id)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        for (id,) in orders {
            update_order_state(&mut tx, id).await?;
        }
        tx.commit().await?;
        Ok(result.rows_affected())
    }

    pub async fn order_view(&self, order_id: i64) -> Result<OrderView, StoreError> {
        let row = sqlx::query(
            "SELECT id, platform, shop, external_id, number, state FROM orders WHERE id = ?",
        )
        .bind(order_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no order with id {order_id}")))?;
        let items = sqlx::query(
            "SELECT id, line_item_id, sku, course_key, email, action, state, reason, attempts FROM enrollments \
             WHERE order_id = ? ORDER BY id",
        )
        .bind(order_id)
        .fetch_all(&self.reader)
        .await?
        .into_iter()
        .map(|r| {
            Ok(ItemView {
                id: r.try_get("id")?,
                line_item_id: r.try_get("line_item_id")?,
                sku: r.try_get("sku")?,
                course_key: r.try_get("course_key")?,
                email: r.try_get("email")?,
                action: r.try_get("action")?,
                state: r.try_get("state")?,
                reason: r.try_get("reason")?,
                attempts: r.try_get::<i64, _>("attempts")? as u32,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(OrderView {
            id: row.try_get("id")?,
            platform: row.try_get("platform")?,
            shop: row.try_get("shop")?,
            external_id: row.try_get("external_id")?,
            number: row.try_get("number")?,
            state: row.try_get("state")?,
            items,
        })
    }

    pub async fn attempts(&self, enrollment_id: i64) -> Result<Vec<AttemptView>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, action, http_status, outcome, detail, duration_ms, counted FROM attempts \
             WHERE enrollment_id = ? ORDER BY id",
        )
        .bind(enrollment_id)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(AttemptView {
                    at_ms: r.try_get("at")?,
                    action: r.try_get("action")?,
                    http_status: r
                        .try_get::<Option<i64>, _>("http_status")?
                        .map(|s| s as u16),
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    duration_ms: r.try_get("duration_ms")?,
                    counted: r.try_get("counted")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn requests(&self, limit: i64) -> Result<Vec<RequestView>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, platform, http_status, outcome, reason, shop, topic, body_size, body_truncated, \
             length(body) AS stored, source_ip FROM requests ORDER BY id DESC LIMIT ?",
        )
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(RequestView {
                    id: r.try_get("id")?,
                    platform: r.try_get("platform")?,
                    http_status: r.try_get::<i64, _>("http_status")? as u16,
                    outcome: r.try_get("outcome")?,
                    reason: r.try_get("reason")?,
                    shop: r.try_get("shop")?,
                    topic: r.try_get("topic")?,
                    body_size: r.try_get::<i64, _>("body_size")? as u64,
                    body_truncated: r.try_get("body_truncated")?,
                    stored_body_len: r.try_get::<i64, _>("stored")? as u64,
                    source_ip: r.try_get("source_ip")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn count_enrollments(&self) -> Result<Vec<(EnrollmentState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM enrollments GROUP BY state")
                .fetch_all(&self.reader)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(s, n)| s.parse().ok().map(|s| (s, n)))
            .collect())
    }
}

#[allow(clippy::too_many_arguments)]
async fn insert_request(
    tx: &mut Tx,
    request: &RequestRecord,
    verified: Option<&Verified>,
    http_status: u16,
    outcome: &str,
    reason: Option<&str>,
    order_id: Option<i64>,
) -> Result<i64, StoreError> {
    let headers = serde_json::to_string(&request.headers).unwrap_or_else(|_| "[]".into());
    let shop = verified
        .map(|v| v.shop.as_str())
        .or(request.envelope.shop.as_deref());
    let topic = verified
        .map(|v| v.topic.as_str())
        .or(request.envelope.topic.as_deref());
    let result = sqlx::query(
        "INSERT INTO requests (received_at, platform, method, endpoint, source_ip, headers, body, body_size, body_truncated, \
         http_status, outcome, reason, shop, topic, webhook_id, order_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(now_ms())
    .bind(request.platform.as_str())
    .bind(&request.method)
    .bind(&request.endpoint)
    .bind(&request.source_ip)
    .bind(headers)
    .bind(&request.body)
    .bind(request.body_size as i64)
    .bind(request.body_truncated)
    .bind(i64::from(http_status))
    .bind(outcome)
    .bind(reason)
    .bind(shop)
    .bind(topic)
    .bind(&request.envelope.webhook_id)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(result.last_insert_rowid())
}

async fn find_order_row(
    tx: &mut Tx,
    platform: &str,
    shop: &str,
    external_id: &str,
) -> Result<Option<(i64, bool, bool)>, StoreError> {
    Ok(
        sqlx::query_as("SELECT id, paid, cancelled FROM orders WHERE platform = ? AND shop = ? AND external_id = ?")
            .bind(platform)
            .bind(shop)
            .bind(external_id)
            .fetch_optional(&mut **tx)
            .await?,
    )
}

async fn load_items(tx: &mut Tx, order_id: i64) -> Result<Vec<StoredItem>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, line_item_id, sku, course_key, email, action, state, before_enrollment FROM enrollments WHERE order_id = ?",
    )
    .bind(order_id)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|r| {
            let action: String = r.try_get("action")?;
            let state: String = r.try_get("state")?;
            Ok(StoredItem {
                id: r.try_get("id")?,
                line_item_id: r.try_get("line_item_id")?,
                sku: r.try_get("sku")?,
                course_key: r.try_get("course_key")?,
                email: r.try_get("email")?,
                action: action
                    .parse()
                    .map_err(|e: crate::domain::UnknownValue| StoreError::Invalid(e.to_string()))?,
                state: state
                    .parse()
                    .map_err(|e: crate::domain::UnknownValue| StoreError::Invalid(e.to_string()))?,
                before_enrollment: r.try_get("before_enrollment")?,
            })
        })
        .collect()
}

/// Applies intake's changes; true when any item became due work.
async fn apply_changes(
    tx: &mut Tx,
    order_id: i64,
    changes: &[ItemChange],
) -> Result<bool, StoreError> {
    let now = now_ms();
    let mut new_work = false;
    for change in changes {
        let f = change.fields();
        new_work |= f.state == EnrollmentState::Pending;
        match change {
            ItemChange::Insert {
                line_item_id,
                fields,
            } => {
                sqlx::query(
                    "INSERT INTO enrollments (order_id, line_item_id, sku, course_key, email, action, state, reason, due_at, created_at, updated_at) \
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(order_id)
                .bind(line_item_id)
                .bind(&fields.sku)
                .bind(&fields.course_key)
                .bind(&fields.email)
                .bind(fields.action.as_str())
                .bind(fields.state.as_str())
                .bind(&fields.reason)
                .bind(now)
                .bind(now)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            ItemChange::Update { id, fields } => {
                let sql = format!(
                    "UPDATE enrollments SET sku = ?, course_key = ?, email = ?, action = ?, state = ?, reason = ?, \
                     attempts = 0, due_at = ?, claim_token = NULL, lease_until = NULL, updated_at = ? \
                     WHERE id = ? AND state IN ({})",
                    sources_of(fields.state)
                );
                sqlx::query(&sql)
                    .bind(&fields.sku)
                    .bind(&fields.course_key)
                    .bind(&fields.email)
                    .bind(fields.action.as_str())
                    .bind(fields.state.as_str())
                    .bind(&fields.reason)
                    .bind(now)
                    .bind(now)
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(new_work)
}

async fn update_order_state(tx: &mut Tx, order_id: i64) -> Result<(), StoreError> {
    let (cancelled,): (bool,) = sqlx::query_as("SELECT cancelled FROM orders WHERE id = ?")
        .bind(order_id)
        .fetch_one(&mut **tx)
        .await?;
    let states: Vec<(String,)> = sqlx::query_as("SELECT state FROM enrollments WHERE order_id = ?")
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await?;
    let states: Vec<EnrollmentState> = states.iter().filter_map(|(s,)| s.parse().ok()).collect();
    sqlx::query("UPDATE orders SET state = ?, updated_at = ? WHERE id = ?")
        .bind(order_state_of(cancelled, &states).as_str())
        .bind(now_ms())
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
