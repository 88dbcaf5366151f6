//! Integration tests: the real service over HTTP, a fake LMS per test.

/// Each test, once per database: `sqlite` always; `postgres` and `mysql` are
/// reported as ignored unless asked for with `cargo test -- --include-ignored`
/// (which `.ci/run` does, with the servers running).
macro_rules! on_each_database {
    ($($(#[$meta:meta])* async fn $name:ident($db:ident: Db) $body:block)*) => {
        $(
            $(#[$meta])*
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn run($db: crate::helpers::Db) $body

                #[tokio::test]
                async fn sqlite() {
                    run(crate::helpers::Db::Sqlite).await
                }

                #[tokio::test]
                #[ignore = "PostgreSQL suite: run with --include-ignored (server: EDX_WEBHOOKS_TEST_POSTGRES)"]
                async fn postgres() {
                    run(crate::helpers::Db::Postgres).await
                }

                #[tokio::test]
                #[ignore = "MySQL/MariaDB suite: run with --include-ignored (server: EDX_WEBHOOKS_TEST_MYSQL)"]
                async fn mysql() {
                    run(crate::helpers::Db::MySql).await
                }
            }
        )*
    };
}

mod admin;
mod announce;
mod browser;
mod cancellation_race;
mod cancellations;
mod cli;
mod db_restart;
mod deploy;
mod faults;
mod first_hour;
mod helpers;
mod hostile;
mod hostile_requests;
mod kill_rounds;
mod lifecycle;
mod limits;
mod lms;
mod load;
mod operations;
mod operator;
mod own_server;
mod processing;
mod products;
mod reconcile;
mod scale_out;
mod secrets;
mod service;
mod shopify;
mod storage;
mod storage_faults;
mod woocommerce;
