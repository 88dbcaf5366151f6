//! What the operator commands do, as functions returning values; `commands`
//! runs each for the command line and prints the result (`render` makes it
//! text); `check` looks at the settings, the database and the LMS.

pub mod check;
pub mod commands;
pub mod healthcheck;
pub mod render;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;

use crate::config::Config;
use crate::domain::{LearnerEmail, Platform};
use crate::intake::{self, Arrival};
use crate::redact::Redactor;
use crate::shops;
use crate::store::{IntakePolicy, OrderDetail, RequestPage, RequestRecord, Store, StoreError};

/// Why an operator command did not do what was asked; says how the process exits.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// Bad usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// A problem found (not found, not allowed now, rejected): exit 1.
    #[error("{0}")]
    Problem(String),
    #[error(transparent)]
    Store(StoreError),
}

impl OperatorError {
    pub fn exit_code(&self) -> u8 {
        match self {
            OperatorError::Usage(_) => 2,
            OperatorError::Problem(_) | OperatorError::Store(_) => 1,
        }
    }
}

impl From<StoreError> for OperatorError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) | StoreError::Invalid(m) => OperatorError::Problem(m),
            e => OperatorError::Store(e),
        }
    }
}

/// An order, named by the shop's order number or id (`shop` where two
/// shops share it) or by our own id, with everything stored about it as it
/// may be shown: credential headers and configured secrets hidden.
pub async fn show_order(
    store: &Store,
    config: &Config,
    order: &str,
    shop: Option<&str>,
) -> Result<OrderDetail, OperatorError> {
    let id = store.find_order(order, shop).await?;
    let mut detail = store.order_detail(id).await?;
    let redactor = Redactor::from_config(config);
    for request in &mut detail.requests {
        *request = redactor.stored_request(request);
    }
    for item in &mut detail.items {
        for attempt in &mut item.attempts {
            attempt.detail = redactor.clean(&attempt.detail).into_owned();
        }
    }
    Ok(detail)
}

/// The rejected requests, newest first, as they may be shown: a configured
/// secret a sender wrote (in a shop's name, say) hidden.
pub async fn rejected_requests(
    store: &Store,
    config: &Config,
    limit: i64,
    unresolved: bool,
) -> Result<RequestPage, OperatorError> {
    let mut page = store.rejected_requests(limit, 0, unresolved).await?;
    let redactor = Redactor::from_config(config);
    for request in &mut page.requests {
        *request = redactor.request_view(request);
    }
    Ok(page)
}

/// Corrects a failed item's learner email; the item is queued again.
pub async fn set_email(store: &Store, item: i64, email: &str) -> Result<(), OperatorError> {
    let email = LearnerEmail::parse(email).map_err(OperatorError::Usage)?;
    Ok(store.set_email(item, &email).await?)
}

/// A stored request judged again and its new verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    pub replayed: i64,
    /// The request the shop sent, whose replay this is.
    pub original: i64,
    /// The new request (`None`: a fetched order with nothing new, not stored).
    pub request_id: Option<i64>,
    pub http_status: u16,
    /// As a shop's delivery is answered: `rejected`, `accepted`, `duplicate`…
    pub status: &'static str,
    /// Why it was refused.
    pub reason: Option<String>,
    /// Our id of the order it concerns.
    pub order_id: Option<i64>,
}

impl Replayed {
    /// Whether the replay was trusted (a ping or a taken delivery).
    pub fn trusted(&self) -> bool {
        self.http_status < 400
    }
}

/// Judges a stored request again with the current configuration (a shop's
/// secret fixed since, say), exactly as intake would, and stores the result
/// as a new request with everything it implies.
pub async fn replay(
    store: &Store,
    config: &Config,
    request_id: i64,
) -> Result<Replayed, OperatorError> {
    let stored = store.request(request_id).await?;
    let replays = stored.replays;
    let platform: Platform = stored.platform.parse().map_err(|_| {
        OperatorError::Problem(format!(
            "request {request_id} is of an unknown platform {}",
            stored.platform
        ))
    })?;
    let shop = stored.shop.clone().unwrap_or_default();
    let arrival = if intake::is_fetched_endpoint(&stored.endpoint) {
        Arrival::Fetched {
            platform,
            shop: &shop,
        }
    } else {
        Arrival::Webhook(shops::endpoint(&stored.endpoint).ok_or_else(|| {
            OperatorError::Problem(format!(
                "request {request_id} came to {}, which is not a webhook endpoint",
                stored.endpoint
            ))
        })?)
    };
    let headers = header_map(&stored.headers);
    let record = RequestRecord {
        platform,
        method: stored.method,
        endpoint: stored.endpoint,
        source_ip: stored.source_ip,
        envelope: shops::envelope(platform, &headers),
        headers: stored.headers,
        body: stored.body,
        body_size: stored.body_size,
        body_truncated: stored.body_truncated,
        fetched: matches!(arrival, Arrival::Fetched { .. }),
    };
    let outcome = intake::take(
        store,
        config,
        IntakePolicy::from_config(config),
        arrival,
        &headers,
        &record,
    )
    .await?;
    // Every replay names the chain's first request: the one the shop sent.
    let original = replays.replay_of.unwrap_or(request_id);
    if let Some(replay) = outcome.request_id() {
        store.link_replay(replay, original).await?;
    }
    Ok(Replayed {
        replayed: request_id,
        original,
        request_id: outcome.request_id(),
        http_status: outcome.http_status(),
        status: outcome.status(),
        reason: outcome.reason().map(str::to_owned),
        order_id: outcome.order_id(),
    })
}

/// Stored headers as the request carried them (any that no longer parse are left out).
fn header_map(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_headers_come_back_in_order() {
        let map = header_map(&[
            ("Content-Type".into(), "application/json".into()),
            ("x-forwarded-for".into(), "1.2.3.4".into()),
            ("x-forwarded-for".into(), "5.6.7.8".into()),
            ("bad header".into(), "dropped".into()),
        ]);
        assert_eq!(map.get("content-type").unwrap(), "application/json");
        let forwarded: Vec<_> = map.get_all("x-forwarded-for").iter().collect();
        assert_eq!(forwarded, ["1.2.3.4", "5.6.7.8"]);
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(OperatorError::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            OperatorError::from(StoreError::NotFound("x".into())).exit_code(),
            1
        );
    }
}
