//! The operators' web UI at `/admin` (SPEC §6): server-rendered pages behind a
//! password login, every form CSRF-checked, no JavaScript. Without an admin
//! password configured it is not mounted at all, so every `/admin` path is 404.

mod actions;
mod auth;
mod error;
mod extract;
mod login;
mod pages;
mod view;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::header::{self, HeaderValue};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::AppState;
use crate::config::Config;
use crate::store::Store;
use auth::{Auth, Credential};

/// Admin forms are a few fields.
const MAX_FORM_BODY: usize = 64 * 1024;

#[derive(Clone)]
pub struct AdminState {
    store: Store,
    config: Arc<Config>,
    auth: Arc<Auth>,
}

/// The page header's navigation, on every page but the login.
pub struct Nav {
    /// The session's CSRF token, for the logout button.
    pub csrf: String,
    /// Which tab is highlighted: `dashboard`, `orders` or `rejected`.
    pub section: &'static str,
}

impl Nav {
    fn new(operator: extract::Operator, section: &'static str) -> Nav {
        Nav {
            csrf: operator.csrf,
            section,
        }
    }
}

/// A form whose only field is its CSRF token (a button).
#[derive(Deserialize)]
pub struct NoFields {}

/// The admin routes, or `None` when no admin password is configured.
pub fn router(state: &AppState) -> Option<Router<AppState>> {
    let credential = Credential::from_config(&state.config)?;
    let admin = AdminState {
        store: state.store.clone(),
        config: state.config.clone(),
        auth: Arc::new(Auth::new(credential, state.store.clone())),
    };
    let routes = Router::new()
        .route("/admin", get(pages::dashboard))
        .route("/admin/", get(|| async { Redirect::to("/admin") }))
        .route("/admin/login", get(login::form).post(login::submit))
        .route("/admin/logout", post(login::logout))
        .route("/admin/orders", get(pages::orders))
        .route("/admin/orders/{id}", get(pages::order))
        .route("/admin/orders/{id}/retry", post(actions::retry_order))
        .route(
            "/admin/orders/{order}/items/{item}/email",
            post(actions::set_email),
        )
        .route("/admin/retry-failed", post(actions::retry_all_failed))
        .route("/admin/rejected", get(pages::rejected))
        .route("/admin/requests/{id}", get(pages::request))
        .route("/admin/static/admin.css", get(stylesheet))
        .route("/admin/{*rest}", get(pages::not_found))
        .layer(DefaultBodyLimit::max(MAX_FORM_BODY))
        .layer(map_response(protective_headers))
        .with_state(admin);
    Some(routes)
}

/// The stylesheet ships inside the binary.
async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../templates/admin/admin.css"),
    )
        .into_response()
}

/// Pages are never cached, framed, or sniffed; only our own stylesheet and
/// forms are allowed, and no script at all.
async fn protective_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let mut set = |name, value: &'static str| {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    };
    set(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "same-origin");
    set(header::CACHE_CONTROL, "no-store");
    response
}
