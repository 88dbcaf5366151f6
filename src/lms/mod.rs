//! The Open edX LMS client: a cached client-credentials token, the bulk
//! enrollment call, and the SKU → course lookup. Every answer is sorted into the
//! kinds of failure the workers treat differently.

mod bulk_enroll;
mod check;
mod enrollment;
mod sku;
mod token;

use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use url::Url;

use crate::config::LmsConfig;
use crate::metrics::{LmsCall, Metrics};

pub use bulk_enroll::{BulkEnrollAnswer, LearnerOutcome, LearnerResult};
pub use check::{LmsCheck, Probe, ProbeOutcome};
pub use enrollment::{parse_time_ms, CourseModeInfo, ModeAnswer, ModeOutcome};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LmsError {
    /// Connection error, timeout, 5xx: worth trying again later.
    #[error("{detail}")]
    Transient { status: Option<u16>, detail: String },
    /// 429: everyone waits at least `retry_after`.
    #[error("throttled by the LMS for {retry_after:?}")]
    Throttled { retry_after: Duration },
    /// The LMS or our client is set up wrong: work pauses until a probe succeeds.
    #[error("{reason}")]
    Misconfigured { status: Option<u16>, reason: String },
    /// The LMS refused this request for good.
    #[error("{detail}")]
    Permanent { status: u16, detail: String },
}

impl LmsError {
    pub fn status(&self) -> Option<u16> {
        match self {
            LmsError::Transient { status, .. } | LmsError::Misconfigured { status, .. } => *status,
            LmsError::Throttled { .. } => Some(429),
            LmsError::Permanent { status, .. } => Some(*status),
        }
    }

    fn transient(e: reqwest::Error) -> LmsError {
        let detail = if e.is_timeout() {
            "the LMS did not answer in time".to_owned()
        } else if e.is_connect() {
            "could not connect to the LMS".to_owned()
        } else {
            format!("LMS request failed: {}", without_url(&e))
        };
        LmsError::Transient {
            status: None,
            detail,
        }
    }
}

/// reqwest's error text, without the URL (it could carry a query string).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

pub struct LmsClient {
    http: reqwest::Client,
    lookup: reqwest::Client,
    base: Url,
    config: LmsConfig,
    token: token::TokenCache,
    skus: sku::SkuCache,
    metrics: Metrics,
}

/// An LMS answer, read whole.
struct Answer {
    status: u16,
    headers: HeaderMap,
    /// Where the request ended, after any redirects it followed.
    url: Url,
    body: String,
}

impl LmsClient {
    pub fn new(config: &LmsConfig) -> LmsClient {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("edx-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend available");
        let lookup = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(sku::same_host_redirects(&config.base_url))
            .user_agent(concat!("edx-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("TLS backend available");
        let mut base = config.base_url.clone();
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        LmsClient {
            http,
            lookup,
            base,
            config: config.clone(),
            token: token::TokenCache::default(),
            skus: sku::SkuCache::default(),
            metrics: Metrics::new(),
        }
    }

    /// Counts this client's requests in `metrics`.
    pub fn with_metrics(mut self, metrics: Metrics) -> LmsClient {
        self.metrics = metrics;
        self
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("relative API path")
    }

    /// Sends `request`, reads the whole answer, and counts it in the metrics.
    async fn exchange(
        &self,
        call: LmsCall,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, LmsError> {
        let started = Instant::now();
        let answer = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let url = response.url().clone();
            let body = response.text().await?;
            Ok(Answer {
                status,
                headers,
                url,
                body,
            })
        }
        .await;
        self.metrics.lms_answered(
            call,
            answer.as_ref().ok().map(|a| a.status),
            started.elapsed(),
        );
        answer.map_err(LmsError::transient)
    }
}

/// A short, printable excerpt of an answer's body for reasons and attempts.
fn excerpt(body: &str) -> String {
    const MAX: usize = 500;
    let body = body.trim();
    if body.len() <= MAX {
        return body.to_owned();
    }
    let mut end = MAX;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &body[..end])
}
