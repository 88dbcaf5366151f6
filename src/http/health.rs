//! `/healthz` (the process answers) and `/readyz` (it can do its work; the
//! body says what stands in the way).

use axum::extract::State;
use axum::http::StatusCode;

use super::AppState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    // The LMS's condition is kept in the database: it can only be read from there.
    let status = match state.store.ping().await {
        Ok(()) => state.store.lms_status().await,
        Err(e) => Err(e),
    };
    let problem = match status {
        Err(e) => format!("database unavailable (unreachable or not migrated): {e}"),
        Ok(status) => match status.misconfigured {
            None => return (StatusCode::OK, "ready\n".into()),
            Some(reason) => format!(
                "LMS misconfigured: {reason}\nEnrollments wait without spending attempts and \
                 resume by themselves once the LMS answers correctly."
            ),
        },
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready\n{problem}\n"),
    )
}
