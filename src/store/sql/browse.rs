//! What operators read: order lists with search, an order with everything
//! stored about it, stored requests, the dashboard's counts.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::search::{order_filter, Bind};
use super::{flag, opt_text, parse, text, SqlStore};
use crate::domain::{OrderState, FETCHED_ENDPOINT_PREFIX};
use crate::store::{
    AttemptView, Dashboard, ItemDetail, ItemView, OrderDetail, OrderPage, OrderQuery, OrderSummary,
    RecentFailure, Replays, RequestPage, RequestView, StoreError, StoredRequest,
};

/// The columns of an `OrderSummary`, from `orders o`.
const SUMMARY_COLUMNS: &str = "o.id, o.platform, o.shop, o.external_id, o.number, o.buyer_email, o.state, \
     o.created_at, o.updated_at, \
     (SELECT COUNT(*) FROM enrollments i WHERE i.order_id = o.id) AS items, \
     (SELECT COUNT(*) FROM enrollments i WHERE i.order_id = o.id AND i.state = 'failed') AS failed_items";

const ITEM_COLUMNS: &str =
    "id, line_item_id, sku, course_key, mode, email, action, state, reason, attempts";

/// How a request relates to replays: the one it replays, its latest replay,
/// and the first request of its chain (the original and every replay of it)
/// that was taken in.
macro_rules! replay_columns {
    () => {
        "replay_of, \
         (SELECT MAX(t.id) FROM requests t WHERE t.replay_of = requests.id) AS replayed_by, \
         (SELECT MIN(t.id) FROM requests t WHERE t.http_status < 400 \
            AND t.replay_of = COALESCE(requests.replay_of, requests.id)) AS taken_in_by"
    };
}

/// A refused request since taken in by a replay of its chain.
const TAKEN_IN: &str = "EXISTS (SELECT 1 FROM requests t WHERE t.http_status < 400 \
     AND t.replay_of = COALESCE(requests.replay_of, requests.id))";

const REQUEST_VIEW_COLUMNS: &str = concat!(
    "id, received_at, platform, http_status, outcome, reason, shop, topic, \
     body_size, body_truncated, LENGTH(body) AS stored, source_ip, ",
    replay_columns!()
);

const STORED_REQUEST_COLUMNS: &str = concat!(
    "id, received_at, platform, method, endpoint, source_ip, headers, body, \
     body_size, body_truncated, http_status, outcome, reason, shop, topic, webhook_id, order_id, ",
    replay_columns!()
);

/// How many failed items the dashboard shows.
const RECENT_FAILURES: i64 = 10;

/// The most rows one page may ask for.
const MAX_PAGE: i64 = 10_000;

impl SqlStore {
    pub async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        let (from, binds) = order_filter(query, self.dialect);
        let bind_all = |sql: &'static str| {
            binds.iter().fold(sqlx::query(sql), |q, b| match b {
                Bind::Int(n) => q.bind(*n),
                Bind::Text(s) => q.bind(s.clone()),
            })
        };
        let total: i64 = bind_all(self.sql(&format!("SELECT COUNT(*) AS total FROM {from}")))
            .fetch_one(&self.reader)
            .await?
            .try_get("total")?;
        let rows = bind_all(self.sql(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM {from} ORDER BY o.id DESC LIMIT ? OFFSET ?"
        )))
        .bind(query.limit.clamp(0, MAX_PAGE))
        .bind(query.offset.max(0))
        .fetch_all(&self.reader)
        .await?;
        let orders = rows.iter().map(order_summary).collect::<Result<_, _>>()?;
        Ok(OrderPage { orders, total })
    }

    pub async fn order_detail(&self, order_id: i64) -> Result<OrderDetail, StoreError> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM orders o WHERE o.id = ?"
        )))
        .bind(order_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no order with id {order_id}")))?;
        let order = order_summary(&row)?;

        let items: Vec<ItemView> = sqlx::query(self.sql(&format!(
            "SELECT {ITEM_COLUMNS} FROM enrollments WHERE order_id = ? ORDER BY id"
        )))
        .bind(order_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(item_view)
        .collect::<Result<_, _>>()?;

        let mut attempts: HashMap<i64, Vec<AttemptView>> = HashMap::new();
        let rows = sqlx::query(self.sql(
            "SELECT a.enrollment_id, a.at, a.action, a.http_status, a.outcome, a.detail, a.duration_ms, a.counted \
             FROM attempts a JOIN enrollments e ON e.id = a.enrollment_id WHERE e.order_id = ? ORDER BY a.id",
        ))
        .bind(order_id)
        .fetch_all(&self.reader)
        .await?;
        for row in &rows {
            attempts
                .entry(row.try_get("enrollment_id")?)
                .or_default()
                .push(attempt_view(row)?);
        }
        let items = items
            .into_iter()
            .map(|item| ItemDetail {
                attempts: attempts.remove(&item.id).unwrap_or_default(),
                item,
            })
            .collect();

        let requests: Vec<StoredRequest> = sqlx::query(self.sql(&format!(
            "SELECT {STORED_REQUEST_COLUMNS} FROM requests WHERE order_id = ? ORDER BY id"
        )))
        .bind(order_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(stored_request)
        .collect::<Result<_, _>>()?;

        let found_by_reconciliation_at_ms = requests
            .iter()
            .find(|r| r.endpoint.starts_with(FETCHED_ENDPOINT_PREFIX))
            .map(|r| r.received_at_ms);
        Ok(OrderDetail {
            order,
            items,
            requests,
            found_by_reconciliation_at_ms,
        })
    }

    pub async fn request(&self, request_id: i64) -> Result<StoredRequest, StoreError> {
        let row = sqlx::query(self.sql(&format!(
            "SELECT {STORED_REQUEST_COLUMNS} FROM requests WHERE id = ?"
        )))
        .bind(request_id)
        .fetch_optional(&self.reader)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no request {request_id}")))?;
        Ok(stored_request(&row)?)
    }

    pub async fn rejected_requests(
        &self,
        limit: i64,
        offset: i64,
        unresolved_only: bool,
    ) -> Result<RequestPage, StoreError> {
        let filter = if unresolved_only {
            format!("http_status >= 400 AND NOT {TAKEN_IN}")
        } else {
            "http_status >= 400".to_owned()
        };
        let row = sqlx::query(self.sql(&format!(
            "SELECT COUNT(*) AS total FROM requests WHERE {filter}"
        )))
        .fetch_one(&self.reader)
        .await?;
        let total: i64 = row.try_get("total")?;
        let requests = sqlx::query(self.sql(&format!(
            "SELECT {REQUEST_VIEW_COLUMNS} FROM requests WHERE {filter} ORDER BY id DESC LIMIT ? OFFSET ?"
        )))
        .bind(limit.clamp(0, MAX_PAGE))
        .bind(offset.max(0))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(request_view)
        .collect::<Result<_, _>>()?;
        Ok(RequestPage { requests, total })
    }

    pub async fn dashboard(&self) -> Result<Dashboard, StoreError> {
        let enrollments_by_state = self.count_enrollments().await?;
        let orders_by_state = self
            .count_by_state("orders", OrderState::ALL, OrderState::as_str)
            .await?;
        let row = sqlx::query(
            self.sql("SELECT MIN(due_at) AS oldest FROM enrollments WHERE state = 'pending'"),
        )
        .fetch_one(&self.reader)
        .await?;
        let oldest_pending_due_ms: Option<i64> = row.try_get("oldest")?;

        let failed = sqlx::query(self.sql(
            "SELECT id, order_id, email, course_key, reason, updated_at FROM enrollments \
             WHERE state = 'failed' ORDER BY updated_at DESC, id DESC LIMIT ?",
        ))
        .bind(RECENT_FAILURES)
        .fetch_all(&self.reader)
        .await?;
        let mut recent_failures = Vec::with_capacity(failed.len());
        for row in &failed {
            let order_id: i64 = row.try_get("order_id")?;
            let order = sqlx::query(self.sql(&format!(
                "SELECT {SUMMARY_COLUMNS} FROM orders o WHERE o.id = ?"
            )))
            .bind(order_id)
            .fetch_one(&self.reader)
            .await?;
            recent_failures.push(RecentFailure {
                order: order_summary(&order)?,
                item_id: row.try_get("id")?,
                email: opt_text(row, "email")?,
                course_key: opt_text(row, "course_key")?,
                reason: opt_text(row, "reason")?,
                failed_at_ms: row.try_get("updated_at")?,
            });
        }
        Ok(Dashboard {
            enrollments_by_state,
            orders_by_state,
            oldest_pending_due_ms,
            recent_failures,
            lms: self.lms_status().await?,
        })
    }
}

fn order_summary(r: &AnyRow) -> Result<OrderSummary, StoreError> {
    Ok(OrderSummary {
        id: r.try_get("id")?,
        platform: text(r, "platform")?,
        shop: text(r, "shop")?,
        external_id: text(r, "external_id")?,
        number: text(r, "number")?,
        buyer_email: opt_text(r, "buyer_email")?,
        state: parse::<OrderState>(&text(r, "state")?)?,
        created_at_ms: r.try_get("created_at")?,
        updated_at_ms: r.try_get("updated_at")?,
        items: r.try_get("items")?,
        failed_items: r.try_get("failed_items")?,
    })
}

pub(super) fn item_view(r: &AnyRow) -> Result<ItemView, sqlx::Error> {
    Ok(ItemView {
        id: r.try_get("id")?,
        line_item_id: text(r, "line_item_id")?,
        sku: text(r, "sku")?,
        course_key: opt_text(r, "course_key")?,
        mode: opt_text(r, "mode")?,
        email: opt_text(r, "email")?,
        action: text(r, "action")?,
        state: text(r, "state")?,
        reason: opt_text(r, "reason")?,
        attempts: r.try_get::<i64, _>("attempts")? as u32,
    })
}

pub(super) fn attempt_view(r: &AnyRow) -> Result<AttemptView, sqlx::Error> {
    Ok(AttemptView {
        at_ms: r.try_get("at")?,
        action: text(r, "action")?,
        http_status: r
            .try_get::<Option<i64>, _>("http_status")?
            .map(|s| s as u16),
        outcome: text(r, "outcome")?,
        detail: text(r, "detail")?,
        duration_ms: r.try_get("duration_ms")?,
        counted: flag(r, "counted")?,
    })
}

pub(super) fn request_view(r: &AnyRow) -> Result<RequestView, sqlx::Error> {
    Ok(RequestView {
        id: r.try_get("id")?,
        received_at_ms: r.try_get("received_at")?,
        platform: text(r, "platform")?,
        http_status: r.try_get::<i64, _>("http_status")? as u16,
        outcome: text(r, "outcome")?,
        reason: opt_text(r, "reason")?,
        shop: opt_text(r, "shop")?,
        topic: opt_text(r, "topic")?,
        body_size: r.try_get::<i64, _>("body_size")? as u64,
        body_truncated: flag(r, "body_truncated")?,
        stored_body_len: r.try_get::<i64, _>("stored")? as u64,
        source_ip: opt_text(r, "source_ip")?,
        replays: replays(r)?,
    })
}

fn stored_request(r: &AnyRow) -> Result<StoredRequest, sqlx::Error> {
    let headers: Vec<(String, String)> =
        serde_json::from_str(&text(r, "headers")?).unwrap_or_default();
    Ok(StoredRequest {
        id: r.try_get("id")?,
        received_at_ms: r.try_get("received_at")?,
        platform: text(r, "platform")?,
        method: text(r, "method")?,
        endpoint: text(r, "endpoint")?,
        source_ip: opt_text(r, "source_ip")?,
        headers,
        body: r.try_get::<Vec<u8>, _>("body")?,
        body_size: r.try_get::<i64, _>("body_size")? as u64,
        body_truncated: flag(r, "body_truncated")?,
        http_status: r.try_get::<i64, _>("http_status")? as u16,
        outcome: text(r, "outcome")?,
        reason: opt_text(r, "reason")?,
        shop: opt_text(r, "shop")?,
        topic: opt_text(r, "topic")?,
        webhook_id: opt_text(r, "webhook_id")?,
        order_id: r.try_get("order_id")?,
        replays: replays(r)?,
    })
}

fn replays(r: &AnyRow) -> Result<Replays, sqlx::Error> {
    Ok(Replays {
        replay_of: r.try_get("replay_of")?,
        replayed_by: r.try_get("replayed_by")?,
        taken_in_by: r.try_get("taken_in_by")?,
    })
}

impl SqlStore {
    /// The rows of `table` in each state that has any, in the order given.
    /// Each state's count is a range of the state index counted on its own,
    /// in one statement: read whole and grouped, the index took twice as long.
    pub(super) async fn count_by_state<S>(
        &self,
        table: &str,
        states: &[S],
        name: fn(S) -> &'static str,
    ) -> Result<Vec<(S, i64)>, StoreError>
    where
        S: Copy + std::str::FromStr<Err = crate::domain::UnknownValue>,
    {
        let counts: Vec<String> = states
            .iter()
            .map(|&s| {
                let s = name(s);
                format!("SELECT '{s}' AS state, COUNT(*) AS n FROM {table} WHERE state = '{s}'")
            })
            .collect();
        sqlx::query(self.sql(&counts.join(" UNION ALL ")))
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|r| Ok((parse::<S>(&text(r, "state")?)?, r.try_get::<i64, _>("n")?)))
            .filter(|count| !matches!(count, Ok((_, 0))))
            .collect()
    }
}
