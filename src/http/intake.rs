//! The webhook endpoints: read the body within the limit, have `shops` judge
//! the delivery, store it with its verdict, answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::BodyExt;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};

use super::error::HttpError;
use super::framing::AmbiguousLength;
use super::{client_address, AppState};
use crate::domain::Rejection;
use crate::intake::{self, Arrival};
use crate::metrics::Verdict;
use crate::shops::{self, Endpoint};
use crate::store::{Outcome, RequestRecord, StoreError};

/// How long a delivery waits for the commit that stores it before the answer
/// is 503: within Shopify's 5 s, and never for as long as the database stays
/// unreachable. A write that commits later makes the redelivery a duplicate.
pub(super) const COMMIT_WAIT: Duration = Duration::from_secs(4);

/// How much of an oversized body is kept for the operator to look at.
const KEPT_OF_OVERSIZED: usize = 64 * 1024;

pub async fn receive(
    State(state): State<AppState>,
    Extension(endpoint): Extension<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let request = Incoming {
        endpoint,
        peer,
        method: parts.method,
        uri: parts.uri,
        ambiguous: parts.extensions.get::<AmbiguousLength>().is_some(),
        headers: parts.headers,
    };
    let (verdict, response) = take(&state, request, body).await;
    state
        .metrics
        .webhook_answered(endpoint.platform, verdict, started.elapsed());
    response
}

/// A request's parts, as the intake handler receives them.
struct Incoming {
    endpoint: Endpoint,
    peer: SocketAddr,
    method: Method,
    uri: Uri,
    /// It carried both `Content-Length` and `Transfer-Encoding`.
    ambiguous: bool,
    headers: HeaderMap,
}

/// Judges, stores and answers one request; says how, for the metrics.
async fn take(state: &AppState, request: Incoming, body: Body) -> (Verdict, Response) {
    let Incoming {
        endpoint,
        peer,
        method,
        uri,
        ambiguous,
        headers,
    } = request;
    let limit = state.config.max_body;
    let received = match read_body(body, &headers, limit, &state.request_memory).await {
        Ok(received) => received,
        Err(reason) => {
            info!(status = 400, reason = %reason, "delivery rejected before it was read");
            return (
                Verdict::Rejected(400),
                answer_rejected(StatusCode::BAD_REQUEST, &reason, None),
            );
        }
    };
    let record = RequestRecord {
        platform: endpoint.platform,
        method: method.to_string(),
        endpoint: uri.path().to_owned(),
        source_ip: Some(
            client_address(peer.ip(), &headers, &state.config.trusted_proxies).to_string(),
        ),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_size: received.size,
        body_truncated: received.truncated,
        body: received.bytes,
        envelope: shops::envelope(endpoint.platform, &headers),
        fetched: false,
    };
    let arrival = if ambiguous {
        Arrival::Refused(
            endpoint,
            Rejection::BadRequest(AmbiguousLength::REASON.into()),
        )
    } else {
        Arrival::Webhook(endpoint)
    };
    let policy = state.intake_policy.clone();
    let taking = intake::take(
        &state.store,
        &state.config,
        policy,
        arrival,
        &headers,
        &record,
    );
    let taken = tokio::time::timeout(COMMIT_WAIT, taking)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Write(format!(
                "the database did not commit within {COMMIT_WAIT:?}"
            )))
        });
    let outcome = match taken {
        Ok(outcome) => outcome,
        Err(e) => {
            warn!(error = %e, "could not store a delivery; answered 503 so that the shop retries");
            return (Verdict::Unavailable, HttpError::from(e).into_response());
        }
    };
    let id = outcome.request_id();
    let verdict = match &outcome {
        Outcome::Ping { .. } => {
            info!(request = id, "WooCommerce ping answered");
            Verdict::Ping
        }
        Outcome::Rejected { status, reason, .. } => {
            info!(request = id, status, shop = record.envelope.shop.as_deref(), reason = %reason, "delivery rejected");
            Verdict::Rejected(*status)
        }
        Outcome::Taken(taken) => {
            info!(
                request = id,
                order = taken.order_id,
                shop = %taken.shop,
                shop_order = taken.shop_order.as_deref(),
                topic = %taken.topic,
                status = taken.acceptance.as_str(),
                "delivery taken"
            );
            Verdict::Taken(taken.acceptance)
        }
    };
    let response = match outcome.reason() {
        Some(reason) => answer_rejected(
            StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::BAD_REQUEST),
            reason,
            id,
        ),
        None => (
            StatusCode::OK,
            Json(json!({"status": outcome.status(), "request": id})),
        )
            .into_response(),
    };
    (verdict, response)
}

fn answer_rejected(status: StatusCode, reason: &str, id: Option<i64>) -> Response {
    (
        status,
        Json(json!({"status": "rejected", "reason": reason, "request": id})),
    )
        .into_response()
}

struct ReceivedBody {
    bytes: Vec<u8>,
    size: u64,
    truncated: bool,
    /// The share of `REQUEST_MEMORY` the bytes hold, until they are stored.
    _held: Option<OwnedSemaphorePermit>,
}

/// Reads at most `limit` bytes; past it, keeps the first 64 KiB and stops
/// reading. The bytes kept are taken out of `memory`, shared by all requests:
/// while it is spent, reading waits (within the request's time limit).
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
    memory: &Arc<Semaphore>,
) -> Result<ReceivedBody, String> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A declared length is reserved at once, so that requests do not each
    // hold a part while waiting for the rest.
    let mut held = MemoryShare::new(memory.clone());
    if let Some(declared) = declared {
        held.reserve(declared.min(limit as u64) as usize).await;
    }
    let keep = |mut bytes: Vec<u8>, seen: u64, held: MemoryShare| {
        bytes.truncate(KEPT_OF_OVERSIZED);
        Ok(ReceivedBody {
            bytes,
            size: declared.unwrap_or(seen).max(seen),
            truncated: true,
            _held: held.permit,
        })
    };
    let mut bytes = Vec::new();
    let mut seen: u64 = 0;
    let mut body = body;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("could not read the body: {e}"))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len() as u64;
        if seen > limit as u64 {
            let room = KEPT_OF_OVERSIZED.saturating_sub(bytes.len());
            bytes.extend_from_slice(&data[..room.min(data.len())]);
            return keep(bytes, seen, held);
        }
        held.reserve(bytes.len() + data.len()).await;
        bytes.extend_from_slice(&data);
        if declared.is_some_and(|d| d > limit as u64) && bytes.len() >= KEPT_OF_OVERSIZED {
            return keep(bytes, seen, held);
        }
    }
    Ok(ReceivedBody {
        bytes,
        size: seen,
        truncated: false,
        _held: held.permit,
    })
}

/// Bytes of the shared request memory one request holds.
struct MemoryShare {
    memory: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl MemoryShare {
    fn new(memory: Arc<Semaphore>) -> MemoryShare {
        MemoryShare {
            memory,
            permit: None,
            bytes: 0,
        }
    }

    /// Holds at least `total` bytes, waiting for them when they are spent.
    async fn reserve(&mut self, total: usize) {
        let Some(more) = total.checked_sub(self.bytes).filter(|&n| n > 0) else {
            return;
        };
        let more_permits = u32::try_from(more).unwrap_or(u32::MAX);
        let Ok(permit) = self.memory.clone().acquire_many_owned(more_permits).await else {
            return;
        };
        self.bytes += more_permits as usize;
        match &mut self.permit {
            Some(held) => held.merge(permit),
            None => self.permit = Some(permit),
        }
    }
}
