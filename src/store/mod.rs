//! The one place that speaks SQL. The rest of the service calls this API,
//! `Store`, and sees the types it takes and gives: intake's (`intake`), the
//! queue's (`queue`), read models (`views`) and errors (`error`). The
//! statements live in `sql`, and intake's own in its wing.

mod dialect;
mod error;
mod intake;
mod queue;
mod sql;
mod views;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::domain::{EnrollmentState, Judgement, LearnerEmail, Platform};

pub use dialect::Dialect;
pub use error::StoreError;
pub use intake::{IntakePolicy, Outcome, RequestRecord, Taken};
pub use queue::*;
pub use views::*;

/// The service's storage. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sql::SqlStore,
    work_available: Arc<Notify>,
    intake: intake::IntakeWriter,
}

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let db = sql::SqlStore::connect(url).await?;
        db.migrate().await?;
        let work_available = Arc::new(Notify::new());
        Ok(Store {
            intake: intake::IntakeWriter::start(db.clone(), work_available.clone()),
            db,
            work_available,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Woken whenever this process stores new due work (and, once
    /// `listen_for_work` runs, whenever another process does).
    pub fn work_available(&self) -> Arc<Notify> {
        self.work_available.clone()
    }

    /// Wakes `work_available` when another process announces new work
    /// (PostgreSQL's `LISTEN`), until `stop`; on other databases, nothing.
    pub fn listen_for_work(&self, stop: tokio_util::sync::CancellationToken) {
        self.db.listen_for_work(self.work_available.clone(), stop);
    }

    /// Work became due: idle workers here and in other processes look now.
    async fn work_added(&self) {
        self.work_available.notify_waiters();
        self.db.announce().await;
    }

    /// Whether the database answers and its schema is current.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await
    }

    /// Stores a judged request with everything its judgement implies,
    /// durably (concurrent requests share one transaction), and says how it
    /// was taken.
    pub async fn take(
        &self,
        request: &RequestRecord,
        judgement: Judgement,
        policy: IntakePolicy,
    ) -> Result<Outcome, StoreError> {
        self.intake
            .write(intake::IntakeWrite {
                request: request.clone(),
                judgement,
                policy,
            })
            .await
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
        self.work_added().await;
        Ok(n)
    }

    /// Makes every failed item pending again with fresh attempts.
    pub async fn retry_all_failed(&self) -> Result<u64, StoreError> {
        let n = self.db.retry_failed(None).await?;
        self.work_added().await;
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
        self.work_added().await;
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
