//! The one road a request travels, whether a shop sent it, an operator
//! replays it or reconciliation fetched it: `shops` judges it, `store`
//! records it with everything its verdict implies.

use axum::http::HeaderMap;

use crate::config::Config;
use crate::domain::{Judgement, Platform, FETCHED_ENDPOINT_PREFIX};
use crate::shops::{self, Endpoint, Received};
use crate::store::{IntakePolicy, RequestRecord, Store, StoreError, Verdict};

/// How a request reached us, which says how it is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival<'a> {
    /// A delivery to one of the webhook endpoints: its signature decides.
    Webhook(Endpoint),
    /// An order we fetched from `shop`'s API with our credentials: trusted
    /// for that, never signed, and judged as the order's current state.
    Fetched { platform: Platform, shop: &'a str },
}

impl Arrival<'_> {
    pub fn platform(&self) -> Platform {
        match self {
            Arrival::Webhook(endpoint) => endpoint.platform,
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

/// A request and how it was judged and stored.
#[derive(Debug, Clone)]
pub struct Taken {
    pub judgement: Judgement,
    pub verdict: Verdict,
}

/// Judges `record` as it arrived and stores it with its verdict, durably.
/// A fetched order that brings nothing new is not stored (see `RequestRecord::fetched`).
pub async fn take(
    store: &Store,
    config: &Config,
    policy: IntakePolicy,
    arrival: Arrival<'_>,
    headers: &HeaderMap,
    record: &RequestRecord,
) -> Result<Taken, StoreError> {
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
    };
    record_judged(store, policy, record, judgement).await
}

/// Stores a request judged already (refused before it could be read as a
/// delivery, e.g. for its framing) with its verdict.
pub async fn record_judged(
    store: &Store,
    policy: IntakePolicy,
    record: &RequestRecord,
    judgement: Judgement,
) -> Result<Taken, StoreError> {
    let verdict = store.record_judgement(record, &judgement, policy).await?;
    Ok(Taken { judgement, verdict })
}
