//! What an admin page answers when it cannot show what was asked: an HTML
//! page with the status, mapped once here.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// A form without its session's CSRF token, or with another one.
    #[error("this form has expired or did not come from this site: reload the page and try again")]
    Forbidden,
    #[error("the database could not be read: {0}")]
    Store(StoreError),
    #[error("the page could not be rendered: {0}")]
    Render(#[from] askama::Error),
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> PageError {
        match e {
            StoreError::NotFound(what) => PageError::NotFound(what),
            StoreError::Invalid(why) => PageError::BadRequest(why),
            other => PageError::Store(other),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
struct ErrorPage<'a> {
    status: StatusCode,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden => StatusCode::FORBIDDEN,
            PageError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "admin page failed");
        }
        let message = self.to_string();
        let page = ErrorPage {
            status,
            message: &message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message).into_response(),
        }
    }
}
