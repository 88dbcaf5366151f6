//! The pages operators read: dashboard, orders, an order, rejected requests,
//! one stored request.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::error::PageError;
use super::extract::Operator;
use super::view;
use super::{AdminState, Nav};
use crate::domain::{EnrollmentState, OrderState};
use crate::redact::Redactor;
use crate::store::{OrderQuery, OrderSummary, RequestView, StoredRequest};

/// Orders per page of the list.
const ORDERS_PER_PAGE: i64 = 25;
/// Rejected requests per page.
const REQUESTS_PER_PAGE: i64 = 50;

/// What the last action did, shown once at the top of the page it led to.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    /// Failed items made pending again by a retry.
    retried: Option<u64>,
    /// A learner email was corrected.
    #[serde(default)]
    email_changed: bool,
}

impl Notice {
    fn message(&self) -> Option<String> {
        if self.email_changed {
            return Some("The learner email was changed; the item is pending again.".into());
        }
        self.retried.map(|n| match n {
            0 => "Nothing to retry. Items without a valid learner email need their email \
                  corrected first."
                .into(),
            1 => "1 failed item is pending again.".into(),
            n => format!("{n} failed items are pending again."),
        })
    }
}

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

#[derive(Debug, Default, Deserialize)]
pub struct OrdersFilter {
    #[serde(default)]
    q: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    shop: String,
    #[serde(default)]
    page: Option<i64>,
}

/// An option of a `<select>`.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

pub struct OrderRow {
    pub id: i64,
    pub number: String,
    pub platform: String,
    pub shop: String,
    pub buyer: String,
    pub items: i64,
    pub failed_items: i64,
    pub state: &'static str,
    pub state_label: String,
    pub received: String,
    pub received_exact: String,
}

impl OrderRow {
    fn of(order: &OrderSummary, now: i64) -> OrderRow {
        OrderRow {
            id: order.id,
            number: view::order_number(&order.number),
            platform: platform_name(&order.platform),
            shop: order.shop.clone(),
            buyer: order.buyer_email.clone().unwrap_or_else(|| "—".into()),
            items: order.items,
            failed_items: order.failed_items,
            state: order.state.as_str(),
            state_label: view::label(order.state.as_str()),
            received: view::relative(order.created_at_ms, now),
            received_exact: view::time(order.created_at_ms),
        }
    }
}

/// Where the list of one page links to its neighbours.
pub struct Pager {
    pub first: i64,
    pub last: i64,
    pub total: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    fn new(
        page: i64,
        per_page: i64,
        shown: usize,
        total: i64,
        href: impl Fn(i64) -> String,
    ) -> Pager {
        let first = (page - 1) * per_page + 1;
        Pager {
            first: if shown == 0 { 0 } else { first },
            last: first + shown as i64 - 1,
            total,
            prev: (page > 1).then(|| href(page - 1)),
            next: (page * per_page < total).then(|| href(page + 1)),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/orders.html")]
struct OrdersPage {
    nav: Option<Nav>,
    /// For the page's own forms.
    csrf: String,
    notice: Option<String>,
    q: String,
    states: Vec<Choice>,
    shops: Vec<Choice>,
    filtered: bool,
    rows: Vec<OrderRow>,
    pager: Pager,
}

pub async fn orders(
    State(state): State<AdminState>,
    operator: Operator,
    Query(filter): Query<OrdersFilter>,
    Query(notice): Query<Notice>,
) -> Result<Response, PageError> {
    let page = filter.page.unwrap_or(1).max(1);
    let order_state = match filter.state.as_str() {
        "" => None,
        s => Some(
            s.parse::<OrderState>()
                .map_err(|_| PageError::BadRequest(format!("no order state '{s}'")))?,
        ),
    };
    let query = OrderQuery {
        state: order_state,
        shop: Some(filter.shop.clone()).filter(|s| !s.is_empty()),
        search: Some(filter.q.trim().to_owned()).filter(|s| !s.is_empty()),
        limit: ORDERS_PER_PAGE,
        offset: (page - 1) * ORDERS_PER_PAGE,
    };
    let found = state.store.list_orders(&query).await?;
    let now = view::now_ms();
    let href = |page: i64| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("q", &filter.q),
            ("state", &filter.state),
            ("shop", &filter.shop),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("page", &page.to_string());
        format!("/admin/orders?{}", query.finish())
    };
    let states = std::iter::once(Choice {
        value: String::new(),
        label: "All states".into(),
        selected: filter.state.is_empty(),
    })
    .chain(OrderState::ALL.iter().map(|s| Choice {
        value: s.as_str().into(),
        label: view::label(s.as_str()),
        selected: filter.state == s.as_str(),
    }))
    .collect();
    let mut shop_names: Vec<String> = state
        .config
        .shopify
        .iter()
        .map(|s| s.domain.clone())
        .chain(state.config.woocommerce.iter().map(|s| s.source.clone()))
        .collect();
    if !filter.shop.is_empty() && !shop_names.contains(&filter.shop) {
        shop_names.push(filter.shop.clone());
    }
    let shops = std::iter::once(Choice {
        value: String::new(),
        label: "All shops".into(),
        selected: filter.shop.is_empty(),
    })
    .chain(shop_names.into_iter().map(|name| Choice {
        selected: filter.shop == name,
        label: name.clone(),
        value: name,
    }))
    .collect();
    let rows: Vec<OrderRow> = found.orders.iter().map(|o| OrderRow::of(o, now)).collect();
    let pager = Pager::new(page, ORDERS_PER_PAGE, rows.len(), found.total, href);
    let page = OrdersPage {
        csrf: operator.csrf.clone(),
        nav: Some(Nav::new(operator, "orders")),
        notice: notice.message(),
        filtered: !(filter.q.trim().is_empty()
            && filter.state.is_empty()
            && filter.shop.is_empty()),
        q: filter.q,
        states,
        shops,
        rows,
        pager,
    };
    Ok(Html(page.render()?).into_response())
}

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

pub struct RequestBlock {
    pub id: i64,
    pub received: String,
    pub method: String,
    pub endpoint: String,
    pub source_ip: String,
    pub topic: String,
    pub http_status: u16,
    pub status_class: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub webhook_id: Option<String>,
    pub size: String,
    pub truncated: bool,
    pub headers: Vec<(String, String)>,
    /// The body as received, byte for byte (configured secrets replaced).
    pub body: String,
    /// A JSON body pretty-printed, beside the raw one.
    pub pretty: Option<String>,
    pub replay_of: Option<i64>,
    pub replayed_by: Option<i64>,
    /// For a refused request: the request of its chain that took it in.
    pub resolved_by: Option<i64>,
}

impl RequestBlock {
    fn of(request: &StoredRequest, redactor: &Redactor) -> RequestBlock {
        RequestBlock {
            id: request.id,
            received: view::time(request.received_at_ms),
            method: request.method.clone(),
            endpoint: request.endpoint.clone(),
            source_ip: request.source_ip.clone().unwrap_or_else(|| "—".into()),
            topic: request.topic.clone().unwrap_or_else(|| "no topic".into()),
            http_status: request.http_status,
            status_class: format!("s{}", request.http_status / 100),
            outcome: request.outcome.clone(),
            reason: request
                .reason
                .as_deref()
                .map(|r| redactor.clean(r).into_owned()),
            webhook_id: request.webhook_id.clone(),
            size: view::size(request.body_size),
            truncated: request.body_truncated,
            headers: redactor.headers(&request.headers),
            body: redactor.raw_body(&request.body),
            pretty: redactor.pretty_body(&request.body),
            replay_of: request.replays.replay_of,
            replayed_by: request.replays.replayed_by,
            resolved_by: request
                .replays
                .taken_in_by
                .filter(|_| request.replays.resolved(request.http_status)),
        }
    }
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
        RejectedRow {
            id: request.id,
            received: view::relative(request.received_at_ms, now),
            received_exact: view::time(request.received_at_ms),
            platform: platform_name(&request.platform),
            shop: request.shop.clone().unwrap_or_else(|| "—".into()),
            topic: request.topic.clone().unwrap_or_else(|| "—".into()),
            http_status: request.http_status,
            reason: redactor
                .clean(request.reason.as_deref().unwrap_or(&request.outcome))
                .into_owned(),
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

pub async fn not_found(_operator: Operator) -> PageError {
    PageError::NotFound("There is no such page.".into())
}

fn platform_name(platform: &str) -> String {
    platform
        .parse::<crate::domain::Platform>()
        .map(|p| p.display_name().to_owned())
        .unwrap_or_else(|_| platform.to_owned())
}
