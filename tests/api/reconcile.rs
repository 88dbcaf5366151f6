//! Reconciliation: fake Shopify Admin and WooCommerce REST APIs (wiremock,
//! answering as their documentation says), orders that no webhook brought.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use edx_webhooks::config::{Config, Secret, ShopifyApi, WooCommerceApi};
use edx_webhooks::metrics::Metrics;
use edx_webhooks::reconcile::{Reconciler, ShopReport};
use edx_webhooks::store::Store;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::*;
use crate::lms::FakeLms;
use crate::service::{command_with, service_env, START_DEADLINE};

const TOKEN: &str = "shpat_test_access_token";
const ORDERS: &str = "/admin/api/2026-10/orders.json";
const WOO_ORDERS: &str = "/wp-json/wc/v3/orders";
const CK: &str = "ck_test_key";
const CS: &str = "cs_test_secret";

fn shopify_api(server: &MockServer) -> ShopifyApi {
    ShopifyApi {
        access_token: Secret::new(TOKEN),
        version: "2026-10".into(),
        url: server.uri().parse().unwrap(),
    }
}

fn woo_api(server: &MockServer) -> WooCommerceApi {
    WooCommerceApi {
        consumer_key: Secret::new(CK),
        consumer_secret: Secret::new(CS),
        url: server.uri().parse().unwrap(),
    }
}

/// The app, with its config (reconciliation off unless `adjust` turns it on).
async fn spawn(db: Db, adjust: impl FnOnce(&mut Config)) -> (TestApp, Config) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(db, &lms, &dir).await;
    config.reconcile_interval = None;
    adjust(&mut config);
    let app = spawn_with_config(config.clone(), lms, dir).await;
    (app, config)
}

async fn reconcile(app: &TestApp, config: &Config, since: Option<Duration>) -> Vec<ShopReport> {
    let store = Store::connect(&app.database_url).await.unwrap();
    Reconciler::new(Arc::new(config.clone()), store, Metrics::new())
        .run_once(since, None)
        .await
}

fn at(order: Value, updated_at: &str) -> Value {
    let mut order = order;
    order["updated_at"] = json!(updated_at);
    order["date_modified_gmt"] = json!(updated_at.trim_end_matches('Z'));
    order
}

fn page(orders: &[Value]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({ "orders": orders }))
}

fn learner(n: u64) -> String {
    format!("learner{n}@example.org")
}

fn paid_order(id: u64) -> Value {
    let email = learner(id);
    at(
        shopify_order(
            id,
            &[(id * 10, COURSE_A, Some(&email))],
            Some("buyer@example.org"),
            "paid",
        ),
        "2026-11-30T10:00:00Z",
    )
}

/// Three Shopify pages linked by `page_info`, the first throttled once.
async fn three_shopify_pages(server: &MockServer, orders: &[Value]) {
    let next = |info: &str| {
        format!(
            "<{}{ORDERS}?limit=250&page_info={info}>; rel=\"next\"",
            server.uri()
        )
    };
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(query_param("status", "any"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("X-Shopify-Access-Token", TOKEN))
        .and(query_param("status", "any"))
        .and(query_param("limit", "250"))
        .respond_with(page(&orders[..1]).insert_header("Link", next("p2").as_str()))
        .with_priority(2)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("X-Shopify-Access-Token", TOKEN))
        .and(query_param("page_info", "p2"))
        .and(query_param_is_missing("status"))
        .respond_with(page(&orders[1..2]).insert_header("Link", next("p3").as_str()))
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path(ORDERS))
        .and(header("X-Shopify-Access-Token", TOKEN))
        .and(query_param("page_info", "p3"))
        .and(query_param_is_missing("updated_at_min"))
        .respond_with(page(&orders[2..]))
        .mount(server)
        .await;
}

fn basic() -> String {
    let raw = base64::engine::general_purpose::STANDARD.encode(format!("{CK}:{CS}"));
    format!("Basic {raw}")
}

/// Three WooCommerce pages (`X-WP-TotalPages`), Basic auth.
async fn three_woo_pages(server: &MockServer, orders: &[Value]) {
    for (n, chunk) in orders.chunks(1).enumerate() {
        Mock::given(method("GET"))
            .and(path(WOO_ORDERS))
            .and(header("authorization", basic().as_str()))
            .and(query_param("page", (n + 1).to_string().as_str()))
            .and(query_param("dates_are_gmt", "true"))
            .and(query_param("orderby", "modified"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!(chunk))
                    .insert_header("X-WP-Total", orders.len().to_string().as_str())
                    .insert_header("X-WP-TotalPages", orders.len().to_string().as_str()),
            )
            .mount(server)
            .await;
    }
}

fn woo_paid(id: u64) -> Value {
    let email = learner(id);
    at(
        woo_order(
            id,
            &[(id * 10, COURSE_B, Some(&email))],
            "buyer@example.org",
            true,
        ),
        "2026-11-30T10:00:00Z",
    )
}

/// The binary with `args`, configured like `app`, with `extra` settings.
async fn cli(
    app: &TestApp,
    args: &[&str],
    extra: &[(&'static str, String)],
) -> (i32, String, String) {
    let mut env = service_env(&app.lms, &app.database_url);
    env.extend(extra.iter().cloned());
    let mut command = command_with(args, app.dir.path(), &env);
    command.stdout(Stdio::piped());
    let output = tokio::time::timeout(START_DEADLINE, command.output())
        .await
        .expect("the command ends by itself")
        .expect("the binary runs");
    (
        output.status.code().expect("an exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

on_each_database! {
    async fn reconcile_command_enrolls_shopify_orders_no_webhook_brought_over_three_pages(db: Db) {
        let shopify = MockServer::start().await;
        let orders: Vec<Value> = (1..=3).map(|n| paid_order(4_000_000_000_000 + n)).collect();
        three_shopify_pages(&shopify, &orders).await;
        let (app, _) = spawn(db, |_| {}).await;
        let (code, stdout, stderr) = cli(&app, &["reconcile", "--json"], &[
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", TOKEN.into()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
            ("EDX_WEBHOOKS_RECONCILE_INTERVAL", "off".into()),
        ]).await;
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report[0]["fetched"], 3, "{report}");
        assert_eq!(report[0]["new"], 3, "{report}");
        assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
        for order in &orders {
            let id = order["id"].as_u64().unwrap();
            app.wait_for_order(&id.to_string(), SHOP, "enrolled").await;
            assert!(app.lms.is_enrolled(COURSE_A, &learner(id)));
        }
        // The 429 was waited out, and the cursor pages carried only `limit`.
        let requests = shopify.received_requests().await.unwrap();
        assert_eq!(requests.len(), 4, "one 429, three pages");
        for request in requests.iter().filter(|r| r.url.query().unwrap_or("").contains("page_info")) {
            let keys: Vec<String> = request.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
            assert_eq!(keys, ["limit", "page_info"]);
        }
        let id = app.store.find_order(&orders[0]["id"].to_string(), Some(SHOP)).await.unwrap();
        let detail = app.store.order_detail(id).await.unwrap();
        assert!(detail.found_by_reconciliation_at_ms.is_some());
        assert_eq!(detail.requests[0].endpoint, "reconcile:shopify");
        assert!(detail.requests[0].headers.iter().all(|(_, v)| !v.contains(TOKEN)));
        // The order's JSON and text say it was found by reconciliation.
        let (_, shown, _) = cli(&app, &["orders", "show", &id.to_string(), "--json"], &[]).await;
        let shown: Value = serde_json::from_str(&shown).unwrap();
        assert!(shown["found_by_reconciliation_at_ms"].is_i64(), "{shown}");
        // A fetched request replays as fetched: nothing new now, nothing stored.
        let fetched = detail.requests[0].id.to_string();
        let (code, replayed, _) = cli(&app, &["webhooks", "replay", &fetched], &[]).await;
        assert_eq!(code, 0, "{replayed}");
        assert!(replayed.contains("200 duplicate (nothing new, not stored)"), "{replayed}");
        let api = [
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", TOKEN.to_owned()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
        ];
        let (code, _, stderr) = cli(&app, &["reconcile", "--shop", "other.myshopify.com"], &api).await;
        assert_eq!(code, 2, "{stderr}");
        let (code, _, stderr) = cli(&app, &["reconcile"], &[]).await;
        assert_eq!(code, 2, "no shop has API access: {stderr}");
        assert!(stderr.contains("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN"), "{stderr}");
    }

    async fn the_periodic_run_enrolls_woocommerce_orders_over_three_pages(db: Db) {
        let woo = MockServer::start().await;
        let orders: Vec<Value> = (1..=3).map(|n| woo_paid(7100 + n)).collect();
        three_woo_pages(&woo, &orders).await;
        let (app, _) = spawn(db, |c| {
            c.woocommerce[0].api = Some(woo_api(&woo));
            c.reconcile_interval = Some(Duration::from_secs(3600));
        })
        .await;
        for order in &orders {
            let id = order["id"].as_u64().unwrap();
            app.wait_for_order(&id.to_string(), WOO_SOURCE, "enrolled").await;
            assert!(app.lms.is_enrolled(COURSE_B, &learner(id)));
        }
        let pages: Vec<String> = woo
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter_map(|r| r.url.query_pairs().find(|(k, _)| k == "page").map(|(_, v)| v.into_owned()))
            .collect();
        assert_eq!(pages, ["1", "2", "3"]);
        let shown = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(
            shown.contains("edx_webhooks_reconcile_last_success_timestamp_seconds{platform=\"woocommerce\""),
            "{shown}"
        );
        assert!(shown.contains("edx_webhooks_reconciled_total{platform=\"woocommerce\",shop=\"https://shop.example.com/\",result=\"new\"} 3"), "{shown}");
    }

    async fn an_order_taken_by_webhook_and_fetched_is_enrolled_once_and_stores_no_new_request(db: Db) {
        let shopify = MockServer::start().await;
        let order = paid_order(4_100_000_000_001);
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(std::slice::from_ref(&order))).mount(&shopify).await;
        let (app, config) = spawn(db, |c| c.shopify[0].api = Some(shopify_api(&shopify))).await;
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
        app.wait_for_order("4100000000001", SHOP, "enrolled").await;
        let requests_before = app.store.requests(100).await.unwrap().len();

        let reports = reconcile(&app, &config, None).await;
        assert_eq!((reports[0].run.fetched, reports[0].run.unchanged, reports[0].run.new), (1, 1, 0), "{reports:?}");
        let again = reconcile(&app, &config, None).await;
        assert_eq!(again[0].run.unchanged, 1);
        assert_eq!(app.store.requests(100).await.unwrap().len(), requests_before);
        assert_eq!(app.lms.calls().len(), 1, "enrolled once");
        let id = app.store.find_order("4100000000001", Some(SHOP)).await.unwrap();
        assert!(app.store.order_detail(id).await.unwrap().found_by_reconciliation_at_ms.is_none());
    }

    async fn a_lost_payment_releases_the_waiting_items_on_both_platforms(db: Db) {
        let shopify = MockServer::start().await;
        let woo = MockServer::start().await;
        let (app, config) = spawn(db, |c| {
            c.require_payment = true;
            c.shopify[0].api = Some(shopify_api(&shopify));
            c.woocommerce[0].api = Some(woo_api(&woo));
        })
        .await;
        let email = learner(1);
        let pending = shopify_order(4_200_000_000_001, &[(1, COURSE_A, Some(&email))], Some("b@example.org"), "pending");
        assert_eq!(app.shopify("orders/create", &pending).await.status(), 200);
        let unpaid = woo_order(7201, &[(2, COURSE_B, Some(&email))], "b@example.org", false);
        assert_eq!(app.woocommerce("order.created", &unpaid).await.status(), 200);
        app.wait_for_order("4200000000001", SHOP, "awaiting_payment").await;
        app.wait_for_order("7201", WOO_SOURCE, "awaiting_payment").await;

        let mut paid = pending.clone();
        paid["financial_status"] = json!("paid");
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[at(paid, "2026-11-30T11:00:00Z")])).mount(&shopify).await;
        let woo_now_paid = woo_order(7201, &[(2, COURSE_B, Some(&email))], "b@example.org", true);
        Mock::given(method("GET")).and(path(WOO_ORDERS)).respond_with(
            ResponseTemplate::new(200).set_body_json(json!([woo_now_paid])).insert_header("X-WP-TotalPages", "1"),
        ).mount(&woo).await;
        let reports = reconcile(&app, &config, None).await;
        assert!(reports.iter().all(|r| r.run.changed == 1 && r.run.error.is_none()), "{reports:?}");
        app.wait_for_order("4200000000001", SHOP, "enrolled").await;
        app.wait_for_order("7201", WOO_SOURCE, "enrolled").await;
        assert!(app.lms.is_enrolled(COURSE_A, &email));
    }

    async fn a_lost_cancellation_and_a_lost_refund_act_as_their_webhooks(db: Db) {
        let shopify = MockServer::start().await;
        let (app, config) = spawn(db, |c| {
            c.require_payment = true;
            c.shopify[0].api = Some(shopify_api(&shopify));
        })
        .await;
        let (a, b) = (learner(1), learner(2));
        let cancelled = shopify_order(4_300_000_000_001, &[(11, COURSE_A, Some(&a))], Some("b@example.org"), "pending");
        let refunded = shopify_order(4_300_000_000_002, &[(21, COURSE_A, Some(&a)), (22, COURSE_B, Some(&b))], Some("b@example.org"), "pending");
        for order in [&cancelled, &refunded] {
            assert_eq!(app.shopify("orders/create", order).await.status(), 200);
        }
        app.wait_for_order("4300000000002", SHOP, "awaiting_payment").await;

        let mut now_cancelled = cancelled.clone();
        now_cancelled["cancelled_at"] = json!("2026-11-30T12:00:00-05:00");
        now_cancelled["financial_status"] = json!("voided");
        let mut now_refunded = refunded.clone();
        now_refunded["financial_status"] = json!("partially_refunded");
        now_refunded["refunds"] = json!([{"id": 9, "order_id": 4_300_000_000_002u64, "refund_line_items": [{"line_item_id": 21, "quantity": 1}]}]);
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[
            at(now_cancelled, "2026-11-30T12:00:00Z"),
            at(now_refunded, "2026-11-30T12:00:01Z"),
        ])).mount(&shopify).await;
        let reports = reconcile(&app, &config, None).await;
        assert_eq!(reports[0].run.changed, 2, "{reports:?}");
        app.wait_for_order("4300000000001", SHOP, "cancelled").await;
        let order = app.wait_for_order("4300000000002", SHOP, "enrolled").await;
        let state = |line: &str| order.items.iter().find(|i| i.line_item_id == line).unwrap().state.clone();
        assert_eq!((state("21").as_str(), state("22").as_str()), ("cancelled", "enrolled"));
        assert!(!app.lms.is_enrolled(COURSE_A, &a) && app.lms.is_enrolled(COURSE_B, &b));
    }

    async fn bad_credentials_exit_1_with_the_fix_check_names_it_and_intake_goes_on(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})),
        ).mount(&shopify).await;
        let woo = MockServer::start().await;
        // The server strips Authorization: only the key in the query gets through.
        Mock::given(method("GET")).and(path(WOO_ORDERS)).and(query_param("consumer_key", CK)).respond_with(
            ResponseTemplate::new(200).set_body_json(json!([])).insert_header("X-WP-TotalPages", "1"),
        ).with_priority(1).mount(&woo).await;
        Mock::given(method("GET")).and(path(WOO_ORDERS)).respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}})),
        ).with_priority(2).mount(&woo).await;
        let (app, _) = spawn(db, |_| {}).await;
        let settings = [
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", "wrong-token".to_owned()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY", CK.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET", CS.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_API_URL", woo.uri()),
        ];
        let (code, stdout, stderr) = cli(&app, &["reconcile"], &settings).await;
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains("access token") && stdout.contains("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN"), "{stdout}");
        assert!(stdout.contains("woocommerce https://shop.example.com/: 0 fetched"), "{stdout}");
        let (code, stdout, _) = cli(&app, &["check"], &settings).await;
        assert_eq!(code, 1, "{stdout}");
        assert!(stdout.contains("✗ Shopify API of test-shop.myshopify.com: Shopify refused the access token"), "{stdout}");
        assert!(stdout.contains("✓ WooCommerce API of https://shop.example.com/") && stdout.contains("strips the Authorization header"), "{stdout}");
        for secret in ["wrong-token", CK, CS] {
            assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
        }
        // Intake is not disturbed.
        let order = paid_order(4_400_000_000_001);
        let answer = app.shopify("orders/create", &order).await;
        assert_eq!(answer.status(), 200);
        app.wait_for_order("4400000000001", SHOP, "enrolled").await;
    }

    async fn check_names_a_missing_scope_and_a_key_without_read_permission(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"errors": "[API] This action requires merchant approval for read_orders scope."})),
        ).mount(&shopify).await;
        let woo = MockServer::start().await;
        Mock::given(method("GET")).and(path(WOO_ORDERS)).respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}})),
        ).mount(&woo).await;
        let (app, _) = spawn(db, |_| {}).await;
        let (code, stdout, _) = cli(&app, &["check"], &[
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", TOKEN.into()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY", CK.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET", CS.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_API_URL", woo.uri()),
        ]).await;
        assert_eq!(code, 1);
        assert!(stdout.contains("read_orders scope"), "{stdout}");
        assert!(stdout.contains("lacks read permission"), "{stdout}");
        // Query parameters were tried too before giving up.
        assert_eq!(woo.received_requests().await.unwrap().len(), 2);
    }

    async fn two_processes_on_one_database_one_reconciles_a_shop(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(
            page(&[paid_order(4_500_000_000_001)]).set_delay(Duration::from_millis(700)),
        ).mount(&shopify).await;
        let (app, config) = spawn(db, |c| c.shopify[0].api = Some(shopify_api(&shopify))).await;
        let one = Store::connect(&app.database_url).await.unwrap();
        let other = Store::connect(&app.database_url).await.unwrap();
        let first = Reconciler::new(Arc::new(config.clone()), one, Metrics::new());
        let second = Reconciler::new(Arc::new(config.clone()), other, Metrics::new());
        let (a, b) = tokio::join!(first.run_once(None, None), second.run_once(None, None));
        let skipped: Vec<bool> = a.iter().chain(&b).filter(|r| r.platform == "shopify").map(|r| r.skipped).collect();
        assert_eq!(skipped.iter().filter(|s| **s).count(), 1, "{a:?} {b:?}");
        assert_eq!(shopify.received_requests().await.unwrap().len(), 1);
        app.wait_for_order("4500000000001", SHOP, "enrolled").await;
        // Once done, the shop is free for the next run.
        let next = reconcile(&app, &config, None).await;
        assert!(!next[0].skipped && next[0].run.unchanged == 1, "{next:?}");
    }

    async fn the_watermark_moves_so_the_next_run_fetches_only_what_changed(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[
            at(paid_order(4_600_000_000_001), "2026-11-30T10:00:00Z"),
            at(paid_order(4_600_000_000_002), "2026-11-30T10:30:00-02:00"),
        ])).mount(&shopify).await;
        let (app, config) = spawn(db, |c| c.shopify[0].api = Some(shopify_api(&shopify))).await;
        reconcile(&app, &config, None).await;
        reconcile(&app, &config, None).await;
        let since: Vec<String> = shopify
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r: &Request| r.url.query_pairs().find(|(k, _)| k == "updated_at_min").unwrap().1.into_owned())
            .collect();
        // The first run looks back 24 h; the second from the newest change
        // taken (12:30 UTC) less the five minutes' overlap.
        let first = edx_webhooks::reconcile::api::parse_time(&since[0]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let lookback = now - first;
        assert!((lookback - 86_400_000).abs() < 60_000, "{since:?}");
        assert_eq!(since[1], "2026-11-30T12:25:00Z");
        let shown = app.store.reconciliations().await.unwrap();
        assert_eq!(shown[0].found_total, 2);
    }
}

/// Logs in to the admin UI; the session cookie to send along.
async fn admin_session(app: &TestApp, password: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(app.url("/admin/login")).send().await.unwrap();
    let cookies = |r: &reqwest::Response| -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect()
    };
    let jar = cookies(&form).join("; ");
    let body = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];
    let answer = client
        .post(app.url("/admin/login"))
        .header("Cookie", &jar)
        .form(&[("csrf", csrf), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    cookies(&answer).join("; ")
}

on_each_database! {
    async fn the_dashboard_and_the_order_page_show_what_reconciliation_found(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[paid_order(4_700_000_000_001)])).mount(&shopify).await;
        let (app, _) = spawn(db, |c| {
            c.admin_password = Some(Secret::new("operator-pass-2026"));
            c.shopify[0].api = Some(shopify_api(&shopify));
            c.reconcile_interval = Some(Duration::from_secs(3600));
        })
        .await;
        app.wait_for_order("4700000000001", SHOP, "enrolled").await;
        let recorded = wait_until(Duration::from_secs(10), || async {
            app.store.reconciliations().await.unwrap().iter().any(|r| r.last_success_at_ms.is_some())
        })
        .await;
        assert!(recorded);
        let session = admin_session(&app, "operator-pass-2026").await;
        let get = |path: String| {
            let request = app.client.get(app.url(&path)).header("Cookie", &session);
            async move { request.send().await.unwrap().text().await.unwrap() }
        };
        let dashboard = get("/admin".into()).await;
        assert!(dashboard.contains("Reconciliation with the shops"), "{dashboard}");
        assert!(dashboard.contains("<td>1 / 1</td>"), "{dashboard}");
        let id = app.store.find_order("4700000000001", Some(SHOP)).await.unwrap();
        let order = get(format!("/admin/orders/{id}")).await;
        assert!(order.contains("id=\"found-by-reconciliation\""), "{order}");
        assert!(!order.contains(TOKEN) && !dashboard.contains(TOKEN));
    }
}
