//! `/healthz` (the process answers) and `/readyz` (it can do its work).

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if let Err(e) = state.store.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}\n"),
        );
    }
    match state.store.lms_status().await {
        Ok(status) => match status.misconfigured {
            Some(reason) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("LMS misconfigured: {reason}\n"),
            ),
            None => (StatusCode::OK, "ready\n".into()),
        },
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("database unavailable: {e}\n"),
        ),
    }
}
