//! The rejected requests, newest first.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{platform_name, Pager};
use crate::http::admin::error::PageError;
use crate::http::admin::extract::Operator;
use crate::http::admin::view;
use crate::http::admin::{AdminState, Nav};
use crate::redact::Redactor;
use crate::store::RequestView;

/// Rejected requests per page.
const REQUESTS_PER_PAGE: i64 = 50;

pub struct RejectedRow {
    pub id: i64,
    pub received: String,
    pub received_exact: String,
    pub platform: String,
    pub shop: String,
    pub topic: String,
    pub http_status: u16,
    pub reason: String,
    pub source_ip: String,
    pub replay_of: Option<i64>,
    /// The request of its chain that took it in, when one did.
    pub resolved_by: Option<i64>,
    pub replayed_by: Option<i64>,
}

impl RejectedRow {
    fn of(request: &RequestView, now: i64, redactor: &Redactor) -> RejectedRow {
        let request = redactor.request_view(request);
        RejectedRow {
            id: request.id,
            received: view::relative(request.received_at_ms, now),
            received_exact: view::time(request.received_at_ms),
            platform: platform_name(&request.platform),
            shop: request.shop.clone().unwrap_or_else(|| "—".into()),
            topic: request.topic.clone().unwrap_or_else(|| "—".into()),
            http_status: request.http_status,
            reason: request.reason.clone().unwrap_or(request.outcome.clone()),
            source_ip: request.source_ip.clone().unwrap_or_else(|| "—".into()),
            replay_of: request.replays.replay_of,
            resolved_by: request
                .replays
                .taken_in_by
                .filter(|_| request.replays.resolved(request.http_status)),
            replayed_by: request.replays.replayed_by,
        }
    }
}

/// The rejected list's query: a page, and whether to leave out the resolved.
#[derive(Deserialize)]
pub struct RejectedFilter {
    page: Option<i64>,
    #[serde(default)]
    unresolved: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/rejected.html")]
struct RejectedPage {
    nav: Option<Nav>,
    rows: Vec<RejectedRow>,
    pager: Pager,
    unresolved_only: bool,
}

pub async fn rejected(
    State(state): State<AdminState>,
    operator: Operator,
    Query(filter): Query<RejectedFilter>,
) -> Result<Response, PageError> {
    let page = filter.page.unwrap_or(1).max(1);
    let unresolved_only = filter.unresolved.is_some_and(|v| !v.is_empty() && v != "0");
    let found = state
        .store
        .rejected_requests(
            REQUESTS_PER_PAGE,
            (page - 1) * REQUESTS_PER_PAGE,
            unresolved_only,
        )
        .await?;
    let now = view::now_ms();
    let redactor = Redactor::from_config(&state.config);
    let rows: Vec<RejectedRow> = found
        .requests
        .iter()
        .map(|r| RejectedRow::of(r, now, &redactor))
        .collect();
    let pager = Pager::new(page, REQUESTS_PER_PAGE, rows.len(), found.total, |p| {
        if unresolved_only {
            format!("/admin/rejected?unresolved=1&page={p}")
        } else {
            format!("/admin/rejected?page={p}")
        }
    });
    let page = RejectedPage {
        nav: Some(Nav::new(operator, "rejected")),
        rows,
        pager,
        unresolved_only,
    };
    Ok(Html(page.render()?).into_response())
}
