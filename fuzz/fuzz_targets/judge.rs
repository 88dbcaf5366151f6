//! The whole judgement of a request: fuzzed headers (names, values, count)
//! and body, to any endpoint. Half the inputs are signed correctly so the
//! fuzzer reaches the parsers; a trusted order must give each item its own id.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use edx_webhooks::domain::{Delivery, Judgement};
use edx_webhooks::shops::{judge, Received, ENDPOINTS};
use libfuzzer_sys::fuzz_target;

mod common;

const NAMES: [&str; 9] = [
    "content-type",
    "x-shopify-hmac-sha256",
    "x-shopify-shop-domain",
    "x-shopify-topic",
    "shopify-webhook-id",
    "x-wc-webhook-signature",
    "x-wc-webhook-source",
    "x-wc-webhook-topic",
    "x-unknown",
];

fuzz_target!(|data: &[u8]| {
    // Layout: endpoint, flags, header count, then per header a name byte, a
    // length byte and the value; the rest is the body.
    let [endpoint, flags, count, rest @ ..] = data else {
        return;
    };
    let endpoint = ENDPOINTS[*endpoint as usize % ENDPOINTS.len()];
    let mut rest = rest;
    let mut headers = HeaderMap::new();
    for _ in 0..(*count % 12) {
        let [name, len, tail @ ..] = rest else { break };
        let len = (*len as usize).min(tail.len());
        let (value, tail) = tail.split_at(len);
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(NAMES[*name as usize % NAMES.len()]), value);
        }
        rest = tail;
    }
    let body = rest;
    if flags & 1 == 1 {
        let signature = HeaderValue::from_str(&common::sign(body)).unwrap();
        headers.insert("x-shopify-hmac-sha256", signature.clone());
        headers.insert("x-wc-webhook-signature", signature);
        headers.insert("x-shopify-shop-domain", HeaderValue::from_static(common::DOMAIN));
        headers.insert("x-wc-webhook-source", HeaderValue::from_static(common::SOURCE));
    }
    if flags & 2 == 2 {
        headers.insert("content-type", HeaderValue::from_static("application/json"));
    }
    let received = Received {
        headers: &headers,
        body,
        size: body.len() as u64,
        truncated: flags & 4 == 4,
    };
    if let Judgement::Trusted(verified) = judge(&common::config(), endpoint, &received) {
        if let Delivery::Order(order) = verified.delivery {
            let mut ids = std::collections::HashSet::new();
            assert!(order.items.iter().all(|item| ids.insert(&item.id)));
        }
    }
});
