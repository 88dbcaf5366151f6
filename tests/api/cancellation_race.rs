//! A cancellation or refund taken while the item's enrollment call is in
//! flight: the call's result is recorded, then undone where asked to.

use std::sync::Arc;
use std::time::Duration;

use edx_webhooks::domain::{CourseKey, Product};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::lms::{Gate, Reply};

/// Sends a paid order for ann and waits until its enrollment request is at
/// the LMS, which carries it out and holds its answer at the gate.
async fn order_in_flight(app: &TestApp, id: u64, lines: &[u64]) -> (Value, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    app.lms.with(|s| s.hold = Some(gate.clone()));
    let items: Vec<(u64, &str, Option<&str>)> = lines
        .iter()
        .map(|line| {
            (
                *line,
                COURSE_A,
                Some(["ann@example.org", "bob@example.org"][*line as usize - 1]),
            )
        })
        .collect();
    let order = shopify_order(id, &items, None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    let at_lms = wait_until(Duration::from_secs(15), || async {
        !app.lms.calls().is_empty()
    })
    .await;
    assert!(at_lms, "the enrollment request never reached the LMS");
    (order, gate)
}

async fn cancel(app: &TestApp, mut order: Value) {
    order["cancelled_at"] = json!("2026-11-28T12:00:00Z");
    let response = app.shopify("orders/cancelled", &order).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
}

/// Waits until the order's item on `line` is in `state`; its view.
async fn wait_for_item(
    app: &TestApp,
    order: &str,
    line: &str,
    state: &str,
) -> edx_webhooks::store::ItemView {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let view = app.order(order, SHOP).await;
        let item = view
            .items
            .iter()
            .find(|i| i.line_item_id == line)
            .unwrap()
            .clone();
        if item.state == state {
            return item;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "item {line} of order {order} did not become {state}: {item:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

on_each_database! {
async fn a_cancellation_during_the_enrollment_call_unenrolls_the_learner_once_it_returns(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    let (order, gate) = order_in_flight(&app, 4101, &[1]).await;

    cancel(&app, order).await;
    assert_eq!(app.order("4101", SHOP).await.items[0].state, "cancelled");
    gate.open();

    let item = wait_for_item(&app, "4101", "1", "unenrolled").await;
    assert_eq!(item.action, "unenroll");
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].field("action"), "enroll");
    assert_eq!(calls[1].field("action"), "unenroll");
    assert_eq!(calls[1].identifiers(), vec!["ann@example.org"]);
    assert!(!app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    assert_eq!(app.wait_for_order("4101", SHOP, "cancelled").await.state, "cancelled");
}

async fn a_refund_during_the_enrollment_call_unenrolls_only_the_refunded_learner(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    let (_, gate) = order_in_flight(&app, 4102, &[1, 2]).await;
    let refund = json!({"id": 9101, "order_id": 4102, "created_at": "2026-11-28T12:00:00Z",
        "refund_line_items": [{"id": 1, "line_item_id": 2, "quantity": 1, "subtotal": 49.0}]});

    let response = app.shopify("refunds/create", &refund).await;
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "accepted");
    gate.open();

    wait_for_item(&app, "4102", "2", "unenrolled").await;
    wait_for_item(&app, "4102", "1", "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    assert!(!app.lms.is_enrolled(COURSE_A, "bob@example.org"));
    app.wait_for_order("4102", SHOP, "enrolled").await;
}

async fn without_unenroll_on_cancel_the_learner_the_call_enrolled_is_recorded_enrolled(db: Db) {
    let app = spawn_app(db).await;
    let (order, gate) = order_in_flight(&app, 4103, &[1]).await;

    cancel(&app, order).await;
    gate.open();

    let item = wait_for_item(&app, "4103", "1", "enrolled").await;
    assert!(item.reason.unwrap().contains("UNENROLL_ON_CANCEL"));
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    assert_eq!(app.order("4103", SHOP).await.state, "cancelled");
    assert_eq!(app.lms.calls().len(), 1);
}

async fn a_learner_enrolled_before_the_order_keeps_the_course_after_a_cancellation_in_flight(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    app.lms.with(|s| s.enrolled.entry(COURSE_A.into()).or_default().insert("ann@example.org".into()));
    let (order, gate) = order_in_flight(&app, 4104, &[1]).await;

    cancel(&app, order).await;
    gate.open();

    let item = wait_for_item(&app, "4104", "1", "enrolled").await;
    assert!(item.reason.unwrap().contains("enrolled before"));
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    assert_eq!(app.lms.calls().len(), 1);
}

async fn a_call_in_flight_that_fails_leaves_the_cancelled_item_cancelled_and_is_not_retried(db: Db) {
    let app = spawn_app_with(db, |c| c.unenroll_on_cancel = true).await;
    app.lms.with(|s| s.script.push_back(Reply::Status(502)));
    let (order, gate) = order_in_flight(&app, 4105, &[1]).await;

    cancel(&app, order).await;
    gate.open();

    // The failed attempt is recorded against the cancelled item.
    let recorded = wait_until(Duration::from_secs(15), || async {
        let id = app.store.find_order("4105", Some(SHOP)).await.unwrap();
        let detail = app.store.order_detail(id).await.unwrap();
        detail.items.iter().flat_map(|i| &i.attempts).any(|a| a.http_status == Some(502))
    })
    .await;
    assert!(recorded, "the in-flight call's answer was not recorded");
    let view = app.order("4105", SHOP).await;
    assert_eq!(view.items[0].state, "cancelled");
    assert_eq!(view.items[0].reason.as_deref(), Some("order cancelled"));
    assert_eq!(app.lms.calls().len(), 1);
}

async fn a_paid_seat_cancelled_during_its_enrollment_api_call_is_deactivated_once_it_returns(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.products = vec![Product {
            sku: "PY-VERIFIED".into(),
            courses: vec![CourseKey::parse(COURSE_A).unwrap()],
            mode: Some("verified".into()),
        }];
        c.unenroll_on_cancel = true;
    })
    .await;
    let gate = Arc::new(Gate::default());
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.hold = Some(gate.clone());
    });
    let order = shopify_order(4106, &[(1, "PY-VERIFIED", Some("ann@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    let at_lms = wait_until(Duration::from_secs(15), || async { !app.lms.enrollment_calls().is_empty() }).await;
    assert!(at_lms, "the seat's request never reached the LMS");

    cancel(&app, order).await;
    gate.open();

    wait_for_item(&app, "4106", "1", "unenrolled").await;
    let seat = app.lms.seat_of(COURSE_A, "ann@example.org").unwrap();
    assert_eq!((seat.mode.as_str(), seat.active), ("verified", false));
    assert_eq!(app.lms.enrollment_calls().len(), 2);
}
}
