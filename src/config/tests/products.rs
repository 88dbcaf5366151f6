//! The product table and the wait for accounts.

use std::time::Duration;

use super::*;

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
