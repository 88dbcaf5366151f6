//! WooCommerce intake, over HTTP; a file a topic, the delivery they share here.

use edx_webhooks::config::{Secret, WooCommerceShop};
use serde_json::{json, Value};

use crate::helpers::*;

mod judging;
mod orders;
mod payment;

const BARE: &str = "/webhooks/woocommerce";
const CREATE: &str = "/webhooks/woocommerce/order/create";
const UPDATE: &str = "/webhooks/woocommerce/order/update";

fn raw(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

/// A delivery with WooCommerce's headers, signed with `WOO_SECRET`; headers
/// can be replaced or removed before it is sent.
struct Delivery {
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    fn new(body: Vec<u8>) -> Delivery {
        let signature = sign(WOO_SECRET, &body);
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"),
            ("X-WC-Webhook-Source", WOO_SOURCE),
            ("X-WC-Webhook-Topic", "order.created"),
            ("X-WC-Webhook-Resource", "order"),
            ("X-WC-Webhook-Event", "created"),
            ("X-WC-Webhook-Signature", &signature),
            ("X-WC-Webhook-ID", "3"),
        ];
        Delivery {
            path: BARE,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    fn of(order: &Value) -> Delivery {
        Delivery::new(raw(order))
    }

    fn to(mut self, path: &'static str) -> Delivery {
        self.path = path;
        self
    }

    /// Replaces the header (reqwest's `.header` would add a second one).
    fn header(self, name: &str, value: &str) -> Delivery {
        let mut delivery = self.without(name);
        delivery.headers.push((name.to_owned(), value.to_owned()));
        delivery
    }

    fn without(mut self, name: &str) -> Delivery {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    async fn send(self, app: &TestApp) -> reqwest::Response {
        let mut request = app
            .client
            .post(app.url(self.path))
            .header("X-WC-Webhook-Delivery-ID", uuid::Uuid::new_v4().to_string())
            .body(self.body);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }
}

async fn status_and_reason(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn status_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["status"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The state of each of the order's items, by line item id.
fn item_states(view: &edx_webhooks::store::OrderView) -> Vec<(String, String)> {
    view.items
        .iter()
        .map(|i| (i.line_item_id.clone(), i.state.clone()))
        .collect()
}

/// The one request stored last: what the service recorded about the delivery.
async fn last_request(app: &TestApp) -> edx_webhooks::store::RequestView {
    app.store.requests(1).await.unwrap().remove(0)
}

fn paid_order(id: u64, learner: &str) -> Value {
    woo_order(
        id,
        &[(1, COURSE_A, Some(learner))],
        "buyer@example.org",
        true,
    )
}

fn payment_required() -> impl FnOnce(&mut edx_webhooks::config::Config) {
    |c| c.require_payment = true
}
