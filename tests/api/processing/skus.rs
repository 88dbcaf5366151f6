//! SKUs that are not course keys: looked up through the LMS, or skipped.

use super::item;
use crate::helpers::*;

on_each_database! {
async fn a_sku_is_resolved_through_the_lms_redirect_with_the_prefix(db: Db) {
    let app = spawn_app_with(db, |c| c.lms.sku_prefix = "sku/".into()).await;
    app.lms.map_sku("/sku/PYTHON-101", COURSE_B).await;
    let order = shopify_order(
        2002,
        &[(1, "PYTHON-101", Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2002", SHOP, "enrolled").await;

    assert_eq!(item(&view, "1").course_key.as_deref(), Some(COURSE_B));
    assert!(app.lms.is_enrolled(COURSE_B, "ann@example.org"));
}

async fn a_sku_lookup_never_follows_a_redirect_to_another_host(db: Db) {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let app = spawn_app(db).await;
    // Another host (another port: another origin) that answers anything.
    let stranger = MockServer::start().await;
    Mock::given(method("HEAD"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&stranger)
        .await;
    for (sku, target) in [
        ("AWAY", format!("{}/courses/{COURSE_B}/about", stranger.uri())),
        ("AWAY-NO-COURSE", format!("{}/shop/landing", stranger.uri())),
    ] {
        Mock::given(method("HEAD"))
            .and(wiremock::matchers::path(format!("/{sku}")))
            .respond_with(ResponseTemplate::new(302).insert_header("Location", target))
            .mount(&app.lms.server)
            .await;
    }
    let order = shopify_order(
        2010,
        &[(1, "AWAY", Some("ann@example.org")), (2, "AWAY-NO-COURSE", Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2010", SHOP, "enrolled").await;
    // The course in the redirect's target is read without asking that host.
    assert_eq!(item(&view, "1").course_key.as_deref(), Some(COURSE_B));
    assert_eq!(item(&view, "2").state, "skipped");
    assert!(
        stranger.received_requests().await.unwrap().is_empty(),
        "the lookup sent a request to another host"
    );
}

async fn a_sku_that_is_not_a_course_is_skipped_while_the_rest_enrolls(db: Db) {
    let app = spawn_app(db).await;
    // The fake LMS answers 404 for any SKU it has no redirect for.
    let order = shopify_order(
        2003,
        &[
            (1, "T-SHIRT-XL", Some("ann@example.org")),
            (2, COURSE_A, Some("ann@example.org")),
            (3, "", Some("ann@example.org")),
        ],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2003", SHOP, "enrolled").await;

    assert_eq!(item(&view, "1").state, "skipped");
    assert!(item(&view, "1")
        .reason
        .as_deref()
        .unwrap()
        .contains("T-SHIRT-XL"));
    assert_eq!(item(&view, "2").state, "enrolled");
    assert_eq!(item(&view, "3").state, "skipped");
    assert_eq!(app.lms.calls().len(), 1);
}

async fn a_course_key_longer_than_the_lms_stores_is_looked_up_and_skipped(db: Db) {
    let app = spawn_app(db).await;
    let long_key = format!("course-v1:Org+{}+Run", "x".repeat(300));
    let order = shopify_order(2200, &[(1, &long_key, Some("ann@example.org")), (2, COURSE_A, Some("ann@example.org"))], None, "paid");

    let response = app.shopify("orders/create", &order).await;

    assert_eq!(response.status(), 200, "never a 503 for a long SKU");
    let view = app.wait_for_order("2200", SHOP, "enrolled").await;
    assert_eq!(item(&view, "1").state, "skipped");
    assert_eq!(item(&view, "2").state, "enrolled");
}

async fn a_sku_with_a_colon_is_looked_up_like_any_other(db: Db) {
    let app = spawn_app_with(db, |c| c.lms.sku_prefix = "sku/".into()).await;
    app.lms.map_sku("/sku/BUNDLE:PY101", COURSE_B).await;
    let order = shopify_order(2201, &[(1, "BUNDLE:PY101", Some("ann@example.org"))], None, "paid");
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2201", SHOP, "enrolled").await;

    assert_eq!(item(&view, "1").course_key.as_deref(), Some(COURSE_B));
}
}
