//! The parts of the benchmark besides plain intake: the disk's commit rate,
//! the launch-day burst, the lone order.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::intake;
use crate::fake_lms::FakeLms;
use crate::server::Server;

/// How many one-row transactions SQLite commits per second, one after
/// another, with the durability intake uses: the ceiling of a design that
/// commits once per request. Run on the calling thread, straight through
/// SQLite's C API, so that only the disk limits it.
pub fn single_commit_rate(work: &Path) -> f64 {
    let conn = rusqlite::Connection::open(work.join("commits.sqlite3")).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)")
        .unwrap();
    let row = vec![7u8; 2048];
    let mut insert = conn.prepare("INSERT INTO t (v) VALUES (?)").unwrap();
    let start = Instant::now();
    let mut commits = 0u32;
    while start.elapsed() < Duration::from_secs(3) {
        conn.execute_batch("BEGIN").unwrap();
        insert.execute([&row]).unwrap();
        conn.execute_batch("COMMIT").unwrap();
        commits += 1;
    }
    f64::from(commits) / start.elapsed().as_secs_f64()
}

/// A sale opens: `orders` orders for 10 courses at 64 connections; the time
/// until every learner is enrolled at an LMS that throttles.
pub async fn burst(server: &Server, lms: &FakeLms, orders: usize, kind: &str) {
    let start = Instant::now();
    let report = intake(server, orders, 64, false).await;
    let expected = report.latencies.len();
    let deadline = Instant::now() + Duration::from_secs(300);
    while lms.enrolled() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let all = start.elapsed();
    let counts = lms.counts.lock().unwrap();
    println!("\n[burst] {orders} orders for 10 courses at 64 connections ({kind}); LMS answers in 50 ms, allows 120 requests a minute");
    println!(
        "  all sent and answered in {:.2} s ({:.0}/s), errors {}",
        report.elapsed.as_secs_f64(),
        report.per_second(),
        report.errors.len()
    );
    println!(
        "  every learner enrolled {:.2} s after the first order was sent ({} of {expected} learners)",
        all.as_secs_f64(),
        counts.enrolled.len()
    );
    println!(
        "  LMS requests: {} ({} throttled), {:.1} learners per request",
        counts.requests,
        counts.throttled,
        counts.enrolled.len() as f64 / counts.requests.max(1) as f64
    );
    let sizes: Vec<String> = counts
        .sizes
        .iter()
        .zip(&counts.arrivals)
        .map(|(n, at)| format!("{n}@{}", at.duration_since(start).as_millis()))
        .collect();
    println!(
        "  learners per request @ ms after the first order, in order: {}",
        sizes.join(" ")
    );
}

/// One order at a time into an idle service: from its 200 to the LMS request.
/// `how` says where the workers run; the orders are `first`.. `first + 10`.
pub async fn idle_latency(server: &Server, lms: &FakeLms, kind: &str, how: &str, first: usize) {
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut delays = Vec::new();
    for n in first..first + 10 {
        let before = lms.counts.lock().unwrap().arrivals.len();
        server.send_order(n, &run).await.expect("accepted");
        let answered = Instant::now();
        let deadline = answered + Duration::from_secs(10);
        let arrived = loop {
            if let Some(at) = lms.counts.lock().unwrap().arrivals.get(before) {
                break *at;
            }
            assert!(Instant::now() < deadline, "the order never reached the LMS");
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        delays.push(arrived.saturating_duration_since(answered));
        // Let the service go idle again before the next one.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    delays.sort();
    println!("\n[idle] a lone order, from its 200 to the LMS request ({kind}, {how}), 10 orders:");
    println!(
        "  median {:.1} ms, max {:.1} ms",
        delays[delays.len() / 2].as_secs_f64() * 1000.0,
        delays.last().unwrap().as_secs_f64() * 1000.0
    );
}
