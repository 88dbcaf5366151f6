//! WooCommerce intake, over HTTP.

use edx_webhooks::config::{Secret, WooCommerceShop};
use serde_json::{json, Value};

use crate::helpers::*;

const BARE: &str = "/webhooks/woocommerce";
const CREATE: &str = "/webhooks/woocommerce/order/create";
const UPDATE: &str = "/webhooks/woocommerce/order/update";

fn raw(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

/// A delivery with WooCommerce's headers, signed with `WOO_SECRET`; headers
/// can be replaced or removed before it is sent.
struct Delivery {
    path: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Delivery {
    fn new(body: Vec<u8>) -> Delivery {
        let signature = sign(WOO_SECRET, &body);
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", "WooCommerce/9.4.0 Hookshot (WordPress/6.7)"),
            ("X-WC-Webhook-Source", WOO_SOURCE),
            ("X-WC-Webhook-Topic", "order.created"),
            ("X-WC-Webhook-Resource", "order"),
            ("X-WC-Webhook-Event", "created"),
            ("X-WC-Webhook-Signature", &signature),
            ("X-WC-Webhook-ID", "3"),
        ];
        Delivery {
            path: BARE,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    fn of(order: &Value) -> Delivery {
        Delivery::new(raw(order))
    }

    fn to(mut self, path: &'static str) -> Delivery {
        self.path = path;
        self
    }

    /// Replaces the header (reqwest's `.header` would add a second one).
    fn header(self, name: &str, value: &str) -> Delivery {
        let mut delivery = self.without(name);
        delivery.headers.push((name.to_owned(), value.to_owned()));
        delivery
    }

    fn without(mut self, name: &str) -> Delivery {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    async fn send(self, app: &TestApp) -> reqwest::Response {
        let mut request = app
            .client
            .post(app.url(self.path))
            .header("X-WC-Webhook-Delivery-ID", uuid::Uuid::new_v4().to_string())
            .body(self.body);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        request.send().await.unwrap()
    }
}

async fn status_and_reason(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn status_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (
        status,
        body["status"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The state of each of the order's items, by line item id.
fn item_states(view: &edx_webhooks::store::OrderView) -> Vec<(String, String)> {
    view.items
        .iter()
        .map(|i| (i.line_item_id.clone(), i.state.clone()))
        .collect()
}

/// The one request stored last: what the service recorded about the delivery.
async fn last_request(app: &TestApp) -> edx_webhooks::store::RequestView {
    app.store.requests(1).await.unwrap().remove(0)
}

fn paid_order(id: u64, learner: &str) -> Value {
    woo_order(
        id,
        &[(1, COURSE_A, Some(learner))],
        "buyer@example.org",
        true,
    )
}

fn payment_required() -> impl FnOnce(&mut edx_webhooks::config::Config) {
    |c| c.require_payment = true
}

on_each_database! {
async fn other_methods_are_refused_with_allow_post(db: Db) {
    let app = spawn_app(db).await;
    for path in [BARE, CREATE, UPDATE] {
        for method in [reqwest::Method::GET, reqwest::Method::PUT] {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], "POST", "{method} {path}");
        }
    }
}

async fn a_paid_order_enrolls_its_learner_with_the_expected_request(db: Db) {
    let app = spawn_app(db).await;
    let order = woo_order(
        727,
        &[(315, COURSE_A, Some("learner@example.org"))],
        "buyer@example.org",
        true,
    );

    let response = app.woocommerce("order.created", &order).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "accepted"
    );
    app.wait_for_order("727", WOO_SOURCE, "enrolled").await;
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.field("action"), "enroll");
    assert_eq!(call.field("courses"), COURSE_A);
    assert_eq!(call.identifiers(), vec!["learner@example.org"]);
    assert_eq!(call.field("auto_enroll"), "true");
    assert_eq!(call.field("email_students"), "true");
    assert_eq!(
        call.field("reason"),
        "WooCommerce order #727 (https://shop.example.com/)"
    );
    assert_eq!(call.authorization.as_deref(), Some("JWT jwt-1"));
    assert!(app.lms.is_enrolled(COURSE_A, "learner@example.org"));
}

async fn the_same_order_again_is_a_duplicate_and_enrolls_nobody_twice(db: Db) {
    let app = spawn_app(db).await;
    let order = paid_order(1001, "learner@example.org");
    assert_eq!(app.woocommerce("order.created", &order).await.status(), 200);
    app.wait_for_order("1001", WOO_SOURCE, "enrolled").await;

    let again = app.woocommerce("order.created", &order).await;

    assert_eq!(status_of(again).await, (200, "duplicate".to_owned()));
    assert_eq!(last_request(&app).await.outcome, "duplicate");
    assert_eq!(app.lms.calls().len(), 1);
    assert_eq!(app.order("1001", WOO_SOURCE).await.state, "enrolled");
}

async fn a_ping_is_answered_200_and_stored(db: Db) {
    let app = spawn_app(db).await;
    for path in [BARE, CREATE, UPDATE] {
        let response = app
            .client
            .post(app.url(path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("User-Agent", "WooCommerce/9.4.0 Hookshot (WordPress/6.7)")
            .body("webhook_id=12")
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "{path}");
        let stored = last_request(&app).await;
        assert_eq!(stored.outcome, "ping", "{path}");
        assert_eq!(stored.http_status, 200, "{path}");
        assert_eq!(stored.platform, "woocommerce", "{path}");
    }
    assert!(app.lms.calls().is_empty());
}

async fn a_form_without_webhook_id_or_a_multipart_body_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let form = app
        .client
        .post(app.url(BARE))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("id=12&topic=order.created")
        .send()
        .await
        .unwrap();
    let multipart = app
        .client
        .post(app.url(BARE))
        .header("Content-Type", "multipart/form-data; boundary=XyZ")
        .body(
            "--XyZ\r\nContent-Disposition: form-data; name=\"webhook_id\"\r\n\r\n12\r\n--XyZ--\r\n",
        )
        .send()
        .await
        .unwrap();

    for response in [form, multipart] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 400);
        assert!(!reason.is_empty());
    }
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 2, "every request is stored");
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 400 && r.reason.is_some()));
}

async fn a_missing_signature_header_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(1, "a@example.org"))
        .without("X-WC-Webhook-Signature")
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 400);
    assert!(reason.to_lowercase().contains("signature"), "{reason}");
    let stored = last_request(&app).await;
    assert_eq!(
        (stored.http_status, stored.outcome.as_str()),
        (400, "rejected")
    );
    assert_eq!(stored.reason.as_deref(), Some(reason.as_str()));
}

async fn a_missing_source_header_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(1, "a@example.org"))
        .without("X-WC-Webhook-Source")
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 400);
    assert!(reason.to_lowercase().contains("source"), "{reason}");
    let stored = last_request(&app).await;
    assert_eq!(
        (stored.http_status, stored.outcome.as_str()),
        (400, "rejected")
    );
    assert_eq!(stored.reason.as_deref(), Some(reason.as_str()));
}

async fn an_unknown_source_is_forbidden(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(1, "a@example.org"))
        .header("X-WC-Webhook-Source", "https://someone-else.example.com/")
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 403);
    assert!(!reason.is_empty());
    let stored = last_request(&app).await;
    assert_eq!(
        (stored.http_status, stored.outcome.as_str()),
        (403, "rejected")
    );
    assert!(app.lms.calls().is_empty());
}

async fn a_source_without_a_secret_refuses_a_body_signed_with_the_empty_key(db: Db) {
    let app = spawn_app_with(db, |c| {
        c.woocommerce.push(WooCommerceShop {
            source: "https://keyless.example.com/".into(),
            secret: None,
            api: None,
        })
    })
    .await;
    let body = raw(&paid_order(1, "a@example.org"));
    let signature = sign("", &body);

    let response = Delivery::new(body)
        .header("X-WC-Webhook-Source", "https://keyless.example.com/")
        .header("X-WC-Webhook-Signature", &signature)
        .send(&app)
        .await;

    let (status, reason) = status_and_reason(response).await;
    assert_eq!(status, 403);
    assert!(!reason.is_empty());
    assert_eq!(last_request(&app).await.http_status, 403);
    assert!(app.store.find_order("1", None).await.is_err());
}

async fn a_wrong_or_undecodable_signature_is_forbidden(db: Db) {
    let app = spawn_app(db).await;
    let body = raw(&paid_order(1, "a@example.org"));
    let other = sign("another-secret", &body);
    let wrong = Delivery::new(body.clone())
        .header("X-WC-Webhook-Signature", &other)
        .send(&app)
        .await;
    let not_base64 = Delivery::new(body)
        .header("X-WC-Webhook-Signature", "%%%not base64%%%")
        .send(&app)
        .await;

    for response in [wrong, not_base64] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 403);
        assert!(!reason.is_empty());
    }
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 403 && r.reason.is_some()));
    assert!(app.store.find_order("1", None).await.is_err());
    assert!(app.lms.calls().is_empty());
}

async fn a_signed_body_that_is_not_json_or_not_an_order_is_a_bad_request(db: Db) {
    let app = spawn_app(db).await;
    let not_json = Delivery::new(b"this is not json".to_vec()).send(&app).await;
    let no_id = Delivery::of(&json!({"number": "5", "line_items": []}))
        .send(&app)
        .await;
    let no_items = Delivery::of(&json!({"id": 5, "number": "5"}))
        .send(&app)
        .await;

    for response in [not_json, no_id, no_items] {
        let (status, reason) = status_and_reason(response).await;
        assert_eq!(status, 400);
        assert!(!reason.is_empty());
    }
    let stored = app.store.requests(10).await.unwrap();
    assert_eq!(stored.len(), 3);
    assert!(stored
        .iter()
        .all(|r| r.outcome == "rejected" && r.http_status == 400 && r.reason.is_some()));
}

async fn a_body_over_the_limit_is_refused_and_its_beginning_kept(db: Db) {
    let app = spawn_app_with(db, |c| c.max_body = 100 * 1024).await;
    let mut order = paid_order(1, "a@example.org");
    order["customer_note"] = json!("x".repeat(200 * 1024));

    let response = Delivery::of(&order).send(&app).await;

    assert_eq!(response.status(), 413);
    let stored = last_request(&app).await;
    assert_eq!(stored.http_status, 413);
    assert_eq!(stored.outcome, "rejected");
    assert!(stored.body_truncated);
    assert_eq!(stored.stored_body_len, 64 * 1024);
    assert!(stored.body_size > 200 * 1024);
    assert!(app.store.find_order("1", None).await.is_err());
}

async fn an_unknown_topic_is_stored_and_ignored(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&json!({"id": 9, "code": "WELCOME10", "amount": "10.00"}))
        .header("X-WC-Webhook-Topic", "coupon.created")
        .header("X-WC-Webhook-Resource", "coupon")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "ignored".to_owned()));
    let stored = last_request(&app).await;
    assert_eq!(stored.outcome, "ignored");
    assert_eq!(stored.topic.as_deref(), Some("coupon.created"));
    assert!(app.store.find_order("9", None).await.is_err());
}

async fn a_deleted_order_is_stored_and_ignored(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&json!({"id": 727}))
        .header("X-WC-Webhook-Topic", "order.deleted")
        .header("X-WC-Webhook-Event", "deleted")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "ignored".to_owned()));
    let stored = last_request(&app).await;
    assert_eq!(stored.outcome, "ignored");
    assert_eq!(stored.topic.as_deref(), Some("order.deleted"));
}

async fn a_source_sent_without_the_configured_trailing_slash_is_accepted(db: Db) {
    let app = spawn_app(db).await;
    let response = Delivery::of(&paid_order(41, "a@example.org"))
        .header("X-WC-Webhook-Source", "https://shop.example.com")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("41", WOO_SOURCE, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "a@example.org"));
}

async fn a_source_sent_with_a_trailing_slash_matches_one_configured_without(db: Db) {
    let configured = "https://noslash.example.com";
    let app = spawn_app_with(db, |c| {
        c.woocommerce = vec![WooCommerceShop {
            source: configured.into(),
            secret: Some(Secret::new(WOO_SECRET)),
            api: None,
        }]
    })
    .await;
    let response = Delivery::of(&paid_order(42, "a@example.org"))
        .header("X-WC-Webhook-Source", "https://noslash.example.com/")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("42", configured, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "a@example.org"));
}

async fn an_unpaid_order_waits_for_payment_without_calling_the_lms(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let unpaid = woo_order(
        50,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        false,
    );

    let response = app.woocommerce("order.created", &unpaid).await;

    assert_eq!(
        status_of(response).await,
        (200, "awaiting_payment".to_owned())
    );
    // Intake writes the order before answering: no waiting needed.
    let view = app.order("50", WOO_SOURCE).await;
    assert_eq!(view.state, "awaiting_payment");
    assert_eq!(
        item_states(&view),
        vec![("1".to_owned(), "awaiting_payment".to_owned())]
    );
    assert_eq!(last_request(&app).await.outcome, "awaiting_payment");
    assert!(app.lms.calls().is_empty());
}

async fn an_update_showing_payment_releases_the_waiting_order(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let unpaid = woo_order(
        51,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        false,
    );
    let first = app.woocommerce("order.created", &unpaid).await;
    assert_eq!(status_of(first).await, (200, "awaiting_payment".to_owned()));
    assert_eq!(app.order("51", WOO_SOURCE).await.state, "awaiting_payment");

    let paid = woo_order(
        51,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        true,
    );
    let response = Delivery::of(&paid)
        .to(UPDATE)
        .header("X-WC-Webhook-Topic", "order.updated")
        .header("X-WC-Webhook-Event", "updated")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("51", WOO_SOURCE, "enrolled").await;
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].identifiers(), vec!["a@example.org"]);
    assert_eq!(calls[0].field("courses"), COURSE_A);
}

async fn a_cancelled_update_cancels_the_waiting_items(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let mut order = woo_order(
        52,
        &[
            (1, COURSE_A, Some("a@example.org")),
            (2, COURSE_B, Some("b@example.org")),
        ],
        "buyer@example.org",
        false,
    );
    let first = app.woocommerce("order.created", &order).await;
    assert_eq!(status_of(first).await, (200, "awaiting_payment".to_owned()));

    order["status"] = json!("cancelled");
    let response = Delivery::of(&order)
        .to(UPDATE)
        .header("X-WC-Webhook-Topic", "order.updated")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    let view = app.order("52", WOO_SOURCE).await;
    assert_eq!(view.state, "cancelled");
    assert_eq!(
        item_states(&view),
        vec![
            ("1".to_owned(), "cancelled".to_owned()),
            ("2".to_owned(), "cancelled".to_owned())
        ]
    );
    assert!(app.lms.calls().is_empty());
}

async fn the_update_path_without_a_topic_header_means_order_updated(db: Db) {
    let app = spawn_app_with(db, payment_required()).await;
    let unpaid = woo_order(
        53,
        &[(1, COURSE_A, Some("a@example.org"))],
        "buyer@example.org",
        false,
    );
    let first = app.woocommerce("order.created", &unpaid).await;
    assert_eq!(status_of(first).await, (200, "awaiting_payment".to_owned()));

    let response = Delivery::of(&paid_order(53, "a@example.org"))
        .to(UPDATE)
        .without("X-WC-Webhook-Topic")
        .send(&app)
        .await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    assert_eq!(
        last_request(&app).await.topic.as_deref(),
        Some("order.updated")
    );
    app.wait_for_order("53", WOO_SOURCE, "enrolled").await;
    assert_eq!(app.lms.calls().len(), 1);
}

async fn the_create_paths_without_a_topic_header_mean_order_created(db: Db) {
    let app = spawn_app(db).await;
    for (id, path) in [(54, BARE), (55, CREATE)] {
        let response = Delivery::of(&paid_order(id, "a@example.org"))
            .to(path)
            .without("X-WC-Webhook-Topic")
            .send(&app)
            .await;

        assert_eq!(
            status_of(response).await,
            (200, "accepted".to_owned()),
            "{path}"
        );
        assert_eq!(
            last_request(&app).await.topic.as_deref(),
            Some("order.created"),
            "{path}"
        );
        app.wait_for_order(&id.to_string(), WOO_SOURCE, "enrolled")
            .await;
    }
}

async fn an_item_without_a_learner_email_field_goes_to_the_billing_email(db: Db) {
    let app = spawn_app(db).await;
    let order = woo_order(60, &[(1, COURSE_A, None)], "buyer@example.org", true);

    let response = app.woocommerce("order.created", &order).await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    let view = app.wait_for_order("60", WOO_SOURCE, "enrolled").await;
    assert_eq!(view.items[0].email.as_deref(), Some("buyer@example.org"));
    let calls = app.lms.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].identifiers(), vec!["buyer@example.org"]);
}

async fn a_rejected_delivery_retried_after_the_fix_is_judged_again(db: Db) {
    // WooCommerce never retries, but an operator may resend by hand: nothing
    // about a refused delivery may make its order a duplicate.
    let app = spawn_app(db).await;
    let order = paid_order(70, "a@example.org");
    let refused = Delivery::of(&order)
        .header("X-WC-Webhook-Signature", &sign("old-secret", &raw(&order)))
        .send(&app)
        .await;
    assert_eq!(refused.status(), 403);

    let response = app.woocommerce("order.created", &order).await;

    assert_eq!(status_of(response).await, (200, "accepted".to_owned()));
    app.wait_for_order("70", WOO_SOURCE, "enrolled").await;
    assert_eq!(app.lms.calls().len(), 1);
}

async fn a_delivery_over_http_1_0_is_accepted(db: Db) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    // WooCommerce's sender speaks HTTP/1.0.
    let app = spawn_app(db).await;
    let body = raw(&paid_order(80, "a@example.org"));
    let head = format!(
        "POST {BARE} HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\n\
         X-WC-Webhook-Source: {WOO_SOURCE}\r\nX-WC-Webhook-Topic: order.created\r\n\
         X-WC-Webhook-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        app.address,
        sign(WOO_SECRET, &body),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();

    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains(r#""status":"accepted""#), "{answer}");
    app.wait_for_order("80", WOO_SOURCE, "enrolled").await;
}

async fn two_shops_with_the_same_order_id_are_two_orders(db: Db) {
    let second = "https://second.example.com/";
    let app = spawn_app_with(db, |c| {
        c.woocommerce.push(WooCommerceShop {
            source: second.into(),
            secret: Some(Secret::new("second-secret")),
            api: None,
        })
    })
    .await;
    let first_order = paid_order(90, "one@example.org");
    let second_order = paid_order(90, "two@example.org");
    let body = raw(&second_order);
    let signature = sign("second-secret", &body);

    let first = app.woocommerce("order.created", &first_order).await;
    let other = Delivery::new(body)
        .header("X-WC-Webhook-Source", second)
        .header("X-WC-Webhook-Signature", &signature)
        .send(&app)
        .await;

    assert_eq!(status_of(first).await, (200, "accepted".to_owned()));
    assert_eq!(status_of(other).await, (200, "accepted".to_owned()));
    app.wait_for_order("90", WOO_SOURCE, "enrolled").await;
    app.wait_for_order("90", second, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "one@example.org"));
    assert!(app.lms.is_enrolled(COURSE_A, "two@example.org"));
    // Both orders may share one bulk request: each is named in the audit reason.
    let reasons: Vec<String> = app
        .lms
        .calls()
        .iter()
        .map(|c| c.field("reason").to_owned())
        .collect();
    let reasons = reasons.join(", ");
    assert!(reasons.contains("WooCommerce order #90 (https://shop.example.com/)"));
    assert!(reasons.contains("WooCommerce order #90 (https://second.example.com/)"));
}
}
