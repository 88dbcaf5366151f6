//! Logging in and out. The login form has no session yet, so its CSRF token
//! is a double submit: a cookie and a hidden field that must agree.

use std::net::SocketAddr;
use std::time::Duration;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{AppendHeaders, Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tracing::{info, warn};

use super::auth::{
    cookie, over_https, random_token, set_cookie, tokens_match, LOGIN_COOKIE, LOGIN_FORM_LIFETIME,
    SESSION_COOKIE, SESSION_LIFETIME,
};
use super::error::PageError;
use super::extract::CsrfForm;
use super::{AdminState, Nav, NoFields};
use crate::http::client_address;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage<'a> {
    nav: Option<Nav>,
    token: &'a str,
    next: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    next: String,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn form(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let next = safe_next(&query.next);
    let logged_in = match cookie(&headers, SESSION_COOKIE) {
        Some(id) => state.auth.session(id).await.is_some(),
        None => false,
    };
    if logged_in {
        return Ok(Redirect::to(next).into_response());
    }
    let secure = over_https(peer.ip(), &headers, &state.config);
    login_page(StatusCode::OK, secure, next, None)
}

pub async fn submit(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let secure = over_https(peer.ip(), &headers, &state.config);
    let next = safe_next(&form.next);
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if !tokens_match(&form.csrf, expected) {
        let why = "This login form has expired. Please enter the password again.";
        return login_page(StatusCode::FORBIDDEN, secure, next, Some(why));
    }
    let client = client_address(peer.ip(), &headers, &state.config.trusted_proxies);
    if !state.auth.check_password(client, &form.password).await {
        warn!(%client, "admin login refused: wrong password");
        return login_page(
            StatusCode::UNAUTHORIZED,
            secure,
            next,
            Some("Wrong password."),
        );
    }
    // A new session id at every login: one planted before it is worth nothing.
    if let Some(old) = cookie(&headers, SESSION_COOKIE) {
        state.auth.close_session(old).await;
    }
    let session = state.auth.open_session().await.map_err(PageError::Store)?;
    info!(%client, "admin login");
    Ok((
        AppendHeaders([
            (
                SET_COOKIE,
                set_cookie(SESSION_COOKIE, &session, SESSION_LIFETIME, secure),
            ),
            (
                SET_COOKIE,
                set_cookie(LOGIN_COOKIE, "", Duration::ZERO, secure),
            ),
        ]),
        Redirect::to(next),
    )
        .into_response())
}

pub async fn logout(
    State(state): State<AdminState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: CsrfForm<NoFields>,
) -> Response {
    state.auth.close_session(&form.operator.session_id).await;
    let secure = over_https(peer.ip(), &headers, &state.config);
    (
        [(
            SET_COOKIE,
            set_cookie(SESSION_COOKIE, "", Duration::ZERO, secure),
        )],
        Redirect::to("/admin/login"),
    )
        .into_response()
}

/// The login form with a fresh token in its field and its cookie.
fn login_page(
    status: StatusCode,
    secure: bool,
    next: &str,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let token = random_token();
    let page = LoginPage {
        nav: None,
        token: &token,
        next,
        error,
    };
    let html = page.render()?;
    Ok((
        status,
        [(
            SET_COOKIE,
            set_cookie(LOGIN_COOKIE, &token, LOGIN_FORM_LIFETIME, secure),
        )],
        Html(html),
    )
        .into_response())
}

/// Where to go after logging in: an admin page, never another site.
fn safe_next(next: &str) -> &str {
    let admin_page = next == "/admin" || next.starts_with("/admin/") || next.starts_with("/admin?");
    let harmless = !next.chars().any(|c| c.is_control() || c == '\\')
        && !next.starts_with("/admin/login")
        && !next.starts_with("/admin/logout");
    if admin_page && harmless {
        next
    } else {
        "/admin"
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_admin_pages() {
        assert_eq!(
            safe_next("/admin/orders?state=failed"),
            "/admin/orders?state=failed"
        );
        assert_eq!(safe_next("/admin"), "/admin");
        assert_eq!(safe_next(""), "/admin");
        assert_eq!(safe_next("https://evil.example/admin"), "/admin");
        assert_eq!(safe_next("//evil.example/admin"), "/admin");
        assert_eq!(safe_next("/administrator"), "/admin");
        assert_eq!(safe_next("/admin/\\evil"), "/admin");
        assert_eq!(safe_next("/admin/login"), "/admin");
    }
}
