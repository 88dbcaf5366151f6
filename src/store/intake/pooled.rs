//! Intake's statements through sqlx's pool, on any of the three databases.

use std::collections::HashMap;

use sqlx::{Executor, Row};

use super::plan::StoredItem;
use super::rows::{statements, ItemRow, OrderRow, RequestRow, Value};
use super::write::{create_each, write_batch, Accepted, IntakeTx, WebhookKey};
use super::writer::Commit;
use super::{IntakeWrite, Stored};
use crate::domain::OrderState;
use crate::store::dialect::Dialect;
use crate::store::sql::{flag, opt_text, parse, text, value_runs, SqlStore, Tx};
use crate::store::StoreError;

impl Commit for SqlStore {
    /// Not when the database is unreachable or kept conflicting.
    fn a_delivery_failed(&self, error: &StoreError) -> bool {
        match error {
            StoreError::Database(e @ sqlx::Error::Database(_)) => !self.dialect().is_conflict(e),
            StoreError::Database(_) => false,
            _ => true,
        }
    }

    async fn commit_once(
        &mut self,
        writes: &[IntakeWrite],
        isolate: bool,
    ) -> Result<Vec<Result<Stored, StoreError>>, StoreError> {
        crate::store::sql::transaction!(self, |tx, now| {
            let mut statements = SqlxIntake::new(self, &mut tx);
            let results = write_batch(&mut statements, now, writes, isolate).await?;
            statements.flush_items().await?;
            if results
                .iter()
                .any(|r| matches!(r, Ok(stored) if stored.new_work))
            {
                self.announce_in(&mut tx).await?;
            }
            results
        })
    }
}

type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

/// Binds `values` in their order.
fn bind(mut query: AnyQuery, values: &[Value<'_>]) -> AnyQuery {
    for value in values {
        query = match *value {
            Value::Text(text) => query.bind(text.map(str::to_owned)),
            Value::Int(n) => query.bind(n),
            Value::Bytes(bytes) => query.bind(bytes.to_vec()),
        };
    }
    query
}

/// Intake's statements through sqlx, on any of the three databases.
struct SqlxIntake<'a> {
    db: &'a SqlStore,
    tx: &'a mut Tx,
    /// Items inserted but not yet sent: a batch's new items go in a few
    /// multi-row statements, before anything that could read them.
    pending_items: Vec<Vec<Owned>>,
}

/// A value kept to be bound later.
enum Owned {
    Text(Option<String>),
    Int(Option<i64>),
    Bytes(Vec<u8>),
}

impl From<Value<'_>> for Owned {
    fn from(value: Value<'_>) -> Self {
        match value {
            Value::Text(text) => Owned::Text(text.map(str::to_owned)),
            Value::Int(n) => Owned::Int(n),
            Value::Bytes(bytes) => Owned::Bytes(bytes.to_vec()),
        }
    }
}

impl<'a> SqlxIntake<'a> {
    fn new(db: &'a SqlStore, tx: &'a mut Tx) -> Self {
        SqlxIntake {
            db,
            tx,
            pending_items: Vec::new(),
        }
    }

    fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Sends the items inserted so far.
    async fn flush_items(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending_items);
        for rows in value_runs(&pending) {
            let mut query = sqlx::query(self.db.sql(&statements::insert_items(rows.len())));
            for values in rows {
                for value in values {
                    query = match value {
                        Owned::Text(text) => query.bind(text.clone()),
                        Owned::Int(n) => query.bind(*n),
                        Owned::Bytes(bytes) => query.bind(bytes.clone()),
                    };
                }
            }
            query.execute(&mut **self.tx).await?;
        }
        Ok(())
    }
}

impl IntakeTx for SqlxIntake<'_> {
    async fn savepoint(&mut self, statement: &'static str) -> Result<(), StoreError> {
        if statement.starts_with("ROLLBACK") {
            // The failed delivery's items go with it.
            self.pending_items.clear();
        } else {
            self.flush_items().await?;
        }
        self.tx.execute(statement).await?;
        Ok(())
    }

    fn undid_transaction(&self, error: &StoreError) -> bool {
        matches!(error, StoreError::Database(e) if self.dialect().is_conflict(e))
    }

    async fn accepted_webhook(
        &mut self,
        platform: &str,
        shop: &str,
        webhook_id: &str,
    ) -> Result<Option<Option<i64>>, StoreError> {
        let row = sqlx::query(self.db.sql(statements::ACCEPTED_WEBHOOK))
            .bind(platform.to_owned())
            .bind(shop.to_owned())
            .bind(webhook_id.to_owned())
            .fetch_optional(&mut **self.tx)
            .await?;
        Ok(row.map(|r| r.try_get("order_id")).transpose()?)
    }

    /// A run of webhooks in one statement, one index lookup each.
    async fn accepted_webhooks(&mut self, keys: &[WebhookKey<'_>]) -> Result<Accepted, StoreError> {
        let mut accepted = Accepted::new();
        for keys in value_runs(keys) {
            let mut query = sqlx::query(self.db.sql(&statements::accepted_webhooks(keys.len())));
            for key in keys {
                query = query
                    .bind(key.0.to_owned())
                    .bind(key.1.to_owned())
                    .bind(key.2.to_owned());
            }
            for row in query.fetch_all(&mut **self.tx).await? {
                let k: i64 = row.try_get("k")?;
                let key = usize::try_from(k)
                    .ok()
                    .and_then(|k| keys.get(k))
                    .ok_or_else(|| StoreError::Invalid(format!("no webhook at place {k}")))?
                    .owned();
                let order_id = row.try_get("order_id")?;
                accepted.entry(key).or_insert(order_id);
            }
        }
        Ok(accepted)
    }

    /// On MySQL one at a time: the ids a multi-row insert takes need not be
    /// consecutive (`innodb_autoinc_lock_mode` 2), and it returns only the first.
    async fn insert_requests(
        &mut self,
        now: i64,
        rows: &[&RequestRow<'_>],
    ) -> Result<Vec<i64>, StoreError> {
        self.flush_items().await?;
        let mut ids = Vec::with_capacity(rows.len());
        if self.dialect() == Dialect::MySql {
            for row in rows {
                ids.push(self.insert_request(now, row).await?);
            }
            return Ok(ids);
        }
        for rows in value_runs(rows) {
            let statement = statements::insert_requests(self.dialect(), rows.len());
            let mut query = sqlx::query(self.db.sql(&statement));
            for row in rows {
                query = bind(query, &row.values(now));
            }
            let mut run: Vec<i64> = query
                .fetch_all(&mut **self.tx)
                .await?
                .iter()
                .map(|r| r.try_get::<i64, _>(0))
                .collect::<Result<_, _>>()?;
            // One statement takes its ids in the order of its rows.
            run.sort_unstable();
            ids.extend(run);
        }
        Ok(ids)
    }

    /// On MySQL one at a time: it cannot say which rows an `INSERT IGNORE`
    /// of many created.
    async fn create_orders(
        &mut self,
        now: i64,
        rows: &[(OrderRow<'_>, OrderState)],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if self.dialect() == Dialect::MySql {
            return create_each(self, now, rows).await;
        }
        let mut ids = Vec::with_capacity(rows.len());
        for rows in value_runs(rows) {
            let statement = statements::insert_orders(self.dialect(), rows.len());
            let mut query = sqlx::query(self.db.sql(&statement));
            for (row, state) in rows {
                query = bind(query, &row.insert_values(*state, now));
            }
            let mut made = HashMap::new();
            for r in query.fetch_all(&mut **self.tx).await? {
                let key = (
                    text(&r, "platform")?,
                    text(&r, "shop")?,
                    text(&r, "external_id")?,
                );
                made.insert(key, r.try_get::<i64, _>("id")?);
            }
            ids.extend(rows.iter().map(|(row, _)| {
                made.remove(&(
                    row.platform.to_owned(),
                    row.shop.to_owned(),
                    row.external_id.to_owned(),
                ))
            }));
        }
        Ok(ids)
    }

    async fn create_order(
        &mut self,
        now: i64,
        row: &OrderRow<'_>,
        state: OrderState,
    ) -> Result<Option<i64>, StoreError> {
        let query = sqlx::query(self.db.sql(&statements::insert_order(self.dialect())));
        let query = bind(query, &row.insert_values(state, now));
        self.db.insert_if_new(self.tx, query).await
    }

    async fn lock_order(
        &mut self,
        platform: &str,
        shop: &str,
        external_id: &str,
    ) -> Result<Option<(i64, bool, bool)>, StoreError> {
        self.flush_items().await?;
        let row = sqlx::query(self.db.sql(&statements::lock_order(self.dialect())))
            .bind(platform.to_owned())
            .bind(shop.to_owned())
            .bind(external_id.to_owned())
            .fetch_optional(&mut **self.tx)
            .await?;
        row.map(|r| Ok((r.try_get("id")?, flag(&r, "paid")?, flag(&r, "cancelled")?)))
            .transpose()
    }

    async fn update_order(
        &mut self,
        now: i64,
        id: i64,
        row: &OrderRow<'_>,
    ) -> Result<bool, StoreError> {
        self.flush_items().await?;
        let query = sqlx::query(self.db.sql(&statements::update_order(self.dialect())));
        let done = bind(query, &row.update_values(id, now))
            .execute(&mut **self.tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn load_items(&mut self, order_id: i64) -> Result<Vec<StoredItem>, StoreError> {
        self.flush_items().await?;
        let rows = sqlx::query(self.db.sql(statements::LOAD_ITEMS))
            .bind(order_id)
            .fetch_all(&mut **self.tx)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredItem {
                    id: r.try_get("id")?,
                    line_item_id: text(r, "line_item_id")?,
                    part: r.try_get("part")?,
                    sku: text(r, "sku")?,
                    course_key: opt_text(r, "course_key")?,
                    mode: opt_text(r, "mode")?,
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

    async fn insert_item(
        &mut self,
        now: i64,
        order_id: i64,
        line_item_id: &str,
        part: i64,
        row: &ItemRow<'_>,
    ) -> Result<(), StoreError> {
        let values = row.insert_values(now, order_id, line_item_id, part);
        self.pending_items
            .push(values.into_iter().map(Owned::from).collect());
        Ok(())
    }

    async fn update_item(
        &mut self,
        now: i64,
        id: i64,
        row: &ItemRow<'_>,
    ) -> Result<(), StoreError> {
        self.flush_items().await?;
        let statement = statements::update_item(row.state);
        bind(
            sqlx::query(self.db.sql(&statement)),
            &row.update_values(id, now),
        )
        .execute(&mut **self.tx)
        .await?;
        Ok(())
    }

    async fn update_order_state(&mut self, now: i64, order_id: i64) -> Result<(), StoreError> {
        self.flush_items().await?;
        self.db.update_order_state(self.tx, order_id, now).await
    }

    async fn insert_request(&mut self, now: i64, row: &RequestRow<'_>) -> Result<i64, StoreError> {
        let query = sqlx::query(self.db.sql(&statements::insert_request(self.dialect())));
        let query = bind(query, &row.values(now));
        self.db.insert(self.tx, query).await
    }
}
