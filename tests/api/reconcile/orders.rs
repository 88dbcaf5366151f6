//! Orders no webhook brought: enrolled once over pages of both APIs, lost
//! payments, cancellations and refunds.

use super::*;

on_each_database! {
    async fn reconcile_command_enrolls_shopify_orders_no_webhook_brought_over_three_pages(db: Db) {
        let shopify = MockServer::start().await;
        let orders: Vec<Value> = (1..=3).map(|n| paid_order(4_000_000_000_000 + n)).collect();
        three_shopify_pages(&shopify, &orders).await;
        let (app, _) = spawn(db, |_| {}).await;
        let (code, stdout, stderr) = cli(&app, &["reconcile", "--json"], &[
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", TOKEN.into()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
            ("EDX_WEBHOOKS_RECONCILE_INTERVAL", "off".into()),
        ]).await;
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report[0]["fetched"], 3, "{report}");
        assert_eq!(report[0]["new"], 3, "{report}");
        assert!(!stderr.contains(TOKEN) && !stdout.contains(TOKEN));
        for order in &orders {
            let id = order["id"].as_u64().unwrap();
            app.wait_for_order(&id.to_string(), SHOP, "enrolled").await;
            assert!(app.lms.is_enrolled(COURSE_A, &learner(id)));
        }
        // The 429 was waited out, and the cursor pages carried only `limit`.
        let requests = shopify.received_requests().await.unwrap();
        assert_eq!(requests.len(), 4, "one 429, three pages");
        for request in requests.iter().filter(|r| r.url.query().unwrap_or("").contains("page_info")) {
            let keys: Vec<String> = request.url.query_pairs().map(|(k, _)| k.into_owned()).collect();
            assert_eq!(keys, ["limit", "page_info"]);
        }
        let id = app.store.find_order(&orders[0]["id"].to_string(), Some(SHOP)).await.unwrap();
        let detail = app.store.order_detail(id).await.unwrap();
        assert!(detail.found_by_reconciliation_at_ms.is_some());
        assert_eq!(detail.requests[0].endpoint, "reconcile:shopify");
        assert!(detail.requests[0].headers.iter().all(|(_, v)| !v.contains(TOKEN)));
        // The order's JSON and text say it was found by reconciliation.
        let (_, shown, _) = cli(&app, &["orders", "show", &id.to_string(), "--json"], &[]).await;
        let shown: Value = serde_json::from_str(&shown).unwrap();
        assert!(shown["found_by_reconciliation_at_ms"].is_i64(), "{shown}");
        // A fetched request replays as fetched: nothing new now, nothing stored.
        let fetched = detail.requests[0].id.to_string();
        let (code, replayed, _) = cli(&app, &["webhooks", "replay", &fetched], &[]).await;
        assert_eq!(code, 0, "{replayed}");
        assert!(replayed.contains("200 duplicate (nothing new, not stored)"), "{replayed}");
        let api = [
            ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", TOKEN.to_owned()),
            ("EDX_WEBHOOKS_SHOPIFY_API_URL", shopify.uri()),
        ];
        let (code, _, stderr) = cli(&app, &["reconcile", "--shop", "other.myshopify.com"], &api).await;
        assert_eq!(code, 2, "{stderr}");
        let (code, _, stderr) = cli(&app, &["reconcile"], &[]).await;
        assert_eq!(code, 2, "no shop has API access: {stderr}");
        assert!(stderr.contains("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN"), "{stderr}");
    }

    async fn the_periodic_run_enrolls_woocommerce_orders_over_three_pages(db: Db) {
        let woo = MockServer::start().await;
        let orders: Vec<Value> = (1..=3).map(|n| woo_paid(7100 + n)).collect();
        three_woo_pages(&woo, &orders).await;
        let (app, _) = spawn(db, |c| {
            c.woocommerce[0].api = Some(woo_api(&woo));
            c.reconcile_interval = Some(Duration::from_secs(3600));
        })
        .await;
        for order in &orders {
            let id = order["id"].as_u64().unwrap();
            app.wait_for_order(&id.to_string(), WOO_SOURCE, "enrolled").await;
            assert!(app.lms.is_enrolled(COURSE_B, &learner(id)));
        }
        let pages: Vec<String> = woo
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter_map(|r| r.url.query_pairs().find(|(k, _)| k == "page").map(|(_, v)| v.into_owned()))
            .collect();
        assert_eq!(pages, ["1", "2", "3"]);
        let shown = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(
            shown.contains("edx_webhooks_reconcile_last_success_timestamp_seconds{platform=\"woocommerce\""),
            "{shown}"
        );
        assert!(shown.contains("edx_webhooks_reconciled_total{platform=\"woocommerce\",shop=\"https://shop.example.com/\",result=\"new\"} 3"), "{shown}");
    }

    async fn an_order_taken_by_webhook_and_fetched_is_enrolled_once_and_stores_no_new_request(db: Db) {
        let shopify = MockServer::start().await;
        let order = paid_order(4_100_000_000_001);
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(std::slice::from_ref(&order))).mount(&shopify).await;
        let (app, config) = spawn(db, |c| c.shopify[0].api = Some(shopify_api(&shopify))).await;
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
        app.wait_for_order("4100000000001", SHOP, "enrolled").await;
        let requests_before = app.store.requests(100).await.unwrap().len();

        let reports = reconcile(&app, &config, None).await;
        assert_eq!((reports[0].run.fetched, reports[0].run.unchanged, reports[0].run.new), (1, 1, 0), "{reports:?}");
        let again = reconcile(&app, &config, None).await;
        assert_eq!(again[0].run.unchanged, 1);
        assert_eq!(app.store.requests(100).await.unwrap().len(), requests_before);
        assert_eq!(app.lms.calls().len(), 1, "enrolled once");
        let id = app.store.find_order("4100000000001", Some(SHOP)).await.unwrap();
        assert!(app.store.order_detail(id).await.unwrap().found_by_reconciliation_at_ms.is_none());
    }

    async fn a_lost_payment_releases_the_waiting_items_on_both_platforms(db: Db) {
        let shopify = MockServer::start().await;
        let woo = MockServer::start().await;
        let (app, config) = spawn(db, |c| {
            c.require_payment = true;
            c.shopify[0].api = Some(shopify_api(&shopify));
            c.woocommerce[0].api = Some(woo_api(&woo));
        })
        .await;
        let email = learner(1);
        let pending = shopify_order(4_200_000_000_001, &[(1, COURSE_A, Some(&email))], Some("b@example.org"), "pending");
        assert_eq!(app.shopify("orders/create", &pending).await.status(), 200);
        let unpaid = woo_order(7201, &[(2, COURSE_B, Some(&email))], "b@example.org", false);
        assert_eq!(app.woocommerce("order.created", &unpaid).await.status(), 200);
        app.wait_for_order("4200000000001", SHOP, "awaiting_payment").await;
        app.wait_for_order("7201", WOO_SOURCE, "awaiting_payment").await;

        let mut paid = pending.clone();
        paid["financial_status"] = json!("paid");
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[at(paid, "2026-11-30T11:00:00Z")])).mount(&shopify).await;
        let woo_now_paid = woo_order(7201, &[(2, COURSE_B, Some(&email))], "b@example.org", true);
        Mock::given(method("GET")).and(path(WOO_ORDERS)).respond_with(
            ResponseTemplate::new(200).set_body_json(json!([woo_now_paid])).insert_header("X-WP-TotalPages", "1"),
        ).mount(&woo).await;
        let reports = reconcile(&app, &config, None).await;
        assert!(reports.iter().all(|r| r.run.changed == 1 && r.run.error.is_none()), "{reports:?}");
        app.wait_for_order("4200000000001", SHOP, "enrolled").await;
        app.wait_for_order("7201", WOO_SOURCE, "enrolled").await;
        assert!(app.lms.is_enrolled(COURSE_A, &email));
    }

    async fn a_lost_cancellation_and_a_lost_refund_act_as_their_webhooks(db: Db) {
        let shopify = MockServer::start().await;
        let (app, config) = spawn(db, |c| {
            c.require_payment = true;
            c.shopify[0].api = Some(shopify_api(&shopify));
        })
        .await;
        let (a, b) = (learner(1), learner(2));
        let cancelled = shopify_order(4_300_000_000_001, &[(11, COURSE_A, Some(&a))], Some("b@example.org"), "pending");
        let refunded = shopify_order(4_300_000_000_002, &[(21, COURSE_A, Some(&a)), (22, COURSE_B, Some(&b))], Some("b@example.org"), "pending");
        for order in [&cancelled, &refunded] {
            assert_eq!(app.shopify("orders/create", order).await.status(), 200);
        }
        app.wait_for_order("4300000000002", SHOP, "awaiting_payment").await;

        let mut now_cancelled = cancelled.clone();
        now_cancelled["cancelled_at"] = json!("2026-11-30T12:00:00-05:00");
        now_cancelled["financial_status"] = json!("voided");
        let mut now_refunded = refunded.clone();
        now_refunded["financial_status"] = json!("partially_refunded");
        now_refunded["refunds"] = json!([{"id": 9, "order_id": 4_300_000_000_002u64, "refund_line_items": [{"line_item_id": 21, "quantity": 1}]}]);
        Mock::given(method("GET")).and(path(ORDERS)).respond_with(page(&[
            at(now_cancelled, "2026-11-30T12:00:00Z"),
            at(now_refunded, "2026-11-30T12:00:01Z"),
        ])).mount(&shopify).await;
        let reports = reconcile(&app, &config, None).await;
        assert_eq!(reports[0].run.changed, 2, "{reports:?}");
        app.wait_for_order("4300000000001", SHOP, "cancelled").await;
        let order = app.wait_for_order("4300000000002", SHOP, "enrolled").await;
        let state = |line: &str| order.items.iter().find(|i| i.line_item_id == line).unwrap().state.clone();
        assert_eq!((state("21").as_str(), state("22").as_str()), ("cancelled", "enrolled"));
        assert!(!app.lms.is_enrolled(COURSE_A, &a) && app.lms.is_enrolled(COURSE_B, &b));
    }
}
