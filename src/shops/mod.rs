//! Verifying and parsing shop deliveries: pure functions from a request's
//! headers and body to the domain's `Delivery`, or to the reason it is refused.

#[cfg(test)]
mod proptests;
pub mod shopify;
#[cfg(test)]
mod testing;
pub mod woocommerce;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde_json::Value;
use sha2::Sha256;

use crate::config::Config;
use crate::domain::{distinct_line_item_ids, CourseRef, LearnerEmail, LineItem, Platform};
pub use crate::domain::{Envelope, Judgement, Rejection, Verified};

/// A webhook endpoint: the platform it serves and the topic its path implies
/// for a request without a topic header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub path: &'static str,
    pub platform: Platform,
    pub default_topic: &'static str,
}

/// Every webhook endpoint (SPEC §3).
pub const ENDPOINTS: [Endpoint; 5] = [
    Endpoint {
        path: "/webhooks/shopify",
        platform: Platform::Shopify,
        default_topic: "orders/create",
    },
    Endpoint {
        path: "/webhooks/shopify/order/create",
        platform: Platform::Shopify,
        default_topic: "orders/create",
    },
    Endpoint {
        path: "/webhooks/woocommerce",
        platform: Platform::WooCommerce,
        default_topic: "order.created",
    },
    Endpoint {
        path: "/webhooks/woocommerce/order/create",
        platform: Platform::WooCommerce,
        default_topic: "order.created",
    },
    Endpoint {
        path: "/webhooks/woocommerce/order/update",
        platform: Platform::WooCommerce,
        default_topic: "order.updated",
    },
];

/// The endpoint at `path`, if there is one.
pub fn endpoint(path: &str) -> Option<Endpoint> {
    ENDPOINTS.iter().find(|e| e.path == path).copied()
}

/// A request as far as judging it needs.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub headers: &'a HeaderMap,
    /// The body, or its first part when `truncated`.
    pub body: &'a [u8],
    /// The body's full size.
    pub size: u64,
    pub truncated: bool,
}

/// Judges a request to `endpoint` by the shops and limits `config` sets: the
/// content type (or a ping), the size, then the shop's signature and payload.
/// Intake does this when a request arrives, and a replay again later.
pub fn judge(config: &Config, endpoint: Endpoint, received: &Received<'_>) -> Judgement {
    let content_type = header(received.headers, "content-type")
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if content_type == "application/x-www-form-urlencoded" {
        if endpoint.platform == Platform::WooCommerce
            && !received.truncated
            && woocommerce::is_ping(received.body)
        {
            return Judgement::Ping;
        }
        return Judgement::Rejected(bad("form body without webhook_id: not a WooCommerce ping"));
    }
    if content_type != "application/json" {
        let shown = if content_type.is_empty() {
            "none"
        } else {
            content_type.as_str()
        };
        return Judgement::Rejected(bad(format!("content type {shown} is not application/json")));
    }
    if received.truncated {
        return Judgement::Rejected(Rejection::TooLarge(format!(
            "body of {} bytes is over the limit of {} bytes",
            received.size, config.max_body
        )));
    }
    let verified = match endpoint.platform {
        Platform::Shopify => shopify::verify(
            &config.shopify,
            received.headers,
            received.body,
            endpoint.default_topic,
        ),
        Platform::WooCommerce => woocommerce::verify(
            &config.woocommerce,
            received.headers,
            received.body,
            endpoint.default_topic,
        ),
    };
    match verified {
        Ok(verified) => Judgement::Trusted(verified),
        Err(rejection) => Judgement::Rejected(rejection),
    }
}

/// Judges an order fetched from `shop`'s API as the order's current state.
/// It carries no signature: we fetched it with our own credentials, which is
/// why it is trusted, so that step is skipped here, not faked.
pub fn judge_fetched(config: &Config, platform: Platform, shop: &str, body: &[u8]) -> Judgement {
    let fetched = match platform {
        Platform::Shopify => shopify::fetched(&config.shopify, shop, body),
        Platform::WooCommerce => woocommerce::fetched(&config.woocommerce, shop, body),
    };
    match fetched {
        Ok(verified) => Judgement::Trusted(verified),
        Err(rejection) => Judgement::Rejected(rejection),
    }
}

/// What a request's headers say about it, for the platform it came to.
pub fn envelope(platform: Platform, headers: &HeaderMap) -> Envelope {
    match platform {
        Platform::Shopify => shopify::envelope(headers),
        Platform::WooCommerce => woocommerce::envelope(headers),
    }
}

/// A header's value as text, if present and printable.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// Verifies `signature` (base64 of HMAC-SHA256 of the raw body) in constant time.
pub(crate) fn check_signature(key: &str, body: &[u8], signature: &str) -> Result<(), Rejection> {
    let claimed = BASE64
        .decode(signature)
        .map_err(|_| forbidden("signature is not valid base64"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
        .map_err(|_| forbidden("the signing key cannot be used"))?;
    mac.update(body);
    mac.verify_slice(&claimed)
        .map_err(|_| forbidden("signature does not match the body"))
}

/// The order's id and its line items, which every order delivery must have.
pub(crate) fn id_and_line_items(json: &Value) -> Result<(String, &Vec<Value>), Rejection> {
    match (json.get("id").and_then(json_id), json.get("line_items")) {
        (Some(id), Some(Value::Array(items))) => Ok((id, items)),
        (None, Some(Value::Array(_))) => Err(bad("order has no 'id'")),
        (Some(_), _) => Err(bad("order has no 'line_items' list")),
        (None, _) => Err(bad("order has no 'id' and no 'line_items' list")),
    }
}

/// An order's line items, each with an id of its own
/// ([`distinct_line_item_ids`]); `learner` finds an item's learner email.
pub(crate) fn line_items<'a>(
    items: &'a [Value],
    learner: impl Fn(&'a Value) -> Option<&'a str>,
    no_learner: &str,
) -> Vec<LineItem> {
    let mut lines: Vec<LineItem> = items
        .iter()
        .enumerate()
        .map(|(index, item)| line_item(index, item, learner(item), no_learner))
        .collect();
    distinct_line_item_ids(&mut lines);
    lines
}

/// A line item: anything malformed inside it becomes that item's failure,
/// never a rejection of the delivery.
fn line_item(index: usize, item: &Value, learner: Option<&str>, no_learner: &str) -> LineItem {
    let sku = match item.get("sku") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let learner = match learner {
        Some(email) => LearnerEmail::parse(email),
        None => Err(no_learner.to_owned()),
    };
    LineItem {
        // A line item always has an id; should one not, its position keeps it stable.
        id: item
            .get("id")
            .and_then(json_id)
            .unwrap_or_else(|| format!("line-{}", index + 1)),
        course: CourseRef::from_sku(Some(&sku)),
        sku,
        learner,
    }
}

/// An id as text: integers exactly (never through `f64`), or a non-empty string.
pub(crate) fn json_id(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .map(|n| n.to_string())
            .or_else(|| n.as_i64().map(|n| n.to_string())),
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        _ => None,
    }
}

pub(crate) fn non_empty(value: Option<&Value>) -> Option<&str> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub(crate) use crate::config::usable_secret;

pub(crate) fn bad(reason: impl Into<String>) -> Rejection {
    Rejection::BadRequest(reason.into())
}

pub(crate) fn forbidden(reason: impl Into<String>) -> Rejection {
    Rejection::Forbidden(reason.into())
}
