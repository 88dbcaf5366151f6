//! What one request implies, all but its own row: the order and its items
//! a trusted delivery creates or changes, or the refusal it is stored with.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::plan::{self, IntakePolicy, ItemChange};
use super::rows::{ItemRow, OrderRow, RequestRow};
use super::write::{Accepted, IntakeTx, Taking, WebhookKey};
use super::{IntakeWrite, Outcome, Taken};
use crate::domain::{
    Acceptance, Delivery, EnrollmentState, Judgement, Order, OrderState, Verified,
};
use crate::store::sql::clip;
use crate::store::StoreError;

/// What a request implies, all but its own row; `accepted` learns of the
/// webhook it was taken in with.
pub(super) async fn take<'w, T: IntakeTx>(
    tx: &mut T,
    now: i64,
    write: &'w IntakeWrite,
    accepted: &mut Accepted,
    created: &mut Created,
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
            return take_delivery(tx, now, write, verified, accepted, created).await
        }
    };
    Ok(Taking {
        outcome,
        request: Some(row),
        new_work: false,
    })
}

/// A trusted delivery as taken in.
pub(super) fn taken(
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
    created: &mut Created,
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
            let (id, acceptance, new_work, made) =
                take_order(tx, now, platform, shop, order, policy, created).await?;
            created_order = made;
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

/// The orders of a batch's deliveries, as their keys name them.
type OrderKey = (String, String, String);

/// What the batch's first look at an order's key found: `Some(id)` when it
/// created the order, `None` when the order existed.
pub(super) type Created = HashMap<OrderKey, Option<i64>>;

/// A new order as a delivery writes it: its row (with the state its items
/// give it) and its items.
struct NewOrder<'a> {
    row: OrderRow<'a>,
    state: OrderState,
    changes: Vec<ItemChange>,
    paid: bool,
    cancelled: bool,
}

impl<'a> NewOrder<'a> {
    fn plan(platform: &'a str, shop: &'a str, order: &'a Order, policy: &IntakePolicy) -> Self {
        let (paid, cancelled) = plan::merged_flags(None, order);
        let changes = plan::plan_order(&[], order, paid, cancelled, policy);
        let planned: Vec<_> = changes.iter().map(|c| c.fields().state).collect();
        NewOrder {
            row: OrderRow::new(platform, shop, order, (paid, cancelled)),
            state: OrderState::derive(cancelled, &planned),
            changes,
            paid,
            cancelled,
        }
    }
}

/// Creates, before the batch's deliveries are taken, the orders they name
/// first: in few statements where the database has round trips. Only a
/// batch's first delivery of an order, and one that is not a webhook taken
/// in before: the order is as that delivery alone would create it, and a
/// refund ahead of it in the batch still finds no order.
pub(super) async fn create_orders<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    writes: &[IntakeWrite],
    accepted: &Accepted,
) -> Result<Created, StoreError> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    let mut rows = Vec::new();
    for write in writes {
        let Judgement::Trusted(verified) = &write.judgement else {
            continue;
        };
        let (platform, shop) = (write.request.platform.as_str(), clip(&verified.shop, 255));
        let external_id = match &verified.delivery {
            Delivery::Order(order) => clip(&order.id, 191),
            Delivery::Refund { order_id, .. } => clip(order_id, 191),
            Delivery::Ignored { .. } => continue,
        };
        let first = seen.insert((platform, shop, external_id));
        let taken_before =
            WebhookKey::of(write).is_some_and(|key| accepted.contains_key(&key.owned()));
        if let (true, false, Delivery::Order(order)) = (first, taken_before, &verified.delivery) {
            let new = NewOrder::plan(platform, shop, order, &write.policy);
            keys.push((platform.to_owned(), shop.to_owned(), external_id.to_owned()));
            rows.push((new.row, new.state));
        }
    }
    if rows.is_empty() {
        return Ok(Created::new());
    }
    let ids = tx.create_orders(now, &rows).await?;
    Ok(keys.into_iter().zip(ids).collect())
}

/// Records or updates an order and its items; says whether it brought anything new.
async fn take_order<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    platform: &str,
    shop: &str,
    order: &Order,
    policy: &IntakePolicy,
    created: &mut Created,
) -> Result<(i64, Acceptance, bool, bool), StoreError> {
    // A new order is written whole: its row, its items. Whichever process
    // receives deliveries of one order, the row's unique key lets one create
    // it; the others find and lock it.
    let new = NewOrder::plan(platform, shop, order, policy);
    let key = (
        platform.to_owned(),
        shop.to_owned(),
        new.row.external_id.to_owned(),
    );
    // Later deliveries of the order in this batch find it made.
    let made = match created.insert(key, None) {
        Some(made) => made,
        None => tx.create_order(now, &new.row, new.state).await?,
    };
    if let Some(id) = made {
        let new_work = apply_changes(tx, now, id, &new.changes).await?;
        let acceptance = if policy.require_payment && !new.paid && !new.cancelled {
            Acceptance::AwaitingPayment
        } else {
            Acceptance::Accepted
        };
        return Ok((id, acceptance, new_work, true));
    }
    let row = new.row;

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
