//! The one place that speaks SQL. The rest of the service calls this API; the
//! statements live in a module per database backend.

mod dialect;
mod intake;
mod sql;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;

use crate::domain::{Action, CourseKey, EnrollmentState, LearnerEmail, OrderState, Platform};
use crate::domain::{Envelope, Judgement};

pub use dialect::Dialect;
pub use intake::IntakePolicy;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL '{0}': use sqlite://PATH, postgres://... or mysql://...")]
    UnsupportedUrl(String),
    #[error("cannot open the database {database}: {source}")]
    Connect {
        database: String,
        source: sqlx::Error,
    },
    /// An SQLite file that cannot be opened or created: a setting to fix.
    #[error("cannot open the SQLite database file {}: {source}", .path.display())]
    SqliteFile {
        path: std::path::PathBuf,
        source: sqlx::Error,
    },
    #[error("database error: {0}")]
    Embedded(#[from] rusqlite::Error),
    #[error("could not store the request: {0}")]
    Write(String),
    #[error("the claim's lease was lost to another worker")]
    LeaseLost,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
}

/// A request as received, stored whatever the verdict.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub platform: Platform,
    pub method: String,
    pub endpoint: String,
    pub source_ip: Option<String>,
    /// Header names and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body, or its first 64 KiB when it was over the limit.
    pub body: Vec<u8>,
    pub body_size: u64,
    pub body_truncated: bool,
    pub envelope: Envelope,
    /// Fetched from the shop's API, not delivered: stored only when it
    /// brings something new, so that reconciling unchanged orders adds no rows.
    pub fetched: bool,
}

/// How a trusted delivery was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeliveryTaken {
    /// Our id of the stored request (`None`: a fetched order with nothing new, not stored).
    pub request_id: Option<i64>,
    pub acceptance: crate::domain::Acceptance,
    /// Our id of the order it concerns, when it names one we have.
    pub order_id: Option<i64>,
    /// Whether it created that order.
    pub created_order: bool,
}

/// A batch of due enrollments that one worker owns until its lease runs out.
#[derive(Debug, Clone)]
pub struct Claim {
    pub token: String,
    pub work: ClaimedWork,
    pub items: Vec<ClaimedItem>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimedWork {
    /// Find which course a (non course key) SKU names.
    LookupSku { sku: String },
    /// One bulk enrollment request for one course; with a `mode` (a paid
    /// seat; not for `Invite`), one Enrollment API request for one learner.
    CallLms {
        course: CourseKey,
        action: Action,
        mode: Option<String>,
    },
}

impl ClaimedWork {
    /// Paid seats go through the Enrollment API, which takes one learner a call.
    pub fn one_learner_a_call(&self) -> bool {
        matches!(self, ClaimedWork::CallLms { mode: Some(_), action, .. } if *action != Action::Invite)
    }
}

#[derive(Debug, Clone)]
pub struct ClaimedItem {
    pub enrollment_id: i64,
    pub order_id: i64,
    pub platform: Platform,
    pub shop: String,
    pub order_number: String,
    /// Always present for `CallLms` claims: items without a valid email fail at intake.
    pub email: Option<LearnerEmail>,
    /// Attempts already spent.
    pub attempts: u32,
    /// Since when a paid seat has waited for its learner's account.
    pub awaiting_since_ms: Option<i64>,
}

/// Why there is no work for a worker right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idle {
    /// Nothing due; the next item is due at `next_due_ms` if any.
    NothingDue { next_due_ms: Option<i64> },
    /// The LMS asked everyone to wait (429 `Retry-After`).
    Throttled { until_ms: i64 },
    /// The shared rate limit is used up until `until_ms`.
    RateLimited { until_ms: i64 },
    /// The LMS is misconfigured; work waits until a probe succeeds.
    Misconfigured { reason: String },
}

#[derive(Debug)]
pub enum ClaimResult {
    Claimed(Claim),
    Idle(Idle),
}

/// What became of one claimed enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    Enrolled {
        before_enrollment: Option<bool>,
    },
    Unenrolled,
    Failed {
        reason: String,
    },
    /// A transient failure: one attempt spent, tried again after `delay`.
    RetryLater {
        delay: Duration,
        reason: String,
    },
    /// Nothing spent: the item goes back to the queue as it was.
    Released,
    CourseResolved(CourseKey),
    Skipped {
        reason: String,
    },
    /// A paid seat's learner has no account: checked again after `delay`,
    /// after an invitation first when `invite`. No attempt is spent.
    AwaitingAccount {
        delay: Duration,
        invite: bool,
    },
    /// An invited learner turned out to have an account: enroll in the mode now.
    AccountFound,
}

/// One LMS call as it concerned one enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub action: Action,
    pub http_status: Option<u16>,
    pub outcome: String,
    /// That learner's part of the answer, or the error.
    pub detail: String,
    pub duration_ms: i64,
    /// Whether it spent one of the enrollment's attempts.
    pub counted: bool,
}

/// What every worker must learn about the LMS from one claim's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LmsCondition {
    Throttled { until_ms: i64 },
    Misconfigured { reason: String, probe_in: Duration },
}

#[derive(Debug, Clone)]
pub struct ClaimReport {
    pub token: String,
    pub results: Vec<(i64, ItemResult, Option<AttemptRecord>)>,
    pub lms: Option<LmsCondition>,
}

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

/// The LMS condition every process shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LmsStatus {
    pub paused_until_ms: i64,
    pub misconfigured: Option<String>,
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

/// How a request was answered and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// `None` for a fetched order that brought nothing new: it is not stored.
    pub request_id: Option<i64>,
    pub http_status: u16,
    /// The answer's `status`: `ping`, `rejected`, or how a trusted delivery
    /// was taken (`accepted`, `duplicate`, `awaiting_payment`, `ignored`).
    pub status: String,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// How a trusted delivery was taken.
    #[serde(skip)]
    pub acceptance: Option<crate::domain::Acceptance>,
    /// Our id of the order a trusted delivery concerns.
    pub order_id: Option<i64>,
    /// Whether the delivery created that order.
    #[serde(skip)]
    pub created_order: bool,
}

impl Verdict {
    pub fn trusted(&self) -> bool {
        self.http_status < 400
    }
}

/// The service's storage. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sql::SqlStore,
    work_available: Arc<Notify>,
    intake: writer::IntakeWriter,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let db = sql::SqlStore::connect(url).await?;
        db.migrate().await?;
        let work_available = Arc::new(Notify::new());
        Ok(Store {
            intake: writer::IntakeWriter::start(db.clone(), work_available.clone()),
            db,
            work_available,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Woken whenever this process stores new due work.
    pub fn work_available(&self) -> Arc<Notify> {
        self.work_available.clone()
    }

    /// Whether the database answers and its schema is current.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    /// Stores a request that was answered without trusting it (ping, rejection).
    pub async fn record_request(
        &self,
        request: &RequestRecord,
        http_status: u16,
        outcome: &'static str,
        reason: Option<&str>,
    ) -> Result<i64, StoreError> {
        let write = sql::IntakeWrite::Record {
            request: request.clone(),
            http_status,
            outcome,
            reason: reason.map(str::to_owned),
        };
        let written = self.intake.write(write).await?;
        written
            .request_id
            .ok_or_else(|| StoreError::Invalid("a recorded request has no id".into()))
    }

    /// Stores a trusted delivery with everything it implies, durably, and says
    /// how it was taken. Concurrent deliveries share one transaction.
    pub async fn accept_delivery(
        &self,
        request: &RequestRecord,
        verified: &crate::domain::Verified,
        policy: IntakePolicy,
    ) -> Result<DeliveryTaken, StoreError> {
        let write = sql::IntakeWrite::Accept {
            request: request.clone(),
            verified: verified.clone(),
            policy,
        };
        let written = self.intake.write(write).await?;
        let acceptance = written.acceptance.ok_or_else(|| {
            StoreError::Invalid("a trusted delivery was stored without a verdict".into())
        })?;
        Ok(DeliveryTaken {
            request_id: written.request_id,
            acceptance,
            order_id: written.order_id,
            created_order: written.created_order,
        })
    }

    /// Stores a request with its judgement and everything that implies.
    pub async fn record_judgement(
        &self,
        request: &RequestRecord,
        judgement: &Judgement,
        policy: IntakePolicy,
    ) -> Result<Verdict, StoreError> {
        let verdict = |request_id, http_status, status: &str, reason| Verdict {
            request_id,
            http_status,
            status: status.to_owned(),
            reason,
            acceptance: None,
            order_id: None,
            created_order: false,
        };
        match judgement {
            Judgement::Ping => {
                let id = self.record_request(request, 200, "ping", None).await?;
                Ok(verdict(Some(id), 200, "ping", None))
            }
            Judgement::Rejected(rejection) => {
                let status = rejection.status().as_u16();
                let reason = rejection.to_string();
                let id = self
                    .record_request(request, status, "rejected", Some(&reason))
                    .await?;
                Ok(verdict(Some(id), status, "rejected", Some(reason)))
            }
            Judgement::Trusted(verified) => {
                let taken = self.accept_delivery(request, verified, policy).await?;
                Ok(Verdict {
                    acceptance: Some(taken.acceptance),
                    order_id: taken.order_id,
                    created_order: taken.created_order,
                    ..verdict(taken.request_id, 200, taken.acceptance.as_str(), None)
                })
            }
        }
    }

    /// Claims up to `batch` due enrollments of one course under a lease.
    pub async fn claim_next(
        &self,
        batch: usize,
        lease: Duration,
        rate_limit: u32,
    ) -> Result<ClaimResult, StoreError> {
        self.db.claim_next(batch, lease, rate_limit).await
    }

    /// Extends a claim's lease; `LeaseLost` when another worker owns it now.
    pub async fn renew_claim(&self, token: &str, lease: Duration) -> Result<(), StoreError> {
        self.db.renew_claim(token, lease).await
    }

    /// Writes a claim's results; items no longer held under its token are left alone.
    /// An item cancelled while its enrollment call was in flight takes the
    /// call's result; `unenroll_on_cancel` says whether an enrollment it gave
    /// is then undone (`EDX_WEBHOOKS_UNENROLL_ON_CANCEL`).
    pub async fn finish_claim(
        &self,
        report: &ClaimReport,
        unenroll_on_cancel: bool,
    ) -> Result<usize, StoreError> {
        let written = self.db.finish_claim(report, unenroll_on_cancel).await?;
        if report
            .results
            .iter()
            .any(|(_, r, _)| matches!(r, ItemResult::CourseResolved(_) | ItemResult::Released))
        {
            self.work_available.notify_waiters();
        }
        Ok(written)
    }

    pub async fn lms_status(&self) -> Result<LmsStatus, StoreError> {
        self.db.lms_status().await
    }

    /// Takes the right to probe a misconfigured LMS now; the next probe is due
    /// after `interval`. `None` when the LMS is not misconfigured or another
    /// worker probes.
    pub async fn claim_probe(&self, interval: Duration) -> Result<Option<String>, StoreError> {
        self.db.claim_probe(interval).await
    }

    /// Records that the LMS is healthy again, so work resumes.
    pub async fn clear_misconfigured(&self) -> Result<(), StoreError> {
        self.db.clear_misconfigured().await?;
        self.work_available.notify_waiters();
        Ok(())
    }

    /// Makes the failed items of an order pending again with fresh attempts.
    /// `order` is the shop's order id or number, or our own id.
    pub async fn retry_order(&self, order: &str, shop: Option<&str>) -> Result<u64, StoreError> {
        let order_id = self.db.find_order(order, shop).await?;
        self.retry_order_id(order_id).await
    }

    /// The same for the order with our own id `order_id` (never a shop's number).
    pub async fn retry_order_id(&self, order_id: i64) -> Result<u64, StoreError> {
        let n = self.db.retry_failed(Some(order_id)).await?;
        self.work_available.notify_waiters();
        Ok(n)
    }

    /// Makes every failed item pending again with fresh attempts.
    pub async fn retry_all_failed(&self) -> Result<u64, StoreError> {
        let n = self.db.retry_failed(None).await?;
        self.work_available.notify_waiters();
        Ok(n)
    }

    pub async fn find_order(&self, order: &str, shop: Option<&str>) -> Result<i64, StoreError> {
        self.db.find_order(order, shop).await
    }

    pub async fn order_view(&self, order_id: i64) -> Result<OrderView, StoreError> {
        self.db.order_view(order_id).await
    }

    pub async fn attempts(&self, enrollment_id: i64) -> Result<Vec<AttemptView>, StoreError> {
        self.db.attempts(enrollment_id).await
    }

    pub async fn requests(&self, limit: i64) -> Result<Vec<RequestView>, StoreError> {
        self.db.requests(limit).await
    }

    pub async fn count_enrollments(&self) -> Result<Vec<(EnrollmentState, i64)>, StoreError> {
        self.db.count_enrollments().await
    }

    /// Orders matching `query`, newest first, and how many match in all.
    pub async fn list_orders(&self, query: &OrderQuery) -> Result<OrderPage, StoreError> {
        self.db.list_orders(query).await
    }

    /// An order with its items, their attempts, and its requests.
    pub async fn order_detail(&self, order_id: i64) -> Result<OrderDetail, StoreError> {
        self.db.order_detail(order_id).await
    }

    /// One stored request, raw body included (to look at or replay).
    pub async fn request(&self, request_id: i64) -> Result<StoredRequest, StoreError> {
        self.db.request(request_id).await
    }

    /// Starts an admin session, found later by `id_hash`, and forgets expired ones.
    pub async fn open_admin_session(
        &self,
        id_hash: &str,
        csrf: &str,
        lifetime: Duration,
    ) -> Result<(), StoreError> {
        self.db.open_admin_session(id_hash, csrf, lifetime).await
    }

    /// The CSRF token of the live admin session `id_hash` names.
    pub async fn admin_session(&self, id_hash: &str) -> Result<Option<String>, StoreError> {
        self.db.admin_session(id_hash).await
    }

    pub async fn close_admin_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.db.close_admin_session(id_hash).await
    }

    /// Requests answered 400 or above, newest first, and how many there are;
    /// `unresolved_only`: leaves out those since taken in by a replay.
    pub async fn rejected_requests(
        &self,
        limit: i64,
        offset: i64,
        unresolved_only: bool,
    ) -> Result<RequestPage, StoreError> {
        self.db
            .rejected_requests(limit, offset, unresolved_only)
            .await
    }

    /// Records that request `replay` judged `original` again.
    pub async fn link_replay(&self, replay: i64, original: i64) -> Result<(), StoreError> {
        self.db.link_replay(replay, original).await
    }

    /// Gives a failed item a corrected learner email and makes it pending
    /// again with fresh attempts. `Invalid` for an item that did not fail.
    pub async fn set_email(
        &self,
        enrollment_id: i64,
        email: &LearnerEmail,
    ) -> Result<(), StoreError> {
        self.db.set_email(enrollment_id, email).await?;
        self.work_available.notify_waiters();
        Ok(())
    }

    pub async fn dashboard(&self) -> Result<Dashboard, StoreError> {
        self.db.dashboard().await
    }

    /// Deletes finished (`enrolled` or `cancelled`) orders last changed more
    /// than `older_than` ago, with their items, attempts and requests, and the
    /// requests of no order received before then. Never touches an order
    /// that still needs work or attention.
    pub async fn prune(&self, older_than: Duration) -> Result<PruneReport, StoreError> {
        self.db.prune(older_than).await
    }

    /// Takes the right to reconcile a shop for `lease` (from the database's
    /// clock): its token and the shop's watermark, or `None` while another
    /// process holds it.
    pub async fn claim_reconciliation(
        &self,
        platform: Platform,
        shop: &str,
        lease: Duration,
    ) -> Result<Option<(String, Option<i64>)>, StoreError> {
        self.db
            .claim_reconciliation(platform.as_str(), shop, lease)
            .await
    }

    /// Records a run and gives the shop back; false when the lease was lost.
    pub async fn finish_reconciliation(
        &self,
        platform: Platform,
        shop: &str,
        token: &str,
        run: &ReconcileRun,
    ) -> Result<bool, StoreError> {
        self.db
            .finish_reconciliation(platform.as_str(), shop, token, run)
            .await
    }

    /// Gives a shop back without recording a run (the process is stopping).
    pub async fn release_reconciliation(
        &self,
        platform: Platform,
        shop: &str,
        token: &str,
    ) -> Result<(), StoreError> {
        self.db
            .release_reconciliation(platform.as_str(), shop, token)
            .await
    }

    /// Every shop's last reconciliation.
    pub async fn reconciliations(&self) -> Result<Vec<ReconciliationView>, StoreError> {
        self.db.reconciliations().await
    }

    /// How long the longest-waiting due enrollment has been due (zero when
    /// nothing due waits): grows while workers do not keep up or work is paused.
    pub async fn oldest_due_pending(&self) -> Result<Duration, StoreError> {
        let ms = self.db.oldest_due_pending_ms().await?;
        Ok(Duration::from_millis(ms.max(0) as u64))
    }
}

/// Milliseconds since the Unix epoch on this machine's clock (the SQLite
/// database's clock is this machine's).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
