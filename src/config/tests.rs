//! `Config::load` end to end: layers, aliases, files, and secrets kept secret.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tempfile::{NamedTempFile, TempDir};

use super::*;

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        env: map(pairs),
        ..Sources::default()
    }
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&env(pairs))
}

fn error_of(pairs: &[(&str, &str)]) -> String {
    load_env(pairs).expect_err("should be refused").to_string()
}

fn file_with(text: &str) -> NamedTempFile {
    let mut file = NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn with_file(text: &str) -> (NamedTempFile, Sources) {
    let file = file_with(text);
    let sources = Sources {
        file: Some(file.path().to_owned()),
        ..Sources::default()
    };
    (file, sources)
}

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

const TUTOR: &[(&str, &str)] = &[
    ("DB_MIGRATION_ENGINE", "django.db.backends.mysql"),
    ("DB_MIGRATION_NAME", "webhook_receiver"),
    ("DB_MIGRATION_USER", "webhook_receiver"),
    ("DB_MIGRATION_PASS", "p@ss/w:rd"),
    ("DB_MIGRATION_HOST", "mysql"),
    ("DB_MIGRATION_PORT", "3306"),
    ("DB_MIGRATION_OPTIONS", "{}"),
];

#[test]
fn tutors_db_migration_settings_make_a_mysql_url() {
    let config = load_env(TUTOR).unwrap();
    assert_eq!(
        config.database_url,
        "mysql://webhook_receiver:p%40ss%2Fw%3Ard@mysql:3306/webhook_receiver"
    );
    let without_port: Vec<_> = TUTOR
        .iter()
        .copied()
        .filter(|(k, _)| *k != "DB_MIGRATION_PORT")
        .collect();
    assert!(load_env(&without_port)
        .unwrap()
        .database_url
        .contains("@mysql/webhook_receiver"));
    let sqlite = load_env(&[
        ("DB_MIGRATION_ENGINE", "django.db.backends.sqlite3"),
        ("DB_MIGRATION_NAME", "/data/wh.sqlite3"),
    ])
    .unwrap();
    assert_eq!(sqlite.database_url, "sqlite:///data/wh.sqlite3");
    let postgres = load_env(&[
        ("DB_MIGRATION_ENGINE", "django.db.backends.postgresql"),
        ("DB_MIGRATION_NAME", "wh"),
        ("DB_MIGRATION_HOST", "pg"),
    ])
    .unwrap();
    assert_eq!(postgres.database_url, "postgres://pg/wh");
}

#[test]
fn database_names_rank_ours_then_django_then_tutor() {
    let mut pairs = TUTOR.to_vec();
    pairs.push(("DJANGO_DATABASE_URL", "postgresql://u:p@pg/d"));
    assert_eq!(
        load_env(&pairs).unwrap().database_url,
        "postgres://u:p@pg/d"
    );
    pairs.push(("EDX_WEBHOOKS_DATABASE_URL", "sqlite://mine.db"));
    assert_eq!(load_env(&pairs).unwrap().database_url, "sqlite://mine.db");
}

#[test]
fn broken_db_migration_settings_are_named() {
    let err = error_of(&[
        ("DB_MIGRATION_NAME", "wh"),
        ("DB_MIGRATION_PASS", "hunter2"),
    ]);
    assert!(
        err.contains("DB_MIGRATION_ENGINE") && !err.contains("hunter2"),
        "{err}"
    );
    let err = error_of(&[("DB_MIGRATION_ENGINE", "django.db.backends.mysql")]);
    assert!(err.contains("DB_MIGRATION_NAME"), "{err}");
    let err = error_of(&[
        ("DB_MIGRATION_ENGINE", "django.db.backends.oracle"),
        ("DB_MIGRATION_NAME", "wh"),
    ]);
    assert!(
        err.contains("DB_MIGRATION_ENGINE") && err.contains("oracle"),
        "{err}"
    );
    let mut bad_port = TUTOR.to_vec();
    bad_port.push(("DB_MIGRATION_PORT", "three"));
    let bad_port: Vec<_> = bad_port
        .into_iter()
        .filter(|(k, v)| *k != "DB_MIGRATION_PORT" || *v == "three")
        .collect();
    let err = error_of(&bad_port);
    assert!(
        err.contains("DB_MIGRATION_PORT") && err.contains("three"),
        "{err}"
    );
}

#[test]
fn bad_values_name_the_setting_and_the_value() {
    let cases = [
        ("EDX_WEBHOOKS_LISTEN", "localhost"),
        ("EDX_WEBHOOKS_DATABASE_URL", "mongodb://db/wh"),
        ("DJANGO_DATABASE_URL", "oracle://db/wh"),
        ("EDX_WEBHOOKS_LMS_BASE_URL", "ftp://lms.example.com"),
        ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "my shop"),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE", "shop.example.com"),
        ("EDX_WEBHOOKS_REQUIRE_PAYMENT", "sometimes"),
        ("DJANGO_WEBHOOK_RECEIVER_AUTO_ENROLL", "perhaps"),
        ("EDX_WEBHOOKS_SEND_ENROLLMENT_EMAIL", "2"),
        ("EDX_WEBHOOKS_RETRY_DELAY", "soon"),
        ("EDX_WEBHOOKS_RETRY_MAX_DELAY", "0s"),
        ("EDX_WEBHOOKS_MAX_ATTEMPTS", "0"),
        ("EDX_WEBHOOKS_BATCH_SIZE", "0"),
        ("EDX_WEBHOOKS_BATCH_SIZE", "1001"),
        ("EDX_WEBHOOKS_LMS_RATE_LIMIT", "0"),
        ("EDX_WEBHOOKS_LMS_TIMEOUT", "30"),
        ("EDX_WEBHOOKS_WORKERS", "0"),
        ("EDX_WEBHOOKS_WORKERS", "-1"),
        ("EDX_WEBHOOKS_MAX_BODY", "5 parsecs"),
        ("EDX_WEBHOOKS_TRUSTED_PROXIES", "10.0.0.1,proxy.local"),
        ("EDX_WEBHOOKS_UNENROLL_ON_CANCEL", "maybe"),
        ("EDX_WEBHOOKS_LOG_FORMAT", "xml"),
        ("RUST_LOG", "edx_webhooks=loud"),
        ("DJANGO_LOG_LEVEL", "edx_webhooks=loud"),
    ];
    for (name, value) in cases {
        let err = error_of(&[(name, value)]);
        let setting = match name {
            "DJANGO_DATABASE_URL" => "EDX_WEBHOOKS_DATABASE_URL",
            "DJANGO_WEBHOOK_RECEIVER_AUTO_ENROLL" => "EDX_WEBHOOKS_AUTO_ENROLL",
            "DJANGO_LOG_LEVEL" => "RUST_LOG",
            other => other,
        };
        assert!(err.contains(setting), "{name}={value}: {err}");
        assert!(err.contains(name), "names the variable as given: {err}");
        assert!(err.contains(value), "{name}={value}: {err}");
    }
}

#[test]
fn a_bare_number_as_a_duration_explains_the_unit() {
    let err = error_of(&[("EDX_WEBHOOKS_LMS_TIMEOUT", "30")]);
    assert!(err.contains("30s"), "{err}");
}

#[test]
fn retry_max_delay_must_not_be_below_the_first_delay() {
    let err = error_of(&[
        ("EDX_WEBHOOKS_RETRY_DELAY", "10m"),
        ("EDX_WEBHOOKS_RETRY_MAX_DELAY", "5m"),
    ]);
    assert!(
        err.contains("EDX_WEBHOOKS_RETRY_MAX_DELAY") && err.contains("5m"),
        "{err}"
    );
    assert!(load_env(&[
        ("EDX_WEBHOOKS_RETRY_DELAY", "5m"),
        ("EDX_WEBHOOKS_RETRY_MAX_DELAY", "5m")
    ])
    .is_ok());
}

const SECRETS: &[(&str, &str)] = &[
    ("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", "oauth-s3cret"),
    ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "a.myshopify.com"),
    ("EDX_WEBHOOKS_SHOPIFY_API_KEY", "shopify-s3cret"),
    (
        "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE",
        "https://shop.example.com",
    ),
    ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", "woo-s3cret"),
    ("EDX_WEBHOOKS_ADMIN_PASSWORD", "admin-s3cret"),
    ("EDX_WEBHOOKS_DATABASE_URL", "mysql://wh:db-s3cret@mysql/wh"),
];

/// `echo -n 'correct horse' | argon2 SALT -id -m 16 -t 2 -p 1 -e`
const ARGON2_HASH: &str =
    "$argon2id$v=19$m=65536,t=2,p=1$elgyUVB6Z21JU25laXptUQ$PzeH1gbYy7wkrrHsQdFBa5xwGTleShSm+CrIXmXDnGI";

#[test]
fn admin_password_hash_must_be_argon2() {
    let config = load_env(&[("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH", ARGON2_HASH)]).unwrap();
    assert!(config.admin_password_hash.is_some());
    for bad in [
        "$argon2id$v=19$hash-s3cret",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$argon2id$v=19$m=65536,t=2,p=1$elgyUVB6Z21JU25laXptUQ",
    ] {
        let err = load_env(&[("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH", bad)]).expect_err(bad);
        assert!(
            err.to_string().contains("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH"),
            "{err}"
        );
    }
}

#[test]
fn an_argon2_hash_in_single_quotes_survives_the_dotenv_file() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        format!("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH='{ARGON2_HASH}'\n"),
    )
    .unwrap();
    let config = Config::load(&Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(config.admin_password_hash, Some(Secret::new(ARGON2_HASH)));
}

#[test]
fn debug_never_shows_a_secret() {
    let config = load_env(SECRETS).unwrap();
    let debug = format!("{config:?} {config:#?}");
    for (_, value) in SECRETS.iter().filter(|(name, _)| {
        name.contains("SECRET") || name.contains("KEY") || name.contains("PASSWORD")
    }) {
        assert!(!debug.contains(value), "{value} in {debug}");
    }
    assert!(!debug.contains("db-s3cret"), "{debug}");
    assert!(debug.contains("a.myshopify.com") && debug.contains("<redacted>"));
    let hashed = load_env(&[("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH", ARGON2_HASH)]).unwrap();
    assert!(!format!("{hashed:?}").contains("PzeH1gbYy7wkrrHsQdFBa5xwGTleShSm"));
}

#[test]
fn errors_never_show_a_secret() {
    let cases: &[&[(&str, &str)]] = &[
        &[("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH", "plain-s3cret")],
        &[("EDX_WEBHOOKS_SHOPIFY_API_KEY", "key-s3cret")],
        &[(
            "DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_SECRET",
            "woo-s3cret",
        )],
        &[(
            "EDX_WEBHOOKS_DATABASE_URL",
            "mongodb://wh:db-s3cret@mongo/wh",
        )],
        &[("DJANGO_DATABASE_URL", "mysql://wh:db-s3cret@/wh")],
        &[
            ("EDX_WEBHOOKS_ADMIN_PASSWORD", "pw-s3cret"),
            ("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH", "$argon2id$x"),
        ],
    ];
    for pairs in cases {
        let err = load_env(pairs).expect_err("should be refused");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(pairs[0].0), "names the setting: {shown}");
    }
}

#[test]
fn config_file_shops_merge_with_the_environments_shop() {
    let (_file, mut sources) = with_file(
        r#"
        [[shopify]]
        shop_domain = "a.myshopify.com"
        api_key = "file-key-a"
        [[shopify]]
        shop_domain = "b.myshopify.com"
        api_key = "file-key-b"
        [[woocommerce]]
        source = "https://shop.example.com/"
        secret = "file-woo"
        "#,
    );
    sources.env = map(&[
        ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "B.myshopify.com"),
        ("EDX_WEBHOOKS_SHOPIFY_API_KEY", "env-key-b"),
        (
            "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE",
            "https://other.example.com",
        ),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", "env-woo"),
    ]);
    let config = Config::load(&sources).unwrap();
    let shopify: Vec<_> = config
        .shopify
        .iter()
        .map(|s| (s.domain.as_str(), s.api_key.as_ref().map(Secret::expose)))
        .collect();
    assert_eq!(
        shopify,
        [
            ("a.myshopify.com", Some("file-key-a")),
            ("b.myshopify.com", Some("env-key-b"))
        ]
    );
    let woo: Vec<_> = config
        .woocommerce
        .iter()
        .map(|s| s.source.as_str())
        .collect();
    assert_eq!(
        woo,
        ["https://shop.example.com/", "https://other.example.com"]
    );

    // The same source with another trailing slash is the same shop.
    sources.env = map(&[
        (
            "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE",
            "https://shop.example.com",
        ),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", "env-woo"),
    ]);
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.woocommerce.len(), 1);
    assert_eq!(config.woocommerce[0].secret, Some(Secret::new("env-woo")));

    // And with the default port written out, as deliveries are matched.
    sources.env = map(&[
        (
            "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE",
            "https://SHOP.example.com:443/",
        ),
        ("EDX_WEBHOOKS_WOOCOMMERCE_SECRET", "env-woo"),
    ]);
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.woocommerce.len(), 1);
}

#[test]
fn a_shop_without_a_key_is_kept_switched_off() {
    let config = load_env(&[
        ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "a.myshopify.com"),
        ("EDX_WEBHOOKS_SHOPIFY_API_KEY", ""),
    ])
    .unwrap();
    assert_eq!(
        config.shopify,
        [ShopifyShop {
            domain: "a.myshopify.com".into(),
            api_key: None,
            api: None,
        }]
    );
    let (_file, sources) = with_file("[[woocommerce]]\nsource = \"https://shop.example.com\"\n");
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.woocommerce[0].secret, None);
    // An environment shop without a key keeps the file's key for that shop.
    let (_file, mut sources) =
        with_file("[[shopify]]\nshop_domain = \"a.myshopify.com\"\napi_key = \"k\"\n");
    sources.env = map(&[("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "a.myshopify.com")]);
    assert_eq!(
        Config::load(&sources).unwrap().shopify[0].api_key,
        Some(Secret::new("k"))
    );
}

#[test]
fn a_key_without_a_shop_is_refused() {
    let err = error_of(&[("EDX_WEBHOOKS_SHOPIFY_API_KEY", "lonely-s3cret")]);
    assert!(
        err.contains("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN") && !err.contains("lonely-s3cret"),
        "{err}"
    );
    let err = error_of(&[(
        "DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_SECRET",
        "lonely-s3cret",
    )]);
    assert!(
        err.contains("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE") && !err.contains("lonely-s3cret"),
        "{err}"
    );
}

#[test]
fn a_shop_twice_in_the_file_is_refused() {
    let (_file, sources) = with_file(
        "[[shopify]]\nshop_domain = \"a.myshopify.com\"\n[[shopify]]\nshop_domain = \"A.myshopify.com\"\n",
    );
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn the_config_file_takes_flat_keys_and_refuses_unknown_ones() {
    let (_file, sources) = with_file(
        r#"
        listen = "0.0.0.0:8090"
        database_url = "sqlite:///var/lib/wh.db"
        lms_base_url = "https://lms.example.com/"
        oauth2_client_id = "id"
        oauth2_client_secret = "secret"
        require_payment = true
        send_enrollment_email = false
        retry_delay = "1m"
        max_attempts = 5
        max_body = "1MB"
        trusted_proxies = ["10.0.0.0/8", "::1"]
        log_level = "INFO"
        "#,
    );
    let config = Config::load(&sources).unwrap();
    assert_eq!(config.listen.port(), 8090);
    assert_eq!(config.database_url, "sqlite:///var/lib/wh.db");
    assert!(config.require_payment && !config.lms.email_students);
    assert_eq!((config.retry.max_attempts, config.max_body), (5, 1_000_000));
    assert_eq!(config.trusted_proxies.len(), 2);
    assert_eq!(config.log_filter.as_deref(), Some("info"));

    let (_file, sources) = with_file("lisen = \"0.0.0.0:8090\"\n");
    let err = Config::load(&sources).unwrap_err();
    assert!(
        matches!(&err, ConfigError::UnknownKey { key, .. } if key == "lisen"),
        "{err}"
    );
    let (_file, sources) = with_file("max_attempts = 0\n");
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(
        err.contains("EDX_WEBHOOKS_MAX_ATTEMPTS") && err.contains("max_attempts"),
        "{err}"
    );
}

#[test]
fn the_config_file_may_be_named_in_dotenv_or_environment() {
    let dir = TempDir::new().unwrap();
    let toml = dir.path().join("wh.toml");
    std::fs::write(&toml, "workers = 11\n").unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(&dotenv, format!("EDX_WEBHOOKS_CONFIG={}\n", toml.display())).unwrap();
    let from_dotenv = Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    };
    assert_eq!(Config::load(&from_dotenv).unwrap().workers, 11);
    let from_env = env(&[("EDX_WEBHOOKS_CONFIG", toml.to_str().unwrap())]);
    assert_eq!(Config::load(&from_env).unwrap().workers, 11);
}

#[test]
fn a_named_config_file_must_exist() {
    let missing = PathBuf::from("/nonexistent/edx-webhooks.toml");
    let err = Config::load(&Sources {
        file: Some(missing.clone()),
        ..Sources::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/edx-webhooks.toml"));
    let err = load_env(&[("EDX_WEBHOOKS_CONFIG", missing.to_str().unwrap())]).unwrap_err();
    assert!(matches!(err, ConfigError::Unreadable { .. }), "{err}");
}

#[test]
fn a_missing_dotenv_is_fine_a_broken_one_is_not() {
    let dir = TempDir::new().unwrap();
    let sources = Sources {
        dotenv: Some(dir.path().join(".env")),
        ..Sources::default()
    };
    assert_eq!(Config::load(&sources).unwrap(), Config::defaults());

    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "EDX_WEBHOOKS_WORKERS=2\nEDX_WEBHOOKS_ADMIN_PASSWORD='unterminated s3cret\n",
    )
    .unwrap();
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(err.contains(".env") && err.contains("line 2"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");

    // A directory cannot be read as a file.
    let unreadable = Sources {
        dotenv: Some(dir.path().to_owned()),
        ..Sources::default()
    };
    assert!(Config::load(&unreadable).is_err());
}

#[test]
fn dotenv_does_not_touch_the_process_environment() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(&dotenv, "EDX_WEBHOOKS_TEST_ONLY_MARKER=1\n").unwrap();
    Config::load(&Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    })
    .unwrap();
    assert!(std::env::var_os("EDX_WEBHOOKS_TEST_ONLY_MARKER").is_none());
}

fn products_of(text: &str) -> Result<Vec<crate::domain::Product>, String> {
    let (_file, sources) = with_file(text);
    Config::load(&sources)
        .map(|c| c.products)
        .map_err(|e| e.to_string())
}

#[test]
fn the_product_table_maps_skus_to_courses_and_modes() {
    let products = products_of(
        r#"
        [[products]]
        sku = "PY-VERIFIED"
        courses = ["course-v1:Org+PY101+2026"]
        mode = "verified"

        [[products]]
        sku = "BUNDLE"
        courses = ["course-v1:Org+A+1", "course-v1:Org+B+1"]
        "#,
    )
    .unwrap();
    assert_eq!(products.len(), 2);
    assert_eq!(products[0].sku, "PY-VERIFIED");
    assert_eq!(products[0].mode.as_deref(), Some("verified"));
    assert_eq!(products[1].courses.len(), 2);
    assert_eq!(products[1].mode, None, "no mode: the course's default");
}

#[test]
fn a_bad_product_table_is_refused_with_what_is_wrong() {
    for (text, expected) in [
        (
            "[[products]]\nsku = \"A\"\ncourses = [\"course-v1:a+b+c\"]\nprice = 5",
            "unknown key `products.price`",
        ),
        (
            "[[products]]\nsku = \"A\"\ncourses = [\"not-a-course\"]",
            "not a course key",
        ),
        (
            "[[products]]\nsku = \"A\"\ncourses = [\"course-v1:a+b+c\"]\nmode = \"\"",
            "course mode's slug",
        ),
        (
            "[[products]]\nsku = \"A\"\ncourses = [\"course-v1:a+b+c\"]\nmode = \"veri fied\"",
            "course mode's slug",
        ),
        ("[[products]]\nsku = \"A\"\ncourses = []", "list one course key or more"),
        ("[[products]]\ncourses = [\"course-v1:a+b+c\"]", "has no sku"),
        ("[[products]]\nsku = \"A\"", "has no courses"),
        (
            "[[products]]\nsku = \"A\"\ncourses = [\"course-v1:a+b+c\"]\n[[products]]\nsku = \"A\"\ncourses = [\"course-v1:a+b+d\"]",
            "configured twice",
        ),
        (
            "[[products]]\nsku = \"A\"\ncourses = [\"course-v1:a+b+c\", \"course-v1:a+b+c\"]",
            "listed twice",
        ),
        ("[[products]]\nsku = 5\ncourses = [\"course-v1:a+b+c\"]", "expected a string"),
        ("products = \"x\"", "[[products]]"),
    ] {
        let error = products_of(text).expect_err(text);
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn the_wait_for_accounts_is_a_setting() {
    let config = load_env(&[]).unwrap();
    assert_eq!(config.account_wait, Duration::from_secs(30 * 86_400));
    assert_eq!(config.account_recheck_max, Duration::from_secs(86_400));
    let config = load_env(&[
        ("EDX_WEBHOOKS_ACCOUNT_WAIT", "7d"),
        ("EDX_WEBHOOKS_ACCOUNT_RECHECK_MAX", "2h"),
    ])
    .unwrap();
    assert_eq!(config.account_wait, Duration::from_secs(7 * 86_400));
    assert_eq!(config.account_recheck_max, Duration::from_secs(7200));
    let error = error_of(&[("EDX_WEBHOOKS_ACCOUNT_RECHECK_MAX", "10s")]);
    assert!(
        error.contains("EDX_WEBHOOKS_ACCOUNT_RECHECK_MAX")
            && error.contains("EDX_WEBHOOKS_RETRY_DELAY"),
        "{error}"
    );
}

#[test]
fn single_quotes_in_dotenv_keep_spaces_and_dollar_signs() {
    let dir = TempDir::new().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "EDX_WEBHOOKS_ADMIN_PASSWORD='two words $HOME and $x'\n\
         EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET=\"double quotes expand ${NOT_SET_ANYWHERE}\"\n",
    )
    .unwrap();
    let (config, unknown) = Config::load_reporting(&Sources {
        dotenv: Some(dotenv),
        ..Sources::default()
    })
    .unwrap();
    assert_eq!(
        config.admin_password,
        Some(Secret::new("two words $HOME and $x"))
    );
    // What the README warns about: inside double quotes, `$` substitutes.
    assert_ne!(
        config.lms.client_secret.as_ref().map(Secret::expose),
        Some("double quotes expand ${NOT_SET_ANYWHERE}")
    );
    assert!(unknown.is_empty());
}

#[test]
fn example_env_holds_the_defaults_and_only_known_names() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example.env");
    let (config, unknown) = Config::load_reporting(&Sources {
        dotenv: Some(path),
        ..Sources::default()
    })
    .unwrap();
    assert!(unknown.is_empty(), "{unknown:?}");
    // RUST_LOG=info is the default level, written out.
    let mut expected = Config::defaults();
    expected.log_filter = Some("info".into());
    assert_eq!(config, expected);
}

#[test]
fn shop_api_access_from_the_environment_and_the_file() {
    let config = load_env(&[
        ("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN", "a.myshopify.com"),
        ("EDX_WEBHOOKS_SHOPIFY_API_KEY", "k"),
        ("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", "shpat_s3cret"),
        (
            "EDX_WEBHOOKS_WOOCOMMERCE_SOURCE",
            "https://shop.example.com/",
        ),
        ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY", "ck_s3cret"),
        ("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET", "cs_s3cret"),
        ("EDX_WEBHOOKS_RECONCILE_INTERVAL", "off"),
        ("EDX_WEBHOOKS_RECONCILE_LOOKBACK", "3d"),
    ])
    .unwrap();
    let shopify = config.shopify[0].api.as_ref().unwrap();
    assert_eq!(shopify.access_token.expose(), "shpat_s3cret");
    assert_eq!(shopify.version, DEFAULT_SHOPIFY_API_VERSION);
    assert_eq!(shopify.url.as_str(), "https://a.myshopify.com/");
    let woo = config.woocommerce[0].api.as_ref().unwrap();
    assert_eq!(woo.url.as_str(), "https://shop.example.com/");
    assert_eq!(config.reconcile_interval, None);
    assert_eq!(config.reconcile_lookback, Duration::from_secs(3 * 86400));
    let shown = format!("{config:?}");
    for secret in ["shpat_s3cret", "ck_s3cret", "cs_s3cret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert_eq!(
        Config::defaults().reconcile_interval,
        Some(Duration::from_secs(900))
    );

    let (_file, sources) = with_file(
        r#"
        reconcile_interval = "5m"
        [[shopify]]
        shop_domain = "b.myshopify.com"
        api_key = "k"
        access_token = "shpat_file"
        api_version = "2026-07"
        api_url = "http://127.0.0.1:9999"
        [[woocommerce]]
        source = "https://w.example.com/"
        secret = "s"
        consumer_key = "ck"
        "#,
    );
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(
        err.contains("consumer_key set but not consumer_secret"),
        "{err}"
    );
    assert!(!err.contains("\"ck\""), "{err}");

    let (_file, sources) = with_file(
        "[[shopify]]\nshop_domain = \"b.myshopify.com\"\naccess_token = \"t\"\napi_version = \"latest\"\n",
    );
    let err = Config::load(&sources).unwrap_err().to_string();
    assert!(
        err.contains("api_version") && err.contains("2026-10"),
        "{err}"
    );

    let err = error_of(&[("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN", "t0ken")]);
    assert!(
        err.contains("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN") && !err.contains("t0ken"),
        "{err}"
    );
}

#[test]
fn shop_api_access_in_a_shop_table() {
    let (_file, sources) = with_file(
        r#"
        reconcile_interval = "5m"
        [[shopify]]
        shop_domain = "b.myshopify.com"
        api_key = "k"
        access_token = "shpat_file"
        api_version = "2026-07"
        api_url = "http://127.0.0.1:9999"
        "#,
    );
    let config = Config::load(&sources).unwrap();
    let api = config.shopify[0].api.as_ref().unwrap();
    assert_eq!(
        (api.version.as_str(), api.url.as_str()),
        ("2026-07", "http://127.0.0.1:9999/")
    );
    assert_eq!(config.reconcile_interval, Some(Duration::from_secs(300)));
}
