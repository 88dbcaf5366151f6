//! An LMS stand-in on localhost, as the benchmark needs it: a token endpoint,
//! and a bulk enrollment view that answers in 50 ms and throttles like the
//! real one (120 requests in any 60 s window, then 429 with Retry-After).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::json;

const ANSWER_TIME: Duration = Duration::from_millis(50);
const THROTTLE: usize = 120;
const WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct Counts {
    pub requests: usize,
    pub throttled: usize,
    pub enrolled: HashSet<String>,
    /// When each enrollment request arrived.
    pub arrivals: Vec<Instant>,
    /// How many learners each enrollment request carried.
    pub sizes: Vec<usize>,
    window: VecDeque<Instant>,
    /// Requests allowed in any window.
    limit: usize,
}

#[derive(Clone)]
pub struct FakeLms {
    pub address: SocketAddr,
    pub counts: Arc<Mutex<Counts>>,
}

impl FakeLms {
    pub async fn start() -> FakeLms {
        FakeLms::start_with(THROTTLE).await
    }

    /// An LMS that never throttles: the service's own pace is measured.
    pub async fn start_unthrottled() -> FakeLms {
        FakeLms::start_with(usize::MAX).await
    }

    async fn start_with(limit: usize) -> FakeLms {
        let counts = Arc::new(Mutex::new(Counts {
            limit,
            ..Counts::default()
        }));
        let app = Router::new()
            .route("/oauth2/access_token", post(token))
            .route("/api/bulk_enroll/v1/bulk_enroll", post(bulk_enroll))
            .with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake LMS");
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeLms { address, counts }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub fn enrolled(&self) -> usize {
        self.counts.lock().unwrap().enrolled.len()
    }
}

async fn token() -> Json<serde_json::Value> {
    Json(
        json!({"access_token": "bench-token", "expires_in": 3600, "token_type": "JWT", "scope": "read write"}),
    )
}

async fn bulk_enroll(
    State(counts): State<Arc<Mutex<Counts>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("JWT bench-token") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let identifiers: Vec<String> = form
        .get("identifiers")
        .map(|i| {
            i.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if identifiers.is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"identifiers": ["This field is required."]})),
        )
            .into_response();
    }
    {
        let mut c = counts.lock().unwrap();
        let now = Instant::now();
        while c
            .window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            c.window.pop_front();
        }
        c.requests += 1;
        c.arrivals.push(now);
        c.sizes.push(identifiers.len());
        if c.window.len() >= c.limit {
            c.throttled += 1;
            let wait = WINDOW
                .saturating_sub(now.duration_since(c.window[0]))
                .as_secs()
                + 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", wait.to_string())],
                "throttled",
            )
                .into_response();
        }
        c.window.push_back(now);
    }
    tokio::time::sleep(ANSWER_TIME).await;
    let course = form.get("courses").cloned().unwrap_or_default();
    let results: Vec<_> = identifiers
        .iter()
        .map(|i| {
            json!({"identifier": i, "before": {"enrollment": false, "allowed": false},
                   "after": {"enrollment": true, "allowed": false}})
        })
        .collect();
    counts.lock().unwrap().enrolled.extend(identifiers);
    Json(json!({"action": "enroll", "courses": {course: {"action": "enroll", "results": results}}}))
        .into_response()
}
