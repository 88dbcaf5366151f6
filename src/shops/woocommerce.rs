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

    /// An `order.created` payload as WooCommerce sends it (abridged).
    const ORDER: &str = r##"{
      "id": 727, "parent_id": 0, "number": "727", "order_key": "wc_order_Q3oZ5fW1xZ9tA",
      "created_via": "checkout", "version": "9.6.0", "status": "processing", "currency": "EUR",
      "date_created": "2026-03-02T16:30:52", "date_created_gmt": "2026-03-02T15:30:52",
      "date_modified": "2026-03-02T16:31:10", "date_modified_gmt": "2026-03-02T15:31:10",
      "discount_total": "0.00", "shipping_total": "0.00", "total": "217.00", "total_tax": "0.00",
      "prices_include_tax": false, "customer_id": 0, "customer_ip_address": "203.0.113.7",
      "customer_note": "",
      "billing": {"first_name": "Ada", "last_name": "Lovelace", "company": "",
                  "address_1": "1 Main St", "city": "Berlin", "postcode": "10115",
                  "country": "DE", "email": "buyer@example.com", "phone": ""},
      "shipping": {"first_name": "", "last_name": "", "country": ""},
      "payment_method": "stripe", "payment_method_title": "Credit card",
      "transaction_id": "pi_3QxYz", "date_paid": "2026-03-02T16:31:10",
      "date_paid_gmt": "2026-03-02T15:31:10", "date_completed": null, "date_completed_gmt": null,
      "cart_hash": "5b3f1c9e",
      "meta_data": [{"id": 4170, "key": "is_vat_exempt", "value": "no"}],
      "line_items": [
        {
          "id": 315, "name": "Demo Course", "product_id": 93, "variation_id": 0, "quantity": 1,
          "tax_class": "", "subtotal": "99.00", "subtotal_tax": "0.00", "total": "99.00",
          "total_tax": "0.00", "taxes": [], "sku": "course-v1:edX+DemoX+Demo_Course", "price": 99,
          "image": {"id": "", "src": ""}, "parent_name": null,
          "meta_data": [
            {"id": 2901, "key": "_alg_wc_pif_global", "value": [],
             "display_key": "_alg_wc_pif_global", "display_value": []},
            {"id": 2902, "key": "_alg_wc_pif_local", "value": [
               {"title": "Phone", "type": "tel", "_value": "+49 30 1234567",
                "required": "no", "_field_nr": 1, "_scope": "local"},
               {"title": "CV", "type": "file", "_field_nr": 2, "_scope": "local",
                "_value": {"name": "cv.pdf", "type": "application/pdf", "_tmp_name": "/tmp/x"}},
               {"title": "Who takes this course?", "type": "email",
                "_value": "learner@example.org", "required": "yes", "_field_nr": 3, "_scope": "local"},
               {"title": "Second learner", "type": "email",
                "_value": "second@example.org", "required": "no", "_field_nr": 4, "_scope": "local"}
             ], "display_key": "_alg_wc_pif_local", "display_value": ""},
            {"id": 2903, "key": "gift_note", "value": "Happy birthday!",
             "display_key": "Gift note", "display_value": "Happy birthday!"}
          ]
        },
        {
          "id": 316, "name": "Python 101", "product_id": 94, "quantity": 1, "total": "99.00",
          "sku": "PY-101", "price": 99,
          "meta_data": [
            {"id": 2904, "key": "pa_format", "value": "online",
             "display_key": "Format", "display_value": "Online"},
            {"id": 2905, "key": "_tags", "value": ["beginner", "python"]},
            {"id": 2906, "key": "_wcpa_data",
             "value": {"section": {"fields": [{"type": "email", "value": "no@example.org"}]}}},
            {"id": 2907, "key": "_alg_wc_pif_local", "value": [
               {"title": "Learner email", "type": "email", "_value": "", "_field_nr": 1}]},
            {"id": 2908, "key": "_alg_wc_pif_global", "value": [
               {"title": "E-mail", "type": "email", "_value": "global@example.org", "_field_nr": 1}]}
          ]
        },
        {"id": 317, "name": "Course workbook", "product_id": 95, "quantity": 1, "sku": "",
         "meta_data": []},
        {"id": 318, "name": "Deleted product", "product_id": 0, "quantity": 1, "sku": null,
         "meta_data": []},
        {"id": 319, "name": "Gift wrap", "product_id": 96, "quantity": 1}
      ],
      "tax_lines": [], "shipping_lines": [], "fee_lines": [], "coupon_lines": [], "refunds": [],
      "payment_url": "https://shop.example.com/checkout/order-pay/727/?pay_for_order=true",
      "is_editable": false, "needs_payment": false, "needs_processing": true,
      "currency_symbol": "€",
      "_links": {"self": [{"href": "https://shop.example.com/wp-json/wc/v3/orders/727"}]}
    }"##;

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
        let body = r#"{
          "id": "728", "billing": null, "status": 5, "date_paid_gmt": 0,
          "line_items": [
            null, "x",
            {"id": 1, "meta_data": {"not": "a list"}},
            {"id": 2, "meta_data": [
              null, 3, {"key": "k"}, {"key": "k", "value": null},
              {"key": "k", "value": [1, "a", null, []]},
              {"key": "k", "value": [{"type": 5, "_value": "a@b.co"},
                                     {"type": "email", "_value": ["x"]}]},
              {"key": "_alg_wc_pif_local",
               "value": {"1": {"type": "EMAIL", "_value": "gap@example.org"}}}
            ]}
          ]
        }"#;
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
        let (good, wrong_key, empty_key) =
            (sign(SECRET, body), sign("other", body), sign("", body));
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
}
