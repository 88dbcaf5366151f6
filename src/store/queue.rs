//! The queue of enrollments: claims of due work, their results, and the LMS
//! condition every worker shares.

use std::time::Duration;

use serde::Serialize;

use crate::domain::{Action, CourseKey, LearnerEmail, Platform};

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

/// The LMS condition every process shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LmsStatus {
    pub paused_until_ms: i64,
    pub misconfigured: Option<String>,
}
