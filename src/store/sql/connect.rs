//! Opening the database and bringing its schema up to date.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use super::SqlStore;
use crate::store::dialect::Dialect;
use crate::store::StoreError;

impl SqlStore {
    pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)
            .ok_or_else(|| StoreError::UnsupportedUrl(crate::redact::url_password(url)))?;
        let opened = |source| StoreError::Connect {
            database: crate::redact::url_password(url),
            source,
        };
        match dialect {
            Dialect::Sqlite => {
                let url = sqlite_url(url);
                let file = database_file(&url);
                let unopened = |source| match &file {
                    Some(path) => StoreError::SqliteFile {
                        path: path.clone(),
                        source,
                    },
                    None => opened(source),
                };
                let writer = sqlite_pool(1).connect(&url).await.map_err(unopened)?;
                let reader = sqlite_pool(4).connect(&url).await.map_err(unopened)?;
                Ok(SqlStore {
                    dialect,
                    writer,
                    reader,
                    sqlite_file: file.map(Arc::from),
                    write_turns: Some(Default::default()),
                    listen_url: None,
                })
            }
            Dialect::Postgres | Dialect::MySql => {
                let url = url.replacen("postgresql://", "postgres://", 1).replacen(
                    "mariadb://",
                    "mysql://",
                    1,
                );
                // One connection first: the pool would retry a refused or
                // misconfigured server until its timeout and then say only
                // that it timed out.
                let first = tokio::time::timeout(
                    Duration::from_secs(10),
                    <sqlx::AnyConnection as sqlx::Connection>::connect(&url),
                )
                .await
                .map_err(|_| opened(sqlx::Error::PoolTimedOut))?
                .map_err(opened)?;
                let _ = sqlx::Connection::close(first).await;
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            if dialect == Dialect::MySql {
                                // Claims lock only the rows they read (no gap locks).
                                conn.execute(
                                    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
                                )
                                .await?;
                                conn.execute("SET SESSION time_zone = '+00:00'").await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(opened)?;
                Ok(SqlStore {
                    dialect,
                    writer: pool.clone(),
                    reader: pool,
                    sqlite_file: None,
                    write_turns: None,
                    listen_url: (dialect == Dialect::Postgres).then(|| Arc::from(url.as_str())),
                })
            }
        }
    }

    /// Brings the schema up to date. Safe to run from several processes at
    /// once: PostgreSQL takes sqlx's advisory lock; on MySQL/MariaDB we take a
    /// named lock ourselves (MariaDB ignores sqlx's, whose wait is negative);
    /// SQLite's loser of the race tries again.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
            Dialect::MySql => sqlx::migrate!("./migrations/mysql"),
        };
        match self.dialect {
            Dialect::Postgres => Ok(migrator.run(&self.writer).await?),
            Dialect::MySql => {
                let mut conn = self.writer.acquire().await?;
                let (locked,): (Option<i64>,) =
                    sqlx::query_as("SELECT GET_LOCK('edx_webhooks_migrations', 300)")
                        .fetch_one(&mut *conn)
                        .await?;
                if locked != Some(1) {
                    return Err(StoreError::Invalid(
                        "another process held the migration lock for 5 minutes".into(),
                    ));
                }
                migrator.set_locking(false);
                let result = migrator.run(&mut *conn).await;
                sqlx::query("SELECT RELEASE_LOCK('edx_webhooks_migrations')")
                    .execute(&mut *conn)
                    .await?;
                Ok(result?)
            }
            Dialect::Sqlite => {
                let mut tries = 0;
                loop {
                    match migrator.run(&self.writer).await {
                        Err(e) if tries < 5 => {
                            tries += 1;
                            tracing::debug!(error = %e, "migration raced another process; trying again");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        result => return Ok(result?),
                    }
                }
            }
        }
    }
}

fn sqlite_pool(size: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(size)
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(|conn, _| {
            Box::pin(async move {
                // WAL lets readers work beside the writer; FULL makes each
                // commit durable before it returns (a 200 survives a power cut).
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = FULL").await?;
                conn.execute("PRAGMA busy_timeout = 30000").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                Ok(())
            })
        })
}

/// Creates the file if it is missing.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

/// The file an `sqlite:` URL names, when it is a plain file that a second
/// connection opens alike; `None` for an in-memory database or other options
/// (`mode=memory`, `vfs`, `immutable`), which stay with the pool's connection.
fn database_file(url: &str) -> Option<std::path::PathBuf> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let plain = query
        .split('&')
        .all(|option| option.is_empty() || option == "mode=rwc" || option == "mode=rw");
    if url.contains(":memory:") || !plain {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some(options.get_filename().to_path_buf())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::database_file;

    #[test]
    fn only_a_file_gets_a_connection_of_its_own() {
        assert_eq!(
            database_file("sqlite:///var/lib/edx-webhooks/db.sqlite3?mode=rwc"),
            Some(PathBuf::from("/var/lib/edx-webhooks/db.sqlite3"))
        );
        assert_eq!(database_file("sqlite::memory:"), None);
        assert_eq!(database_file("sqlite://app.db?mode=memory"), None);
        assert_eq!(
            database_file("sqlite://app.db?vfs=unix-dotfile&mode=rwc"),
            None
        );
        assert_eq!(database_file("sqlite://app.db?immutable=true"), None);
    }
}
