//! The Shopify parser and signature check, against deliveries as Shopify
//! sends them (the payloads in `../fixtures`).

use serde_json::json;

use super::*;
use crate::config::Secret;
use crate::domain::{CourseKey, CourseRef};
use crate::shops::testing::{headers, learners, order_of, sign, verdict, Case};

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
        // Blank is no key, for the judgement as for `check`.
        shop("blank-key.myshopify.com", Some("  ")),
    ]
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
    order_of(deliver(Some(topic), order.to_string().as_bytes()))
}

/// An `orders/create` payload as Shopify sends it (abridged), for a guest checkout.
const ORDER: &str = include_str!("../fixtures/shopify_order.json");

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
    order["refunds"] =
        serde_json::from_str(include_str!("../fixtures/shopify_refunds.json")).unwrap();
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
    let refund = include_str!("../fixtures/shopify_refund.json");
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
    let blank_key = sign("  ", body);
    #[rustfmt::skip]
    let cases: [Case; 9] = [
        (&[(SHOP, "unknown.myshopify.com")], body, "400 missing X-Shopify-Hmac-Sha256"),
        (&[(SIG, &good)], body, "400 missing X-Shopify-Shop-Domain"),
        (&[(SIG, &good), (SHOP, "other.myshopify.com")], body, "403 shop other.myshopify.com is not configured"),
        (&[(SIG, &good), (SHOP, "keyless.myshopify.com")], body, "403 shop keyless.myshopify.com is not configured"),
        // An empty key must not verify even a body signed with the empty key.
        (&[(SIG, &empty_key), (SHOP, "empty-key.myshopify.com")], body, "403 shop empty-key.myshopify.com is not configured"),
        (&[(SIG, &blank_key), (SHOP, "blank-key.myshopify.com")], body, "403 shop blank-key.myshopify.com is not configured"),
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
    let body = include_str!("../fixtures/shopify_malformed_line_items.json");
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
            let item = json!({"id": v, "properties": [w, {"name": "email", "value": v}], "sku": w});
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
