//! The admin UI over HTTP: off without a password, the login, redirects,
//! CSRF, and what the pages show; a file a topic, the browser they share here.

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

mod dashboard;
mod login;
mod orders;
mod requests;
mod sessions;

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
