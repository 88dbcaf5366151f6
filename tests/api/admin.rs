//! The admin UI over HTTP: off without a password, the login, redirects,
//! CSRF, and what the pages show.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::helpers::{
    shopify_order, spawn_app, spawn_app_with, Db, TestApp, COURSE_A, COURSE_B, SHOP,
};
use std::time::Duration;

use edx_webhooks::config::Secret;
use edx_webhooks::domain::{CourseKey, Product};

use crate::helpers::wait_until;
use crate::products::invitation_recorded;

const PASSWORD: &str = "operator-pass-2026";

/// A browser without JavaScript: keeps cookies, follows no redirects.
struct Browser {
    client: reqwest::Client,
    base: String,
    cookies: HashMap<String, String>,
    /// `Set-Cookie` values of the last answer, as sent.
    last_set_cookies: Vec<String>,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden field `name`.
    fn hidden(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self.body.find(&marker)? + marker.len();
        let end = self.body[start..].find('"')?;
        Some(self.body[start..start + end].to_owned())
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: app.url(""),
            cookies: HashMap::new(),
            last_set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.last_set_cookies = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for set in &self.last_set_cookies {
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.client.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Fills in and sends the login form.
    async fn log_in(&mut self, password: &str) -> Page {
        let form = self.get("/admin/login").await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let token = form.hidden("csrf").expect("login form has a token");
        self.post("/admin/login", &[("csrf", &token), ("password", password)])
            .await
    }

    /// Logs in and returns the dashboard's CSRF token.
    async fn logged_in(app: &TestApp) -> (Browser, String) {
        let mut browser = Browser::new(app);
        let answer = browser.log_in(PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        assert_eq!(answer.location(), "/admin");
        let dashboard = browser.get("/admin").await;
        assert_eq!(dashboard.status, StatusCode::OK);
        let token = dashboard.hidden("csrf").expect("logout form has the token");
        (browser, token)
    }
}

async fn app_with_admin(db: Db) -> TestApp {
    spawn_app_with(db, |config| {
        config.admin_password = Some(Secret::new(PASSWORD));
    })
    .await
}

on_each_database! {
    async fn admin_is_not_there_without_a_password(db: Db) {
        let app = spawn_app(db).await;
        let mut browser = Browser::new(&app);
        for path in ["/admin", "/admin/", "/admin/login", "/admin/orders", "/admin/orders/1",
                     "/admin/rejected", "/admin/static/admin.css"] {
            assert_eq!(browser.get(path).await.status, StatusCode::NOT_FOUND, "{path}");
        }
        let posted = browser.post("/admin/login", &[("password", "")]).await;
        assert_eq!(posted.status, StatusCode::NOT_FOUND);
    }

    async fn a_wrong_password_is_refused(db: Db) {
        let app = app_with_admin(db).await;
        let mut browser = Browser::new(&app);
        let refused = browser.log_in("not-the-password").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.body.contains("Wrong password"), "{}", refused.body);
        assert!(!browser.cookies.contains_key("edx_webhooks_admin"));
        let empty = browser.log_in("").await;
        assert_eq!(empty.status, StatusCode::UNAUTHORIZED);
        assert_eq!(browser.get("/admin").await.status, StatusCode::SEE_OTHER);
    }

    async fn every_page_but_the_login_redirects_when_logged_out(db: Db) {
        let app = app_with_admin(db).await;
        let mut browser = Browser::new(&app);
        for path in ["/admin", "/admin/orders", "/admin/orders?state=failed&q=ann", "/admin/orders/1",
                     "/admin/rejected", "/admin/rejected?page=2", "/admin/requests/1", "/admin/no-such-page"] {
            let page = browser.get(path).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
            assert!(page.location().starts_with("/admin/login?next=%2Fadmin"), "{path}: {}", page.location());
        }
        for path in ["/admin/logout", "/admin/retry-failed", "/admin/orders/1/retry", "/admin/orders/1/items/1/email"] {
            let page = browser.post(path, &[("csrf", "x")]).await;
            assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
            assert_eq!(page.location(), "/admin/login", "{path}");
        }
        // A made-up session is no session.
        browser.cookies.insert("edx_webhooks_admin".into(), "A".repeat(43));
        assert_eq!(browser.get("/admin").await.status, StatusCode::SEE_OTHER);
        // The login page and the stylesheet need no login.
        assert_eq!(browser.get("/admin/login").await.status, StatusCode::OK);
        let css = browser.get("/admin/static/admin.css").await;
        assert_eq!(css.status, StatusCode::OK);
        assert!(css.headers["content-type"].to_str().unwrap().starts_with("text/css"));
    }

    async fn after_logging_in_the_browser_returns_where_it_was_going(db: Db) {
        let app = app_with_admin(db).await;
        let mut browser = Browser::new(&app);
        let page = browser.get("/admin/orders?state=failed").await;
        let login = browser.get(page.location()).await;
        assert_eq!(login.hidden("next").as_deref(), Some("/admin/orders?state=failed"));
        let token = login.hidden("csrf").unwrap();
        let answer = browser
            .post("/admin/login", &[("csrf", &token), ("password", PASSWORD), ("next", "/admin/orders?state=failed")])
            .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(answer.location(), "/admin/orders?state=failed");
        // Never to another site.
        let login = browser.get("/admin/login").await;
        assert_eq!(login.status, StatusCode::SEE_OTHER, "already logged in");
        let mut other = Browser::new(&app);
        let login = other.get("/admin/login").await;
        let token = login.hidden("csrf").unwrap();
        let answer = other
            .post("/admin/login", &[("csrf", &token), ("password", PASSWORD), ("next", "https://evil.example/")])
            .await;
        assert_eq!(answer.location(), "/admin");
    }

    async fn forms_without_their_csrf_token_are_refused(db: Db) {
        let app = app_with_admin(db).await;
        // The login form: its token is a cookie and a field that must agree.
        let mut browser = Browser::new(&app);
        browser.get("/admin/login").await;
        let refused = browser.post("/admin/login", &[("password", PASSWORD)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(!browser.cookies.contains_key("edx_webhooks_admin"));
        let refused = browser.post("/admin/login", &[("csrf", "forged"), ("password", PASSWORD)]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(!browser.cookies.contains_key("edx_webhooks_admin"));

        let (mut browser, token) = Browser::logged_in(&app).await;
        let forged = "A".repeat(token.len());
        for path in ["/admin/logout", "/admin/retry-failed", "/admin/orders/1/retry", "/admin/orders/1/items/1/email"] {
            let without = browser.post(path, &[("email", "ann@example.com")]).await;
            assert_eq!(without.status, StatusCode::FORBIDDEN, "{path}: {}", without.body);
            let wrong = browser.post(path, &[("csrf", &forged), ("email", "ann@example.com")]).await;
            assert_eq!(wrong.status, StatusCode::FORBIDDEN, "{path}");
        }
        assert_eq!(browser.get("/admin").await.status, StatusCode::OK, "still logged in");
        // Another session's token is no good either.
        let (_, other_token) = Browser::logged_in(&app).await;
        let crossed = browser.post("/admin/logout", &[("csrf", &other_token)]).await;
        assert_eq!(crossed.status, StatusCode::FORBIDDEN);

        let out = browser.post("/admin/logout", &[("csrf", &token)]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(out.location(), "/admin/login");
        assert_eq!(browser.get("/admin").await.status, StatusCode::SEE_OTHER, "logged out");
    }

    async fn the_session_cookie_is_strict(db: Db) {
        let app = spawn_app_with(db, |config| {
            config.admin_password = Some(Secret::new(PASSWORD));
            config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        })
        .await;
        let mut browser = Browser::new(&app);
        browser.log_in(PASSWORD).await;
        let session = browser.last_set_cookies.iter().find(|c| c.starts_with("edx_webhooks_admin=")).unwrap();
        let value = session.split(';').next().unwrap().trim_start_matches("edx_webhooks_admin=");
        assert!(value.len() >= 43, "256 random bits: {session}");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin", "Max-Age=43200"] {
            assert!(session.contains(attribute), "{attribute} in {session}");
        }
        assert!(!session.contains("Secure"), "plain HTTP: {session}");

        // Through a trusted TLS proxy the cookie is Secure.
        let mut tls = Browser::new(&app);
        let form = tls.send(tls.client.get(app.url("/admin/login")).header("X-Forwarded-Proto", "https")).await;
        let token = form.hidden("csrf").unwrap();
        let request = tls
            .client
            .post(app.url("/admin/login"))
            .header("X-Forwarded-Proto", "https")
            .form(&[("csrf", token.as_str()), ("password", PASSWORD)]);
        let answer = tls.send(request).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        let session = tls.last_set_cookies.iter().find(|c| c.starts_with("edx_webhooks_admin=")).unwrap();
        assert!(session.contains("; Secure"), "{session}");

        let page = browser.get("/admin").await;
        for header in ["content-security-policy", "x-frame-options", "x-content-type-options"] {
            assert!(page.headers.contains_key(header), "{header}");
        }
        assert_eq!(page.headers["cache-control"], "no-store");
    }

    async fn an_argon2_hash_works_as_the_password(db: Db) {
        use argon2::PasswordHasher;
        let hash = argon2::Argon2::default().hash_password(PASSWORD.as_bytes()).unwrap().to_string();
        let app = spawn_app_with(db, |config| config.admin_password_hash = Some(Secret::new(hash))).await;
        let mut browser = Browser::new(&app);
        assert_eq!(browser.log_in("wrong").await.status, StatusCode::UNAUTHORIZED);
        let answer = browser.log_in(PASSWORD).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER);
        assert_eq!(browser.get("/admin").await.status, StatusCode::OK);
    }

    async fn a_replay_and_the_request_it_took_in_link_to_each_other(db: Db) {
        let app = spawn_app_with(db, |config| {
            config.admin_password = Some(Secret::new(PASSWORD));
            config.shopify.clear();
        })
        .await;
        let refused = app.shopify("orders/create", &shopify_order(7201, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        assert_eq!(refused.status(), 403);
        let original = refused.json::<serde_json::Value>().await.unwrap()["request"].as_i64().unwrap();
        // The operator fixes the shop's settings and replays it.
        let mut fixed = edx_webhooks::config::Config::defaults();
        fixed.shopify = vec![edx_webhooks::config::ShopifyShop { domain: SHOP.into(), api_key: Some(Secret::new(crate::helpers::SHOPIFY_KEY)), api: None }];
        let replayed = edx_webhooks::operator::replay(&app.store, &fixed, original).await.unwrap();
        let replay = replayed.verdict.request_id.expect("a replayed delivery is stored");
        assert_eq!(replayed.verdict.http_status, 200);

        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/requests/{replay}")).await;
        let text = visible_text(&page.body);
        assert!(text.contains(&format!("a replay of request {original}")), "{text}");
        assert!(page.body.contains(&format!("href=\"/admin/requests/{original}\"")), "{}", page.body);
        let page = browser.get(&format!("/admin/requests/{original}")).await;
        let text = visible_text(&page.body);
        assert!(text.contains(&format!("Replayed latest as request {replay}")), "{text}");
        assert!(text.contains(&format!("Resolved taken in by request {replay}")), "{text}");
        let order_page = browser.get(&format!("/admin/orders/{}", order_id(&app, "7201").await)).await;
        assert!(visible_text(&order_page.body).contains(&format!("a replay of request {original}")));

        let list = visible_text(&browser.get("/admin/rejected").await.body);
        assert!(list.contains(&format!("resolved by request {replay}")), "{list}");
        let unresolved = visible_text(&browser.get("/admin/rejected?unresolved=1").await.body);
        assert!(unresolved.contains("No request has been rejected") || !unresolved.contains("resolved by"), "{unresolved}");
    }

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

    async fn the_hash_from_hash_password_logs_in(db: Db) {
        use tokio::io::AsyncWriteExt;
        // Spaces and `$` signs, as in a typical passphrase.
        let password = "correct $horse battery 42";
        let dir = tempfile::tempdir().unwrap();
        let mut command = crate::service::command_with(&["hash-password"], dir.path(), &[]);
        command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(format!("{password}\n").as_bytes()).await.unwrap();
        drop(stdin);
        let output = tokio::time::timeout(crate::service::START_DEADLINE, child.wait_with_output())
            .await
            .expect("the command ends")
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert!(!stdout.contains(password) && !stderr.contains(password), "the password printed");
        let hash = stdout.trim().to_owned();
        assert!(hash.starts_with("$argon2id$"), "{stdout}");

        let app = spawn_app_with(db, |config| config.admin_password_hash = Some(Secret::new(hash))).await;
        let mut browser = Browser::new(&app);
        assert_eq!(browser.log_in("correct").await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(browser.log_in(password).await.status, StatusCode::SEE_OTHER);
        assert_eq!(browser.get("/admin").await.status, StatusCode::OK);
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
}

/// The page's text without tags, whitespace collapsed.
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    unescaped(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// HTML's character references replaced by the characters.
fn unescaped(html: &str) -> String {
    [
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&#60;", "<"),
        ("&#62;", ">"),
        ("&quot;", "\""),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(html.to_owned(), |text, (entity, c)| text.replace(entity, c))
}

/// A Shopify delivery with extra headers, as a proxy or a shop might add.
async fn shopify_with_headers(app: &TestApp, body: &serde_json::Value, extra: &[(&str, &str)]) {
    let raw = serde_json::to_vec(body).unwrap();
    let mut request = app
        .client
        .post(app.url("/webhooks/shopify"))
        .header("Content-Type", "application/json")
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Shop-Domain", SHOP)
        .header(
            "X-Shopify-Hmac-Sha256",
            crate::helpers::sign(crate::helpers::SHOPIFY_KEY, &raw),
        );
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    assert_eq!(request.body(raw).send().await.unwrap().status(), 200);
}

async fn order_id(app: &TestApp, number: &str) -> i64 {
    app.store.find_order(number, Some(SHOP)).await.unwrap()
}

on_each_database! {
    async fn an_order_page_shows_items_attempts_and_webhooks_without_secrets(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
        let mut order = shopify_order(7101, &[(1, COURSE_A, Some("ann@example.com")), (2, COURSE_B, Some("bob@example.com"))], Some("buyer@example.com"), "paid");
        // A shop would never send these; if one did, the page still must not show them.
        order["note"] = serde_json::json!(format!("<b>bold</b> {} {}", crate::helpers::SHOPIFY_KEY, crate::lms::CLIENT_SECRET));
        shopify_with_headers(&app, &order, &[("Authorization", "Basic c2VjcmV0LXVzZXI6cGFzcw==")]).await;
        app.wait_for_order("7101", SHOP, "failed").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/orders/{}", order_id(&app, "7101").await)).await;
        assert_eq!(page.status, StatusCode::OK);
        let text = visible_text(&page.body);
        for shown in ["Order #7101", "ann@example.com", "bob@example.com", COURSE_A, COURSE_B,
                      "Course not found", "x-shopify-topic", "orders/create", "\"financial_status\": \"paid\"",
                      "Retry failed items", "authorization [hidden]"] {
            assert!(text.contains(shown), "{shown} in {text}");
        }
        for hidden in ["c2VjcmV0LXVzZXI6cGFzcw", crate::helpers::SHOPIFY_KEY, crate::lms::CLIENT_SECRET, "<b>bold"] {
            assert!(!page.body.contains(hidden), "{hidden} shown");
        }
        assert!(page.body.contains("&#60;b&#62;bold") || page.body.contains("&lt;b&gt;bold"), "escaped");
    }

    async fn an_order_page_shows_the_body_byte_for_byte_beside_its_pretty_print(db: Db) {
        let app = app_with_admin(db).await;
        let raw = crate::helpers::unsorted_shopify_body(7102);
        let token = ("X-Shopify-Access-Token", "shpat_token_s3cret");
        assert_eq!(app.shopify_raw(raw.as_bytes(), &[token]).await.status(), 200);
        app.wait_for_order("7102", SHOP, "enrolled").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/orders/{}", order_id(&app, "7102").await)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(unescaped(&page.body).contains(&raw), "the raw body in {}", page.body);
        assert!(visible_text(&page.body).contains("\"zeta\": \"last first\""), "pretty-printed too");
        assert!(!page.body.contains(token.1), "the token shown");
    }

    async fn orders_are_found_by_number_email_and_course_and_filtered(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
        app.shopify("orders/create", &shopify_order(7201, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7202, &[(1, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.woocommerce("order.created", &crate::helpers::woo_order(7203, &[(1, COURSE_A, None)], "carol@example.com", true)).await;
        app.wait_for_order("7201", SHOP, "enrolled").await;
        app.wait_for_order("7202", SHOP, "failed").await;
        app.wait_for_order("7203", crate::helpers::WOO_SOURCE, "enrolled").await;
        let (mut browser, _) = Browser::logged_in(&app).await;
        let listed = |page: &Page| {
            ["#7201", "#7202", "#7203"].into_iter().filter(|n| page.body.contains(&format!(">{n}<"))).collect::<Vec<_>>()
        };
        let all = browser.get("/admin/orders").await;
        assert_eq!(listed(&all), ["#7201", "#7202", "#7203"]);
        let text = visible_text(&all.body);
        assert!(text.find("#7203").unwrap() < text.find("#7201").unwrap(), "newest first");
        for (query, expected) in [
            ("q=7202", vec!["#7202"]),
            ("q=%237201", vec!["#7201"]),
            ("q=BOB%40example", vec!["#7202"]),
            ("q=carol", vec!["#7203"]),
            ("q=course-v1%3AOrg%2BCourseB", vec!["#7202"]),
            ("q=example.com", vec![]),
            ("state=failed", vec!["#7202"]),
            ("state=enrolled", vec!["#7201", "#7203"]),
            ("shop=https%3A%2F%2Fshop.example.com%2F", vec!["#7203"]),
            ("shop=test-shop.myshopify.com&state=enrolled", vec!["#7201"]),
            ("q=nobody", vec![]),
        ] {
            let page = browser.get(&format!("/admin/orders?{query}")).await;
            assert_eq!(page.status, StatusCode::OK, "{query}");
            assert_eq!(listed(&page), expected, "{query}");
        }
        let unknown = browser.get("/admin/orders?state=lost").await;
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        // What was typed comes back escaped.
        let page = browser.get("/admin/orders?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
        assert!(!page.body.contains("<script>"), "{}", page.body);
    }

    async fn orders_are_paginated(db: Db) {
        let app = app_with_admin(db).await;
        for n in 0..27u64 {
            app.shopify("orders/create", &shopify_order(7300 + n, &[(1, COURSE_A, Some("ann@example.com"))], None, "paid")).await;
        }
        let (mut browser, _) = Browser::logged_in(&app).await;
        let first = browser.get("/admin/orders").await;
        let text = visible_text(&first.body);
        assert!(text.contains("1–25 of 27"), "{text}");
        assert!(text.contains("#7326") && !text.contains("#7300"), "{text}");
        assert!(first.body.contains("href=\"/admin/orders?page=2\""), "{}", first.body);
        let second = browser.get("/admin/orders?page=2").await;
        let text = visible_text(&second.body);
        assert!(text.contains("26–27 of 27"), "{text}");
        assert!(text.contains("#7300") && text.contains("#7301") && !text.contains("#7302"), "{text}");
        assert!(second.body.contains("href=\"/admin/orders?page=1\""));
        let filtered = browser.get("/admin/orders?q=ann&page=2").await;
        assert!(filtered.body.contains("href=\"/admin/orders?q=ann&#38;page=1\"") || filtered.body.contains("href=\"/admin/orders?q=ann&amp;page=1\""), "filters kept: {}", filtered.body);
    }

    async fn the_retry_buttons_queue_failed_items_again(db: Db) {
        let app = app_with_admin(db).await;
        app.lms.with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
        app.shopify("orders/create", &shopify_order(7401, &[(1, COURSE_B, Some("ann@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7402, &[(1, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.wait_for_order("7401", SHOP, "failed").await;
        app.wait_for_order("7402", SHOP, "failed").await;
        app.lms.with(|lms| lms.unknown_courses.remove(COURSE_B));
        let (mut browser, token) = Browser::logged_in(&app).await;

        let id = order_id(&app, "7401").await;
        let retried = browser.post(&format!("/admin/orders/{id}/retry"), &[("csrf", &token)]).await;
        assert_eq!(retried.status, StatusCode::SEE_OTHER);
        assert_eq!(retried.location(), format!("/admin/orders/{id}?retried=1"));
        app.wait_for_order("7401", SHOP, "enrolled").await;
        assert_eq!(app.order("7402", SHOP).await.state, "failed", "only that order");
        let page = browser.get(retried.location()).await;
        assert!(visible_text(&page.body).contains("1 failed item is pending again"));

        let missing = browser.post("/admin/orders/999999/retry", &[("csrf", &token)]).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);

        let all = browser.post("/admin/retry-failed", &[("csrf", &token), ("from", "orders")]).await;
        assert_eq!(all.status, StatusCode::SEE_OTHER);
        assert_eq!(all.location(), "/admin/orders?retried=1");
        app.wait_for_order("7402", SHOP, "enrolled").await;
        assert!(app.lms.is_enrolled(COURSE_B, "bob@example.com"));
    }

    async fn a_mistyped_learner_email_is_corrected_on_the_order_page(db: Db) {
        let app = app_with_admin(db).await;
        app.shopify("orders/create", &shopify_order(7501, &[(1, COURSE_A, Some("ann@example")), (2, COURSE_B, Some("bob@example.com"))], None, "paid")).await;
        app.shopify("orders/create", &shopify_order(7502, &[(1, COURSE_A, Some("carol@example.com"))], None, "paid")).await;
        let view = app.wait_for_order("7501", SHOP, "failed").await;
        app.wait_for_order("7502", SHOP, "enrolled").await;
        let failed = view.items.iter().find(|i| i.state == "failed").unwrap().id;
        let enrolled = view.items.iter().find(|i| i.state == "enrolled").unwrap().id;
        let other = app.order("7502", SHOP).await.items[0].id;
        let (mut browser, token) = Browser::logged_in(&app).await;
        let page = browser.get(&format!("/admin/orders/{}", view.id)).await;
        assert!(page.body.contains(&format!("/admin/orders/{}/items/{failed}/email", view.id)));
        assert!(!page.body.contains(&format!("/items/{enrolled}/email")), "only failed items are editable");

        let path = format!("/admin/orders/{}/items/{failed}/email", view.id);
        let refused = browser.post(&path, &[("csrf", &token), ("email", "still wrong")]).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(visible_text(&refused.body).contains("is not an email address"), "{}", refused.body);
        assert!(refused.body.contains("value=\"still wrong\""), "what was typed stays");
        let not_failed = browser.post(&format!("/admin/orders/{}/items/{enrolled}/email", view.id), &[("csrf", &token), ("email", "x@example.com")]).await;
        assert_eq!(not_failed.status, StatusCode::UNPROCESSABLE_ENTITY);
        let elsewhere = browser.post(&format!("/admin/orders/{}/items/{other}/email", view.id), &[("csrf", &token), ("email", "x@example.com")]).await;
        assert_eq!(elsewhere.status, StatusCode::NOT_FOUND, "item of another order");

        let fixed = browser.post(&path, &[("csrf", &token), ("email", " ann@example.com ")]).await;
        assert_eq!(fixed.status, StatusCode::SEE_OTHER);
        assert_eq!(fixed.location(), format!("/admin/orders/{}?email_changed=true", view.id));
        app.wait_for_order("7501", SHOP, "enrolled").await;
        assert!(app.lms.is_enrolled(COURSE_A, "ann@example.com"));
    }

    async fn rejected_requests_are_listed_with_their_reasons(db: Db) {
        let app = app_with_admin(db).await;
        let body = serde_json::to_vec(&shopify_order(7601, &[(1, COURSE_A, None)], Some("a@example.com"), "paid")).unwrap();
        for n in 0..52 {
            let (domain, key) = if n == 0 { ("unknown.myshopify.com", "k") } else { (SHOP, "wrong-key") };
            app.client
                .post(app.url("/webhooks/shopify"))
                .header("Content-Type", "application/json")
                .header("X-Shopify-Topic", "orders/create")
                .header("X-Shopify-Shop-Domain", domain)
                .header("X-Shopify-Hmac-Sha256", crate::helpers::sign(key, &body))
                .body(body.clone())
                .send()
                .await
                .unwrap();
        }
        let (mut browser, _) = Browser::logged_in(&app).await;
        let first = browser.get("/admin/rejected").await;
        let text = visible_text(&first.body);
        assert!(text.contains("1–50 of 52"), "{text}");
        assert!(text.contains("signature does not match the body"), "{text}");
        assert!(!text.contains("unknown.myshopify.com is not configured"), "oldest on page 2");
        let second = browser.get("/admin/rejected?page=2").await;
        let text = visible_text(&second.body);
        assert!(text.contains("51–52 of 52"), "{text}");
        assert!(text.contains("shop unknown.myshopify.com is not configured"), "{text}");
        let link = second.body.split("href=\"/admin/requests/").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let request = browser.get(&format!("/admin/requests/{link}")).await;
        assert_eq!(request.status, StatusCode::OK);
        assert!(visible_text(&request.body).contains("x-shopify-hmac-sha256"));
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
    async fn the_order_page_asks_for_an_immediate_look_at_a_learners_account(db: Db) {
        let app = spawn_app_with(db, |config| {
            config.admin_password = Some(Secret::new(PASSWORD));
            config.products = vec![Product {
                sku: "PY-VERIFIED".into(),
                courses: vec![CourseKey::parse(COURSE_A).unwrap()],
                mode: Some("verified".into()),
            }];
            // The next look on its own would be an hour away.
            config.retry.first_delay = Duration::from_secs(3600);
            config.retry.max_delay = Duration::from_secs(3600);
            config.account_recheck_max = Duration::from_secs(3600);
        })
        .await;
        app.lms.with(|s| {
            s.offer(COURSE_A, &["audit", "verified"]);
            s.no_account.insert("new@example.org".into());
        });
        app.shopify("orders/create", &shopify_order(7501, &[(1, "PY-VERIFIED", Some("new@example.org"))], None, "paid")).await;
        let invited = wait_until(Duration::from_secs(10), || async { invitation_recorded(&app, "7501").await }).await;
        assert!(invited);
        let (mut browser, token) = Browser::logged_in(&app).await;
        let id = order_id(&app, "7501").await;

        let page = browser.get(&format!("/admin/orders/{id}")).await;

        let text = visible_text(&page.body);
        assert!(text.contains("awaiting account") && text.contains("verified seat"), "{text}");
        assert!(text.contains("Check for the learner's account now"), "{text}");
        app.lms.with(|s| s.register("new@example.org"));
        let checked = browser.post(&format!("/admin/orders/{id}/retry"), &[("csrf", &token)]).await;
        assert_eq!(checked.status, StatusCode::SEE_OTHER);
        app.wait_for_order("7501", SHOP, "enrolled").await;
        assert_eq!(app.lms.seat_of(COURSE_A, "new@example.org").unwrap().mode, "verified");
    }

}

on_each_database! {
    async fn sessions_are_shared_by_processes_and_kept_across_restarts(db: Db) {
        let lms = crate::lms::FakeLms::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::helpers::test_config(db, &lms, &dir).await;
        config.admin_password = Some(Secret::new(PASSWORD));
        let second_config = config.clone();
        let first = crate::helpers::spawn_with_config(config, lms, dir).await;
        let (mut browser, _) = Browser::logged_in(&first).await;

        // Another process on the same database knows the session.
        let second = crate::helpers::spawn_with_config(
            second_config,
            crate::lms::FakeLms::start().await,
            tempfile::tempdir().unwrap(),
        )
        .await;
        browser.base = second.url("");
        assert_eq!(browser.get("/admin").await.status, StatusCode::OK);

        // Logging out there ends it everywhere.
        let token = browser.get("/admin").await.hidden("csrf").unwrap();
        browser.post("/admin/logout", &[("csrf", &token)]).await;
        browser.base = first.url("");
        let session = (
            "edx_webhooks_admin".to_owned(),
            browser.cookies.get("edx_webhooks_admin").cloned(),
        );
        assert_eq!(session.1, None, "logout removes the cookie");
        assert_eq!(browser.get("/admin").await.status, StatusCode::SEE_OTHER);
    }

    async fn a_login_replaces_the_session_the_browser_had(db: Db) {
        let app = app_with_admin(db).await;
        let (browser, _) = Browser::logged_in(&app).await;
        let before = browser.cookies["edx_webhooks_admin"].clone();
        // The same browser posts the login form again, its session cookie along.
        let mut again = Browser::new(&app);
        again.cookies.insert("edx_webhooks_admin".into(), before.clone());
        let form = Browser::new(&app).get("/admin/login").await;
        let token = form.hidden("csrf").unwrap();
        again.cookies.insert("edx_webhooks_login".into(), token.clone());
        let logged = again
            .post("/admin/login", &[("csrf", &token), ("password", PASSWORD)])
            .await;
        assert_eq!(logged.status, StatusCode::SEE_OTHER, "{}", logged.body);
        let after = again.cookies["edx_webhooks_admin"].clone();
        assert_ne!(after, before, "a new session id at login");
        // The old id is worth nothing now; the new one works.
        let mut old = Browser::new(&app);
        old.cookies.insert("edx_webhooks_admin".into(), before);
        assert_eq!(old.get("/admin").await.status, StatusCode::SEE_OTHER);
        assert_eq!(again.get("/admin").await.status, StatusCode::OK);
    }

    async fn expired_sessions_log_no_one_in(db: Db) {
        let app = app_with_admin(db).await;
        app.store
            .open_admin_session("expired-hash", "csrf", std::time::Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(app.store.admin_session("expired-hash").await.unwrap(), None);
        app.store
            .open_admin_session("live-hash", "csrf", std::time::Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            app.store.admin_session("live-hash").await.unwrap().as_deref(),
            Some("csrf")
        );
    }
}

/// Wrong passwords from one address do not slow another address's login.
#[tokio::test]
async fn logins_are_throttled_per_address() {
    let app = spawn_app_with(Db::Sqlite, |config| {
        config.admin_password = Some(Secret::new(PASSWORD));
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let form = Browser::new(&app).get("/admin/login").await;
    let token = form.hidden("csrf").unwrap();
    let attempt = |from: &'static str, password: &'static str| {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let url = app.url("/admin/login");
        let token = token.clone();
        async move {
            client
                .post(url)
                .header("X-Forwarded-For", from)
                .header("Cookie", format!("edx_webhooks_login={token}"))
                .form(&[("csrf", token.as_str()), ("password", password)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // One address guesses five times at once: its tries take turns, a
    // second each.
    let guesses: Vec<_> = (0..5)
        .map(|_| tokio::spawn(attempt("203.0.113.9", "guess")))
        .collect();
    let operator = attempt("198.51.100.1", PASSWORD).await;
    assert_eq!(operator, StatusCode::SEE_OTHER);
    let still_guessing = guesses.iter().filter(|g| !g.is_finished()).count();
    assert!(
        still_guessing >= 3,
        "the operator waited for the guesser's turns ({still_guessing} still guessing)"
    );
    for guess in guesses {
        assert_eq!(guess.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
}
