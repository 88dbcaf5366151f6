//! The real binary: killed, restarted, stopped.
//!
//! Every test runs `edx-webhooks serve` as a child process, configured only
//! through its environment, in a temporary working directory, and learns the
//! port it bound from its JSON log on stderr.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use edx_webhooks::store::Store;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::watch;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{shopify_order, sign, wait_until, COURSE_A, SHOP, SHOPIFY_KEY};
use crate::lms::{FakeLms, CLIENT_ID, CLIENT_SECRET};

const BINARY: &str = env!("CARGO_BIN_EXE_edx-webhooks");
/// How long a process may take to start (migrations included) or to stop.
const START_DEADLINE: Duration = Duration::from_secs(30);
const STOP_DEADLINE: Duration = Duration::from_secs(10);

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

/// The settings every test starts from: a database in `dir`, the fake LMS,
/// one Shopify shop, fast retries, JSON logs.
fn service_env(lms: &FakeLms, dir: &TempDir) -> Vec<(&'static str, String)> {
    vec![
        ("EDX_WEBHOOKS_LISTEN", "127.0.0.1:0".into()),
        ("EDX_WEBHOOKS_DATABASE_URL", database_url(dir)),
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

fn database_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("db.sqlite3").display())
}

/// `env` with `name` set to `value` (replaced if present).
fn with_setting(
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
fn command(dir: &Path, env: &[(&'static str, String)]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("serve")
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
fn message(line: &Value) -> Option<&str> {
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
        let mut child = command(dir, env).spawn().expect("the binary starts");
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

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
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
async fn run_to_exit(dir: &Path, env: &[(&'static str, String)]) -> (ExitStatus, String) {
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
fn shopify_headers(raw: &[u8]) -> Vec<(&'static str, String)> {
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
async fn deliver(service: &Service, body: &Value) -> reqwest::Response {
    let raw = serde_json::to_vec(body).unwrap();
    let mut request = reqwest::Client::new().post(service.url("/webhooks/shopify"));
    for (name, value) in shopify_headers(&raw) {
        request = request.header(name, value);
    }
    request.body(raw).send().await.expect("the service answers")
}

/// Polls the database until the order is in `state`; panics with what it is.
async fn wait_for_order_state(store: &Store, order: &str, state: &str, deadline: Duration) {
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

const BULK_ENROLL: &str = "/api/bulk_enroll/v1/bulk_enroll";
const LEARNER: &str = "learner@example.com";
const BUYER: &str = "buyer@example.com";

#[tokio::test]
async fn sigkill_after_a_200_while_the_lms_is_down_the_restarted_process_enrolls() {
    let lms = FakeLms::start().await;
    lms.with(|s| s.down = true);
    let dir = tempfile::tempdir().unwrap();
    let env = service_env(&lms, &dir);
    let mut first = Service::start(dir.path(), &env).await;

    let order = shopify_order(
        7_100_001,
        &[(1, COURSE_A, Some(LEARNER))],
        Some(BUYER),
        "paid",
    );
    let response = deliver(&first, &order).await;
    assert_eq!(response.status(), 200);

    let lms_ref = &lms;
    let tried = wait_until(Duration::from_secs(15), || async move {
        !lms_ref.calls().is_empty()
    })
    .await;
    assert!(
        tried,
        "no LMS attempt while the LMS is down:\n{}",
        first.stderr_text()
    );
    // Between two attempts, or in the middle of one (then the new process
    // takes the claim over once the dead one's lease runs out: see below).
    let killed = first.kill().await;
    assert_eq!(
        killed.code(),
        None,
        "killed by a signal, not exited: {killed:?}"
    );
    assert!(
        !lms.is_enrolled(COURSE_A, LEARNER),
        "the LMS was down: nothing can be enrolled yet"
    );

    lms.with(|s| s.down = false);
    let second = Service::start(dir.path(), &env).await;
    let enrolled = wait_until(Duration::from_secs(45), || async move {
        lms_ref.is_enrolled(COURSE_A, LEARNER)
    })
    .await;
    assert!(
        enrolled,
        "the restarted process did not enroll the learner; LMS calls: {:#?}\n{}",
        lms.calls(),
        second.stderr_text()
    );

    let store = Store::connect(&database_url(&dir)).await.unwrap();
    wait_for_order_state(
        &store,
        &order["id"].to_string(),
        "enrolled",
        Duration::from_secs(15),
    )
    .await;
}

/// Killed while its LMS call hangs, the process dies holding a claim: the
/// restarted one must wait for that claim's lease to run out, then do the work.
#[tokio::test]
async fn sigkill_during_an_lms_call_the_restarted_process_takes_the_work_over_after_the_lease() {
    let lms = FakeLms::start().await;
    // The first bulk enrollment call takes far longer than EDX_WEBHOOKS_LMS_TIMEOUT;
    // later ones reach the fake LMS.
    Mock::given(method("POST"))
        .and(path(BULK_ENROLL))
        .respond_with(ResponseTemplate::new(503).set_delay(Duration::from_secs(120)))
        .with_priority(1)
        .up_to_n_times(1)
        .mount(&lms.server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let env = service_env(&lms, &dir);
    let mut first = Service::start(dir.path(), &env).await;

    let order = shopify_order(
        7_100_004,
        &[(1, COURSE_A, Some(LEARNER))],
        Some(BUYER),
        "paid",
    );
    let response = deliver(&first, &order).await;
    assert_eq!(response.status(), 200);

    let lms_ref = &lms;
    let calling = wait_until(Duration::from_secs(15), || async move {
        lms_ref
            .server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .any(|r| r.url.path() == BULK_ENROLL)
    })
    .await;
    assert!(calling, "no LMS call:\n{}", first.stderr_text());
    first.kill().await;

    let second = Service::start(dir.path(), &env).await;
    let enrolled = wait_until(Duration::from_secs(45), || async move {
        lms_ref.is_enrolled(COURSE_A, LEARNER)
    })
    .await;
    assert!(
        enrolled,
        "the restarted process did not take the work over:\n{}",
        second.stderr_text()
    );
    let store = Store::connect(&database_url(&dir)).await.unwrap();
    wait_for_order_state(
        &store,
        &order["id"].to_string(),
        "enrolled",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(lms.calls().len(), 1, "enrolled once: {:#?}", lms.calls());
}

#[tokio::test]
async fn sigterm_stops_the_service_with_exit_code_0() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut service = Service::start(dir.path(), &service_env(&lms, &dir)).await;
    let address = service.address();

    let order = shopify_order(
        7_100_002,
        &[(1, COURSE_A, Some(LEARNER))],
        Some(BUYER),
        "paid",
    );
    let response = deliver(&service, &order).await;
    assert_eq!(response.status(), 200);
    let lms_ref = &lms;
    let enrolled = wait_until(Duration::from_secs(15), || async move {
        lms_ref.is_enrolled(COURSE_A, LEARNER)
    })
    .await;
    assert!(enrolled, "not enrolled:\n{}", service.stderr_text());

    service.terminate();
    let status = service.wait_exit(STOP_DEADLINE).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}:\n{}",
        service.stderr_text()
    );
    assert!(
        TcpStream::connect(address).await.is_err(),
        "{address} still accepts connections after the process exited"
    );
}

#[tokio::test]
async fn sigterm_while_a_request_is_in_flight_still_answers_it() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    // tower-http's trace layer says (at debug) when a request reached the service.
    let env = with_setting(service_env(&lms, &dir), "RUST_LOG", "info,tower_http=debug");
    let mut service = Service::start(dir.path(), &env).await;
    let address = service.address();

    let order = shopify_order(
        7_100_003,
        &[(1, COURSE_A, Some(LEARNER))],
        Some(BUYER),
        "paid",
    );
    let raw = serde_json::to_vec(&order).unwrap();
    let (first_half, second_half) = raw.split_at(raw.len() / 2);
    let mut head = format!(
        "POST /webhooks/shopify HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\n",
        raw.len()
    );
    for (name, value) in shopify_headers(&raw) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");

    // The request's head and half its body: the service is now reading the rest.
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first_half).await.unwrap();
    stream.flush().await.unwrap();
    service
        .wait_for_log(STOP_DEADLINE, |line| {
            message(line) == Some("started processing request")
                && line.pointer("/span/uri").and_then(Value::as_str) == Some("/webhooks/shopify")
        })
        .await;

    service.terminate();
    service
        .wait_for_log(STOP_DEADLINE, |line| {
            message(line).is_some_and(|m| m.starts_with("stopping"))
        })
        .await;
    // Proof that it is shutting down while our request is still open.
    let refused = wait_until(STOP_DEADLINE, || async move {
        TcpStream::connect(address).await.is_err()
    })
    .await;
    assert!(
        refused,
        "{address} still accepts new connections after SIGTERM:\n{}",
        service.stderr_text()
    );

    stream.write_all(second_half).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(STOP_DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the answer comes and the connection closes")
        .expect("reading the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight was not answered 200: {answer:?}\n{}",
        service.stderr_text()
    );
    assert!(answer.contains("accepted"), "{answer}");

    let status = service.wait_exit(STOP_DEADLINE).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status:?}:\n{}",
        service.stderr_text()
    );
    // What was answered 200 is stored.
    let store = Store::connect(&database_url(&dir)).await.unwrap();
    store
        .find_order(&order["id"].to_string(), Some(SHOP))
        .await
        .expect("the order answered during shutdown is stored");
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_exit_code_2_naming_the_setting() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "supersecret-value";

    let env = with_setting(service_env(&lms, &dir), "EDX_WEBHOOKS_RETRY_DELAY", "soon");
    let env = with_setting(env, "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", secret);
    let (status, stderr) = run_to_exit(dir.path(), &env).await;
    assert_eq!(status.code(), Some(2), "{status:?}: {stderr}");
    assert!(stderr.contains("EDX_WEBHOOKS_RETRY_DELAY"), "{stderr}");
    assert!(stderr.contains("soon"), "the bad value is shown: {stderr}");
    assert!(!stderr.contains(secret), "a secret in stderr: {stderr}");
    assert!(
        !dir.path().join("db.sqlite3").exists(),
        "the database was touched before the settings were checked"
    );

    // A bad value of a secret setting names the setting, never the value.
    let env = with_setting(
        service_env(&lms, &dir),
        "EDX_WEBHOOKS_ADMIN_PASSWORD_HASH",
        secret,
    );
    let (status, stderr) = run_to_exit(dir.path(), &env).await;
    assert_eq!(status.code(), Some(2), "{status:?}: {stderr}");
    assert!(
        stderr.contains("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH"),
        "{stderr}"
    );
    assert!(!stderr.contains(secret), "a secret in stderr: {stderr}");
}

#[tokio::test]
async fn the_embedded_default_database_is_created_in_the_working_directory() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = service_env(&lms, &dir);
    env.retain(|(name, _)| *name != "EDX_WEBHOOKS_DATABASE_URL");
    let mut service = Service::start(dir.path(), &env).await;

    assert!(
        dir.path().join("edx-webhooks.sqlite3").is_file(),
        "no edx-webhooks.sqlite3 in the working directory"
    );
    let client = reqwest::Client::new();
    let health = client.get(service.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    // Ready means the database is there and migrated.
    let ready = client.get(service.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{:?}", ready.text().await);

    service.terminate();
    let status = service.wait_exit(STOP_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "{}", service.stderr_text());
}

#[tokio::test]
async fn sigterm_as_soon_as_it_runs_still_stops_it_cleanly() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut service = Service::start(dir.path(), &service_env(&lms, &dir)).await;

    service.terminate();

    let status = service.wait_exit(STOP_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "{}", service.stderr_text());
}
