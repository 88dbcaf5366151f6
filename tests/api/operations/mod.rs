//! Operating the service: `edx-webhooks check`, `/metrics`, `/readyz`, and
//! the log lines of a request and of a claim; a file a topic, the helpers here.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use edx_webhooks::store::Store;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::ChildStderr;

use crate::helpers::*;
use crate::lms::{FakeLms, CLIENT_SECRET};
use crate::service::*;

mod check;
mod logs;
mod probes;

/// Runs `edx-webhooks check` to its end: exit code and what it printed.
async fn check(dir: &Path, env: &[(&'static str, String)]) -> (Option<i32>, String, String) {
    let mut command = command_with(&["check"], dir, env);
    command.stdout(Stdio::piped());
    let output = tokio::time::timeout(START_DEADLINE, command.output())
        .await
        .expect("check finishes by itself")
        .expect("the binary runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The line of `check`'s output about `subject`.
fn line_about<'a>(stdout: &'a str, subject: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.contains(subject))
        .unwrap_or_else(|| panic!("no line about {subject}:\n{stdout}"))
}

/// A port on which nothing listens.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// `/metrics` as series (name with labels, as written) → value.
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    scrape_url(&app.url("/metrics")).await
}

async fn scrape_url(url: &str) -> HashMap<String, f64> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            let value = value.parse().unwrap_or_else(|_| panic!("{l:?}"));
            (series.to_owned(), value)
        })
        .collect()
}

fn series(metrics: &HashMap<String, f64>, name: &str) -> f64 {
    metrics.get(name).copied().unwrap_or(0.0)
}

/// A span's field in a JSON log line, from the current span or any around it.
fn span_field<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line.get("span").and_then(|s| s.get(name)).or_else(|| {
        line.get("spans")?
            .as_array()?
            .iter()
            .rev()
            .find_map(|s| s.get(name))
    })
}

/// The child's next line on stderr, which must be plain text (it goes to a pipe).
async fn next_plain_line(lines: &mut Lines<BufReader<ChildStderr>>) -> String {
    let line = tokio::time::timeout(START_DEADLINE, lines.next_line())
        .await
        .expect("a log line in time")
        .unwrap()
        .expect("the service is running");
    assert!(
        !line.contains('\u{1b}'),
        "colour codes in logs that go to a pipe: {line:?}"
    );
    line
}
