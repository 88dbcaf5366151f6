//! The workers: claim a batch of one course's due enrollments under a lease,
//! call the LMS while renewing the lease, record each learner's result.

mod outcome;
mod problems;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::config::{Config, RetryPolicy};
use crate::lms::LmsClient;
use crate::store::{
    now_ms, Claim, ClaimReport, ClaimResult, ClaimedWork, Idle, ItemResult, Store, StoreError,
};

pub use outcome::{audit_reason, backoff, AccountWait};
use problems::{ProblemLog, MISCONFIGURED_REMINDER};

/// The longest an idle worker sleeps before looking again (work may come from
/// another process, which cannot wake it).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// A worker waiting less than this (a batch filling up) is not woken by new work.
const LISTEN_AFTER: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct JobSettings {
    pub batch_size: usize,
    pub rate_limit: u32,
    pub retry: RetryPolicy,
    /// Longer than twice the LMS timeout; renewed while a call runs.
    pub lease: Duration,
    /// How often a misconfigured LMS is probed.
    pub probe_interval: Duration,
    /// How long paid seats wait for their learners to register.
    pub account: AccountWait,
    /// Whether a cancellation undoes an enrollment our order gave.
    pub unenroll_on_cancel: bool,
}

impl JobSettings {
    pub fn from_config(config: &Config) -> JobSettings {
        JobSettings {
            batch_size: config.lms.batch_size,
            rate_limit: config.lms.rate_limit,
            retry: config.retry,
            lease: config.lms.timeout * 2 + Duration::from_secs(10),
            probe_interval: config
                .retry
                .first_delay
                .clamp(Duration::from_millis(10), Duration::from_secs(30)),
            account: AccountWait {
                wait: config.account_wait,
                recheck_max: config.account_recheck_max,
            },
            unenroll_on_cancel: config.unenroll_on_cancel,
        }
    }
}

/// Starts `count` workers; they stop when `shutdown` is cancelled, after
/// finishing the claim in hand.
pub fn spawn_workers(
    count: usize,
    store: Store,
    lms: Arc<LmsClient>,
    settings: JobSettings,
    shutdown: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    if count > 0 {
        store.listen_for_work(shutdown.clone());
    }
    let problems = Arc::new(ProblemLog::default());
    for n in 0..count {
        let worker = Worker {
            problems: problems.clone(),
            store: store.clone(),
            lms: lms.clone(),
            settings: settings.clone(),
            shutdown: shutdown.clone(),
        };
        set.spawn(
            worker
                .run()
                .instrument(tracing::info_span!("worker", worker = n)),
        );
    }
    set
}

struct Worker {
    problems: Arc<ProblemLog>,
    store: Store,
    lms: Arc<LmsClient>,
    settings: JobSettings,
    shutdown: CancellationToken,
}

impl Worker {
    async fn run(self) {
        let work_available = self.store.work_available();
        while !self.shutdown.is_cancelled() {
            // Registered before looking, so work stored meanwhile still wakes us.
            let notified = work_available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let (wait, listen) = match self
                .store
                .claim_next(
                    self.settings.batch_size,
                    self.settings.lease,
                    self.settings.rate_limit,
                )
                .await
            {
                Ok(ClaimResult::Claimed(claim)) => {
                    self.process(claim).await;
                    continue;
                }
                Ok(ClaimResult::Idle(idle)) => self.idle_wait(idle).await,
                Err(e) => {
                    warn!(error = %e, "could not claim work; trying again shortly");
                    (Duration::from_secs(1), false)
                }
            };
            if wait.is_zero() {
                continue;
            }
            tokio::select! {
                _ = &mut notified, if listen => {}
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
    }

    /// How long to wait before looking for work again, and whether new work
    /// may cut the wait short. It may only when the worker is idle: while a
    /// batch fills, the LMS is throttled or misconfigured, new work changes
    /// nothing, and looking on every delivery would only burn CPU.
    async fn idle_wait(&self, idle: Idle) -> (Duration, bool) {
        let until = |ms: i64| Duration::from_millis((ms - now_ms()).max(0) as u64);
        match idle {
            Idle::NothingDue { next_due_ms } => {
                let wait = next_due_ms.map(until).unwrap_or(IDLE_POLL).min(IDLE_POLL);
                (wait, wait >= LISTEN_AFTER)
            }
            Idle::Throttled { until_ms } | Idle::RateLimited { until_ms } => {
                (until(until_ms), false)
            }
            Idle::Misconfigured { reason } => {
                if let Err(e) = self.probe_if_due(&reason).await {
                    warn!(error = %e, "could not record the LMS probe");
                }
                (self.settings.probe_interval, false)
            }
        }
    }

    async fn probe_if_due(&self, reason: &str) -> Result<(), StoreError> {
        if self
            .store
            .claim_probe(self.settings.probe_interval)
            .await?
            .is_none()
        {
            return Ok(());
        }
        match self.lms.probe().await {
            Ok(()) => {
                info!(
                    was = reason,
                    "the LMS accepts bulk enrollment again; resuming work"
                );
                self.store.clear_misconfigured().await?;
                self.problems.clear();
            }
            Err(e) => {
                let problem = e.to_string();
                if self.problems.should_log(&problem, Instant::now()) {
                    warn!(
                        problem,
                        "the LMS is still misconfigured; enrollments wait (said again every {} min while it lasts)",
                        MISCONFIGURED_REMINDER.as_secs() / 60
                    );
                }
            }
        }
        Ok(())
    }

    async fn process(&self, claim: Claim) {
        let mut orders: Vec<i64> = claim.items.iter().map(|i| i.order_id).collect();
        orders.sort_unstable();
        orders.dedup();
        let orders = orders
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let span = tracing::info_span!("claim", claim = %claim.token, orders = %orders);
        async {
            if let Err(e) = self.process_claim(&claim).await {
                match e {
                    StoreError::LeaseLost => warn!("lease lost to another worker; its results are not written"),
                    e => warn!(error = %e, "could not record the claim's results; the lease will run out and the work be done again"),
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn process_claim(&self, claim: &Claim) -> Result<(), StoreError> {
        let report = match &claim.work {
            ClaimedWork::LookupSku { sku } => {
                let started = Instant::now();
                let found = self.with_lease(claim, self.lms.lookup_sku(sku)).await?;
                match &found {
                    Ok(Some(course)) => info!(sku, %course, "SKU names a course"),
                    Ok(None) => info!(sku, "SKU names no course"),
                    Err(e) => warn!(sku, problem = %e, "SKU lookup failed"),
                }
                let context = self.context(claim, crate::domain::Action::Enroll, started);
                context.report_sku_lookup(sku, found)
            }
            ClaimedWork::CallLms {
                course,
                action,
                mode: Some(mode),
            } if claim.work.one_learner_a_call() => {
                let Some((item, email)) = claim
                    .items
                    .first()
                    .and_then(|i| Some((i, i.email.as_ref()?)))
                else {
                    // Intake fails an item without a valid email: none reaches a claim.
                    let results = claim
                        .items
                        .iter()
                        .map(|i| {
                            let reason = "no valid learner email".to_owned();
                            (i.enrollment_id, ItemResult::Failed { reason }, None)
                        })
                        .collect();
                    let report = ClaimReport {
                        token: claim.token.clone(),
                        results,
                        lms: None,
                    };
                    return self.record(&report).await;
                };
                let started = Instant::now();
                let order = audit_reason(std::slice::from_ref(item));
                let active = *action == crate::domain::Action::Enroll;
                let answer = self
                    .with_lease(
                        claim,
                        self.lms.enroll_in_mode(course, mode, email, active, &order),
                    )
                    .await?;
                match &answer {
                    Ok(a) => {
                        info!(%course, mode, action = action.as_str(), status = a.status, "LMS answered")
                    }
                    Err(e) => {
                        warn!(%course, mode, action = action.as_str(), status = ?e.status(), problem = %e, "LMS call failed")
                    }
                }
                self.context(claim, *action, started)
                    .report_mode_enroll(answer, now_ms())
            }
            ClaimedWork::CallLms { course, action, .. } => {
                let mut identifiers: Vec<&str> = Vec::new();
                for item in &claim.items {
                    if let Some(email) = &item.email {
                        if !identifiers
                            .iter()
                            .any(|i| i.eq_ignore_ascii_case(email.as_str()))
                        {
                            identifiers.push(email.as_str());
                        }
                    }
                }
                let reason = audit_reason(&claim.items);
                let started = Instant::now();
                let answer = self
                    .with_lease(
                        claim,
                        self.lms.bulk_enroll(course, *action, &identifiers, &reason),
                    )
                    .await?;
                let context = self.context(claim, *action, started);
                match &answer {
                    Ok(a) => {
                        info!(%course, action = action.as_str(), learners = identifiers.len(), status = a.status, "LMS answered")
                    }
                    Err(e) => {
                        warn!(%course, action = action.as_str(), learners = identifiers.len(), status = ?e.status(), problem = %e, "LMS call failed")
                    }
                }
                context.report_bulk_enroll(answer, now_ms())
            }
        };
        self.record(&report).await
    }

    /// Writes a claim's results, retrying a failing database for a while: the
    /// LMS has acted, and a result lost here means the call is made again.
    async fn record(&self, report: &ClaimReport) -> Result<(), StoreError> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self
                .store
                .finish_claim(report, self.settings.unenroll_on_cancel)
                .await
            {
                Err(StoreError::Database(e)) if delay < self.settings.lease / 4 => {
                    warn!(error = %e, "could not record the LMS's answer; trying again");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                result => return result.map(|_| ()),
            }
        }
    }

    fn context<'a>(
        &'a self,
        claim: &'a Claim,
        action: crate::domain::Action,
        started: Instant,
    ) -> outcome::Context<'a> {
        outcome::Context {
            policy: &self.settings.retry,
            token: &claim.token,
            items: &claim.items,
            account: self.settings.account,
            action,
            duration_ms: started.elapsed().as_millis() as i64,
            probe_in: self.settings.probe_interval,
        }
    }

    /// Runs `work` while renewing the claim's lease; gives up (and the work's
    /// result with it) as soon as the lease is lost.
    async fn with_lease<T>(
        &self,
        claim: &Claim,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, StoreError> {
        tokio::pin!(work);
        let mut renew = tokio::time::interval(self.settings.lease / 3);
        renew.tick().await;
        loop {
            tokio::select! {
                result = &mut work => return Ok(result),
                _ = renew.tick() => self.store.renew_claim(&claim.token, self.settings.lease).await?,
            }
        }
    }
}
