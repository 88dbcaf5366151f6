//! Shopify intake, over HTTP.

use serde_json::{json, Value};

use crate::helpers::*;

fn raw(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

/// A request with Shopify's headers, `changed` replacing some of them.
fn delivery(app: &TestApp, body: Vec<u8>) -> reqwest::RequestBuilder {
    delivery_with(app, body, &[])
}

fn delivery_with(
    app: &TestApp,
    body: Vec<u8>,
    changed: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let signature = sign(SHOPIFY_KEY, &body);
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-Shopify-Topic", "orders/create".to_owned()),
        ("X-Shopify-Shop-Domain", SHOP.to_owned()),
        ("X-Shopify-Hmac-Sha256", signature),
    ];
    for (name, value) in changed {
        headers.retain(|(n, _)| n != name);
        headers.push((name, value.to_string()));
    }
    let mut request = app
        .client
        .post(app.url("/webhooks/shopify/order/create"))
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

async fn status_and_reason(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

on_each_database! {
async fn a_paid_order_enrolls_its_learner_with_the_expected_request(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(
        820982911946154508,
        &[(1, COURSE_A, Some("learner@example.org"))],
        Some("buyer@example.org"),
        "paid",
    );

    let response = app.shopify("orders/create", &order).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    app.wait_for_order("820982911946154508", SHOP, "enrolled")
        .await;
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
        format!("Shopify order #4508 ({SHOP})")
    );
    assert_eq!(call.authorization.as_deref(), Some("JWT jwt-1"));
}

async fn the_same_order_again_is_a_duplicate_and_enrolls_nobody_twice(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(
        1001,
        &[(1, COURSE_A, Some("learner@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    app.wait_for_order("1001", SHOP, "enrolled").await;

    let again = app.shopify("orders/create", &order).await;
    let paid = app.shopify("orders/paid", &order).await;

    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(paid.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(app.lms.calls().len(), 1);
}

async fn a_redelivery_with_the_same_webhook_id_is_a_duplicate(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&shopify_order(
        1002,
        &[(1, COURSE_A, Some("a@example.org"))],
        None,
        "paid",
    ));
    let first = delivery_with(&app, body.clone(), &[("X-Shopify-Webhook-Id", "wh-1")])
        .send()
        .await
        .unwrap();
    assert_eq!(first.json::<Value>().await.unwrap()["status"], "accepted");

    let again = delivery_with(&app, body, &[("X-Shopify-Webhook-Id", "wh-1")])
        .send()
        .await
        .unwrap();

    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
}

async fn other_methods_are_refused_with_allow_post(db: Db) {
    let app = spawn_app(db).await;
    for path in ["/webhooks/shopify", "/webhooks/shopify/order/create"] {
        let get = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(get.status(), 405);
        assert_eq!(get.headers()["allow"], "POST");
        let put = app.client.put(app.url(path)).send().await.unwrap();
        assert_eq!(put.status(), 405);
    }
}

async fn missing_signature_or_shop_header_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&shopify_order(
        1,
        &[(1, COURSE_A, None)],
        Some("b@example.org"),
        "paid",
    ));
    let no_signature = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Shop-Domain", SHOP)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let no_shop = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, &body))
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(status_and_reason(no_signature).await.0, 400);
    assert_eq!(status_and_reason(no_shop).await.0, 400);
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 2, "every request is stored");
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 400 && r.reason.is_some()));
}

async fn an_unknown_shop_is_forbidden(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&shopify_order(
        1,
        &[(1, COURSE_A, None)],
        Some("b@example.org"),
        "paid",
    ));
    let response = delivery_with(
        &app,
        body,
        &[("X-Shopify-Shop-Domain", "someone-else.myshopify.com")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(status_and_reason(response).await.0, 403);
}

async fn a_shop_with_an_empty_secret_refuses_a_body_signed_with_the_empty_key(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.shopify.push(edx_webhooks::config::ShopifyShop {
            domain: "keyless.myshopify.com".into(),
            api_key: None,
            api: None,
        })
    })
    .await;
    let body = raw(&shopify_order(
        1,
        &[(1, COURSE_A, None)],
        Some("b@example.org"),
        "paid",
    ));
    let response = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Shop-Domain", "keyless.myshopify.com")
        .header("X-Shopify-Hmac-Sha256", sign("", &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_reason(response).await.0, 403);
}

async fn a_wrong_or_undecodable_signature_is_forbidden(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&shopify_order(
        1,
        &[(1, COURSE_A, None)],
        Some("b@example.org"),
        "paid",
    ));
    let wrong = delivery_with(
        &app,
        body.clone(),
        &[("X-Shopify-Hmac-Sha256", &sign("another-key", &body))],
    )
    .send()
    .await
    .unwrap();
    let not_base64 = delivery_with(&app, body, &[("X-Shopify-Hmac-Sha256", "%%%not base64%%%")])
        .send()
        .await
        .unwrap();
    assert_eq!(status_and_reason(wrong).await.0, 403);
    assert_eq!(status_and_reason(not_base64).await.0, 403);
    assert!(app.lms.calls().is_empty());
}

async fn a_signed_body_that_is_not_json_or_not_an_order_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let not_json = delivery(&app, b"this is not json".to_vec())
        .send()
        .await
        .unwrap();
    let no_id = delivery(&app, raw(&json!({"line_items": []})))
        .send()
        .await
        .unwrap();
    let no_items = delivery(&app, raw(&json!({"id": 5}))).send().await.unwrap();
    for response in [not_json, no_id, no_items] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 400);
        assert!(!reason.is_empty());
    }
}

async fn a_body_over_the_limit_is_refused_and_its_beginning_kept(db: Db) {
    let app = spawn_app_with(db, |c| c.max_body = 100 * 1024).await;
    let mut order = shopify_order(1, &[(1, COURSE_A, None)], Some("b@example.org"), "paid");
    order["note"] = json!("x".repeat(200 * 1024));
    let response = delivery(&app, raw(&order)).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let stored = &app.store.requests(1).await.unwrap()[0];
    assert_eq!(stored.http_status, 413);
    assert!(stored.body_truncated);
    assert_eq!(stored.stored_body_len, 64 * 1024);
    assert!(stored.body_size > 200 * 1024);
}

async fn an_unknown_topic_is_stored_and_ignored(db: Db) {
    let app = spawn_app(db).await;
    let response = app
        .shopify("products/update", &json!({"id": 1, "title": "A course"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "ignored");
    assert_eq!(app.store.requests(1).await.unwrap()[0].outcome, "ignored");
}

async fn headers_without_the_x_prefix_are_accepted(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&shopify_order(
        77,
        &[(1, COURSE_A, Some("a@example.org"))],
        None,
        "paid",
    ));
    let response = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("shopify-topic", "orders/create")
        .header("shopify-shop-domain", SHOP)
        .header("shopify-hmac-sha256", sign(SHOPIFY_KEY, &body))
        .header("shopify-webhook-id", "new-style-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.wait_for_order("77", SHOP, "enrolled").await;
}

async fn two_shops_with_the_same_order_id_are_two_orders(db: Db) {
    let lms = crate::lms::FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("edx-webhooks.toml");
    std::fs::write(
        &file,
        format!(
            "[[shopify]]\nshop_domain = \"{SHOP}\"\napi_key = \"{SHOPIFY_KEY}\"\n\n\
             [[shopify]]\nshop_domain = \"second.myshopify.com\"\napi_key = \"second-key\"\n"
        ),
    )
    .unwrap();
    let sources = edx_webhooks::config::Sources {
        file: Some(file),
        dotenv: None,
        env: Default::default(),
        overrides: Default::default(),
    };
    let loaded = edx_webhooks::config::Config::load(&sources).unwrap();
    let mut config = test_config(db, &lms, &dir).await;
    config.shopify = loaded.shopify;
    let app = spawn_with_config(config, lms, dir).await;

    let first = shopify_order(
        5555,
        &[(1, COURSE_A, Some("one@example.org"))],
        None,
        "paid",
    );
    let second = shopify_order(
        5555,
        &[(1, COURSE_A, Some("two@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &first).await.status(), 200);
    let body = raw(&second);
    let response = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", "second.myshopify.com")
        .header("X-Shopify-Hmac-Sha256", sign("second-key", &body))
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    app.wait_for_order("5555", SHOP, "enrolled").await;
    app.wait_for_order("5555", "second.myshopify.com", "enrolled")
        .await;
    assert!(app.lms.is_enrolled(COURSE_A, "one@example.org"));
    assert!(app.lms.is_enrolled(COURSE_A, "two@example.org"));
}
}
