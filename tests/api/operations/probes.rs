//! `/metrics`, `/readyz` and `/status`, of a service and of a worker process.

use super::*;

on_each_database! {
async fn a_worker_process_answers_health_and_metrics_but_takes_no_webhooks(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let env = with_setting(service_env(&lms, &url), "EDX_WEBHOOKS_ADMIN_PASSWORD", "open sesame");
    let intake = Service::start_with(&["serve", "--no-worker"], dir.path(), &env).await;
    let worker = Service::start_with(&["worker", "--listen", "127.0.0.1:0"], dir.path(), &env).await;

    let order = shopify_order(6001, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    assert_eq!(deliver(&intake, &order).await.status(), 200);
    let store = Store::connect(&url).await.unwrap();
    wait_for_order_state(&store, "6001", "enrolled", START_DEADLINE).await;

    // The LMS calls are counted where they were made.
    let enroll = r#"edx_webhooks_lms_requests_total{call="bulk_enroll",status="200"}"#;
    assert_eq!(series(&scrape_url(&worker.url("/metrics")).await, enroll), 1.0);
    assert_eq!(series(&scrape_url(&intake.url("/metrics")).await, enroll), 0.0);
    for path in ["/healthz", "/readyz"] {
        let response = reqwest::get(worker.url(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    assert_eq!(deliver(&worker, &order).await.status(), 404);
    // The admin UI is where the webhooks are received.
    let login = reqwest::get(intake.url("/admin")).await.unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.url().path().starts_with("/admin/login"), "{}", login.url());
    assert_eq!(reqwest::get(worker.url("/admin")).await.unwrap().status(), 404);
}

async fn metrics_count_what_was_received_and_sent_to_the_lms(db: Db) {
    let app = spawn_app(db).await;
    for n in 0..3 {
        let order = shopify_order(
            3000 + n,
            &[(1, COURSE_A, Some(&format!("learner{n}@example.org")))],
            None,
            "paid",
        );
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
    }
    let again = shopify_order(3000, &[(1, COURSE_A, Some("learner0@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &again).await.status(), 200);
    let forged = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Hmac-Sha256", sign("some other key", b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let ping = app
        .client
        .post(app.url("/webhooks/woocommerce"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("webhook_id=3")
        .send()
        .await
        .unwrap();
    assert_eq!(ping.status(), 200);
    for n in 0..3 {
        app.wait_for_order(&(3000 + n).to_string(), SHOP, "enrolled").await;
    }

    let metrics = scrape(&app).await;
    let requests = |platform: &str, verdict: &str| {
        series(
            &metrics,
            &format!(r#"edx_webhooks_requests_total{{platform="{platform}",verdict="{verdict}"}}"#),
        )
    };
    assert_eq!(requests("shopify", "accepted"), 3.0, "{metrics:#?}");
    assert_eq!(requests("shopify", "duplicate"), 1.0, "{metrics:#?}");
    assert_eq!(requests("shopify", "rejected_403"), 1.0, "{metrics:#?}");
    assert_eq!(requests("woocommerce", "ping"), 1.0, "{metrics:#?}");
    assert_eq!(series(&metrics, "edx_webhooks_intake_seconds_count"), 6.0);
    let every_answer = r#"edx_webhooks_intake_seconds_bucket{le="+Inf"}"#;
    assert_eq!(series(&metrics, every_answer), 6.0, "{metrics:#?}");

    let calls = app.lms.calls().len() as f64;
    assert!(calls >= 1.0);
    let lms = |call: &str, status: &str| {
        series(
            &metrics,
            &format!(r#"edx_webhooks_lms_requests_total{{call="{call}",status="{status}"}}"#),
        )
    };
    assert_eq!(lms("bulk_enroll", "200"), calls, "{metrics:#?}");
    assert_eq!(lms("token", "200"), app.lms.with(|s| s.tokens_issued) as f64);
    assert_eq!(
        series(&metrics, r#"edx_webhooks_lms_seconds_count{call="bulk_enroll"}"#),
        calls
    );
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="enrolled"}"#), 3.0);
    assert!(
        metrics.contains_key(r#"edx_webhooks_enrollments{state="failed"}"#),
        "every state is reported, zero included: {metrics:#?}"
    );
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="pending"}"#), 0.0);
    assert_eq!(series(&metrics, "edx_webhooks_oldest_pending_seconds"), 0.0);
    assert_eq!(series(&metrics, "edx_webhooks_lms_misconfigured"), 0.0);
}

async fn readyz_stays_ready_while_the_lms_is_misconfigured_and_status_alerts(db: Db) {
    let app = spawn_app(db).await;
    app.lms.with(|s| s.not_staff = true);
    let order = shopify_order(3100, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    // /status is for alerting: it turns 503 once the LMS is found misconfigured.
    let status_url = app.url("/status");
    let client = &app.client;
    let alerted = wait_until(Duration::from_secs(10), || async {
        client.get(&status_url).send().await.unwrap().status() == 503
    })
    .await;
    assert!(alerted, "/status never said the LMS is misconfigured");
    let body = client.get(&status_url).send().await.unwrap().text().await.unwrap();
    assert!(body.starts_with("attention needed\nLMS misconfigured: "), "{body}");
    assert!(body.contains("403") && body.contains("global staff"), "{body}");

    // Readiness is about taking deliveries, which still works: 200, the
    // problem in the body.
    let readyz = app.url("/readyz");
    let response = client.get(&readyz).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(body.starts_with("ready\nLMS misconfigured: "), "{body}");
    let another = shopify_order(3101, &[(1, COURSE_A, Some("bob@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &another).await.status(), 200);

    // Paused work waits: it shows as pending, and as waiting longer and longer.
    let waits = wait_until(Duration::from_secs(10), || async {
        series(&scrape(&app).await, "edx_webhooks_oldest_pending_seconds") >= 1.0
    })
    .await;
    assert!(waits, "the paused enrollment does not show as waiting");
    let metrics = scrape(&app).await;
    assert_eq!(series(&metrics, "edx_webhooks_lms_misconfigured"), 1.0);
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="pending"}"#), 2.0);
    assert!(
        series(&metrics, r#"edx_webhooks_lms_requests_total{call="bulk_enroll",status="403"}"#) >= 1.0,
        "{metrics:#?}"
    );

    app.lms.with(|s| s.not_staff = false);
    app.wait_for_order("3100", SHOP, "enrolled").await;
    app.wait_for_order("3101", SHOP, "enrolled").await;
    let ok = wait_until(Duration::from_secs(10), || async {
        app.client.get(&status_url).send().await.unwrap().status() == 200
    })
    .await;
    assert!(ok, "/status did not return to ok");
    assert_eq!(
        app.client.get(&readyz).send().await.unwrap().text().await.unwrap(),
        "ready\n"
    );
    let metrics = scrape(&app).await;
    assert_eq!(series(&metrics, "edx_webhooks_lms_misconfigured"), 0.0);
    assert_eq!(series(&metrics, "edx_webhooks_oldest_pending_seconds"), 0.0);
    assert_eq!(series(&metrics, r#"edx_webhooks_enrollments{state="enrolled"}"#), 2.0);
    assert_eq!(series(&metrics, "edx_webhooks_settings_warnings"), 0.0);
}
}
