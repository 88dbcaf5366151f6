//! The database server stopped mid-load (an immediate shutdown, as a crash
//! does) and started again: deliveries get 503 while it is down, never another
//! 5xx and never a hang; the service recovers by itself, and every order
//! answered 200 ends enrolled at the LMS. Each test starts a server of its own.

use std::time::Duration;

use edx_webhooks::store::Store;

use crate::helpers::wait_until;
use crate::lms::FakeLms;
use crate::load::*;
use crate::own_server::{Engine, OwnServer};
use crate::service::*;

const ORDERS: u64 = 300;
const SENDERS: usize = 8;

async fn restarted_mid_load(engine: Engine) {
    let mut server = OwnServer::start(engine).await;
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = with_setting(
        service_env(&lms, &server.url()),
        "EDX_WEBHOOKS_LMS_RATE_LIMIT",
        "100000",
    );
    let service = Service::start(dir.path(), &env).await;
    let load = Load::new(1..=ORDERS);
    let sending = tokio::spawn({
        let load = load.clone();
        let base = service.url("");
        async move { load.deliver(base, SENDERS, false).await }
    });

    let started = wait_until(Duration::from_secs(60), || async {
        load.tally().answered(200) >= 60
    })
    .await;
    assert!(
        started,
        "the load did not get going: {:?}\n{}",
        load.tally(),
        service.stderr_text()
    );
    server.stop_immediately().await;
    let taken_before = load.tally().answered(200);
    let refused = wait_until(Duration::from_secs(120), || async {
        load.tally().answered(503) >= SENDERS
    })
    .await;
    assert!(
        refused,
        "no 503 while the server is down: {:?}\n{}",
        load.tally(),
        service.stderr_text()
    );
    let ready = reqwest::Client::new()
        .get(service.url("/readyz"))
        .timeout(ANSWER_DEADLINE)
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503, "/readyz while the database is down");
    let taken_while_down = load.tally().answered(200) - taken_before;
    server.start_again().await;

    tokio::time::timeout(Duration::from_secs(300), sending)
        .await
        .expect("the load ends once the server is back")
        .unwrap();
    let tally = load.tally();
    assert_eq!(
        tally.unexpected(),
        Default::default(),
        "{tally:?}\n{}",
        service.stderr_text()
    );
    assert_eq!(
        (tally.unanswered, tally.timed_out),
        (0, 0),
        "tries without an answer: {tally:?}"
    );
    assert_eq!(tally.taken.len() as u64, ORDERS);

    let store = Store::connect(&server.url()).await.unwrap();
    all_taken_enrolled(&store, &lms, &tally, ORDERS, &service).await;
    let ready = reqwest::get(service.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200, "ready again by itself");
    println!(
        "{engine:?} restarted mid-load: {} tries for {ORDERS} orders, {} answered 200, {} answered 503, \
         {taken_while_down} answered 200 while it stopped, slowest answer {:?}; {ORDERS} orders enrolled, 0 lost",
        tally.tried,
        tally.answered(200),
        tally.answered(503),
        tally.slowest
    );
}

#[tokio::test]
#[ignore = "starts a PostgreSQL server of its own: run with --include-ignored (needs the postgresql package)"]
async fn postgres_restarted_mid_load_answers_503_while_down_and_loses_nothing() {
    restarted_mid_load(Engine::Postgres).await;
}

#[tokio::test]
#[ignore = "starts a MariaDB server of its own: run with --include-ignored (needs the mariadb-server package)"]
async fn mariadb_restarted_mid_load_answers_503_while_down_and_loses_nothing() {
    restarted_mid_load(Engine::MariaDb).await;
}
