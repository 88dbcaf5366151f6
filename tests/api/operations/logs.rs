//! Log lines: plain text or JSON, with the request's and the claim's ids and no secret.

use super::*;

on_each_database! {
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
