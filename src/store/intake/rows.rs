//! The rows intake writes, cut to their columns' sizes, the values each
//! binds in its statement's order (one list for both executors), and the
//! statements' texts.

use std::borrow::Cow;

use crate::domain::{EnrollmentState, Order, OrderState, Verified};
use crate::store::intake::plan::ItemFields;
use crate::store::intake::RequestRecord;
use crate::store::sql::clip;

/// A value bound to a statement's placeholder.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Text(Option<&'a str>),
    Int(Option<i64>),
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(text: &'a str) -> Self {
        Value::Text(Some(text))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(text: Option<&'a str>) -> Self {
        Value::Text(text)
    }
}

impl From<i64> for Value<'_> {
    fn from(n: i64) -> Self {
        Value::Int(Some(n))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(n: Option<i64>) -> Self {
        Value::Int(n)
    }
}

impl From<bool> for Value<'_> {
    fn from(flag: bool) -> Self {
        Value::Int(Some(i64::from(flag)))
    }
}

/// An order's columns as intake writes them, cut to their sizes.
pub struct OrderRow<'a> {
    pub platform: &'a str,
    pub shop: &'a str,
    pub external_id: &'a str,
    pub number: &'a str,
    pub buyer_email: Option<&'a str>,
    pub paid: bool,
    pub cancelled: bool,
}

impl<'a> OrderRow<'a> {
    pub fn new(platform: &'a str, shop: &'a str, order: &'a Order, flags: (bool, bool)) -> Self {
        OrderRow {
            platform,
            shop,
            external_id: clip(&order.id, 191),
            number: clip(&order.number, 191),
            buyer_email: order.buyer_email.as_deref().map(|e| clip(e, 320)),
            paid: flags.0,
            cancelled: flags.1,
        }
    }
}

/// An enrollment's intake columns, cut to their sizes.
pub struct ItemRow<'a> {
    pub sku: &'a str,
    pub course_key: Option<&'a str>,
    pub mode: Option<&'a str>,
    pub email: Option<&'a str>,
    pub action: &'static str,
    pub state: EnrollmentState,
    pub reason: Option<&'a str>,
}

impl<'a> ItemRow<'a> {
    pub fn new(f: &'a ItemFields) -> Self {
        ItemRow {
            sku: clip(&f.sku, 512),
            course_key: f.course_key.as_deref(),
            mode: f.mode.as_deref().map(|m| clip(m, 64)),
            email: f.email.as_deref(),
            action: f.action.as_str(),
            state: f.state,
            reason: f.reason.as_deref().map(|r| clip(r, 2000)),
        }
    }
}

/// A request's row, cut to its column sizes.
pub struct RequestRow<'a> {
    pub platform: &'static str,
    pub method: &'a str,
    pub endpoint: &'a str,
    pub source_ip: Option<&'a str>,
    pub headers: String,
    pub body: &'a [u8],
    pub body_size: i64,
    pub body_truncated: bool,
    pub http_status: u16,
    pub outcome: &'a str,
    pub reason: Option<Cow<'a, str>>,
    pub shop: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub webhook_id: Option<&'a str>,
    pub order_id: Option<i64>,
}

impl<'a> RequestRow<'a> {
    pub fn new(
        request: &'a RequestRecord,
        verified: Option<&'a Verified>,
        http_status: u16,
        outcome: &'a str,
        reason: Option<Cow<'a, str>>,
        order_id: Option<i64>,
    ) -> Self {
        let shop = verified
            .map(|v| v.shop.as_str())
            .or(request.envelope.shop.as_deref());
        let topic = verified
            .map(|v| v.topic.as_str())
            .or(request.envelope.topic.as_deref());
        RequestRow {
            platform: request.platform.as_str(),
            method: clip(&request.method, 16),
            endpoint: clip(&request.endpoint, 255),
            source_ip: request.source_ip.as_deref().map(|s| clip(s, 64)),
            headers: serde_json::to_string(&request.headers).unwrap_or_else(|_| "[]".into()),
            body: &request.body,
            body_size: request.body_size as i64,
            body_truncated: request.body_truncated,
            http_status,
            outcome,
            reason: reason.map(|r| clipped(r, 2000)),
            shop: shop.map(|s| clip(s, 255)),
            topic: topic.map(|s| clip(s, 255)),
            webhook_id: request.envelope.webhook_id.as_deref().map(|s| clip(s, 255)),
            order_id,
        }
    }
}

impl OrderRow<'_> {
    /// In the order of `statements::insert_order`.
    pub fn insert_values(&self, state: OrderState, now: i64) -> [Value<'_>; 10] {
        [
            self.platform.into(),
            self.shop.into(),
            self.external_id.into(),
            self.number.into(),
            self.buyer_email.into(),
            self.paid.into(),
            self.cancelled.into(),
            state.as_str().into(),
            now.into(),
            now.into(),
        ]
    }

    /// In the order of `statements::update_order`.
    pub fn update_values(&self, id: i64, now: i64) -> [Value<'_>; 10] {
        let (number, email, paid, cancelled) = (
            self.number.into(),
            self.buyer_email.into(),
            self.paid.into(),
            self.cancelled.into(),
        );
        [
            number,
            email,
            paid,
            cancelled,
            now.into(),
            id.into(),
            number,
            email,
            paid,
            cancelled,
        ]
    }
}

impl ItemRow<'_> {
    /// The columns inserting and updating an item share, in their order in
    /// `statements::INSERT_ITEM` and `statements::update_item`.
    pub fn values(&self, now: i64) -> Vec<Value<'_>> {
        vec![
            self.sku.into(),
            self.course_key.into(),
            self.mode.into(),
            self.email.into(),
            self.action.into(),
            self.state.as_str().into(),
            self.reason.into(),
            now.into(),
            now.into(),
        ]
    }

    /// In the order of `statements::INSERT_ITEM`.
    pub fn insert_values<'v>(
        &'v self,
        now: i64,
        order_id: i64,
        line_item_id: &'v str,
        part: i64,
    ) -> Vec<Value<'v>> {
        let mut values = self.values(now);
        values.extend::<[Value<'v>; 4]>([
            now.into(),
            order_id.into(),
            line_item_id.into(),
            part.into(),
        ]);
        values
    }

    /// In the order of `statements::update_item`.
    pub fn update_values(&self, id: i64, now: i64) -> Vec<Value<'_>> {
        let mut values = self.values(now);
        values.push(id.into());
        values
    }
}

impl RequestRow<'_> {
    /// In the order of `statements::insert_request`.
    pub fn values(&self, now: i64) -> [Value<'_>; 16] {
        [
            now.into(),
            self.platform.into(),
            self.method.into(),
            self.endpoint.into(),
            self.source_ip.into(),
            self.headers.as_str().into(),
            Value::Bytes(self.body),
            self.body_size.into(),
            self.body_truncated.into(),
            i64::from(self.http_status).into(),
            self.outcome.into(),
            self.reason.as_deref().into(),
            self.shop.into(),
            self.topic.into(),
            self.webhook_id.into(),
            self.order_id.into(),
        ]
    }
}

/// Text cut to `max_chars`, borrowed or owned as it came.
fn clipped(text: Cow<'_, str>, max_chars: usize) -> Cow<'_, str> {
    match text {
        Cow::Borrowed(text) => Cow::Borrowed(clip(text, max_chars)),
        Cow::Owned(text) => Cow::Owned(clip(&text, max_chars).to_owned()),
    }
}

/// The statements of intake, spelled for one database (`?` placeholders).
pub mod statements {
    use crate::domain::EnrollmentState;
    use crate::store::dialect::Dialect;

    pub const ACCEPTED_WEBHOOK: &str =
        "SELECT order_id FROM requests WHERE platform = ? AND shop = ? AND webhook_id = ? \
         AND outcome IN ('accepted', 'awaiting_payment') LIMIT 1";

    /// [`ACCEPTED_WEBHOOK`] for `keys` webhooks in one statement, each an
    /// exact lookup of the index: `k` (the key's place), `order_id`.
    pub fn accepted_webhooks(keys: usize) -> String {
        (0..keys)
            .map(|k| {
                format!(
                    "SELECT {k} AS k, order_id FROM requests WHERE platform = ? AND shop = ? AND webhook_id = ? \
                     AND outcome IN ('accepted', 'awaiting_payment')"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// Returns the new row's id where the database can (not MySQL).
    pub fn insert_order(dialect: Dialect) -> String {
        insert_orders(dialect, 1)
    }

    /// `rows` orders in one statement, those that exist left as they are.
    /// Where the database can (not MySQL), returns the new rows' ids, first,
    /// with their keys: `id, platform, shop, external_id`.
    pub fn insert_orders(dialect: Dialect, rows: usize) -> String {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let insert = dialect.insert_or_ignore(&format!(
            "INTO orders (platform, shop, external_id, number, buyer_email, paid, cancelled, state, created_at, updated_at) \
             VALUES {}",
            vec![row; rows].join(", ")
        ));
        match dialect {
            Dialect::Postgres | Dialect::Sqlite => {
                format!("{insert} RETURNING id, platform, shop, external_id")
            }
            Dialect::MySql => insert,
        }
    }

    pub fn lock_order(dialect: Dialect) -> String {
        format!(
            "SELECT id, paid, cancelled FROM orders WHERE platform = ? AND shop = ? AND external_id = ?{}",
            dialect.for_update()
        )
    }

    /// Changes the row only when something differs (its count says which).
    pub fn update_order(dialect: Dialect) -> String {
        format!(
            "UPDATE orders SET number = ?, buyer_email = ?, paid = ?, cancelled = ?, updated_at = ? \
             WHERE id = ? AND NOT (number = ? AND buyer_email {eq} ? AND paid = ? AND cancelled = ?)",
            eq = dialect.null_safe_eq()
        )
    }

    pub const LOAD_ITEMS: &str =
        "SELECT id, line_item_id, part, sku, course_key, mode, email, action, state, before_enrollment \
         FROM enrollments WHERE order_id = ?";

    pub const INSERT_ITEM: &str =
        "INSERT INTO enrollments (sku, course_key, mode, email, action, state, reason, due_at, updated_at, \
         created_at, order_id, line_item_id, part, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)";

    /// `rows` items in one statement, as `INSERT_ITEM` inserts one.
    pub fn insert_items(rows: usize) -> String {
        let (columns, row) = INSERT_ITEM
            .split_once(" VALUES ")
            .unwrap_or((INSERT_ITEM, ""));
        format!("{columns} VALUES {}", vec![row; rows].join(", "))
    }

    /// Fresh attempts, and any claim's result is no longer written, except
    /// for a cancellation: an enrollment call in flight has its result
    /// recorded still (then undone where asked to), since the LMS acts on it.
    pub fn update_item(state: EnrollmentState) -> String {
        let claim = if state == EnrollmentState::Cancelled {
            ""
        } else {
            "claim_token = NULL, lease_until = NULL, "
        };
        format!(
            "UPDATE enrollments SET sku = ?, course_key = ?, mode = ?, email = ?, action = ?, state = ?, reason = ?, \
             due_at = ?, updated_at = ?, attempts = 0, {claim}account_wait_since = NULL \
             WHERE id = ? AND state IN ({})",
            crate::store::sql::sources_of(state)
        )
    }

    pub fn insert_request(dialect: Dialect) -> String {
        insert_requests(dialect, 1)
    }

    /// `rows` requests in one statement; their ids where the database can
    /// return them (not MySQL).
    pub fn insert_requests(dialect: Dialect, rows: usize) -> String {
        let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        returning_id(
            dialect,
            format!(
                "INSERT INTO requests (received_at, platform, method, endpoint, source_ip, headers, body, body_size, \
                 body_truncated, http_status, outcome, reason, shop, topic, webhook_id, order_id) VALUES {}",
                vec![row; rows].join(", ")
            ),
        )
    }

    pub fn order_cancelled(dialect: Dialect) -> String {
        format!(
            "SELECT cancelled FROM orders WHERE id = ?{}",
            dialect.for_update()
        )
    }

    pub const ITEM_STATES: &str = "SELECT state FROM enrollments WHERE order_id = ?";

    pub const SET_ORDER_STATE: &str = "UPDATE orders SET state = ?, updated_at = ? WHERE id = ?";

    fn returning_id(dialect: Dialect, insert: String) -> String {
        match dialect {
            Dialect::Postgres | Dialect::Sqlite => format!("{insert} RETURNING id"),
            Dialect::MySql => insert,
        }
    }
}
