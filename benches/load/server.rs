//! What the benchmark runs against: a fresh database and the real binary.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::Connection;
use tokio::process::{Child, Command};

use crate::fake_lms::FakeLms;
use crate::payloads::{check_answer, Order, SHOP, SHOPIFY_KEY, WOO_SECRET, WOO_SOURCE};
use crate::Args;

pub struct Database {
    pub kind: String,
    pub url: String,
    pub admin: Option<(String, String)>,
}

impl Database {
    pub async fn fresh(args: &Args, work: &Path) -> Database {
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

    pub async fn drop(self) {
        if let Some((server, name)) = self.admin {
            let mut conn = sqlx::AnyConnection::connect(&server).await.unwrap();
            let _ = sqlx::query(&format!("DROP DATABASE {name}"))
                .execute(&mut conn)
                .await;
        }
    }
}

/// The real binary, `serve`, on a free port.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub client: reqwest::Client,
}

impl Server {
    pub async fn start(database_url: &str, lms: &FakeLms, work: &Path, no_worker: bool) -> Server {
        let args: &[&str] = if no_worker {
            &["serve", "--no-worker"]
        } else {
            &["serve"]
        };
        Server::start_with(database_url, lms, work, args, &[]).await
    }

    /// `args` of the binary, with the benchmark's settings and `extra` ones.
    pub async fn start_with(
        database_url: &str,
        lms: &FakeLms,
        work: &Path,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = command(database_url, lms, work, extra)
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
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

    /// Ends the process and waits until it is gone (its files closed).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// User and system CPU time the server has used so far.
    pub fn cpu_seconds(&self) -> f64 {
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

    pub fn peak_rss_mib(&self) -> f64 {
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
    pub async fn send_order(&self, n: usize, run: &str) -> Result<Duration, String> {
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

/// The binary with the benchmark's settings and `extra` ones, in `work`.
pub fn command(database_url: &str, lms: &FakeLms, work: &Path, extra: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_edx-webhooks"));
    command
        .current_dir(work)
        .env_clear()
        .env("EDX_WEBHOOKS_DATABASE_URL", database_url)
        .env("EDX_WEBHOOKS_LMS_BASE_URL", lms.url())
        .env("EDX_WEBHOOKS_OAUTH2_CLIENT_ID", "bench")
        .env("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", "bench-secret")
        .env("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", SHOP)
        .env("EDX_WEBHOOKS_SHOPIFY_API_KEY", SHOPIFY_KEY)
        .env("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE)
        .env("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET)
        .env(
            "RUST_LOG",
            std::env::var("LOAD_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        );
    for (name, value) in extra {
        command.env(name, value);
    }
    command
}
