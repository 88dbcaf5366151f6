//! The webhook endpoints: read the body within the limit, have `shops` judge
//! the delivery, store it with its verdict, answer.

use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use http_body_util::BodyExt;
use serde_json::json;
use tracing::{info, warn};

use super::error::HttpError;
use super::AppState;
use crate::shops::{self, Endpoint, Judgement, Received};
use crate::store::RequestRecord;

/// How much of an oversized body is kept for the operator to look at.
const KEPT_OF_OVERSIZED: usize = 64 * 1024;

pub async fn receive(
    State(state): State<AppState>,
    Extension(endpoint): Extension<Endpoint>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let received = match read_body(body, &headers, state.config.max_body).await {
        Ok(received) => received,
        Err(reason) => return answer_rejected(StatusCode::BAD_REQUEST, &reason, None),
    };
    let record = RequestRecord {
        platform: endpoint.platform,
        method: method.to_string(),
        endpoint: uri.path().to_owned(),
        source_ip: Some(source_ip(peer.ip(), &headers, &state.config.trusted_proxies).to_string()),
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
    };
    let judgement = shops::judge(
        &state.config,
        endpoint,
        &Received {
            headers: &headers,
            body: &record.body,
            size: record.body_size,
            truncated: record.body_truncated,
        },
    );
    let verdict = match state
        .store
        .record_judgement(&record, &judgement, state.intake_policy)
        .await
    {
        Ok(verdict) => verdict,
        Err(e) => {
            warn!(error = %e, "could not store a delivery");
            return HttpError::from(e).into_response();
        }
    };
    let id = verdict.request_id;
    match &judgement {
        Judgement::Ping => info!(request = id, "WooCommerce ping answered"),
        Judgement::Rejected(rejection) => {
            info!(request = id, status = verdict.http_status, reason = %rejection, "delivery rejected")
        }
        Judgement::Trusted(verified) => {
            info!(request = id, shop = %verified.shop, topic = %verified.topic, status = %verdict.status, "delivery taken")
        }
    }
    match verdict.reason {
        Some(reason) => answer_rejected(
            StatusCode::from_u16(verdict.http_status).unwrap_or(StatusCode::BAD_REQUEST),
            &reason,
            Some(id),
        ),
        None => (
            StatusCode::OK,
            Json(json!({"status": verdict.status, "request": id})),
        )
            .into_response(),
    }
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
}

/// Reads at most `limit` bytes; past it, keeps the first 64 KiB and stops reading.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<ReceivedBody, String> {
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let keep = |mut bytes: Vec<u8>, seen: u64| {
        bytes.truncate(KEPT_OF_OVERSIZED);
        Ok(ReceivedBody {
            bytes,
            size: declared.unwrap_or(seen).max(seen),
            truncated: true,
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
            return keep(bytes, seen);
        }
        bytes.extend_from_slice(&data);
        if declared.is_some_and(|d| d > limit as u64) && bytes.len() >= KEPT_OF_OVERSIZED {
            return keep(bytes, seen);
        }
    }
    Ok(ReceivedBody {
        bytes,
        size: seen,
        truncated: false,
    })
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// last address in `X-Forwarded-For` that is not a trusted proxy.
fn source_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "1.2.3.4, 10.0.0.7".parse().unwrap());
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "5.6.7.8".parse().unwrap();
        assert_eq!(
            source_ip(proxy, &headers, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(source_ip(stranger, &headers, &trusted), stranger);
        assert_eq!(source_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
