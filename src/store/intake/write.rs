//! Intake's algorithm, written once: a request and everything its judgement
//! implies, in the caller's transaction, over [`IntakeTx`], the few
//! statements intake runs. `pooled` runs them through sqlx on every
//! database; on an SQLite file, `embedded` runs them on the intake writer's
//! own connection, a whole batch in one go.

use std::borrow::Cow;
use std::collections::HashMap;

use super::plan::{self, IntakePolicy, ItemChange, StoredItem};
use super::rows::{ItemRow, OrderRow, RequestRow};
use super::{IntakeWrite, Outcome, Stored, Taken};
use crate::domain::{
    Acceptance, Delivery, EnrollmentState, Judgement, Order, OrderState, Verified,
};
use crate::store::sql::clip;
use crate::store::StoreError;

/// The statements intake runs inside its transaction.
pub trait IntakeTx {
    /// Runs `SAVEPOINT`, `RELEASE SAVEPOINT` or `ROLLBACK TO SAVEPOINT`.
    async fn savepoint(&mut self, statement: &'static str) -> Result<(), StoreError>;
    /// Whether this error undid the whole transaction (a deadlock).
    fn undid_transaction(&self, error: &StoreError) -> bool;
    /// `Some(order id)` when a delivery with this webhook id was taken before.
    async fn accepted_webhook(
        &mut self,
        platform: &str,
        shop: &str,
        webhook_id: &str,
    ) -> Result<Option<Option<i64>>, StoreError>;
    /// Inserts the order unless it exists; its id when this call created it.
    async fn create_order(
        &mut self,
        now: i64,
        row: &OrderRow<'_>,
        state: OrderState,
    ) -> Result<Option<i64>, StoreError>;
    /// The order's id, paid and cancelled flags, locked for this transaction.
    async fn lock_order(
        &mut self,
        platform: &str,
        shop: &str,
        external_id: &str,
    ) -> Result<Option<(i64, bool, bool)>, StoreError>;
    /// Writes the order's columns; whether anything changed.
    async fn update_order(
        &mut self,
        now: i64,
        id: i64,
        row: &OrderRow<'_>,
    ) -> Result<bool, StoreError>;
    async fn load_items(&mut self, order_id: i64) -> Result<Vec<StoredItem>, StoreError>;
    async fn insert_item(
        &mut self,
        now: i64,
        order_id: i64,
        line_item_id: &str,
        part: i64,
        row: &ItemRow<'_>,
    ) -> Result<(), StoreError>;
    async fn update_item(&mut self, now: i64, id: i64, row: &ItemRow<'_>)
        -> Result<(), StoreError>;
    /// Recomputes an order's state from its items.
    async fn update_order_state(&mut self, now: i64, order_id: i64) -> Result<(), StoreError>;
    async fn insert_request(&mut self, now: i64, row: &RequestRow<'_>) -> Result<i64, StoreError>;

    /// Of these webhooks, the ones a delivery was taken in with before, with
    /// its order. Where round trips cost, a few statements for them all.
    async fn accepted_webhooks(&mut self, keys: &[WebhookKey<'_>]) -> Result<Accepted, StoreError> {
        let mut accepted = Accepted::new();
        for key in keys {
            if let Some(order_id) = self.accepted_webhook(key.0, key.1, key.2).await? {
                accepted.insert(key.owned(), order_id);
            }
        }
        Ok(accepted)
    }

    /// Inserts the rows; their ids, in their order. Where round trips cost,
    /// a few statements for them all.
    async fn insert_requests(
        &mut self,
        now: i64,
        rows: &[&RequestRow<'_>],
    ) -> Result<Vec<i64>, StoreError> {
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            ids.push(self.insert_request(now, row).await?);
        }
        Ok(ids)
    }
}

/// A webhook as the shop names it: platform, shop, webhook id (cut to its column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookKey<'a>(pub &'a str, pub &'a str, pub &'a str);

impl WebhookKey<'_> {
    fn owned(&self) -> (String, String, String) {
        (self.0.to_owned(), self.1.to_owned(), self.2.to_owned())
    }

    /// The webhook a trusted delivery names, if it names one.
    fn of(write: &IntakeWrite) -> Option<WebhookKey<'_>> {
        let Judgement::Trusted(verified) = &write.judgement else {
            return None;
        };
        let webhook_id = verified.webhook_id.as_deref()?;
        Some(WebhookKey(
            write.request.platform.as_str(),
            clip(&verified.shop, 255),
            clip(webhook_id, 255),
        ))
    }
}

/// Webhooks taken in before, with their order.
pub type Accepted = HashMap<(String, String, String), Option<i64>>;

/// A request taken in whose row is yet to be inserted: a batch inserts the
/// rows of all its requests together.
struct Taking<'a> {
    outcome: Outcome,
    /// `None`: nothing to store (a fetched order that brought nothing new).
    request: Option<RequestRow<'a>>,
    new_work: bool,
}

impl Taking<'_> {
    fn stored(self, request_id: Option<i64>) -> Stored {
        let mut outcome = self.outcome;
        match &mut outcome {
            Outcome::Ping { request_id: id } | Outcome::Rejected { request_id: id, .. } => {
                *id = request_id.unwrap_or_default()
            }
            Outcome::Taken(taken) => taken.request_id = request_id,
        }
        Stored {
            outcome,
            new_work: self.new_work,
        }
    }
}

/// Inserts the requests' rows, then says how each was stored.
async fn insert_requests<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    taking: Vec<Taking<'_>>,
) -> Result<Vec<Stored>, StoreError> {
    let rows: Vec<&RequestRow<'_>> = taking.iter().filter_map(|t| t.request.as_ref()).collect();
    let mut ids = tx.insert_requests(now, &rows).await?.into_iter();
    Ok(taking
        .into_iter()
        .map(|t| {
            let id = t.request.as_ref().and_then(|_| ids.next());
            t.stored(id)
        })
        .collect())
}

/// Stores many requests in the caller's transaction. Without `isolate` the
/// first delivery that fails fails the batch; with it, each delivery is under
/// a savepoint, so that one that fails leaves its neighbours stored (when to
/// use which: `writer::Commit::commit`).
pub async fn write_batch<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    writes: &[IntakeWrite],
    isolate: bool,
) -> Result<Vec<Result<Stored, StoreError>>, StoreError> {
    if !isolate {
        let keys: Vec<WebhookKey<'_>> = writes.iter().filter_map(WebhookKey::of).collect();
        let mut accepted = tx.accepted_webhooks(&keys).await?;
        let mut taking = Vec::with_capacity(writes.len());
        for write in writes {
            taking.push(take(tx, now, write, &mut accepted).await?);
        }
        let stored = insert_requests(tx, now, taking).await?;
        return Ok(stored.into_iter().map(Ok).collect());
    }
    let mut results = Vec::with_capacity(writes.len());
    for write in writes {
        tx.savepoint("SAVEPOINT delivery").await?;
        match write_alone(tx, now, write).await {
            Ok(written) => {
                tx.savepoint("RELEASE SAVEPOINT delivery").await?;
                results.push(Ok(written));
            }
            // A deadlock undoes the whole transaction: run the batch again.
            Err(e) if tx.undid_transaction(&e) => return Err(e),
            Err(e) => {
                tx.savepoint("ROLLBACK TO SAVEPOINT delivery").await?;
                results.push(write_unstorable(tx, now, write, e).await?);
            }
        }
    }
    Ok(results)
}

/// A trusted delivery whose own content failed to write (a constraint, a
/// value a column refuses) would fail again on every redelivery: a 503
/// would only make the shop give up on us. It is stored as a request with
/// that reason instead, answered 200, and can be replayed once mended. If
/// even that fails, the database itself is the problem, and the answer 503.
async fn write_unstorable<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    write: &IntakeWrite,
    error: StoreError,
) -> Result<Result<Stored, StoreError>, StoreError> {
    let IntakeWrite {
        request,
        judgement: Judgement::Trusted(verified),
        ..
    } = write
    else {
        return Ok(Err(error));
    };
    let reason =
        format!("the delivery could not be stored ({error}); replay it once this is mended");
    tracing::error!(shop = %verified.shop, topic = %verified.topic, %reason, "a trusted delivery was not taken in");
    let row = RequestRow::new(
        request,
        Some(verified),
        200,
        "ignored",
        Some(Cow::Borrowed(&reason)),
        None,
    );
    tx.savepoint("SAVEPOINT delivery").await?;
    match tx.insert_request(now, &row).await {
        Ok(request_id) => {
            tx.savepoint("RELEASE SAVEPOINT delivery").await?;
            Ok(Ok(Stored {
                outcome: Outcome::Taken(taken(
                    verified,
                    Some(request_id),
                    Acceptance::Ignored,
                    None,
                )),
                new_work: false,
            }))
        }
        Err(e) if tx.undid_transaction(&e) => Err(e),
        Err(e) => {
            tx.savepoint("ROLLBACK TO SAVEPOINT delivery").await?;
            Ok(Err(e))
        }
    }
}

/// One request in the transaction, its row inserted too.
async fn write_alone<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    write: &IntakeWrite,
) -> Result<Stored, StoreError> {
    let keys: Vec<WebhookKey<'_>> = WebhookKey::of(write).into_iter().collect();
    let mut accepted = tx.accepted_webhooks(&keys).await?;
    let taking = take(tx, now, write, &mut accepted).await?;
    let mut stored = insert_requests(tx, now, vec![taking]).await?;
    Ok(stored.remove(0))
}

/// What a request implies, all but its own row; `accepted` learns of the
/// webhook it was taken in with.
async fn take<'w, T: IntakeTx>(
    tx: &mut T,
    now: i64,
    write: &'w IntakeWrite,
    accepted: &mut Accepted,
) -> Result<Taking<'w>, StoreError> {
    let request = &write.request;
    let (outcome, row) = match &write.judgement {
        Judgement::Ping => (
            Outcome::Ping { request_id: 0 },
            RequestRow::new(request, None, 200, "ping", None, None),
        ),
        Judgement::Rejected(rejection) => {
            let (status, reason) = (rejection.status(), rejection.to_string());
            let row = RequestRow::new(
                request,
                None,
                status,
                "rejected",
                Some(Cow::Owned(reason.clone())),
                None,
            );
            let outcome = Outcome::Rejected {
                request_id: 0,
                status,
                reason,
            };
            (outcome, row)
        }
        Judgement::Trusted(verified) => {
            return take_delivery(tx, now, write, verified, accepted).await
        }
    };
    Ok(Taking {
        outcome,
        request: Some(row),
        new_work: false,
    })
}

/// A trusted delivery as taken in.
fn taken(
    verified: &Verified,
    request_id: Option<i64>,
    acceptance: Acceptance,
    order_id: Option<i64>,
) -> Taken {
    let shop_order = match &verified.delivery {
        Delivery::Order(order) => Some(order.number.clone()),
        Delivery::Refund { order_id, .. } => Some(order_id.clone()),
        Delivery::Ignored { .. } => None,
    };
    Taken {
        request_id,
        acceptance,
        order_id,
        created_order: false,
        shop: verified.shop.clone(),
        topic: verified.topic.clone(),
        shop_order,
    }
}

async fn take_delivery<'w, T: IntakeTx>(
    tx: &mut T,
    now: i64,
    write: &'w IntakeWrite,
    verified: &'w Verified,
    accepted: &mut Accepted,
) -> Result<Taking<'w>, StoreError> {
    let (request, policy) = (&write.request, &write.policy);
    let platform = request.platform.as_str();
    let shop = clip(&verified.shop, 255);
    let webhook = WebhookKey::of(write).map(|key| key.owned());

    if let Some(&order_id) = webhook.as_ref().and_then(|key| accepted.get(key)) {
        let webhook_id = verified.webhook_id.as_deref().unwrap_or_default();
        let reason = format!("webhook {webhook_id} was accepted before");
        let row = RequestRow::new(
            request,
            Some(verified),
            200,
            "duplicate",
            Some(Cow::Owned(reason)),
            order_id,
        );
        return Ok(Taking {
            outcome: Outcome::Taken(taken(verified, None, Acceptance::Duplicate, order_id)),
            request: Some(row),
            new_work: false,
        });
    }

    let mut created_order = false;
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
        } => match tx.lock_order(platform, shop, clip(order_id, 191)).await? {
            None => (
                Acceptance::Ignored,
                None,
                Some(format!(
                    "refund for order {order_id}, which we never received"
                )),
                false,
            ),
            Some((id, _, _)) => {
                let stored = tx.load_items(id).await?;
                let changes = plan::plan_refund(&stored, line_items, policy);
                let new_work = apply_changes(tx, now, id, &changes).await?;
                tx.update_order_state(now, id).await?;
                let acceptance = if changes.is_empty() {
                    Acceptance::Duplicate
                } else {
                    Acceptance::Accepted
                };
                (acceptance, Some(id), None, new_work)
            }
        },
        Delivery::Order(order) => {
            let (id, acceptance, new_work, created) =
                take_order(tx, now, platform, shop, order, policy).await?;
            created_order = created;
            (acceptance, Some(id), None, new_work)
        }
    };
    // A redelivery later in the batch finds this one.
    if let (Some(key), Acceptance::Accepted | Acceptance::AwaitingPayment) = (webhook, acceptance) {
        accepted.insert(key, order_id);
    }
    let row = RequestRow::new(
        request,
        Some(verified),
        200,
        acceptance.as_str(),
        reason.map(Cow::Owned),
        order_id,
    );
    let unchanged_fetch = request.fetched && acceptance == Acceptance::Duplicate;
    Ok(Taking {
        outcome: Outcome::Taken(Taken {
            created_order,
            ..taken(verified, None, acceptance, order_id)
        }),
        request: (!unchanged_fetch).then_some(row),
        new_work,
    })
}

/// Records or updates an order and its items; says whether it brought anything new.
async fn take_order<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    platform: &str,
    shop: &str,
    order: &Order,
    policy: &IntakePolicy,
) -> Result<(i64, Acceptance, bool, bool), StoreError> {
    // A new order is written whole: its row (with the state its items give
    // it), its items. Whichever process receives deliveries of one order,
    // the row's unique key lets one create it; the others find and lock it.
    let (paid, cancelled) = plan::merged_flags(None, order);
    let changes = plan::plan_order(&[], order, paid, cancelled, policy);
    let planned: Vec<_> = changes.iter().map(|c| c.fields().state).collect();
    let state = OrderState::derive(cancelled, &planned);
    let row = OrderRow::new(platform, shop, order, (paid, cancelled));
    if let Some(id) = tx.create_order(now, &row, state).await? {
        let new_work = apply_changes(tx, now, id, &changes).await?;
        let acceptance = if policy.require_payment && !paid && !cancelled {
            Acceptance::AwaitingPayment
        } else {
            Acceptance::Accepted
        };
        return Ok((id, acceptance, new_work, true));
    }

    let (id, old_paid, old_cancelled) = tx
        .lock_order(platform, shop, row.external_id)
        .await?
        .ok_or_else(|| StoreError::Invalid("the order row vanished".into()))?;
    let (paid, cancelled) = plan::merged_flags(Some((old_paid, old_cancelled)), order);
    let row = OrderRow::new(platform, shop, order, (paid, cancelled));
    let changed = tx.update_order(now, id, &row).await?;
    let stored = tx.load_items(id).await?;
    let changes = plan::plan_order(&stored, order, paid, cancelled, policy);
    let new_work = apply_changes(tx, now, id, &changes).await?;
    // Nothing new leaves the order as it was (reconciliation refetches many such).
    if changed || !changes.is_empty() {
        tx.update_order_state(now, id).await?;
    }
    let acceptance = if changes.is_empty() && !changed {
        Acceptance::Duplicate
    } else if policy.require_payment && !paid && !cancelled {
        Acceptance::AwaitingPayment
    } else {
        Acceptance::Accepted
    };
    Ok((id, acceptance, new_work, false))
}

/// Applies intake's changes; true when any item became due work.
async fn apply_changes<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    order_id: i64,
    changes: &[ItemChange],
) -> Result<bool, StoreError> {
    let mut new_work = false;
    for change in changes {
        let row = ItemRow::new(change.fields());
        new_work |= row.state == EnrollmentState::Pending;
        match change {
            ItemChange::Insert {
                line_item_id, part, ..
            } => {
                tx.insert_item(now, order_id, clip(line_item_id, 191), *part, &row)
                    .await?
            }
            ItemChange::Update { id, .. } => tx.update_item(now, *id, &row).await?,
        }
    }
    Ok(new_work)
}
