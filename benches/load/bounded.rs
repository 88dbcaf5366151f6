//! How `prune` keeps the database bounded: days of orders go through intake
//! and the LMS, then the clock moves a day on (the stored times a day back)
//! and `prune --older-than` runs, as an operator's daily timer would. The
//! size after each day levels off at the days kept: SQLite and InnoDB use
//! freed pages again; PostgreSQL once its autovacuum has passed, which the
//! benchmark, a day in seconds, runs at once (`VACUUM`).

use std::path::Path;

use sqlx::Connection;

use crate::client::intake_run;
use crate::fake_lms::FakeLms;
use crate::fill::{connect, size};
use crate::growth::{drain, run_tag};
use crate::server::{command, Database, Server};
use crate::Args;

/// Days of orders sent.
const DAYS: usize = 6;
/// `prune --older-than`: the last two days are kept.
const KEPT: &str = "60h";
const DAY_MS: i64 = 86_400_000;

pub async fn bounded(args: &Args, work: &Path, settings: &[(&str, &str)]) {
    let lms = FakeLms::start_unthrottled().await;
    let database = Database::fresh(args, work).await;
    let orders = args.orders / 2;
    println!(
        "  prune: {DAYS} days of {orders} orders, each enrolled, then a day on and `prune --older-than {KEPT}`:"
    );
    let run = run_tag();
    for day in 0..DAYS {
        let server = Server::start_with(&database.url, &lms, work, &["serve"], settings).await;
        let before = lms.enrolled();
        intake_run(&server, &run, day * 1_000_000, orders, 32, false).await;
        // Whatever the intake run left waiting.
        drain(
            &server,
            &lms,
            (before + orders).saturating_sub(lms.enrolled()),
        )
        .await;
        server.stop().await;
        a_day_passes(&database).await;
        let pruned = command(&database.url, &lms, work, &[])
            .args(["prune", "--older-than", KEPT])
            .output()
            .await
            .expect("prune runs");
        assert!(pruned.status.success(), "prune failed: {pruned:?}");
        upkeep(&database).await;
        let (bytes, count) = size(&database).await;
        println!(
            "    day {}: {} orders enrolled; after prune {count} orders kept, {:.1} MiB",
            day + 1,
            lms.enrolled() - before,
            bytes as f64 / 1048576.0
        );
    }
    database.drop().await;
}

/// Every stored time a day earlier.
async fn a_day_passes(database: &Database) {
    let mut conn = connect(database).await;
    let mut tx = conn.begin().await.unwrap();
    for statement in [
        format!("UPDATE orders SET created_at = created_at - {DAY_MS}, updated_at = updated_at - {DAY_MS}"),
        format!("UPDATE requests SET received_at = received_at - {DAY_MS}"),
    ] {
        sqlx::query(&statement).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
}

/// What PostgreSQL's autovacuum does in the hours of a real day: the deleted
/// rows' space made free for new ones.
async fn upkeep(database: &Database) {
    if database.kind == "postgres" {
        let mut conn = connect(database).await;
        sqlx::raw_sql("VACUUM").execute(&mut conn).await.unwrap();
    }
}
