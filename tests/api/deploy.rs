//! The two commands the deployment files rely on: `settings` (what the Tutor
//! plugin's environment is checked against) and `healthcheck` (Docker's
//! HEALTHCHECK), run as the real binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::service::{command_with, START_DEADLINE};

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str], env: &[(&'static str, String)]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let mut command = command_with(args, dir.path(), env);
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

fn entry<'a>(list: &'a [Value], env: &str) -> &'a Value {
    list.iter()
        .find(|s| s["env"] == env)
        .unwrap_or_else(|| panic!("{env} is listed"))
}

#[tokio::test]
async fn settings_lists_every_name_with_its_aliases_and_no_value() {
    // Valid settings are not needed to list them, and none of their values shows.
    let env = [
        ("EDX_WEBHOOKS_LISTEN", "not an address".to_owned()),
        ("EDX_WEBHOOKS_ADMIN_PASSWORD", "pa55-never-shown".to_owned()),
    ];
    let ran = run(&["settings", "--json"], &env).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(!ran.stdout.contains("pa55-never-shown"));
    let list: Vec<Value> = serde_json::from_str(&ran.stdout).expect("one JSON array");

    let payment = entry(&list, "EDX_WEBHOOKS_REQUIRE_PAYMENT");
    assert_eq!(
        payment["aliases"],
        serde_json::json!(["DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_REQUIRE_PAYMENT"])
    );
    assert_eq!(payment["file_key"], "require_payment");
    assert_eq!(payment["secret"], false);
    let secret = entry(&list, "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET");
    assert_eq!(secret["secret"], true);
    assert_eq!(
        secret["aliases"][0],
        "DJANGO_WEBHOOK_RECEIVER_EDX_OAUTH2_SECRET"
    );
    let shop = entry(&list, "EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN");
    assert_eq!(
        shop["file_key"],
        Value::Null,
        "shops are [[shopify]] tables in the file"
    );
    let database = entry(&list, "EDX_WEBHOOKS_DATABASE_URL");
    let aliases: Vec<&str> = database["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(aliases.contains(&"DJANGO_DATABASE_URL") && aliases.contains(&"DB_MIGRATION_PASS"));
    assert_eq!(entry(&list, "DB_MIGRATION_PASS")["secret"], true);
    for env in [
        "EDX_WEBHOOKS_CONFIG",
        "EDX_WEBHOOKS_LISTEN",
        "EDX_WEBHOOKS_SKU_PREFIX",
        "EDX_WEBHOOKS_AUTO_ENROLL",
        "EDX_WEBHOOKS_SEND_ENROLLMENT_EMAIL",
        "EDX_WEBHOOKS_ADMIN_PASSWORD",
        "EDX_WEBHOOKS_LOG_FORMAT",
        "RUST_LOG",
    ] {
        entry(&list, env);
    }

    let table = run(&["settings"], &[]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("ENVIRONMENT") && lines[0].contains("ALSO ACCEPTED"));
    assert_eq!(
        lines.len(),
        list.len() + 1,
        "a row per setting:\n{}",
        table.stdout
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("EDX_WEBHOOKS_LMS_BASE_URL "))
        .expect("a row for the LMS URL");
    assert!(row.contains("lms_base_url") && row.ends_with("DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL"));
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_running_service() {
    let app = spawn_app(Db::Sqlite).await;
    let ran = run(&["healthcheck", &app.url("/healthz")], &[]).await;
    assert_eq!((ran.code, ran.stderr.as_str()), (0, ""));
    assert!(ran.stdout.contains("200"), "{}", ran.stdout);

    // Without a URL: /healthz on the listen address, 0.0.0.0 probed on loopback.
    let listen = format!("0.0.0.0:{}", app.address.port());
    let ran = run(&["healthcheck"], &[("EDX_WEBHOOKS_LISTEN", listen)]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains(&format!("http://127.0.0.1:{}/healthz", app.address.port())),
        "{}",
        ran.stdout
    );
}

#[tokio::test]
async fn healthcheck_exits_1_when_unhealthy_unreachable_or_slow() {
    let unhealthy = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/healthz"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&unhealthy)
        .await;
    let ran = run(
        &["healthcheck", &format!("{}/healthz", unhealthy.uri())],
        &[],
    )
    .await;
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("answered 503"), "{}", ran.stderr);

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let ran = run(&["healthcheck", &format!("http://{closed}/healthz")], &[]).await;
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("cannot reach"), "{}", ran.stderr);

    // A server that takes the connection and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_address = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let url = format!("http://{silent_address}/healthz");
    let ran = run(&["healthcheck", &url, "--timeout", "300ms"], &[]).await;
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("no answer") && ran.stderr.contains("300ms"),
        "{}",
        ran.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the timeout ends the probe"
    );
    held.abort();

    // Settings it cannot read: 1 as well (Docker reserves 2).
    let ran = run(
        &["healthcheck"],
        &[("EDX_WEBHOOKS_LISTEN", "nowhere".into())],
    )
    .await;
    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("EDX_WEBHOOKS_LISTEN"), "{}", ran.stderr);
}
