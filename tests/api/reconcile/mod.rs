//! Reconciliation: fake Shopify Admin and WooCommerce REST APIs (wiremock,
//! answering as their documentation says), orders that no webhook brought;
//! a file a topic, the fake shops and helpers here.

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

mod orders;
mod runs;

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
