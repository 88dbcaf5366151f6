//! What an LMS answer means for each claimed enrollment: pure functions, so the
//! rules about attempts, backoff and pauses can be read and tested in one place.

use std::time::Duration;

use rand::Rng;

use crate::config::RetryPolicy;
use crate::domain::{Action, CourseKey};
use crate::lms::{BulkEnrollAnswer, LearnerOutcome, LmsError, ModeAnswer, ModeOutcome};
use crate::store::{AttemptRecord, ClaimReport, ClaimedItem, ItemResult, LmsCondition};

/// The delay before attempt `attempt + 1`: doubling from the first delay, capped,
/// with jitter so that many failed items do not return at the same moment.
pub fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let doubled = policy
        .first_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1).min(30)));
    let delay = doubled.min(policy.max_delay);
    let half = delay / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

/// A transient failure: try again later, or give up once the attempts are spent.
fn retry_or_fail(policy: &RetryPolicy, item: &ClaimedItem, reason: &str) -> ItemResult {
    let attempt = item.attempts + 1;
    if attempt >= policy.max_attempts {
        ItemResult::Failed {
            reason: format!("gave up after {attempt} attempts: {reason}"),
        }
    } else {
        ItemResult::RetryLater {
            delay: backoff(policy, attempt),
            reason: reason.to_owned(),
        }
    }
}

/// How long a paid seat waits for its learner's account, and how often it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountWait {
    pub wait: Duration,
    pub recheck_max: Duration,
}

pub struct Context<'a> {
    pub policy: &'a RetryPolicy,
    pub account: AccountWait,
    pub token: &'a str,
    pub items: &'a [ClaimedItem],
    pub action: Action,
    pub duration_ms: i64,
    pub probe_in: Duration,
}

impl Context<'_> {
    fn attempt(
        &self,
        http_status: Option<u16>,
        outcome: &str,
        detail: String,
        counted: bool,
    ) -> AttemptRecord {
        AttemptRecord {
            action: self.action,
            http_status,
            outcome: outcome.to_owned(),
            detail,
            duration_ms: self.duration_ms,
            counted,
        }
    }

    fn report(
        &self,
        results: Vec<(i64, ItemResult, Option<AttemptRecord>)>,
        lms: Option<LmsCondition>,
    ) -> ClaimReport {
        ClaimReport {
            token: self.token.to_owned(),
            results,
            lms,
        }
    }

    /// Every item shares one fate (the request as a whole failed).
    fn all(
        &self,
        result: impl Fn(&ClaimedItem) -> ItemResult,
        attempt: AttemptRecord,
        lms: Option<LmsCondition>,
    ) -> ClaimReport {
        let results = self
            .items
            .iter()
            .map(|i| (i.enrollment_id, result(i), Some(attempt.clone())))
            .collect();
        self.report(results, lms)
    }

    /// The results of one bulk enrollment request.
    pub fn report_bulk_enroll(
        &self,
        answer: Result<BulkEnrollAnswer, LmsError>,
        now_ms: i64,
    ) -> ClaimReport {
        match answer {
            Ok(answer) => {
                let results = self
                    .items
                    .iter()
                    .map(|item| {
                        let email = item.email.as_ref().map(|e| e.as_str()).unwrap_or_default();
                        let Some(learner) = answer.learner(email) else {
                            let reason = "the LMS's answer did not mention this learner";
                            let attempt =
                                self.attempt(Some(answer.status), "retry", reason.into(), true);
                            return (
                                item.enrollment_id,
                                retry_or_fail(self.policy, item, reason),
                                Some(attempt),
                            );
                        };
                        let detail = learner.detail.to_string();
                        let (result, outcome) = match (&learner.outcome, self.action) {
                            // The invitation found an account after all: the seat follows now.
                            (LearnerOutcome::Done { .. }, Action::Invite) if learner.enrolled => {
                                (ItemResult::AccountFound, "account found")
                            }
                            (LearnerOutcome::Done { .. }, Action::Invite) => (
                                ItemResult::AwaitingAccount {
                                    delay: self.recheck_delay(item, now_ms),
                                    invite: false,
                                },
                                "invited",
                            ),
                            (LearnerOutcome::Done { before_enrollment }, Action::Enroll) => (
                                ItemResult::Enrolled {
                                    before_enrollment: *before_enrollment,
                                },
                                "enrolled",
                            ),
                            (LearnerOutcome::Done { .. }, Action::Unenroll) => {
                                (ItemResult::Unenrolled, "unenrolled")
                            }
                            (LearnerOutcome::Failed(reason), _) => (
                                ItemResult::Failed {
                                    reason: reason.clone(),
                                },
                                "failed",
                            ),
                        };
                        (
                            item.enrollment_id,
                            result,
                            Some(self.attempt(Some(answer.status), outcome, detail, true)),
                        )
                    })
                    .collect();
                self.report(results, None)
            }
            Err(e) => self.report_error(e, now_ms),
        }
    }

    /// The result of one Enrollment API request for one learner (a paid seat).
    pub fn report_mode_enroll(
        &self,
        answer: Result<ModeAnswer, LmsError>,
        now_ms: i64,
    ) -> ClaimReport {
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => return self.report_error(e, now_ms),
        };
        let results = self
            .items
            .iter()
            .map(|item| {
                let (result, outcome, counted) = match (&answer.outcome, self.action) {
                    (ModeOutcome::Done { .. }, Action::Unenroll) => {
                        (ItemResult::Unenrolled, "unenrolled", true)
                    }
                    (ModeOutcome::Done { new }, _) => (
                        ItemResult::Enrolled {
                            // A learner who had no account had nothing of the course before us.
                            before_enrollment: Some(item.awaiting_since_ms.is_none() && !new),
                        },
                        "enrolled",
                        true,
                    ),
                    (ModeOutcome::NoAccount, Action::Unenroll) => {
                        (ItemResult::Unenrolled, "unenrolled", true)
                    }
                    (ModeOutcome::NoAccount, _) => match item.awaiting_since_ms {
                        None => (
                            ItemResult::AwaitingAccount {
                                delay: Duration::ZERO,
                                invite: true,
                            },
                            "no account",
                            false,
                        ),
                        Some(since) if now_ms - since >= self.account.wait.as_millis() as i64 => (
                            ItemResult::Failed {
                                reason: format!(
                                    "the learner never registered: the LMS still has no account for {} after {} \
                                     (EDX_WEBHOOKS_ACCOUNT_WAIT); retry once they have one",
                                    item.email.as_ref().map(|e| e.as_str()).unwrap_or_default(),
                                    humantime::format_duration(self.account.wait)
                                ),
                            },
                            "failed",
                            false,
                        ),
                        Some(_) => (
                            ItemResult::AwaitingAccount {
                                delay: self.recheck_delay(item, now_ms),
                                invite: false,
                            },
                            "no account",
                            false,
                        ),
                    },
                };
                let attempt = self.attempt(
                    Some(answer.status),
                    outcome,
                    answer.detail.clone(),
                    counted,
                );
                (item.enrollment_id, result, Some(attempt))
            })
            .collect();
        self.report(results, None)
    }

    /// When to look for a learner's account again: as long as it has been
    /// waited for (doubling), from the first retry delay up to the longest
    /// recheck delay, and not past the end of the wait.
    fn recheck_delay(&self, item: &ClaimedItem, now_ms: i64) -> Duration {
        let waited = item
            .awaiting_since_ms
            .map_or(0, |since| (now_ms - since).max(0) as u64);
        let left = item.awaiting_since_ms.map_or(self.account.wait, |since| {
            let end = since + self.account.wait.as_millis() as i64;
            Duration::from_millis((end - now_ms).max(0) as u64)
        });
        Duration::from_millis(waited)
            .clamp(
                self.policy.first_delay,
                self.account.recheck_max.max(self.policy.first_delay),
            )
            .min(left)
    }

    /// A request that failed as a whole: every claimed item shares its fate.
    fn report_error(&self, error: LmsError, now_ms: i64) -> ClaimReport {
        match error {
            LmsError::Transient { status, detail } => {
                let attempt = self.attempt(status, "retry", detail.clone(), true);
                self.all(|i| retry_or_fail(self.policy, i, &detail), attempt, None)
            }
            LmsError::Throttled { retry_after } => {
                let attempt = self.attempt(
                    Some(429),
                    "throttled",
                    format!("Retry-After: {}s", retry_after.as_secs()),
                    false,
                );
                let until_ms = now_ms + retry_after.as_millis() as i64;
                self.all(
                    |_| ItemResult::Released,
                    attempt,
                    Some(LmsCondition::Throttled { until_ms }),
                )
            }
            LmsError::Misconfigured { status, reason } => {
                let attempt = self.attempt(status, "misconfigured", reason.clone(), false);
                let lms = LmsCondition::Misconfigured {
                    reason,
                    probe_in: self.probe_in,
                };
                self.all(|_| ItemResult::Released, attempt, Some(lms))
            }
            LmsError::Permanent { status, detail } => {
                let reason = format!("the LMS answered {status}: {detail}");
                let attempt = self.attempt(Some(status), "failed", detail, true);
                self.all(
                    |_| ItemResult::Failed {
                        reason: reason.clone(),
                    },
                    attempt,
                    None,
                )
            }
        }
    }

    /// The results of a SKU lookup.
    pub fn report_sku_lookup(
        &self,
        sku: &str,
        found: Result<Option<CourseKey>, LmsError>,
    ) -> ClaimReport {
        match found {
            Ok(Some(course)) => {
                let results = self
                    .items
                    .iter()
                    .map(|i| {
                        (
                            i.enrollment_id,
                            ItemResult::CourseResolved(course.clone()),
                            None,
                        )
                    })
                    .collect();
                self.report(results, None)
            }
            Ok(None) => {
                let reason = format!("SKU '{sku}' is not a course: the LMS knows no course for it");
                let attempt = self.attempt(None, "skipped", reason.clone(), false);
                self.all(
                    |_| ItemResult::Skipped {
                        reason: reason.clone(),
                    },
                    attempt,
                    None,
                )
            }
            Err(e) => {
                let detail = format!("SKU '{sku}' lookup: {e}");
                let attempt = self.attempt(e.status(), "retry", detail.clone(), true);
                self.all(|i| retry_or_fail(self.policy, i, &detail), attempt, None)
            }
        }
    }
}

/// The `reason` recorded in the LMS's audit trail: the shops and orders.
pub fn audit_reason(items: &[ClaimedItem]) -> String {
    let mut orders: Vec<String> = Vec::new();
    for item in items {
        let label = format!(
            "{} order {} ({})",
            item.platform.display_name(),
            item.order_number,
            item.shop
        );
        if !orders.contains(&label) {
            orders.push(label);
        }
    }
    orders.join(", ")
}

#[cfg(test)]
mod tests;
