//! The OAuth2 token endpoint and the bulk enrollment view.

use std::sync::{Arc, Mutex};

use serde_json::json;
use wiremock::{Request, Respond, ResponseTemplate};

use super::*;

pub(super) struct TokenEndpoint(pub(super) Arc<Mutex<LmsState>>);

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form = parse_form(&request.body);
        let ok = form.get("grant_type").map(String::as_str) == Some("client_credentials")
            && form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
            && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
        if !ok {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"}));
        }
        let mut state = self.0.lock().unwrap();
        state.tokens_issued += 1;
        let token = format!("jwt-{}", state.tokens_issued);
        state.valid_tokens.insert(token.clone());
        let token_type = if form.get("token_type").map(String::as_str) == Some("jwt") {
            "JWT"
        } else {
            "Bearer"
        };
        ResponseTemplate::new(200).set_body_json(json!({
            "access_token": token, "expires_in": 3600, "token_type": token_type, "scope": "read write email profile"
        }))
    }
}

pub(super) struct BulkEnrollView(pub(super) Arc<Mutex<LmsState>>);

impl Respond for BulkEnrollView {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        held(&self.0, |s| s.calls.len(), || self.answer(request))
    }
}

impl BulkEnrollView {
    fn answer(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.0.lock().unwrap();
        if state.view_disabled {
            return ResponseTemplate::new(404).set_body_string(
                "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>",
            );
        }
        let authorization = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let token_ok = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("JWT "))
            .is_some_and(|t| state.valid_tokens.contains(t));
        if !token_ok {
            return ResponseTemplate::new(401)
                .insert_header("WWW-Authenticate", r#"JWT realm="api""#)
                .set_body_json(json!({"detail": "Authentication credentials were not provided."}));
        }
        if state.not_staff {
            return ResponseTemplate::new(403).set_body_json(
                json!({"detail": "You do not have permission to perform this action."}),
            );
        }
        if request.method.as_str() != "POST" {
            return ResponseTemplate::new(405)
                .insert_header("Allow", "POST, OPTIONS")
                .set_body_json(
                    json!({"detail": format!("Method \"{}\" not allowed.", request.method)}),
                );
        }
        let form = parse_form(&request.body);
        let call = BulkCall {
            at: std::time::Instant::now(),
            authorization,
            form: form.clone(),
        };
        if call.identifiers().is_empty() {
            state.probes += 1;
            return ResponseTemplate::new(400).set_body_json(json!({
                "identifiers": ["This field is required."], "action": ["This field is required."], "courses": ["This field is required."]
            }));
        }
        state.calls.push(call.clone());
        if state.down {
            return ResponseTemplate::new(503).set_body_string("Service Unavailable");
        }
        let mut answer_delay = state.answer_delay;
        match state.script.pop_front() {
            Some(Reply::Slow(delay)) => answer_delay = delay,
            Some(Reply::AfterDoing(_)) | None => {}
            Some(reply) => return reply.answer(&mut state),
        }
        let course = call.field("courses").to_owned();
        if state.unknown_courses.contains(&course) {
            return ResponseTemplate::new(404)
                .set_body_json(json!({"detail": format!("Course not found: {course}.")}));
        }
        let action = call.field("action").to_owned();
        let mut results = Vec::new();
        for identifier in call.identifiers() {
            if state.invalid_identifiers.contains(&identifier) {
                results.push(json!({"identifier": identifier, "invalidIdentifier": true}));
                continue;
            }
            let email = identifier.to_lowercase();
            if state.no_account.contains(&email) {
                // No account: an enrollment-allowed row, enrolled on registration.
                let allowed = state.allowed.entry(course.clone()).or_default();
                let before = allowed.contains(&email);
                if action == "enroll" {
                    allowed.insert(email);
                } else {
                    allowed.remove(&email);
                }
                results.push(json!({
                    "identifier": identifier,
                    "before": {"enrollment": false, "allowed": before, "user": false, "auto_enroll": before},
                    "after": {"enrollment": false, "allowed": action == "enroll", "user": false, "auto_enroll": action == "enroll"}
                }));
                continue;
            }
            let enrolled = state.enrolled.entry(course.clone()).or_default();
            let before = enrolled.contains(&identifier.to_lowercase());
            let after = action == "enroll";
            if after {
                enrolled.insert(identifier.to_lowercase());
                // Bulk enrollment gives the default mode, and keeps any mode the learner has.
                let key = (course.clone(), identifier.to_lowercase());
                let seat = state.seats.entry(key).or_insert_with(|| Seat {
                    mode: "audit".into(),
                    active: true,
                    created: now_text(),
                });
                seat.active = true;
            } else {
                enrolled.remove(&identifier.to_lowercase());
                if let Some(seat) = state
                    .seats
                    .get_mut(&(course.clone(), identifier.to_lowercase()))
                {
                    seat.active = false;
                }
            }
            results.push(json!({
                "identifier": identifier,
                "before": {"enrollment": before, "allowed": false, "user": true, "auto_enroll": false},
                "after": {"enrollment": after, "allowed": false, "user": true, "auto_enroll": false}
            }));
        }
        let auto_enroll = call.field("auto_enroll") == "true";
        ResponseTemplate::new(200)
            .set_delay(answer_delay)
            .set_body_json(json!({
                "action": action, "auto_enroll": auto_enroll, "email_students": call.field("email_students") == "true",
                "courses": {course.clone(): {"action": action, "auto_enroll": auto_enroll, "results": results}}
            }))
    }
}
