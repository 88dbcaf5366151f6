//! The list of orders, filtered and paged.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::{platform_name, Notice, Pager};
use crate::domain::OrderState;
use crate::http::admin::error::PageError;
use crate::http::admin::extract::Operator;
use crate::http::admin::view;
use crate::http::admin::{AdminState, Nav};
use crate::store::{OrderQuery, OrderSummary};

/// Orders per page of the list.
const ORDERS_PER_PAGE: i64 = 25;

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
    pub(super) fn of(order: &OrderSummary, now: i64) -> OrderRow {
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
