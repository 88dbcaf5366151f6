//! The dashboard: counts, the LMS's state, recent failures, reconciliation.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};

use super::Notice;
use crate::domain::{EnrollmentState, OrderState};
use crate::http::admin::error::PageError;
use crate::http::admin::extract::Operator;
use crate::http::admin::view;
use crate::http::admin::{AdminState, Nav};
use crate::redact::Redactor;

/// One number of the dashboard.
pub struct Figure {
    pub state: &'static str,
    pub label: String,
    pub count: i64,
    /// The order list it stands for, if any.
    pub href: Option<String>,
}

pub struct FailureRow {
    pub order_id: i64,
    pub number: String,
    pub shop: String,
    pub learner: String,
    pub course: String,
    pub reason: String,
    pub when: String,
    pub when_exact: String,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    /// For the page's own forms.
    csrf: String,
    notice: Option<String>,
    lms_base_url: String,
    lms_problem: Option<String>,
    lms_paused_until: Option<String>,
    /// Problems the settings show, each with its fix.
    settings_warnings: Vec<String>,
    enrollments: Vec<Figure>,
    orders: Vec<Figure>,
    failed_orders: i64,
    oldest_waiting: Option<String>,
    oldest_waiting_exact: String,
    failures: Vec<FailureRow>,
    reconciliations: Vec<ReconcileRow>,
}

/// A shop's last reconciliation, as the dashboard shows it.
struct ReconcileRow {
    shop: String,
    platform: String,
    last_run: String,
    last_success: String,
    found_last: u64,
    found_total: u64,
    fetched_last: u64,
    error: Option<String>,
}

pub async fn dashboard(
    State(state): State<AdminState>,
    operator: Operator,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let dashboard = state.store.dashboard().await?;
    let now = view::now_ms();
    let redactor = Redactor::from_config(&state.config);
    let count_of = |counts: &[(String, i64)], s: &str| {
        counts
            .iter()
            .find(|(state, _)| state == s)
            .map_or(0, |(_, n)| *n)
    };
    let enrollment_counts: Vec<(String, i64)> = dashboard
        .enrollments_by_state
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    let order_counts: Vec<(String, i64)> = dashboard
        .orders_by_state
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    let enrollments = [
        EnrollmentState::Pending,
        EnrollmentState::Enrolled,
        EnrollmentState::Failed,
        EnrollmentState::AwaitingPayment,
        EnrollmentState::Skipped,
        EnrollmentState::Cancelled,
        EnrollmentState::Unenrolled,
    ]
    .into_iter()
    .map(|s| Figure {
        state: s.as_str(),
        label: view::label(s.as_str()),
        count: count_of(&enrollment_counts, s.as_str()),
        href: None,
    })
    .collect();
    let orders = [
        OrderState::Processing,
        OrderState::Enrolled,
        OrderState::Failed,
        OrderState::AwaitingAccount,
        OrderState::AwaitingPayment,
        OrderState::Cancelled,
    ]
    .into_iter()
    .map(|s| Figure {
        state: s.as_str(),
        label: view::label(s.as_str()),
        count: count_of(&order_counts, s.as_str()),
        href: Some(format!("/admin/orders?state={}", s.as_str())),
    })
    .collect();
    let failures = dashboard
        .recent_failures
        .iter()
        .map(|f| FailureRow {
            order_id: f.order.id,
            number: view::order_number(&f.order.number),
            shop: f.order.shop.clone(),
            learner: f.email.clone().unwrap_or_else(|| "—".into()),
            course: f.course_key.clone().unwrap_or_else(|| "—".into()),
            reason: redactor
                .clean(f.reason.as_deref().unwrap_or(""))
                .into_owned(),
            when: view::relative(f.failed_at_ms, now),
            when_exact: view::time(f.failed_at_ms),
        })
        .collect();
    let oldest_waiting = dashboard.oldest_pending_due_ms.map(|due| match now - due {
        waited if waited >= 1000 => format!("waiting for {}", view::span(waited as u64)),
        0..=999 => "due now".to_owned(),
        _ => format!("next try {}", view::relative(due, now)),
    });
    let reconciliations = state
        .store
        .reconciliations()
        .await?
        .into_iter()
        .map(|r| ReconcileRow {
            shop: r.shop,
            platform: r.platform,
            last_run: r.last_run_at_ms.map_or_else(|| "never".into(), view::time),
            last_success: r
                .last_success_at_ms
                .map_or_else(|| "never".into(), view::time),
            found_last: r.last.new + r.last.changed,
            found_total: r.found_total,
            fetched_last: r.last.fetched,
            error: r.last.error.map(|e| redactor.clean(&e).into_owned()),
        })
        .collect();
    let page = DashboardPage {
        reconciliations,
        csrf: operator.csrf.clone(),
        nav: Some(Nav::new(operator, "dashboard")),
        notice: notice.message(),
        lms_base_url: state.config.lms.base_url.to_string(),
        lms_problem: dashboard
            .lms
            .misconfigured
            .as_deref()
            .map(|p| redactor.clean(p).into_owned()),
        lms_paused_until: (dashboard.lms.paused_until_ms > now)
            .then(|| view::time(dashboard.lms.paused_until_ms)),
        settings_warnings: state
            .config
            .warnings()
            .iter()
            .map(ToString::to_string)
            .collect(),
        enrollments,
        orders,
        failed_orders: count_of(&order_counts, OrderState::Failed.as_str()),
        oldest_waiting,
        oldest_waiting_exact: dashboard
            .oldest_pending_due_ms
            .map(view::time)
            .unwrap_or_default(),
        failures,
    };
    Ok(Html(page.render()?).into_response())
}
