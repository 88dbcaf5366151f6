//! The real binary: killed, restarted, stopped.

use std::time::Duration;

use edx_webhooks::store::Store;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{fresh_database, shopify_order, wait_until, Db, COURSE_A, SHOP, SQLITE_FILE};
use crate::lms::FakeLms;
use crate::service::*;

const BULK_ENROLL: &str = "/api/bulk_enroll/v1/bulk_enroll";
const LEARNER: &str = "learner@example.com";
const BUYER: &str = "buyer@example.com";

/// Killed while its LMS call hangs, the process dies holding a claim: the
/// restarted one must wait for that claim's lease to run out, then do the work.

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_exit_code_2_naming_the_setting() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = "supersecret-value";

    let env = with_setting(
        service_env(&lms, &fresh_database(Db::Sqlite, &dir).await),
        "EDX_WEBHOOKS_RETRY_DELAY",
        "soon",
    );
    let env = with_setting(env, "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", secret);
    let (status, stderr) = run_to_exit(dir.path(), &env).await;
    assert_eq!(status.code(), Some(2), "{status:?}: {stderr}");
    assert!(stderr.contains("EDX_WEBHOOKS_RETRY_DELAY"), "{stderr}");
    assert!(stderr.contains("soon"), "the bad value is shown: {stderr}");
    assert!(!stderr.contains(secret), "a secret in stderr: {stderr}");
    assert!(
        !dir.path().join(SQLITE_FILE).exists(),
        "the database was touched before the settings were checked"
    );

    // A bad value of a secret setting names the setting, never the value.
    let env = with_setting(
        service_env(&lms, &fresh_database(Db::Sqlite, &dir).await),
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
    let mut env = service_env(&lms, &fresh_database(Db::Sqlite, &dir).await);
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

on_each_database! {
async fn sigkill_after_a_200_while_the_lms_is_down_the_restarted_process_enrolls(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| s.down = true);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let env = service_env(&lms, &url);
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

    let store = Store::connect(&url).await.unwrap();
    wait_for_order_state(
        &store,
        &order["id"].to_string(),
        "enrolled",
        Duration::from_secs(15),
    )
    .await;
}

async fn sigkill_during_an_lms_call_the_restarted_process_takes_the_work_over_after_the_lease(db: Db) {
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
    let url = fresh_database(db, &dir).await;
    let env = service_env(&lms, &url);
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
    let store = Store::connect(&url).await.unwrap();
    wait_for_order_state(
        &store,
        &order["id"].to_string(),
        "enrolled",
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(lms.calls().len(), 1, "enrolled once: {:#?}", lms.calls());
}

async fn sigterm_stops_the_service_with_exit_code_0(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut service = Service::start(dir.path(), &service_env(&lms, &url)).await;
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

async fn sigterm_while_a_request_is_in_flight_still_answers_it(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    // tower-http's trace layer says (at debug) when a request reached the service.
    let env = with_setting(service_env(&lms, &url), "RUST_LOG", "info,tower_http=debug");
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
    let store = Store::connect(&url).await.unwrap();
    store
        .find_order(&order["id"].to_string(), Some(SHOP))
        .await
        .expect("the order answered during shutdown is stored");
}

async fn sigterm_as_soon_as_it_runs_still_stops_it_cleanly(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut service = Service::start(dir.path(), &service_env(&lms, &url)).await;

    service.terminate();

    let status = service.wait_exit(STOP_DEADLINE).await;
    assert_eq!(status.code(), Some(0), "{}", service.stderr_text());
}
}
