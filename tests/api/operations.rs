//! Operating the service: `edx-webhooks check`, `/metrics`, `/readyz`, and
//! the log lines of a request and of a claim.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use edx_webhooks::store::Store;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStderr;

use crate::helpers::*;
use crate::lms::{FakeLms, CLIENT_SECRET};
use crate::service::*;

/// Runs `edx-webhooks check` to its end: exit code and what it printed.
async fn check(dir: &Path, env: &[(&'static str, String)]) -> (Option<i32>, String, String) {
    let mut command = command_with(&["check"], dir, env);
    command.stdout(Stdio::piped());
    let output = tokio::time::timeout(START_DEADLINE, command.output())
        .await
        .expect("check finishes by itself")
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The line of `check`'s output about `subject`.
fn line_about<'a>(stdout: &'a str, subject: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(subject))
        .unwrap_or_else(|| panic!("no line about {subject}:\n{stdout}"))
}

/// A port on which nothing listens.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// `/metrics` as series (name with labels, as written) → value.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    scrape_url(&app.url("/metrics")).await
}

async fn scrape_url(url: &str) -> HashMap<String, f64> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            let value = value.parse().unwrap_or_else(|_| panic!("{l:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

fn series(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

/// A span's field in a JSON log line, from the current span or any around it.
fn span_field<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line.get("span").and_then(|s| s.get(name)).or_else(|| {
        line.get("spans")?
            .as_array()?
            .iter()
            .rev()
            .find_map(|s| s.get(name))
    })
}

#[tokio::test]
async fn check_with_a_bad_setting_exits_2_before_looking_at_anything() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Db::Sqlite, &dir).await;
    let env = with_setting(service_env(&lms, &url), "EDX_WEBHOOKS_MAX_ATTEMPTS", "many");
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("EDX_WEBHOOKS_MAX_ATTEMPTS"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!dir.path().join(SQLITE_FILE).exists());
    assert_eq!(lms.with(|s| s.tokens_issued), 0);
}

#[tokio::test]
async fn check_names_why_a_database_server_cannot_be_reached_without_its_password() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port().await;
    for (server, password) in [
        (
            format!("postgres://edx:s3cret@127.0.0.1:{port}/edx"),
            "s3cret",
        ),
        (
            format!("mysql://edx:hunter2@127.0.0.1:{port}/edx"),
            "hunter2",
        ),
    ] {
        let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &server)).await;

        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
        let database = line_about(&stdout, "database");
        assert!(database.starts_with('✗'), "{stdout}");
        // The server's own answer, not the pool's "timed out".
        assert!(database.contains("Connection refused"), "{database}");
        assert!(
            database.contains(&format!("edx:***@127.0.0.1:{port}")),
            "{database}"
        );
        assert!(!stdout.contains(password) && !stderr.contains(password));
    }
}

/// The child's next line on stderr, which must be plain text (it goes to a pipe).
async fn next_plain_line(lines: &mut Lines<BufReader<ChildStderr>>) -> String {
    let line = tokio::time::timeout(START_DEADLINE, lines.next_line())
        .await
        .expect("a log line in time")
        .unwrap()
        .expect("the service is running");
    assert!(
        !line.contains('\u{1b}'),
        "colour codes in logs that go to a pipe: {line:?}"
    );
    line
}

#[tokio::test]
async fn text_logs_are_plain_and_carry_the_request_id() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Db::Sqlite, &dir).await;
    let mut env = service_env(&lms, &url);
    env.retain(|(name, _)| *name != "EDX_WEBHOOKS_LOG_FORMAT");
    let mut child = command(dir.path(), &env).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = next_plain_line(&mut lines).await;
        if let Some((_, rest)) = line.split_once("edx-webhooks running address=") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };

    let response = reqwest::Client::new()
        .post(format!("http://{address}/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Request-Id", "text-log-request")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let rejected = loop {
        let line = next_plain_line(&mut lines).await;
        if line.contains("delivery rejected") {
            break line;
        }
    };
    assert!(
        rejected.contains("request_id=text-log-request"),
        "{rejected}"
    );
    child.kill().await.unwrap();
}

on_each_database! {
async fn check_passes_against_a_healthy_lms_without_enrolling_anyone(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &url)).await;

    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for subject in [
        "Shopify shop",
        "database",
        "LMS OAuth2 token",
        "LMS bulk enrollment view",
        "global staff",
    ] {
        assert!(line_about(&stdout, subject).starts_with('✓'), "{stdout}");
    }
    assert!(stdout.ends_with("all checks passed\n"), "{stdout}");
    assert!(lms.calls().is_empty(), "check enrolled someone: {:?}", lms.calls());
    assert_eq!(lms.with(|s| s.probes), 1, "one authenticated empty request");
}

async fn check_names_a_disabled_bulk_enrollment_view(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| s.view_disabled = true);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &url)).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let view = line_about(&stdout, "LMS bulk enrollment view");
    assert!(view.starts_with('✗'), "{stdout}");
    assert!(view.contains("404"), "{view}");
    assert!(view.contains("set ENABLE_BULK_ENROLLMENT_VIEW: true"), "{view}");
    assert!(view.contains("lms.yml"), "{view}");
    assert!(line_about(&stdout, "LMS OAuth2 token").starts_with('✓'), "{stdout}");
    assert!(line_about(&stdout, "global staff").starts_with('-'), "{stdout}");
    assert!(stdout.ends_with("1 problem found\n"), "{stdout}");
}

async fn check_names_bad_client_credentials_without_showing_them(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let wrong = "not-the-lms-client-secret";
    let env = with_setting(
        service_env(&lms, &url),
        "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET",
        wrong,
    );
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let token = line_about(&stdout, "LMS OAuth2 token");
    assert!(token.starts_with('✗'), "{stdout}");
    assert!(token.contains("invalid_client"), "{token}");
    assert!(
        token.contains("EDX_WEBHOOKS_OAUTH2_CLIENT_ID") && token.contains("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET"),
        "{token}"
    );
    // The view is still looked at without a token; the staff question needs one.
    assert!(line_about(&stdout, "LMS bulk enrollment view").starts_with('✓'), "{stdout}");
    assert!(line_about(&stdout, "global staff").starts_with('-'), "{stdout}");
    assert!(!stdout.contains(wrong) && !stderr.contains(wrong), "{stdout}\n{stderr}");
}

async fn check_names_the_missing_client_settings(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut env = service_env(&lms, &url);
    env.retain(|(name, _)| *name != "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET");
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let token = line_about(&stdout, "LMS OAuth2 token");
    assert!(token.starts_with('✗'), "{stdout}");
    assert!(token.contains("set EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET"), "{token}");
    assert!(!token.contains("CLIENT_ID"), "the id is set: {token}");
    assert_eq!(lms.with(|s| s.tokens_issued), 0);
}

async fn check_names_a_client_user_that_is_not_staff(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| s.not_staff = true);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &url)).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let staff = line_about(&stdout, "global staff");
    assert!(staff.starts_with('✗'), "{stdout}");
    assert!(staff.contains("403"), "{staff}");
    assert!(
        staff.contains("make the OAuth2 application's user global staff"),
        "{staff}"
    );
    assert!(line_about(&stdout, "LMS OAuth2 token").starts_with('✓'), "{stdout}");
    assert!(line_about(&stdout, "LMS bulk enrollment view").starts_with('✓'), "{stdout}");
    assert!(lms.calls().is_empty());
}

async fn check_names_an_unreachable_lms_by_its_url(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let nowhere = format!("http://127.0.0.1:{}/", closed_port().await);
    let env = with_setting(service_env(&lms, &url), "EDX_WEBHOOKS_LMS_BASE_URL", &nowhere);
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let token = line_about(&stdout, "LMS OAuth2 token");
    assert!(token.starts_with('✗'), "{stdout}");
    assert!(token.contains(&format!("cannot reach the LMS at {nowhere}")), "{token}");
    assert!(token.contains("EDX_WEBHOOKS_LMS_BASE_URL"), "{token}");
    assert!(line_about(&stdout, "LMS bulk enrollment view").starts_with('-'), "{stdout}");
    assert!(line_about(&stdout, "global staff").starts_with('-'), "{stdout}");
    // The database is still looked at.
    assert!(line_about(&stdout, "database").starts_with('✓'), "{stdout}");
}

async fn a_worker_process_answers_health_and_metrics_but_takes_no_webhooks(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let env = with_setting(service_env(&lms, &url), "EDX_WEBHOOKS_ADMIN_PASSWORD", "open sesame");
    let intake = Service::start_with(&["serve", "--no-worker"], dir.path(), &env).await;
    let worker = Service::start_with(&["worker", "--listen", "127.0.0.1:0"], dir.path(), &env).await;

    let order = shopify_order(6001, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    assert_eq!(deliver(&intake, &order).await.status(), 200);
    let store = Store::connect(&url).await.unwrap();
    wait_for_order_state(&store, "6001", "enrolled", START_DEADLINE).await;

    // The LMS calls are counted where they were made.
    let enroll = r#"edx_webhooks_lms_requests_total{call="bulk_enroll",status="200"}"#;
    assert_eq!(series(&scrape_url(&worker.url("/metrics")).await, enroll), 1.0);
    assert_eq!(series(&scrape_url(&intake.url("/metrics")).await, enroll), 0.0);
    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(worker.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_eq!(deliver(&worker, &order).await.status(), 404);
    // The admin UI is where the webhooks are received.
    let login = reqwest::get(intake.url("/admin")).await.unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.url().path().starts_with("/admin/login"), "{}", login.url());
    assert_eq!(reqwest::get(worker.url("/admin")).await.unwrap().status(), 404);
}

async fn check_names_a_shop_without_a_secret(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut env = service_env(&lms, &url);
    env.retain(|(name, _)| *name != "EDX_WEBHOOKS_SHOPIFY_API_KEY");
    let env = with_setting(env, "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE);
    let env = with_setting(env, "EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET);
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let shop = line_about(&stdout, &format!("Shopify shop {SHOP}"));
    assert!(shop.starts_with('✗'), "{stdout}");
    assert!(shop.contains("off"), "{shop}");
    assert!(shop.contains("EDX_WEBHOOKS_SHOPIFY_API_KEY"), "{shop}");
    assert!(line_about(&stdout, "WooCommerce shop").starts_with('✓'), "{stdout}");
    assert!(stdout.ends_with("1 problem found\n"), "{stdout}");
    assert!(!stdout.contains(WOO_SECRET), "{stdout}");
}

async fn metrics_count_what_was_received_and_sent_to_the_lms(db: Db) {
    let app = spawn_app(db).await;
    for n in 0..3 {
        let order = shopify_order(
            3000 + n,
            &[(1, COURSE_A, Some(&format!("learner{n}@example.org")))],
            None,
            "paid",
        );
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    }
    let again = shopify_order(3000, &[(1, COURSE_A, Some("learner0@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &again).await.status(), 200);
    let forged = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Hmac-Sha256", sign("some other key", b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let ping = app
        .client
        .post(app.url("/webhooks/woocommerce"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("webhook_id=3")
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    for n in 0..3 {
        app.wait_for_order(&(3000 + n).to_string(), SHOP, "enrolled").await;
    }

    let metrics = scrape(&app).await;
    let requests = |platform: &str, verdict: &str| {
        series(
            &metrics,
            &format!(r#"edx_webhooks_requests_total{{platform="{platform}",verdict="{verdict}"}}"#),
        )
    };
    assert_eq!(requests("shopify", "accepted"), 3.0, "{metrics:#?}");
    assert_eq!(requests("shopify", "duplicate"), 1.0, "{metrics:#?}");
    assert_eq!(requests("shopify", "rejected_403"), 1.0, "{metrics:#?}");
    assert_eq!(requests("woocommerce", "ping"), 1.0, "{metrics:#?}");
    assert_eq!(series(&metrics, "edx_webhooks_intake_seconds_count"), 6.0);
    let every_answer = r#"edx_webhooks_intake_seconds_bucket{le="+Inf"}"#;
    assert_eq!(series(&metrics, every_answer), 6.0, "{metrics:#?}");

    let calls = app.lms.calls().len() as f64;
    assert!(calls >= 1.0);
    let lms = |call: &str, status: &str| {
        series(
            &metrics,
            &format!(r#"edx_webhooks_lms_requests_total{{call="{call}",status="{status}"}}"#),
        )
    };
    assert_eq!(lms("bulk_enroll", "200"), calls, "{metrics:#?}");
    assert_eq!(lms("token", "200"), app.lms.with(|s| s.tokens_issued) as f64);
    assert_eq!(
        series(&metrics, r#"edx_webhooks_lms_seconds_count{call="bulk_enroll"}"#),
        calls
    );
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="enrolled"}"#), 3.0);
    assert!(
        metrics.contains_key(r#"edx_webhooks_enrollments{state="failed"}"#),
        "every state is reported, zero included: {metrics:#?}"
    );
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="pending"}"#), 0.0);
    assert_eq!(series(&metrics, "edx_webhooks_oldest_pending_seconds"), 0.0);
    assert_eq!(series(&metrics, "edx_webhooks_lms_misconfigured"), 0.0);
}

async fn readyz_stays_ready_while_the_lms_is_misconfigured_and_status_alerts(db: Db) {
    let app = spawn_app(db).await;
    app.lms.with(|s| s.not_staff = true);
    let order = shopify_order(3100, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    // /status is for alerting: it turns 503 once the LMS is found misconfigured.
    let status_url = app.url("/status");
    let client = &app.client;
    let alerted = wait_until(Duration::from_secs(10), || async {
        client.get(&status_url).send().await.unwrap().status() == 503
    })
    .await;
    assert!(alerted, "/status never said the LMS is misconfigured");
    let body = client.get(&status_url).send().await.unwrap().text().await.unwrap();
    assert!(body.starts_with("attention needed\nLMS misconfigured: "), "{body}");
    assert!(body.contains("403") && body.contains("global staff"), "{body}");

    // Readiness is about taking deliveries, which still works: 200, the
    // problem in the body.
    let readyz = app.url("/readyz");
    let response = client.get(&readyz).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("ready\nLMS misconfigured: "), "{body}");
    let another = shopify_order(3101, &[(1, COURSE_A, Some("bob@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &another).await.status(), 200);

    // Paused work waits: it shows as pending, and as waiting longer and longer.
    let waits = wait_until(Duration::from_secs(10), || async {
        series(&scrape(&app).await, "edx_webhooks_oldest_pending_seconds") >= 1.0
    })
    .await;
    assert!(waits, "the paused enrollment does not show as waiting");
    let metrics = scrape(&app).await;
    assert_eq!(series(&metrics, "edx_webhooks_lms_misconfigured"), 1.0);
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="pending"}"#), 2.0);
    assert!(
        series(&metrics, r#"edx_webhooks_lms_requests_total{call="bulk_enroll",status="403"}"#) >= 1.0,
        "{metrics:#?}"
    );

    app.lms.with(|s| s.not_staff = false);
    app.wait_for_order("3100", SHOP, "enrolled").await;
    app.wait_for_order("3101", SHOP, "enrolled").await;
    let ok = wait_until(Duration::from_secs(10), || async {
        app.client.get(&status_url).send().await.unwrap().status() == 200
    })
    .await;
    assert!(ok, "/status did not return to ok");
    assert_eq!(
        app.client.get(&readyz).send().await.unwrap().text().await.unwrap(),
        "ready\n"
    );
    let metrics = scrape(&app).await;
    assert_eq!(series(&metrics, "edx_webhooks_lms_misconfigured"), 0.0);
    assert_eq!(series(&metrics, "edx_webhooks_oldest_pending_seconds"), 0.0);
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="enrolled"}"#), 2.0);
    assert_eq!(series(&metrics, "edx_webhooks_settings_warnings"), 0.0);
}

async fn json_log_lines_carry_the_request_and_claim_ids_and_no_secret(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    // Debug level too: nothing on any level may show a secret.
    let env = with_setting(service_env(&lms, &url), "RUST_LOG", "debug");
    let mut service = Service::start(dir.path(), &env).await;

    let order = shopify_order(
        7_300_001,
        &[(1, COURSE_A, Some("ann@example.org"))],
        Some("buyer@example.org"),
        "paid",
    );
    let raw = serde_json::to_vec(&order).unwrap();
    let mut request = reqwest::Client::new()
        .post(service.url("/webhooks/shopify"))
        .header("X-Request-Id", "proxy-id-7300001");
    for (name, value) in shopify_headers(&raw) {
        request = request.header(name, value);
    }
    let response = request.body(raw).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "proxy-id-7300001");
    let answer: Value = response.json().await.unwrap();
    let stored = answer["request"].as_i64().expect("the stored request's id");

    let taken = service
        .wait_for_log(STOP_DEADLINE, |line| message(line) == Some("delivery taken"))
        .await;
    assert_eq!(
        span_field(&taken, "request_id").and_then(Value::as_str),
        Some("proxy-id-7300001"),
        "{taken}"
    );
    assert_eq!(taken["request"].as_i64(), Some(stored), "{taken}");
    assert_eq!(taken["shop_order"].as_str(), Some("#1"), "{taken}");
    let order_id = taken["order"].as_i64().expect("our order id in the outcome line");

    let called = service
        .wait_for_log(STOP_DEADLINE, |line| message(line) == Some("LMS answered"))
        .await;
    let orders = span_field(&called, "orders").and_then(Value::as_str).unwrap_or_default();
    assert_eq!(orders, order_id.to_string(), "{called}");
    let claim = span_field(&called, "claim").and_then(Value::as_str).unwrap_or_default();
    assert_eq!(claim.len(), 36, "the claim token: {called}");

    // Every line written while that request was handled carries its id.
    let text = service.stderr_text();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let of_request = lines
        .iter()
        .filter(|l| span_field(l, "request_id").and_then(Value::as_str) == Some("proxy-id-7300001"))
        .count();
    assert!(of_request >= 2, "{text}");
    let of_claim = lines
        .iter()
        .filter(|l| span_field(l, "claim").and_then(Value::as_str) == Some(claim))
        .count();
    assert!(of_claim >= 1, "{text}");

    // A request without an id of its own gets a new one.
    let response = reqwest::Client::new()
        .get(service.url("/healthz"))
        .send()
        .await
        .unwrap();
    let generated = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 32, "{generated}");

    for secret in [CLIENT_SECRET, SHOPIFY_KEY, "jwt-1"] {
        assert!(!text.contains(secret), "{secret} in the logs:\n{text}");
    }
}
}

on_each_database! {
async fn check_names_a_course_mode_the_lms_does_not_sell(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.offer(COURSE_B, &["audit", "honor"]);
    });
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let config = dir.path().join("edx-webhooks.toml");
    std::fs::write(
        &config,
        format!(
            "[[products]]\nsku = \"PAID\"\ncourses = [\"{COURSE_A}\", \"{COURSE_B}\"]\nmode = \"verified\"\n"
        ),
    )
    .unwrap();
    let env = with_setting(
        service_env(&lms, &url),
        "EDX_WEBHOOKS_CONFIG",
        &config.display().to_string(),
    );

    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let sold = line_about(&stdout, &format!("course mode verified of {COURSE_A}"));
    assert!(sold.starts_with('✓'), "{stdout}");
    let missing = line_about(&stdout, &format!("course mode verified of {COURSE_B}"));
    assert!(missing.starts_with('✗'), "{stdout}");
    assert!(missing.contains("it has: audit, honor"), "{missing}");
    assert!(missing.contains("Course Modes"), "names the fix: {missing}");
    assert!(stdout.ends_with("1 problem found\n"), "{stdout}");
    assert!(lms.enrollment_calls().is_empty() && lms.calls().is_empty(), "check enrolled no one");
}
}
