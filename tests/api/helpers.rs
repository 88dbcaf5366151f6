//! Starting the real service per test, signing deliveries, waiting for conditions.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use edx_webhooks::app::{App, RunMode};
use edx_webhooks::config::{Config, Secret, ShopifyShop, WooCommerceShop};
use edx_webhooks::store::{OrderView, Store};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tempfile::TempDir;

use crate::lms::{FakeLms, CLIENT_ID, CLIENT_SECRET};

pub const SHOP: &str = "test-shop.myshopify.com";
pub const SHOPIFY_KEY: &str = "shopify-signing-key";
pub const WOO_SOURCE: &str = "https://shop.example.com/";
pub const WOO_SECRET: &str = "woocommerce-secret";
pub const COURSE_A: &str = "course-v1:Org+CourseA+2026";
pub const COURSE_B: &str = "course-v1:Org+CourseB+2026";

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
    MySql,
}

/// The servers the PostgreSQL and MySQL/MariaDB suites use; each test gets a
/// database of its own there.
pub fn server_url(db: Db) -> Option<String> {
    let from_env = |name: &str, default: &str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_owned())
    };
    match db {
        Db::Sqlite => None,
        Db::Postgres => Some(from_env(
            "EDX_WEBHOOKS_TEST_POSTGRES",
            "postgres://postgres@127.0.0.1:5432/test",
        )),
        Db::MySql => Some(from_env(
            "EDX_WEBHOOKS_TEST_MYSQL",
            "mysql://root@127.0.0.1:3306/test",
        )),
    }
}

/// The file of a fresh SQLite database, in the test's directory.
pub const SQLITE_FILE: &str = "test.sqlite3";

/// A new, empty database for one test (SQLite: a file in `dir`).
pub async fn fresh_database(db: Db, dir: &TempDir) -> String {
    use sqlx::Connection;
    let Some(server) = server_url(db) else {
        return format!("sqlite://{}", dir.path().join(SQLITE_FILE).display());
    };
    let name = format!(
        "ew_test_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    );
    let create = format!("CREATE DATABASE {name}");
    let unreachable =
        |e: sqlx::Error| -> ! { panic!("the {db:?} suite needs its server at {server}: {e}") };
    match db {
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|e| unreachable(e));
            sqlx::query(&create).execute(&mut conn).await.unwrap();
        }
        Db::MySql => {
            let mut conn = sqlx::MySqlConnection::connect(&server)
                .await
                .unwrap_or_else(|e| unreachable(e));
            sqlx::query(&create).execute(&mut conn).await.unwrap();
        }
        Db::Sqlite => unreachable!(),
    }
    let (base, _) = server
        .rsplit_once('/')
        .expect("server URL names a database");
    format!("{base}/{name}")
}

pub struct TestApp {
    pub address: SocketAddr,
    pub database_url: String,
    pub store: Store,
    pub lms: FakeLms,
    pub client: reqwest::Client,
    #[allow(dead_code)] // Holds the SQLite file until the test ends.
    pub dir: TempDir,
}

/// The settings every test starts from: a fresh database, fast retries, a
/// fake LMS, one shop of each kind.
pub async fn test_config(db: Db, lms: &FakeLms, dir: &TempDir) -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.database_url = fresh_database(db, dir).await;
    config.lms.base_url = lms.uri().parse().unwrap();
    config.lms.client_id = Some(CLIENT_ID.into());
    config.lms.client_secret = Some(Secret::new(CLIENT_SECRET));
    config.lms.timeout = Duration::from_secs(5);
    config.retry.first_delay = Duration::from_millis(50);
    config.retry.max_delay = Duration::from_millis(200);
    config.retry.max_attempts = 4;
    config.workers = 2;
    config.shopify = vec![ShopifyShop {
        domain: SHOP.into(),
        api_key: Some(Secret::new(SHOPIFY_KEY)),
        api: None,
    }];
    config.woocommerce = vec![WooCommerceShop {
        source: WOO_SOURCE.into(),
        secret: Some(Secret::new(WOO_SECRET)),
        api: None,
    }];
    config
}

pub async fn spawn_app(db: Db) -> TestApp {
    spawn_app_with(db, |_| {}).await
}

pub async fn spawn_app_with(db: Db, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(db, &lms, &dir).await;
    adjust(&mut config);
    spawn_with_config(config, lms, dir).await
}

pub async fn spawn_with_config(config: Config, lms: FakeLms, dir: TempDir) -> TestApp {
    let mode = RunMode {
        http: true,
        webhooks: true,
        workers: true,
    };
    spawn_in_mode(config, lms, dir, mode).await
}

/// The app receiving webhooks but running no workers: tests take claims themselves.
pub async fn spawn_without_workers(db: Db) -> TestApp {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = test_config(db, &lms, &dir).await;
    let mode = RunMode {
        http: true,
        webhooks: true,
        workers: false,
    };
    spawn_in_mode(config, lms, dir, mode).await
}

async fn spawn_in_mode(config: Config, lms: FakeLms, dir: TempDir, mode: RunMode) -> TestApp {
    let database_url = config.database_url.clone();
    let app = App::build(config, mode).await.expect("app builds");
    let address = app.address().unwrap();
    let store = app.store().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        database_url,
        store,
        lms,
        client: reqwest::Client::new(),
        dir,
    }
}

pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// A signed Shopify delivery to `/webhooks/shopify`.
    pub async fn shopify(&self, topic: &str, body: &Value) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        self.client
            .post(self.url("/webhooks/shopify"))
            .header("Content-Type", "application/json")
            .header("X-Shopify-Topic", topic)
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, &raw))
            .header("X-Shopify-Webhook-Id", uuid::Uuid::new_v4().to_string())
            .header("X-Shopify-API-Version", "2026-10")
            .body(raw)
            .send()
            .await
            .unwrap()
    }

    /// A Shopify `orders/create` delivery of exactly `raw`, signed, with
    /// `extra` headers (as a proxy might add).
    pub async fn shopify_raw(&self, raw: &[u8], extra: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhooks/shopify"))
            .header("Content-Type", "application/json")
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Shop-Domain", SHOP)
            .header("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, raw));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        request.body(raw.to_vec()).send().await.unwrap()
    }

    /// A signed WooCommerce delivery to `/webhooks/woocommerce`.
    pub async fn woocommerce(&self, topic: &str, body: &Value) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        self.client
            .post(self.url("/webhooks/woocommerce"))
            .header("Content-Type", "application/json")
            .header("User-Agent", "WooCommerce/9.4.0 Hookshot (WordPress/6.7)")
            .header("X-WC-Webhook-Source", WOO_SOURCE)
            .header("X-WC-Webhook-Topic", topic)
            .header("X-WC-Webhook-Resource", "order")
            .header("X-WC-Webhook-Signature", sign(WOO_SECRET, &raw))
            .header("X-WC-Webhook-ID", "3")
            .header("X-WC-Webhook-Delivery-ID", uuid::Uuid::new_v4().to_string())
            .body(raw)
            .send()
            .await
            .unwrap()
    }

    pub async fn order(&self, order: &str, shop: &str) -> OrderView {
        let id = self
            .store
            .find_order(order, Some(shop))
            .await
            .expect("order stored");
        self.store.order_view(id).await.unwrap()
    }

    /// Waits until the order reaches `state`, or fails the test with what it is.
    pub async fn wait_for_order(&self, order: &str, shop: &str, state: &str) -> OrderView {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = match self.store.find_order(order, Some(shop)).await {
                Ok(id) => self.store.order_view(id).await.ok(),
                Err(_) => None,
            };
            match found {
                Some(view) if view.state == state => return view,
                last if std::time::Instant::now() > deadline => {
                    panic!("order {order} did not become {state}: {last:#?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

/// A Shopify order body as a shop might write it: keys not sorted, odd
/// spacing, so that any re-serialisation shows.
pub fn unsorted_shopify_body(id: u64) -> String {
    format!(
        r#"{{"zeta": "last first",  "id":{id},"financial_status":"paid","email":"buyer@example.com",
 "line_items":[{{"sku":"{COURSE_A}","id":1,"quantity":1,"properties":[{{"value":"ann@example.org","name":"email"}}]}}]}}"#
    )
}

/// Waits until the clock has moved `ms` milliseconds past now, so that what
/// was written so far is that much in the past (the store keeps milliseconds).
pub async fn clock_moves_on(ms: u64) {
    let from = std::time::SystemTime::now();
    let moved = wait_until(Duration::from_secs(5), || async move {
        from.elapsed().is_ok_and(|e| e > Duration::from_millis(ms))
    })
    .await;
    assert!(moved, "the clock stood still");
}

/// Polls `condition` until it holds or `deadline` passes; true when it held.
pub async fn wait_until<F, Fut>(deadline: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if condition().await {
            return true;
        }
        if start.elapsed() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Shopify order: `items` are (line item id, sku, learner email property).
pub fn shopify_order(
    id: u64,
    items: &[(u64, &str, Option<&str>)],
    buyer: Option<&str>,
    financial_status: &str,
) -> Value {
    let line_items: Vec<Value> = items
        .iter()
        .map(|(line, sku, email)| {
            let properties: Vec<Value> = email.iter().map(|e| json!({"name": "email", "value": e})).collect();
            json!({"id": line, "sku": sku, "quantity": 1, "title": "A course", "price": "49.00", "properties": properties})
        })
        .collect();
    json!({
        "id": id, "name": format!("#{}", id % 10_000), "order_number": id % 10_000,
        "email": buyer, "contact_email": buyer, "financial_status": financial_status,
        "cancelled_at": null, "currency": "USD", "total_price": "49.00",
        "customer": buyer.map(|b| json!({"id": 1, "email": b, "first_name": "Ada", "last_name": "Lovelace"})),
        "refunds": [], "line_items": line_items
    })
}

/// A WooCommerce order: `items` are (line item id, sku, learner email field).
pub fn woo_order(id: u64, items: &[(u64, &str, Option<&str>)], buyer: &str, paid: bool) -> Value {
    let line_items: Vec<Value> = items
        .iter()
        .map(|(line, sku, email)| {
            let fields: Vec<Value> = email
                .iter()
                .map(|e| json!({"title": "Learner email", "type": "email", "_value": e}))
                .collect();
            json!({"id": line, "name": "A course", "sku": sku, "quantity": 1, "meta_data": [
                {"id": 1, "key": "_alg_wc_pif_local", "value": fields, "display_key": "", "display_value": ""},
                {"id": 2, "key": "_reduced_stock", "value": "1"}
            ]})
        })
        .collect();
    json!({
        "id": id, "number": id.to_string(), "status": if paid { "processing" } else { "pending" },
        "date_paid_gmt": if paid { json!("2026-11-28T10:00:00") } else { Value::Null },
        "billing": {"first_name": "Ada", "last_name": "Lovelace", "email": buyer},
        "refunds": [], "line_items": line_items
    })
}
