//! Faults of the outside systems: an LMS answering something that is not the
//! bulk enrollment answer is retried, never taken for an enrollment.

use crate::helpers::*;
use crate::lms::Reply;

on_each_database! {
    async fn html_and_garbage_answers_are_retried_and_never_taken_for_an_enrollment(db: Db) {
        let app = spawn_app(db).await;
        app.lms.with(|s| {
            s.script.extend([
                Reply::Html(200, "<html><body>Sign in to continue</body></html>"),
                Reply::Html(502, "<html><h1>502 Bad Gateway</h1></html>"),
                Reply::Html(200, "{\"courses\": 7"),
            ])
        });
        let order = shopify_order(9101, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
        assert_eq!(app.shopify("orders/create", &order).await.status(), 200);

        let view = app.wait_for_order("9101", SHOP, "enrolled").await;

        assert_eq!(app.lms.calls().len(), 4);
        let enrollment = view
            .items
            .iter()
            .find(|i| i.line_item_id == "1")
            .expect("line item stored");
        let attempts = app.store.attempts(enrollment.id).await.unwrap();
        let outcomes: Vec<_> = attempts
            .iter()
            .map(|a| (a.http_status, a.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            vec![
                (Some(200), "retry"),
                (Some(502), "retry"),
                (Some(200), "retry"),
                (Some(200), "enrolled"),
            ]
        );
        assert!(attempts[0].detail.contains("unexpected bulk enrollment answer"), "{:?}", attempts[0].detail);
        assert!(attempts[2].detail.contains("unexpected bulk enrollment answer"), "{:?}", attempts[2].detail);
        assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
        let ready = reqwest::get(app.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200, "the service stays ready");
    }
}
