//! The orders and an order's page: what they show, search, pages, retries,
//! email corrections.

use super::*;

on_each_database! {
    async fn an_order_page_shows_items_attempts_and_webhooks_without_secrets(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
        let mut order = shopify_order(7101, &[(1, COURSE_A, Some("ann@example.com")), (2, COURSE_B, Some("bob@example.com"))], Some("buyer@example.com"), "paid");
        // A shop would never send these; if one did, the page still must not show them.
        order["note"] = serde_json::json!(format!("<b>bold</b> {} {}", crate::helpers::SHOPIFY_KEY, crate::lms::CLIENT_SECRET));
        shopify_with_headers(&app, &order, &[("Authorization", "Basic c2VjcmV0LXVzZXI6cGFzcw==")]).await;
        app.wait_for_order("7101", SHOP, "failed").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/orders/{}", order_id(&app, "7101").await)).await;
        assert_eq!(page.status, StatusCode::OK);
        let text = visible_text(&page.body);
        for shown in ["Order #7101", "ann@example.com", "bob@example.com", COURSE_A, COURSE_B,
                      "Course not found", "x-shopify-topic", "orders/create", "\"financial_status\": \"paid\"",
                      "Retry failed items", "authorization [hidden]"] {
            assert!(text.contains(shown), "{shown} in {text}");
        }
        for hidden in ["c2VjcmV0LXVzZXI6cGFzcw", crate::helpers::SHOPIFY_KEY, crate::lms::CLIENT_SECRET, "<b>bold"] {
            assert!(!page.body.contains(hidden), "{hidden} shown");
        }
        assert!(page.body.contains("&#60;b&#62;bold") || page.body.contains("&lt;b&gt;bold"), "escaped");
    }

    async fn an_order_page_shows_the_body_byte_for_byte_beside_its_pretty_print(db: Db) {
        let app = app_with_admin(db).await;
        let raw = crate::helpers::unsorted_shopify_body(7102);
        let token = ("X-Shopify-Access-Token", "shpat_token_s3cret");
        assert_eq!(app.shopify_raw(raw.as_bytes(), &[token]).await.status(), 200);
        app.wait_for_order("7102", SHOP, "enrolled").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/orders/{}", order_id(&app, "7102").await)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(unescaped(&page.body).contains(&raw), "the raw body in {}", page.body);
        assert!(visible_text(&page.body).contains("\"zeta\": \"last first\""), "pretty-printed too");
        assert!(!page.body.contains(token.1), "the token shown");
    }

    async fn orders_are_found_by_number_email_and_course_and_filtered(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
        app.shopify("orders/create", &shopify_order(7201, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7202, &[(1, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.woocommerce("order.created", &crate::helpers::woo_order(7203, &[(1, COURSE_A, None)], "carol@example.com", true)).await;
        app.wait_for_order("7201", SHOP, "enrolled").await;
        app.wait_for_order("7202", SHOP, "failed").await;
        app.wait_for_order("7203", crate::helpers::WOO_SOURCE, "enrolled").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let listed = |page: &Page| {
            ["#7201", "#7202", "#7203"].into_iter().filter(|n| page.body.contains(&format!(">{n}<"))).collect::<Vec<_>>()
        };
        let all = browser.get("/admin/orders").await;
        assert_eq!(listed(&all), ["#7201", "#7202", "#7203"]);
        let text = visible_text(&all.body);
        assert!(text.find("#7203").unwrap() < text.find("#7201").unwrap(), "newest first");
        for (query, expected) in [
            ("q=7202", vec!["#7202"]),
            ("q=%237201", vec!["#7201"]),
            ("q=BOB%40example", vec!["#7202"]),
            ("q=carol", vec!["#7203"]),
            ("q=course-v1%3AOrg%2BCourseB", vec!["#7202"]),
            ("q=example.com", vec![]),
            ("state=failed", vec!["#7202"]),
            ("state=enrolled", vec!["#7201", "#7203"]),
            ("shop=https%3A%2F%2Fshop.example.com%2F", vec!["#7203"]),
            ("shop=test-shop.myshopify.com&state=enrolled", vec!["#7201"]),
            ("q=nobody", vec![]),
        ] {
            let page = browser.get(&format!("/admin/orders?{query}")).await;
            assert_eq!(page.status, StatusCode::OK, "{query}");
            assert_eq!(listed(&page), expected, "{query}");
        }
        let unknown = browser.get("/admin/orders?state=lost").await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        // What was typed comes back escaped.
        let page = browser.get("/admin/orders?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
        assert!(!page.body.contains("<script>"), "{}", page.body);
    }

    async fn orders_are_paginated(db: Db) {
        let app = app_with_admin(db).await;
        for n in 0..27u64 {
            app.shopify("orders/create", &shopify_order(7300 + n, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        }
        let (mut browser, _) = Browser::logged_in(&app).await;
        let first = browser.get("/admin/orders").await;
        let text = visible_text(&first.body);
        assert!(text.contains("1–25 of 27"), "{text}");
        assert!(text.contains("#7326") && !text.contains("#7300"), "{text}");
        assert!(first.body.contains("href=\"/admin/orders?page=2\""), "{}", first.body);
        let second = browser.get("/admin/orders?page=2").await;
        let text = visible_text(&second.body);
        assert!(text.contains("26–27 of 27"), "{text}");
        assert!(text.contains("#7300") && text.contains("#7301") && !text.contains("#7302"), "{text}");
        assert!(second.body.contains("href=\"/admin/orders?page=1\""));
        let filtered = browser.get("/admin/orders?q=ann&page=2").await;
        assert!(filtered.body.contains("href=\"/admin/orders?q=ann&#38;page=1\"") || filtered.body.contains("href=\"/admin/orders?q=ann&amp;page=1\""), "filters kept: {}", filtered.body);
    }

    async fn the_retry_buttons_queue_failed_items_again(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
        app.shopify("orders/create", &shopify_order(7401, &[(1, COURSE_B, Some("ann@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7402, &[(1, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.wait_for_order("7401", SHOP, "failed").await;
        app.wait_for_order("7402", SHOP, "failed").await;
        app.lms.with(|lms| lms.unknown_courses.remove(COURSE_B));
        let (mut browser, token) = Browser::logged_in(&app).await;

        let id = order_id(&app, "7401").await;
        let retried = browser.post(&format!("/admin/orders/{id}/retry"), &[("csrf", &token)]).await;
        assert_eq!(retried.status, StatusCode::SEE_OTHER);
        assert_eq!(retried.location(), format!("/admin/orders/{id}?retried=1"));
        app.wait_for_order("7401", SHOP, "enrolled").await;
        assert_eq!(app.order("7402", SHOP).await.state, "failed", "only that order");
        let page = browser.get(retried.location()).await;
        assert!(visible_text(&page.body).contains("1 failed item is pending again"));

        let missing = browser.post("/admin/orders/999999/retry", &[("csrf", &token)]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        let all = browser.post("/admin/retry-failed", &[("csrf", &token), ("from", "orders")]).await;
        assert_eq!(all.status, StatusCode::SEE_OTHER);
        assert_eq!(all.location(), "/admin/orders?retried=1");
        app.wait_for_order("7402", SHOP, "enrolled").await;
        assert!(app.lms.is_enrolled(COURSE_B, "bob@example.com"));
    }

    async fn a_mistyped_learner_email_is_corrected_on_the_order_page(db: Db) {
        let app = app_with_admin(db).await;
        app.shopify("orders/create", &shopify_order(7501, &[(1, COURSE_A, Some("ann@example")), (2, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7502, &[(1, COURSE_A, Some("carol@example.com"))], None, "paid")).await;
        let view = app.wait_for_order("7501", SHOP, "failed").await;
        app.wait_for_order("7502", SHOP, "enrolled").await;
        let failed = view.items.iter().find(|i| i.state == "failed").unwrap().id;
        let enrolled = view.items.iter().find(|i| i.state == "enrolled").unwrap().id;
        let other = app.order("7502", SHOP).await.items[0].id;
        let (mut browser, token) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/orders/{}", view.id)).await;
        assert!(page.body.contains(&format!("/admin/orders/{}/items/{failed}/email", view.id)));
        assert!(!page.body.contains(&format!("/items/{enrolled}/email")), "only failed items are editable");

        let path = format!("/admin/orders/{}/items/{failed}/email", view.id);
        let refused = browser.post(&path, &[("csrf", &token), ("email", "still wrong")]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(visible_text(&refused.body).contains("is not an email address"), "{}", refused.body);
        assert!(refused.body.contains("value=\"still wrong\""), "what was typed stays");
        let not_failed = browser.post(&format!("/admin/orders/{}/items/{enrolled}/email", view.id), &[("csrf", &token), ("email", "x@example.com")]).await;
        assert_eq!(not_failed.status, StatusCode::UNPROCESSABLE_ENTITY);
        let elsewhere = browser.post(&format!("/admin/orders/{}/items/{other}/email", view.id), &[("csrf", &token), ("email", "x@example.com")]).await;
        assert_eq!(elsewhere.status, StatusCode::NOT_FOUND, "item of another order");

        let fixed = browser.post(&path, &[("csrf", &token), ("email", " ann@example.com ")]).await;
        assert_eq!(fixed.status, StatusCode::SEE_OTHER);
        assert_eq!(fixed.location(), format!("/admin/orders/{}?email_changed=true", view.id));
        app.wait_for_order("7501", SHOP, "enrolled").await;
        assert!(app.lms.is_enrolled(COURSE_A, "ann@example.com"));
    }

    async fn the_order_page_asks_for_an_immediate_look_at_a_learners_account(db: Db) {
        let app = spawn_app_with(db, |config| {
            config.admin_password = Some(Secret::new(PASSWORD));
            config.products = vec![Product {
                sku: "PY-VERIFIED".into(),
                courses: vec![CourseKey::parse(COURSE_A).unwrap()],
                mode: Some("verified".into()),
            }];
            // The next look on its own would be an hour away.
            config.retry.first_delay = Duration::from_secs(3600);
            config.retry.max_delay = Duration::from_secs(3600);
            config.account_recheck_max = Duration::from_secs(3600);
        })
        .await;
        app.lms.with(|s| {
            s.offer(COURSE_A, &["audit", "verified"]);
            s.no_account.insert("new@example.org".into());
        });
        app.shopify("orders/create", &shopify_order(7501, &[(1, "PY-VERIFIED", Some("new@example.org"))], None, "paid")).await;
        let invited = wait_until(Duration::from_secs(10), || async { invitation_recorded(&app, "7501").await }).await;
        assert!(invited);
        let (mut browser, token) = Browser::logged_in(&app).await;
        let id = order_id(&app, "7501").await;

        let page = browser.get(&format!("/admin/orders/{id}")).await;

        let text = visible_text(&page.body);
        assert!(text.contains("awaiting account") && text.contains("verified seat"), "{text}");
        assert!(text.contains("Check for the learner's account now"), "{text}");
        app.lms.with(|s| s.register("new@example.org"));
        let checked = browser.post(&format!("/admin/orders/{id}/retry"), &[("csrf", &token)]).await;
        assert_eq!(checked.status, StatusCode::SEE_OTHER);
        app.wait_for_order("7501", SHOP, "enrolled").await;
        assert_eq!(app.lms.seat_of(COURSE_A, "new@example.org").unwrap().mode, "verified");
    }
}
