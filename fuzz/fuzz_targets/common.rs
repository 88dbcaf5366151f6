//! What the targets share: a configuration with one shop per platform, and
//! signing, so that fuzzed bodies get past the signature to the parser.

// Each target uses only part of what is shared.
#![allow(dead_code)]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use edx_webhooks::config::{Config, Secret, ShopifyShop, WooCommerceShop};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const DOMAIN: &str = "fuzz-academy.myshopify.com";
pub const SOURCE: &str = "https://shop.example.org/";
pub const KEY: &str = "shpss_fuzz_key";

pub fn config() -> Config {
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

pub fn sign(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

pub fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .filter_map(|(k, v)| Some((HeaderName::from_static(k), HeaderValue::from_str(v).ok()?)))
        .collect()
}

/// The topic a fuzz input starts with (its first byte picks one).
pub fn topic(selector: u8, topics: &[&'static str]) -> &'static str {
    topics[selector as usize % topics.len()]
}
