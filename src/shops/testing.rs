//! What the parsers' tests share: signing a body as a shop does, building
//! headers, and reading a result back as text.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;

use super::{Rejection, Verified};
use crate::domain::{Delivery, LineItem, Order};

/// The base64 HMAC-SHA256 of `body` under `key`, as both shops sign.
pub fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    BASE64.encode(mac.finalize().into_bytes())
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let pair = |(k, v): &(&str, &str)| {
        (
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        )
    };
    pairs.iter().map(pair).collect()
}

/// The order a trusted delivery brought (a panic for anything else).
pub fn order_of(result: Result<Verified, Rejection>) -> Order {
    match result.expect("trusted").delivery {
        Delivery::Order(order) => order,
        other => panic!("not an order: {other:?}"),
    }
}

/// Each item's learner, or `error: reason`.
pub fn learners(order: &Order) -> Vec<String> {
    let learner = |item: &LineItem| match &item.learner {
        Ok(email) => email.to_string(),
        Err(reason) => format!("error: {reason}"),
    };
    order.items.iter().map(learner).collect()
}

/// Request headers, body, and the verdict expected.
pub type Case<'a> = (&'a [(&'a str, &'a str)], &'a [u8], &'a str);

/// `400 reason`, `403 reason`, or `ok`.
pub fn verdict(result: Result<Verified, Rejection>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(rejection) => format!("{} {rejection}", rejection.status()),
    }
}
