//! The HTTP surface: webhook intake, health, metrics and the admin UI.

mod admin;
mod error;
mod framing;
mod health;
mod intake;
mod metrics;
mod request_span;
mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::{get, post, MethodRouter};
use axum::{Extension, Router};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

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
        .layer(TraceLayer::new_for_http())
        .layer(axum::middleware::from_fn(request_span::request_span))
        .with_state(state)
}
