//! The config file read: flat keys, shop and product tables, unknown keys refused.

use super::*;

fn parsed(text: &str) -> Result<FileLayer, ConfigError> {
    parse(Path::new("edx-webhooks.toml"), text)
}

/// `FileLayer` has no `Debug` (it holds secrets), so no `unwrap_err`.
fn refused(text: &str) -> ConfigError {
    match parsed(text) {
        Ok(_) => panic!("should be refused: {text}"),
        Err(e) => e,
    }
}

#[test]
fn flat_keys_accept_strings_numbers_booleans_and_proxy_lists() {
    let layer = parsed(
        r#"
        listen = "0.0.0.0:8090"
        require_payment = true
        max_attempts = 5
        sku_prefix = ""
        trusted_proxies = ["10.0.0.1", "fd00::/8"]
        "#,
    )
    .unwrap();
    assert_eq!(layer.values["listen"], "0.0.0.0:8090");
    assert_eq!(layer.values["require_payment"], "true");
    assert_eq!(layer.values["max_attempts"], "5");
    assert_eq!(layer.values["trusted_proxies"], "10.0.0.1,fd00::/8");
    assert!(!layer.values.contains_key("sku_prefix"), "empty is not set");
}

#[test]
fn unknown_keys_are_named() {
    let err = refused("retry_dealy = \"1m\"");
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "retry_dealy"));
    assert!(
        err.to_string().contains("retry_delay"),
        "lists the known keys: {err}"
    );
    let err = refused("[[shopify]]\nshop_domain = \"a\"\napikey = \"s3cret\"");
    assert!(err.to_string().contains("shopify.apikey"), "{err}");
    // Env-only names are not file keys.
    assert!(parsed("EDX_WEBHOOKS_LISTEN = \"x\"").is_err());
    assert!(parsed("shopify_shop_domain = \"x\"").is_err());
}

#[test]
fn wrong_types_are_refused_without_showing_secrets() {
    let err = refused("workers = 1.5").to_string();
    assert!(
        err.contains("EDX_WEBHOOKS_WORKERS") && err.contains("1.5"),
        "{err}"
    );
    let err = refused("oauth2_client_secret = [\"s3cret\"]").to_string();
    assert!(!err.contains("s3cret"), "{err}");
    let err = refused("[[shopify]]\nshop_domain = \"a\"\napi_key = 12345").to_string();
    assert!(!err.contains("12345"), "{err}");
}

#[test]
fn syntax_errors_give_the_line_not_its_text() {
    let err = refused("listen = \"0.0.0.0:1\"\noauth2_client_secret = \"s3cret\n");
    let text = err.to_string();
    assert!(text.contains("line 2"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn shops_per_platform() {
    let layer = parsed(
        r#"
        [[shopify]]
        shop_domain = "a.myshopify.com"
        api_key = "k1"
        [[shopify]]
        shop_domain = "b.myshopify.com"
        [[woocommerce]]
        source = "https://shop.example.com/"
        secret = ""
        "#,
    )
    .unwrap();
    let shopify: Vec<_> = layer
        .shopify
        .iter()
        .map(|s| (s.number, s.id.as_str(), s.secret.as_deref()))
        .collect();
    assert_eq!(
        shopify,
        [
            (1, "a.myshopify.com", Some("k1")),
            (2, "b.myshopify.com", None)
        ]
    );
    assert_eq!(
        layer.woocommerce[0].secret, None,
        "an empty secret is no secret"
    );
    let err = refused("[[shopify]]\napi_key = \"k\"").to_string();
    assert!(
        err.contains("has no shop_domain") && !err.contains("\"k\""),
        "{err}"
    );
}
