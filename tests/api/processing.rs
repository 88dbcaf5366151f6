//! Processing: from stored order to LMS calls and their results.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::lms::Reply;

fn item<'a>(
    view: &'a edx_webhooks::store::OrderView,
    line: &str,
) -> &'a edx_webhooks::store::ItemView {
    view.items
        .iter()
        .find(|i| i.line_item_id == line)
        .expect("line item stored")
}

on_each_database! {
async fn two_courses_and_three_learners_make_one_request_per_course(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(
        2001,
        &[
            (1, COURSE_A, Some("ann@example.org")),
            (2, COURSE_A, Some("bob@example.org")),
            (3, COURSE_B, Some("cy@example.org")),
        ],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    app.wait_for_order("2001", SHOP, "enrolled").await;

    let calls = app.lms.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    let a = calls
        .iter()
        .find(|c| c.field("courses") == COURSE_A)
        .unwrap();
    let b = calls
        .iter()
        .find(|c| c.field("courses") == COURSE_B)
        .unwrap();
    let mut learners = a.identifiers();
    learners.sort();
    assert_eq!(learners, vec!["ann@example.org", "bob@example.org"]);
    assert_eq!(b.identifiers(), vec!["cy@example.org"]);
}

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

async fn a_missing_learner_email_falls_back_to_the_buyer(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(
        2004,
        &[(1, COURSE_A, None)],
        Some("buyer@example.org"),
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    app.wait_for_order("2004", SHOP, "enrolled").await;

    assert_eq!(app.lms.calls()[0].identifiers(), vec!["buyer@example.org"]);
}

async fn an_invalid_email_fails_its_item_only_without_a_call(db: Db) {
    let app = spawn_app(db).await;
    let order = shopify_order(
        2005,
        &[
            (1, COURSE_A, Some("not an email")),
            (2, COURSE_B, Some("ok@example.org")),
        ],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2005", SHOP, "failed").await;

    assert_eq!(item(&view, "1").state, "failed");
    assert!(item(&view, "1")
        .reason
        .as_deref()
        .unwrap()
        .contains("not an email"));
    assert_eq!(item(&view, "2").state, "enrolled");
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].field("courses"), COURSE_B);
}

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

async fn attempts_exhausted_fail_the_order_and_an_operator_retry_enrolls_it(db: Db) {
    let app = spawn_app(db).await;
    app.lms.with(|s| s.down = true);
    let order = shopify_order(
        2012,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

    let view = app.wait_for_order("2012", SHOP, "failed").await;
    assert_eq!(item(&view, "1").attempts, 4);
    assert!(item(&view, "1")
        .reason
        .as_deref()
        .unwrap()
        .starts_with("gave up after 4 attempts"));
    assert_eq!(app.lms.calls().len(), 4);

    app.lms.with(|s| s.down = false);
    assert_eq!(app.store.retry_order("2012", Some(SHOP)).await.unwrap(), 1);

    let view = app.wait_for_order("2012", SHOP, "enrolled").await;
    assert_eq!(
        item(&view, "1").attempts,
        1,
        "a retry starts with fresh attempts"
    );
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
}

async fn fifty_concurrent_orders_make_fifty_enrollments_without_duplicates(db: Db) {
    let app = spawn_app(db).await;
    let sends = (0..50u64).map(|n| {
        let app = &app;
        async move {
            let email = format!("learner{n}@example.org");
            let order = if n % 2 == 0 {
                shopify_order(3000 + n, &[(1, COURSE_A, Some(&email))], None, "paid")
            } else {
                woo_order(
                    3000 + n,
                    &[(1, COURSE_A, Some(&email))],
                    "buyer@example.org",
                    true,
                )
            };
            let response = if n % 2 == 0 {
                app.shopify("orders/create", &order).await
            } else {
                app.woocommerce("order.created", &order).await
            };
            assert_eq!(response.status(), 200);
            assert_eq!(
                response.json::<Value>().await.unwrap()["status"],
                "accepted"
            );
        }
    });
    futures::future::join_all(sends).await;

    let all_enrolled = wait_until(Duration::from_secs(20), || async {
        app.store.count_enrollments().await.unwrap()
            == vec![(edx_webhooks::domain::EnrollmentState::Enrolled, 50)]
    })
    .await;
    assert!(
        all_enrolled,
        "{:?}",
        app.store.count_enrollments().await.unwrap()
    );
    assert!((0..50).all(|n| app
        .lms
        .is_enrolled(COURSE_A, &format!("learner{n}@example.org"))));

    let sent: Vec<String> = app
        .lms
        .calls()
        .iter()
        .flat_map(|c| c.identifiers())
        .collect();
    let unique: HashSet<&String> = sent.iter().collect();
    assert_eq!(sent.len(), 50, "each learner is sent exactly once");
    assert_eq!(unique.len(), 50);
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
