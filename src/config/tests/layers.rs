//! Layers in order, aliases, and the settings every layer takes.

use std::time::Duration;

use tempfile::TempDir;

use super::*;

#[test]
fn nothing_set_gives_the_defaults() {
    let config = load_env(&[]).unwrap();
    assert_eq!(config, Config::defaults());
    assert_eq!(config.lms.base_url.as_str(), "http://localhost:18000/");
}

#[test]
fn every_setting_from_the_environment() {
    let config = load_env(&[
        ("EDX_WEBHOOKS_LISTEN", "0.0.0.0:9000"),
        ("EDX_WEBHOOKS_DATABASE_URL", "postgresql://u:p@db/wh"),
        ("EDX_WEBHOOKS_LMS_BASE_URL", "https://lms.example.com"),
        ("EDX_WEBHOOKS_OAUTH2_CLIENT_ID", "client"),
        ("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", "client-secret"),
        ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "a.myshopify.com"),
        ("EDX_WEBHOOKS_SHOPIFY_API_KEY", "shopify-key"),
        (
            "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE",
            "https://shop.example.com/",
        ),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", "woo-secret"),
        ("EDX_WEBHOOKS_REQUIRE_PAYMENT", "yes"),
        ("EDX_WEBHOOKS_SKU_PREFIX", "courses/"),
        ("EDX_WEBHOOKS_AUTO_ENROLL", "False"),
        ("EDX_WEBHOOKS_SEND_ENROLLMENT_EMAIL", "0"),
        ("EDX_WEBHOOKS_RETRY_DELAY", "200ms"),
        ("EDX_WEBHOOKS_RETRY_MAX_DELAY", "30d"),
        ("EDX_WEBHOOKS_MAX_ATTEMPTS", "3"),
        ("EDX_WEBHOOKS_BATCH_SIZE", "1000"),
        ("EDX_WEBHOOKS_LMS_RATE_LIMIT", "7"),
        ("EDX_WEBHOOKS_LMS_TIMEOUT", "3m"),
        ("EDX_WEBHOOKS_WORKERS", "1"),
        ("EDX_WEBHOOKS_MAX_BODY", "512KiB"),
        ("EDX_WEBHOOKS_TRUSTED_PROXIES", "10.0.0.1,172.16.0.0/12"),
        ("EDX_WEBHOOKS_ADMIN_PASSWORD", "admin-password"),
        ("EDX_WEBHOOKS_UNENROLL_ON_CANCEL", "TRUE"),
        ("EDX_WEBHOOKS_LOG_FORMAT", "json"),
        ("RUST_LOG", "edx_webhooks=debug"),
    ])
    .unwrap();
    assert_eq!(config.listen, "0.0.0.0:9000".parse().unwrap());
    assert_eq!(config.database_url, "postgres://u:p@db/wh");
    assert_eq!(config.lms.base_url.as_str(), "https://lms.example.com/");
    assert_eq!(config.lms.client_id.as_deref(), Some("client"));
    assert_eq!(config.lms.client_secret, Some(Secret::new("client-secret")));
    assert_eq!(config.lms.sku_prefix, "courses/");
    assert!(!config.lms.auto_enroll && !config.lms.email_students);
    assert_eq!(config.lms.timeout, Duration::from_secs(180));
    assert_eq!((config.lms.rate_limit, config.lms.batch_size), (7, 1000));
    assert_eq!(
        config.shopify,
        [ShopifyShop {
            domain: "a.myshopify.com".into(),
            api_key: Some(Secret::new("shopify-key")),
            api: None,
        }]
    );
    assert_eq!(
        config.woocommerce,
        [WooCommerceShop {
            source: "https://shop.example.com/".into(),
            secret: Some(Secret::new("woo-secret")),
            api: None,
        }]
    );
    assert!(config.require_payment && config.unenroll_on_cancel);
    assert_eq!(
        config.retry,
        RetryPolicy {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(30 * 86400),
            max_attempts: 3,
        }
    );
    assert_eq!((config.workers, config.max_body), (1, 512 * 1024));
    assert_eq!(config.trusted_proxies.len(), 2);
    assert_eq!(config.admin_password, Some(Secret::new("admin-password")));
    assert_eq!(config.log_format, LogFormat::Json);
    assert_eq!(config.log_filter.as_deref(), Some("edx_webhooks=debug"));
}

#[test]
fn the_django_apps_example_env_works_unchanged() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "# Example for defining settings via an env file\n\
         DJANGO_SECRET_KEY='secret'\n\
         DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL='http://localhost:18000'\n\
         DJANGO_WEBHOOK_RECEIVER_EDX_OAUTH2_KEY='key'\n\
         DJANGO_WEBHOOK_RECEIVER_EDX_OAUTH2_SECRET='secret'\n\
         DJANGO_WEBHOOK_RECEIVER_SETTINGS_SHOPIFY_SHOP_DOMAIN='example.com'\n\
         DJANGO_WEBHOOK_RECEIVER_SETTINGS_SHOPIFY_API_KEY='foobar'\n\
         DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_SOURCE='https://example.com'\n\
         DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_SECRET='foobar'\n\
         DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_REQUIRE_PAYMENT=True\n\
         DJANGO_WEBHOOK_RECEIVER_SKU_PREFIX=sku/\n\
         DJANGO_WEBHOOK_RECEIVER_AUTO_ENROLL=false\n\
         DJANGO_WEBHOOK_RECEIVER_SEND_ENROLLMENT_EMAIL=no\n\
         DJANGO_DATABASE_URL=sqlite:////var/lib/wh/db.sqlite3\n\
         DJANGO_LOG_LEVEL='WARNING'\n",
    )
    .unwrap();
    let config = Config::load(&Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(config.lms.client_id.as_deref(), Some("key"));
    assert_eq!(config.lms.client_secret, Some(Secret::new("secret")));
    assert_eq!(config.shopify[0].domain, "example.com");
    assert_eq!(config.shopify[0].api_key, Some(Secret::new("foobar")));
    assert_eq!(config.woocommerce[0].source, "https://example.com");
    assert!(config.require_payment);
    assert_eq!(config.lms.sku_prefix, "sku/");
    assert!(!config.lms.auto_enroll && !config.lms.email_students);
    assert_eq!(config.database_url, "sqlite:///var/lib/wh/db.sqlite3");
    assert_eq!(config.log_filter.as_deref(), Some("warn"));
}

#[test]
fn layers_in_order_file_dotenv_environment_command_line() {
    let dir = TempDir::new().unwrap();
    let toml = dir.path().join("edx-webhooks.toml");
    std::fs::write(
        &toml,
        "listen = \"127.0.0.1:1\"\nworkers = 2\nbatch_size = 3\nmax_attempts = 4\n",
    )
    .unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "EDX_WEBHOOKS_LISTEN=127.0.0.1:2\nEDX_WEBHOOKS_WORKERS=5\nEDX_WEBHOOKS_BATCH_SIZE=6\n",
    )
    .unwrap();
    let mut sources = Sources {
        file: Some(toml),
        dotenv: Some(dotenv),
        env: map(&[
            ("EDX_WEBHOOKS_LISTEN", "127.0.0.1:3"),
            ("EDX_WEBHOOKS_WORKERS", "7"),
        ]),
        overrides: map(&[("EDX_WEBHOOKS_LISTEN", "127.0.0.1:4")]),
    };
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.listen.port(), 4, "command line beats all");
    assert_eq!(config.workers, 7, "environment beats .env");
    assert_eq!(config.lms.batch_size, 6, ".env beats the file");
    assert_eq!(config.retry.max_attempts, 4, "the file beats the defaults");
    assert_eq!(config.lms.rate_limit, 100, "default");

    sources.overrides.clear();
    assert_eq!(Config::load(&sources).unwrap().listen.port(), 3);
    sources.env.clear();
    assert_eq!(Config::load(&sources).unwrap().listen.port(), 2);
    sources.dotenv = None;
    assert_eq!(Config::load(&sources).unwrap().listen.port(), 1);
}

#[test]
fn an_empty_value_does_not_override() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(&dotenv, "EDX_WEBHOOKS_WORKERS=9\n").unwrap();
    let config = Config::load(&Sources {
        dotenv: Some(dotenv),
        env: map(&[
            ("EDX_WEBHOOKS_WORKERS", ""),
            ("EDX_WEBHOOKS_LMS_BASE_URL", ""),
            (
                "DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL",
                "https://lms.example.com",
            ),
            ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", ""),
        ]),
        overrides: map(&[("EDX_WEBHOOKS_WORKERS", "")]),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(config.workers, 9);
    assert_eq!(config.lms.base_url.as_str(), "https://lms.example.com/");
    assert!(config.shopify.is_empty());
}

#[test]
fn our_names_win_over_the_django_names() {
    let config = load_env(&[
        (
            "DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL",
            "https://old.example.com",
        ),
        ("EDX_WEBHOOKS_LMS_BASE_URL", "https://new.example.com"),
        ("DJANGO_LOG_LEVEL", "DEBUG"),
        ("RUST_LOG", "warn"),
        ("DJANGO_DATABASE_URL", "mysql://u:p@old/d"),
        ("EDX_WEBHOOKS_DATABASE_URL", "mysql://u:p@new/d"),
    ])
    .unwrap();
    assert_eq!(config.lms.base_url.host_str(), Some("new.example.com"));
    assert_eq!(config.log_filter.as_deref(), Some("warn"));
    assert_eq!(config.database_url, "mysql://u:p@new/d");
}

#[test]
fn an_alias_in_a_stronger_layer_beats_ours_in_a_weaker_one() {
    let (_file, mut sources) = with_file("lms_base_url = \"https://file.example.com\"");
    sources.env = map(&[(
        "DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL",
        "https://env.example.com",
    )]);
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.lms.base_url.host_str(), Some("env.example.com"));
}
