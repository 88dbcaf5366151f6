//! A load of 1,000 orders against the real binary, SIGKILLed at random
//! moments over several rounds and started again each time: every order
//! answered 200 ends enrolled, and no learner is in two LMS requests at once.

use std::collections::HashMap;
use std::time::Duration;

use edx_webhooks::store::Store;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::helpers::*;
use crate::lms::FakeLms;
use crate::load::*;
use crate::service::*;

const ORDERS: u64 = 1_000;
const KILLS: usize = 5;
const SENDERS: usize = 16;

/// The seed of the kill moments: `EDX_WEBHOOKS_TEST_SEED` to replay a run,
/// else the clock's.
fn seed() -> u64 {
    std::env::var("EDX_WEBHOOKS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

async fn killed_at_random_moments(db: Db) {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let lms = FakeLms::start().await;
    lms.with(|s| s.answer_delay = Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    // A short LMS timeout: a dead process's claim (its lease is twice the
    // timeout and 10 s) is taken over sooner.
    let env = with_setting(
        service_env(&lms, &url),
        "EDX_WEBHOOKS_LMS_RATE_LIMIT",
        "100000",
    );
    let env = with_setting(env, "EDX_WEBHOOKS_LMS_TIMEOUT", "1s");
    let load = Load::new(7_000_001..=7_000_000 + ORDERS);

    for round in 0..KILLS {
        let mut service = Service::start(dir.path(), &env).await;
        let sending = tokio::spawn({
            let (load, base) = (load.clone(), service.url(""));
            async move { load.deliver(base, SENDERS, true).await }
        });
        // A moment in the middle of the load: once some more orders are taken.
        let until = load.tally().answered(200) + rng.gen_range(20..150);
        let reached = wait_until(Duration::from_secs(120), || async {
            load.tally().answered(200) >= until
        })
        .await;
        assert!(
            reached,
            "round {round}: the load stalled at {:?}\n{}",
            load.tally(),
            service.stderr_text()
        );
        let status = service.kill().await;
        assert_eq!(status.code(), None, "killed by the signal: {status:?}");
        sending.await.unwrap();
    }
    // The last round: what is left, to a process left running.
    let service = Service::start(dir.path(), &env).await;
    load.deliver(service.url(""), SENDERS, true).await;

    let tally = load.tally();
    assert_eq!(load.waiting(), 0);
    assert_eq!(
        tally.unexpected(),
        Default::default(),
        "answers other than 200: {tally:?}"
    );
    assert_eq!(
        tally.answered(503),
        0,
        "the database was writable throughout: {tally:?}"
    );
    assert_eq!(tally.taken.len() as u64, ORDERS);
    let store = Store::connect(&url).await.unwrap();
    all_taken_enrolled(&store, &lms, &tally, ORDERS, &service).await;
    assert_eq!(lms.learners_in_flight_twice(), Vec::<String>::new());
    let mut sent: HashMap<String, usize> = HashMap::new();
    for learner in lms.calls().iter().flat_map(|c| c.identifiers()) {
        *sent.entry(learner).or_default() += 1;
    }
    let sent_again = sent.values().filter(|n| **n > 1).count();
    println!(
        "{db:?}, seed {seed}: {} requests tried for {ORDERS} orders, {KILLS} kills, {} answered 200, \
         {} not answered (in flight at a kill or sent just after), {ORDERS} orders enrolled, 0 lost; \
         {} LMS requests, {sent_again} learners sent again after a kill, none in two requests at once",
        tally.tried,
        tally.answered(200),
        tally.unanswered,
        lms.calls().len()
    );
}

on_each_database! {
    async fn a_thousand_orders_sigkilled_five_times_all_enrolled_none_in_flight_twice(db: Db) {
        killed_at_random_moments(db).await;
    }
}
