//! The operator commands, run as the real binary against the database a
//! running service uses.

use std::process::Stdio;

use serde_json::Value;

use crate::helpers::*;
use crate::service::{command_with, service_env, START_DEADLINE};

/// What one command run printed and how it exited.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}):\n{}", self.stdout))
    }
}

/// The binary with `args`, configured like the service `app` is (its
/// database, LMS and Shopify shop), in the app's directory.
async fn cli(app: &TestApp, args: &[&str]) -> Ran {
    cli_with(app, args, service_env(&app.lms, &app.database_url)).await
}

async fn cli_with(app: &TestApp, args: &[&str], env: Vec<(&'static str, String)>) -> Ran {
    let mut command = command_with(args, app.dir.path(), &env);
    command.stdout(Stdio::piped());
    let output = tokio::time::timeout(START_DEADLINE, command.output())
        .await
        .expect("the command ends by itself")
        .expect("the binary runs");
    Ran {
        code: output.status.code().expect("an exit code, not a signal"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn numbers(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|o| o["number"].as_str().unwrap())
        .collect()
}

on_each_database! {
async fn orders_list_filters_and_prints_json(db: Db) {
    let app = spawn_app(db).await;
    app.shopify("orders/create", &shopify_order(7001, &[(1, COURSE_A, Some("Ann@Example.org"))], None, "paid")).await;
    app.shopify("orders/create", &shopify_order(7002, &[(1, COURSE_B, Some("not-an-email"))], Some("buyer@example.org"), "paid")).await;
    app.woocommerce("order.created", &woo_order(7003, &[(1, COURSE_A, None)], "woo@example.org", true)).await;
    app.wait_for_order("7001", SHOP, "enrolled").await;
    app.wait_for_order("7002", SHOP, "failed").await;
    app.wait_for_order("7003", WOO_SOURCE, "enrolled").await;

    let all = cli(&app, &["orders", "list", "--json"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(numbers(&all.json()), ["#7003", "#7002", "#7001"], "newest first");
    let failed = &all.json()[1];
    assert_eq!((failed["state"].as_str(), failed["items"].as_i64(), failed["failed_items"].as_i64()), (Some("failed"), Some(1), Some(1)));

    for (filter, expected) in [
        (vec!["--status", "failed"], vec!["#7002"]),
        (vec!["--shop", WOO_SOURCE], vec!["#7003"]),
        (vec!["--shop", &SHOP.to_uppercase()], vec!["#7002", "#7001"]),
        (vec!["--search", "ann@EXAMPLE"], vec!["#7001"]),
        (vec!["--search", "#7002"], vec!["#7002"]),
        (vec!["--search", "7003"], vec!["#7003"]),
        (vec!["--search", "course-v1:Org+CourseB"], vec!["#7002"]),
        (vec!["--search", "course-v1:org+courseb"], vec![]),
        (vec!["--search", "CourseB"], vec![]),
        (vec!["--search", "woo@"], vec!["#7003"]),
        (vec!["--search", "%"], vec![]),
        (vec!["--status", "enrolled", "--shop", SHOP], vec!["#7001"]),
        (vec!["--limit", "1", "--offset", "1"], vec!["#7002"]),
    ] {
        let args: Vec<&str> = ["orders", "list", "--json"].into_iter().chain(filter.iter().copied()).collect();
        let ran = cli(&app, &args).await;
        assert_eq!(ran.code, 0, "{args:?}: {}", ran.stderr);
        assert_eq!(numbers(&ran.json()), expected, "{args:?}");
    }

    let table = cli(&app, &["orders", "list", "--status", "failed"]).await;
    assert_eq!(table.code, 0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATE"), "{}", table.stdout);
    assert!(lines[1].contains("#7002") && lines[1].contains("1 (1 failed)"), "{}", table.stdout);
    assert_eq!(lines[0].find("STATE"), lines[1].find("failed"), "aligned:\n{}", table.stdout);
    assert_eq!(lines.last(), Some(&"1 of 1 order(s)"));
}

async fn orders_show_tells_the_lms_answer_and_the_raw_webhook(db: Db) {
    let app = spawn_app(db).await;
    app.shopify("orders/create", &shopify_order(7011, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid")).await;
    app.wait_for_order("7011", SHOP, "enrolled").await;

    let shown = cli(&app, &["orders", "show", "#7011", "--shop", SHOP]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let text = &shown.stdout;
    for expected in [
        "Order #7011",
        "state:    enrolled",
        &format!("enroll {COURSE_A} for ann@example.org (enrolled"),
        "LMS 200: enrolled",
        r#""identifier":"ann@example.org""#,
        "POST /webhooks/shopify from 127.0.0.1: 200 accepted (orders/create)",
        "x-shopify-topic: orders/create",
        &format!("x-shopify-shop-domain: {SHOP}"),
        "x-shopify-hmac-sha256: ",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }

    let json = cli(&app, &["orders", "show", "7011", "--json"]).await.json();
    assert_eq!(json["order"]["state"], "enrolled");
    let attempt = &json["items"][0]["attempts"][0];
    assert_eq!((attempt["http_status"].as_u64(), attempt["outcome"].as_str()), (Some(200), Some("enrolled")));
    let request = &json["requests"][0];
    assert!(request["headers"].as_array().unwrap().iter().any(|h| h[0] == "x-shopify-webhook-id"));
    let body: Value = serde_json::from_str(request["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["id"], 7011);

    let id = json["order"]["id"].as_i64().unwrap().to_string();
    let by_our_id = cli(&app, &["orders", "show", &id, "--json"]).await.json();
    assert_eq!(by_our_id["order"]["number"], "#7011");

    let missing = cli(&app, &["orders", "show", "999999"]).await;
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("no order 999999"), "{}", missing.stderr);
}

async fn orders_show_prints_the_body_byte_for_byte_and_hides_credential_headers(db: Db) {
    let app = spawn_app(db).await;
    let raw = unsorted_shopify_body(7012);
    let credentials = [
        ("Authorization", "Basic c2VjcmV0LXVzZXI6cGFzcw=="),
        ("Cookie", "session=cookie-s3cret"),
        ("X-Shopify-Access-Token", "shpat_token_s3cret"),
    ];
    assert_eq!(app.shopify_raw(raw.as_bytes(), &credentials).await.status(), 200);
    app.wait_for_order("7012", SHOP, "enrolled").await;

    let shown = cli(&app, &["orders", "show", "7012"]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains(&raw), "the body as signed, byte for byte, in:\n{}", shown.stdout);
    let json = cli(&app, &["orders", "show", "7012", "--json"]).await;
    assert_eq!(json.json()["requests"][0]["body"], raw.as_str());
    for out in [&shown.stdout, &json.stdout] {
        for (name, value) in credentials {
            assert!(!out.contains(value), "{name}'s value shown:\n{out}");
        }
        assert!(out.to_ascii_lowercase().contains("x-shopify-access-token"), "{out}");
        assert!(out.contains("[hidden]"), "{out}");
    }
}

async fn set_email_queues_a_failed_item_again_and_it_is_enrolled(db: Db) {
    let app = spawn_app(db).await;
    app.shopify("orders/create", &shopify_order(7021, &[(1, COURSE_A, Some("ann@example"))], None, "paid")).await;
    let failed = app.wait_for_order("7021", SHOP, "failed").await;
    let item = failed.items[0].id.to_string();

    let bad = cli(&app, &["orders", "set-email", &item, "still not an email"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("invalid learner email"), "{}", bad.stderr);

    let fixed = cli(&app, &["orders", "set-email", &item, "ann@example.org"]).await;
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);

    let enrolled = app.wait_for_order("7021", SHOP, "enrolled").await;
    assert_eq!(enrolled.items[0].email.as_deref(), Some("ann@example.org"));
    assert_eq!(enrolled.items[0].reason, None);
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));

    let again = cli(&app, &["orders", "set-email", &item, "bob@example.org"]).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("is enrolled: only a failed item"), "{}", again.stderr);
    let missing = cli(&app, &["orders", "set-email", "999999", "bob@example.org"]).await;
    assert_eq!(missing.code, 1);
}

async fn replay_judges_a_rejected_request_again_with_the_current_settings(db: Db) {
    let app = spawn_app_with(db, |config| config.shopify.clear()).await;
    let refused = app.shopify("orders/create", &shopify_order(7031, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid")).await;
    assert_eq!(refused.status(), 403);
    let request = refused.json::<Value>().await.unwrap()["request"].as_i64().unwrap().to_string();

    let rejected = cli(&app, &["webhooks", "rejected", "--json"]).await.json();
    assert_eq!(rejected[0]["id"].as_i64().unwrap().to_string(), request);
    assert_eq!(rejected[0]["http_status"], 403);

    let unconfigured: Vec<_> = service_env(&app.lms, &app.database_url)
        .into_iter()
        .filter(|(name, _)| !name.starts_with("EDX_WEBHOOKS_SHOPIFY"))
        .collect();
    let still = cli_with(&app, &["webhooks", "replay", &request], unconfigured).await;
    assert_eq!(still.code, 1, "{}", still.stderr);
    assert!(still.stdout.contains("403 rejected: shop test-shop.myshopify.com is not configured"), "{}", still.stdout);

    // The operator configures the shop (the command reads the settings anew).
    let replayed = cli(&app, &["webhooks", "replay", &request]).await;
    assert_eq!(replayed.code, 0, "{}", replayed.stderr);
    assert!(replayed.stdout.contains("200 accepted"), "{}", replayed.stdout);

    let order = app.wait_for_order("7031", SHOP, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.org"));
    let detail = app.store.order_detail(order.id).await.unwrap();
    assert_eq!(detail.requests.len(), 1, "the new request is linked to the order");
    assert_eq!(detail.requests[0].outcome, "accepted");

    // Linked both ways, the refused request shown as resolved.
    let taken: i64 = detail.requests[0].id;
    let failed_replay = still.stdout.split("as request ").nth(1).and_then(|t| t.split(' ').next()).unwrap().to_owned();
    let rejected = cli(&app, &["webhooks", "rejected", "--json"]).await.json();
    let original = rejected.as_array().unwrap().iter().find(|r| r["id"].as_i64().unwrap().to_string() == request).unwrap();
    assert_eq!(original["replayed_by"].as_i64(), Some(taken), "{original}");
    assert_eq!(original["taken_in_by"].as_i64(), Some(taken), "{original}");
    assert_eq!(original["replay_of"], Value::Null);
    let refused_again = rejected.as_array().unwrap().iter().find(|r| r["id"].as_i64().unwrap().to_string() == failed_replay).unwrap();
    assert_eq!(refused_again["replay_of"].as_i64().unwrap().to_string(), request, "{refused_again}");
    let table = cli(&app, &["webhooks", "rejected"]).await.stdout;
    assert!(table.contains(&format!("resolved by {taken}")), "{table}");
    assert!(table.contains(&format!("replay of {request}")), "{table}");
    let unresolved = cli(&app, &["webhooks", "rejected", "--unresolved", "--json"]).await.json();
    assert_eq!(unresolved.as_array().unwrap().len(), 0, "both refused requests of the chain are resolved: {unresolved}");
    let shown = cli(&app, &["orders", "show", "7031"]).await.stdout;
    assert!(shown.contains(&format!("request {taken}:")), "{shown}");
    assert!(shown.contains(&format!("a replay (webhooks replay) of request {request}, not a new delivery")), "{shown}");

    let twice = cli(&app, &["webhooks", "replay", &request]).await;
    assert_eq!(twice.code, 0);
    assert!(twice.stdout.contains("200 duplicate"), "{}", twice.stdout);
    let unknown = cli(&app, &["webhooks", "replay", "999999"]).await;
    assert_eq!(unknown.code, 1);
}

async fn prune_deletes_finished_orders_and_keeps_failed_ones(db: Db) {
    let app = spawn_app(db).await;
    app.shopify("orders/create", &shopify_order(7041, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid")).await;
    app.shopify("orders/create", &shopify_order(7042, &[(1, COURSE_A, Some("not-an-email"))], None, "paid")).await;
    app.client.post(app.url("/webhooks/shopify")).header("Content-Type", "text/plain").body("hello").send().await.unwrap();
    app.wait_for_order("7041", SHOP, "enrolled").await;
    app.wait_for_order("7042", SHOP, "failed").await;

    let kept = cli(&app, &["prune", "--older-than", "1h"]).await;
    assert_eq!(kept.code, 0, "{}", kept.stderr);
    assert!(kept.stdout.contains("deleted 0 finished order(s) and 0 request(s)"), "{}", kept.stdout);
    let echoed = cli(&app, &["prune", "--older-than", "90d"]).await;
    assert_eq!(echoed.stdout, "deleted 0 finished order(s) and 0 request(s) older than 90d\n", "as written");

    clock_moves_on(2).await;
    let pruned = cli(&app, &["prune", "--older-than", "1ms"]).await;
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    assert!(pruned.stdout.contains("deleted 1 finished order(s) and 2 request(s)"), "{}", pruned.stdout);

    assert!(app.store.find_order("7041", Some(SHOP)).await.is_err(), "the enrolled order is gone");
    let failed = app.store.find_order("7042", Some(SHOP)).await.expect("the failed order stays");
    let detail = app.store.order_detail(failed).await.unwrap();
    assert_eq!(detail.requests.len(), 1);
    assert_eq!(app.store.requests(10).await.unwrap().len(), 1);
}

async fn rejected_and_replay_hide_a_configured_secret_the_reason_quotes(db: Db) {
    let app = spawn_app(db).await;
    // A sender names a shop whose name is one of our secrets: the reason quotes it.
    let domain = format!("{}.myshopify.com", crate::lms::CLIENT_SECRET);
    let refused = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", &domain)
        .header("X-Shopify-Hmac-Sha256", sign(SHOPIFY_KEY, b"{}"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let request = refused.json::<Value>().await.unwrap()["request"].as_i64().unwrap().to_string();

    for args in [
        &["webhooks", "rejected"][..],
        &["webhooks", "rejected", "--json"],
        &["webhooks", "replay", &request],
    ] {
        let ran = cli(&app, args).await;
        assert!(ran.stdout.contains("is not configured"), "{args:?}: {}{}", ran.stdout, ran.stderr);
        assert!(!ran.stdout.contains(crate::lms::CLIENT_SECRET), "{args:?} shows the secret:\n{}", ran.stdout);
        assert!(ran.stdout.contains("[secret hidden]"), "{args:?}: {}", ran.stdout);
    }
}

async fn bad_usage_exits_2(db: Db) {
    let app = spawn_app(db).await;
    for args in [
        &["orders", "list", "--status", "lost"][..],
        &["orders", "list", "--limit", "0"],
        &["orders", "frobnicate"],
        &["orders", "set-email", "first", "ann@example.org"],
        &["orders", "set-email", "1", "not-an-email"],
        &["orders", "retry"],
        &["webhooks", "replay"],
        &["prune"],
        &["prune", "--older-than", "30"],
    ] {
        let ran = cli(&app, args).await;
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(!ran.stderr.is_empty(), "{args:?} says why");
    }
    // A bare number gets the settings' own message.
    let bare = cli(&app, &["prune", "--older-than", "90"]).await;
    assert!(bare.stderr.contains("a duration needs a unit"), "{}", bare.stderr);
}

async fn orders_list_and_show_name_paid_seats_awaiting_an_account(db: Db) {
    use edx_webhooks::domain::{CourseKey, Product};
    let app = spawn_app_with(db, |c| {
        c.products = vec![Product {
            sku: "PY-VERIFIED".into(),
            courses: vec![CourseKey::parse(COURSE_A).unwrap()],
            mode: Some("verified".into()),
        }];
    })
    .await;
    app.lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.no_account.insert("new@example.org".into());
    });
    app.shopify("orders/create", &shopify_order(7101, &[(1, "PY-VERIFIED", Some("new@example.org"))], None, "paid")).await;
    app.shopify("orders/create", &shopify_order(7102, &[(1, COURSE_B, Some("ann@example.org"))], None, "paid")).await;
    app.wait_for_order("7101", SHOP, "awaiting_account").await;
    app.wait_for_order("7102", SHOP, "enrolled").await;

    let waiting = cli(&app, &["orders", "list", "--status", "awaiting_account", "--json"]).await;

    assert_eq!(waiting.code, 0, "{}", waiting.stderr);
    assert_eq!(numbers(&waiting.json()), ["#7101"]);
    let shown = cli(&app, &["orders", "show", "7101", "--shop", SHOP]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("awaiting_account") && shown.stdout.contains("mode: verified"), "{}", shown.stdout);
    let json = cli(&app, &["orders", "show", "7101", "--json"]).await.json();
    assert_eq!(json["items"][0]["mode"], "verified");
}
}
