//! The Enrollment API, for paid seats: `POST /api/enrollment/v1/enrollment`
//! (no trailing slash) enrolls, reactivates, upgrades or unenrolls one learner
//! in one course in a given mode; `GET /api/enrollment/v1/course/{course}`
//! lists a course's modes.

use reqwest::header::AUTHORIZATION;
use serde_json::{json, Value};

use super::bulk_enroll::classify;
use super::{excerpt, LmsClient, LmsError};
use crate::domain::{CourseKey, LearnerEmail};
use crate::metrics::LmsCall;

pub(super) const ENROLLMENT: &str = "api/enrollment/v1/enrollment";
/// How far the LMS's clock may be behind ours when it says when it created
/// an enrollment (an enrollment created before that is not our order's doing).
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum ModeOutcome {
    /// The LMS holds the enrollment as asked (200). `new`: the LMS created it
    /// during this call, so the access is our order's doing.
    Done { new: bool },
    /// 406: the LMS has no account for this email (yet).
    NoAccount,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModeAnswer {
    pub status: u16,
    pub outcome: ModeOutcome,
    /// The answer's body, shortened, for the attempt's record.
    pub detail: String,
}

/// One mode of a course, as the LMS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseModeInfo {
    pub slug: String,
    /// When the mode stops being sold, if ever (`expiration_datetime`).
    pub expires: Option<String>,
}

impl LmsClient {
    /// Enrolls (`active`) or unenrolls one learner in `course` in `mode`.
    /// `order` names the shop and order for the LMS's enrollment attributes.
    pub async fn enroll_in_mode(
        &self,
        course: &CourseKey,
        mode: &str,
        email: &LearnerEmail,
        active: bool,
        order: &str,
    ) -> Result<ModeAnswer, LmsError> {
        let body = json!({
            "email": email.as_str(),
            "mode": mode,
            "is_active": active,
            "course_details": {"course_id": course.as_str()},
            "enrollment_attributes": [
                {"namespace": "edx_webhooks", "name": "order", "value": order}
            ],
        });
        let started = crate::store::now_ms();
        let (status, headers, text) = self
            .with_token(LmsCall::Enrollment, |authorization| {
                self.http
                    .post(self.url(ENROLLMENT))
                    .header(AUTHORIZATION, authorization)
                    .json(&body)
            })
            .await?;
        let detail = excerpt(&text);
        match status {
            200 => {
                let json: Value = serde_json::from_str(&text).map_err(|_| LmsError::Transient {
                    status: Some(200),
                    detail: format!("unexpected enrollment answer: {detail}"),
                })?;
                let created = json
                    .get("created")
                    .and_then(Value::as_str)
                    .and_then(parse_time_ms);
                let new = created.is_some_and(|at| at >= started - CLOCK_SKEW_MS);
                Ok(ModeAnswer {
                    status,
                    outcome: ModeOutcome::Done { new },
                    detail,
                })
            }
            406 => Ok(ModeAnswer {
                status,
                outcome: ModeOutcome::NoAccount,
                detail,
            }),
            403 => Err(LmsError::Misconfigured {
                status: Some(403),
                reason: "the LMS refuses to enroll in a course mode for our OAuth2 client (403): paid \
                         modes need the OAuth2 application's user to be global staff (Django admin → \
                         Users → Staff status)"
                    .into(),
            }),
            400 => Err(LmsError::Permanent {
                status,
                detail: message(&text).unwrap_or(detail),
            }),
            404 => Err(LmsError::Misconfigured {
                status: Some(404),
                reason: format!(
                    "{} answered 404: check EDX_WEBHOOKS_LMS_BASE_URL (the Enrollment API is part of every LMS)",
                    self.url(ENROLLMENT)
                ),
            }),
            _ => Err(classify(status, &headers, &text)),
        }
    }

    /// A course's modes, expired ones included; `None` when the LMS knows no
    /// such course.
    pub async fn course_modes(
        &self,
        course: &CourseKey,
    ) -> Result<Option<Vec<CourseModeInfo>>, LmsError> {
        let mut url = self.url(&format!("api/enrollment/v1/course/{}", course.as_str()));
        url.set_query(Some("include_expired=1"));
        let (status, headers, text) = self
            .with_token(LmsCall::Enrollment, |authorization| {
                self.http
                    .get(url.clone())
                    .header(AUTHORIZATION, authorization)
            })
            .await?;
        match status {
            200 => {
                let json: Value = serde_json::from_str(&text).map_err(|_| LmsError::Transient {
                    status: Some(200),
                    detail: format!("unexpected course modes answer: {}", excerpt(&text)),
                })?;
                let modes = json
                    .get("course_modes")
                    .and_then(Value::as_array)
                    .map(|modes| {
                        modes
                            .iter()
                            .filter_map(|m| {
                                Some(CourseModeInfo {
                                    slug: m.get("slug")?.as_str()?.to_owned(),
                                    expires: m
                                        .get("expiration_datetime")
                                        .and_then(Value::as_str)
                                        .map(str::to_owned),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok(Some(modes))
            }
            400 | 404 => Ok(None),
            _ => Err(classify(status, &headers, &text)),
        }
    }
}

/// The LMS's `message` (its error answers carry one), or its first field error.
fn message(body: &str) -> Option<String> {
    let json: Value = serde_json::from_str(body).ok()?;
    json.get("message")
        .or_else(|| json.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// An ISO 8601 / RFC 3339 time (`2026-12-01T10:00:00.123456Z`, or with an
/// offset) in Unix milliseconds.
pub fn parse_time_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    let number = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = text.split_once(['T', ' '])?;
    let mut parts = date.splitn(3, '-');
    let (year, month, day) = (
        number(parts.next()?)?,
        number(parts.next()?)?,
        number(parts.next()?)?,
    );
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = clock.splitn(3, ':');
    let (hour, minute) = (number(hms.next()?)?, number(hms.next()?)?);
    let second = hms.next().map_or(Some(0), number)?;
    let millis = if fraction.is_empty() {
        0
    } else {
        number(&format!("{:0<3}", &fraction[..fraction.len().min(3)]))?
    };
    let offset_minutes = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':').unwrap_or((&zone[1..], "0"));
            sign * (number(h)? * 60 + number(m)?)
        }
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_as_the_lms_writes_them() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time_ms("2026-12-01T10:00:00.123456Z"),
            Some(1_796_119_200_123)
        );
        assert_eq!(
            parse_time_ms("2026-12-01T11:00:00+01:00"),
            Some(1_796_119_200_000)
        );
        assert_eq!(parse_time_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(parse_time_ms("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn error_messages_are_read() {
        assert_eq!(
            message(r#"{"message": "The [verified] course mode is expired or otherwise unavailable for course run [x]."}"#)
                .unwrap(),
            "The [verified] course mode is expired or otherwise unavailable for course run [x]."
        );
        assert_eq!(message("<html>"), None);
    }
}
