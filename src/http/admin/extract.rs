//! Extractors every admin handler starts from: the logged-in operator, and a
//! form whose CSRF token has been checked.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::Method;
use axum::response::{IntoResponse, Redirect, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::de::DeserializeOwned;

use super::auth::{cookie, tokens_match, SESSION_COOKIE};
use super::error::PageError;
use super::AdminState;

/// A request from a logged-in browser. Without one, a page redirects (303)
/// to the login, which comes back to the page afterwards.
pub struct Operator {
    pub session_id: String,
    /// This session's CSRF token, for the forms of the page.
    pub csrf: String,
}

impl FromRequestParts<AdminState> for Operator {
    type Rejection = Redirect;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Operator, Redirect> {
        let found = match cookie(&parts.headers, SESSION_COOKIE) {
            Some(id) => state.auth.session(id).await.map(|session| (id, session)),
            None => None,
        };
        match found {
            Some((id, session)) => Ok(Operator {
                session_id: id.to_owned(),
                csrf: session.csrf,
            }),
            None if parts.method == Method::GET => {
                let here = parts
                    .uri
                    .path_and_query()
                    .map(|pq| pq.as_str())
                    .unwrap_or("/admin");
                let next = utf8_percent_encode(here, NON_ALPHANUMERIC);
                Err(Redirect::to(&format!("/admin/login?next={next}")))
            }
            None => Err(Redirect::to("/admin/login")),
        }
    }
}

/// A posted form (`application/x-www-form-urlencoded`) from a logged-in
/// operator, carrying the session's token in its `csrf` field; otherwise 403.
pub struct CsrfForm<T> {
    pub operator: Operator,
    pub fields: T,
}

impl<T: DeserializeOwned> FromRequest<AdminState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AdminState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let operator = Operator::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let given = url::form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == "csrf")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        if !tokens_match(&given, &operator.csrf) {
            return Err(PageError::Forbidden.into_response());
        }
        let fields = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| PageError::BadRequest(format!("unreadable form: {e}")).into_response())?;
        Ok(CsrfForm { operator, fields })
    }
}
