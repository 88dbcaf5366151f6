//! The HTTP surface: webhook intake, health, metrics and the admin UI.

mod admin;
mod error;
mod framing;
mod health;
mod intake;
mod metrics;
mod request_span;
mod server;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::shops::{Endpoint, ENDPOINTS};
use crate::store::{IntakePolicy, Store};

pub use error::HttpError;
pub use server::{give_back_memory, serve};

/// The longest any request may take, body included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub intake_policy: IntakePolicy,
    pub metrics: Metrics,
    /// What request bodies may hold in memory, all together (`REQUEST_MEMORY`).
    pub request_memory: Arc<tokio::sync::Semaphore>,
}

fn webhook(endpoint: Endpoint) -> MethodRouter<AppState> {
    post(intake::receive).layer(Extension(endpoint))
}

/// Every route: the webhooks, the admin UI, health and metrics.
pub fn router(state: AppState) -> Router {
    routes(state, true)
}

/// Health and metrics only, for a process that runs workers alone.
pub fn monitoring_router(state: AppState) -> Router {
    routes(state, false)
}

fn routes(state: AppState, webhooks: bool) -> Router {
    let mut routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/status", get(health::status))
        .route("/metrics", get(metrics::metrics));
    if webhooks {
        let admin = admin::router(&state).unwrap_or_default();
        routes = ENDPOINTS
            .into_iter()
            .fold(routes, |router, endpoint| {
                router.route(endpoint.path, webhook(endpoint))
            })
            .merge(admin);
    }
    routes
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        // A 503 is an answer we chose and said why (a readiness probe asks
        // every few seconds): not an ERROR line each time.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(axum::middleware::from_fn(request_span::request_span))
        .with_state(state)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the
/// last address in `X-Forwarded-For` that is not a trusted proxy.
pub(crate) fn client_address(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
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
            client_address(proxy, &headers, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_address(stranger, &headers, &trusted), stranger);
        assert_eq!(client_address(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
