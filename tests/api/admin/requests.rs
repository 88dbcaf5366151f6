//! Rejected and stored requests: their reasons, and replays linked both ways.

use super::*;

on_each_database! {
    async fn a_replay_and_the_request_it_took_in_link_to_each_other(db: Db) {
        let app = spawn_app_with(db, |config| {
            config.admin_password = Some(Secret::new(PASSWORD));
            config.shopify.clear();
        })
        .await;
        let refused = app.shopify("orders/create", &shopify_order(7201, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        assert_eq!(refused.status(), 403);
        let original = refused.json::<serde_json::Value>().await.unwrap()["request"].as_i64().unwrap();
        // The operator fixes the shop's settings and replays it.
        let mut fixed = edx_webhooks::config::Config::defaults();
        fixed.shopify = vec![edx_webhooks::config::ShopifyShop { domain: SHOP.into(), api_key: Some(Secret::new(crate::helpers::SHOPIFY_KEY)), api: None }];
        let replayed = edx_webhooks::operator::replay(&app.store, &fixed, original).await.unwrap();
        let replay = replayed.request_id.expect("a replayed delivery is stored");
        assert_eq!(replayed.http_status, 200);

        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/requests/{replay}")).await;
        let text = visible_text(&page.body);
        assert!(text.contains(&format!("a replay of request {original}")), "{text}");
        assert!(page.body.contains(&format!("href=\"/admin/requests/{original}\"")), "{}", page.body);
        let page = browser.get(&format!("/admin/requests/{original}")).await;
        let text = visible_text(&page.body);
        assert!(text.contains(&format!("Replayed latest as request {replay}")), "{text}");
        assert!(text.contains(&format!("Resolved taken in by request {replay}")), "{text}");
        let order_page = browser.get(&format!("/admin/orders/{}", order_id(&app, "7201").await)).await;
        assert!(visible_text(&order_page.body).contains(&format!("a replay of request {original}")));

        let list = visible_text(&browser.get("/admin/rejected").await.body);
        assert!(list.contains(&format!("resolved by request {replay}")), "{list}");
        let unresolved = visible_text(&browser.get("/admin/rejected?unresolved=1").await.body);
        assert!(unresolved.contains("No request has been rejected") || !unresolved.contains("resolved by"), "{unresolved}");
    }

    async fn rejected_requests_are_listed_with_their_reasons(db: Db) {
        let app = app_with_admin(db).await;
        let body = serde_json::to_vec(&shopify_order(7601, &[(1, COURSE_A, None)], Some("a@example.com"), "paid")).unwrap();
        for n in 0..52 {
            let (domain, key) = if n == 0 { ("unknown.myshopify.com", "k") } else { (SHOP, "wrong-key") };
            app.client
                .post(app.url("/webhooks/shopify"))
                .header("Content-Type", "application/json")
                .header("X-Shopify-Topic", "orders/create")
                .header("X-Shopify-Shop-Domain", domain)
                .header("X-Shopify-Hmac-Sha256", crate::helpers::sign(key, &body))
                .body(body.clone())
                .send()
                .await
                .unwrap();
        }
        let (mut browser, _) = Browser::logged_in(&app).await;
        let first = browser.get("/admin/rejected").await;
        let text = visible_text(&first.body);
        assert!(text.contains("1–50 of 52"), "{text}");
        assert!(text.contains("signature does not match the body"), "{text}");
        assert!(!text.contains("unknown.myshopify.com is not configured"), "oldest on page 2");
        let second = browser.get("/admin/rejected?page=2").await;
        let text = visible_text(&second.body);
        assert!(text.contains("51–52 of 52"), "{text}");
        assert!(text.contains("shop unknown.myshopify.com is not configured"), "{text}");
        let link = second.body.split("href=\"/admin/requests/").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let request = browser.get(&format!("/admin/requests/{link}")).await;
        assert_eq!(request.status, StatusCode::OK);
        assert!(visible_text(&request.body).contains("x-shopify-hmac-sha256"));
    }
}
