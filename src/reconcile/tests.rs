//! Which shop a run names.

use super::*;

#[test]
fn a_shop_is_named_as_the_settings_and_the_intake_name_it() {
    use Platform::*;
    let woo = "https://shop.example.com/";
    for same in [
        "https://shop.example.com:443/",
        "HTTPS://Shop.Example.com",
        " https://shop.example.com ",
    ] {
        assert!(same_shop(WooCommerce, same, woo), "{same}");
    }
    assert!(!same_shop(
        WooCommerce,
        "https://shop.example.com:8443/",
        woo
    ));
    assert!(!same_shop(WooCommerce, "http://shop.example.com/", woo));
    assert!(same_shop(Shopify, "A.myshopify.com/", "a.myshopify.com"));
    assert!(!same_shop(Shopify, "b.myshopify.com", "a.myshopify.com"));
}
