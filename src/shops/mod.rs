//! Verifying and parsing shop deliveries: pure functions from a request's
//! headers and body to the domain's `Delivery`, or to the reason it is refused.

pub mod shopify;
pub mod woocommerce;

use axum::http::{HeaderMap, StatusCode};

use crate::domain::Delivery;

/// Why a delivery is refused, with the status it is answered with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the sender is not a shop we trust, or the signature is wrong.
    #[error("{0}")]
    Forbidden(String),
}

impl Rejection {
    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::BadRequest(_) => StatusCode::BAD_REQUEST,
            Rejection::Forbidden(_) => StatusCode::FORBIDDEN,
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

/// A header's value as text, if present and printable.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}
