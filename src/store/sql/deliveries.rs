//! Intake: a request and everything its verdict implies, in one transaction.

use sqlx::{Executor, Row};

use super::{clip, flag, opt_text, parse, sources_of, text, transaction, SqlStore, Tx};
use crate::domain::{Acceptance, Delivery, EnrollmentState, Order, OrderState};
use crate::shops::Verified;
use crate::store::intake::{self, IntakePolicy, ItemChange, StoredItem};
use crate::store::{RequestRecord, StoreError};

/// One request to store, with what its verdict implies.
pub(in crate::store) enum IntakeWrite {
    /// Answered without trusting it (ping, rejection).
    Record {
        request: RequestRecord,
        http_status: u16,
        outcome: &'static str,
        reason: Option<String>,
    },
    /// A trusted delivery and everything it implies.
    Accept {
        request: RequestRecord,
        verified: Verified,
        policy: IntakePolicy,
    },
}

/// How a request was stored.
#[derive(Debug, Clone, Copy)]
pub(in crate::store) struct Written {
    pub request_id: i64,
    /// How a trusted delivery was taken (`None` for a recorded request).
    pub acceptance: Option<Acceptance>,
    /// The order it concerns, when it names one we have.
    pub order_id: Option<i64>,
    /// Whether any item became due work.
    pub new_work: bool,
}

impl SqlStore {
    /// Stores many requests in one transaction (one durable commit for all),
    /// each under a savepoint: one that fails leaves its neighbours stored.
    pub async fn write_intake(
        &self,
        writes: &[IntakeWrite],
    ) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
        transaction!(self, |tx, now| {
            let mut results = Vec::with_capacity(writes.len());
            for write in writes {
                tx.execute("SAVEPOINT delivery").await?;
                match self.write_one(&mut tx, now, write).await {
                    Ok(written) => {
                        tx.execute("RELEASE SAVEPOINT delivery").await?;
                        results.push(Ok(written));
                    }
                    // A deadlock undoes the whole transaction: run the batch again.
                    Err(StoreError::Database(e)) if self.dialect.is_conflict(&e) => {
                        return Err(StoreError::Database(e))
                    }
                    Err(e) => {
                        tx.execute("ROLLBACK TO SAVEPOINT delivery").await?;
                        results.push(Err(e));
                    }
                }
            }
            results
        })
    }

    async fn write_one(
        &self,
        tx: &mut Tx,
        now: i64,
        write: &IntakeWrite,
    ) -> Result<Written, StoreError> {
        match write {
            IntakeWrite::Record {
                request,
                http_status,
                outcome,
                reason,
            } => {
                let request_id = self
                    .insert_request(
                        tx,
                        now,
                        request,
                        None,
                        *http_status,
                        outcome,
                        reason.as_deref(),
                        None,
                    )
                    .await?;
                Ok(Written {
                    request_id,
                    acceptance: None,
                    order_id: None,
                    new_work: false,
                })
            }
            IntakeWrite::Accept {
                request,
                verified,
                policy,
            } => {
                self.take_delivery(tx, now, request, verified, *policy)
                    .await
            }
        }
    }

    async fn take_delivery(
        &self,
        tx: &mut Tx,
        now: i64,
        request: &RequestRecord,
        verified: &Verified,
        policy: IntakePolicy,
    ) -> Result<Written, StoreError> {
        let platform = request.platform.as_str();
        let shop = clip(&verified.shop, 255);

        if let Some(webhook_id) = &verified.webhook_id {
            let seen = sqlx::query(self.sql(
                "SELECT order_id FROM requests WHERE platform = ? AND shop = ? AND webhook_id = ? \
                 AND outcome IN ('accepted', 'awaiting_payment') LIMIT 1",
            ))
            .bind(platform)
            .bind(shop)
            .bind(clip(webhook_id, 255))
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(row) = seen {
                let order_id: Option<i64> = row.try_get("order_id")?;
                let reason = format!("webhook {webhook_id} was accepted before");
                let request_id = self
                    .insert_request(
                        tx,
                        now,
                        request,
                        Some(verified),
                        200,
                        "duplicate",
                        Some(&reason),
                        order_id,
                    )
                    .await?;
                return Ok(Written {
                    request_id,
                    acceptance: Some(Acceptance::Duplicate),
                    order_id,
                    new_work: false,
                });
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
            } => match self.lock_order(tx, platform, shop, order_id).await? {
                None => (
                    Acceptance::Ignored,
                    None,
                    Some(format!(
                        "refund for order {order_id}, which we never received"
                    )),
                    false,
                ),
                Some((id, _, _)) => {
                    let stored = self.load_items(tx, id).await?;
                    let changes = intake::plan_refund(&stored, line_items, policy);
                    let new_work = self.apply_changes(tx, now, id, &changes).await?;
                    self.update_order_state(tx, id, now).await?;
                    let acceptance = if changes.is_empty() {
                        Acceptance::Duplicate
                    } else {
                        Acceptance::Accepted
                    };
                    (acceptance, Some(id), None, new_work)
                }
            },
            Delivery::Order(order) => {
                let (id, acceptance, new_work) = self
                    .take_order(tx, now, platform, shop, order, policy)
                    .await?;
                (acceptance, Some(id), None, new_work)
            }
        };
        let request_id = self
            .insert_request(
                tx,
                now,
                request,
                Some(verified),
                200,
                acceptance.as_str(),
                reason.as_deref(),
                order_id,
            )
            .await?;
        Ok(Written {
            request_id,
            acceptance: Some(acceptance),
            order_id,
            new_work,
        })
    }

    /// Records or updates an order and its items; says whether it brought anything new.
    async fn take_order(
        &self,
        tx: &mut Tx,
        now: i64,
        platform: &str,
        shop: &str,
        order: &Order,
        policy: IntakePolicy,
    ) -> Result<(i64, Acceptance, bool), StoreError> {
        // A new order is written whole: its row (with the state its items give
        // it), its items. Whichever process receives deliveries of one order,
        // the row's unique key lets one create it; the others find and lock it.
        let (paid, cancelled) = intake::merged_flags(None, order);
        let changes = intake::plan_order(&[], order, paid, cancelled, policy);
        let planned: Vec<_> = changes.iter().map(|c| c.fields().state).collect();
        let state = OrderState::derive(cancelled, &planned);
        if let Some(id) = self
            .create_order(tx, now, platform, shop, order, paid, cancelled, state)
            .await?
        {
            let new_work = self.apply_changes(tx, now, id, &changes).await?;
            let acceptance = if policy.require_payment && !paid && !cancelled {
                Acceptance::AwaitingPayment
            } else {
                Acceptance::Accepted
            };
            return Ok((id, acceptance, new_work));
        }

        let (id, old_paid, old_cancelled) =
            self.lock_order(tx, platform, shop, &order.id)
                .await?
                .ok_or_else(|| StoreError::Invalid("the order row vanished".into()))?;
        let (paid, cancelled) = intake::merged_flags(Some((old_paid, old_cancelled)), order);
        let changed = sqlx::query(self.sql(&format!(
            "UPDATE orders SET number = ?, buyer_email = ?, paid = ?, cancelled = ?, updated_at = ? \
             WHERE id = ? AND NOT (number = ? AND buyer_email {eq} ? AND paid = ? AND cancelled = ?)",
            eq = self.dialect.null_safe_eq()
        )))
        .bind(clip(&order.number, 191))
        .bind(order.buyer_email.as_deref().map(|e| clip(e, 320)))
        .bind(i64::from(paid))
        .bind(i64::from(cancelled))
        .bind(now)
        .bind(id)
        .bind(clip(&order.number, 191))
        .bind(order.buyer_email.as_deref().map(|e| clip(e, 320)))
        .bind(i64::from(paid))
        .bind(i64::from(cancelled))
        .execute(&mut **tx)
        .await?
        .rows_affected()
            > 0;
        let stored = self.load_items(tx, id).await?;
        let changes = intake::plan_order(&stored, order, paid, cancelled, policy);
        let new_work = self.apply_changes(tx, now, id, &changes).await?;
        self.update_order_state(tx, id, now).await?;
        let acceptance = if changes.is_empty() && !changed {
            Acceptance::Duplicate
        } else if policy.require_payment && !paid && !cancelled {
            Acceptance::AwaitingPayment
        } else {
            Acceptance::Accepted
        };
        Ok((id, acceptance, new_work))
    }

    /// Inserts the order unless it exists; its id when this call created it.
    #[allow(clippy::too_many_arguments)]
    async fn create_order(
        &self,
        tx: &mut Tx,
        now: i64,
        platform: &str,
        shop: &str,
        order: &Order,
        paid: bool,
        cancelled: bool,
        state: OrderState,
    ) -> Result<Option<i64>, StoreError> {
        let insert = self.dialect.insert_or_ignore(
            "INTO orders (platform, shop, external_id, number, buyer_email, paid, cancelled, state, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let query = sqlx::query(self.insert_sql(&insert))
            .bind(platform.to_owned())
            .bind(clip(shop, 255).to_owned())
            .bind(clip(&order.id, 191).to_owned())
            .bind(clip(&order.number, 191).to_owned())
            .bind(
                order
                    .buyer_email
                    .as_deref()
                    .map(|e| clip(e, 320).to_owned()),
            )
            .bind(i64::from(paid))
            .bind(i64::from(cancelled))
            .bind(state.as_str())
            .bind(now)
            .bind(now);
        self.insert_if_new(tx, query).await
    }

    /// The order's id, paid and cancelled flags, locked for this transaction.
    async fn lock_order(
        &self,
        tx: &mut Tx,
        platform: &str,
        shop: &str,
        external_id: &str,
    ) -> Result<Option<(i64, bool, bool)>, StoreError> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT id, paid, cancelled FROM orders WHERE platform = ? AND shop = ? AND external_id = ?{}",
            self.dialect.for_update()
        )))
        .bind(platform)
        .bind(shop)
        .bind(clip(external_id, 191))
        .fetch_optional(&mut **tx)
        .await?;
        row.map(|r| Ok((r.try_get("id")?, flag(&r, "paid")?, flag(&r, "cancelled")?)))
            .transpose()
    }

    async fn load_items(&self, tx: &mut Tx, order_id: i64) -> Result<Vec<StoredItem>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, line_item_id, sku, course_key, email, action, state, before_enrollment FROM enrollments WHERE order_id = ?",
        ))
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredItem {
                    id: r.try_get("id")?,
                    line_item_id: text(r, "line_item_id")?,
                    sku: text(r, "sku")?,
                    course_key: opt_text(r, "course_key")?,
                    email: opt_text(r, "email")?,
                    action: parse(&text(r, "action")?)?,
                    state: parse(&text(r, "state")?)?,
                    before_enrollment: r
                        .try_get::<Option<i64>, _>("before_enrollment")?
                        .map(|b| b != 0),
                })
            })
            .collect()
    }

    /// Applies intake's changes; true when any item became due work.
    async fn apply_changes(
        &self,
        tx: &mut Tx,
        now: i64,
        order_id: i64,
        changes: &[ItemChange],
    ) -> Result<bool, StoreError> {
        let mut new_work = false;
        for change in changes {
            let f = change.fields();
            new_work |= f.state == EnrollmentState::Pending;
            let reason = f.reason.as_deref().map(|r| clip(r, 2000));
            // The intake columns, bound alike for a new row and an update.
            let with_fields = |sql: &'static str| {
                sqlx::query(sql)
                    .bind(clip(&f.sku, 512).to_owned())
                    .bind(f.course_key.clone())
                    .bind(f.email.clone())
                    .bind(f.action.as_str())
                    .bind(f.state.as_str())
                    .bind(reason.map(str::to_owned))
                    .bind(now)
                    .bind(now)
            };
            match change {
                ItemChange::Insert { line_item_id, .. } => {
                    with_fields(self.sql(
                        "INSERT INTO enrollments (sku, course_key, email, action, state, reason, due_at, updated_at, \
                         created_at, order_id, line_item_id, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    ))
                    .bind(now)
                    .bind(order_id)
                    .bind(clip(line_item_id, 191).to_owned())
                    .execute(&mut **tx)
                    .await?;
                }
                ItemChange::Update { id, fields } => {
                    // Fresh attempts, and any claim's result is no longer written.
                    with_fields(self.sql(&format!(
                        "UPDATE enrollments SET sku = ?, course_key = ?, email = ?, action = ?, state = ?, reason = ?, \
                         due_at = ?, updated_at = ?, attempts = 0, claim_token = NULL, lease_until = NULL \
                         WHERE id = ? AND state IN ({})",
                        sources_of(fields.state)
                    )))
                    .bind(*id)
                    .execute(&mut **tx)
                    .await?;
                }
            }
        }
        Ok(new_work)
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_request(
        &self,
        tx: &mut Tx,
        now: i64,
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
        let query = sqlx::query(self.insert_sql(
            "INSERT INTO requests (received_at, platform, method, endpoint, source_ip, headers, body, body_size, \
             body_truncated, http_status, outcome, reason, shop, topic, webhook_id, order_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(now)
        .bind(request.platform.as_str())
        .bind(clip(&request.method, 16).to_owned())
        .bind(clip(&request.endpoint, 255).to_owned())
        .bind(request.source_ip.as_deref().map(|s| clip(s, 64).to_owned()))
        .bind(headers)
        .bind(request.body.clone())
        .bind(request.body_size as i64)
        .bind(i64::from(request.body_truncated))
        .bind(i64::from(http_status))
        .bind(outcome.to_owned())
        .bind(reason.map(|r| clip(r, 2000).to_owned()))
        .bind(shop.map(|s| clip(s, 255).to_owned()))
        .bind(topic.map(|s| clip(s, 255).to_owned()))
        .bind(request.envelope.webhook_id.as_deref().map(|s| clip(s, 255).to_owned()))
        .bind(order_id);
        self.insert(tx, query).await
    }
}
