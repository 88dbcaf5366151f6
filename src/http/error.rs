//! The one error type of the HTTP layer, mapped to a status once.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The database could not be written: the sender should try again.
    #[error("storage unavailable: {0}")]
    Storage(#[from] StoreError),
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::Storage(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "5")],
                Json(
                    json!({"status": "unavailable", "reason": "storage unavailable, please retry"}),
                ),
            )
                .into_response(),
        }
    }
}
