//! WooCommerce deliveries: check the HMAC of the raw body with the shop's
//! secret, then read the JSON into the domain's `Delivery`.

use http::HeaderMap;
use serde_json::Value;

use super::{
    bad, check_signature, forbidden, header, id_and_line_items, json_id, line_items, non_empty,
    usable_secret, Envelope, Rejection, Verified,
};
use crate::config::{source_key, WooCommerceShop};
use crate::domain::{Delivery, Order};

const SIGNATURE: &str = "x-wc-webhook-signature";
const SOURCE: &str = "x-wc-webhook-source";
const TOPIC: &str = "x-wc-webhook-topic";

/// The topics whose payload is a whole order to record or update.
const ORDER_TOPICS: [&str; 3] = ["order.created", "order.updated", "order.restored"];

const NO_LEARNER: &str =
    "no learner email: the line item has no email field and the order has no billing email";

/// What the headers say. There is no dedupe key: `X-WC-Webhook-Delivery-ID`
/// is random per delivery.
pub fn envelope(headers: &HeaderMap) -> Envelope {
    Envelope {
        shop: header(headers, SOURCE).map(str::to_owned),
        topic: header(headers, TOPIC).map(str::to_owned),
        webhook_id: None,
    }
}

/// Whether the body is the form WooCommerce sends when a webhook is saved: `webhook_id=N`.
pub fn is_ping(body: &[u8]) -> bool {
    url::form_urlencoded::parse(body)
        .any(|(key, value)| key == "webhook_id" && !value.trim().is_empty())
}

/// Checks a delivery's signature and reads its body; the first failing step decides.
pub fn verify(
    shops: &[WooCommerceShop],
    headers: &HeaderMap,
    body: &[u8],
    path_topic: &str,
) -> Result<Verified, Rejection> {
    let signature =
        header(headers, SIGNATURE).ok_or_else(|| bad("missing X-WC-Webhook-Signature header"))?;
    let source =
        header(headers, SOURCE).ok_or_else(|| bad("missing X-WC-Webhook-Source header"))?;
    let wanted = source_key(source);
    let shop = shops
        .iter()
        .find(|s| !wanted.is_empty() && source_key(&s.source) == wanted)
        .ok_or_else(|| forbidden(format!("source {source} is not configured")))?;
    let secret = usable_secret(shop.secret.as_ref()).ok_or_else(|| {
        forbidden(format!(
            "source {source} is not configured: it has no secret"
        ))
    })?;
    check_signature(secret, body, signature)?;
    let json: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    let topic = header(headers, TOPIC).unwrap_or(path_topic).to_owned();
    let delivery = if ORDER_TOPICS.contains(&topic.trim().to_ascii_lowercase().as_str()) {
        Delivery::Order(parse_order(&json)?)
    } else {
        Delivery::Ignored {
            topic: topic.clone(),
        }
    };
    Ok(Verified {
        shop: shop.source.clone(),
        topic,
        webhook_id: None,
        delivery,
    })
}

/// An order fetched from `source`'s REST API, as its current state: an `order.updated`.
pub fn fetched(
    shops: &[WooCommerceShop],
    source: &str,
    body: &[u8],
) -> Result<Verified, Rejection> {
    let wanted = source_key(source);
    let shop = shops
        .iter()
        .find(|s| !wanted.is_empty() && source_key(&s.source) == wanted)
        .ok_or_else(|| forbidden(format!("source {source} is not configured")))?;
    let json: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not JSON: {e}")))?;
    Ok(Verified {
        shop: shop.source.clone(),
        topic: "order.updated".to_owned(),
        webhook_id: None,
        delivery: Delivery::Order(parse_order(&json)?),
    })
}

fn parse_order(json: &Value) -> Result<Order, Rejection> {
    let (id, items) = id_and_line_items(json)?;
    let buyer_email = non_empty(json.pointer("/billing/email")).map(str::to_owned);
    let number = json
        .get("number")
        .and_then(json_id)
        .unwrap_or_else(|| id.clone());
    let status = json
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let items = line_items(
        items,
        |item| email_field(item).or(buyer_email.as_deref()),
        NO_LEARNER,
    );
    Ok(Order {
        number: if number.starts_with('#') {
            number
        } else {
            format!("#{number}")
        },
        id,
        paid: non_empty(json.get("date_paid_gmt")).is_some(),
        cancelled: matches!(status.trim(), "cancelled" | "refunded"),
        buyer_email,
        // WooCommerce refunds name no line items; a full refund shows as status `refunded`.
        refunded_items: Vec::new(),
        items,
    })
}

/// The `_value` of the first filled-in field of type `email` that a meta value
/// holds as a list of field objects ("Product Input Fields": `_alg_wc_pif_*`).
fn email_field(item: &Value) -> Option<&str> {
    item.get("meta_data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|meta| meta.get("value"))
        .flat_map(field_objects)
        .filter(|field| {
            let kind = field
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            kind.trim().eq_ignore_ascii_case("email")
        })
        .find_map(|field| non_empty(field.get("_value")))
}

/// The objects in a meta value: a list's, or those of a PHP array with gaps
/// (which JSON encodes as an object keyed by index).
fn field_objects(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(values) => values.iter().filter(|v| v.is_object()).collect(),
        Value::Object(map) => map.values().filter(|v| v.is_object()).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
