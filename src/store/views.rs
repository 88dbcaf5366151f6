//! Read models: what operators, the admin pages and `/metrics` see.

use serde::Serialize;

use super::LmsStatus;
use crate::domain::{EnrollmentState, OrderState};

#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub id: i64,
    pub platform: String,
    pub shop: String,
    pub external_id: String,
    pub number: String,
    pub state: String,
    pub items: Vec<ItemView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    pub id: i64,
    pub line_item_id: String,
    pub sku: String,
    pub course_key: Option<String>,
    /// The course mode of a paid seat; `None`: the course's default (bulk enrollment).
    pub mode: Option<String>,
    pub email: Option<String>,
    pub action: String,
    pub state: String,
    pub reason: Option<String>,
    pub attempts: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptView {
    pub at_ms: i64,
    pub action: String,
    pub http_status: Option<u16>,
    pub outcome: String,
    pub detail: String,
    pub duration_ms: i64,
    pub counted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RequestView {
    pub id: i64,
    pub received_at_ms: i64,
    pub platform: String,
    pub http_status: u16,
    pub outcome: String,
    pub reason: Option<String>,
    pub shop: Option<String>,
    pub topic: Option<String>,
    pub body_size: u64,
    pub body_truncated: bool,
    pub stored_body_len: u64,
    pub source_ip: Option<String>,
    #[serde(flatten)]
    pub replays: Replays,
}

/// How a request is linked to `webhooks replay`s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Replays {
    /// The request this one judged again (the first of its chain).
    pub replay_of: Option<i64>,
    /// The latest request that judged this one again.
    pub replayed_by: Option<i64>,
    /// The first request of this one's chain (it, the request it replays,
    /// and their replays) that was taken in (answered below 400).
    pub taken_in_by: Option<i64>,
}

impl Replays {
    /// A refused request since taken in by a replay.
    pub fn resolved(&self, http_status: u16) -> bool {
        http_status >= 400 && self.taken_in_by.is_some()
    }
}

/// Which orders an operator wants to see, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderQuery {
    pub state: Option<OrderState>,
    /// The shop's domain or source, compared case-insensitively.
    pub shop: Option<String>,
    /// Part of the order number (with or without `#`), the shop's order id,
    /// our id, a learner's or the buyer's email, or a course key; any case.
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

impl Default for OrderQuery {
    fn default() -> Self {
        OrderQuery {
            state: None,
            shop: None,
            search: None,
            limit: 50,
            offset: 0,
        }
    }
}

/// One line of an order list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSummary {
    pub id: i64,
    pub platform: String,
    pub shop: String,
    pub external_id: String,
    pub number: String,
    pub buyer_email: Option<String>,
    pub state: OrderState,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub items: i64,
    pub failed_items: i64,
}

/// A page of orders and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct OrderPage {
    pub orders: Vec<OrderSummary>,
    pub total: i64,
}

/// Everything stored about one order: its items with their LMS calls, and
/// every request that concerned it, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct OrderDetail {
    pub order: OrderSummary,
    pub items: Vec<ItemDetail>,
    pub requests: Vec<StoredRequest>,
    /// When reconciliation first brought this order something no webhook
    /// had (it fetched the order from the shop's API); `None`: webhooks did it all.
    pub found_by_reconciliation_at_ms: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemDetail {
    #[serde(flatten)]
    pub item: ItemView,
    pub attempts: Vec<AttemptView>,
}

/// A request as stored, raw body and headers included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredRequest {
    pub id: i64,
    pub received_at_ms: i64,
    pub platform: String,
    pub method: String,
    pub endpoint: String,
    pub source_ip: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The bytes received (the first 64 KiB when `body_truncated`); shown as
    /// text, with what is not UTF-8 replaced.
    #[serde(serialize_with = "lossy_text")]
    pub body: Vec<u8>,
    pub body_size: u64,
    pub body_truncated: bool,
    pub http_status: u16,
    pub outcome: String,
    pub reason: Option<String>,
    pub shop: Option<String>,
    pub topic: Option<String>,
    pub webhook_id: Option<String>,
    pub order_id: Option<i64>,
    #[serde(flatten)]
    pub replays: Replays,
}

fn lossy_text<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(bytes))
}

/// A page of requests and how many match in all.
#[derive(Debug, Clone, Serialize)]
pub struct RequestPage {
    pub requests: Vec<RequestView>,
    pub total: i64,
}

/// What an operator looks at first.
#[derive(Debug, Clone, Serialize)]
pub struct Dashboard {
    pub enrollments_by_state: Vec<(EnrollmentState, i64)>,
    pub orders_by_state: Vec<(OrderState, i64)>,
    /// When the longest-waiting pending enrollment was (or is) due.
    pub oldest_pending_due_ms: Option<i64>,
    /// The last items that failed, newest first.
    pub recent_failures: Vec<RecentFailure>,
    pub lms: LmsStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecentFailure {
    pub order: OrderSummary,
    pub item_id: i64,
    pub email: Option<String>,
    pub course_key: Option<String>,
    pub reason: Option<String>,
    pub failed_at_ms: i64,
}

/// One reconciliation of one shop, as it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileRun {
    /// Orders the shop's API returned.
    pub fetched: u64,
    /// Orders no webhook had brought at all.
    pub new: u64,
    /// Orders we had, to which the fetched state brought something new.
    pub changed: u64,
    /// Orders we had as they are: nothing stored.
    pub unchanged: u64,
    /// Orders refused (not an order we can read, or one the database would
    /// not take), stored with the reason.
    pub refused: u64,
    /// The newest `updated_at` taken, in Unix ms.
    #[serde(skip)]
    pub watermark: Option<i64>,
    /// Why the shop could not be reconciled.
    pub error: Option<String>,
}

/// A shop's reconciliation as stored.
#[derive(Debug, Clone, Serialize)]
pub struct ReconciliationView {
    pub platform: String,
    pub shop: String,
    /// The newest order change taken so far.
    pub watermark_ms: Option<i64>,
    pub last_run_at_ms: Option<i64>,
    pub last_success_at_ms: Option<i64>,
    /// The last run's counts and error.
    pub last: ReconcileRun,
    /// Orders that reconciliation brought something no webhook had, all runs.
    pub found_total: u64,
}

/// What `prune` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub orders: u64,
    pub requests: u64,
}
