//! Intake's algorithm, written once: a batch of requests and everything
//! their judgements imply, in the caller's transaction, over [`IntakeTx`],
//! the few statements intake runs (what each request implies: `take`). `pooled` runs them through sqlx on every
//! database; on an SQLite file, `embedded` runs them on the intake writer's
//! own connection, a whole batch in one go.

use std::borrow::Cow;
use std::collections::HashMap;

use super::plan::StoredItem;
use super::rows::{ItemRow, OrderRow, RequestRow};
use super::take::{create_orders, take, taken};
use super::{IntakeWrite, Outcome, Stored};
use crate::domain::{Acceptance, Judgement, OrderState};
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
    /// its order: each one lookup of the index on platform, shop and id.
    /// Where round trips cost, a few statements for them all.
    async fn accepted_webhooks(&mut self, keys: &[WebhookKey<'_>]) -> Result<Accepted, StoreError> {
        let mut accepted = Accepted::new();
        for key in keys {
            if let Some(order_id) = self.accepted_webhook(key.0, key.1, key.2).await? {
                accepted.insert(key.owned(), order_id);
            }
        }
        Ok(accepted)
    }

    /// Inserts the orders that do not exist yet; for each, its id when this
    /// call created it. Where round trips cost, a few statements for them all.
    async fn create_orders(
        &mut self,
        now: i64,
        rows: &[(OrderRow<'_>, OrderState)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        create_each(self, now, rows).await
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

/// [`IntakeTx::create_orders`] one statement per order.
pub(super) async fn create_each<T: IntakeTx + ?Sized>(
    tx: &mut T,
    now: i64,
    rows: &[(OrderRow<'_>, OrderState)],
) -> Result<Vec<Option<i64>>, StoreError> {
    let mut ids = Vec::with_capacity(rows.len());
    for (row, state) in rows {
        ids.push(tx.create_order(now, row, *state).await?);
    }
    Ok(ids)
}

/// A webhook as the shop names it: platform, shop, webhook id (cut to its column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookKey<'a>(pub &'a str, pub &'a str, pub &'a str);

impl WebhookKey<'_> {
    pub(super) fn owned(&self) -> (String, String, String) {
        (self.0.to_owned(), self.1.to_owned(), self.2.to_owned())
    }

    /// The webhook a trusted delivery names, if it names one.
    pub(super) fn of(write: &IntakeWrite) -> Option<WebhookKey<'_>> {
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
pub(super) struct Taking<'a> {
    pub outcome: Outcome,
    /// `None`: nothing to store (a fetched order that brought nothing new).
    pub request: Option<RequestRow<'a>>,
    pub new_work: bool,
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
        let stored = take_all(tx, now, writes).await?;
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
    let mut stored = take_all(tx, now, std::slice::from_ref(write)).await?;
    Ok(stored.remove(0))
}

/// Takes the requests in, their rows inserted too: the webhooks they name
/// looked up and the orders they create made first, for them all at once.
async fn take_all<T: IntakeTx>(
    tx: &mut T,
    now: i64,
    writes: &[IntakeWrite],
) -> Result<Vec<Stored>, StoreError> {
    let keys: Vec<WebhookKey<'_>> = writes.iter().filter_map(WebhookKey::of).collect();
    let mut accepted = tx.accepted_webhooks(&keys).await?;
    let mut created = create_orders(tx, now, writes, &accepted).await?;
    let mut taking = Vec::with_capacity(writes.len());
    for write in writes {
        taking.push(take(tx, now, write, &mut accepted, &mut created).await?);
    }
    insert_requests(tx, now, taking).await
}
