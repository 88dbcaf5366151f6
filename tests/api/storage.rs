//! What is stored, and what happens when it cannot be.

use serde_json::Value;
use sqlx::Connection;

use crate::helpers::*;

#[tokio::test]
async fn a_database_that_cannot_be_written_answers_503_so_the_shop_retries() {
    let app = spawn_app().await;
    let url = format!("sqlite://{}", app.dir.path().join("test.sqlite3").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TRIGGER refuse_writes BEFORE INSERT ON requests BEGIN SELECT RAISE(FAIL, 'disk full'); END")
        .execute(&mut db)
        .await
        .unwrap();

    let order = shopify_order(
        5001,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    let response = app.shopify("orders/create", &order).await;

    assert_eq!(response.status(), 503);
    assert!(
        app.store.find_order("5001", Some(SHOP)).await.is_err(),
        "nothing half-stored"
    );

    sqlx::query("DROP TRIGGER refuse_writes")
        .execute(&mut db)
        .await
        .unwrap();
    let retried = app.shopify("orders/create", &order).await;
    assert_eq!(retried.json::<Value>().await.unwrap()["status"], "accepted");
    app.wait_for_order("5001", SHOP, "enrolled").await;
}

#[tokio::test]
async fn every_request_is_stored_with_its_verdict_and_source() {
    let app = spawn_app().await;
    let order = shopify_order(
        5002,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    app.shopify("orders/create", &order).await;
    app.client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();

    let stored = app.store.requests(10).await.unwrap();

    assert_eq!(stored.len(), 2);
    assert_eq!(
        (stored[0].http_status, stored[0].outcome.as_str()),
        (400, "rejected")
    );
    assert!(stored[0].reason.as_deref().unwrap().contains("text/plain"));
    assert_eq!(
        (stored[1].http_status, stored[1].outcome.as_str()),
        (200, "accepted")
    );
    assert_eq!(stored[1].shop.as_deref(), Some(SHOP));
    assert_eq!(stored[1].topic.as_deref(), Some("orders/create"));
    assert_eq!(stored[1].source_ip.as_deref(), Some("127.0.0.1"));
}
