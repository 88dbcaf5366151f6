//! `POST /api/bulk_enroll/v1/bulk_enroll` (no trailing slash): one course, many learners.

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, AUTHORIZATION, RETRY_AFTER};
use serde_json::Value;

use super::{excerpt, LmsClient, LmsError};
use crate::domain::{Action, CourseKey};
use crate::metrics::LmsCall;

pub(super) const BULK_ENROLL: &str = "api/bulk_enroll/v1/bulk_enroll";
/// How long to wait after a 429 that did not say.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);

/// What the LMS said about one learner.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnerResult {
    pub identifier: String,
    pub outcome: LearnerOutcome,
    /// `after.enrollment`: the learner has an account and is enrolled.
    pub enrolled: bool,
    /// That learner's part of the answer, verbatim.
    pub detail: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerOutcome {
    /// Enrolled (or allowed to enroll once registered), or unenrolled.
    Done { before_enrollment: Option<bool> },
    /// `invalidIdentifier` or `error`, or the change did not happen.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct BulkEnrollAnswer {
    pub status: u16,
    pub learners: Vec<LearnerResult>,
}

impl BulkEnrollAnswer {
    /// The result for one learner, matched case-insensitively.
    pub fn learner(&self, email: &str) -> Option<&LearnerResult> {
        self.learners
            .iter()
            .find(|l| l.identifier.eq_ignore_ascii_case(email))
    }
}

impl LmsClient {
    pub async fn bulk_enroll(
        &self,
        course: &CourseKey,
        action: Action,
        identifiers: &[&str],
        reason: &str,
    ) -> Result<BulkEnrollAnswer, LmsError> {
        // An invitation is an enrollment with auto_enroll: the LMS mails the
        // learner and enrolls them when they register.
        let (verb, auto_enroll) = match action {
            Action::Invite => (Action::Enroll, true),
            _ => (action, self.config.auto_enroll),
        };
        let form = [
            ("action", verb.as_str().to_owned()),
            ("courses", course.as_str().to_owned()),
            ("identifiers", identifiers.join(",")),
            ("auto_enroll", auto_enroll.to_string()),
            ("email_students", self.config.email_students.to_string()),
            ("reason", reason.to_owned()),
        ];
        let (status, headers, body) = self.post_bulk_enroll(&form).await?;
        match status {
            200 => parse_answer(course, action, &body),
            _ => Err(classify(status, &headers, &body)),
        }
    }

    /// A request without side effects: an authenticated empty POST answers 400
    /// when the view is on and our client's user is staff.
    pub async fn probe(&self) -> Result<(), LmsError> {
        let (status, headers, body) = self.post_bulk_enroll(&[]).await?;
        match status {
            400 => Ok(()),
            200 => Ok(()),
            _ => Err(classify(status, &headers, &body)),
        }
    }

    /// Posts with the cached token; on a 401, once more with a fresh one.
    pub(super) async fn post_bulk_enroll(
        &self,
        form: &[(&str, String)],
    ) -> Result<(u16, HeaderMap, String), LmsError> {
        self.with_token(LmsCall::BulkEnroll, |authorization| {
            self.http
                .post(self.url(BULK_ENROLL))
                .header(AUTHORIZATION, authorization)
                .form(form)
        })
        .await
    }

    /// Sends what `request` builds with the cached token; on a 401, once
    /// more with a fresh one.
    pub(super) async fn with_token(
        &self,
        call: LmsCall,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<(u16, HeaderMap, String), LmsError> {
        let mut fresh = false;
        loop {
            let token = self.token(fresh).await?;
            let answer = self.exchange(call, request(&token.header)).await?;
            let (status, headers, body) = (answer.status, answer.headers, answer.body);
            if status == 401 && !fresh {
                fresh = true;
                continue;
            }
            if status == 401 {
                return Err(LmsError::Misconfigured {
                    status: Some(401),
                    reason: "the LMS rejects our freshly issued token (401): check that the OAuth2 application \
                             issues JWT tokens and that EDX_WEBHOOKS_LMS_BASE_URL is the LMS that issued it"
                        .into(),
                });
            }
            return Ok((status, headers, body));
        }
    }
}

pub(super) fn classify(status: u16, headers: &HeaderMap, body: &str) -> LmsError {
    match status {
        429 => LmsError::Throttled {
            retry_after: retry_after(headers).unwrap_or(DEFAULT_RETRY_AFTER),
        },
        403 => LmsError::Misconfigured {
            status: Some(403),
            reason: "the LMS refuses bulk enrollment to our OAuth2 client (403): make the OAuth2 \
                     application's user global staff (Django admin → Users → Staff status)"
                .into(),
        },
        404 if course_not_found(body) => LmsError::Permanent {
            status,
            detail: excerpt(body),
        },
        404 => LmsError::Misconfigured {
            status: Some(404),
            reason: "the LMS's bulk enrollment view is disabled (404): set \
                     ENABLE_BULK_ENROLLMENT_VIEW: true (and ENABLE_COMBINED_LOGIN_REGISTRATION: true) in lms.yml"
                .into(),
        },
        400..=499 => LmsError::Permanent {
            status,
            detail: excerpt(body),
        },
        500..=599 => LmsError::Transient {
            status: Some(status),
            detail: format!("the LMS answered {status}: {}", excerpt(body)),
        },
        _ => LmsError::Misconfigured {
            status: Some(status),
            reason: format!("the LMS answered {status} to bulk enrollment: check EDX_WEBHOOKS_LMS_BASE_URL"),
        },
    }
}

/// The JSON 404 `{"detail": "Course not found: ..."}`, as opposed to a disabled view's page.
fn course_not_found(body: &str) -> bool {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("detail")
                .and_then(Value::as_str)
                .map(|d| d.starts_with("Course not found"))
        })
        .unwrap_or(false)
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

fn parse_answer(
    course: &CourseKey,
    action: Action,
    body: &str,
) -> Result<BulkEnrollAnswer, LmsError> {
    let unexpected = || LmsError::Transient {
        status: Some(200),
        detail: format!("unexpected bulk enrollment answer: {}", excerpt(body)),
    };
    let json: Value = serde_json::from_str(body).map_err(|_| unexpected())?;
    let results = json
        .get("courses")
        .and_then(|c| c.get(course.as_str()))
        .and_then(|c| c.get("results"))
        .and_then(Value::as_array)
        .ok_or_else(unexpected)?;
    let learners = results
        .iter()
        .filter_map(|r| {
            let identifier = r.get("identifier")?.as_str()?.to_owned();
            Some(LearnerResult {
                identifier,
                outcome: learner_outcome(action, r),
                enrolled: r
                    .get("after")
                    .and_then(|a| a.get("enrollment"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                detail: r.clone(),
            })
        })
        .collect();
    Ok(BulkEnrollAnswer {
        status: 200,
        learners,
    })
}

fn learner_outcome(action: Action, result: &Value) -> LearnerOutcome {
    let flag = |v: &Value| v.as_bool().unwrap_or(false);
    if result.get("invalidIdentifier").is_some_and(flag) {
        return LearnerOutcome::Failed(
            "the LMS calls this identifier invalid (invalidIdentifier)".into(),
        );
    }
    if result.get("error").is_some_and(flag) {
        return LearnerOutcome::Failed("the LMS reported an error for this learner".into());
    }
    let state = |side: &str, key: &str| result.get(side).and_then(|s| s.get(key)).map(flag);
    let before_enrollment = state("before", "enrollment");
    let enrolled = state("after", "enrollment").unwrap_or(false);
    let allowed = state("after", "allowed").unwrap_or(false);
    let done = match action {
        Action::Enroll | Action::Invite => enrolled || allowed,
        Action::Unenroll => !enrolled && !allowed,
    };
    if done {
        LearnerOutcome::Done { before_enrollment }
    } else {
        LearnerOutcome::Failed(format!("the LMS did not {} this learner", action.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_each_learner() {
        let course = CourseKey::parse("course-v1:O+C+R").unwrap();
        let body = json!({"action": "enroll", "courses": {"course-v1:O+C+R": {"action": "enroll", "results": [
            {"identifier": "a@x.org", "before": {"enrollment": false, "allowed": false}, "after": {"enrollment": false, "allowed": true}},
            {"identifier": "b@x.org", "before": {"enrollment": true}, "after": {"enrollment": true, "allowed": false}},
            {"identifier": "c@x.org", "invalidIdentifier": true},
            {"identifier": "d@x.org", "error": true}
        ]}}})
        .to_string();
        let answer = parse_answer(&course, Action::Enroll, &body).unwrap();
        assert_eq!(
            answer.learner("A@x.org").unwrap().outcome,
            LearnerOutcome::Done {
                before_enrollment: Some(false)
            }
        );
        assert_eq!(
            answer.learner("b@x.org").unwrap().outcome,
            LearnerOutcome::Done {
                before_enrollment: Some(true)
            }
        );
        assert!(matches!(
            answer.learner("c@x.org").unwrap().outcome,
            LearnerOutcome::Failed(_)
        ));
        assert!(matches!(
            answer.learner("d@x.org").unwrap().outcome,
            LearnerOutcome::Failed(_)
        ));
        assert!(answer.learner("e@x.org").is_none());
        assert!(parse_answer(&course, Action::Enroll, "<html>").is_err());
    }

    #[test]
    fn sorts_failures_by_kind() {
        let none = HeaderMap::new();
        assert!(matches!(
            classify(404, &none, "<h1>Not Found</h1>"),
            LmsError::Misconfigured { .. }
        ));
        assert!(matches!(
            classify(
                404,
                &none,
                r#"{"detail": "Course not found: course-v1:a+b+c."}"#
            ),
            LmsError::Permanent { status: 404, .. }
        ));
        assert!(matches!(
            classify(403, &none, ""),
            LmsError::Misconfigured { .. }
        ));
        assert!(matches!(
            classify(400, &none, "{}"),
            LmsError::Permanent { status: 400, .. }
        ));
        assert!(matches!(
            classify(502, &none, ""),
            LmsError::Transient { .. }
        ));
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(
            classify(429, &headers, ""),
            LmsError::Throttled {
                retry_after: Duration::from_secs(7)
            }
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, later.parse().unwrap());
        let wait = retry_after(&headers).unwrap();
        assert!(
            wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
            "{wait:?}"
        );
    }
}
