//! Sessions: shared by processes, kept across restarts, replaced at a login, expired.

use super::*;

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
