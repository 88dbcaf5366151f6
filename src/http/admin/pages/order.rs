//! One order: its items, their LMS calls, the requests that brought it.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::orders::OrderRow;
use super::{Notice, RequestBlock};
use crate::domain::EnrollmentState;
use crate::http::admin::error::PageError;
use crate::http::admin::extract::Operator;
use crate::http::admin::view;
use crate::http::admin::{AdminState, Nav};
use crate::redact::Redactor;

pub struct ItemBlock {
    pub id: i64,
    pub title: String,
    pub sku: String,
    pub line_item_id: String,
    pub email: String,
    pub action: String,
    pub state: String,
    pub state_label: String,
    pub reason: Option<String>,
    pub attempts_spent: u32,
    pub attempts: Vec<AttemptRow>,
    /// Failed items can have their learner email corrected.
    pub editable: bool,
    /// Whether the item has a valid learner email at all.
    pub has_email: bool,
    /// What the email form shows: the current email, or what was typed.
    pub email_value: String,
    pub email_error: Option<String>,
}

pub struct AttemptRow {
    pub when: String,
    pub action: String,
    pub status: String,
    pub outcome: String,
    pub duration: String,
    pub answer: String,
    pub counted: bool,
}

#[derive(Template)]
#[template(path = "admin/order.html")]
pub struct OrderPage {
    nav: Option<Nav>,
    /// For the page's own forms.
    csrf: String,
    notice: Option<String>,
    order: OrderRow,
    external_id: String,
    updated: String,
    items: Vec<ItemBlock>,
    requests: Vec<RequestBlock>,
    /// When reconciliation brought this order what no webhook had.
    found_by_reconciliation: Option<String>,
}

/// A correction the operator typed that could not be taken, shown at its item.
pub struct EmailError {
    pub item_id: i64,
    pub typed: String,
    pub message: String,
}

pub async fn order(
    State(state): State<AdminState>,
    operator: Operator,
    Path(order_id): Path<i64>,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    order_page(&state, operator, order_id, notice.message(), None).await
}

/// The order page, with a notice or an email correction to show.
pub async fn order_page(
    state: &AdminState,
    operator: Operator,
    order_id: i64,
    notice: Option<String>,
    email_error: Option<EmailError>,
) -> Result<Response, PageError> {
    let detail = state.store.order_detail(order_id).await?;
    let now = view::now_ms();
    let redactor = Redactor::from_config(&state.config);
    let items = detail
        .items
        .iter()
        .map(|d| {
            let item = &d.item;
            let error = email_error.as_ref().filter(|e| e.item_id == item.id);
            ItemBlock {
                id: item.id,
                title: {
                    let course = item.course_key.clone().unwrap_or_else(|| {
                        if item.sku.is_empty() {
                            "No SKU".into()
                        } else {
                            format!("SKU {}", item.sku)
                        }
                    });
                    match &item.mode {
                        Some(mode) => format!("{course} · {mode} seat"),
                        None => course,
                    }
                },
                sku: if item.sku.is_empty() {
                    "—".into()
                } else {
                    item.sku.clone()
                },
                line_item_id: item.line_item_id.clone(),
                email: item
                    .email
                    .clone()
                    .unwrap_or_else(|| "— (none valid)".into()),
                action: item.action.clone(),
                state: item.state.clone(),
                state_label: view::label(&item.state),
                reason: item
                    .reason
                    .as_deref()
                    .map(|r| redactor.clean(r).into_owned()),
                attempts_spent: item.attempts,
                attempts: d
                    .attempts
                    .iter()
                    .rev()
                    .map(|a| AttemptRow {
                        when: view::time(a.at_ms),
                        action: a.action.clone(),
                        status: a.http_status.map_or_else(|| "—".into(), |s| s.to_string()),
                        outcome: view::label(&a.outcome),
                        duration: format!("{} ms", a.duration_ms),
                        answer: redactor.readable(a.detail.as_bytes()),
                        counted: a.counted,
                    })
                    .collect(),
                editable: item.state == EnrollmentState::Failed.as_str(),
                has_email: item.email.is_some(),
                email_value: error
                    .map(|e| e.typed.clone())
                    .or_else(|| item.email.clone())
                    .unwrap_or_default(),
                email_error: error.map(|e| e.message.clone()),
            }
        })
        .collect();
    let page = OrderPage {
        found_by_reconciliation: detail.found_by_reconciliation_at_ms.map(view::time),
        csrf: operator.csrf.clone(),
        nav: Some(Nav::new(operator, "orders")),
        notice,
        order: OrderRow::of(&detail.order, now),
        external_id: detail.order.external_id.clone(),
        updated: view::time(detail.order.updated_at_ms),
        items,
        requests: detail
            .requests
            .iter()
            .rev()
            .map(|r| RequestBlock::of(r, &redactor))
            .collect(),
    };
    let status = if email_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((status, Html(page.render()?)).into_response())
}
