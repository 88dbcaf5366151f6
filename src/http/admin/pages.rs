//! The pages: dashboard, orders, an order, rejected requests; and the actions
//! their buttons post.

use askama::Template;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::error::PageError;
use super::extract::Operator;
use super::{AdminState, Nav};

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    counts: Vec<(String, i64)>,
    lms_problem: Option<String>,
}

pub async fn dashboard(
    State(state): State<AdminState>,
    operator: Operator,
) -> Result<Response, PageError> {
    let counts = state
        .store
        .count_enrollments()
        .await?
        .into_iter()
        .map(|(s, n)| (s.to_string(), n))
        .collect();
    let lms_problem = state.store.lms_status().await?.misconfigured;
    let page = DashboardPage {
        nav: Some(Nav {
            csrf: operator.csrf,
            section: "dashboard",
        }),
        counts,
        lms_problem,
    };
    Ok(Html(page.render()?).into_response())
}

pub async fn not_found(_operator: Operator) -> PageError {
    PageError::NotFound("There is no such page.".into())
}
