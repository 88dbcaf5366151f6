//! The WooCommerce parser and signature check, against deliveries as
//! WooCommerce sends them (the payloads in `../fixtures`).

use serde_json::json;

use super::*;
use crate::config::Secret;
use crate::domain::{CourseKey, CourseRef};
use crate::shops::testing::{headers, learners, order_of, sign, verdict, Case};

const SOURCE_URL: &str = "https://shop.example.com/";
const SECRET: &str = "wc-secret-9f8e7d";
const SIG: &str = "X-WC-Webhook-Signature";
const SRC: &str = "X-WC-Webhook-Source";

fn shops() -> Vec<WooCommerceShop> {
    let shop = |source: &str, secret: Option<&str>| WooCommerceShop {
        source: source.into(),
        secret: secret.map(Secret::new),
        api: None,
    };
    vec![
        shop("https://Shop.Example.com", Some(SECRET)),
        shop("https://nosecret.example.com/", None),
        shop("https://empty.example.com/", Some("")),
        shop("https://example.org/shop", Some(SECRET)),
    ]
}

/// A delivery as WooCommerce signs it, for `topic` (None: no topic header).
fn deliver(topic: Option<&str>, body: &[u8]) -> Result<Verified, Rejection> {
    let signature = sign(SECRET, body);
    let mut pairs = vec![
        (SRC, SOURCE_URL),
        (SIG, signature.as_str()),
        ("X-WC-Webhook-ID", "3"),
        (
            "X-WC-Webhook-Delivery-ID",
            "a1b7f0c2e0d64f0e9b1b5c0e3f1d2a4b",
        ),
        ("X-WC-Webhook-Resource", "order"),
    ];
    pairs.extend(topic.map(|t| ("X-WC-Webhook-Topic", t)));
    verify(&shops(), &headers(&pairs), body, "order.created")
}

fn parse(topic: &str, order: &Value) -> Order {
    order_of(deliver(Some(topic), order.to_string().as_bytes()))
}

/// An `order.created` payload as WooCommerce sends it (abridged).
const ORDER: &str = include_str!("../fixtures/woocommerce_order.json");

fn order_json() -> Value {
    serde_json::from_str(ORDER).unwrap()
}

#[test]
fn a_paid_order_becomes_an_order() {
    let verified = deliver(Some("order.created"), ORDER.as_bytes()).unwrap();
    assert_eq!(verified.shop, "https://Shop.Example.com");
    assert_eq!(
        (verified.topic.as_str(), verified.webhook_id),
        ("order.created", None)
    );
    let Delivery::Order(order) = verified.delivery else {
        panic!("not an order")
    };
    assert_eq!((order.id.as_str(), order.number.as_str()), ("727", "#727"));
    assert_eq!(order.buyer_email.as_deref(), Some("buyer@example.com"));
    assert!(order.paid && !order.cancelled && order.refunded_items.is_empty());
    let ids: Vec<&str> = order.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["315", "316", "317", "318", "319"]);
    let key = CourseKey::parse("course-v1:edX+DemoX+Demo_Course").unwrap();
    assert_eq!(order.items[0].course, CourseRef::Key(key));
    assert_eq!(order.items[1].course, CourseRef::Sku("PY-101".into()));
    for item in &order.items[2..] {
        assert_eq!((item.sku.as_str(), &item.course), ("", &CourseRef::None));
    }
    // The first email field wins, whatever its title; an empty one is skipped;
    // an item without one gets the buyer.
    let expected = [
        "learner@example.org",
        "global@example.org",
        "buyer@example.com",
        "buyer@example.com",
        "buyer@example.com",
    ];
    assert_eq!(learners(&order), expected);
}

#[test]
fn status_payment_and_number() {
    let mut order = order_json();
    order["date_paid_gmt"] = Value::Null;
    order["status"] = json!("pending");
    order["number"] = Value::Null;
    let parsed = parse("order.updated", &order);
    assert!(!parsed.paid && !parsed.cancelled);
    assert_eq!(parsed.number, "#727");
    order["date_paid_gmt"] = json!("");
    order["number"] = json!("WC-2026-0042");
    for (status, cancelled) in [("cancelled", true), ("refunded", true), ("on-hold", false)] {
        order["status"] = json!(status);
        let parsed = parse("order.restored", &order);
        assert_eq!(parsed.cancelled, cancelled, "{status}");
        assert!(!parsed.paid);
        assert_eq!(parsed.number, "#WC-2026-0042");
    }
}

#[test]
fn an_item_without_a_valid_email_fails_alone() {
    let mut order = order_json();
    order["billing"]["email"] = json!("");
    order["line_items"][0]["meta_data"][1]["value"][2]["_value"] = json!("learner at example");
    let parsed = parse("order.created", &order);
    assert_eq!(parsed.buyer_email, None);
    let learners = learners(&parsed);
    assert_eq!(
        learners[0],
        "error: invalid learner email 'learner at example'"
    );
    assert_eq!(learners[1], "global@example.org");
    assert_eq!(learners[2], format!("error: {NO_LEARNER}"));
}

#[test]
fn odd_meta_values_do_not_break_parsing() {
    let body = include_str!("../fixtures/woocommerce_odd_meta.json");
    let parsed = parse("order.updated", &serde_json::from_str(body).unwrap());
    assert!(!parsed.paid && !parsed.cancelled);
    assert_eq!(parsed.items[0].id, "line-1");
    assert_eq!(
        learners(&parsed)[2..],
        [format!("error: {NO_LEARNER}"), "gap@example.org".into()]
    );
}

#[test]
fn topics() {
    assert_eq!(
        deliver(None, ORDER.as_bytes()).unwrap().topic,
        "order.created"
    );
    let deleted = deliver(Some("order.deleted"), br#"{"id": 727}"#).unwrap();
    assert_eq!(
        deleted.delivery,
        Delivery::Ignored {
            topic: "order.deleted".into()
        }
    );
    let other = deliver(Some("product.updated"), b"[]").unwrap();
    assert_eq!(
        other.delivery,
        Delivery::Ignored {
            topic: "product.updated".into()
        }
    );
}

#[test]
fn envelope_and_ping() {
    let h = headers(&[
        (SRC, SOURCE_URL),
        ("X-WC-Webhook-Topic", "order.updated"),
        ("X-WC-Webhook-Delivery-ID", "abc"),
    ]);
    let expected = Envelope {
        shop: Some(SOURCE_URL.into()),
        topic: Some("order.updated".into()),
        webhook_id: None,
    };
    assert_eq!(envelope(&h), expected);
    assert!(is_ping(b"webhook_id=3"));
    assert!(is_ping(b"foo=1&webhook_id=12"));
    for not_ping in [&b"webhook_id="[..], b"", b"{\"webhook_id\": 3}", b"id=3"] {
        assert!(!is_ping(not_ping));
    }
}

#[test]
fn sources_match_with_or_without_a_trailing_slash() {
    let body = br#"{"id": 1, "line_items": []}"#;
    let signature = sign(SECRET, body);
    for (source, configured) in [
        ("https://shop.example.com/", "https://Shop.Example.com"),
        ("https://SHOP.example.com", "https://Shop.Example.com"),
        ("https://example.org/shop/", "https://example.org/shop"),
        // The settings' definition of the same shop: default port dropped.
        ("https://shop.example.com:443/", "https://Shop.Example.com"),
        ("HTTPS://example.org:443/shop", "https://example.org/shop"),
    ] {
        let h = headers(&[(SRC, source), (SIG, &signature)]);
        let verified = verify(&shops(), &h, body, "order.created").unwrap();
        assert_eq!(verified.shop, configured, "{source}");
    }
    let h = headers(&[(SRC, "https://example.org/"), (SIG, &signature)]);
    let got = verdict(verify(&shops(), &h, body, "order.created"));
    assert_eq!(got, "403 source https://example.org/ is not configured");
    let h = headers(&[(SRC, "https://shop.example.com:8443/"), (SIG, &signature)]);
    assert!(verify(&shops(), &h, body, "order.created").is_err());
}

#[test]
fn rejections_in_order() {
    let body = ORDER.as_bytes();
    let (good, wrong_key, empty_key) = (sign(SECRET, body), sign("other", body), sign("", body));
    #[rustfmt::skip]
    let cases: [Case; 8] = [
        (&[(SRC, "https://unknown.example/")], body, "400 missing X-WC-Webhook-Signature"),
        (&[(SIG, &good)], body, "400 missing X-WC-Webhook-Source"),
        (&[(SIG, &good), (SRC, "https://other.example/")], body, "403 source https://other.example/ is not configured"),
        (&[(SIG, &good), (SRC, "https://nosecret.example.com")], body, "403 source https://nosecret.example.com is not configured"),
        // An empty secret must not verify even a body signed with the empty secret.
        (&[(SIG, &empty_key), (SRC, "https://empty.example.com/")], body, "403 source https://empty.example.com/ is not configured"),
        (&[(SIG, "%%%"), (SRC, SOURCE_URL)], body, "403 signature is not valid base64"),
        (&[(SIG, &wrong_key), (SRC, SOURCE_URL)], body, "403 signature does not match"),
        (&[(SIG, &good), (SRC, SOURCE_URL)], b"{}", "403 signature does not match"),
    ];
    for (pairs, body, expected) in cases {
        let got = verdict(verify(&shops(), &headers(pairs), body, "order.created"));
        assert!(got.starts_with(expected), "{got}");
    }
    #[rustfmt::skip]
    let bodies: [(&[u8], &str); 5] = [
        (b"webhook_id=3", "400 body is not JSON"),
        (br#"{"line_items": []}"#, "400 order has no 'id'"),
        (br#"{"id": 727}"#, "400 order has no 'line_items' list"),
        (br#"{"id": 727, "line_items": null}"#, "400 order has no 'line_items' list"),
        (br#""text""#, "400 order has no 'id' and no 'line_items' list"),
    ];
    for (body, expected) in bodies {
        let got = verdict(deliver(Some("order.updated"), body));
        assert!(got.starts_with(expected), "{got}");
    }
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
    for (v, w) in values
        .iter()
        .flat_map(|v| values.iter().map(move |w| (v, w)))
    {
        let field = json!({"type": "email", "_value": w});
        let meta = json!([w, {"value": w}, {"value": [w, field]}, {"value": {"0": field}}]);
        let item = json!({"id": v, "sku": w, "meta_data": meta});
        let bodies = [
            json!({"id": v, "number": w, "billing": w, "status": v, "date_paid_gmt": w,
                   "line_items": [w, item]}),
            json!({"id": 1, "line_items": w, "billing": {"email": v}}),
            v.clone(),
        ];
        for body in bodies {
            let _ = deliver(Some("order.updated"), body.to_string().as_bytes());
        }
    }
}
