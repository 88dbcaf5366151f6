//! The one road a request travels, whether a shop sent it, an operator
//! replays it or reconciliation fetched it: `shops` judges it, `store`
//! records it with everything its verdict implies.

use http::HeaderMap;

use crate::config::Config;
use crate::domain::{Judgement, Platform, Rejection, FETCHED_ENDPOINT_PREFIX};
use crate::shops::{self, Endpoint, Received};
use crate::store::{IntakePolicy, Outcome, RequestRecord, Store, StoreError};

/// How a request reached us, which says how it is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival<'a> {
    /// A delivery to one of the webhook endpoints: its signature decides.
    Webhook(Endpoint),
    /// An order we fetched from `shop`'s API with our credentials: trusted
    /// for that, never signed, and judged as the order's current state.
    Fetched { platform: Platform, shop: &'a str },
    /// A delivery to a webhook endpoint refused before it could be read as
    /// one (its framing is ambiguous): stored with that reason.
    Refused(Endpoint, Rejection),
}

impl Arrival<'_> {
    pub fn platform(&self) -> Platform {
        match self {
            Arrival::Webhook(endpoint) | Arrival::Refused(endpoint, _) => endpoint.platform,
            Arrival::Fetched { platform, .. } => *platform,
        }
    }
}

/// The endpoint a fetched order is stored under (`reconcile:shopify`).
pub fn fetched_endpoint(platform: Platform) -> String {
    format!("{FETCHED_ENDPOINT_PREFIX}{platform}")
}

/// Whether a stored request's endpoint says it was fetched, not delivered.
pub fn is_fetched_endpoint(endpoint: &str) -> bool {
    endpoint.starts_with(FETCHED_ENDPOINT_PREFIX)
}

/// Judges `record` as it arrived and stores it with its verdict, durably;
/// says how it was taken. A fetched order that brings nothing new is not
/// stored (see `RequestRecord::fetched`).
pub async fn take(
    store: &Store,
    config: &Config,
    policy: IntakePolicy,
    arrival: Arrival<'_>,
    headers: &HeaderMap,
    record: &RequestRecord,
) -> Result<Outcome, StoreError> {
    let judgement = match arrival {
        Arrival::Webhook(endpoint) => shops::judge(
            config,
            endpoint,
            &Received {
                headers,
                body: &record.body,
                size: record.body_size,
                truncated: record.body_truncated,
            },
        ),
        Arrival::Fetched { platform, shop } => {
            shops::judge_fetched(config, platform, shop, &record.body)
        }
        Arrival::Refused(_, rejection) => Judgement::Rejected(rejection),
    };
    store.take(record, judgement, policy).await
}
