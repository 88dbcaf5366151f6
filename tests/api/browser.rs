//! The admin UI in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), as an operator would use it. Also takes the README's
//! screenshots (docs/*.png).

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use edx_webhooks::config::Secret;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use tempfile::TempDir;

use crate::helpers::{
    shopify_order, sign, spawn_app_with, woo_order, Db, TestApp, COURSE_A, COURSE_B, SHOP,
    WOO_SOURCE,
};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "browser-test-pass";
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;
/// How long the browser may take to see what the service does.
const DEADLINE: Duration = Duration::from_secs(20);

/// chromedriver on a free port, and the Chromium it starts, ended on drop.
struct ChromeDriver {
    child: Child,
    port: u16,
    profile: TempDir,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        if !Path::new(CHROMEDRIVER).exists() {
            panic!(
                "{CHROMEDRIVER} is missing: the browser test needs Chromium and its WebDriver. \
                 Install them with `apt-get install chromium chromium-driver` (CI installs them)."
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                profile.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: dropping it ends Chromium too.
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        let driver = ChromeDriver {
            child,
            port,
            profile,
        };
        let status = format!("http://127.0.0.1:{port}/status");
        let ready = crate::helpers::wait_until(DEADLINE, || async {
            reqwest::get(&status)
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        assert!(ready, "chromedriver did not answer on port {port}");
        driver
    }

    /// A headless Chromium that reaches nothing but this machine.
    async fn open(&self) -> Client {
        let user_data = self.profile.path().join("chromium");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    format!("--window-size={WIDTH},{HEIGHT}"),
                    format!("--user-data-dir={}", user_data.display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        use nix::sys::signal::{killpg, Signal};
        use nix::unistd::Pid;
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// A few orders and refused requests, as a shop's first days would bring.
async fn seed(app: &TestApp) {
    let orders = [
        shopify_order(
            1001,
            &[(11, COURSE_A, None)],
            Some("ann.lee@example.com"),
            "paid",
        ),
        shopify_order(
            1002,
            &[
                (21, COURSE_A, Some("dev.patel@example.org")),
                (22, COURSE_B, Some("carol.diaz@example.com")),
            ],
            Some("carol.diaz@example.com"),
            "paid",
        ),
        shopify_order(1003, &[(31, COURSE_A, None)], Some("ann@example"), "paid"),
        shopify_order(
            1004,
            &[
                (41, COURSE_A, Some("li.wei@example.com")),
                (42, COURSE_A, Some("sam.okafor@example.com")),
                (43, "TSHIRT-M", None),
            ],
            Some("team-lead@example.com"),
            "paid",
        ),
    ];
    for order in &orders {
        assert_eq!(app.shopify("orders/create", order).await.status(), 200);
    }
    let woo = woo_order(
        727,
        &[(71, COURSE_A, Some("maria.rossi@example.it"))],
        "maria.rossi@example.it",
        true,
    );
    assert_eq!(app.woocommerce("order.created", &woo).await.status(), 200);

    // Refused: a wrong signature, an unknown shop, a body that is not JSON.
    let body = serde_json::to_vec(&shopify_order(
        1005,
        &[(51, COURSE_A, None)],
        Some("x@example.com"),
        "paid",
    ))
    .unwrap();
    for (shop, key, content_type) in [
        (SHOP, "not-the-key", "application/json"),
        ("other-shop.myshopify.com", "any", "application/json"),
        (SHOP, crate::helpers::SHOPIFY_KEY, "application/xml"),
    ] {
        app.client
            .post(app.url("/webhooks/shopify"))
            .header("Content-Type", content_type)
            .header("X-Shopify-Topic", "orders/create")
            .header("X-Shopify-Shop-Domain", shop)
            .header("X-Shopify-Hmac-Sha256", sign(key, &body))
            .body(body.clone())
            .send()
            .await
            .unwrap();
    }

    app.wait_for_order("1001", SHOP, "enrolled").await;
    app.wait_for_order("1002", SHOP, "failed").await;
    app.wait_for_order("1003", SHOP, "failed").await;
    app.wait_for_order("1004", SHOP, "enrolled").await;
    app.wait_for_order("727", WOO_SOURCE, "enrolled").await;
}

/// The whole page as a PNG, written to `target/screenshots/NAME`, or to
/// `docs/NAME` (the README's) with `EDX_WEBHOOKS_UPDATE_SCREENSHOTS=1`.
async fn screenshot(browser: &Client, name: &str) {
    // The window is taller than the page's viewport by the browser's frame.
    let sizes = browser
        .execute(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
            vec![],
        )
        .await
        .unwrap();
    let size = |i: usize| sizes[i].as_u64().unwrap_or(0) as u32;
    let height = (size(0) + size(1)).clamp(HEIGHT / 2, 6000);
    browser.set_window_size(WIDTH, height).await.unwrap();
    let png = browser.screenshot().await.unwrap();
    browser.set_window_size(WIDTH, HEIGHT).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "the browser gave no PNG");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var("EDX_WEBHOOKS_UPDATE_SCREENSHOTS").as_deref() {
        Ok("1") => root.join("docs"),
        _ => root.join("target").join("screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), png).unwrap();
}

/// The element `css` names, once the page has it.
async fn element(browser: &Client, css: &str) -> fantoccini::elements::Element {
    match browser
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(found) => found,
        Err(e) => {
            let url = browser.current_url().await.map(|u| u.to_string());
            let source = browser.source().await.unwrap_or_default();
            panic!("no {css} on {url:?}: {e}\n{source}")
        }
    }
}

async fn text_of(browser: &Client, css: &str) -> String {
    element(browser, css).await.text().await.unwrap()
}

/// Clicks what leads to another page, and waits until the browser is there.
async fn click(browser: &Client, css: &str) {
    let before = browser.find(Locator::Css("html")).await.unwrap();
    element(browser, css).await.click().await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    // The old page's root goes stale once the new page has replaced it.
    while before.tag_name().await.is_ok() {
        assert!(Instant::now() < deadline, "clicking {css} led nowhere");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = element(browser, css).await;
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn path_of(browser: &Client) -> String {
    browser.current_url().await.unwrap().path().to_owned()
}

/// Reloads the order page until its state reads `state`.
async fn reload_until_order_is(browser: &Client, state: &str) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let shown = text_of(browser, "#order-state").await;
        if shown == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the order page still says {shown}, not {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        browser.refresh().await.unwrap();
    }
}

/// Searches the order list and opens the one order found.
async fn open_order_found_by(browser: &Client, app: &TestApp, search: &str) {
    browser.goto(&app.url("/admin/orders")).await.unwrap();
    type_into(browser, "#q", search).await;
    click(browser, "form.filters button[type=submit]").await;
    let found = browser
        .find_all(Locator::Css("a.order-link"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "one order for {search}");
    click(browser, "a.order-link").await;
    assert!(path_of(browser).await.starts_with("/admin/orders/"));
}

#[tokio::test]
async fn an_operator_fixes_failed_orders_in_the_browser() {
    let driver = ChromeDriver::start().await;
    let app = spawn_app_with(Db::Sqlite, |config| {
        config.admin_password = Some(Secret::new(PASSWORD));
    })
    .await;
    app.lms
        .with(|lms| lms.unknown_courses.insert(COURSE_B.into()));
    seed(&app).await;
    let browser = driver.open().await;

    // Logged out, the dashboard sends the browser to the login.
    browser.goto(&app.url("/admin")).await.unwrap();
    assert_eq!(path_of(&browser).await, "/admin/login");
    type_into(&browser, "#password", "not-the-password").await;
    click(&browser, "form button[type=submit]").await;
    assert!(text_of(&browser, ".alert-error")
        .await
        .contains("Wrong password"));
    assert_eq!(path_of(&browser).await, "/admin/login");

    type_into(&browser, "#password", PASSWORD).await;
    click(&browser, "form button[type=submit]").await;
    assert_eq!(path_of(&browser).await, "/admin");
    assert_eq!(text_of(&browser, ".stat.is-failed .value").await, "2");
    screenshot(&browser, "dashboard.png").await;

    click(&browser, "nav.tabs a[href='/admin/orders']").await;
    assert_eq!(path_of(&browser).await, "/admin/orders");
    screenshot(&browser, "orders.png").await;

    // An order the LMS refused: "Course not found".
    open_order_found_by(&browser, &app, "carol.diaz@example.com").await;
    assert_eq!(text_of(&browser, "#order-state").await, "failed");
    let page = text_of(&browser, "main").await;
    assert!(page.contains("Course not found"), "{page}");
    screenshot(&browser, "order.png").await;

    // The course now exists in the LMS: retry.
    app.lms.with(|lms| lms.unknown_courses.remove(COURSE_B));
    click(&browser, "form.retry-order button").await;
    assert!(text_of(&browser, ".alert-ok")
        .await
        .contains("pending again"));
    reload_until_order_is(&browser, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_B, "carol.diaz@example.com"));

    // A mistyped learner email: corrected on the page, which queues it again.
    open_order_found_by(&browser, &app, "ann@example").await;
    assert_eq!(text_of(&browser, "#order-state").await, "failed");
    assert!(text_of(&browser, ".reason-text")
        .await
        .contains("ann@example"));
    type_into(
        &browser,
        "form.email-form input[name=email]",
        "ann@example.com",
    )
    .await;
    click(&browser, "form.email-form button").await;
    assert!(text_of(&browser, ".alert-ok")
        .await
        .contains("email was changed"));
    reload_until_order_is(&browser, "enrolled").await;
    assert!(app.lms.is_enrolled(COURSE_A, "ann@example.com"));

    browser.close().await.unwrap();
}
