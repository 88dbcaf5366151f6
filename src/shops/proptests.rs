//! Property tests of the shop parsers and the signature check: whatever a
//! sender puts in the headers and body, judging it never panics; a signed
//! order gives every line item an id of its own; a valid signature is always
//! accepted and a one-bit change of body or signature always refused.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

use super::testing::sign;
use super::{check_signature, judge, Endpoint, Received, ENDPOINTS};
use crate::config::{Config, Secret, ShopifyShop, WooCommerceShop};
use crate::domain::{Delivery, Judgement, LineItem};

const DOMAIN: &str = "prop-academy.myshopify.com";
const SOURCE: &str = "https://shop.example.org/";
const KEY: &str = "shpss_property_key";

fn config() -> Config {
    let mut config = Config::defaults();
    config.shopify = vec![ShopifyShop {
        domain: DOMAIN.into(),
        api_key: Some(Secret::new(KEY)),
        api: None,
    }];
    config.woocommerce = vec![WooCommerceShop {
        source: SOURCE.into(),
        secret: Some(Secret::new(KEY)),
        api: None,
    }];
    config
}

/// The headers a shop signs a delivery to `endpoint` with, for `topic`.
fn signed_headers(endpoint: Endpoint, topic: &str, body: &[u8]) -> HeaderMap {
    let signature = sign(KEY, body);
    let pairs: Vec<(&str, &str)> = match endpoint.platform {
        crate::domain::Platform::Shopify => vec![
            ("x-shopify-hmac-sha256", &signature),
            ("x-shopify-shop-domain", DOMAIN),
            ("x-shopify-topic", topic),
        ],
        crate::domain::Platform::WooCommerce => vec![
            ("x-wc-webhook-signature", &signature),
            ("x-wc-webhook-source", SOURCE),
            ("x-wc-webhook-topic", topic),
        ],
    };
    let mut headers: HeaderMap = pairs
        .into_iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers
}

fn judged(endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Judgement {
    judge(
        &config(),
        endpoint,
        &Received {
            headers,
            body,
            size: body.len() as u64,
            truncated: false,
        },
    )
}

fn any_endpoint() -> impl Strategy<Value = Endpoint> {
    (0..ENDPOINTS.len()).prop_map(|i| ENDPOINTS[i])
}

/// Text with anything Unicode allows, short or long.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[0-9]{1,30}",
        "\\PC{150,260}",
        Just(String::new()),
        Just("  ".into()),
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
    ]
}

fn any_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_text().prop_map(Value::String),
    ]
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    any_scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any_text(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A value where a field is expected: the usual type, or any other.
fn field(usual: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![4 => usual, 1 => any_json()].boxed()
}

fn line_item_id() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        3 => (0u64..4).prop_map(|n| Some(Value::from(n))),
        2 => (0u64..4).prop_map(|n| Some(Value::from(n.to_string()))),
        1 => any_text().prop_map(|s| Some(Value::String(s))),
        1 => Just(None),
        1 => any_json().prop_map(Some),
    ]
    .boxed()
}

fn line_item() -> impl Strategy<Value = Value> {
    (
        line_item_id(),
        field(prop_oneof![
            Just(Value::from("course-v1:Org+Prop+2026")),
            any_text().prop_map(Value::String),
        ]),
        field(any_text().prop_map(Value::String)),
    )
        .prop_map(|(id, sku, email)| {
            let mut item = Map::new();
            if let Some(id) = id {
                item.insert("id".into(), id);
            }
            item.insert("sku".into(), sku);
            item.insert(
                "properties".into(),
                Value::Array(vec![serde_json::json!({"name": "email", "value": email})]),
            );
            item.insert(
                "meta_data".into(),
                serde_json::json!([{"key": "_alg_wc_pif_global",
                    "value": [{"type": "email", "_value": email}]}]),
            );
            Value::Object(item)
        })
}

/// An order both platforms would take: an id and a list of line items,
/// every other field of any type.
fn order() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            any::<u64>().prop_map(Value::from),
            "[0-9A-Za-z]{1,20}".prop_map(Value::String)
        ],
        prop::collection::vec(line_item(), 0..12),
        field(any_text().prop_map(Value::String)),
        field(any_text().prop_map(Value::String)),
        field(any_scalar()),
        field(any_scalar()),
    )
        .prop_map(|(id, items, email, name, financial, paid)| {
            serde_json::json!({
                "id": id,
                "line_items": items,
                "email": email,
                "billing": {"email": email},
                "name": name,
                "number": name,
                "financial_status": financial,
                "date_paid_gmt": paid,
                "status": financial,
            })
        })
}

fn flip_bit(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_with_any_headers_are_judged_without_panic(
        endpoint in any_endpoint(),
        body in prop::collection::vec(any::<u8>(), 0..512),
        headers in prop::collection::vec(
            (prop::sample::select(vec![
                "content-type", "x-shopify-hmac-sha256", "shopify-hmac-sha256",
                "x-shopify-shop-domain", "x-shopify-topic", "x-shopify-webhook-id",
                "x-wc-webhook-signature", "x-wc-webhook-source", "x-wc-webhook-topic",
            ]), prop::collection::vec(any::<u8>(), 0..80)),
            0..8,
        ),
    ) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                map.append(name, value);
            }
        }
        let _ = judged(endpoint, &map, &body);
    }

    #[test]
    fn any_signed_json_is_judged_without_panic_and_its_items_keep_apart(
        endpoint in any_endpoint(),
        topic in prop::sample::select(vec![
            "orders/create", "orders/updated", "orders/cancelled", "refunds/create",
            "order.created", "order.updated", "order.deleted", "",
        ]),
        json in any_json(),
    ) {
        let body = json.to_string();
        let headers = signed_headers(endpoint, topic, body.as_bytes());
        if let Judgement::Trusted(verified) = judged(endpoint, &headers, body.as_bytes()) {
            if let Delivery::Order(order) = verified.delivery {
                assert_distinct_ids(&order.items);
            }
        }
    }

    #[test]
    fn a_signed_order_is_trusted_with_every_line_item_under_its_own_id(
        endpoint in any_endpoint(),
        order in order(),
    ) {
        let topic = match endpoint.platform {
            crate::domain::Platform::Shopify => "orders/create",
            crate::domain::Platform::WooCommerce => "order.created",
        };
        let body = order.to_string();
        let headers = signed_headers(endpoint, topic, body.as_bytes());
        match judged(endpoint, &headers, body.as_bytes()) {
            Judgement::Trusted(verified) => match verified.delivery {
                Delivery::Order(parsed) => {
                    let sent = order["line_items"].as_array().map_or(0, Vec::len);
                    prop_assert_eq!(parsed.items.len(), sent);
                    assert_distinct_ids(&parsed.items);
                }
                other => prop_assert!(false, "not an order: {other:?}"),
            },
            other => prop_assert!(false, "signed order not trusted: {other:?}"),
        }
    }

    #[test]
    fn a_valid_signature_is_accepted_and_a_flipped_bit_refused(
        key in "\\PC{1,64}",
        body in prop::collection::vec(any::<u8>(), 0..2048),
        bit in any::<usize>(),
    ) {
        let signature = sign(&key, &body);
        prop_assert!(check_signature(&key, &body, &signature).is_ok());

        if !body.is_empty() {
            let mut changed = body.clone();
            flip_bit(&mut changed, bit);
            prop_assert!(check_signature(&key, &changed, &signature).is_err());
        }

        let mut raw = BASE64.decode(&signature).unwrap();
        flip_bit(&mut raw, bit);
        prop_assert!(check_signature(&key, &body, &BASE64.encode(raw)).is_err());
    }

    #[test]
    fn a_signed_body_changed_by_one_bit_is_refused_by_the_judgement(
        endpoint in any_endpoint(),
        order in order(),
        bit in any::<usize>(),
    ) {
        let body = order.to_string().into_bytes();
        let headers = signed_headers(endpoint, "orders/create", &body);
        let mut changed = body.clone();
        flip_bit(&mut changed, bit);
        match judged(endpoint, &headers, &changed) {
            Judgement::Rejected(rejection) => {
                prop_assert_eq!(rejection.status(), 403, "{}", rejection)
            }
            other => prop_assert!(false, "changed body judged {other:?}"),
        }
    }
}

fn assert_distinct_ids(items: &[LineItem]) {
    let mut seen = std::collections::HashSet::new();
    for item in items {
        assert!(
            item.id.chars().count() <= LineItem::MAX_ID_CHARS,
            "id longer than kept: {}",
            item.id
        );
        assert!(
            seen.insert(&item.id),
            "line item id {} given twice",
            item.id
        );
    }
}
