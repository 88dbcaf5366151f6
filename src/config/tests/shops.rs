//! Shops: the file's and the environment's merged, switched off, refused, and
//! their API access.

use std::time::Duration;

use super::*;

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
