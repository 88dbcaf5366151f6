//! A signed Shopify delivery with a fuzzed body: the parser must never panic.
#![no_main]

use edx_webhooks::shops::shopify;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let topic = common::topic(
        selector,
        &["orders/create", "orders/updated", "orders/paid", "orders/cancelled", "refunds/create"],
    );
    let signature = common::sign(body);
    let headers = common::headers(&[
        ("x-shopify-hmac-sha256", &signature),
        ("x-shopify-shop-domain", common::DOMAIN),
        ("x-shopify-topic", topic),
    ]);
    let _ = shopify::verify(&common::config().shopify, &headers, body, "orders/create");
});
