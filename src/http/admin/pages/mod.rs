//! The pages operators read, one file a page: the dashboard, the orders, an
//! order, the rejected requests, one stored request; here what they share.

mod dashboard;
mod order;
mod orders;
mod rejected;
mod request;

pub use dashboard::dashboard;
pub use order::{order, order_page, EmailError};
pub use orders::orders;
pub use rejected::rejected;
pub use request::request;

use serde::Deserialize;

use super::error::PageError;
use super::extract::Operator;
use super::view;
use crate::redact::Redactor;
use crate::store::StoredRequest;

/// What the last action did, shown once at the top of the page it led to.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    /// Failed items made pending again by a retry.
    retried: Option<u64>,
    /// A learner email was corrected.
    #[serde(default)]
    email_changed: bool,
}

impl Notice {
    pub(super) fn message(&self) -> Option<String> {
        if self.email_changed {
            return Some("The learner email was changed; the item is pending again.".into());
        }
        self.retried.map(|n| match n {
            0 => "Nothing to retry. Items without a valid learner email need their email \
                  corrected first."
                .into(),
            1 => "1 failed item is pending again.".into(),
            n => format!("{n} failed items are pending again."),
        })
    }
}

/// Where the list of one page links to its neighbours.
pub struct Pager {
    pub first: i64,
    pub last: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    pub(super) fn new(
        page: i64,
        per_page: i64,
        shown: usize,
        total: i64,
        href: impl Fn(i64) -> String,
    ) -> Pager {
        let first = (page - 1) * per_page + 1;
        Pager {
            first: if shown == 0 { 0 } else { first },
            last: first + shown as i64 - 1,
            total,
            prev: (page > 1).then(|| href(page - 1)),
            next: (page * per_page < total).then(|| href(page + 1)),
        }
    }
}

pub struct RequestBlock {
    pub id: i64,
    pub received: String,
    pub method: String,
    pub endpoint: String,
    pub source_ip: String,
    pub topic: String,
    pub http_status: u16,
    pub status_class: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub webhook_id: Option<String>,
    pub size: String,
    pub truncated: bool,
    pub headers: Vec<(String, String)>,
    /// The body as received, byte for byte (configured secrets replaced).
    pub body: String,
    /// A JSON body pretty-printed, beside the raw one.
    pub pretty: Option<String>,
    pub replay_of: Option<i64>,
    pub replayed_by: Option<i64>,
    /// For a refused request: the request of its chain that took it in.
    pub resolved_by: Option<i64>,
}

impl RequestBlock {
    pub(super) fn of(request: &StoredRequest, redactor: &Redactor) -> RequestBlock {
        let request = &redactor.stored_request(request);
        RequestBlock {
            id: request.id,
            received: view::time(request.received_at_ms),
            method: request.method.clone(),
            endpoint: request.endpoint.clone(),
            source_ip: request.source_ip.clone().unwrap_or_else(|| "—".into()),
            topic: request.topic.clone().unwrap_or_else(|| "no topic".into()),
            http_status: request.http_status,
            status_class: format!("s{}", request.http_status / 100),
            outcome: request.outcome.clone(),
            reason: request.reason.clone(),
            webhook_id: request.webhook_id.clone(),
            size: view::size(request.body_size),
            truncated: request.body_truncated,
            headers: request.headers.clone(),
            body: redactor.raw_body(&request.body),
            pretty: redactor.pretty_body(&request.body),
            replay_of: request.replays.replay_of,
            replayed_by: request.replays.replayed_by,
            resolved_by: request
                .replays
                .taken_in_by
                .filter(|_| request.replays.resolved(request.http_status)),
        }
    }
}

pub async fn not_found(_operator: Operator) -> PageError {
    PageError::NotFound("There is no such page.".into())
}

pub(super) fn platform_name(platform: &str) -> String {
    platform
        .parse::<crate::domain::Platform>()
        .map(|p| p.display_name().to_owned())
        .unwrap_or_else(|_| platform.to_owned())
}
