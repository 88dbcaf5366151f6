//! The dashboard: counts, the settings' warnings, a misconfigured LMS.

use super::*;

on_each_database! {
    async fn the_dashboard_shows_the_settings_warnings(db: Db) {
        let app = spawn_app_with(db, |config| {
            config.admin_password = Some(Secret::new(PASSWORD));
            config.shopify.clear();
            config.woocommerce.clear();
        })
        .await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let text = visible_text(&browser.get("/admin").await.body);
        assert!(text.contains("The settings need attention."), "{text}");
        assert!(text.contains("shops: no shop is configured, so every delivery is refused (403)"), "{text}");

        let fine = app_with_admin(db).await;
        let (mut browser, _) = Browser::logged_in(&fine).await;
        let text = visible_text(&browser.get("/admin").await.body);
        assert!(!text.contains("The settings need attention."), "{text}");
    }

    async fn the_dashboard_counts_enrollments(db: Db) {
        let app = app_with_admin(db).await;
        app.shopify("orders/create", &shopify_order(7001, &[(1, COURSE_A, Some("ann@example.com")), (2, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7002, &[(1, COURSE_A, Some("not-an-email"))], None, "paid")).await;
        app.wait_for_order("7001", SHOP, "enrolled").await;
        app.wait_for_order("7002", SHOP, "failed").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get("/admin").await;
        assert_eq!(page.status, StatusCode::OK);
        let text = visible_text(&page.body);
        assert!(text.contains("2 enrolled"), "{text}");
        assert!(text.contains("1 failed"), "{text}");
    }

    async fn the_dashboard_says_when_the_lms_is_misconfigured(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.view_disabled = true);
        app.shopify("orders/create", &shopify_order(7701, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        let store = app.store.clone();
        let paused = crate::helpers::wait_until(std::time::Duration::from_secs(15), || {
            let store = store.clone();
            async move { store.lms_status().await.unwrap().misconfigured.is_some() }
        })
        .await;
        assert!(paused, "the LMS is found misconfigured");
        let (mut browser, _) = Browser::logged_in(&app).await;
        let text = visible_text(&browser.get("/admin").await.body);
        assert!(text.contains("The LMS is misconfigured"), "{text}");
        assert!(text.contains("ENABLE_BULK_ENROLLMENT_VIEW"), "the reason: {text}");
        assert!(text.contains("1 processing"), "{text}");
    }
}
