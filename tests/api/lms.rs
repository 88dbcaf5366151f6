//! A fake Open edX LMS on a real HTTP server, behaving as EXTERNAL-CONTRACTS.md
//! says: client-credentials tokens, the bulk enrollment view, SKU redirects.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const CLIENT_ID: &str = "edx-webhooks-client";
pub const CLIENT_SECRET: &str = "lms-client-secret";

/// One bulk enrollment request as the LMS received it.
#[derive(Debug, Clone)]
pub struct BulkCall {
    pub at: std::time::Instant,
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

impl BulkCall {
    pub fn field(&self, name: &str) -> &str {
        self.form.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn identifiers(&self) -> Vec<String> {
        self.field("identifiers")
            .split([',', ' ', '\n'])
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A scripted answer to the next bulk enrollment request(s).
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    Throttle {
        retry_after_secs: u64,
    },
    /// The token the request carries is no longer valid (401).
    ExpireTokens,
}

#[derive(Debug, Default)]
pub struct LmsState {
    pub script: VecDeque<Reply>,
    /// `false`: the bulk enrollment view is switched off (plain 404 page).
    pub view_disabled: bool,
    /// The OAuth2 application's user is not global staff: authenticated requests get 403.
    pub not_staff: bool,
    /// Well-formed keys of courses that do not exist (JSON 404 "Course not found").
    pub unknown_courses: HashSet<String>,
    pub invalid_identifiers: HashSet<String>,
    /// When true, every bulk enrollment request answers 503.
    pub down: bool,
    /// How long each enrollment answer takes (the LMS handles learners one by one).
    pub answer_delay: std::time::Duration,
    pub tokens_issued: usize,
    pub valid_tokens: HashSet<String>,
    /// Enrollment requests (with identifiers), in arrival order.
    pub calls: Vec<BulkCall>,
    /// Empty authenticated POSTs (the probe).
    pub probes: usize,
    /// Learners currently enrolled per course.
    pub enrolled: HashMap<String, HashSet<String>>,
}

#[derive(Clone)]
pub struct FakeLms {
    pub server: Arc<MockServer>,
    pub state: Arc<Mutex<LmsState>>,
}

impl FakeLms {
    pub async fn start() -> FakeLms {
        let server = MockServer::start().await;
        let state = Arc::new(Mutex::new(LmsState::default()));
        Mock::given(method("POST"))
            .and(path_regex(r"^/oauth2/access_token/?$"))
            .respond_with(TokenEndpoint(state.clone()))
            .mount(&server)
            .await;
        // Every method: the view answers GET too (401 without a token, 405 with one).
        Mock::given(path("/api/bulk_enroll/v1/bulk_enroll"))
            .respond_with(BulkEnrollView(state.clone()))
            .mount(&server)
            .await;
        FakeLms {
            server: Arc::new(server),
            state,
        }
    }

    pub fn uri(&self) -> String {
        self.server.uri()
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut LmsState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn calls(&self) -> Vec<BulkCall> {
        self.with(|s| s.calls.clone())
    }

    /// Learners that were in two requests in flight at the same time.
    pub fn learners_in_flight_twice(&self) -> Vec<String> {
        self.with(|s| {
            let mut seen: HashMap<String, Vec<(std::time::Instant, std::time::Instant)>> =
                HashMap::new();
            let mut twice = Vec::new();
            for call in &s.calls {
                let span = (call.at, call.at + s.answer_delay);
                for learner in call.identifiers() {
                    let spans = seen.entry(learner.clone()).or_default();
                    if spans
                        .iter()
                        .any(|(start, end)| span.0 < *end && *start < span.1)
                    {
                        twice.push(learner);
                    }
                    spans.push(span);
                }
            }
            twice
        })
    }

    /// The most enrollment requests received in any 60 s window.
    pub fn most_calls_in_a_minute(&self) -> usize {
        self.with(|s| {
            let times: Vec<std::time::Instant> = s.calls.iter().map(|c| c.at).collect();
            times
                .iter()
                .map(|start| {
                    times
                        .iter()
                        .filter(|t| {
                            **t >= *start && **t - *start < std::time::Duration::from_secs(60)
                        })
                        .count()
                })
                .max()
                .unwrap_or(0)
        })
    }

    pub fn is_enrolled(&self, course: &str, email: &str) -> bool {
        self.with(|s| {
            s.enrolled
                .get(course)
                .is_some_and(|set| set.contains(&email.to_lowercase()))
        })
    }

    /// `HEAD {prefix}{sku}` redirects to the course's about page.
    pub async fn map_sku(&self, prefixed_sku: &str, course: &str) {
        Mock::given(method("HEAD"))
            .and(path(prefixed_sku.to_owned()))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("Location", format!("/courses/{course}/about")),
            )
            .mount(&self.server)
            .await;
        Mock::given(method("HEAD"))
            .and(path(format!("/courses/{course}/about")))
            .respond_with(ResponseTemplate::new(200))
            .mount(&self.server)
            .await;
    }
}

struct TokenEndpoint(Arc<Mutex<LmsState>>);

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

struct BulkEnrollView(Arc<Mutex<LmsState>>);

impl Respond for BulkEnrollView {
    fn respond(&self, request: &Request) -> ResponseTemplate {
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
        match state.script.pop_front() {
            Some(Reply::Status(code)) => {
                return ResponseTemplate::new(code).set_body_string(format!("scripted {code}"))
            }
            Some(Reply::Throttle { retry_after_secs }) => {
                return ResponseTemplate::new(429)
                    .insert_header("Retry-After", retry_after_secs.to_string())
                    .set_body_json(json!({"detail": "Request was throttled."}))
            }
            Some(Reply::ExpireTokens) => {
                state.valid_tokens.clear();
                return ResponseTemplate::new(401)
                    .set_body_json(json!({"detail": "Error decoding token."}));
            }
            None => {}
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
            let enrolled = state.enrolled.entry(course.clone()).or_default();
            let before = enrolled.contains(&identifier.to_lowercase());
            let after = action == "enroll";
            if after {
                enrolled.insert(identifier.to_lowercase());
            } else {
                enrolled.remove(&identifier.to_lowercase());
            }
            results.push(json!({
                "identifier": identifier,
                "before": {"enrollment": before, "allowed": false, "user": true, "auto_enroll": false},
                "after": {"enrollment": after, "allowed": false, "user": true, "auto_enroll": false}
            }));
        }
        let auto_enroll = call.field("auto_enroll") == "true";
        ResponseTemplate::new(200)
            .set_delay(state.answer_delay)
            .set_body_json(json!({
                "action": action, "auto_enroll": auto_enroll, "email_students": call.field("email_students") == "true",
                "courses": {course.clone(): {"action": action, "auto_enroll": auto_enroll, "results": results}}
            }))
    }
}

fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The body of a JSON answer, for assertions.
#[allow(dead_code)]
pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}
