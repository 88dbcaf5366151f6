//! Several processes on one database: each claim to one worker, nothing lost,
//! one rate limit for all.

use std::time::Duration;

use edx_webhooks::domain::EnrollmentState;
use edx_webhooks::store::{ClaimReport, ClaimResult, ItemResult, Store, StoreError};
use serde_json::Value;
use tempfile::TempDir;

use crate::helpers::*;
use crate::lms::FakeLms;
use crate::service::*;

/// `count` processes on one database, with `settings` on top of the usual ones.
async fn processes(
    count: usize,
    lms: &FakeLms,
    url: &str,
    dir: &TempDir,
    settings: &[(&'static str, &str)],
) -> Vec<Service> {
    let mut env = service_env(lms, url);
    for (name, value) in settings {
        env = with_setting(env, name, value);
    }
    let starts = (0..count).map(|_| Service::start(dir.path(), &env));
    futures::future::join_all(starts).await
}

/// Sends the order to one process after another until one answers 200.
async fn deliver_to_any(services: &[Option<String>], first: usize, order: &Value) {
    let raw = serde_json::to_vec(order).unwrap();
    let client = reqwest::Client::new();
    for n in 0..services.len() * 3 {
        let Some(base) = &services[(first + n) % services.len()] else {
            continue;
        };
        let mut request = client.post(format!("{base}/webhooks/shopify"));
        for (name, value) in shopify_headers(&raw) {
            request = request.header(name, value);
        }
        if let Ok(response) = request.body(raw.clone()).send().await {
            if response.status() == 200 {
                return;
            }
        }
    }
    panic!("no process took order {}", order["id"]);
}

async fn enrolled_count(store: &Store) -> i64 {
    store
        .count_enrollments()
        .await
        .unwrap()
        .iter()
        .filter(|(state, _)| *state == EnrollmentState::Enrolled)
        .map(|(_, n)| n)
        .sum()
}

/// Polls until a claim can be taken (the batch is ready, or a lease ran out).
async fn claim_when_due(store: &Store, lease: Duration) -> edx_webhooks::store::Claim {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let ClaimResult::Claimed(claim) = store.claim_next(25, lease, 100).await.unwrap() {
            return claim;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "nothing became claimable"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const COURSES: [&str; 5] = [
    "course-v1:Org+C1+R",
    "course-v1:Org+C2+R",
    "course-v1:Org+C3+R",
    "course-v1:Org+C4+R",
    "course-v1:Org+C5+R",
];

on_each_database! {
async fn five_hundred_orders_across_three_processes_one_killed_all_enrolled_none_in_flight_twice(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| s.answer_delay = Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut services = processes(3, &lms, &url, &dir, &[("EDX_WEBHOOKS_LMS_RATE_LIMIT", "1000"), ("EDX_WEBHOOKS_LMS_TIMEOUT", "2s")]).await;
    let mut bases: Vec<Option<String>> = services.iter().map(|s| Some(s.url(""))).collect();

    for wave in 0..2u64 {
        let sends = (0..250u64).map(|n| {
            let id = 8_000_000 + wave * 250 + n;
            let email = format!("learner{id}@example.org");
            let order = shopify_order(id, &[(1, COURSES[(id % 5) as usize], Some(&email))], None, "paid");
            let bases = bases.clone();
            async move { deliver_to_any(&bases, id as usize, &order).await }
        });
        // Sixteen deliveries at a time, as a shop's burst would come.
        let mut pending = sends.collect::<Vec<_>>();
        while !pending.is_empty() {
            let batch: Vec<_> = pending.drain(..pending.len().min(16)).collect();
            futures::future::join_all(batch).await;
        }
        if wave == 0 {
            // Mid-run: one process dies without a chance to clean up.
            services[1].kill().await;
            bases[1] = None;
        }
    }

    let store = Store::connect(&url).await.unwrap();
    let all = wait_until(Duration::from_secs(90), || async { enrolled_count(&store).await == 500 }).await;
    assert!(all, "enrolled: {:?}", store.count_enrollments().await.unwrap());
    for n in 0..500u64 {
        let email = format!("learner{}@example.org", 8_000_000 + n);
        assert!(lms.is_enrolled(COURSES[((8_000_000 + n) % 5) as usize], &email), "{email}");
    }
    assert_eq!(lms.learners_in_flight_twice(), Vec::<String>::new());
    let calls = lms.calls().len();
    assert!(calls < 500, "claims batch learners of one course: {calls} requests for 500 learners");
}

async fn three_processes_share_one_rate_limit(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    // Intake first, with no workers, so that every process's workers race for the same due work.
    let intake = processes(1, &lms, &url, &dir, &[("EDX_WEBHOOKS_LMS_RATE_LIMIT", "4")]).await;
    for n in 0..12u64 {
        let order = shopify_order(9_100 + n, &[(1, &format!("course-v1:Org+Rate{n}+R"), Some("ann@example.org"))], None, "paid");
        deliver_to_any(&[Some(intake[0].url(""))], 0, &order).await;
    }
    let _workers = processes(3, &lms, &url, &dir, &[("EDX_WEBHOOKS_LMS_RATE_LIMIT", "4"), ("EDX_WEBHOOKS_WORKERS", "4")]).await;

    let four = wait_until(Duration::from_secs(10), || async { lms.calls().len() >= 4 }).await;
    assert!(four);
    // The window is a minute long: for a few seconds, sixteen workers find no slot.
    let more = wait_until(Duration::from_secs(3), || async { lms.calls().len() > 4 }).await;
    assert!(!more, "{} requests in the first minute", lms.calls().len());
    assert_eq!(lms.most_calls_in_a_minute(), 4);
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(enrolled_count(&store).await, 4);
}

async fn a_claim_whose_lease_ran_out_is_taken_over_and_the_late_result_is_not_written(db: Db) {
    let app = spawn_without_workers(db).await;
    let order = shopify_order(9_200, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    let lease = Duration::from_millis(200);

    let old = claim_when_due(&app.store, lease).await;
    // The same item again, for another claimer, once the lease has run out.
    let new = claim_when_due(&app.store, lease).await;
    assert_eq!(new.items[0].enrollment_id, old.items[0].enrollment_id);
    assert_ne!(new.token, old.token);

    let report = |token: &str, result: ItemResult| ClaimReport {
        token: token.to_owned(),
        results: vec![(new.items[0].enrollment_id, result, None)],
        lms: None,
    };
    assert_eq!(app.store.finish_claim(&report(&new.token, ItemResult::Enrolled { before_enrollment: Some(false) }), false).await.unwrap(), 1);
    let late = app.store.finish_claim(&report(&old.token, ItemResult::Failed { reason: "late".into() }), false).await;
    assert!(matches!(late, Err(StoreError::LeaseLost)), "{late:?}");
    assert!(matches!(app.store.renew_claim(&old.token, lease).await, Err(StoreError::LeaseLost)));

    let view = app.order("9200", SHOP).await;
    assert_eq!((view.state.as_str(), view.items[0].state.as_str()), ("enrolled", "enrolled"));
}

async fn two_claims_of_one_order_finishing_at_once_leave_it_enrolled(db: Db) {
    let app = spawn_without_workers(db).await;
    for n in 0..20 {
        let id = 9300 + n;
        let order = shopify_order(id, &[(1, COURSE_A, Some("ann@example.org")), (2, COURSE_B, Some("bob@example.org"))], None, "paid");
        app.shopify("orders/create", &order).await;
        let lease = Duration::from_secs(30);
        let a = claim_when_due(&app.store, lease).await;
        let b = claim_when_due(&app.store, lease).await;
        assert_ne!(a.work, b.work, "one claim per course");
        let done = |claim: &edx_webhooks::store::Claim| ClaimReport {
            token: claim.token.clone(),
            results: claim.items.iter().map(|i| (i.enrollment_id, ItemResult::Enrolled { before_enrollment: Some(false) }, None)).collect(),
            lms: None,
        };
        let (ra, rb) = (done(&a), done(&b));
        let (fa, fb) = tokio::join!(app.store.finish_claim(&ra, false), app.store.finish_claim(&rb, false));
        assert_eq!((fa.unwrap(), fb.unwrap()), (1, 1));

        let view = app.order(&id.to_string(), SHOP).await;
        assert_eq!(view.state, "enrolled", "each claim saw the other's item as pending: {view:#?}");
    }
}

async fn migrations_run_twice_are_harmless_and_two_processes_start_at_once(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;

    // Two processes against the empty database at the same moment.
    let both = processes(2, &lms, &url, &dir, &[]).await;
    for service in &both {
        let ready = reqwest::get(service.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200);
    }

    let env = service_env(&lms, &url);
    for _ in 0..2 {
        let migrate = command_with(&["migrate"], dir.path(), &env).output().await.unwrap();
        assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));
    }
    let order = shopify_order(9_300, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    deliver_to_any(&[Some(both[0].url(""))], 0, &order).await;
    let store = Store::connect(&url).await.unwrap();
    let enrolled = wait_until(Duration::from_secs(15), || async { enrolled_count(&store).await == 1 }).await;
    assert!(enrolled);
}
}
