//! The store's operator API: order lists, an order's story, corrections, the
//! dashboard, pruning.

use std::time::Duration;

use edx_webhooks::domain::{EnrollmentState, LearnerEmail, OrderState};
use edx_webhooks::store::{OrderQuery, StoreError};

use crate::helpers::*;

fn query() -> OrderQuery {
    OrderQuery::default()
}

on_each_database! {
async fn order_lists_page_newest_first_with_a_total(db: Db) {
    let app = spawn_without_workers(db).await;
    for id in 8001..=8005 {
        app.shopify("orders/create", &shopify_order(id, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid")).await;
    }

    let page = app.store.list_orders(&OrderQuery { limit: 2, offset: 1, ..query() }).await.unwrap();
    assert_eq!(page.total, 5);
    let numbers: Vec<&str> = page.orders.iter().map(|o| o.number.as_str()).collect();
    assert_eq!(numbers, ["#8004", "#8003"]);
    assert_eq!(page.orders[0].state, OrderState::Processing);
    assert_eq!((page.orders[0].items, page.orders[0].failed_items), (1, 0));

    let own_id = page.orders[1].id;
    let found = app.store.list_orders(&OrderQuery { search: Some(own_id.to_string()), ..query() }).await.unwrap();
    assert!(found.orders.iter().any(|o| o.id == own_id), "our id is searched too");

    let none = app.store.list_orders(&OrderQuery { state: Some(OrderState::Failed), ..query() }).await.unwrap();
    assert_eq!((none.orders.len(), none.total), (0, 0));
    let other_shop = app.store.list_orders(&OrderQuery { shop: Some("other.myshopify.com".into()), ..query() }).await.unwrap();
    assert_eq!(other_shop.total, 0);
}

async fn order_detail_has_items_attempts_and_requests_in_order(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(8011, &[(1, COURSE_A, Some("ann@example.org")), (2, COURSE_B, Some("bob@example.org"))], None, "paid");
    app.shopify("orders/create", &order).await;
    let view = app.wait_for_order("8011", SHOP, "enrolled").await;
    app.shopify("orders/updated", &order).await;

    let detail = app.store.order_detail(view.id).await.unwrap();
    assert_eq!(detail.order.number, "#8011");
    assert_eq!(detail.items.len(), 2);
    for item in &detail.items {
        assert_eq!(item.attempts.len(), 1, "{item:?}");
        assert_eq!(item.attempts[0].http_status, Some(200));
    }
    let outcomes: Vec<&str> = detail.requests.iter().map(|r| r.outcome.as_str()).collect();
    assert_eq!(outcomes, ["accepted", "duplicate"]);
    let raw: serde_json::Value = serde_json::from_slice(&detail.requests[0].body).unwrap();
    assert_eq!(raw, order);

    let request = app.store.request(detail.requests[0].id).await.unwrap();
    assert_eq!(request, detail.requests[0]);
    assert!(matches!(app.store.order_detail(999_999).await, Err(StoreError::NotFound(_))));
    assert!(matches!(app.store.request(999_999).await, Err(StoreError::NotFound(_))));
}

async fn rejected_requests_are_listed_newest_first(db: Db) {
    let app = spawn_without_workers(db).await;
    for content_type in ["text/plain", "application/xml"] {
        app.client.post(app.url("/webhooks/shopify")).header("Content-Type", content_type).body("x").send().await.unwrap();
    }
    app.shopify("orders/create", &shopify_order(8021, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid")).await;

    let page = app.store.rejected_requests(1, 0, false).await.unwrap();
    assert_eq!(page.total, 2);
    assert_eq!(page.requests.len(), 1);
    assert!(page.requests[0].reason.as_deref().unwrap().contains("application/xml"));
}

async fn set_email_is_only_for_failed_items(db: Db) {
    let app = spawn_without_workers(db).await;
    app.shopify("orders/create", &shopify_order(8031, &[(1, COURSE_A, Some("ann@example.org")), (2, COURSE_B, Some("bob@"))], None, "paid")).await;
    let view = app.order("8031", SHOP).await;
    assert_eq!(view.state, "processing");
    let (pending, failed) = (view.items[0].id, view.items[1].id);
    let email = LearnerEmail::parse("bob@example.org").unwrap();

    match app.store.set_email(pending, &email).await {
        Err(StoreError::Invalid(message)) => assert!(message.contains("is pending"), "{message}"),
        other => panic!("a pending item's email cannot be set: {other:?}"),
    }
    assert!(matches!(app.store.set_email(999_999, &email).await, Err(StoreError::NotFound(_))));

    app.store.set_email(failed, &email).await.unwrap();
    let view = app.order("8031", SHOP).await;
    assert_eq!(view.items[1].state, "pending");
    assert_eq!(view.items[1].email.as_deref(), Some("bob@example.org"));
    assert_eq!((view.items[1].reason.as_deref(), view.items[1].attempts), (None, 0));
    assert_eq!(view.items[0].email.as_deref(), Some("ann@example.org"), "the other item is untouched");
}

async fn the_dashboard_counts_and_shows_recent_failures(db: Db) {
    let app = spawn_app(db).await;
    app.shopify("orders/create", &shopify_order(8041, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid")).await;
    app.shopify("orders/create", &shopify_order(8042, &[(1, COURSE_A, Some("nobody"))], None, "paid")).await;
    app.wait_for_order("8041", SHOP, "enrolled").await;
    app.wait_for_order("8042", SHOP, "failed").await;

    let dashboard = app.store.dashboard().await.unwrap();
    assert!(dashboard.enrollments_by_state.contains(&(EnrollmentState::Enrolled, 1)));
    assert!(dashboard.enrollments_by_state.contains(&(EnrollmentState::Failed, 1)));
    assert!(dashboard.orders_by_state.contains(&(OrderState::Enrolled, 1)));
    assert!(dashboard.orders_by_state.contains(&(OrderState::Failed, 1)));
    assert_eq!(dashboard.oldest_pending_due_ms, None);
    assert_eq!(dashboard.recent_failures.len(), 1);
    let failure = &dashboard.recent_failures[0];
    assert_eq!(failure.order.number, "#8042");
    assert!(failure.reason.as_deref().unwrap().contains("invalid learner email"));
    assert_eq!(dashboard.lms.misconfigured, None);
    serde_json::to_string(&dashboard).expect("the dashboard serializes");
}

async fn prune_never_touches_orders_that_wait_or_work(db: Db) {
    let app = spawn_app_with(db, |config| config.require_payment = true).await;
    app.lms.with(|lms| lms.view_disabled = true);
    app.shopify("orders/create", &shopify_order(8051, &[(1, COURSE_A, Some("ann@example.org"))], None, "pending")).await;
    app.shopify("orders/create", &shopify_order(8052, &[(1, COURSE_A, Some("bob@example.org"))], None, "paid")).await;
    assert!(wait_until(Duration::from_secs(10), || async {
        app.store.lms_status().await.unwrap().misconfigured.is_some()
    }).await, "the LMS is found misconfigured");
    assert_eq!(app.order("8051", SHOP).await.state, "awaiting_payment");
    assert_eq!(app.order("8052", SHOP).await.state, "processing");
    let dashboard = app.store.dashboard().await.unwrap();
    assert!(dashboard.oldest_pending_due_ms.is_some());
    assert!(dashboard.lms.misconfigured.is_some());

    clock_moves_on(2).await;
    let report = app.store.prune(Duration::ZERO).await.unwrap();

    assert_eq!(report.orders, 0);
    assert_eq!(report.requests, 0);
    assert_eq!(app.store.list_orders(&query()).await.unwrap().total, 2);
    assert_eq!(app.store.requests(10).await.unwrap().len(), 2);
}
}
