//! Secrets: the admin password's hash, and no secret in a `Debug` or an error.

use tempfile::TempDir;

use super::*;

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
