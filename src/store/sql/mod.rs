//! The statements, for SQLite, PostgreSQL and MySQL/MariaDB alike, through
//! sqlx's `Any` driver; where the databases differ, `Dialect` says how.

mod announce;
mod browse;
mod claims;
mod connect;
mod operator;
mod prune;
mod readiness;
mod reconcile;
mod results;
mod search;
mod sessions;
mod turns;
mod waiting;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, OnceLock, RwLock};

use sqlx::any::AnyRow;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::dialect::Dialect;
use super::StoreError;
use crate::domain::{EnrollmentState, OrderState};
pub(in crate::store) use turns::{WriteTurn, WriteTurns};

pub(in crate::store) type Tx = Transaction<'static, Any>;

/// Runs `$body` in a writing transaction bound to `$tx`, with the database's
/// clock in `$now`; runs it again when it ran into a deadlock or a busy
/// database, and commits what it returns.
macro_rules! transaction {
    ($db:expr, |$tx:ident, $now:ident| $body:block) => {{
        let mut tries: u32 = 0;
        loop {
            tries += 1;
            let attempt: Result<_, crate::store::StoreError> = async {
                let (mut $tx, _turn) = $db.begin().await?;
                let $now = $db.now(&mut $tx).await?;
                let value = $body;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match attempt {
                Err(crate::store::StoreError::Database(e))
                    if tries < crate::store::sql::CONFLICT_TRIES && $db.dialect().is_conflict(&e) =>
                {
                    tracing::debug!(error = %e, tries, "transaction conflicted; running it again");
                    tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(tries))).await;
                }
                result => break result,
            }
        }
    }};
}
pub(in crate::store) use transaction;

/// How often a transaction that ran into a deadlock or a busy database is tried.
pub(in crate::store) const CONFLICT_TRIES: u32 = 8;

#[derive(Clone)]
pub(super) struct SqlStore {
    dialect: Dialect,
    pub(in crate::store) writer: AnyPool,
    pub(in crate::store) reader: AnyPool,
    /// The SQLite file, when it is one.
    sqlite_file: Option<Arc<std::path::Path>>,
    /// SQLite: this process's writers take turns, intake first.
    write_turns: Option<Arc<WriteTurns>>,
    /// PostgreSQL: where to listen for work other processes announce.
    listen_url: Option<Arc<str>>,
}

impl SqlStore {
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The SQLite file, and the turns its writers take, when it is one that
    /// a connection of the intake writer's own can open alike.
    pub(in crate::store) fn sqlite_file(&self) -> Option<(&std::path::Path, Arc<WriteTurns>)> {
        Some((self.sqlite_file.as_deref()?, self.write_turns.clone()?))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query(self.sql("SELECT id FROM lms_state WHERE id = 1"))
            .fetch_one(&self.reader)
            .await?;
        Ok(())
    }

    /// The statement for this database, kept for the life of the process (the
    /// set of statements is fixed, so this is bounded).
    pub(in crate::store) fn sql(&self, text: &str) -> &'static str {
        type Cache = RwLock<HashMap<String, &'static str>>;
        static CACHES: OnceLock<[Cache; 3]> = OnceLock::new();
        let cache = &CACHES.get_or_init(Default::default)[self.dialect as usize];
        if let Some(found) = cache.read().expect("statement cache").get(text) {
            return found;
        }
        let converted: &'static str =
            Box::leak(self.dialect.sql(text).into_owned().into_boxed_str());
        cache
            .write()
            .expect("statement cache")
            .insert(text.to_owned(), converted);
        converted
    }

    /// A writing transaction, and on SQLite this process's turn to write,
    /// held until it is dropped (after the commit).
    pub(in crate::store) async fn begin(&self) -> Result<(Tx, Option<WriteTurn>), sqlx::Error> {
        let turn = match &self.write_turns {
            Some(turns) => Some(turns.other().await),
            None => None,
        };
        let tx = match self.dialect.begin() {
            Some(statement) => self.writer.begin_with(statement).await?,
            None => self.writer.begin().await?,
        };
        Ok((tx, turn))
    }

    /// The database's clock, in Unix milliseconds.
    pub(in crate::store) async fn now(&self, tx: &mut Tx) -> Result<i64, StoreError> {
        match self.dialect.now_query() {
            None => Ok(super::now_ms()),
            Some(query) => {
                let (now,): (i64,) = sqlx::query_as(query).fetch_one(&mut **tx).await?;
                Ok(now)
            }
        }
    }

    /// Inserts a row and returns its id.
    pub(in crate::store) async fn insert(
        &self,
        tx: &mut Tx,
        query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments<'static>>,
    ) -> Result<i64, StoreError> {
        match self.dialect {
            Dialect::Postgres | Dialect::Sqlite => {
                Ok(query.fetch_one(&mut **tx).await?.try_get::<i64, _>(0)?)
            }
            Dialect::MySql => query
                .execute(&mut **tx)
                .await?
                .last_insert_id()
                .ok_or_else(|| {
                    StoreError::Invalid("the database did not say which id it gave".into())
                }),
        }
    }

    /// Runs an `INSERT` that may be ignored (see `Dialect::insert_or_ignore`);
    /// the new row's id, or `None` when the row existed.
    pub(in crate::store) async fn insert_if_new(
        &self,
        tx: &mut Tx,
        query: sqlx::query::Query<'static, Any, sqlx::any::AnyArguments<'static>>,
    ) -> Result<Option<i64>, StoreError> {
        match self.dialect {
            Dialect::Postgres | Dialect::Sqlite => Ok(query
                .fetch_optional(&mut **tx)
                .await?
                .map(|row| row.try_get::<i64, _>(0))
                .transpose()?),
            Dialect::MySql => {
                let done = query.execute(&mut **tx).await?;
                Ok((done.rows_affected() > 0)
                    .then(|| done.last_insert_id())
                    .flatten())
            }
        }
    }

    /// Recomputes an order's state from its items.
    pub(in crate::store) async fn update_order_state(
        &self,
        tx: &mut Tx,
        order_id: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.update_orders_state(tx, &[order_id], now).await
    }

    /// Recomputes orders' states from their items, in a few statements.
    async fn update_orders_state(
        &self,
        tx: &mut Tx,
        order_ids: &[i64],
        now: i64,
    ) -> Result<(), StoreError> {
        if order_ids.is_empty() {
            return Ok(());
        }
        let (among, listed) = id_list(order_ids);
        // The order rows are locked (in id order) before their items are read:
        // two transactions finishing different items of one order would
        // otherwise each see the other's item as it was, and leave the order
        // `processing` for good.
        let mut lock = sqlx::query(self.sql(&format!(
            "SELECT id, cancelled FROM orders WHERE id IN ({among}) ORDER BY id{}",
            self.dialect.for_update()
        )));
        for id in &listed {
            lock = lock.bind(*id);
        }
        let mut items: BTreeMap<i64, (bool, Vec<EnrollmentState>)> = BTreeMap::new();
        for row in lock.fetch_all(&mut **tx).await? {
            items.insert(row.try_get("id")?, (flag(&row, "cancelled")?, Vec::new()));
        }
        let mut states = sqlx::query(self.sql(&format!(
            "SELECT order_id, state FROM enrollments WHERE order_id IN ({among})"
        )));
        for id in &listed {
            states = states.bind(*id);
        }
        for row in states.fetch_all(&mut **tx).await? {
            let order_id: i64 = row.try_get("order_id")?;
            if let (Some((_, states)), Ok(state)) =
                (items.get_mut(&order_id), text(&row, "state")?.parse())
            {
                states.push(state);
            }
        }
        let mut by_state: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
        for (id, (cancelled, states)) in &items {
            by_state
                .entry(OrderState::derive(*cancelled, states).as_str())
                .or_default()
                .push(*id);
        }
        for (state, ids) in by_state {
            let (among, ids) = id_list(&ids);
            let mut update = sqlx::query(self.sql(&format!(
                "UPDATE orders SET state = ?, updated_at = ? WHERE id IN ({among})"
            )))
            .bind(state)
            .bind(now);
            for id in ids {
                update = update.bind(id);
            }
            update.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

/// `?, ?, ?`: `n` placeholders.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// An `IN (…)` list of ids: its placeholders and the ids to bind. The list is
/// padded to a power of two with its last id, so that the statements that use
/// one stay few (each is kept, and prepared on every connection).
fn id_list(ids: &[i64]) -> (String, Vec<i64>) {
    let mut listed = ids.to_vec();
    if let Some(&last) = ids.last() {
        listed.resize(ids.len().next_power_of_two(), last);
    }
    (placeholders(listed.len()), listed)
}

/// Rows of a multi-row `VALUES`, taken in runs of a power of two up to 16
/// (for the same reason as `id_list`).
pub(in crate::store) fn value_runs<T>(rows: &[T]) -> impl Iterator<Item = &[T]> {
    value_runs_of(rows, 16)
}

/// [`value_runs`] of up to `most` rows (a power of two).
pub(in crate::store) fn value_runs_of<T>(rows: &[T], most: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let take = 1 << rest.len().min(most).ilog2();
        let (run, next) = rest.split_at(take);
        rest = next;
        Some(run)
    })
}

/// `'a','b'`: the states a row may be in to move to `next` (and `next` itself).
pub(in crate::store) fn sources_of(next: EnrollmentState) -> String {
    let mut states: Vec<&str> = next.reachable_from().iter().map(|s| s.as_str()).collect();
    states.push(next.as_str());
    states
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A text column. MySQL reports TEXT columns as binary: those are read as UTF-8 bytes.
pub(in crate::store) fn text(row: &AnyRow, column: &str) -> Result<String, sqlx::Error> {
    opt_text(row, column)?.ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: "unexpected NULL".into(),
    })
}

pub(in crate::store) fn opt_text(
    row: &AnyRow,
    column: &str,
) -> Result<Option<String>, sqlx::Error> {
    match row.try_get::<Option<String>, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => Ok(row
            .try_get::<Option<Vec<u8>>, _>(column)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())),
    }
}

/// One integer column of every row (ids, mostly).
fn integers(rows: &[AnyRow], column: &str) -> Result<Vec<i64>, sqlx::Error> {
    rows.iter().map(|r| r.try_get(column)).collect()
}

pub(in crate::store) fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    Ok(row.try_get::<i64, _>(column)? != 0)
}

/// Text cut to what its column holds (by characters, on every backend alike).
pub(in crate::store) fn clip(value: &str, max_chars: usize) -> &str {
    match value.char_indices().nth(max_chars) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

pub(in crate::store) fn parse<T: FromStr<Err = crate::domain::UnknownValue>>(
    value: &str,
) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|e: crate::domain::UnknownValue| StoreError::Invalid(e.to_string()))
}

/// A migrated store on an SQLite file in a directory of its own (removed
/// on drop), and a plain connection to the same file for setting rows up or
/// asking the planner.
#[cfg(test)]
pub(super) async fn file_store() -> (tempfile::TempDir, SqlStore, rusqlite::Connection) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");
    let store = SqlStore::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    (dir, store, conn)
}

#[cfg(test)]
mod tests {
    use super::{clip, id_list, value_runs, value_runs_of};

    #[test]
    fn id_lists_and_value_runs_come_in_few_sizes() {
        assert_eq!(id_list(&[]), (String::new(), vec![]));
        assert_eq!(id_list(&[7]), ("?".into(), vec![7]));
        assert_eq!(id_list(&[1, 2, 3]), ("?, ?, ?, ?".into(), vec![1, 2, 3, 3]));
        let runs: Vec<usize> = value_runs(&[0; 45]).map(<[_]>::len).collect();
        assert_eq!(runs, [16, 16, 8, 4, 1]);
        assert_eq!(value_runs::<u8>(&[]).count(), 0);
        let runs: Vec<usize> = value_runs_of(&[0; 100], 128).map(<[_]>::len).collect();
        assert_eq!(runs, [64, 32, 4]);
    }

    #[test]
    fn clips_on_character_boundaries() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé");
    }
}
