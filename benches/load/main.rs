//! Load benchmark: intake throughput and latency, a launch-day burst under the
//! LMS throttle, the latency of a lone order, and the disk's single-commit rate
//! as the yardstick. Starts the real binary; prints figures.
//!
//! cargo bench --bench load -- [--backend sqlite|postgres|mysql] [--orders N]

mod fake_lms;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::Connection;
use tokio::process::{Child, Command};

use fake_lms::FakeLms;

const SHOP: &str = "bench-shop.myshopify.com";
const SHOPIFY_KEY: &str = "bench-shopify-key";
const WOO_SOURCE: &str = "https://bench-shop.example.com/";
const WOO_SECRET: &str = "bench-woo-secret";

#[derive(Parser, Debug)]
#[command(about = "edx-webhooks load benchmark")]
struct Args {
    /// sqlite, postgres or mysql.
    #[arg(long, default_value = "sqlite")]
    backend: String,
    /// Server for postgres/mysql; a fresh database is made on it and dropped after.
    #[arg(long)]
    server: Option<String>,
    /// Orders per intake run.
    #[arg(long, default_value_t = 20000)]
    orders: usize,
    /// Concurrent connections of the intake runs.
    #[arg(long, value_delimiter = ',', default_values_t = [64, 8])]
    concurrency: Vec<usize>,
    /// Orders in the launch-day burst (over 10 courses).
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// Only these parts: commit, intake, burst, idle.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Run the service with `serve --no-worker` (intake alone) in the intake runs.
    #[arg(long)]
    no_worker: bool,
    /// cargo bench passes this; ignored.
    #[arg(long, hide = true)]
    bench: bool,
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
        idle_latency(&server, &lms, &database.kind).await;
        drop(server);
        database.drop().await;
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

/// How many one-row transactions SQLite commits per second, one after
/// another, with the durability intake uses: the ceiling of a design that
/// commits once per request. Run on the calling thread, straight through
/// SQLite's C API, so that only the disk limits it.
fn single_commit_rate(work: &Path) -> f64 {
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

struct Database {
    kind: String,
    url: String,
    admin: Option<(String, String)>,
}

impl Database {
    async fn fresh(args: &Args, work: &Path) -> Database {
        let name = format!(
            "ew_bench_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        match args.backend.as_str() {
            "sqlite" => Database {
                kind: "sqlite".into(),
                url: format!(
                    "sqlite://{}",
                    work.join(format!("{name}.sqlite3")).display()
                ),
                admin: None,
            },
            "postgres" | "mysql" => {
                let server = args
                    .server
                    .clone()
                    .unwrap_or_else(|| match args.backend.as_str() {
                        "postgres" => "postgres://postgres@127.0.0.1:5432/test".into(),
                        _ => "mysql://root@127.0.0.1:3306/test".into(),
                    });
                sqlx::any::install_default_drivers();
                let mut conn = sqlx::AnyConnection::connect(&server)
                    .await
                    .expect("database server reachable");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                let (base, _) = server.rsplit_once('/').unwrap();
                Database {
                    kind: args.backend.clone(),
                    url: format!("{base}/{name}"),
                    admin: Some((server, name)),
                }
            }
            other => panic!("unknown backend {other}: sqlite, postgres or mysql"),
        }
    }

    async fn drop(self) {
        if let Some((server, name)) = self.admin {
            let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE {name}"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// The real binary, `serve`, on a free port.
struct Server {
    child: Child,
    base: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(database_url: &str, lms: &FakeLms, work: &Path, no_worker: bool) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let args: &[&str] = if no_worker {
            &["serve", "--no-worker"]
        } else {
            &["serve"]
        };
        let child = Command::new(env!("CARGO_BIN_EXE_edx-webhooks"))
            .args(args)
            .current_dir(work)
            .env_clear()
            .env("EDX_WEBHOOKS_LISTEN", format!("127.0.0.1:{port}"))
            .env("EDX_WEBHOOKS_DATABASE_URL", database_url)
            .env("EDX_WEBHOOKS_LMS_BASE_URL", lms.url())
            .env("EDX_WEBHOOKS_OAUTH2_CLIENT_ID", "bench")
            .env("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", "bench-secret")
            .env("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", SHOP)
            .env("EDX_WEBHOOKS_SHOPIFY_API_KEY", SHOPIFY_KEY)
            .env("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE)
            .env("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the service starts");
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = server
                .client
                .get(format!("{}/healthz", server.base))
                .send()
                .await
            {
                if r.status().is_success() {
                    return server;
                }
            }
            assert!(Instant::now() < deadline, "the service did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// User and system CPU time the server has used so far.
    fn cpu_seconds(&self) -> f64 {
        let pid = self.child.id().unwrap_or(0);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which may hold spaces): utime is the 12th, stime the 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        (ticks(11) + ticks(12)) / 100.0
    }

    fn peak_rss_mib(&self) -> f64 {
        let pid = self.child.id().unwrap_or(0);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0);
        kib / 1024.0
    }

    /// Sends one prepared order on a fresh request of the shared client.
    async fn send_order(&self, n: usize, run: &str) -> Result<Duration, String> {
        let order = Order::new(n, run);
        let mut request = self
            .client
            .post(format!("{}{}", self.base, order.path))
            .header("Content-Type", "application/json")
            .body(order.body);
        for (name, value) in order.headers {
            request = request.header(name, value);
        }
        let start = Instant::now();
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let answer = response.bytes().await.map_err(|e| e.to_string())?;
        let elapsed = start.elapsed();
        check_answer(status.as_u16(), &answer).map(|()| elapsed)
    }
}

/// One signed order, ready to send.
struct Order {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: bytes::Bytes,
}

impl Order {
    /// Order `n`: Shopify for even, WooCommerce for odd numbers; one learner, one of 10 courses.
    fn new(n: usize, run: &str) -> Order {
        let course = format!("course-v1:Bench+C{}+2026", n % 10);
        let email = format!("learner-{run}-{n}@example.org");
        if n.is_multiple_of(2) {
            let body = serde_json::to_vec(&json!({
                "id": 5_000_000_000u64 + n as u64, "name": format!("#{n}"), "email": "buyer@example.org",
                "financial_status": "paid", "customer": null,
                "line_items": [{"id": n, "sku": course, "quantity": 1,
                    "properties": [{"name": "email", "value": email}]}]
            }))
            .unwrap();
            let headers = vec![
                ("X-Shopify-Topic", "orders/create".to_owned()),
                ("X-Shopify-Shop-Domain", SHOP.to_owned()),
                ("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, &body)),
                ("X-Shopify-Webhook-Id", uuid::Uuid::new_v4().to_string()),
            ];
            Order {
                path: "/webhooks/shopify",
                headers,
                body: body.into(),
            }
        } else {
            let body = serde_json::to_vec(&json!({
                "id": n, "number": n.to_string(), "status": "processing", "date_paid_gmt": "2026-11-28T10:00:00",
                "billing": {"email": "buyer@example.org"},
                "line_items": [{"id": n, "sku": course, "quantity": 1, "meta_data": [
                    {"id": 1, "key": "_alg_wc_pif_local", "value": [{"type": "email", "_value": email}]}]}]
            }))
            .unwrap();
            let headers = vec![
                ("X-WC-Webhook-Source", WOO_SOURCE.to_owned()),
                ("X-WC-Webhook-Topic", "order.created".to_owned()),
                ("X-WC-Webhook-Signature", sign(WOO_SECRET, &body)),
            ];
            Order {
                path: "/webhooks/woocommerce",
                headers,
                body: body.into(),
            }
        }
    }

    fn request(&self, authority: &str) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
        let mut request = hyper::Request::post(self.path)
            .header("Host", authority)
            .header("Content-Type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request
            .body(http_body_util::Full::new(self.body.clone()))
            .unwrap()
    }
}

/// Ok when the service answered 200 and took the order in.
fn check_answer(status: u16, body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if status == 200 && answer["status"] == "accepted" {
        Ok(())
    } else {
        Err(format!("{status} {answer}"))
    }
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

struct IntakeReport {
    latencies: Vec<Duration>,
    errors: Vec<String>,
    elapsed: Duration,
}

impl IntakeReport {
    fn per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn print(&self) {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let at = |q: f64| -> f64 {
            if sorted.is_empty() {
                return 0.0;
            }
            let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
            sorted[i].as_secs_f64() * 1000.0
        };
        println!(
            "  accepted {} in {:.2} s: {:.0}/s; errors {}",
            self.latencies.len(),
            self.elapsed.as_secs_f64(),
            self.per_second(),
            self.errors.len()
        );
        println!(
            "  latency ms: p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}",
            at(0.50),
            at(0.95),
            at(0.99),
            sorted.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        );
        if let Some(first) = self.errors.first() {
            println!("  first error: {first}");
        }
    }
}

/// `orders` distinct orders from `concurrency` connections, each sending its
/// next as soon as answered. The orders are built and signed before the clock
/// starts, and the connections are driven by one thread of their own, so the
/// load generator takes as little of the machine as it can.
async fn intake(server: &Server, orders: usize, concurrency: usize, warm_up: bool) -> IntakeReport {
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut prepared: Vec<Order> = (0..orders).map(|n| Order::new(n, &run)).collect();
    if warm_up {
        // Connections and the server's caches, before the clock starts.
        let warm: Vec<Order> = (0..concurrency.min(16))
            .map(|n| Order::new(1_000_000 + n, &run))
            .collect();
        prepared.splice(0..0, warm);
    }
    let warm = if warm_up { concurrency.min(16) } else { 0 };
    let addr = server.base.trim_start_matches("http://").to_owned();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        tokio::task::LocalSet::new().block_on(&runtime, drive(addr, prepared, warm, concurrency))
    });
    tokio::task::spawn_blocking(move || thread.join().unwrap())
        .await
        .unwrap()
}

/// Sends the first `warm` orders one by one, then the rest over `concurrency` connections.
async fn drive(addr: String, orders: Vec<Order>, warm: usize, concurrency: usize) -> IntakeReport {
    let orders = std::rc::Rc::new(orders);
    let mut connections = Vec::new();
    for _ in 0..concurrency {
        connections.push(connect(&addr).await);
    }
    for (i, order) in orders[..warm].iter().enumerate() {
        let _ = send(&mut connections[i % concurrency], order, &addr).await;
    }
    let next = std::rc::Rc::new(std::cell::Cell::new(warm));
    let start = Instant::now();
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|mut connection| {
            let (orders, next, addr) = (orders.clone(), next.clone(), addr.clone());
            tokio::task::spawn_local(async move {
                let mut latencies = Vec::new();
                let mut errors = Vec::new();
                loop {
                    let n = next.get();
                    if n >= orders.len() {
                        break;
                    }
                    next.set(n + 1);
                    match send(&mut connection, &orders[n], &addr).await {
                        Ok(latency) => latencies.push(latency),
                        Err(e) => errors.push(e),
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let elapsed = start.elapsed();
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    for result in results {
        let (l, e) = result.unwrap();
        latencies.extend(l);
        errors.extend(e);
    }
    IntakeReport {
        latencies,
        errors,
        elapsed,
    }
}

type HttpConnection = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

async fn connect(addr: &str) -> HttpConnection {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::task::spawn_local(connection);
    sender
}

async fn send(
    connection: &mut HttpConnection,
    order: &Order,
    addr: &str,
) -> Result<Duration, String> {
    use http_body_util::BodyExt;
    let start = Instant::now();
    if connection.ready().await.is_err() {
        // The server closed it: open another, as a client's pool would.
        *connection = connect(addr).await;
    }
    let response = connection
        .send_request(order.request(addr))
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let elapsed = start.elapsed();
    check_answer(status, &body).map(|()| elapsed)
}

/// A sale opens: `orders` orders for 10 courses at 64 connections; the time
/// until every learner is enrolled at an LMS that throttles.
async fn burst(server: &Server, lms: &FakeLms, orders: usize, kind: &str) {
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
}

/// One order at a time into an idle service: from its 200 to the LMS request.
async fn idle_latency(server: &Server, lms: &FakeLms, kind: &str) {
    let run = uuid::Uuid::new_v4().simple().to_string()[..6].to_owned();
    let mut delays = Vec::new();
    for n in 0..10 {
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
    println!("\n[idle] a lone order, from its 200 to the LMS request ({kind}), 10 orders:");
    println!(
        "  median {:.1} ms, max {:.1} ms",
        delays[delays.len() / 2].as_secs_f64() * 1000.0,
        delays.last().unwrap().as_secs_f64() * 1000.0
    );
}
