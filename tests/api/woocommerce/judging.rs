//! What is refused and why: methods, headers, signatures, bodies, sources; and
//! a refused delivery judged again.

use super::*;

on_each_database! {
async fn other_methods_are_refused_with_allow_post(db: Db) {
    let app = spawn_app(db).await;
    for path in [BARE, CREATE, UPDATE] {
        for method in [reqwest::Method::GET, reqwest::Method::PUT] {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], "POST", "{method} {path}");
        }
    }
}

async fn a_form_without_webhook_id_or_a_multipart_body_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let form = app
        .client
        .post(app.url(BARE))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("id=12&topic=order.created")
        .send()
        .await
        .unwrap();
    let multipart = app
        .client
        .post(app.url(BARE))
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(
            "--XyZ\r\nContent-Disposition: form-data; name=\"webhook_id\"\r\n\r\n12\r\n--XyZ--\r\n",
        )
        .send()
        .await
        .unwrap();

    for response in [form, multipart] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 400);
        assert!(!reason.is_empty());
    }
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 2, "every request is stored");
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 400 && r.reason.is_some()));
}

async fn a_missing_signature_header_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(1, "a@example.org"))
        .without("X-WC-Webhook-Signature")
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 400);
    assert!(reason.to_lowercase().contains("signature"), "{reason}");
    let stored = last_request(&app).await;
    assert_eq!(
        (stored.http_status, stored.outcome.as_str()),
        (400, "rejected")
    );
    assert_eq!(stored.reason.as_deref(), Some(reason.as_str()));
}

async fn a_missing_source_header_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(1, "a@example.org"))
        .without("X-WC-Webhook-Source")
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 400);
    assert!(reason.to_lowercase().contains("source"), "{reason}");
    let stored = last_request(&app).await;
    assert_eq!(
        (stored.http_status, stored.outcome.as_str()),
        (400, "rejected")
    );
    assert_eq!(stored.reason.as_deref(), Some(reason.as_str()));
}

async fn an_unknown_source_is_forbidden(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(1, "a@example.org"))
        .header("X-WC-Webhook-Source", "https://someone-else.example.com/")
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 403);
    assert!(!reason.is_empty());
    let stored = last_request(&app).await;
    assert_eq!(
        (stored.http_status, stored.outcome.as_str()),
        (403, "rejected")
    );
    assert!(app.lms.calls().is_empty());
}

async fn a_source_without_a_secret_refuses_a_body_signed_with_the_empty_key(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.woocommerce.push(WooCommerceShop {
            source: "https://keyless.example.com/".into(),
            secret: None,
            api: None,
        })
    })
    .await;
    let body = raw(&paid_order(1, "a@example.org"));
    let signature = sign("", &body);

    let response = Delivery::new(body)
        .header("X-WC-Webhook-Source", "https://keyless.example.com/")
        .header("X-WC-Webhook-Signature", &signature)
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 403);
    assert!(!reason.is_empty());
    assert_eq!(last_request(&app).await.http_status, 403);
    assert!(app.store.find_order("1", None).await.is_err());
}

async fn a_wrong_or_undecodable_signature_is_forbidden(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&paid_order(1, "a@example.org"));
    let other = sign("another-secret", &body);
    let wrong = Delivery::new(body.clone())
        .header("X-WC-Webhook-Signature", &other)
        .send(&app)
        .await;
    let not_base64 = Delivery::new(body)
        .header("X-WC-Webhook-Signature", "%%%not base64%%%")
        .send(&app)
        .await;

    for response in [wrong, not_base64] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 403);
        assert!(!reason.is_empty());
    }
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 403 && r.reason.is_some()));
    assert!(app.store.find_order("1", None).await.is_err());
    assert!(app.lms.calls().is_empty());
}

async fn a_signed_body_that_is_not_json_or_not_an_order_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let not_json = Delivery::new(b"this is not json".to_vec()).send(&app).await;
    let no_id = Delivery::of(&json!({"number": "5", "line_items": []}))
        .send(&app)
        .await;
    let no_items = Delivery::of(&json!({"id": 5, "number": "5"}))
        .send(&app)
        .await;

    for response in [not_json, no_id, no_items] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 400);
        assert!(!reason.is_empty());
    }
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 400 && r.reason.is_some()));
}

async fn a_body_over_the_limit_is_refused_and_its_beginning_kept(db: Db) {
    let app = spawn_app_with(db, |c| c.max_body = 100 * 1024).await;
    let mut order = paid_order(1, "a@example.org");
    order["customer_note"] = json!("x".repeat(200 * 1024));

    let response = Delivery::of(&order).send(&app).await;

    assert_eq!(response.status(), 413);
    let stored = last_request(&app).await;
    assert_eq!(stored.http_status, 413);
    assert_eq!(stored.outcome, "rejected");
    assert!(stored.body_truncated);
    assert_eq!(stored.stored_body_len, 64 * 1024);
    assert!(stored.body_size > 200 * 1024);
    assert!(app.store.find_order("1", None).await.is_err());
}

async fn a_source_sent_without_the_configured_trailing_slash_is_accepted(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(41, "a@example.org"))
        .header("X-WC-Webhook-Source", "https://shop.example.com")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("41", WOO_SOURCE, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "a@example.org"));
}

async fn a_source_sent_with_a_trailing_slash_matches_one_configured_without(db: Db) {
    let configured = "https://noslash.example.com";
    let app = spawn_app_with(db, |c| {
        c.woocommerce = vec![WooCommerceShop {
            source: configured.into(),
            secret: Some(Secret::new(WOO_SECRET)),
            api: None,
        }]
    })
    .await;
    let response = Delivery::of(&paid_order(42, "a@example.org"))
        .header("X-WC-Webhook-Source", "https://noslash.example.com/")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("42", configured, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "a@example.org"));
}

async fn a_delivery_over_http_1_0_is_accepted(db: Db) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // WooCommerce's sender speaks HTTP/1.0.
    let app = spawn_app(db).await;
    let body = raw(&paid_order(80, "a@example.org"));
    let head = format!(
        "POST {BARE} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-WC-Webhook-Source: {WOO_SOURCE}\r\nX-WC-Webhook-Topic: order.created\r\n\
         X-WC-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        app.address,
        sign(WOO_SECRET, &body),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();

    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains(r#""status":"accepted""#), "{answer}");
    app.wait_for_order("80", WOO_SOURCE, "enrolled").await;
}

async fn a_rejected_delivery_retried_after_the_fix_is_judged_again(db: Db) {
    // WooCommerce never retries, but an operator may resend by hand: nothing
    // about a refused delivery may make its order a duplicate.
    let app = spawn_app(db).await;
    let order = paid_order(70, "a@example.org");
    let refused = Delivery::of(&order)
        .header("X-WC-Webhook-Signature", &sign("old-secret", &raw(&order)))
        .send(&app)
        .await;
    assert_eq!(refused.status(), 403);

    let response = app.woocommerce("order.created", &order).await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("70", WOO_SOURCE, "enrolled").await;
    assert_eq!(app.lms.calls().len(), 1);
}
}
