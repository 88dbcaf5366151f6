//! Logging in: off without a password, wrong passwords, redirects, CSRF, the
//! cookie, argon2 hashes, throttling.

use super::*;

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
