//! `/healthz` (the process answers), `/readyz` (it can take deliveries: the
//! database is writable and migrated) and `/status` (whether something needs
//! an operator: for alerting, never for a load balancer).

use axum::extract::State;
use axum::http::StatusCode;

use super::intake::COMMIT_WAIT;
use super::AppState;
use crate::redact::Redactor;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// What needs an operator, each as one line; `Err` when the database does not answer.
async fn problems(state: &AppState) -> Result<Vec<String>, String> {
    let unavailable = |e| format!("database unavailable (unreachable or not migrated): {e}");
    // The LMS's condition is kept in the database: it can only be read from there.
    let reading = async {
        state.store.ping().await?;
        state.store.lms_status().await
    };
    let lms = tokio::time::timeout(COMMIT_WAIT, reading)
        .await
        .map_err(|_| format!("database unavailable: no answer within {COMMIT_WAIT:?}"))?
        .map_err(unavailable)?;
    let redactor = Redactor::from_config(&state.config);
    let mut lines = Vec::new();
    if let Some(reason) = lms.misconfigured {
        lines.push(format!(
            "LMS misconfigured: {}. Enrollments wait without spending attempts and resume by \
             themselves once the LMS answers correctly.",
            redactor.clean(&reason)
        ));
    }
    lines.extend(
        state
            .config
            .warnings()
            .iter()
            .map(|w| format!("settings: {w}")),
    );
    Ok(lines)
}

/// 200 while deliveries can be taken, whatever the LMS's state: a load
/// balancer must never stop the shops' deliveries because the LMS is down.
/// The body lists what needs an operator all the same.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    match problems(&state).await {
        Ok(lines) => (StatusCode::OK, report("ready", &lines)),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, report("not ready", &[e])),
    }
}

/// 200 `ok` when nothing needs an operator, else 503 with what does: the
/// endpoint to alert on.
pub async fn status(State(state): State<AppState>) -> (StatusCode, String) {
    match problems(&state).await {
        Ok(lines) if lines.is_empty() => (StatusCode::OK, "ok\n".into()),
        Ok(lines) => (
            StatusCode::SERVICE_UNAVAILABLE,
            report("attention needed", &lines),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            report("attention needed", &[e]),
        ),
    }
}

fn report(first: &str, lines: &[String]) -> String {
    let mut text = format!("{first}\n");
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    text
}
