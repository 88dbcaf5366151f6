//! The intake writer's own connection to an SQLite file. Through sqlx every
//! statement is a round trip to the connection's thread; here the writer's
//! thread runs a whole batch of deliveries itself, between one `BEGIN
//! IMMEDIATE` and one durable `COMMIT`. The statements and what they mean are
//! intake's (`deliveries`); only how they are run differs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rusqlite::types::ToSql;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, TransactionBehavior};

use super::plan::StoredItem;
use super::rows::{statements, ItemRow, OrderRow, RequestRow, Value};
use super::write::{write_batch, IntakeTx};
use super::writer::Commit;
use super::{IntakeWrite, Stored};
use crate::domain::{EnrollmentState, OrderState};
use crate::store::dialect::Dialect;
use crate::store::now_ms;
use crate::store::sql::{parse, SqlStore, WriteTurns};
use crate::store::StoreError;

/// How long a write waits for another writer (a worker, another process)
/// to finish, as `busy_timeout` does for the other connections.
const BUSY_WAIT: Duration = Duration::from_secs(30);
/// How often a waiting write looks again: short, since writers hold the lock
/// for milliseconds.
const BUSY_POLL: Duration = Duration::from_micros(200);

/// A connection of its own for the intake writer.
pub struct EmbeddedWriter {
    path: PathBuf,
    conn: Connection,
    /// Taken in turn with this process's other writers (see `SqlStore`).
    turns: Arc<WriteTurns>,
}

impl EmbeddedWriter {
    /// Opens the (migrated) database file, when the store is one that a
    /// connection of its own opens alike, with the durability of every other
    /// connection: WAL, `synchronous = FULL`.
    pub fn open(db: &SqlStore) -> Result<Option<EmbeddedWriter>, StoreError> {
        let Some((path, turns)) = db.sqlite_file() else {
            return Ok(None);
        };
        Ok(Some(EmbeddedWriter {
            path: path.to_owned(),
            conn: connect(path)?,
            turns,
        }))
    }

    /// One transaction, in this process's turn to write.
    async fn write_intake_in_turn(
        &mut self,
        writes: &[IntakeWrite],
        isolate: bool,
    ) -> Result<Vec<Result<Stored, StoreError>>, StoreError> {
        let _turn = self.turns.intake().await;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let results = write_batch(&mut Statements { conn: &tx }, now, writes, isolate).await?;
        tx.commit()?;
        Ok(results)
    }
}

impl Commit for EmbeddedWriter {
    async fn commit_once(
        &mut self,
        writes: &[IntakeWrite],
        isolate: bool,
    ) -> Result<Vec<Result<Stored, StoreError>>, StoreError> {
        let written = self.write_intake_in_turn(writes, isolate).await;
        if written.is_err() && !self.conn.is_autocommit() {
            // A rollback failed: the connection would keep the write lock.
            tracing::warn!(
                "the intake writer's connection is stuck in a transaction; opening a new one"
            );
            self.conn = connect(&self.path)?;
        }
        written
    }

    /// Not when the database itself is busy or failing.
    fn a_delivery_failed(&self, error: &StoreError) -> bool {
        use rusqlite::ErrorCode::*;
        match error {
            StoreError::Embedded(rusqlite::Error::SqliteFailure(e, _)) => !matches!(
                e.code,
                DatabaseBusy | DatabaseLocked | SystemIoFailure | CannotOpen | DiskFull | ReadOnly
            ),
            _ => true,
        }
    }
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_handler(Some(wait_for_lock))?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// SQLite's busy handler: looks again every `BUSY_POLL` until `BUSY_WAIT`.
fn wait_for_lock(tries: i32) -> bool {
    let waited = BUSY_POLL * u32::try_from(tries).unwrap_or(u32::MAX);
    if waited >= BUSY_WAIT {
        return false;
    }
    std::thread::sleep(BUSY_POLL);
    true
}

impl ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::Text(text) => text.to_sql(),
            Value::Int(n) => n.to_sql(),
            Value::Bytes(bytes) => bytes.to_sql(),
        }
    }
}

/// Intake's statements, run at once on the writer's thread.
struct Statements<'c> {
    conn: &'c Connection,
}

/// Intake's statements as SQLite spells them, made once.
struct Spelled {
    insert_order: String,
    lock_order: String,
    update_order: String,
    insert_request: String,
    order_cancelled: String,
    /// By the state an item moves to.
    update_item: HashMap<EnrollmentState, String>,
}

fn spelled() -> &'static Spelled {
    static SPELLED: OnceLock<Spelled> = OnceLock::new();
    SPELLED.get_or_init(|| {
        let sqlite = Dialect::Sqlite;
        Spelled {
            insert_order: statements::insert_order(sqlite),
            lock_order: statements::lock_order(sqlite),
            update_order: statements::update_order(sqlite),
            insert_request: statements::insert_request(sqlite),
            order_cancelled: statements::order_cancelled(sqlite),
            update_item: EnrollmentState::ALL
                .iter()
                .map(|&state| (state, statements::update_item(state)))
                .collect(),
        }
    })
}

impl IntakeTx for Statements<'_> {
    async fn savepoint(&mut self, statement: &'static str) -> Result<(), StoreError> {
        self.conn.execute_batch(statement)?;
        Ok(())
    }

    fn undid_transaction(&self, _: &StoreError) -> bool {
        // The write lock is held from BEGIN IMMEDIATE: nothing else undoes it.
        false
    }

    async fn accepted_webhook(
        &mut self,
        platform: &str,
        shop: &str,
        webhook_id: &str,
    ) -> Result<Option<Option<i64>>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(statements::ACCEPTED_WEBHOOK)?
            .query_row(params![platform, shop, webhook_id], |r| r.get(0))
            .optional()?)
    }

    async fn create_order(
        &mut self,
        now: i64,
        row: &OrderRow<'_>,
        state: OrderState,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&spelled().insert_order)?
            .query_row(params_from_iter(row.insert_values(state, now)), |r| {
                r.get(0)
            })
            .optional()?)
    }

    async fn lock_order(
        &mut self,
        platform: &str,
        shop: &str,
        external_id: &str,
    ) -> Result<Option<(i64, bool, bool)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&spelled().lock_order)?
            .query_row(params![platform, shop, external_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?)
    }

    async fn update_order(
        &mut self,
        now: i64,
        id: i64,
        row: &OrderRow<'_>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .conn
            .prepare_cached(&spelled().update_order)?
            .execute(params_from_iter(row.update_values(id, now)))?;
        Ok(changed > 0)
    }

    async fn load_items(&mut self, order_id: i64) -> Result<Vec<StoredItem>, StoreError> {
        let mut statement = self.conn.prepare_cached(statements::LOAD_ITEMS)?;
        let mut rows = statement.query(params![order_id])?;
        let mut items = Vec::new();
        while let Some(r) = rows.next()? {
            items.push(StoredItem {
                id: r.get("id")?,
                line_item_id: r.get("line_item_id")?,
                part: r.get("part")?,
                sku: r.get("sku")?,
                course_key: r.get("course_key")?,
                mode: r.get("mode")?,
                email: r.get("email")?,
                action: parse(&r.get::<_, String>("action")?)?,
                state: parse(&r.get::<_, String>("state")?)?,
                before_enrollment: r.get("before_enrollment")?,
            });
        }
        Ok(items)
    }

    async fn insert_item(
        &mut self,
        now: i64,
        order_id: i64,
        line_item_id: &str,
        part: i64,
        row: &ItemRow<'_>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(statements::INSERT_ITEM)?
            .execute(params_from_iter(row.insert_values(
                now,
                order_id,
                line_item_id,
                part,
            )))?;
        Ok(())
    }

    async fn update_item(
        &mut self,
        now: i64,
        id: i64,
        row: &ItemRow<'_>,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(&spelled().update_item[&row.state])?
            .execute(params_from_iter(row.update_values(id, now)))?;
        Ok(())
    }

    async fn update_order_state(&mut self, now: i64, order_id: i64) -> Result<(), StoreError> {
        let cancelled: bool = self
            .conn
            .prepare_cached(&spelled().order_cancelled)?
            .query_row(params![order_id], |r| r.get(0))?;
        let mut states = Vec::new();
        {
            let mut statement = self.conn.prepare_cached(statements::ITEM_STATES)?;
            let mut rows = statement.query(params![order_id])?;
            while let Some(r) = rows.next()? {
                if let Ok(state) = r.get::<_, String>(0)?.parse::<EnrollmentState>() {
                    states.push(state);
                }
            }
        }
        self.conn
            .prepare_cached(statements::SET_ORDER_STATE)?
            .execute(params![
                OrderState::derive(cancelled, &states).as_str(),
                now,
                order_id
            ])?;
        Ok(())
    }

    async fn insert_request(&mut self, now: i64, row: &RequestRow<'_>) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&spelled().insert_request)?
            .query_row(params_from_iter(row.values(now)), |r| r.get(0))?)
    }
}
