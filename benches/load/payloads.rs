//! The orders the benchmark sends: signed Shopify and WooCommerce webhooks.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

pub const SHOP: &str = "bench-shop.myshopify.com";
pub const SHOPIFY_KEY: &str = "bench-shopify-key";
pub const WOO_SOURCE: &str = "https://bench-shop.example.com/";
pub const WOO_SECRET: &str = "bench-woo-secret";

/// One signed order, ready to send.
pub struct Order {
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: bytes::Bytes,
}

impl Order {
    /// Order `n`: Shopify for even, WooCommerce for odd numbers; one learner, one of 10 courses.
    pub fn new(n: usize, run: &str) -> Order {
        let course = format!("course-v1:Bench+C{}+2026", n % 10);
        let email = format!("learner-{run}-{n}@example.org");
        if n.is_multiple_of(2) {
            let body = serde_json::to_vec(&json!({
                "id": 5_000_000_000u64 + n as u64, "name": format!("#{n}"), "email": "buyer@example.org",
                "financial_status": "paid", "customer": null,
                "line_items": [{"id": n, "sku": course, "quantity": 1,
                    "properties": [{"name": "email", "value": email}]}]
            }))
            .unwrap();
            let headers = vec![
                ("X-Shopify-Topic", "orders/create".to_owned()),
                ("X-Shopify-Shop-Domain", SHOP.to_owned()),
                ("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, &body)),
                ("X-Shopify-Webhook-Id", uuid::Uuid::new_v4().to_string()),
            ];
            Order {
                path: "/webhooks/shopify",
                headers,
                body: body.into(),
            }
        } else {
            let body = serde_json::to_vec(&json!({
                "id": n, "number": n.to_string(), "status": "processing", "date_paid_gmt": "2026-11-28T10:00:00",
                "billing": {"email": "buyer@example.org"},
                "line_items": [{"id": n, "sku": course, "quantity": 1, "meta_data": [
                    {"id": 1, "key": "_alg_wc_pif_local", "value": [{"type": "email", "_value": email}]}]}]
            }))
            .unwrap();
            let headers = vec![
                ("X-WC-Webhook-Source", WOO_SOURCE.to_owned()),
                ("X-WC-Webhook-Topic", "order.created".to_owned()),
                ("X-WC-Webhook-Signature", sign(WOO_SECRET, &body)),
            ];
            Order {
                path: "/webhooks/woocommerce",
                headers,
                body: body.into(),
            }
        }
    }

    pub fn request(&self, authority: &str) -> hyper::Request<http_body_util::Full<bytes::Bytes>> {
        let mut request = hyper::Request::post(self.path)
            .header("Host", authority)
            .header("Content-Type", "application/json");
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        request
            .body(http_body_util::Full::new(self.body.clone()))
            .unwrap()
    }
}

/// Ok when the service answered 200 and took the order in.
pub fn check_answer(status: u16, body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if status == 200 && answer["status"] == "accepted" {
        Ok(())
    } else {
        Err(format!("{status} {answer}"))
    }
}

pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
