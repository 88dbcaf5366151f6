//! Growth: how the service fares with a long history and a big backlog.
//! `stored` orders are kept with the LMS paused (the workers off), then the
//! figures at that size are printed beside those of a nearly empty database.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::intake_run;
use crate::fake_lms::FakeLms;
use crate::fill::{fill, middle_email, size};
use crate::reads::{print_read_paths, ADMIN_PASSWORD};
use crate::server::{Database, Server};
use crate::Args;

/// Connections of the intake runs at each size.
const CONNECTIONS: usize = 32;
/// Learners drained before the intake run that measures latency meanwhile.
const DRAIN_SAMPLE: usize = 20_000;
/// Orders of the intake run while the backlog drains, at 8 connections.
const DURING_DRAIN: usize = 5_000;
/// The small backlog the drain's CPU per learner is compared with.
const SMALL_BACKLOG: usize = 1_000;

/// Big batches and a rate limit the fake LMS never throttles: the database,
/// not the LMS, sets the pace of draining.
const SETTINGS: [(&str, &str); 3] = [
    ("EDX_WEBHOOKS_BATCH_SIZE", "100"),
    ("EDX_WEBHOOKS_LMS_RATE_LIMIT", "1000000"),
    ("EDX_WEBHOOKS_ADMIN_PASSWORD", ADMIN_PASSWORD),
];

pub async fn growth(args: &Args, work: &Path) {
    let lms = FakeLms::start_unthrottled().await;
    let database = Database::fresh(args, work).await;
    let kind = database.kind.clone();
    println!(
        "\n[growth] {} orders stored with the LMS paused ({kind}); intake runs of {} orders at {CONNECTIONS} connections, intake alone",
        args.stored, args.orders
    );

    let server = start(&database, &lms, work, false).await;
    let run = run_tag();
    let empty = intake_run(&server, &run, 0, args.orders, CONNECTIONS, true).await;
    println!("  intake on an empty database:");
    empty.print();
    let email = format!("learner-{run}-{}@example.org", args.orders / 2);
    println!("  read paths at {} orders stored:", args.orders);
    print_read_paths(&server, &lms, &database.url, work, &email).await;
    server.stop().await;
    let (small_bytes, small_count) = size(&database).await;

    let (stored, seconds) = fill(&database, args.stored).await;
    let (bytes, count) = size(&database).await;
    println!(
        "  stored {stored} orders in {seconds:.1} s: copies, made by SQL, of those the intake took in"
    );
    println!(
        "  bytes stored per order: {:.0} at {count} orders ({:.0} at {small_count}); {:.1} MiB in all",
        bytes as f64 / count as f64,
        small_bytes as f64 / small_count as f64,
        bytes as f64 / 1048576.0
    );

    let server = start(&database, &lms, work, false).await;
    let at_n = intake_run(&server, &run, 10_000_000, args.orders, CONNECTIONS, true).await;
    println!("  intake at {stored} orders stored:");
    at_n.print();
    println!(
        "  intake rate at {stored} vs empty: {:.2}x",
        at_n.per_second() / empty.per_second()
    );
    println!("  read paths at {stored} orders stored:");
    let email = middle_email(&email, stored, small_count);
    print_read_paths(&server, &lms, &database.url, work, &email).await;
    server.stop().await;

    let server = start(&database, &lms, work, true).await;
    let (rate, cpu) = drain(&server, &lms, DRAIN_SAMPLE).await;
    println!(
        "  draining the backlog of {} learners: {rate:.0} learners/s, server CPU {:.0} µs per learner",
        count,
        cpu * 1e6
    );
    let before = lms.enrolled();
    let during = intake_run(&server, &run, 20_000_000, DURING_DRAIN, 8, false).await;
    println!("  intake at 8 connections while the backlog drains:");
    during.print();
    println!(
        "  meanwhile {:.0} learners/s drained",
        (lms.enrolled() - before) as f64 / during.elapsed.as_secs_f64()
    );
    server.stop().await;
    database.drop().await;

    // The median of three: a small drain is short, and its figure varies.
    let mut small = Vec::new();
    for _ in 0..3 {
        small.push(small_drain(args, work).await);
    }
    small.sort_by(f64::total_cmp);
    let small_cpu = small[1];
    println!(
        "  draining a backlog of {SMALL_BACKLOG} (median of 3): server CPU {:.0} µs per learner; at {count}: {:.2}x that",
        small_cpu * 1e6,
        cpu / small_cpu
    );
    crate::bounded::bounded(args, work, &SETTINGS).await;
}

/// The drain of a small backlog, all of it: server CPU seconds per learner.
async fn small_drain(args: &Args, work: &Path) -> f64 {
    let lms = FakeLms::start_unthrottled().await;
    let database = Database::fresh(args, work).await;
    let server = start(&database, &lms, work, false).await;
    let report = intake_run(&server, &run_tag(), 0, SMALL_BACKLOG, 8, false).await;
    server.stop().await;
    let server = start(&database, &lms, work, true).await;
    let (_, cpu) = drain(&server, &lms, report.latencies.len()).await;
    server.stop().await;
    database.drop().await;
    cpu
}

/// Waits until `learners` more have reached the LMS (or a minute has
/// passed): learners per second, and server CPU seconds per learner.
pub async fn drain(server: &Server, lms: &FakeLms, learners: usize) -> (f64, f64) {
    let (start, cpu, first) = (Instant::now(), server.cpu_seconds(), lms.enrolled());
    let deadline = start + Duration::from_secs(60);
    while lms.enrolled() < first + learners && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let drained = (lms.enrolled() - first).max(1) as f64;
    (
        drained / start.elapsed().as_secs_f64(),
        (server.cpu_seconds() - cpu) / drained,
    )
}

async fn start(database: &Database, lms: &FakeLms, work: &Path, workers: bool) -> Server {
    let args: &[&str] = if workers {
        &["serve"]
    } else {
        &["serve", "--no-worker"]
    };
    Server::start_with(&database.url, lms, work, args, &SETTINGS).await
}

pub fn run_tag() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..6].to_owned()
}
