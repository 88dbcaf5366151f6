//! What a request was judged to be: `shops` decides, `store` records.

use super::Delivery;

/// What a request is, judged in the order SPEC §3 gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// WooCommerce's ping when a webhook is saved: answered 200, nothing to do.
    Ping,
    Rejected(Rejection),
    Trusted(Verified),
}

/// Why a delivery is refused, with the status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the sender is not a shop we trust, or the signature is wrong.
    #[error("{0}")]
    Forbidden(String),
    /// 413: the body is over the configured limit.
    #[error("{0}")]
    TooLarge(String),
}

impl Rejection {
    /// The HTTP status it is answered (and stored) with.
    pub fn status(&self) -> u16 {
        match self {
            Rejection::BadRequest(_) => 400,
            Rejection::Forbidden(_) => 403,
            Rejection::TooLarge(_) => 413,
        }
    }
}

/// A delivery whose signature checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The configured shop it came from (Shopify domain, lower-case; WooCommerce
    /// source as configured).
    pub shop: String,
    /// The topic header, or the one the path implies.
    pub topic: String,
    /// Shopify's `X-Shopify-Webhook-Id`: the same on every redelivery.
    pub webhook_id: Option<String>,
    pub delivery: Delivery,
}

/// What the request's headers say, for storing beside any verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub shop: Option<String>,
    pub topic: Option<String>,
    pub webhook_id: Option<String>,
}
