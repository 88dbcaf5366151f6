//! Bad values: the setting and the value named, the fix said.

use super::*;

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
