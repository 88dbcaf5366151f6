//! A load of orders for the real binary, delivered as shops deliver: several
//! at once, and an order refused with 503 or not answered delivered again
//! later. Counts what it tried and how each try was answered.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edx_webhooks::domain::EnrollmentState;
use edx_webhooks::store::Store;
use serde_json::Value;

use crate::helpers::shopify_order;
use crate::service::shopify_headers;

pub const COURSES: [&str; 5] = [
    "course-v1:Org+Load1+R",
    "course-v1:Org+Load2+R",
    "course-v1:Org+Load3+R",
    "course-v1:Org+Load4+R",
    "course-v1:Org+Load5+R",
];
/// Longer than any answer may take (the service waits 4 s for a commit, the
/// rest is room for a loaded machine): a try past it is a hang.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(15);
/// How long a shop waits before delivering a refused order again.
const REDELIVERY_PAUSE: Duration = Duration::from_millis(50);

/// Order `id`: one line item, for a learner of its own.
pub fn load_order(id: u64) -> Value {
    shopify_order(
        id,
        &[(1, COURSES[(id % 5) as usize], Some(&learner(id)))],
        None,
        "paid",
    )
}

pub fn learner(id: u64) -> String {
    format!("learner{id}@example.org")
}

pub fn course_of(id: u64) -> &'static str {
    COURSES[(id % 5) as usize]
}

#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub tried: usize,
    /// Tries by the status they were answered with.
    pub statuses: BTreeMap<u16, usize>,
    /// Tries that got no answer (connection refused or cut, or past `ANSWER_DEADLINE`).
    pub unanswered: usize,
    pub timed_out: usize,
    /// Orders answered 200 at least once.
    pub taken: HashSet<u64>,
    pub slowest: Duration,
}

impl Tally {
    pub fn answered(&self, status: u16) -> usize {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Tries answered with something else than 200 or 503.
    pub fn unexpected(&self) -> BTreeMap<u16, usize> {
        let mut other = self.statuses.clone();
        other.retain(|status, _| *status != 200 && *status != 503);
        other
    }
}

pub struct Load {
    queue: Mutex<VecDeque<u64>>,
    tally: Mutex<Tally>,
}

impl Load {
    pub fn new(ids: impl IntoIterator<Item = u64>) -> Arc<Load> {
        Arc::new(Load {
            queue: Mutex::new(ids.into_iter().collect()),
            tally: Mutex::new(Tally::default()),
        })
    }

    pub fn tally(&self) -> Tally {
        self.tally.lock().unwrap().clone()
    }

    pub fn waiting(&self) -> usize {
        self.queue.lock().unwrap().len()
    }

    /// `senders` at once deliver the waiting orders to `base` until none
    /// waits; with `stop_when_unanswered`, each sender stops at its first try
    /// that gets no answer (the process was killed).
    pub async fn deliver(
        self: &Arc<Self>,
        base: String,
        senders: usize,
        stop_when_unanswered: bool,
    ) {
        let client = reqwest::Client::builder()
            .timeout(ANSWER_DEADLINE)
            .build()
            .unwrap();
        let runs = (0..senders).map(|_| {
            let (load, client, base) = (self.clone(), client.clone(), base.clone());
            async move {
                load.send_until_done(&client, &base, stop_when_unanswered)
                    .await
            }
        });
        futures::future::join_all(runs).await;
    }

    async fn send_until_done(
        &self,
        client: &reqwest::Client,
        base: &str,
        stop_when_unanswered: bool,
    ) {
        loop {
            let Some(id) = self.queue.lock().unwrap().pop_front() else {
                return;
            };
            let raw = serde_json::to_vec(&load_order(id)).unwrap();
            let mut request = client.post(format!("{base}/webhooks/shopify"));
            for (name, value) in shopify_headers(&raw) {
                request = request.header(name, value);
            }
            let started = Instant::now();
            let answer = request.body(raw).send().await;
            let took = started.elapsed();
            let status = answer.as_ref().ok().map(|a| a.status().as_u16());
            {
                let mut tally = self.tally.lock().unwrap();
                tally.tried += 1;
                tally.slowest = tally.slowest.max(took);
                match (&answer, status) {
                    (_, Some(status)) => *tally.statuses.entry(status).or_default() += 1,
                    (Err(e), None) if e.is_timeout() => tally.timed_out += 1,
                    _ => tally.unanswered += 1,
                }
                if status == Some(200) {
                    tally.taken.insert(id);
                }
            }
            if status != Some(200) {
                self.queue.lock().unwrap().push_back(id);
            }
            match status {
                None if stop_when_unanswered => return,
                Some(200) => {}
                _ => tokio::time::sleep(REDELIVERY_PAUSE).await,
            }
        }
    }
}

/// How many enrollments are `enrolled` in the database.
pub async fn enrolled_count(store: &Store) -> i64 {
    store
        .count_enrollments()
        .await
        .unwrap()
        .iter()
        .filter(|(state, _)| *state == EnrollmentState::Enrolled)
        .map(|(_, n)| n)
        .sum()
}

/// Waits until `orders` are enrolled, then checks that every order answered
/// 200 is enrolled at the LMS; fails with the store's counts and the
/// service's log otherwise.
pub async fn all_taken_enrolled(
    store: &Store,
    lms: &crate::lms::FakeLms,
    tally: &Tally,
    orders: u64,
    service: &crate::service::Service,
) {
    let all = crate::helpers::wait_until(Duration::from_secs(120), || async {
        enrolled_count(store).await == orders as i64
    })
    .await;
    assert!(
        all,
        "enrolled: {:?}\n{}",
        store.count_enrollments().await.unwrap(),
        service.stderr_text()
    );
    let lost: Vec<u64> = tally
        .taken
        .iter()
        .copied()
        .filter(|id| !lms.is_enrolled(course_of(*id), &learner(*id)))
        .collect();
    assert_eq!(
        lost,
        Vec::<u64>::new(),
        "answered 200, not enrolled at the LMS"
    );
}
