//! One span per request, so that every log line of a request carries its id:
//! the proxy's `X-Request-Id` when it is a plain token, else a new one. The id
//! is sent back in the answer's `X-Request-Id`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

const X_REQUEST_ID: &str = "x-request-id";
/// The longest proxy-given id we keep (nginx's `$request_id` is 32 characters).
const MAX_ID_LEN: usize = 128;

pub async fn request_span(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| plain_token(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    response
}

/// Safe to print in a log line: short, and no spaces, quotes or control characters.
fn plain_token(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::plain_token;

    #[test]
    fn only_plain_tokens_are_taken_from_the_proxy() {
        assert!(plain_token("3f2a9c1e0b7d4e6fa1b2c3d4e5f60718"));
        assert!(plain_token("1b4e28ba-2fa1-11d2-883f-0016d3cca427"));
        assert!(!plain_token(""));
        assert!(!plain_token("a b"));
        assert!(!plain_token("x\" level=\"error"));
        assert!(!plain_token(&"a".repeat(129)));
    }
}
