//! `GET /metrics`: Prometheus text. Counters come from this process; the
//! gauges about the work are read from the database, which every process shares.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use tracing::warn;

use super::AppState;
use crate::metrics::{StoreFigures, CONTENT_TYPE};
use crate::store::{Store, StoreError};

pub async fn metrics(State(state): State<AppState>) -> Response {
    match figures(&state.store, state.config.warnings().len()).await {
        Ok(figures) => (
            [(header::CONTENT_TYPE, CONTENT_TYPE)],
            state.metrics.encode(&figures),
        )
            .into_response(),
        Err(e) => {
            warn!(error = %e, "metrics: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("database unavailable: {e}\n"),
            )
                .into_response()
        }
    }
}

async fn figures(store: &Store, settings_warnings: usize) -> Result<StoreFigures, StoreError> {
    Ok(StoreFigures {
        settings_warnings: settings_warnings as i64,
        enrollments: store.count_enrollments().await?,
        oldest_pending: store.oldest_due_pending().await?,
        lms_misconfigured: store.lms_status().await?.misconfigured.is_some(),
        reconcile_last_success: store
            .reconciliations()
            .await?
            .into_iter()
            .map(|r| (r.platform, r.shop, r.last_success_at_ms))
            .collect(),
    })
}
