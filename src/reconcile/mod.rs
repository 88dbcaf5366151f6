//! Reconciliation: fetch each shop's orders changed since its watermark and
//! take every one through the same intake path as a delivery, marked as
//! fetched, so that what a lost webhook would have done is done. One process
//! at a time reconciles a shop (a lease in the database).

pub mod api;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{source_key, Config};
use crate::domain::{Acceptance, Envelope, Platform};
use crate::intake::{self, Arrival};
use crate::metrics::Metrics;
use crate::store::{IntakePolicy, Outcome, ReconcileRun, RequestRecord, Store, Taken};
use api::{ApiError, FetchedOrder, WooAuth};

/// A watermark is moved back by this much: orders changed while a page was
/// read, or a shop's clock a little behind, are still seen next time.
pub const OVERLAP: Duration = Duration::from_secs(5 * 60);
/// How long a process holds a shop while reconciling it.
const LEASE: Duration = Duration::from_secs(15 * 60);
/// Fetched orders taken in at once.
const IN_FLIGHT: usize = 32;
/// One API request's limit.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// One shop's reconciliation, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct ShopReport {
    pub platform: &'static str,
    pub shop: String,
    #[serde(flatten)]
    pub run: ReconcileRun,
    /// Another process was reconciling the shop: nothing done here.
    pub skipped: bool,
}

/// Reconciles the shops that have API access configured.
#[derive(Clone)]
pub struct Reconciler {
    config: Arc<Config>,
    store: Store,
    metrics: Metrics,
    client: reqwest::Client,
    /// Per WooCommerce shop, how its key gets through (remembered once learnt).
    woo_auth: Arc<Mutex<HashMap<String, WooAuth>>>,
}

impl Reconciler {
    pub fn new(config: Arc<Config>, store: Store, metrics: Metrics) -> Reconciler {
        Reconciler {
            config,
            store,
            metrics,
            client: client(),
            woo_auth: Arc::default(),
        }
    }

    /// Every shop with API access, (platform, shop).
    pub fn shops(&self) -> Vec<(Platform, String)> {
        let shopify = self.config.shopify.iter().filter(|s| s.api.is_some());
        let woo = self.config.woocommerce.iter().filter(|s| s.api.is_some());
        shopify
            .map(|s| (Platform::Shopify, s.domain.trim().to_ascii_lowercase()))
            .chain(woo.map(|s| (Platform::WooCommerce, s.source.clone())))
            .collect()
    }

    /// Reconciles every shop (or those matching `only`) once. `since`
    /// overrides the watermark: orders changed in that last stretch.
    pub async fn run_once(&self, since: Option<Duration>, only: Option<&str>) -> Vec<ShopReport> {
        self.run_until(since, only, &CancellationToken::new()).await
    }

    /// The same, stopping early (the shop being fetched given back) once `stop` is cancelled.
    async fn run_until(
        &self,
        since: Option<Duration>,
        only: Option<&str>,
        stop: &CancellationToken,
    ) -> Vec<ShopReport> {
        let mut reports = Vec::new();
        for (platform, shop) in self.shops() {
            if only.is_some_and(|o| !same_shop(platform, o, &shop)) {
                continue;
            }
            if stop.is_cancelled() {
                break;
            }
            reports.push(self.reconcile_shop(platform, &shop, since, stop).await);
        }
        reports
    }

    /// One shop, under its lease.
    pub async fn reconcile_shop(
        &self,
        platform: Platform,
        shop: &str,
        since: Option<Duration>,
        stop: &CancellationToken,
    ) -> ShopReport {
        let report = |run: ReconcileRun, skipped| ShopReport {
            platform: platform.as_str(),
            shop: shop.to_owned(),
            run,
            skipped,
        };
        let (token, watermark) = match self.store.claim_reconciliation(platform, shop, LEASE).await
        {
            Ok(Some(claimed)) => claimed,
            Ok(None) => return report(ReconcileRun::default(), true),
            Err(e) => {
                return report(
                    ReconcileRun {
                        error: Some(format!("the database: {e}")),
                        ..ReconcileRun::default()
                    },
                    false,
                )
            }
        };
        let now = crate::store::now_ms();
        let since_ms = match (since, watermark) {
            (Some(since), _) => now - since.as_millis() as i64,
            (None, Some(mark)) => mark - OVERLAP.as_millis() as i64,
            (None, None) => now - self.config.reconcile_lookback.as_millis() as i64,
        };
        let work = async {
            match self.fetch(platform, shop, since_ms).await {
                Ok(orders) => self.take_all(platform, shop, orders, now).await,
                Err(e) => ReconcileRun {
                    error: Some(e.to_string()),
                    ..ReconcileRun::default()
                },
            }
        };
        let run = tokio::select! {
            run = work => run,
            _ = stop.cancelled() => {
                // What was taken is stored; the next run starts from the same watermark.
                if let Err(e) = self.store.release_reconciliation(platform, shop, &token).await {
                    warn!(%platform, shop, error = %e, "could not give the shop back; its lease runs out by itself");
                }
                return report(ReconcileRun::default(), true);
            }
        };
        for (result, count) in [
            ("new", run.new),
            ("changed", run.changed),
            ("unchanged", run.unchanged),
            ("refused", run.refused),
            ("error", u64::from(run.error.is_some())),
        ] {
            if count > 0 {
                self.metrics.reconciled(platform, shop, result, count);
            }
        }
        match &run.error {
            None => {
                info!(%platform, shop, fetched = run.fetched, new = run.new, changed = run.changed, unchanged = run.unchanged, refused = run.refused, "shop reconciled")
            }
            Some(error) => {
                warn!(%platform, shop, %error, "shop could not be reconciled; tried again at the next interval")
            }
        }
        if let Err(e) = self
            .store
            .finish_reconciliation(platform, shop, &token, &run)
            .await
        {
            warn!(%platform, shop, error = %e, "could not record the reconciliation");
        }
        report(run, false)
    }

    async fn fetch(
        &self,
        platform: Platform,
        shop: &str,
        since_ms: i64,
    ) -> Result<Vec<FetchedOrder>, ApiError> {
        match platform {
            Platform::Shopify => {
                let api = self
                    .config
                    .shopify
                    .iter()
                    .find(|s| same_shop(platform, &s.domain, shop))
                    .and_then(|s| s.api.as_ref())
                    .ok_or_else(|| ApiError::Credentials("the shop has no API access".into()))?;
                api::shopify_orders(&self.client, api, since_ms, 250).await
            }
            Platform::WooCommerce => {
                let api = self
                    .config
                    .woocommerce
                    .iter()
                    .find(|s| same_shop(platform, &s.source, shop))
                    .and_then(|s| s.api.as_ref())
                    .ok_or_else(|| ApiError::Credentials("the shop has no API access".into()))?;
                let mut auth = self.woo_auth(shop);
                let orders =
                    api::woocommerce_orders(&self.client, api, since_ms, 100, &mut auth).await;
                self.woo_auth
                    .lock()
                    .expect("woo auth")
                    .insert(shop.to_owned(), auth);
                orders
            }
        }
    }

    fn woo_auth(&self, shop: &str) -> WooAuth {
        self.woo_auth
            .lock()
            .expect("woo auth")
            .get(shop)
            .copied()
            .unwrap_or(WooAuth::Basic)
    }

    /// Takes each order through intake; stops at a database error (the
    /// watermark then stays, so the next run sees the same orders).
    async fn take_all(
        &self,
        platform: Platform,
        shop: &str,
        orders: Vec<FetchedOrder>,
        now: i64,
    ) -> ReconcileRun {
        let policy = IntakePolicy::from_config(&self.config);
        let mut run = ReconcileRun {
            fetched: orders.len() as u64,
            ..ReconcileRun::default()
        };
        let mut newest: Option<i64> = None;
        let mut orders = orders.into_iter().peekable();
        while orders.peek().is_some() {
            // Several at once: the intake writer commits them together.
            let mut batch = tokio::task::JoinSet::new();
            for order in orders.by_ref().take(IN_FLIGHT) {
                let (store, config) = (self.store.clone(), self.config.clone());
                let policy = policy.clone();
                let shop = shop.to_owned();
                batch.spawn(async move {
                    let record = fetched_record(platform, &shop, order.body);
                    let arrival = Arrival::Fetched {
                        platform,
                        shop: &shop,
                    };
                    let headers = http::HeaderMap::new();
                    let taken =
                        intake::take(&store, &config, policy, arrival, &headers, &record).await;
                    (taken, order.updated_at_ms)
                });
            }
            while let Some(joined) = batch.join_next().await {
                let (taken, updated_at_ms) = match joined {
                    Ok(done) => done,
                    Err(e) => {
                        run.error = Some(format!("could not take a fetched order: {e}"));
                        continue;
                    }
                };
                match taken {
                    Ok(outcome) => {
                        match outcome {
                            // Ignored: the order could not be stored, and says why.
                            Outcome::Taken(Taken {
                                acceptance: Acceptance::Ignored,
                                ..
                            })
                            | Outcome::Ping { .. }
                            | Outcome::Rejected { .. } => run.refused += 1,
                            Outcome::Taken(Taken {
                                acceptance: Acceptance::Duplicate,
                                ..
                            }) => run.unchanged += 1,
                            Outcome::Taken(taken) if taken.created_order => run.new += 1,
                            Outcome::Taken(_) => run.changed += 1,
                        }
                        newest = newest.max(updated_at_ms);
                    }
                    Err(e) => run.error = Some(format!("could not store a fetched order: {e}")),
                }
            }
            if run.error.is_some() {
                return run;
            }
        }
        // A shop's clock ahead of ours must not push the watermark past now.
        run.watermark = newest.map(|mark| mark.min(now));
        run
    }

    /// Runs every `interval` until `stop`, in the background.
    pub fn spawn(self, interval: Duration, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                self.run_until(None, None, &stop).await;
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(interval) => {}
                }
            }
        })
    }
}

/// A fetched order as a stored request: marked fetched, no credential in it.
fn fetched_record(platform: Platform, shop: &str, body: Vec<u8>) -> RequestRecord {
    RequestRecord {
        platform,
        method: "GET".into(),
        endpoint: intake::fetched_endpoint(platform),
        source_ip: None,
        headers: vec![("content-type".into(), "application/json".into())],
        body_size: body.len() as u64,
        body_truncated: false,
        body,
        envelope: Envelope {
            shop: Some(shop.to_owned()),
            topic: None,
            webhook_id: None,
        },
        fetched: true,
    }
}

/// Whether `a` and `b` name one shop of `platform`: a Shopify domain in any
/// case, a WooCommerce source as the settings and the intake compare it.
fn same_shop(platform: Platform, a: &str, b: &str) -> bool {
    match platform {
        Platform::Shopify => a
            .trim()
            .trim_end_matches('/')
            .eq_ignore_ascii_case(b.trim().trim_end_matches('/')),
        Platform::WooCommerce => source_key(a) == source_key(b),
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(API_TIMEOUT)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("edx-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("an HTTP client")
}

/// What `check` says about each shop's API access: `Ok(note)` or the problem with its fix.
pub async fn probe(config: &Config) -> Vec<(Platform, String, Result<Option<String>, String>)> {
    let client = client();
    let mut out = Vec::new();
    for shop in &config.shopify {
        if let Some(api) = &shop.api {
            let result = api::probe_shopify(&client, api).await.map(|()| None);
            out.push((
                Platform::Shopify,
                shop.domain.clone(),
                result.map_err(|e| e.to_string()),
            ));
        }
    }
    for shop in &config.woocommerce {
        if let Some(api) = &shop.api {
            let result = api::probe_woocommerce(&client, api).await.map(|auth| match auth {
                WooAuth::Basic => None,
                WooAuth::QueryParameters => Some(
                    "the server strips the Authorization header; the key works as query parameters, which reconciliation uses (or fix the server: e.g. `SetEnvIf Authorization \"(.*)\" HTTP_AUTHORIZATION=$1` for Apache)".to_owned(),
                ),
            });
            out.push((
                Platform::WooCommerce,
                shop.source.clone(),
                result.map_err(|e| e.to_string()),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
