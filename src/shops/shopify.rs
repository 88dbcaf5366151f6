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
mod tests {
    use http::{HeaderName, HeaderValue};
    use serde_json::json;

    use super::*;
    use crate::config::Secret;
    use crate::domain::{CourseKey, CourseRef, LineItem};
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    const DOMAIN: &str = "example-academy.myshopify.com";
    const KEY: &str = "shpss_0a1b2c3d4e5f";
    const SIG: &str = "X-Shopify-Hmac-Sha256";
    const SHOP: &str = "X-Shopify-Shop-Domain";

    fn shops() -> Vec<ShopifyShop> {
        let shop = |domain: &str, key: Option<&str>| ShopifyShop {
            domain: domain.into(),
            api_key: key.map(Secret::new),
            api: None,
        };
        vec![
            shop(" Example-Academy.myshopify.com ", Some(KEY)),
            shop("keyless.myshopify.com", None),
            shop("empty-key.myshopify.com", Some("")),
        ]
    }

    fn sign(key: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(body);
        BASE64.encode(mac.finalize().into_bytes())
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let pair = |(k, v): &(&str, &str)| {
            (
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            )
        };
        pairs.iter().map(pair).collect()
    }

    /// A delivery as Shopify signs it, for `topic` (None: no topic header).
    fn deliver(topic: Option<&str>, body: &[u8]) -> Result<Verified, Rejection> {
        let hmac = sign(KEY, body);
        let mut pairs = vec![
            (SIG, hmac.as_str()),
            (SHOP, DOMAIN),
            ("X-Shopify-API-Version", "2026-01"),
            (
                "X-Shopify-Webhook-Id",
                "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
            ),
        ];
        pairs.extend(topic.map(|t| ("X-Shopify-Topic", t)));
        verify(&shops(), &headers(&pairs), body, "orders/create")
    }

    fn parse(topic: &str, order: &Value) -> Order {
        match deliver(Some(topic), order.to_string().as_bytes())
            .unwrap()
            .delivery
        {
            Delivery::Order(order) => order,
            other => panic!("not an order: {other:?}"),
        }
    }

    fn learners(order: &Order) -> Vec<String> {
        let learner = |item: &LineItem| match &item.learner {
            Ok(email) => email.to_string(),
            Err(reason) => format!("error: {reason}"),
        };
        order.items.iter().map(learner).collect()
    }

    /// Request headers, body, and the verdict expected.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], &'a str);

    /// `400 reason`, `403 reason`, or `ok`.
    fn verdict(result: Result<Verified, Rejection>) -> String {
        match result {
            Ok(_) => "ok".into(),
            Err(rejection) => format!("{} {rejection}", rejection.status()),
        }
    }

    /// An `orders/create` payload as Shopify sends it (abridged), for a guest checkout.
    const ORDER: &str = r##"{
      "id": 5608427798634, "admin_graphql_api_id": "gid://shopify/Order/5608427798634",
      "app_id": 580111, "browser_ip": "203.0.113.7", "buyer_accepts_marketing": false,
      "cancel_reason": null, "cancelled_at": null, "checkout_id": 36793520111722,
      "confirmation_number": "X8K2PQ7ZB", "confirmed": true,
      "contact_email": "buyer@example.com", "created_at": "2026-03-02T10:15:04-05:00",
      "currency": "USD", "current_total_price": "418.00", "customer_locale": "en",
      "email": "buyer@example.com", "financial_status": "paid", "fulfillment_status": null,
      "name": "#1001", "note": null, "note_attributes": [], "number": 1, "order_number": 1001,
      "processed_at": "2026-03-02T10:15:03-05:00", "source_name": "web", "tags": "",
      "test": false, "total_price": "418.00", "updated_at": "2026-03-02T10:15:05-05:00",
      "customer": null,
      "billing_address": {"first_name": "Ada", "last_name": "Lovelace", "country_code": "GB"},
      "discount_codes": [],
      "line_items": [
        {
          "id": 13792398868586, "admin_graphql_api_id": "gid://shopify/LineItem/13792398868586",
          "fulfillable_quantity": 1, "fulfillment_service": "manual", "gift_card": false,
          "grams": 0, "name": "Demo Course", "price": "199.00", "product_exists": true,
          "product_id": 8123456789012, "quantity": 1, "requires_shipping": false,
          "properties": [
            {"name": "_theme_source", "value": "product-form"},
            {"name": "Email", "value": " learner@example.org "}
          ],
          "sku": "course-v1:edX+DemoX+Demo_Course", "taxable": true, "title": "Demo Course",
          "total_discount": "0.00", "variant_id": 45123456789012, "variant_title": null,
          "vendor": "Example Academy", "tax_lines": [], "discount_allocations": []
        },
        {
          "id": 13792398901354, "name": "Python 101", "price": "199.00",
          "product_id": 8123456789013, "quantity": 1, "properties": [],
          "sku": "PY-101", "title": "Python 101", "variant_id": 45123456789013
        },
        {
          "id": 13792398934122, "name": "Certificate frame", "price": "20.00",
          "quantity": 1, "properties": [{"name": "email", "value": ""}], "sku": null
        }
      ],
      "refunds": [],
      "shipping_lines": []
    }"##;

    fn order_json() -> Value {
        serde_json::from_str(ORDER).unwrap()
    }

    #[test]
    fn a_paid_guest_order_becomes_an_order() {
        let verified = deliver(Some("orders/create"), ORDER.as_bytes()).unwrap();
        assert_eq!(
            (verified.shop.as_str(), verified.topic.as_str()),
            (DOMAIN, "orders/create")
        );
        assert_eq!(
            verified.webhook_id.as_deref(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
        let Delivery::Order(order) = verified.delivery else {
            panic!("not an order")
        };
        assert_eq!(
            (order.id.as_str(), order.number.as_str()),
            ("5608427798634", "#1001")
        );
        assert_eq!(order.buyer_email.as_deref(), Some("buyer@example.com"));
        assert!(order.paid && !order.cancelled && order.refunded_items.is_empty());
        let ids: Vec<&str> = order.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["13792398868586", "13792398901354", "13792398934122"]);
        let key = CourseKey::parse("course-v1:edX+DemoX+Demo_Course").unwrap();
        assert_eq!(order.items[0].course, CourseRef::Key(key));
        assert_eq!(order.items[1].course, CourseRef::Sku("PY-101".into()));
        assert_eq!(
            (order.items[2].sku.as_str(), &order.items[2].course),
            ("", &CourseRef::None)
        );
        // The `Email` property wins; an empty one falls back to the buyer.
        let expected = [
            "learner@example.org",
            "buyer@example.com",
            "buyer@example.com",
        ];
        assert_eq!(learners(&order), expected);
    }

    #[test]
    fn buyer_email_falls_back_to_contact_then_customer() {
        let mut order = order_json();
        order["email"] = json!("");
        order["contact_email"] = json!("contact@example.com");
        let buyer = |order: &Value| parse("orders/paid", order).buyer_email;
        assert_eq!(buyer(&order).as_deref(), Some("contact@example.com"));
        order["contact_email"] = Value::Null;
        order["customer"] = json!({"id": 7, "email": "customer@example.com", "first_name": "Ada"});
        assert_eq!(buyer(&order).as_deref(), Some("customer@example.com"));
    }

    #[test]
    fn an_item_without_a_valid_email_fails_alone() {
        let mut order = order_json();
        order["email"] = Value::Null;
        order["contact_email"] = Value::Null;
        order["line_items"][0]["properties"][1]["value"] = json!("not an email");
        let order = parse("orders/updated", &order);
        assert_eq!(order.buyer_email, None);
        let no_learner = format!("error: {NO_LEARNER}");
        let expected = [
            "error: invalid learner email 'not an email'",
            &no_learner,
            &no_learner,
        ];
        assert_eq!(learners(&order), expected);
    }

    #[test]
    fn paid_is_paid_or_paid_then_partly_refunded() {
        for (status, paid) in [
            ("pending", false),
            ("authorized", false),
            ("partially_paid", false),
            ("paid", true),
            ("partially_refunded", true),
            ("refunded", false),
            ("voided", false),
            ("expired", false),
        ] {
            let mut order = order_json();
            order["financial_status"] = json!(status);
            assert_eq!(parse("orders/updated", &order).paid, paid, "{status}");
        }
    }

    #[test]
    fn status_number_and_refunds() {
        let mut order = order_json();
        order["financial_status"] = json!("partially_refunded");
        order["cancelled_at"] = json!("2026-03-03T09:00:00-05:00");
        order["name"] = Value::Null;
        order["refunds"] = serde_json::from_str(
            r#"[{"id": 1, "refund_line_items": [{"id": 2, "line_item_id": 13792398868586}]},
                {"id": 3, "refund_line_items": [{"line_item_id": "13792398901354"},
                                                {"line_item_id": 13792398868586}]},
                {"id": 4, "refund_line_items": null}]"#,
        )
        .unwrap();
        let parsed = parse("orders/updated", &order);
        assert!(parsed.paid && parsed.cancelled);
        assert_eq!(parsed.number, "#1001");
        assert_eq!(parsed.refunded_items, ["13792398868586", "13792398901354"]);

        order["cancelled_at"] = Value::Null;
        order["order_number"] = Value::Null;
        order["id"] = json!(9007199254740993_u64); // 2^53 + 1: wrong if it went through f64
        let parsed = parse("orders/cancelled", &order);
        assert!(parsed.cancelled);
        assert_eq!(
            (parsed.id.as_str(), parsed.number.as_str()),
            ("9007199254740993", "9007199254740993")
        );
    }

    #[test]
    fn refunds_create() {
        let refund = r#"{
          "id": 890088186047892319, "order_id": 5608427798634, "note": "changed plans",
          "created_at": "2026-03-04T12:00:00-05:00", "restock": false, "user_id": 548380009,
          "refund_line_items": [
            {"id": 104689539, "quantity": 1, "line_item_id": 13792398868586, "location_id": null,
             "restock_type": "no_restock", "subtotal": 199.0, "total_tax": 0.0}
          ],
          "transactions": [{"id": 245135, "kind": "refund", "status": "success", "amount": "199.00"}]
        }"#;
        let verified = deliver(Some("refunds/create"), refund.as_bytes()).unwrap();
        let expected = Delivery::Refund {
            order_id: "5608427798634".into(),
            line_items: vec!["13792398868586".into()],
        };
        assert_eq!(verified.delivery, expected);
        let no_order = br#"{"id": 1, "refund_line_items": []}"#;
        let got = verdict(deliver(Some("refunds/create"), no_order));
        assert_eq!(got, "400 refund has no 'order_id'");
    }

    #[test]
    fn topic_comes_from_the_header_else_the_path() {
        assert_eq!(
            deliver(None, ORDER.as_bytes()).unwrap().topic,
            "orders/create"
        );
        for topic in [
            "orders/fulfilled",
            "orders/edited",
            "app/uninstalled",
            "customers/create",
        ] {
            let verified = deliver(Some(topic), br#"{"id": null}"#).unwrap();
            assert_eq!(
                verified.delivery,
                Delivery::Ignored {
                    topic: topic.into()
                }
            );
        }
    }

    #[test]
    fn unprefixed_headers_are_read() {
        let hmac = sign(KEY, ORDER.as_bytes());
        let h = headers(&[
            ("shopify-hmac-sha256", &hmac),
            ("shopify-shop-domain", "EXAMPLE-academy.myshopify.com"),
            ("shopify-topic", "orders/paid"),
            ("shopify-webhook-id", "w-1"),
        ]);
        let expected = Envelope {
            shop: Some(DOMAIN.into()),
            topic: Some("orders/paid".into()),
            webhook_id: Some("w-1".into()),
        };
        assert_eq!(envelope(&h), expected);
        let verified = verify(&shops(), &h, ORDER.as_bytes(), "orders/create").unwrap();
        assert_eq!(
            (verified.shop.as_str(), verified.topic.as_str()),
            (DOMAIN, "orders/paid")
        );
    }

    #[test]
    fn rejections_in_order() {
        let body = ORDER.as_bytes();
        let (good, wrong_key, empty_key) = (sign(KEY, body), sign("other", body), sign("", body));
        #[rustfmt::skip]
        let cases: [Case; 8] = [
            (&[(SHOP, "unknown.myshopify.com")], body, "400 missing X-Shopify-Hmac-Sha256"),
            (&[(SIG, &good)], body, "400 missing X-Shopify-Shop-Domain"),
            (&[(SIG, &good), (SHOP, "other.myshopify.com")], body, "403 shop other.myshopify.com is not configured"),
            (&[(SIG, &good), (SHOP, "keyless.myshopify.com")], body, "403 shop keyless.myshopify.com is not configured"),
            // An empty key must not verify even a body signed with the empty key.
            (&[(SIG, &empty_key), (SHOP, "empty-key.myshopify.com")], body, "403 shop empty-key.myshopify.com is not configured"),
            (&[(SIG, "not base64!"), (SHOP, DOMAIN)], body, "403 signature is not valid base64"),
            (&[(SIG, &wrong_key), (SHOP, DOMAIN)], body, "403 signature does not match"),
            (&[(SIG, &good), (SHOP, DOMAIN)], b"{}", "403 signature does not match"),
        ];
        for (pairs, body, expected) in cases {
            let got = verdict(verify(&shops(), &headers(pairs), body, "orders/create"));
            assert!(got.starts_with(expected), "{got}");
        }
        #[rustfmt::skip]
        let bodies: [(&[u8], &str); 5] = [
            (b"<html>", "400 body is not JSON"),
            (br#"{"line_items": []}"#, "400 order has no 'id'"),
            (br#"{"id": 1.5, "line_items": []}"#, "400 order has no 'id'"),
            (br#"{"id": 1, "line_items": {}}"#, "400 order has no 'line_items' list"),
            (b"[]", "400 order has no 'id' and no 'line_items' list"),
        ];
        for (body, expected) in bodies {
            let got = verdict(deliver(Some("orders/paid"), body));
            assert!(got.starts_with(expected), "{got}");
        }
    }

    #[test]
    fn malformed_line_items_do_not_reject_the_delivery() {
        let body = r#"{
          "id": "5608427798634", "email": "buyer@example.com", "financial_status": null,
          "cancelled_at": "2026-03-03T09:00:00Z", "refunds": {"not": "a list"},
          "line_items": [
            null, 5, "text",
            {"id": null, "sku": 12345, "properties": "oops"},
            {"id": "abc", "sku": ["x"], "properties": {"email": "cart@example.org"}},
            {"id": -7, "properties": [null, {"name": 5, "value": "x@y.z"}, {"name": "email", "value": 42}]}
          ]
        }"#;
        let order = parse("orders/updated", &serde_json::from_str(body).unwrap());
        let ids: Vec<&str> = order.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids, ["line-1", "line-2", "line-3", "line-4", "abc", "-7"]);
        assert_eq!(order.items[3].course, CourseRef::Sku("12345".into()));
        assert_eq!(order.items[4].course, CourseRef::None);
        assert_eq!(
            learners(&order)[4..],
            ["cart@example.org", "buyer@example.com"]
        );
        assert!(!order.paid && order.cancelled && order.refunded_items.is_empty());
    }

    #[test]
    fn never_panics() {
        let values = [
            json!(null),
            json!(0),
            json!(-1),
            json!(1e300),
            json!("s"),
            json!([]),
            json!({}),
            json!([null]),
            json!({"a": [1]}),
        ];
        for topic in ["orders/create", "orders/cancelled", "refunds/create", "x"] {
            for (v, w) in values
                .iter()
                .flat_map(|v| values.iter().map(move |w| (v, w)))
            {
                let item =
                    json!({"id": v, "properties": [w, {"name": "email", "value": v}], "sku": w});
                let refund = json!({"refund_line_items": [w, {"line_item_id": v}]});
                let bodies = [
                    json!({"id": v, "order_id": v, "line_items": [w, item], "refunds": [w, refund],
                           "customer": w, "email": v, "name": w, "refund_line_items": w}),
                    json!({"id": 1, "line_items": w, "refunds": v, "cancelled_at": w}),
                    v.clone(),
                ];
                for body in bodies {
                    let _ = deliver(Some(topic), body.to_string().as_bytes());
                }
            }
        }
    }
}
