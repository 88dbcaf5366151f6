//! Runs: bad credentials and scopes named, one process a shop, the watermark,
//! what the pages show.

use super::*;

/// Logs in to the admin UI; the session cookie to send along.
async fn admin_session(app: &TestApp, password: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client.get(app.url("/admin/login")).send().await.unwrap();
    let cookies = |r: &reqwest::Response| -> Vec<String> {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect()
    };
    let jar = cookies(&form).join("; ");
    let body = form.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let csrf = &body[start..start + body[start..].find('"').unwrap()];
    let answer = client
        .post(app.url("/admin/login"))
        .header("Cookie", &jar)
        .form(&[("csrf", csrf), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    cookies(&answer).join("; ")
}

on_each_database! {
    async fn bad_credentials_exit_1_with_the_fix_check_names_it_and_intake_goes_on(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})),
        ).mount(&shopify).await;
        let woo = MockServer::start().await;
        // The server strips Authorization: only the key in the query gets through.
        Mock::given(method("GET")).and(path(WOO_ORDERS)).and(query_param("consumer_key", CK)).respond_with(
            ResponseTemplate::new(200).set_body_json(json!([])).insert_header("X-WP-TotalPages", "1"),
        ).with_priority(1).mount(&woo).await;
        Mock::given(method("GET")).and(path(WOO_ORDERS)).respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}})),
        ).with_priority(2).mount(&woo).await;
        let (app, _) = spawn(db, |_| {}).await;
        let settings = [
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", "wrong-token".to_owned()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY", CK.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET", CS.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_API_URL", woo.uri()),
        ];
        let (code, stdout, stderr) = cli(&app, &["reconcile"], &settings).await;
        assert_eq!(code, 1, "{stdout}\n{stderr}");
        assert!(stdout.contains("access token") && stdout.contains("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN"), "{stdout}");
        assert!(stdout.contains("woocommerce https://shop.example.com/: 0 fetched"), "{stdout}");
        let (code, stdout, _) = cli(&app, &["check"], &settings).await;
        assert_eq!(code, 1, "{stdout}");
        assert!(stdout.contains("✗ Shopify API of test-shop.myshopify.com: Shopify refused the access token"), "{stdout}");
        assert!(stdout.contains("✓ WooCommerce API of https://shop.example.com/") && stdout.contains("strips the Authorization header"), "{stdout}");
        for secret in ["wrong-token", CK, CS] {
            assert!(!stdout.contains(secret), "{secret} shown:\n{stdout}");
        }
        // Intake is not disturbed.
        let order = paid_order(4_400_000_000_001);
        let answer = app.shopify("orders/create", &order).await;
        assert_eq!(answer.status(), 200);
        app.wait_for_order("4400000000001", SHOP, "enrolled").await;
    }

    async fn check_names_a_missing_scope_and_a_key_without_read_permission(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(
            ResponseTemplate::new(403).set_body_json(json!({"errors": "[API] This action requires merchant approval for read_orders scope."})),
        ).mount(&shopify).await;
        let woo = MockServer::start().await;
        Mock::given(method("GET")).and(path(WOO_ORDERS)).respond_with(
            ResponseTemplate::new(401).set_body_json(json!({"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list resources.", "data": {"status": 401}})),
        ).mount(&woo).await;
        let (app, _) = spawn(db, |_| {}).await;
        let (code, stdout, _) = cli(&app, &["check"], &[
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", TOKEN.into()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY", CK.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET", CS.to_owned()),
            ("EDX_WEBHOOKS_WOOCOMMERCE_API_URL", woo.uri()),
        ]).await;
        assert_eq!(code, 1);
        assert!(stdout.contains("read_orders scope"), "{stdout}");
        assert!(stdout.contains("lacks read permission"), "{stdout}");
        // Query parameters were tried too before giving up.
        assert_eq!(woo.received_requests().await.unwrap().len(), 2);
    }

    async fn two_processes_on_one_database_one_reconciles_a_shop(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(
            page(&[paid_order(4_500_000_000_001)]).set_delay(Duration::from_millis(700)),
        ).mount(&shopify).await;
        let (app, config) = spawn(db, |c| c.shopify[0].api = Some(shopify_api(&shopify))).await;
        let one = Store::connect(&app.database_url).await.unwrap();
        let other = Store::connect(&app.database_url).await.unwrap();
        let first = Reconciler::new(Arc::new(config.clone()), one, Metrics::new());
        let second = Reconciler::new(Arc::new(config.clone()), other, Metrics::new());
        let (a, b) = tokio::join!(first.run_once(None, None), second.run_once(None, None));
        let skipped: Vec<bool> = a.iter().chain(&b).filter(|r| r.platform == "shopify").map(|r| r.skipped).collect();
        assert_eq!(skipped.iter().filter(|s| **s).count(), 1, "{a:?} {b:?}");
        assert_eq!(shopify.received_requests().await.unwrap().len(), 1);
        app.wait_for_order("4500000000001", SHOP, "enrolled").await;
        // Once done, the shop is free for the next run.
        let next = reconcile(&app, &config, None).await;
        assert!(!next[0].skipped && next[0].run.unchanged == 1, "{next:?}");
    }

    async fn the_watermark_moves_so_the_next_run_fetches_only_what_changed(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[
            at(paid_order(4_600_000_000_001), "2026-11-30T10:00:00Z"),
            at(paid_order(4_600_000_000_002), "2026-11-30T10:30:00-02:00"),
        ])).mount(&shopify).await;
        let (app, config) = spawn(db, |c| c.shopify[0].api = Some(shopify_api(&shopify))).await;
        reconcile(&app, &config, None).await;
        reconcile(&app, &config, None).await;
        let since: Vec<String> = shopify
            .received_requests()
            .await
            .unwrap()
            .iter()
            .map(|r: &Request| r.url.query_pairs().find(|(k, _)| k == "updated_at_min").unwrap().1.into_owned())
            .collect();
        // The first run looks back 24 h; the second from the newest change
        // taken (12:30 UTC) less the five minutes' overlap.
        let first = edx_webhooks::reconcile::api::parse_time(&since[0]).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let lookback = now - first;
        assert!((lookback - 86_400_000).abs() < 60_000, "{since:?}");
        assert_eq!(since[1], "2026-11-30T12:25:00Z");
        let shown = app.store.reconciliations().await.unwrap();
        assert_eq!(shown[0].found_total, 2);
    }

    async fn the_dashboard_and_the_order_page_show_what_reconciliation_found(db: Db) {
        let shopify = MockServer::start().await;
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[paid_order(4_700_000_000_001)])).mount(&shopify).await;
        let (app, _) = spawn(db, |c| {
            c.admin_password = Some(Secret::new("operator-pass-2026"));
            c.shopify[0].api = Some(shopify_api(&shopify));
            c.reconcile_interval = Some(Duration::from_secs(3600));
        })
        .await;
        app.wait_for_order("4700000000001", SHOP, "enrolled").await;
        let recorded = wait_until(Duration::from_secs(10), || async {
            app.store.reconciliations().await.unwrap().iter().any(|r| r.last_success_at_ms.is_some())
        })
        .await;
        assert!(recorded);
        let session = admin_session(&app, "operator-pass-2026").await;
        let get = |path: String| {
            let request = app.client.get(app.url(&path)).header("Cookie", &session);
            async move { request.send().await.unwrap().text().await.unwrap() }
        };
        let dashboard = get("/admin".into()).await;
        assert!(dashboard.contains("Reconciliation with the shops"), "{dashboard}");
        assert!(dashboard.contains("<td>1 / 1</td>"), "{dashboard}");
        let id = app.store.find_order("4700000000001", Some(SHOP)).await.unwrap();
        let order = get(format!("/admin/orders/{id}")).await;
        assert!(order.contains("id=\"found-by-reconciliation\""), "{order}");
        assert!(!order.contains(TOKEN) && !dashboard.contains(TOKEN));
    }
}
