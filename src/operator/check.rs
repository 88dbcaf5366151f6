//! `edx-webhooks check`: the shops' settings, the database and the LMS, each
//! looked at without side effects on the LMS; every problem comes with its fix.

use std::fmt;

use crate::config::warnings::{NO_SHOP, OAUTH2_CLIENT};
use crate::config::{shopify_subject, woocommerce_subject, Config, Warning};
use crate::domain::CourseKey;
use crate::lms::{parse_time_ms, LmsClient, Probe, ProbeOutcome};
use crate::redact::url_password;
use crate::store::{Dialect, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Problem,
    /// Not looked at: an earlier problem makes the answer meaningless.
    Skipped,
}

/// One thing looked at, and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub subject: String,
    pub status: Status,
    /// What was found; for a problem, what to do about it.
    pub detail: String,
}

impl Finding {
    fn new(subject: impl Into<String>, status: Status, detail: impl Into<String>) -> Finding {
        Finding {
            subject: subject.into(),
            status,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mark, prefix) = match self.status {
            Status::Ok => ("✓", ""),
            Status::Problem => ("✗", ""),
            Status::Skipped => ("-", "skipped: "),
        };
        write!(f, "{mark} {}: {prefix}{}", self.subject, self.detail)
    }
}

/// Everything `check` found, in the order it looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Problem)
            .count()
    }

    pub fn passed(&self) -> bool {
        self.problems() == 0
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        match self.problems() {
            0 => writeln!(f, "all checks passed"),
            1 => writeln!(f, "1 problem found"),
            n => writeln!(f, "{n} problems found"),
        }
    }
}

/// Looks at the settings (`extra`: what loading them found, such as an
/// unknown name), the database and the LMS.
pub async fn run(config: &Config, extra: &[Warning]) -> Report {
    let mut findings = settings(config, extra);
    // Side by side: an unreachable server costs its timeout once, not twice.
    let (database, lms, apis) = tokio::join!(
        database(config),
        lms(config),
        crate::reconcile::probe(config)
    );
    findings.push(database);
    findings.extend(lms);
    findings.extend(apis.into_iter().map(|(platform, shop, result)| {
        let subject = format!("{} API of {shop}", platform.display_name());
        match result {
            Ok(None) => Finding::new(subject, Status::Ok, "orders can be read for reconciliation"),
            Ok(Some(note)) => {
                Finding::new(subject, Status::Ok, format!("orders can be read: {note}"))
            }
            Err(problem) => Finding::new(subject, Status::Problem, problem),
        }
    }));
    Report { findings }
}

/// Every configured shop has its secret (a shop without one is off), judged
/// as the settings' warnings judge it; then the other warnings, but for the
/// OAuth2 client's, which the LMS probes name.
fn settings(config: &Config, extra: &[Warning]) -> Vec<Finding> {
    let warnings = config.warnings();
    let problem = |subject: &str| warnings.iter().find(|w| w.subject == subject);
    let mut findings = Vec::new();
    if let Some(w) = problem(NO_SHOP) {
        findings.push(Finding::new(&w.subject, Status::Problem, &w.problem));
    }
    let shops = config
        .shopify
        .iter()
        .map(|s| (shopify_subject(&s.domain), "signing key set"))
        .chain(
            config
                .woocommerce
                .iter()
                .map(|s| (woocommerce_subject(&s.source), "secret set")),
        );
    for (subject, fine) in shops {
        findings.push(match problem(&subject) {
            Some(w) => Finding::new(subject, Status::Problem, &w.problem),
            None => Finding::new(subject, Status::Ok, fine),
        });
    }
    let covered = |w: &&Warning| {
        w.subject == NO_SHOP
            || w.subject == OAUTH2_CLIENT
            || findings.iter().any(|f| f.subject == w.subject)
    };
    let others: Vec<Finding> = warnings
        .iter()
        .filter(|w| !covered(w))
        .chain(extra)
        .map(|w| Finding::new(&w.subject, Status::Problem, &w.problem))
        .collect();
    findings.extend(others);
    findings
}

/// The database answers and its schema is current (brought up to date, as
/// every start does).
async fn database(config: &Config) -> Finding {
    let subject = format!("database {}", url_password(&config.database_url));
    let reached = match Store::connect(&config.database_url).await {
        Ok(store) => store.ping().await,
        Err(e) => Err(e),
    };
    let fix = match Dialect::of_url(&config.database_url) {
        Some(Dialect::Sqlite) => "check EDX_WEBHOOKS_DATABASE_URL and that its directory exists and is writable",
        _ => "check EDX_WEBHOOKS_DATABASE_URL, and that the database server runs and lets this user in",
    };
    match reached {
        Ok(()) => Finding::new(subject, Status::Ok, "reachable, schema up to date"),
        // The subject names the database already.
        Err(StoreError::Connect { source, .. } | StoreError::SqliteFile { source, .. }) => {
            Finding::new(
                subject,
                Status::Problem,
                format!("cannot open it ({source}): {fix}"),
            )
        }
        Err(e) => Finding::new(subject, Status::Problem, format!("{e}: {fix}")),
    }
}

/// The LMS, asked as `LmsClient::check` does, then the course modes the
/// product table sells.
async fn lms(config: &Config) -> Vec<Finding> {
    let client = LmsClient::new(&config.lms);
    let check = client.check().await;
    let token = matches!(
        check.probes.first(),
        Some((Probe::Token, ProbeOutcome::Passed(_)))
    );
    let mut findings: Vec<Finding> = check
        .probes
        .into_iter()
        .map(|(probe, outcome)| {
            let (status, detail) = match outcome {
                ProbeOutcome::Passed(detail) => (Status::Ok, detail),
                ProbeOutcome::Failed(detail) => (Status::Problem, detail),
                ProbeOutcome::Skipped(detail) => (Status::Skipped, detail),
            };
            Finding::new(probe.title(), status, detail)
        })
        .collect();
    findings.extend(course_modes(config, &client, token).await);
    findings
}

/// Every (course, mode) of `[[products]]`: the LMS must sell that mode of
/// that course, unexpired.
async fn course_modes(config: &Config, client: &LmsClient, token: bool) -> Vec<Finding> {
    let mut seats: Vec<(&CourseKey, &str, &str)> = Vec::new();
    for product in &config.products {
        let Some(mode) = product.mode.as_deref() else {
            continue;
        };
        for course in &product.courses {
            if !seats.iter().any(|(c, m, _)| *c == course && *m == mode) {
                seats.push((course, mode, &product.sku));
            }
        }
    }
    let now = crate::store::now_ms();
    let mut findings = Vec::with_capacity(seats.len());
    for (course, mode, sku) in seats {
        let subject = format!("course mode {mode} of {course}");
        if !token {
            findings.push(Finding::new(subject, Status::Skipped, "needs a token"));
            continue;
        }
        let add = format!(
            "add it in the LMS's Django admin → Course Modes → Add (/admin/course_modes/coursemode/add/): \
             course {course}, mode {mode}, with its price; or correct [[products]] sku {sku:?}"
        );
        let finding = match client.course_modes(course).await {
            Ok(None) => Finding::new(
                subject,
                Status::Problem,
                format!(
                    "the LMS knows no course {course}: correct the courses of [[products]] sku {sku:?}"
                ),
            ),
            Ok(Some(modes)) => match modes.iter().find(|m| m.slug == mode) {
                None => {
                    let known: Vec<&str> = modes.iter().map(|m| m.slug.as_str()).collect();
                    let known = if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    };
                    Finding::new(
                        subject,
                        Status::Problem,
                        format!("the course has no {mode} mode (it has: {known}): {add}"),
                    )
                }
                Some(found) => match found.expires.as_deref() {
                    Some(expires) if parse_time_ms(expires).is_some_and(|at| at <= now) => {
                        Finding::new(
                            subject,
                            Status::Problem,
                            format!(
                                "the {mode} mode expired on {expires}: the LMS refuses new {mode} seats; \
                                 move or clear its upgrade deadline in Django admin → Course Modes"
                            ),
                        )
                    }
                    _ => Finding::new(subject, Status::Ok, "sold by the LMS"),
                },
            },
            Err(e) => Finding::new(
                subject,
                Status::Problem,
                format!("could not list the course's modes: {e}"),
            ),
        };
        findings.push(finding);
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, ShopifyShop, WooCommerceShop};

    #[test]
    fn a_shop_without_a_secret_is_named_as_a_problem() {
        let mut config = Config::defaults();
        config.shopify = vec![
            ShopifyShop {
                domain: "on.myshopify.com".into(),
                api_key: Some(Secret::new("k")),
                api: None,
            },
            ShopifyShop {
                domain: "off.myshopify.com".into(),
                api_key: None,
                api: None,
            },
        ];
        config.woocommerce = vec![WooCommerceShop {
            source: "https://shop.example.com/".into(),
            // Blank is no secret: the judgement refuses this shop, so must check.
            secret: Some(Secret::new("  ")),
            api: None,
        }];
        let findings = settings(&config, &[]);
        let status: Vec<(&str, Status)> = findings
            .iter()
            .map(|f| (f.subject.as_str(), f.status))
            .collect();
        assert_eq!(
            status,
            [
                ("Shopify shop on.myshopify.com", Status::Ok),
                ("Shopify shop off.myshopify.com", Status::Problem),
                (
                    "WooCommerce shop https://shop.example.com/",
                    Status::Problem
                ),
            ]
        );
        assert!(findings[1].detail.contains("EDX_WEBHOOKS_SHOPIFY_API_KEY"));
        assert!(findings[2]
            .detail
            .contains("EDX_WEBHOOKS_WOOCOMMERCE_SECRET"));
    }

    #[test]
    fn no_shop_at_all_is_a_problem() {
        let findings = settings(&Config::defaults(), &[]);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].status, Status::Problem);
    }

    #[test]
    fn the_report_counts_problems() {
        let report = Report {
            findings: vec![
                Finding::new("a", Status::Ok, "fine"),
                Finding::new("b", Status::Problem, "set X"),
                Finding::new("c", Status::Skipped, "needs b"),
            ],
        };
        assert!(!report.passed());
        assert_eq!(
            report.to_string(),
            "✓ a: fine\n✗ b: set X\n- c: skipped: needs b\n1 problem found\n"
        );
    }
}
