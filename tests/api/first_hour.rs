//! What a new operator meets first: start-up warnings, the readiness probe,
//! the logs of a long LMS outage, refused settings and clear errors.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{fresh_database, shopify_order, wait_until, Db, COURSE_A};
use crate::lms::FakeLms;
use crate::service::*;

fn level(line: &Value) -> &str {
    line.get("level").and_then(Value::as_str).unwrap_or("")
}

fn warnings(service: &Service) -> Vec<String> {
    service
        .log_lines()
        .iter()
        .filter(|l| level(l) == "WARN")
        .filter_map(|l| message(l).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn with_nothing_configured_it_warns_at_start_and_says_so_on_readyz_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let env = vec![
        ("EDX_WEBHOOKS_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "EDX_WEBHOOKS_DATABASE_URL",
            fresh_database(Db::Sqlite, &dir).await,
        ),
        ("EDX_WEBHOOKS_LOG_FORMAT", "json".to_owned()),
    ];
    let service = Service::start(dir.path(), &env).await;
    let said = warnings(&service);
    assert!(
        said.iter().any(|w| w.contains("no shop is configured")),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|w| w.contains("EDX_WEBHOOKS_OAUTH2_CLIENT_ID")),
        "{said:?}"
    );

    let client = reqwest::Client::new();
    let ready = client.get(service.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "deliveries can be taken");
    let body = ready.text().await.unwrap();
    assert!(body.starts_with("ready\n"), "{body}");
    assert!(
        body.contains("settings: shops: no shop is configured"),
        "{body}"
    );
    assert!(body.contains("settings: LMS OAuth2 client: "), "{body}");
    let status = client.get(service.url("/status")).send().await.unwrap();
    assert_eq!(status.status(), 503);
    assert!(status
        .text()
        .await
        .unwrap()
        .starts_with("attention needed\n"));
    let metrics = client.get(service.url("/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "edx_webhooks_settings_warnings 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_misspelled_setting_is_named_with_the_closest_known_one() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "EDX_WEBHOOKS_SHOPIFY_APIKEY=x\n").unwrap();
    let env = with_setting(
        service_env(&lms, &fresh_database(Db::Sqlite, &dir).await),
        "EDX_WEBHOOKS_MAX_ATEMPTS",
        "3",
    );
    let service = Service::start(dir.path(), &env).await;
    let said = warnings(&service);
    assert!(
        said.iter().any(|w| w.contains(
            "environment variable EDX_WEBHOOKS_MAX_ATEMPTS is not a known setting and is \
             ignored; did you mean EDX_WEBHOOKS_MAX_ATTEMPTS?"
        )),
        "{said:?}"
    );
    assert!(
        said.iter()
            .any(|w| w.contains("EDX_WEBHOOKS_SHOPIFY_APIKEY in .env file")
                && w.ends_with("did you mean EDX_WEBHOOKS_SHOPIFY_API_KEY?")),
        "{said:?}"
    );
    // Nothing else is warned about in a complete configuration.
    assert_eq!(said.len(), 2, "{said:?}");
}

/// Every request the LMS's bulk enrollment view received (probes included).
async fn bulk_enroll_requests(lms: &FakeLms) -> usize {
    let received = lms.server.received_requests().await.unwrap_or_default();
    received
        .iter()
        .filter(|r| r.url.path() == "/api/bulk_enroll/v1/bulk_enroll")
        .count()
}

#[tokio::test]
async fn a_long_lms_outage_is_logged_once_and_probes_write_no_error_lines() {
    let lms = FakeLms::start().await;
    lms.with(|s| s.not_staff = true);
    let dir = tempfile::tempdir().unwrap();
    // Probes every 10 ms: a hundred in a second.
    let env = with_setting(
        service_env(&lms, &fresh_database(Db::Sqlite, &dir).await),
        "EDX_WEBHOOKS_RETRY_DELAY",
        "10ms",
    );
    let service = Service::start(dir.path(), &env).await;
    let order = shopify_order(
        7_200_001,
        &[(1, COURSE_A, Some("ann@example.org"))],
        None,
        "paid",
    );
    assert_eq!(deliver(&service, &order).await.status(), 200);

    let lms_ref = &lms;
    let probed = wait_until(Duration::from_secs(20), || async move {
        bulk_enroll_requests(lms_ref).await >= 200
    })
    .await;
    assert!(probed, "the LMS was not probed:\n{}", service.stderr_text());
    // A load balancer's and a monitor's probes meanwhile.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(
            client
                .get(service.url("/readyz"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            client
                .get(service.url("/status"))
                .send()
                .await
                .unwrap()
                .status(),
            503
        );
    }

    let lines = service.log_lines();
    let about_it: Vec<&Value> = lines
        .iter()
        .filter(|l| message(l).is_some_and(|m| m.contains("misconfigured")))
        .collect();
    assert_eq!(
        about_it.len(),
        1,
        "{} requests to the LMS: {about_it:#?}",
        bulk_enroll_requests(&lms).await
    );
    let errors: Vec<&Value> = lines.iter().filter(|l| level(l) == "ERROR").collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let warned = lines.iter().filter(|l| level(l) == "WARN").count();
    assert!(
        warned <= 3,
        "{warned} WARN lines:\n{}",
        service.stderr_text()
    );
}

#[tokio::test]
async fn a_log_level_that_logs_nothing_is_refused() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = with_setting(
        service_env(&lms, &fresh_database(Db::Sqlite, &dir).await),
        "RUST_LOG",
        "verbose",
    );
    let (status, stderr) = run_to_exit(dir.path(), &env).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("RUST_LOG") && stderr.contains("`verbose`"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_sqlite_file_that_cannot_be_opened_is_a_setting_to_fix() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-directory").join("db.sqlite3");
    let env = service_env(&lms, &format!("sqlite://{}", path.display()));
    let (status, stderr) = run_to_exit(dir.path(), &env).await;
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("EDX_WEBHOOKS_DATABASE_URL"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert_eq!(
        stderr.matches("unable to open database file").count(),
        1,
        "said once: {stderr}"
    );
}

#[tokio::test]
async fn an_address_in_use_is_said_once() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let env = with_setting(
        service_env(&lms, &fresh_database(Db::Sqlite, &dir).await),
        "EDX_WEBHOOKS_LISTEN",
        &address,
    );
    let (status, stderr) = run_to_exit(dir.path(), &env).await;
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
}

/// The commands in the fenced `sh` blocks of the README's section `title`.
fn readme_commands(title: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with(title))
        .unwrap_or_else(|| panic!("no section {title:?} in the README"));
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in section.lines() {
        match line.trim() {
            "```sh" => in_block = true,
            "```" => in_block = false,
            command if in_block && !command.is_empty() => {
                // The command, without a trailing comment.
                commands.push(command.split(" #").next().unwrap().trim().to_owned())
            }
            _ => {}
        }
    }
    commands
}

#[test]
fn ci_runs_the_readmes_test_command() {
    let commands = readme_commands("The two commands");
    assert_eq!(commands.len(), 2, "{commands:?}");
    let test_command = &commands[1];
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    let runs: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert!(
        runs.contains(&test_command.as_str()),
        "CI does not run the README's test command {test_command:?}:\n{ci}"
    );
    // And that command runs every suite.
    let script = test_command.trim_start_matches("./");
    let text = std::fs::read_to_string(format!("{}/{script}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(
        text.lines()
            .any(|l| l.trim() == "cargo test -- --include-ignored"),
        "{script} does not run every suite"
    );
}
