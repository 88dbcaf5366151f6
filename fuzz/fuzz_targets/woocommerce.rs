//! A signed WooCommerce delivery with a fuzzed body: the parser must never panic.
#![no_main]

use edx_webhooks::shops::woocommerce;
use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let topic = common::topic(selector, &["order.created", "order.updated", "order.restored"]);
    let signature = common::sign(body);
    let headers = common::headers(&[
        ("x-wc-webhook-signature", &signature),
        ("x-wc-webhook-source", common::SOURCE),
        ("x-wc-webhook-topic", topic),
    ]);
    let _ = woocommerce::verify(&common::config().woocommerce, &headers, body, "order.created");
    let _ = woocommerce::is_ping(body);
});
