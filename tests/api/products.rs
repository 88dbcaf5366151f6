//! Products (SPEC §8): bundles, and paid seats through the Enrollment API,
//! for learners with an account and for those who register later.

use std::time::Duration;

use edx_webhooks::domain::{CourseKey, Product};
use edx_webhooks::store::OrderQuery;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::lms::Reply;

const COURSE_C: &str = "course-v1:Org+CourseC+2026";
/// Long before any test runs: an enrollment the learner had before us.
const LONG_AGO: &str = "2020-01-01T00:00:00Z";

fn product(sku: &str, courses: &[&str], mode: Option<&str>) -> Product {
    Product {
        sku: sku.into(),
        courses: courses
            .iter()
            .map(|c| CourseKey::parse(c).unwrap())
            .collect(),
        mode: mode.map(str::to_owned),
    }
}

/// A service selling `products`, rechecking accounts every 100 ms at most.
async fn shop_selling(db: Db, products: Vec<Product>) -> TestApp {
    spawn_app_with(db, |c| {
        c.products = products;
        c.account_recheck_max = Duration::from_millis(100);
    })
    .await
}

async fn order_seat(app: &TestApp, id: u64, sku: &str, email: &str) {
    let order = shopify_order(id, &[(1, sku, Some(email))], None, "paid");
    let response = app.shopify("orders/create", &order).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
}

/// The order's learner was invited and waits for the next look at their account.
pub async fn invitation_recorded(app: &TestApp, order: &str) -> bool {
    let item = app.order(order, SHOP).await.items.remove(0);
    item.state == "awaiting_account" && item.action == "enroll"
}

on_each_database! {
async fn an_auditing_learner_is_upgraded_to_the_verified_seat_they_paid_for(db: Db) {
    let app = shop_selling(db, vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))]).await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.seat(COURSE_A, "ann@example.org", "audit", LONG_AGO);
    });

    order_seat(&app, 8001, "PY-VERIFIED", "ann@example.org").await;

    let view = app.wait_for_order("8001", SHOP, "enrolled").await;
    assert_eq!(view.items[0].mode.as_deref(), Some("verified"));
    assert_eq!(view.items[0].course_key.as_deref(), Some(COURSE_A));
    let seat = app.lms.seat_of(COURSE_A, "ann@example.org").unwrap();
    assert_eq!((seat.mode.as_str(), seat.active), ("verified", true));
    let calls = app.lms.enrollment_calls();
    assert_eq!(calls.len(), 1, "one learner, one call: {calls:?}");
    assert_eq!(calls[0]["email"], "ann@example.org");
    assert_eq!(calls[0]["mode"], "verified");
    assert_eq!(calls[0]["is_active"], true);
    assert_eq!(calls[0]["course_details"]["course_id"], COURSE_A);
    let attribute = calls[0]["enrollment_attributes"][0]["value"].as_str().unwrap();
    assert!(attribute.contains("Shopify order #8001") && attribute.contains(SHOP), "{attribute}");
    assert!(app.lms.calls().is_empty(), "no bulk enrollment for a paid seat");
}

async fn a_learner_without_an_account_is_invited_and_gets_the_seat_on_registering(db: Db) {
    let app = shop_selling(db, vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))]).await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.no_account.insert("new@example.org".into());
    });

    order_seat(&app, 8002, "PY-VERIFIED", "new@example.org").await;

    let view = app.wait_for_order("8002", SHOP, "awaiting_account").await;
    assert_eq!(view.items[0].state, "awaiting_account");
    let invited = wait_until(Duration::from_secs(10), || async { !app.lms.calls().is_empty() }).await;
    assert!(invited, "the learner is invited through bulk enrollment");
    let invitation = &app.lms.calls()[0];
    assert_eq!(invitation.field("action"), "enroll");
    assert_eq!(invitation.field("auto_enroll"), "true");
    assert_eq!(invitation.identifiers(), vec!["new@example.org"]);
    let listed = app
        .store
        .list_orders(&OrderQuery { state: "awaiting_account".parse().ok(), ..OrderQuery::default() })
        .await
        .unwrap();
    assert_eq!(listed.orders.len(), 1);
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"edx_webhooks_enrollments{state="awaiting_account"} 1"#), "{metrics}");
    // The service keeps looking for the account meanwhile.
    let rechecked = wait_until(Duration::from_secs(10), || async { app.lms.enrollment_calls().len() >= 3 }).await;
    assert!(rechecked);

    app.lms.with(|s| s.register("new@example.org"));

    let view = app.wait_for_order("8002", SHOP, "enrolled").await;
    assert_eq!(view.items[0].state, "enrolled");
    let seat = app.lms.seat_of(COURSE_A, "new@example.org").unwrap();
    assert_eq!((seat.mode.as_str(), seat.active), ("verified", true), "the audit enrollment of the registration is upgraded");
    assert_eq!(app.lms.calls().len(), 1, "invited once");
}

async fn an_expired_mode_fails_with_the_lms_reason(db: Db) {
    let app = shop_selling(db, vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))]).await;
    app.lms.with(|s| {
        s.course_modes.insert(COURSE_A.into(), vec![("audit".into(), false), ("verified".into(), true)]);
    });

    order_seat(&app, 8003, "PY-VERIFIED", "ann@example.org").await;

    let view = app.wait_for_order("8003", SHOP, "failed").await;
    let reason = view.items[0].reason.as_deref().unwrap();
    assert!(reason.contains("400") && reason.contains("expired or otherwise unavailable"), "{reason}");
    assert_eq!(app.lms.enrollment_calls().len(), 1, "a permanent failure is not retried");
    assert!(app.lms.seat_of(COURSE_A, "ann@example.org").is_none());
}

async fn a_bundle_of_three_courses_with_one_failing_leaves_the_other_two_enrolled(db: Db) {
    let app = shop_selling(db, vec![product("PY-BUNDLE", &[COURSE_A, COURSE_B, COURSE_C], Some("verified"))]).await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.offer(COURSE_B, &["audit", "verified"]);
        s.offer(COURSE_C, &["audit"]);
    });

    order_seat(&app, 8004, "PY-BUNDLE", "ann@example.org").await;

    let view = app.wait_for_order("8004", SHOP, "failed").await;
    let mut states: Vec<(String, String)> = view
        .items
        .iter()
        .map(|i| (i.course_key.clone().unwrap(), i.state.clone()))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            (COURSE_A.to_owned(), "enrolled".to_owned()),
            (COURSE_B.to_owned(), "enrolled".to_owned()),
            (COURSE_C.to_owned(), "failed".to_owned()),
        ]
    );
    assert!(view.items.iter().all(|i| i.line_item_id == "1" && i.sku == "PY-BUNDLE"));
    for course in [COURSE_A, COURSE_B] {
        assert_eq!(app.lms.seat_of(course, "ann@example.org").unwrap().mode, "verified");
    }
    assert!(app.lms.seat_of(COURSE_C, "ann@example.org").is_none());

    // A redelivery makes no second set of enrollments.
    let order = shopify_order(8004, &[(1, "PY-BUNDLE", Some("ann@example.org"))], None, "paid");
    let response = app.shopify("orders/updated", &order).await;
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "duplicate");
    assert_eq!(app.order("8004", SHOP).await.items.len(), 3);
}

async fn a_bundle_without_a_mode_is_bulk_enrolled_course_by_course(db: Db) {
    let app = shop_selling(db, vec![product("DUO", &[COURSE_A, COURSE_B], None)]).await;

    order_seat(&app, 8005, "DUO", "ann@example.org").await;

    let view = app.wait_for_order("8005", SHOP, "enrolled").await;
    assert_eq!(view.items.len(), 2);
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    assert!(app.lms.is_enrolled(COURSE_B, "ann@example.org"));
    assert!(app.lms.enrollment_calls().is_empty(), "no mode, no Enrollment API");
    assert_eq!(app.lms.calls().len(), 2, "one bulk request per course");
}

async fn retries_after_a_5xx_are_safe(db: Db) {
    let app = shop_selling(db, vec![product(COURSE_A, &[COURSE_A], Some("verified"))]).await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        // The first request is done by the LMS but its answer is lost; the second fails outright.
        s.enrollment_script.extend([Reply::AfterDoing(502), Reply::Status(503)]);
    });

    order_seat(&app, 8006, COURSE_A, "ann@example.org").await;

    let view = app.wait_for_order("8006", SHOP, "enrolled").await;
    assert_eq!(view.items[0].mode.as_deref(), Some("verified"), "a course key as SKU gets its mode from the table");
    let calls = app.lms.enrollment_calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(calls.iter().all(|c| c == &calls[0]), "every try asks the same");
    let seat = app.lms.seat_of(COURSE_A, "ann@example.org").unwrap();
    assert_eq!((seat.mode.as_str(), seat.active), ("verified", true));
    let id = app.store.find_order("8006", Some(SHOP)).await.unwrap();
    let attempts = app.store.attempts(view.items[0].id).await.unwrap();
    let statuses: Vec<Option<u16>> = attempts.iter().map(|a| a.http_status).collect();
    assert_eq!(statuses, [Some(502), Some(503), Some(200)], "order {id}");
}

async fn the_wait_for_an_account_runs_out_then_the_operator_retries(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.products = vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))];
        c.account_recheck_max = Duration::from_millis(100);
        c.account_wait = Duration::from_millis(600);
    })
    .await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.no_account.insert("late@example.org".into());
    });

    order_seat(&app, 8007, "PY-VERIFIED", "late@example.org").await;

    let view = app.wait_for_order("8007", SHOP, "failed").await;
    let reason = view.items[0].reason.as_deref().unwrap();
    assert!(reason.contains("never registered") && reason.contains("late@example.org"), "{reason}");
    assert_eq!(app.lms.calls().len(), 1, "invited once during the wait");

    app.lms.with(|s| s.register("late@example.org"));
    let retried = app.store.retry_order("8007", Some(SHOP)).await.unwrap();

    assert_eq!(retried, 1);
    app.wait_for_order("8007", SHOP, "enrolled").await;
    assert_eq!(app.lms.seat_of(COURSE_A, "late@example.org").unwrap().mode, "verified");
}

async fn an_operator_retry_checks_for_the_account_at_once(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.products = vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))];
        c.account_recheck_max = Duration::from_secs(3600);
        c.retry.first_delay = Duration::from_secs(3600);
        c.retry.max_delay = Duration::from_secs(3600);
    })
    .await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.no_account.insert("new@example.org".into());
    });
    order_seat(&app, 8008, "PY-VERIFIED", "new@example.org").await;
    let invited = wait_until(Duration::from_secs(10), || async { invitation_recorded(&app, "8008").await }).await;
    assert!(invited);
    app.lms.with(|s| s.register("new@example.org"));

    // The next check is an hour away: the operator asks for one now.
    let retried = app.store.retry_order("8008", Some(SHOP)).await.unwrap();

    assert_eq!(retried, 1);
    app.wait_for_order("8008", SHOP, "enrolled").await;
    assert_eq!(app.lms.seat_of(COURSE_A, "new@example.org").unwrap().mode, "verified");
}

async fn a_cancelled_verified_seat_is_unenrolled_only_where_our_order_gave_it(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.products = vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))];
        c.unenroll_on_cancel = true;
    })
    .await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.seat(COURSE_A, "had@example.org", "audit", LONG_AGO);
    });
    let mut order = shopify_order(
        8009,
        &[(1, "PY-VERIFIED", Some("ann@example.org")), (2, "PY-VERIFIED", Some("had@example.org"))],
        None,
        "paid",
    );
    app.shopify("orders/create", &order).await;
    app.wait_for_order("8009", SHOP, "enrolled").await;

    order["cancelled_at"] = json!("2026-11-28T12:00:00Z");
    let response = app.shopify("orders/cancelled", &order).await;

    assert_eq!(response.json::<Value>().await.unwrap()["status"], "accepted");
    let view = app.wait_for_order("8009", SHOP, "cancelled").await;
    let state_of = |line: &str| view.items.iter().find(|i| i.line_item_id == line).unwrap().state.clone();
    assert_eq!(state_of("1"), "unenrolled");
    assert_eq!(state_of("2"), "enrolled", "upgraded from audit: the learner had the course before us");
    let seat = app.lms.seat_of(COURSE_A, "ann@example.org").unwrap();
    assert_eq!((seat.mode.as_str(), seat.active), ("verified", false));
    assert!(app.lms.seat_of(COURSE_A, "had@example.org").unwrap().active);
    let last = app.lms.enrollment_calls().last().cloned().unwrap();
    assert_eq!((last["email"].as_str(), last["mode"].as_str(), last["is_active"].as_bool()), (Some("ann@example.org"), Some("verified"), Some(false)));
}

async fn a_paid_mode_refused_for_a_non_staff_client_pauses_work(db: Db) {
    let app = shop_selling(db, vec![product("PY-VERIFIED", &[COURSE_A], Some("verified"))]).await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.not_staff = true;
    });

    order_seat(&app, 8010, "PY-VERIFIED", "ann@example.org").await;

    let paused = wait_until(Duration::from_secs(10), || async {
        app.store.lms_status().await.unwrap().misconfigured.is_some_and(|r| r.contains("global staff"))
    })
    .await;
    assert!(paused);
    let view = app.order("8010", SHOP).await;
    assert_eq!(view.items[0].state, "pending");
    assert_eq!(view.items[0].attempts, 0, "no attempt spent");

    app.lms.with(|s| s.not_staff = false);
    app.wait_for_order("8010", SHOP, "enrolled").await;
}
}
