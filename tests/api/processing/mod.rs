//! Processing: from stored order to LMS calls and their results.

mod lms_answers;
mod skus;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

pub(crate) fn item<'a>(
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
}
