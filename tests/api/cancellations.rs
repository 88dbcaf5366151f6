//! Cancellations and refunds (SPEC §5).

use serde_json::{json, Value};

use crate::helpers::*;

async fn enrolled_order(app: &TestApp, id: u64, learners: &[(u64, &str)]) -> Value {
    let items: Vec<(u64, &str, Option<&str>)> = learners
        .iter()
        .map(|(line, email)| (*line, COURSE_A, Some(*email)))
        .collect();
    let order = shopify_order(id, &items, None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    app.wait_for_order(&id.to_string(), SHOP, "enrolled").await;
    order
}

fn cancelled(mut order: Value) -> Value {
    order["cancelled_at"] = json!("2026-11-28T12:00:00Z");
    order
}

on_each_database! {
async fn a_cancelled_order_unenrolls_learners_we_enrolled_when_asked_to(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    let order = enrolled_order(&app, 4001, &[(1, "ann@example.org")]).await;

    let response = app.shopify("orders/cancelled", &cancelled(order)).await;

    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    let view = app.wait_for_order("4001", SHOP, "cancelled").await;
    assert_eq!(view.items[0].state, "unenrolled");
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].field("action"), "unenroll");
    assert_eq!(calls[1].identifiers(), vec!["ann@example.org"]);
    assert!(!app.lms.is_enrolled(COURSE_A, "ann@example.org"));
}

async fn a_learner_who_was_enrolled_before_us_keeps_the_course(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    app.lms.with(|s| {
        s.enrolled
            .entry(COURSE_A.into())
            .or_default()
            .insert("had@example.org".into())
    });
    let order = enrolled_order(&app, 4002, &[(1, "had@example.org")]).await;

    let response = app.shopify("orders/cancelled", &cancelled(order)).await;

    assert_eq!(response.status(), 200);
    let view = app.wait_for_order("4002", SHOP, "cancelled").await;
    assert_eq!(view.items[0].state, "enrolled");
    assert_eq!(app.lms.calls().len(), 1);
    assert!(app.lms.is_enrolled(COURSE_A, "had@example.org"));
}

async fn a_refund_unenrolls_only_the_refunded_line_items(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    enrolled_order(
        &app,
        4003,
        &[(1, "ann@example.org"), (2, "bob@example.org")],
    )
    .await;
    let refund = json!({"id": 9001, "order_id": 4003, "created_at": "2026-11-28T12:00:00Z",
        "refund_line_items": [{"id": 1, "line_item_id": 2, "quantity": 1, "subtotal": 49.0}]});

    let response = app.shopify("refunds/create", &refund).await;

    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    let unenrolled = wait_until(std::time::Duration::from_secs(10), || async {
        !app.lms.is_enrolled(COURSE_A, "bob@example.org")
    })
    .await;
    assert!(unenrolled);
    let view = app.wait_for_order("4003", SHOP, "enrolled").await;
    let states: Vec<(&str, &str)> = view
        .items
        .iter()
        .map(|i| (i.line_item_id.as_str(), i.state.as_str()))
        .collect();
    assert!(states.contains(&("1", "enrolled")));
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
}

async fn without_unenroll_on_cancel_enrolled_learners_keep_their_course(db: Db) {
    let app = spawn_app(db).await;
    let order = enrolled_order(&app, 4004, &[(1, "ann@example.org")]).await;

    let response = app.shopify("orders/cancelled", &cancelled(order)).await;

    assert_eq!(response.status(), 200);
    let view = app.wait_for_order("4004", SHOP, "cancelled").await;
    assert_eq!(view.items[0].state, "enrolled");
    assert_eq!(app.lms.calls().len(), 1);
}

async fn cancelling_an_unpaid_order_cancels_its_waiting_items(db: Db) {
    let app = spawn_app_with(db, |c| c.require_payment = true).await;
    let order = shopify_order(
        4005,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "pending",
    );
    let response = app.shopify("orders/create", &order).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "awaiting_payment"
    );
    assert_eq!(app.order("4005", SHOP).await.state, "awaiting_payment");

    let response = app
        .shopify("orders/cancelled", &cancelled(order.clone()))
        .await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    let view = app.order("4005", SHOP).await;
    assert_eq!(view.state, "cancelled");
    assert_eq!(view.items[0].state, "cancelled");

    // A late payment notice for a cancelled order enrolls nobody.
    let mut paid = cancelled(order);
    paid["financial_status"] = json!("paid");
    assert_eq!(app.shopify("orders/paid", &paid).await.status(), 200);
    assert_eq!(app.order("4005", SHOP).await.items[0].state, "cancelled");
    assert!(app.lms.calls().is_empty());
}

async fn shopify_payment_releases_waiting_items(db: Db) {
    let app = spawn_app_with(db, |c| c.require_payment = true).await;
    let mut order = shopify_order(
        4006,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "pending",
    );
    assert_eq!(
        app.shopify("orders/create", &order)
            .await
            .json::<Value>()
            .await
            .unwrap()["status"],
        "awaiting_payment"
    );
    assert!(app.lms.calls().is_empty());

    order["financial_status"] = json!("paid");
    let response = app.shopify("orders/paid", &order).await;

    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    app.wait_for_order("4006", SHOP, "enrolled").await;
    assert_eq!(app.lms.calls().len(), 1);
}
}
