//! New work announced across processes: on PostgreSQL, a worker in another
//! process than the intake is woken by `NOTIFY`, not at its next look.

use std::time::Duration;

use edx_webhooks::store::Store;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// Waits for `wake` to fire, for 10 s at most (the next look is due within
/// a second; a wake-up is what is tested, not its speed).
async fn woken(wake: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>) -> bool {
    tokio::time::timeout(Duration::from_secs(10), wake)
        .await
        .is_ok()
}

#[tokio::test]
#[ignore = "PostgreSQL suite: run with --include-ignored (server: EDX_WEBHOOKS_TEST_POSTGRES)"]
async fn on_postgres_an_order_taken_in_one_process_wakes_the_workers_of_another() {
    let app = spawn_without_workers(Db::Postgres).await;
    // Another process's store: its own pool, its own workers' wake-up.
    let elsewhere = Store::connect(&app.database_url).await.unwrap();
    let wake = elsewhere.work_available();
    let stop = CancellationToken::new();

    // Listening announces itself with a first wake-up (work stored while no
    // one listened is found then).
    let listening = wake.notified();
    tokio::pin!(listening);
    listening.as_mut().enable();
    elsewhere.listen_for_work(stop.clone());
    assert!(woken(listening).await, "the listener never started");

    // An order whose items are due work: announced.
    let order = wake.notified();
    tokio::pin!(order);
    order.as_mut().enable();
    let body = shopify_order(
        4201,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &body).await.status(), 200);
    assert!(
        woken(order).await,
        "the other process was not told of the new order"
    );

    // So is an operator's retry there.
    let retried = wake.notified();
    tokio::pin!(retried);
    retried.as_mut().enable();
    app.store.retry_all_failed().await.unwrap();
    assert!(
        woken(retried).await,
        "the other process was not told of the retry"
    );
    stop.cancel();
}
