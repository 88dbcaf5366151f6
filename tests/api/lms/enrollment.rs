//! The Enrollment API: one learner's enrollment in a mode, and a course's modes.

use std::sync::{Arc, Mutex};

use serde_json::json;
use wiremock::{Request, Respond, ResponseTemplate};

use super::*;

/// `POST /api/enrollment/v1/enrollment`: creates, reactivates, upgrades or
/// deactivates one learner's enrollment in a mode.
pub(super) struct EnrollmentApi(pub(super) Arc<Mutex<LmsState>>);

impl Respond for EnrollmentApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        held(
            &self.0,
            |s| s.enrollment_calls.len(),
            || self.answer(request),
        )
    }
}

impl EnrollmentApi {
    fn answer(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        if !authorized(&state, request) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"detail": "Authentication credentials were not provided."}));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        state.enrollment_calls.push(body.clone());
        if state.not_staff {
            return ResponseTemplate::new(403).set_body_json(
                json!({"message": "User does not have permission to create enrollment with mode [verified]."}),
            );
        }
        let after_doing = match state.enrollment_script.pop_front() {
            Some(Reply::AfterDoing(code)) => Some(code),
            Some(Reply::Slow(_)) => panic!("slow answers are scripted for bulk enrollment only"),
            None => None,
            Some(reply) => return reply.answer(&mut state),
        };
        let email = body["email"].as_str().unwrap_or_default().to_lowercase();
        let mode = body["mode"].as_str().unwrap_or("audit").to_owned();
        let course = body["course_details"]["course_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let active = body["is_active"].as_bool().unwrap_or(true);
        if state.no_account.contains(&email) {
            return ResponseTemplate::new(406)
                .set_body_json(json!({"message": format!("The user {email} does not exist.")}));
        }
        let modes = state
            .course_modes
            .get(&course)
            .cloned()
            .unwrap_or_else(|| vec![("audit".into(), false)]);
        if state.unknown_courses.contains(&course) {
            return ResponseTemplate::new(400).set_body_json(
                json!({"message": format!("No course '{course}' found for enrollment")}),
            );
        }
        let key = (course.clone(), email.clone());
        if active
            && !modes
                .iter()
                .any(|(slug, expired)| *slug == mode && !expired)
        {
            return ResponseTemplate::new(400).set_body_json(json!({"message": format!(
                "The [{mode}] course mode is expired or otherwise unavailable for course run [{course}]."
            )}));
        }
        if !active && state.seats.get(&key).is_some_and(|s| s.mode != mode) {
            return ResponseTemplate::new(400).set_body_json(json!({"message": format!(
                "The requested mode [{mode}] is not the enrollment's mode."
            )}));
        }
        let created = state
            .seats
            .get(&key)
            .map(|s| s.created.clone())
            .unwrap_or_else(now_text);
        state.seats.insert(
            key,
            Seat {
                mode: mode.clone(),
                active,
                created: created.clone(),
            },
        );
        let enrolled = state.enrolled.entry(course.clone()).or_default();
        if active {
            enrolled.insert(email.clone());
        } else {
            enrolled.remove(&email);
        }
        if let Some(code) = after_doing {
            return ResponseTemplate::new(code).set_body_string(format!("scripted {code}"));
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "created": created, "mode": mode, "is_active": active,
            "course_details": {"course_id": course}, "user": email
        }))
    }
}

/// `GET /api/enrollment/v1/course/{course}?include_expired=1`.
pub(super) struct CourseModes(pub(super) Arc<Mutex<LmsState>>);

impl Respond for CourseModes {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let state = self.0.lock().unwrap();
        let course = request
            .url
            .path()
            .trim_start_matches("/api/enrollment/v1/course/")
            .to_owned();
        if state.unknown_courses.contains(&course) {
            return ResponseTemplate::new(404).set_body_json(
                json!({"message": format!("No course found for course ID '{course}'")}),
            );
        }
        let include_expired = request
            .url
            .query()
            .is_some_and(|q| q.contains("include_expired=1"));
        let modes: Vec<Value> = state
            .course_modes
            .get(&course)
            .cloned()
            .unwrap_or_else(|| vec![("audit".into(), false)])
            .into_iter()
            .filter(|(_, expired)| include_expired || !expired)
            .map(|(slug, expired)| json!({
                "slug": slug, "name": slug, "min_price": 0, "currency": "usd",
                "expiration_datetime": if expired { json!("2020-01-01T00:00:00Z") } else { Value::Null }
            }))
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({
            "course_id": course, "course_modes": modes, "enrollment_start": null, "enrollment_end": null, "invite_only": false
        }))
    }
}
