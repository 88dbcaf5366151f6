//! What is stored, and what happens when it cannot be.

use serde_json::Value;
use sqlx::{AnyConnection, Connection};

use crate::helpers::*;

/// A trigger that makes every insert into `requests` fail, as a full disk would.
struct Writes(AnyConnection, bool);

impl Writes {
    async fn refuse(db: Db, url: &str) -> Writes {
        sqlx::any::install_default_drivers();
        let mut conn = AnyConnection::connect(url).await.unwrap();
        let statements: &[&str] = match db {
            Db::Sqlite => &["CREATE TRIGGER refuse_writes BEFORE INSERT ON requests \
                BEGIN SELECT RAISE(FAIL, 'disk full'); END"],
            Db::Postgres => &[
                "CREATE FUNCTION disk_full() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_writes BEFORE INSERT ON requests FOR EACH ROW EXECUTE FUNCTION disk_full()",
            ],
            Db::MySql => &["CREATE TRIGGER refuse_writes BEFORE INSERT ON requests FOR EACH ROW \
                SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'disk full'"],
        };
        for statement in statements {
            sqlx::raw_sql(statement).execute(&mut conn).await.unwrap();
        }
        Writes(conn, db == Db::Postgres)
    }

    async fn allow(mut self) {
        let drop = if self.1 {
            "DROP TRIGGER refuse_writes ON requests"
        } else {
            "DROP TRIGGER refuse_writes"
        };
        sqlx::raw_sql(drop).execute(&mut self.0).await.unwrap();
    }
}

on_each_database! {
async fn a_database_that_cannot_be_written_answers_503_so_the_shop_retries(db: Db) {
    let app = spawn_app(db).await;
    let refuse_writes = Writes::refuse(db, &app.database_url).await;

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

    refuse_writes.allow().await;
    let retried = app.shopify("orders/create", &order).await;
    assert_eq!(retried.json::<Value>().await.unwrap()["status"], "accepted");
    app.wait_for_order("5001", SHOP, "enrolled").await;
}

async fn every_request_is_stored_with_its_verdict_and_source(db: Db) {
    let app = spawn_app(db).await;
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
}
