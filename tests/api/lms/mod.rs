//! A fake Open edX LMS on a real HTTP server, behaving as EXTERNAL-CONTRACTS.md
//! says: client-credentials tokens, the bulk enrollment view, SKU redirects,
//! and the Enrollment API with course modes and learners who register later.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

mod bulk_enroll;
mod enrollment;

use bulk_enroll::{BulkEnrollView, TokenEndpoint};
use enrollment::{CourseModes, EnrollmentApi};

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
    /// Does what was asked, then answers with this status (the answer is lost).
    AfterDoing(u16),
    /// A status with this body as `text/html` (a proxy's error page, a login page).
    Html(u16, &'static str),
    /// Does what was asked, and answers only after this long.
    Slow(std::time::Duration),
}

impl Reply {
    /// The answer of a reply that answers by itself, instead of the request
    /// being carried out (not `AfterDoing` or `Slow`).
    fn answer(self, state: &mut LmsState) -> ResponseTemplate {
        match self {
            Reply::Status(code) => {
                ResponseTemplate::new(code).set_body_string(format!("scripted {code}"))
            }
            Reply::Throttle { retry_after_secs } => ResponseTemplate::new(429)
                .insert_header("Retry-After", retry_after_secs.to_string())
                .set_body_json(serde_json::json!({"detail": "Request was throttled."})),
            Reply::ExpireTokens => {
                state.valid_tokens.clear();
                ResponseTemplate::new(401)
                    .set_body_json(serde_json::json!({"detail": "Error decoding token."}))
            }
            Reply::Html(code, body) => ResponseTemplate::new(code)
                .set_body_raw(body.as_bytes().to_vec(), "text/html; charset=utf-8"),
            Reply::AfterDoing(_) | Reply::Slow(_) => {
                unreachable!("{self:?} is carried out, not answered by itself")
            }
        }
    }
}

/// An enrollment with a mode, as the Enrollment API keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub mode: String,
    pub active: bool,
    /// `created`, as the LMS reports it.
    pub created: String,
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
    /// Emails that have no account (yet); every other email has one.
    pub no_account: HashSet<String>,
    /// Enrollment-allowed rows (course → emails): enrolled on registration.
    pub allowed: HashMap<String, HashSet<String>>,
    /// The modes each course sells: (slug, expired). A course not listed
    /// sells `audit` only.
    pub course_modes: HashMap<String, Vec<(String, bool)>>,
    /// Enrollments with their mode, by (course, email).
    pub seats: HashMap<(String, String), Seat>,
    /// Enrollment API requests (JSON bodies), in arrival order.
    pub enrollment_calls: Vec<Value>,
    /// Scripted answers to the next Enrollment API requests.
    pub enrollment_script: VecDeque<Reply>,
    /// While set and closed, enrollment requests are carried out and their
    /// answers held until it opens.
    pub hold: Option<Arc<Gate>>,
}

/// Holds the LMS's answers (it has acted) until opened.
#[derive(Debug, Default)]
pub struct Gate {
    open: Mutex<bool>,
    opened: std::sync::Condvar,
}

impl Gate {
    pub fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    /// Waits (blocking the fake's own server thread) until opened, or for a
    /// minute at most, so that a failing test cannot hang.
    fn pass(&self) {
        let open = self.open.lock().unwrap();
        let _open = self
            .opened
            .wait_timeout_while(open, std::time::Duration::from_secs(60), |open| !*open)
            .unwrap();
    }
}

/// The answer `answer` gives, held at the gate when it recorded a request.
fn held(
    state: &Mutex<LmsState>,
    requests: impl Fn(&LmsState) -> usize,
    answer: impl FnOnce() -> ResponseTemplate,
) -> ResponseTemplate {
    let before = requests(&state.lock().unwrap());
    let template = answer();
    let gate = {
        let state = state.lock().unwrap();
        state.hold.clone().filter(|_| requests(&state) > before)
    };
    if let Some(gate) = gate {
        gate.pass();
    }
    template
}

impl LmsState {
    /// The learner (who has an account) enrolled in `course` in `mode`, made `created`.
    pub fn seat(&mut self, course: &str, email: &str, mode: &str, created: &str) {
        let email = email.to_lowercase();
        self.enrolled
            .entry(course.to_owned())
            .or_default()
            .insert(email.clone());
        self.seats.insert(
            (course.to_owned(), email),
            Seat {
                mode: mode.to_owned(),
                active: true,
                created: created.to_owned(),
            },
        );
    }

    /// The course sells these modes (none expired).
    pub fn offer(&mut self, course: &str, modes: &[&str]) {
        self.course_modes.insert(
            course.to_owned(),
            modes.iter().map(|m| (m.to_string(), false)).collect(),
        );
    }

    /// The learner registers: the LMS enrolls them, in the default mode,
    /// where an enrollment-allowed row waits (and skips courses they have).
    pub fn register(&mut self, email: &str) {
        let email = email.to_lowercase();
        self.no_account.remove(&email);
        let courses: Vec<String> = self
            .allowed
            .iter()
            .filter(|(_, emails)| emails.contains(&email))
            .map(|(course, _)| course.clone())
            .collect();
        for course in courses {
            if !self.seats.contains_key(&(course.clone(), email.clone())) {
                self.seat(&course, &email, "audit", &now_text());
            }
        }
    }
}

/// Now, as the LMS writes times.
fn now_text() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let secs = now.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        now.subsec_micros()
    )
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
        Mock::given(method("POST"))
            .and(path("/api/enrollment/v1/enrollment"))
            .respond_with(EnrollmentApi(state.clone()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/api/enrollment/v1/course/"))
            .respond_with(CourseModes(state.clone()))
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

    pub fn enrollment_calls(&self) -> Vec<Value> {
        self.with(|s| s.enrollment_calls.clone())
    }

    /// The learner's enrollment in `course` with its mode, if any.
    pub fn seat_of(&self, course: &str, email: &str) -> Option<Seat> {
        self.with(|s| {
            s.seats
                .get(&(course.to_owned(), email.to_lowercase()))
                .cloned()
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

/// Whether the request carries a token the fake issued.
pub(super) fn authorized(state: &LmsState, request: &Request) -> bool {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.strip_prefix("JWT "))
        .is_some_and(|t| state.valid_tokens.contains(t))
}

pub(super) fn parse_form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

/// The body of a JSON answer, for assertions.
#[allow(dead_code)]
pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}
