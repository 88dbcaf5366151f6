//! One stored request, as received.

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};

use super::{platform_name, RequestBlock};
use crate::http::admin::error::PageError;
use crate::http::admin::extract::Operator;
use crate::http::admin::{AdminState, Nav};
use crate::redact::Redactor;

#[derive(Template)]
#[template(path = "admin/request.html")]
struct RequestPage {
    nav: Option<Nav>,
    request: RequestBlock,
    platform: String,
    shop: String,
    order_id: Option<i64>,
}

pub async fn request(
    State(state): State<AdminState>,
    operator: Operator,
    Path(request_id): Path<i64>,
) -> Result<Response, PageError> {
    let stored = state.store.request(request_id).await?;
    let redactor = Redactor::from_config(&state.config);
    let stored = redactor.stored_request(&stored);
    let section = if stored.http_status >= 400 {
        "rejected"
    } else {
        "orders"
    };
    let page = RequestPage {
        nav: Some(Nav::new(operator, section)),
        request: RequestBlock::of(&stored, &redactor),
        platform: platform_name(&stored.platform),
        shop: stored.shop.clone().unwrap_or_else(|| "—".into()),
        order_id: stored.order_id,
    };
    Ok(Html(page.render()?).into_response())
}
