//! The admin UI over HTTP: off without a password, the login, redirects,
//! CSRF, and what the pages show.

use std::collections::HashMap;

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::helpers::{
    shopify_order, spawn_app, spawn_app_with, Db, TestApp, COURSE_A, COURSE_B, SHOP,
};
use edx_webhooks::config::Secret;

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
                     "/admin/rejected", "/admin/no-such-page"] {
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
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
