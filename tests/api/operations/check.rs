//! `edx-webhooks check`: each problem named with its fix, and nothing enrolled.

use super::*;

on_each_database! {
async fn check_passes_against_a_healthy_lms_without_enrolling_anyone(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &url)).await;

    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for subject in [
        "Shopify shop",
        "database",
        "LMS OAuth2 token",
        "LMS bulk enrollment view",
        "global staff",
    ] {
        assert!(line_about(&stdout, subject).starts_with('✓'), "{stdout}");
    }
    assert!(stdout.ends_with("all checks passed\n"), "{stdout}");
    assert!(lms.calls().is_empty(), "check enrolled someone: {:?}", lms.calls());
    assert_eq!(lms.with(|s| s.probes), 1, "one authenticated empty request");
}

async fn check_names_a_disabled_bulk_enrollment_view(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| s.view_disabled = true);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &url)).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let view = line_about(&stdout, "LMS bulk enrollment view");
    assert!(view.starts_with('✗'), "{stdout}");
    assert!(view.contains("404"), "{view}");
    assert!(view.contains("set ENABLE_BULK_ENROLLMENT_VIEW: true"), "{view}");
    assert!(view.contains("lms.yml"), "{view}");
    assert!(line_about(&stdout, "LMS OAuth2 token").starts_with('✓'), "{stdout}");
    assert!(line_about(&stdout, "global staff").starts_with('-'), "{stdout}");
    assert!(stdout.ends_with("1 problem found\n"), "{stdout}");
}

async fn check_names_bad_client_credentials_without_showing_them(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let wrong = "not-the-lms-client-secret";
    let env = with_setting(
        service_env(&lms, &url),
        "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET",
        wrong,
    );
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let token = line_about(&stdout, "LMS OAuth2 token");
    assert!(token.starts_with('✗'), "{stdout}");
    assert!(token.contains("invalid_client"), "{token}");
    assert!(
        token.contains("EDX_WEBHOOKS_OAUTH2_CLIENT_ID") && token.contains("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET"),
        "{token}"
    );
    // The view is still looked at without a token; the staff question needs one.
    assert!(line_about(&stdout, "LMS bulk enrollment view").starts_with('✓'), "{stdout}");
    assert!(line_about(&stdout, "global staff").starts_with('-'), "{stdout}");
    assert!(!stdout.contains(wrong) && !stderr.contains(wrong), "{stdout}\n{stderr}");
}

async fn check_names_the_missing_client_settings(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut env = service_env(&lms, &url);
    env.retain(|(name, _)| *name != "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET");
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let token = line_about(&stdout, "LMS OAuth2 token");
    assert!(token.starts_with('✗'), "{stdout}");
    assert!(token.contains("set EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET"), "{token}");
    assert!(!token.contains("CLIENT_ID"), "the id is set: {token}");
    assert_eq!(lms.with(|s| s.tokens_issued), 0);
}

async fn check_names_a_client_user_that_is_not_staff(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| s.not_staff = true);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &url)).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let staff = line_about(&stdout, "global staff");
    assert!(staff.starts_with('✗'), "{stdout}");
    assert!(staff.contains("403"), "{staff}");
    assert!(
        staff.contains("make the OAuth2 application's user global staff"),
        "{staff}"
    );
    assert!(line_about(&stdout, "LMS OAuth2 token").starts_with('✓'), "{stdout}");
    assert!(line_about(&stdout, "LMS bulk enrollment view").starts_with('✓'), "{stdout}");
    assert!(lms.calls().is_empty());
}

async fn check_names_an_unreachable_lms_by_its_url(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let nowhere = format!("http://127.0.0.1:{}/", closed_port().await);
    let env = with_setting(service_env(&lms, &url), "EDX_WEBHOOKS_LMS_BASE_URL", &nowhere);
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let token = line_about(&stdout, "LMS OAuth2 token");
    assert!(token.starts_with('✗'), "{stdout}");
    assert!(token.contains(&format!("cannot reach the LMS at {nowhere}")), "{token}");
    assert!(token.contains("EDX_WEBHOOKS_LMS_BASE_URL"), "{token}");
    assert!(line_about(&stdout, "LMS bulk enrollment view").starts_with('-'), "{stdout}");
    assert!(line_about(&stdout, "global staff").starts_with('-'), "{stdout}");
    // The database is still looked at.
    assert!(line_about(&stdout, "database").starts_with('✓'), "{stdout}");
}

async fn check_names_a_shop_without_a_secret(db: Db) {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let mut env = service_env(&lms, &url);
    env.retain(|(name, _)| *name != "EDX_WEBHOOKS_SHOPIFY_API_KEY");
    let env = with_setting(env, "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", WOO_SOURCE);
    let env = with_setting(env, "EDX_WEBHOOKS_WOOCOMMERCE_SECRET", WOO_SECRET);
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let shop = line_about(&stdout, &format!("Shopify shop {SHOP}"));
    assert!(shop.starts_with('✗'), "{stdout}");
    assert!(shop.contains("off"), "{shop}");
    assert!(shop.contains("EDX_WEBHOOKS_SHOPIFY_API_KEY"), "{shop}");
    assert!(line_about(&stdout, "WooCommerce shop").starts_with('✓'), "{stdout}");
    assert!(stdout.ends_with("1 problem found\n"), "{stdout}");
    assert!(!stdout.contains(WOO_SECRET), "{stdout}");
}

async fn check_names_a_course_mode_the_lms_does_not_sell(db: Db) {
    let lms = FakeLms::start().await;
    lms.with(|s| {
        s.offer(COURSE_A, &["audit", "verified"]);
        s.offer(COURSE_B, &["audit", "honor"]);
    });
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(db, &dir).await;
    let config = dir.path().join("edx-webhooks.toml");
    std::fs::write(
        &config,
        format!(
            "[[products]]\nsku = \"PAID\"\ncourses = [\"{COURSE_A}\", \"{COURSE_B}\"]\nmode = \"verified\"\n"
        ),
    )
    .unwrap();
    let env = with_setting(
        service_env(&lms, &url),
        "EDX_WEBHOOKS_CONFIG",
        &config.display().to_string(),
    );

    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let sold = line_about(&stdout, &format!("course mode verified of {COURSE_A}"));
    assert!(sold.starts_with('✓'), "{stdout}");
    let missing = line_about(&stdout, &format!("course mode verified of {COURSE_B}"));
    assert!(missing.starts_with('✗'), "{stdout}");
    assert!(missing.contains("it has: audit, honor"), "{missing}");
    assert!(missing.contains("Course Modes"), "names the fix: {missing}");
    assert!(stdout.ends_with("1 problem found\n"), "{stdout}");
    assert!(lms.enrollment_calls().is_empty() && lms.calls().is_empty(), "check enrolled no one");
}
}

#[tokio::test]
async fn check_with_a_bad_setting_exits_2_before_looking_at_anything() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database(Db::Sqlite, &dir).await;
    let env = with_setting(service_env(&lms, &url), "EDX_WEBHOOKS_MAX_ATTEMPTS", "many");
    let (code, stdout, stderr) = check(dir.path(), &env).await;

    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("EDX_WEBHOOKS_MAX_ATTEMPTS"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!dir.path().join(SQLITE_FILE).exists());
    assert_eq!(lms.with(|s| s.tokens_issued), 0);
}

#[tokio::test]
async fn check_names_why_a_database_server_cannot_be_reached_without_its_password() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port().await;
    for (server, password) in [
        (
            format!("postgres://edx:s3cret@127.0.0.1:{port}/edx"),
            "s3cret",
        ),
        (
            format!("mysql://edx:hunter2@127.0.0.1:{port}/edx"),
            "hunter2",
        ),
    ] {
        let (code, stdout, stderr) = check(dir.path(), &service_env(&lms, &server)).await;

        assert_eq!(code, Some(1), "{stdout}\n{stderr}");
        let database = line_about(&stdout, "database");
        assert!(database.starts_with('✗'), "{stdout}");
        // The server's own answer, not the pool's "timed out".
        assert!(database.contains("Connection refused"), "{database}");
        assert!(
            database.contains(&format!("edx:***@127.0.0.1:{port}")),
            "{database}"
        );
        assert!(!stdout.contains(password) && !stderr.contains(password));
    }
}
