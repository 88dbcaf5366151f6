//! Orders taken in: enrolled once, pings, topics, paths without a topic,
//! learners, two shops.

use super::*;

on_each_database! {
async fn a_paid_order_enrolls_its_learner_with_the_expected_request(db: Db) {
    let app = spawn_app(db).await;
    let order = woo_order(
        727,
        &[(315, COURSE_A, Some("learner@example.org"))],
        "buyer@example.org",
        true,
    );

    let response = app.woocommerce("order.created", &order).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    app.wait_for_order("727", WOO_SOURCE, "enrolled").await;
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.field("action"), "enroll");
    assert_eq!(call.field("courses"), COURSE_A);
    assert_eq!(call.identifiers(), vec!["learner@example.org"]);
    assert_eq!(call.field("auto_enroll"), "true");
    assert_eq!(call.field("email_students"), "true");
    assert_eq!(
        call.field("reason"),
        "WooCommerce order #727 (https://shop.example.com/)"
    );
    assert_eq!(call.authorization.as_deref(), Some("JWT jwt-1"));
    assert!(app.lms.is_enrolled(COURSE_A, "learner@example.org"));
}

async fn the_same_order_again_is_a_duplicate_and_enrolls_nobody_twice(db: Db) {
    let app = spawn_app(db).await;
    let order = paid_order(1001, "learner@example.org");
    assert_eq!(app.woocommerce("order.created", &order).await.status(), 200);
    app.wait_for_order("1001", WOO_SOURCE, "enrolled").await;

    let again = app.woocommerce("order.created", &order).await;

    assert_eq!(status_of(again).await, (200, "duplicate".to_owned()));
    assert_eq!(last_request(&app).await.outcome, "duplicate");
    assert_eq!(app.lms.calls().len(), 1);
    assert_eq!(app.order("1001", WOO_SOURCE).await.state, "enrolled");
}

async fn a_ping_is_answered_200_and_stored(db: Db) {
    let app = spawn_app(db).await;
    for path in [BARE, CREATE, UPDATE] {
        let response = app
            .client
            .post(app.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("User-Agent", "WooCommerce/9.4.0 Hookshot (WordPress/6.7)")
            .body("webhook_id=12")
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "{path}");
        let stored = last_request(&app).await;
        assert_eq!(stored.outcome, "ping", "{path}");
        assert_eq!(stored.http_status, 200, "{path}");
        assert_eq!(stored.platform, "woocommerce", "{path}");
    }
    assert!(app.lms.calls().is_empty());
}

async fn an_unknown_topic_is_stored_and_ignored(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&json!({"id": 9, "code": "WELCOME10", "amount": "10.00"}))
        .header("X-WC-Webhook-Topic", "coupon.created")
        .header("X-WC-Webhook-Resource", "coupon")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "ignored".to_owned()));
    let stored = last_request(&app).await;
    assert_eq!(stored.outcome, "ignored");
    assert_eq!(stored.topic.as_deref(), Some("coupon.created"));
    assert!(app.store.find_order("9", None).await.is_err());
}

async fn a_deleted_order_is_stored_and_ignored(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&json!({"id": 727}))
        .header("X-WC-Webhook-Topic", "order.deleted")
        .header("X-WC-Webhook-Event", "deleted")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "ignored".to_owned()));
    let stored = last_request(&app).await;
    assert_eq!(stored.outcome, "ignored");
    assert_eq!(stored.topic.as_deref(), Some("order.deleted"));
}

async fn the_update_path_without_a_topic_header_means_order_updated(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let unpaid = woo_order(
        53,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        false,
    );
    let first = app.woocommerce("order.created", &unpaid).await;
    assert_eq!(status_of(first).await, (200, "awaiting_payment".to_owned()));

    let response = Delivery::of(&paid_order(53, "a@example.org"))
        .to(UPDATE)
        .without("X-WC-Webhook-Topic")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    assert_eq!(
        last_request(&app).await.topic.as_deref(),
        Some("order.updated")
    );
    app.wait_for_order("53", WOO_SOURCE, "enrolled").await;
    assert_eq!(app.lms.calls().len(), 1);
}

async fn the_create_paths_without_a_topic_header_mean_order_created(db: Db) {
    let app = spawn_app(db).await;
    for (id, path) in [(54, BARE), (55, CREATE)] {
        let response = Delivery::of(&paid_order(id, "a@example.org"))
            .to(path)
            .without("X-WC-Webhook-Topic")
            .send(&app)
            .await;

        assert_eq!(
            status_of(response).await,
            (200, "accepted".to_owned()),
            "{path}"
        );
        assert_eq!(
            last_request(&app).await.topic.as_deref(),
            Some("order.created"),
            "{path}"
        );
        app.wait_for_order(&id.to_string(), WOO_SOURCE, "enrolled")
            .await;
    }
}

async fn an_item_without_a_learner_email_field_goes_to_the_billing_email(db: Db) {
    let app = spawn_app(db).await;
    let order = woo_order(60, &[(1, COURSE_A, None)], "buyer@example.org", true);

    let response = app.woocommerce("order.created", &order).await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    let view = app.wait_for_order("60", WOO_SOURCE, "enrolled").await;
    assert_eq!(view.items[0].email.as_deref(), Some("buyer@example.org"));
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].identifiers(), vec!["buyer@example.org"]);
}

async fn two_shops_with_the_same_order_id_are_two_orders(db: Db) {
    let second = "https://second.example.com/";
    let app = spawn_app_with(db, |c| {
        c.woocommerce.push(WooCommerceShop {
            source: second.into(),
            secret: Some(Secret::new("second-secret")),
            api: None,
        })
    })
    .await;
    let first_order = paid_order(90, "one@example.org");
    let second_order = paid_order(90, "two@example.org");
    let body = raw(&second_order);
    let signature = sign("second-secret", &body);

    let first = app.woocommerce("order.created", &first_order).await;
    let other = Delivery::new(body)
        .header("X-WC-Webhook-Source", second)
        .header("X-WC-Webhook-Signature", &signature)
        .send(&app)
        .await;

    assert_eq!(status_of(first).await, (200, "accepted".to_owned()));
    assert_eq!(status_of(other).await, (200, "accepted".to_owned()));
    app.wait_for_order("90", WOO_SOURCE, "enrolled").await;
    app.wait_for_order("90", second, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "one@example.org"));
    assert!(app.lms.is_enrolled(COURSE_A, "two@example.org"));
    // Both orders may share one bulk request: each is named in the audit reason.
    let reasons: Vec<String> = app
        .lms
        .calls()
        .iter()
        .map(|c| c.field("reason").to_owned())
        .collect();
    let reasons = reasons.join(", ");
    assert!(reasons.contains("WooCommerce order #90 (https://shop.example.com/)"));
    assert!(reasons.contains("WooCommerce order #90 (https://second.example.com/)"));
}
}
