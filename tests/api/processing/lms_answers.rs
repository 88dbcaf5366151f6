//! What each LMS answer does: retries, waits, failures, tokens.

use std::time::Duration;

use super::item;
use crate::helpers::*;
use crate::lms::Reply;

on_each_database! {
async fn two_503_answers_then_a_200_enroll_after_retries(db: Db) {
    let app = spawn_app(db).await;
    app.lms
        .with(|s| s.script.extend([Reply::Status(503), Reply::Status(503)]));
    let order = shopify_order(
        2006,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2006", SHOP, "enrolled").await;

    assert_eq!(app.lms.calls().len(), 3);
    let enrollment = item(&view, "1");
    assert_eq!(enrollment.attempts, 3);
    let attempts = app.store.attempts(enrollment.id).await.unwrap();
    let statuses: Vec<_> = attempts
        .iter()
        .map(|a| (a.http_status, a.outcome.as_str()))
        .collect();
    assert_eq!(
        statuses,
        vec![
            (Some(503), "retry"),
            (Some(503), "retry"),
            (Some(200), "enrolled")
        ]
    );
    assert!(
        attempts.iter().all(|a| !a.detail.contains("jwt-")),
        "the token is never stored"
    );
}

async fn a_429_is_waited_out_for_retry_after_and_spends_no_attempt(db: Db) {
    let app = spawn_app(db).await;
    // More throttles than there are attempts: were they spent, the item would fail.
    app.lms.with(|s| {
        s.script.push_back(Reply::Throttle {
            retry_after_secs: 1,
        });
        s.script.extend((0..5).map(|_| Reply::Throttle {
            retry_after_secs: 0,
        }));
    });
    let order = shopify_order(
        2007,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2007", SHOP, "enrolled").await;

    let calls = app.lms.calls();
    assert_eq!(calls.len(), 7);
    assert!(
        calls[1].at - calls[0].at >= Duration::from_secs(1),
        "Retry-After was not respected"
    );
    let enrollment = item(&view, "1");
    assert_eq!(enrollment.attempts, 1, "only the successful call counts");
    let attempts = app.store.attempts(enrollment.id).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .filter(|a| a.outcome == "throttled" && !a.counted)
            .count(),
        6
    );
}

async fn course_not_found_fails_at_once_without_retry(db: Db) {
    let app = spawn_app(db).await;
    app.lms.with(|s| s.unknown_courses.insert(COURSE_A.into()));
    let order = shopify_order(
        2008,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2008", SHOP, "failed").await;

    assert_eq!(app.lms.calls().len(), 1);
    let reason = item(&view, "1").reason.clone().unwrap();
    assert!(reason.contains("Course not found"), "{reason}");
}

async fn a_disabled_bulk_enrollment_view_pauses_work_until_it_is_back(db: Db) {
    let app = spawn_app(db).await;
    app.lms.with(|s| s.view_disabled = true);
    let order = shopify_order(
        2009,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let status = app.url("/status");
    let unready = wait_until(Duration::from_secs(10), || async {
        let response = app.client.get(&status).send().await.unwrap();
        response.status() == 503
            && response
                .text()
                .await
                .unwrap()
                .contains("ENABLE_BULK_ENROLLMENT_VIEW")
    })
    .await;
    assert!(unready, "/status did not report the disabled view");
    let view = app.order("2009", SHOP).await;
    assert_eq!(view.state, "processing");
    assert_eq!(
        item(&view, "1").attempts,
        0,
        "no attempt is spent on a misconfigured LMS"
    );

    app.lms.with(|s| s.view_disabled = false);

    app.wait_for_order("2009", SHOP, "enrolled").await;
    let fine = wait_until(Duration::from_secs(10), || async {
        app.client.get(&status).send().await.unwrap().status() == 200
    })
    .await;
    assert!(fine, "/status did not return to ok");
}

async fn an_invalid_identifier_fails_that_item_only(db: Db) {
    let app = spawn_app(db).await;
    app.lms
        .with(|s| s.invalid_identifiers.insert("ghost@example.org".into()));
    let order = shopify_order(
        2010,
        &[
            (1, COURSE_A, Some("ghost@example.org")),
            (2, COURSE_A, Some("ann@example.org")),
        ],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2010", SHOP, "failed").await;

    assert_eq!(item(&view, "1").state, "failed");
    assert!(item(&view, "1")
        .reason
        .as_deref()
        .unwrap()
        .contains("invalid"));
    assert_eq!(item(&view, "2").state, "enrolled");
    assert_eq!(app.lms.calls().len(), 1);
}

async fn an_expired_token_is_replaced_once_and_the_call_succeeds(db: Db) {
    let app = spawn_app(db).await;
    app.lms.with(|s| s.script.push_back(Reply::ExpireTokens));
    let order = shopify_order(
        2011,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2011", SHOP, "enrolled").await;

    assert_eq!(app.lms.with(|s| s.tokens_issued), 2);
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].authorization.as_deref(), Some("JWT jwt-2"));
    assert_eq!(item(&view, "1").attempts, 1);
}

async fn the_token_is_reused_across_orders(db: Db) {
    let app = spawn_app(db).await;
    for n in 0..3 {
        let order = shopify_order(
            2100 + n,
            &[(1, COURSE_A, Some("ann@example.org"))],
            None,
            "paid",
        );
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);
        app.wait_for_order(&(2100 + n).to_string(), SHOP, "enrolled")
            .await;
    }
    assert_eq!(app.lms.calls().len(), 3);
    assert_eq!(app.lms.with(|s| s.tokens_issued), 1);
}
}
