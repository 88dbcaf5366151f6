//! The real binary as a child process, configured only through its
//! environment, in a temporary working directory; it says the port it bound in
//! its JSON log on stderr.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use edx_webhooks::store::Store;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::helpers::{sign, SHOP, SHOPIFY_KEY};
use crate::lms::{FakeLms, CLIENT_ID, CLIENT_SECRET};

pub const BINARY: &str = env!("CARGO_BIN_EXE_edx-webhooks");
/// How long a process may take to start (migrations included) or to stop.
pub const START_DEADLINE: Duration = Duration::from_secs(30);
pub const STOP_DEADLINE: Duration = Duration::from_secs(10);

/// What the child wrote to stderr so far, and whether it closed it.
#[derive(Default)]
struct Stderr {
    lines: Vec<String>,
    closed: bool,
}

/// A running `edx-webhooks serve`, killed when dropped.
pub struct Service {
    child: Child,
    pid: Pid,
    address: SocketAddr,
    stderr: watch::Receiver<Stderr>,
}

/// The settings every test starts from: the database, the fake LMS,
/// one Shopify shop, fast retries, JSON logs.
pub fn service_env(lms: &FakeLms, database_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EDX_WEBHOOKS_LISTEN", "127.0.0.1:0".into()),
        ("EDX_WEBHOOKS_DATABASE_URL", database_url.to_owned()),
        ("EDX_WEBHOOKS_LMS_BASE_URL", lms.uri()),
        ("EDX_WEBHOOKS_OAUTH2_CLIENT_ID", CLIENT_ID.into()),
        ("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", CLIENT_SECRET.into()),
        ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", SHOP.into()),
        ("EDX_WEBHOOKS_SHOPIFY_API_KEY", SHOPIFY_KEY.into()),
        ("EDX_WEBHOOKS_RETRY_DELAY", "100ms".into()),
        ("EDX_WEBHOOKS_RETRY_MAX_DELAY", "300ms".into()),
        ("EDX_WEBHOOKS_LMS_TIMEOUT", "2s".into()),
        ("EDX_WEBHOOKS_LOG_FORMAT", "json".into()),
    ]
}

/// `env` with `name` set to `value` (replaced if present).
pub fn with_setting(
    mut env: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    env.retain(|(n, _)| *n != name);
    env.push((name, value.to_owned()));
    env
}

/// The binary with nothing from our environment but `PATH`, in `dir` (so no
/// stray `.env` is read).
pub fn command(dir: &Path, env: &[(&'static str, String)]) -> Command {
    command_with(&["serve"], dir, env)
}

/// The binary with `args`, nothing from our environment but `PATH`, in `dir`.
pub fn command_with(args: &[&str], dir: &Path, env: &[(&'static str, String)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// A JSON log line's message: at the top level (flattened events) or under `fields`.
pub fn message(line: &Value) -> Option<&str> {
    line.get("message")
        .or_else(|| line.pointer("/fields/message"))
        .and_then(Value::as_str)
}

fn field<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line.get(name)
        .or_else(|| line.get("fields").and_then(|f| f.get(name)))
}

impl Service {
    /// Starts the binary and waits until it says where it listens; panics with
    /// its stderr if it does not within `START_DEADLINE`.
    pub async fn start(dir: &Path, env: &[(&'static str, String)]) -> Service {
        Service::start_with(&["serve"], dir, env).await
    }

    /// Starts the binary with `args` (which must serve HTTP).
    pub async fn start_with(args: &[&str], dir: &Path, env: &[(&'static str, String)]) -> Service {
        let mut child = command_with(args, dir, env)
            .spawn()
            .expect("the binary starts");
        let pid = Pid::from_raw(child.id().expect("a running child") as i32);
        let (tx, stderr) = watch::channel(Stderr::default());
        let pipe = child.stderr.take().expect("stderr is piped");
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tx.send_modify(|s| s.lines.push(line));
            }
            tx.send_modify(|s| s.closed = true);
        });
        let mut service = Service {
            child,
            pid,
            address: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr,
        };
        let running = service
            .wait_for_log(START_DEADLINE, |line| {
                message(line) == Some("edx-webhooks running")
            })
            .await;
        service.address = field(&running, "address")
            .and_then(Value::as_str)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no address in the start-up line {running}\n{}",
                    service.stderr_text()
                )
            });
        service
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The process id, e.g. to read its memory use from `/proc`.
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// The JSON log lines written so far.
    pub fn log_lines(&self) -> Vec<Value> {
        self.stderr
            .borrow()
            .lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.borrow().lines.join("\n")
    }

    /// The first JSON log line (seen so far or to come) that `matches`; panics
    /// with stderr if none comes within `deadline` or the process closes stderr.
    pub async fn wait_for_log(
        &mut self,
        deadline: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let find = |s: &Stderr| {
            s.lines
                .iter()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .find(|v| matches(v))
        };
        let mut rx = self.stderr.clone();
        let waited = tokio::time::timeout(deadline, async {
            let state = rx
                .wait_for(|s| s.closed || find(s).is_some())
                .await
                .expect("the stderr reader keeps its sender until the pipe closes");
            find(&state)
        })
        .await;
        match waited {
            Ok(Some(line)) => line,
            Ok(None) => panic!(
                "the process closed stderr ({:?}) without the expected log line:\n{}",
                self.child.try_wait(),
                self.stderr_text()
            ),
            Err(_) => panic!(
                "the expected log line did not come within {deadline:?}:\n{}",
                self.stderr_text()
            ),
        }
    }

    /// SIGKILL: no chance to clean up. Waits until the process is gone.
    pub async fn kill(&mut self) -> ExitStatus {
        signal::kill(self.pid, Signal::SIGKILL).expect("SIGKILL sent");
        self.wait_exit(STOP_DEADLINE).await
    }

    /// SIGTERM: asks for a graceful stop.
    pub fn terminate(&self) {
        signal::kill(self.pid, Signal::SIGTERM).expect("SIGTERM sent");
    }

    /// The exit status, or a panic with stderr if the process runs past `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        match tokio::time::timeout(deadline, self.child.wait()).await {
            Ok(status) => status.expect("waiting for the child"),
            Err(_) => panic!(
                "the process did not exit within {deadline:?}:\n{}",
                self.stderr_text()
            ),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // Fails harmlessly when the process has already been waited for.
        let _ = self.child.start_kill();
    }
}

/// Runs the binary to its end (for start-ups that must fail): status and stderr.
pub async fn run_to_exit(dir: &Path, env: &[(&'static str, String)]) -> (ExitStatus, String) {
    let child = command(dir, env).spawn().expect("the binary starts");
    let output = tokio::time::timeout(START_DEADLINE, child.wait_with_output())
        .await
        .expect("the process exits by itself")
        .expect("waiting for the child");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The signed Shopify delivery headers for `raw`, as (name, value).
pub fn shopify_headers(raw: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".into()),
        ("X-Shopify-Topic", "orders/create".into()),
        ("X-Shopify-Shop-Domain", SHOP.into()),
        ("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, raw)),
        ("X-Shopify-Webhook-Id", uuid::Uuid::new_v4().to_string()),
        ("X-Shopify-API-Version", "2026-10".into()),
    ]
}

/// A signed Shopify `orders/create` delivery to `/webhooks/shopify`.
pub async fn deliver(service: &Service, body: &Value) -> reqwest::Response {
    let raw = serde_json::to_vec(body).unwrap();
    let mut request = reqwest::Client::new().post(service.url("/webhooks/shopify"));
    for (name, value) in shopify_headers(&raw) {
        request = request.header(name, value);
    }
    request.body(raw).send().await.expect("the service answers")
}

/// Polls the database until the order is in `state`; panics with what it is.
pub async fn wait_for_order_state(store: &Store, order: &str, state: &str, deadline: Duration) {
    let start = std::time::Instant::now();
    loop {
        let found = match store.find_order(order, Some(SHOP)).await {
            Ok(id) => store.order_view(id).await.ok(),
            Err(_) => None,
        };
        match found {
            Some(view) if view.state == state => return,
            last if start.elapsed() > deadline => {
                panic!("order {order} did not become {state}: {last:#?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}
