//! No secret leaves the service: after a run that used every one of them,
//! none is in the logs, the pages, `/metrics`, the stored attempts, or any
//! command's output.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    fresh_database, shopify_order, sign, wait_until, Db, COURSE_A, SHOP, SHOPIFY_KEY,
};
use crate::lms::{FakeLms, CLIENT_SECRET};
use crate::service::*;

const ADMIN_PASSWORD: &str = "admin-pw-3f9a1c";
const WOO_SOURCE: &str = "https://shop.example.com/";
const WOO_SECRET: &str = "woo-secret-77ad02";
const DB_PASSWORD: &str = "db-pw-5e1b7c";
/// Credentials a sender put in headers of its own: stored, never shown.
const BEARER: &str = "bearer-9c2e44";
const COOKIE: &str = "cookie-1d8f30";
const ACCESS_TOKEN: &str = "shpat-4b7e19";

async fn output_of(args: &[&str], dir: &std::path::Path, env: &[(&'static str, String)]) -> String {
    let mut command = command_with(args, dir, env);
    command.stdout(Stdio::piped());
    let output = tokio::time::timeout(START_DEADLINE, command.output())
        .await
        .expect("the command ends by itself")
        .expect("the binary runs");
    format!(
        "$ edx-webhooks {}\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Logs in to the admin UI; returns the session cookie.
async fn log_in(client: &reqwest::Client, service: &Service) -> String {
    let form = client
        .get(service.url("/admin/login"))
        .send()
        .await
        .unwrap();
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("edx_webhooks_login="))
        .and_then(|v| v.split(';').next())
        .expect("the login form sets its cookie")
        .to_owned();
    let answer = client
        .post(service.url("/admin/login"))
        .header("Cookie", format!("edx_webhooks_login={login_cookie}"))
        .form(&[
            ("csrf", login_cookie.as_str()),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "logged in");
    answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("edx_webhooks_admin="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

on_each_database! {
async fn no_secret_is_shown_logged_or_printed_anywhere(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut url = fresh_database(db, &dir).await;
    if db == Db::Postgres {
        // The test server trusts every connection: any password works.
        url = url.replacen("postgres://postgres@", &format!("postgres://postgres:{DB_PASSWORD}@"), 1);
    }
    let mut env = service_env(&lms, &url);
    env.extend([
        ("RUST_LOG", "debug".to_owned()),
        ("EDX_WEBHOOKS_ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE.to_owned()),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET.to_owned()),
    ]);
    let mut service = Service::start(dir.path(), &env).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // A delivery carrying credentials in headers of its own, enrolled with a token.
    let order = shopify_order(7_400_001, &[(1, COURSE_A, Some("ann@example.org"))], None, "paid");
    let raw = serde_json::to_vec(&order).unwrap();
    let mut request = client
        .post(service.url("/webhooks/shopify"))
        .header("Authorization", format!("Bearer {BEARER}"))
        .header("Cookie", format!("session={COOKIE}"))
        .header("X-Shopify-Access-Token", ACCESS_TOKEN);
    for (name, value) in shopify_headers(&raw) {
        request = request.header(name, value);
    }
    let answer: Value = request.body(raw).send().await.unwrap().json().await.unwrap();
    let delivered = answer["request"].as_i64().expect("stored").to_string();
    let lms_ref = &lms;
    assert!(
        wait_until(Duration::from_secs(15), || async move {
            lms_ref.is_enrolled(COURSE_A, "ann@example.org")
        })
        .await,
        "not enrolled:\n{}",
        service.stderr_text()
    );
    // A WooCommerce delivery, and one refused for its signature.
    let woo = br#"{"id": 55, "status": "processing", "line_items": []}"#;
    let woo_answer = client
        .post(service.url("/webhooks/woocommerce"))
        .header("Content-Type", "application/json")
        .header("X-WC-Webhook-Source", WOO_SOURCE)
        .header("X-WC-Webhook-Topic", "order.created")
        .header("X-WC-Webhook-Signature", sign(WOO_SECRET, woo))
        .body(woo.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(woo_answer.status(), 200);
    let refused: Value = client
        .post(service.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header("X-Shopify-Hmac-Sha256", sign("not-the-key", b"{}"))
        .header("Authorization", format!("Bearer {BEARER}"))
        .body("{}")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refused = refused["request"].as_i64().expect("stored").to_string();

    // Everything an operator can look at.
    let mut seen = String::new();
    let session = log_in(&client, &service).await;
    let order_id = {
        let list = output_of(&["orders", "list", "--json"], dir.path(), &env).await;
        let json = &list[list.find('[').expect("a JSON list")..];
        let json = &json[..=json.rfind(']').unwrap()];
        let orders: Value = serde_json::from_str(json).unwrap();
        seen.push_str(&list);
        orders[0]["id"].as_i64().expect("our id").to_string()
    };
    for page in [
        "/admin".to_owned(),
        "/admin/orders".to_owned(),
        format!("/admin/orders/{order_id}"),
        "/admin/rejected".to_owned(),
        format!("/admin/requests/{delivered}"),
        format!("/admin/requests/{refused}"),
    ] {
        let answer = client
            .get(service.url(&page))
            .header("Cookie", format!("edx_webhooks_admin={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{page}");
        seen.push_str(&answer.text().await.unwrap());
    }
    for path in ["/metrics", "/readyz", "/healthz"] {
        seen.push_str(&client.get(service.url(path)).send().await.unwrap().text().await.unwrap());
    }
    for args in [
        vec!["check"],
        vec!["orders", "show", "7400001", "--shop", SHOP],
        vec!["orders", "show", "7400001", "--shop", SHOP, "--json"],
        vec!["webhooks", "rejected"],
        vec!["webhooks", "rejected", "--json"],
        vec!["webhooks", "replay", &refused],
        vec!["webhooks", "replay", &delivered],
        vec!["orders", "retry", "--failed"],
        vec!["prune", "--older-than", "90d"],
        vec!["migrate"],
    ] {
        seen.push_str(&output_of(&args, dir.path(), &env).await);
    }
    // A bad setting's message names the setting, not the secrets around it.
    let broken = with_setting(env.clone(), "EDX_WEBHOOKS_WORKERS", "many");
    seen.push_str(&output_of(&["serve"], dir.path(), &broken).await);
    service.terminate();
    service.wait_exit(STOP_DEADLINE).await;
    seen.push_str(&service.stderr_text());

    assert!(seen.contains("7400001"), "the outputs were read:\n{seen}");
    for secret in [
        CLIENT_SECRET, SHOPIFY_KEY, WOO_SECRET, ADMIN_PASSWORD, DB_PASSWORD,
        BEARER, COOKIE, ACCESS_TOKEN, "jwt-1", &session,
    ] {
        assert!(!seen.contains(secret), "{secret} was shown:\n{seen}");
    }
}
}
