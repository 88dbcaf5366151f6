//! Payment: an unpaid order waits, an update releases or cancels it.

use super::*;

on_each_database! {
async fn an_unpaid_order_waits_for_payment_without_calling_the_lms(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let unpaid = woo_order(
        50,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        false,
    );

    let response = app.woocommerce("order.created", &unpaid).await;

    assert_eq!(
        status_of(response).await,
        (200, "awaiting_payment".to_owned())
    );
    // Intake writes the order before answering: no waiting needed.
    let view = app.order("50", WOO_SOURCE).await;
    assert_eq!(view.state, "awaiting_payment");
    assert_eq!(
        item_states(&view),
        vec![("1".to_owned(), "awaiting_payment".to_owned())]
    );
    assert_eq!(last_request(&app).await.outcome, "awaiting_payment");
    assert!(app.lms.calls().is_empty());
}

async fn an_update_showing_payment_releases_the_waiting_order(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let unpaid = woo_order(
        51,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        false,
    );
    let first = app.woocommerce("order.created", &unpaid).await;
    assert_eq!(status_of(first).await, (200, "awaiting_payment".to_owned()));
    assert_eq!(app.order("51", WOO_SOURCE).await.state, "awaiting_payment");

    let paid = woo_order(
        51,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        true,
    );
    let response = Delivery::of(&paid)
        .to(UPDATE)
        .header("X-WC-Webhook-Topic", "order.updated")
        .header("X-WC-Webhook-Event", "updated")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("51", WOO_SOURCE, "enrolled").await;
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].identifiers(), vec!["a@example.org"]);
    assert_eq!(calls[0].field("courses"), COURSE_A);
}

async fn a_cancelled_update_cancels_the_waiting_items(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let mut order = woo_order(
        52,
        &[
            (1, COURSE_A, Some("a@example.org")),
            (2, COURSE_B, Some("b@example.org")),
        ],
        "buyer@example.org",
        false,
    );
    let first = app.woocommerce("order.created", &order).await;
    assert_eq!(status_of(first).await, (200, "awaiting_payment".to_owned()));

    order["status"] = json!("cancelled");
    let response = Delivery::of(&order)
        .to(UPDATE)
        .header("X-WC-Webhook-Topic", "order.updated")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    let view = app.order("52", WOO_SOURCE).await;
    assert_eq!(view.state, "cancelled");
    assert_eq!(
        item_states(&view),
        vec![
            ("1".to_owned(), "cancelled".to_owned()),
            ("2".to_owned(), "cancelled".to_owned())
        ]
    );
    assert!(app.lms.calls().is_empty());
}
}
