//! Shopify deliveries: check the HMAC of the raw body with the shop's signing
//! key, then read the JSON into the domain's `Delivery`.

use http::HeaderMap;
use serde_json::Value;

use super::{
    bad, check_signature, forbidden, header, id_and_line_items, json_id, line_items, non_empty,
    usable_secret, Envelope, Rejection, Verified,
};
use crate::config::ShopifyShop;
use crate::domain::{Delivery, LineItem, Order};

/// The topics whose payload is a whole order to record or update.
const ORDER_TOPICS: [&str; 4] = [
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
];

const NO_LEARNER: &str =
    "no learner email: the line item has no 'email' property and the order has no buyer email";

/// What the headers say: shop domain (lower-case), topic and webhook id.
pub fn envelope(headers: &HeaderMap) -> Envelope {
    Envelope {
        shop: shopify_header(headers, "shop-domain").map(str::to_ascii_lowercase),
        topic: shopify_header(headers, "topic").map(str::to_owned),
        webhook_id: shopify_header(headers, "webhook-id").map(str::to_owned),
    }
}

/// Checks a delivery's signature and reads its body; the first failing step decides.
pub fn verify(
    shops: &[ShopifyShop],
    headers: &HeaderMap,
    body: &[u8],
    path_topic: &str,
) -> Result<Verified, Rejection> {
    let signature = shopify_header(headers, "hmac-sha256")
        .ok_or_else(|| bad("missing X-Shopify-Hmac-Sha256 header"))?;
    let domain = shopify_header(headers, "shop-domain")
        .ok_or_else(|| bad("missing X-Shopify-Shop-Domain header"))?;
    let shop = shops
        .iter()
        .find(|s| s.domain.trim().eq_ignore_ascii_case(domain))
        .ok_or_else(|| forbidden(format!("shop {domain} is not configured")))?;
    let key = usable_secret(shop.api_key.as_ref()).ok_or_else(|| {
        forbidden(format!(
            "shop {domain} is not configured: it has no signing key"
        ))
    })?;
    check_signature(key, body, signature)?;
    let json: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let envelope = envelope(headers);
    let topic = envelope.topic.unwrap_or_else(|| path_topic.to_owned());
    let delivery = parse_delivery(&topic, &json)?;
    Ok(Verified {
        shop: shop.domain.trim().to_ascii_lowercase(),
        topic,
        webhook_id: envelope.webhook_id,
        delivery,
    })
}

/// An order fetched from `domain`'s Admin API, as its current state: a
/// cancelled order acts as `orders/cancelled`, any other as `orders/updated`
/// (its `refunds` cancel the refunded items as `refunds/create` would).
pub fn fetched(shops: &[ShopifyShop], domain: &str, body: &[u8]) -> Result<Verified, Rejection> {
    let shop = shops
        .iter()
        .find(|s| s.domain.trim().eq_ignore_ascii_case(domain.trim()))
        .ok_or_else(|| forbidden(format!("shop {domain} is not configured")))?;
    let json: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let topic = if matches!(json.get("cancelled_at"), None | Some(Value::Null)) {
        "orders/updated"
    } else {
        "orders/cancelled"
    };
    Ok(Verified {
        shop: shop.domain.trim().to_ascii_lowercase(),
        topic: topic.to_owned(),
        webhook_id: None,
        delivery: parse_delivery(topic, &json)?,
    })
}

/// A `X-Shopify-*` header, or its unprefixed twin that newer "Events" deliveries send.
fn shopify_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header(headers, &format!("x-shopify-{name}"))
        .or_else(|| header(headers, &format!("shopify-{name}")))
}

fn parse_delivery(topic: &str, json: &Value) -> Result<Delivery, Rejection> {
    let normalized = topic.trim().to_ascii_lowercase();
    if ORDER_TOPICS.contains(&normalized.as_str()) {
        parse_order(&normalized, json).map(Delivery::Order)
    } else if normalized == "refunds/create" {
        let order_id = json
            .get("order_id")
            .and_then(json_id)
            .ok_or_else(|| bad("refund has no 'order_id'"))?;
        let line_items = dedup(refund_line_item_ids(json).collect());
        Ok(Delivery::Refund {
            order_id,
            line_items,
        })
    } else {
        Ok(Delivery::Ignored {
            topic: topic.to_owned(),
        })
    }
}

fn parse_order(topic: &str, json: &Value) -> Result<Order, Rejection> {
    let (id, items) = id_and_line_items(json)?;
    let buyer_email = [
        json.get("email"),
        json.get("contact_email"),
        json.pointer("/customer/email"),
    ]
    .into_iter()
    .find_map(non_empty)
    .map(str::to_owned);
    let number = non_empty(json.get("name"))
        .map(str::to_owned)
        .or_else(|| {
            json.get("order_number")
                .and_then(json_id)
                .map(|n| format!("#{n}"))
        })
        .unwrap_or_else(|| id.clone());
    let refunded_items = dedup(
        list(json.get("refunds"))
            .iter()
            .flat_map(refund_line_item_ids)
            .collect(),
    );
    let items = line_items(
        items,
        |item| email_property(item).or(buyer_email.as_deref()),
        NO_LEARNER,
    );
    Ok(Order {
        id,
        number,
        // A partial refund follows payment: the items not refunded stay paid
        // (the refunded ones are in `refunds`).
        paid: matches!(
            json.get("financial_status").and_then(Value::as_str),
            Some("paid" | "partially_refunded")
        ),
        cancelled: topic == "orders/cancelled"
            || !matches!(json.get("cancelled_at"), None | Some(Value::Null)),
        buyer_email,
        refunded_items,
        items,
    })
}

/// The value of the line item property named `email` (any case), if it has one.
fn email_property(item: &Value) -> Option<&str> {
    let is_email = |name: &str| name.trim().eq_ignore_ascii_case("email");
    match item.get("properties")? {
        Value::Array(properties) => properties
            .iter()
            .filter(|p| p.get("name").and_then(Value::as_str).is_some_and(is_email))
            .find_map(|p| non_empty(p.get("value"))),
        // The storefront's cart API spells properties as an object.
        Value::Object(properties) => properties
            .iter()
            .filter(|(name, _)| is_email(name))
            .find_map(|(_, value)| non_empty(Some(value))),
        _ => None,
    }
}

fn refund_line_item_ids(refund: &Value) -> impl Iterator<Item = String> + '_ {
    list(refund.get("refund_line_items"))
        .iter()
        .filter_map(|r| r.get("line_item_id").and_then(json_id))
        .map(|id| LineItem::kept_id(&id))
}

fn list(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn dedup(mut ids: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    ids
}

#[cfg(test)]
mod tests;
