//! How long the read paths take: `/metrics`, the admin's pages (logged in
//! with the admin password) and the CLI's `orders list --search`.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, SET_COOKIE};

use crate::fake_lms::FakeLms;
use crate::server::{command, Server};

pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// How many times each path is read; the median and the slowest are printed.
const TIMES: usize = 9;

/// Reads each path `TIMES` times and prints the median and the slowest.
pub async fn print_read_paths(
    server: &Server,
    lms: &FakeLms,
    database_url: &str,
    work: &Path,
    email: &str,
) {
    let session = admin_session(server).await;
    let order = first_order_found(server, &session, email).await;
    let search = format!("/admin/orders?q={}", email.replace('+', "%2B"));
    let order_page = format!("/admin/orders/{order}");
    let paths: [(&str, &str); 5] = [
        ("/metrics scrape", "/metrics"),
        ("admin dashboard", "/admin"),
        ("admin orders list", "/admin/orders"),
        ("admin search by a learner's email", &search),
        ("admin order page", &order_page),
    ];
    for (what, path) in paths {
        let mut times = Vec::with_capacity(TIMES);
        for _ in 0..TIMES {
            let start = Instant::now();
            let response = server
                .client
                .get(format!("{}{path}", server.base))
                .header(COOKIE, format!("edx_webhooks_admin={session}"))
                .send()
                .await
                .expect("the service answers");
            let status = response.status();
            let _ = response.bytes().await;
            assert!(status.is_success(), "{path}: {status}");
            times.push(start.elapsed());
        }
        print_times(what, &mut times);
    }
    let mut times = Vec::with_capacity(TIMES);
    for _ in 0..TIMES {
        let start = Instant::now();
        let out = command(database_url, lms, work, &[])
            .args(["orders", "list", "--search", email])
            .output()
            .await
            .expect("the CLI runs");
        assert!(out.status.success(), "orders list --search failed");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&order.to_string()),
            "orders list --search did not find the order"
        );
        times.push(start.elapsed());
    }
    print_times("`orders list --search` (the whole process)", &mut times);
}

fn print_times(what: &str, times: &mut [Duration]) {
    times.sort();
    println!(
        "  {what}: median {:.1} ms, max {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times.last().unwrap().as_secs_f64() * 1000.0
    );
}

/// Logs in with the admin password: the session cookie's value.
async fn admin_session(server: &Server) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(format!("{}/admin/login", server.base))
        .send()
        .await
        .expect("the login form");
    let login = cookie(&form, "edx_webhooks_login").expect("a login cookie");
    let answer = client
        .post(format!("{}/admin/login", server.base))
        .header(COOKIE, format!("edx_webhooks_login={login}"))
        .form(&[
            ("csrf", login.as_str()),
            ("password", ADMIN_PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .expect("the login");
    cookie(&answer, "edx_webhooks_admin").expect("logged in")
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response.headers().get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let value = v.strip_prefix(name)?.strip_prefix('=')?;
        Some(value.split(';').next()?.to_owned())
    })
}

/// The id of the order the search finds, read from the orders page's link.
async fn first_order_found(server: &Server, session: &str, email: &str) -> i64 {
    let page = server
        .client
        .get(format!("{}/admin/orders?q={}", server.base, email))
        .header(COOKIE, format!("edx_webhooks_admin={session}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let at = page
        .find("/admin/orders/")
        .unwrap_or_else(|| panic!("the search for {email} found no order"));
    page[at + "/admin/orders/".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("an order id")
}
