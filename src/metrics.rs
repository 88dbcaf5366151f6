//! The service's Prometheus metrics: one registry per `App` (tests run many
//! apps in one process), handed down from `app.rs` to intake and the LMS client.
//! Counters and histograms are counted as things happen; the gauges that
//! describe the shared database are set from it when `/metrics` is scraped.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::domain::{Acceptance, EnrollmentState, Platform};

/// The `Content-Type` of what `encode` writes (Prometheus text, version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the intake histogram: a delivery is one durable commit.
const INTAKE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Upper bounds of the LMS histogram: many learners in one request take seconds.
const LMS_BUCKETS: [f64; 12] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// How a webhook request was answered: the `verdict` label of
/// `edx_webhooks_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 200: trusted and stored (`accepted`, `duplicate`, `awaiting_payment`, `ignored`).
    Taken(Acceptance),
    /// 200: a WooCommerce ping.
    Ping,
    /// Refused with this status (400, 403, 413), and stored with the reason.
    Rejected(u16),
    /// 503: the database could not be written; the shop will retry.
    Unavailable,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Taken(acceptance) => acceptance.as_str(),
            Verdict::Ping => "ping",
            Verdict::Rejected(400) => "rejected_400",
            Verdict::Rejected(403) => "rejected_403",
            Verdict::Rejected(413) => "rejected_413",
            Verdict::Rejected(_) => "rejected_other",
            Verdict::Unavailable => "unavailable",
        }
    }
}

/// Which LMS endpoint a request went to: the `call` label of the LMS series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmsCall {
    /// `POST /oauth2/access_token`.
    Token,
    /// `POST /api/bulk_enroll/v1/bulk_enroll` (enrollments, and the probe of a paused LMS).
    BulkEnroll,
    /// `HEAD {SKU_PREFIX}{SKU}`.
    SkuLookup,
    /// `POST /api/enrollment/v1/enrollment` (paid seats) and its course modes.
    Enrollment,
}

impl LmsCall {
    fn label(self) -> &'static str {
        match self {
            LmsCall::Token => "token",
            LmsCall::BulkEnroll => "bulk_enroll",
            LmsCall::SkuLookup => "sku_lookup",
            LmsCall::Enrollment => "enrollment",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    platform: &'static str,
    verdict: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LmsRequestLabels {
    call: &'static str,
    /// The HTTP status, or `error` when no answer came (connection failure, timeout).
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LmsCallLabels {
    call: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconciledLabels {
    platform: &'static str,
    shop: String,
    /// `new`, `changed`, `unchanged`, `refused`, or `error` (a run that failed).
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShopLabels {
    platform: String,
    shop: String,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

struct Series {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    intake_seconds: Histogram,
    lms_requests: Family<LmsRequestLabels, Counter>,
    lms_seconds: HistogramFamily<LmsCallLabels>,
    enrollments: Family<StateLabels, Gauge>,
    oldest_pending_seconds: Gauge<f64, AtomicU64>,
    lms_misconfigured: Gauge,
    settings_warnings: Gauge,
    reconciled: Family<ReconciledLabels, Counter>,
    reconcile_last_success: Family<ShopLabels, Gauge>,
}

/// What the database says at scrape time.
#[derive(Debug, Clone, Default)]
pub struct StoreFigures {
    pub enrollments: Vec<(EnrollmentState, i64)>,
    /// How long the longest-waiting due enrollment has been due.
    pub oldest_pending: Duration,
    pub lms_misconfigured: bool,
    /// Problems the settings show (see `/status`), read from this process's settings.
    pub settings_warnings: i64,
    /// Each reconciled shop (platform, shop) and when its last run succeeded (Unix ms).
    pub reconcile_last_success: Vec<(String, String, Option<i64>)>,
}

/// The metrics of one service instance. Cheap to clone.
#[derive(Clone)]
pub struct Metrics(Arc<Series>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("edx_webhooks");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Webhook requests answered, by platform and verdict",
            requests.clone(),
        );
        let intake_seconds = Histogram::new(INTAKE_BUCKETS);
        registry.register(
            "intake_seconds",
            "Time from a webhook request's arrival to its answer (the durable commit included)",
            intake_seconds.clone(),
        );
        let lms_requests = Family::<LmsRequestLabels, Counter>::default();
        registry.register(
            "lms_requests",
            "Requests made to the LMS, by endpoint and HTTP status (error: no answer)",
            lms_requests.clone(),
        );
        let lms_seconds: HistogramFamily<LmsCallLabels> =
            Family::new_with_constructor(|| Histogram::new(LMS_BUCKETS));
        registry.register(
            "lms_seconds",
            "Duration of LMS requests, by endpoint",
            lms_seconds.clone(),
        );
        let enrollments = Family::<StateLabels, Gauge>::default();
        registry.register(
            "enrollments",
            "Enrollments (a line item's course and learner) by state",
            enrollments.clone(),
        );
        let oldest_pending_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "oldest_pending_seconds",
            "How long the longest-waiting due enrollment has been due (0: none waits)",
            oldest_pending_seconds.clone(),
        );
        let lms_misconfigured = Gauge::default();
        registry.register(
            "lms_misconfigured",
            "1 while work is paused because the LMS is misconfigured (see /readyz), else 0",
            lms_misconfigured.clone(),
        );
        let settings_warnings = Gauge::default();
        registry.register(
            "settings_warnings",
            "Problems this process's settings show, e.g. a shop without a secret (see /status)",
            settings_warnings.clone(),
        );
        let reconciled = Family::<ReconciledLabels, Counter>::default();
        registry.register(
            "reconciled",
            "Orders fetched from the shops' APIs by this process's reconciliation, by result",
            reconciled.clone(),
        );
        let reconcile_last_success = Family::<ShopLabels, Gauge>::default();
        registry.register(
            "reconcile_last_success_timestamp_seconds",
            "When a shop was last reconciled without error (Unix time; 0: never)",
            reconcile_last_success.clone(),
        );
        Metrics(Arc::new(Series {
            reconciled,
            reconcile_last_success,
            registry,
            requests,
            intake_seconds,
            lms_requests,
            lms_seconds,
            enrollments,
            oldest_pending_seconds,
            lms_misconfigured,
            settings_warnings,
        }))
    }

    /// One webhook request answered.
    pub fn webhook_answered(&self, platform: Platform, verdict: Verdict, took: Duration) {
        self.0
            .requests
            .get_or_create(&RequestLabels {
                platform: platform.as_str(),
                verdict: verdict.label(),
            })
            .inc();
        self.0.intake_seconds.observe(took.as_secs_f64());
    }

    /// One request to the LMS; `status` is `None` when no answer came.
    pub fn lms_answered(&self, call: LmsCall, status: Option<u16>, took: Duration) {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        self.0
            .lms_requests
            .get_or_create(&LmsRequestLabels {
                call: call.label(),
                status,
            })
            .inc();
        self.0
            .lms_seconds
            .get_or_create(&LmsCallLabels { call: call.label() })
            .observe(took.as_secs_f64());
    }

    /// A shop's reconciliation counted: `result` is `new`, `changed`,
    /// `unchanged`, `refused` (orders) or `error` (runs).
    pub fn reconciled(&self, platform: Platform, shop: &str, result: &'static str, count: u64) {
        self.0
            .reconciled
            .get_or_create(&ReconciledLabels {
                platform: platform.as_str(),
                shop: shop.to_owned(),
                result,
            })
            .inc_by(count);
    }

    /// The series read from the database, then everything in Prometheus text.
    pub fn encode(&self, figures: &StoreFigures) -> String {
        let series = &self.0;
        for state in EnrollmentState::ALL {
            let count = figures
                .enrollments
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            series
                .enrollments
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(count);
        }
        series
            .oldest_pending_seconds
            .set(figures.oldest_pending.as_secs_f64());
        series
            .lms_misconfigured
            .set(i64::from(figures.lms_misconfigured));
        series.settings_warnings.set(figures.settings_warnings);
        for (platform, shop, at_ms) in &figures.reconcile_last_success {
            series
                .reconcile_last_success
                .get_or_create(&ShopLabels {
                    platform: platform.clone(),
                    shop: shop.clone(),
                })
                .set(at_ms.unwrap_or(0) / 1000);
        }
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &series.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_named_as_documented() {
        let metrics = Metrics::new();
        metrics.webhook_answered(
            Platform::Shopify,
            Verdict::Taken(Acceptance::Accepted),
            Duration::from_millis(3),
        );
        metrics.webhook_answered(
            Platform::WooCommerce,
            Verdict::Rejected(403),
            Duration::from_millis(1),
        );
        metrics.lms_answered(LmsCall::BulkEnroll, Some(200), Duration::from_millis(40));
        metrics.lms_answered(LmsCall::Token, None, Duration::from_millis(2));
        let text = metrics.encode(&StoreFigures {
            enrollments: vec![(EnrollmentState::Enrolled, 2)],
            oldest_pending: Duration::from_secs(90),
            lms_misconfigured: true,
            settings_warnings: 2,
            reconcile_last_success: vec![("shopify".into(), "a.myshopify.com".into(), Some(5_000))],
        });
        metrics.reconciled(Platform::Shopify, "a.myshopify.com", "new", 2);
        for line in [
            r#"edx_webhooks_requests_total{platform="shopify",verdict="accepted"} 1"#,
            r#"edx_webhooks_requests_total{platform="woocommerce",verdict="rejected_403"} 1"#,
            "edx_webhooks_intake_seconds_count 2",
            r#"edx_webhooks_lms_requests_total{call="bulk_enroll",status="200"} 1"#,
            r#"edx_webhooks_lms_requests_total{call="token",status="error"} 1"#,
            r#"edx_webhooks_lms_seconds_count{call="bulk_enroll"} 1"#,
            r#"edx_webhooks_enrollments{state="enrolled"} 2"#,
            r#"edx_webhooks_enrollments{state="pending"} 0"#,
            "edx_webhooks_oldest_pending_seconds 90",
            "edx_webhooks_lms_misconfigured 1",
            "edx_webhooks_settings_warnings 2",
            r#"edx_webhooks_reconcile_last_success_timestamp_seconds{platform="shopify",shop="a.myshopify.com"} 5"#,
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(line)),
                "{line} missing:\n{text}"
            );
        }
    }

    #[test]
    fn registries_are_separate() {
        let one = Metrics::new();
        let other = Metrics::new();
        one.lms_answered(LmsCall::Token, Some(200), Duration::ZERO);
        assert!(!other
            .encode(&StoreFigures::default())
            .contains("edx_webhooks_lms_requests_total{"));
    }
}
