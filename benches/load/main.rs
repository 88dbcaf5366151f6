//! Load benchmark: intake throughput and latency, a launch-day burst under the
//! LMS throttle, the latency of a lone order, and the disk's single-commit rate
//! as the yardstick. Starts the real binary; prints figures.
//!
//! cargo bench --bench load -- [--backend sqlite|postgres|mysql] [--orders N]
//! cargo bench --bench load -- --only growth --stored N

mod bounded;
mod client;
mod fake_lms;
mod fill;
mod growth;
mod payloads;
mod reads;
mod report;
mod scenarios;
mod server;

use std::path::{Path, PathBuf};

use clap::Parser;

use client::intake;
use fake_lms::FakeLms;
use scenarios::{burst, idle_latency, single_commit_rate};
use server::{Database, Server};

#[derive(Parser, Debug)]
#[command(about = "edx-webhooks load benchmark")]
pub struct Args {
    /// sqlite, postgres or mysql.
    #[arg(long, default_value = "sqlite")]
    pub backend: String,
    /// Server for postgres/mysql; a fresh database is made on it and dropped after.
    #[arg(long)]
    pub server: Option<String>,
    /// Orders per intake run.
    #[arg(long, default_value_t = 20000)]
    pub orders: usize,
    /// Concurrent connections of the intake runs.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 8])]
    pub concurrency: Vec<usize>,
    /// Orders in the launch-day burst (over 10 courses).
    #[arg(long, default_value_t = 1000)]
    pub burst: usize,
    /// Only these parts: commit, intake, burst, idle, growth (growth runs only when named).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Orders stored before the growth part measures.
    #[arg(long, default_value_t = 100_000)]
    pub stored: usize,
    /// Run the service with `serve --no-worker` (intake alone) in the intake runs.
    #[arg(long)]
    pub no_worker: bool,
    /// cargo bench passes this; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let wants = |part: &str| args.only.is_empty() || args.only.iter().any(|p| p == part);
    let work = work_dir();
    println!(
        "edx-webhooks load benchmark: backend {}, {} cores",
        args.backend,
        num_cpus()
    );

    let commit_rate = if wants("commit") {
        let rate = single_commit_rate(&work);
        println!("\n[disk] single-row SQLite transactions, synchronous=FULL, one after another: {rate:.0} commits/s");
        Some(rate)
    } else {
        None
    };

    if wants("intake") {
        for &concurrency in &args.concurrency {
            let lms = FakeLms::start().await;
            let database = Database::fresh(&args, &work).await;
            let server = Server::start(&database.url, &lms, &work, args.no_worker).await;
            let cpu_before = server.cpu_seconds();
            let report = intake(&server, args.orders, concurrency, true).await;
            let cpu = server.cpu_seconds() - cpu_before;
            let workers = if args.no_worker {
                "intake only"
            } else {
                "workers enrolling meanwhile"
            };
            println!(
                "\n[intake] {} orders, {concurrency} connections ({}, {workers})",
                args.orders, database.kind
            );
            report.print();
            if let Some(rate) = commit_rate.filter(|_| database.kind == "sqlite") {
                println!(
                    "  ratio to the single-commit rate: {:.2}x",
                    report.per_second() / rate
                );
            }
            println!(
                "  server peak RSS: {:.1} MiB; server CPU {:.2} s ({:.0} µs per order)",
                server.peak_rss_mib(),
                cpu,
                cpu * 1e6 / args.orders as f64
            );
            if !args.no_worker {
                let counts = lms.counts.lock().unwrap();
                println!(
                    "  meanwhile {} LMS requests enrolled {} learners",
                    counts.requests,
                    counts.enrolled.len()
                );
            }
            drop(server);
            database.drop().await;
        }
    }

    if wants("burst") {
        let lms = FakeLms::start().await;
        let database = Database::fresh(&args, &work).await;
        let server = Server::start(&database.url, &lms, &work, false).await;
        burst(&server, &lms, args.burst, &database.kind).await;
        println!("  server peak RSS: {:.1} MiB", server.peak_rss_mib());
        drop(server);
        database.drop().await;
    }

    if wants("idle") {
        let lms = FakeLms::start().await;
        let database = Database::fresh(&args, &work).await;
        let server = Server::start(&database.url, &lms, &work, false).await;
        idle_latency(&server, &lms, &database.kind, "serve", 0).await;
        drop(server);
        // Receiving and processing apart: `serve --no-worker` and a `worker`.
        let intake = Server::start(&database.url, &lms, &work, true).await;
        let worker = Server::start_with(&database.url, &lms, &work, &["worker"], &[]).await;
        idle_latency(
            &intake,
            &lms,
            &database.kind,
            "the worker in another process",
            10,
        )
        .await;
        drop((intake, worker));
        database.drop().await;
    }
    if args.only.iter().any(|p| p == "growth") {
        growth::growth(&args, &work).await;
    }
    let _ = std::fs::remove_dir_all(&work);
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A scratch directory on the project's disk (not a RAM-backed /tmp).
fn work_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("load-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}
