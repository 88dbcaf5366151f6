//! Reading the shops' order APIs: pages, links and answers.

use super::*;

#[test]
fn times_in_both_shops_spellings() {
    assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_time("1970-01-01T00:00:01"), Some(1000));
    assert_eq!(
        parse_time("2026-03-02T10:15:05-05:00"),
        parse_time("2026-03-02T15:15:05Z")
    );
    assert_eq!(parse_time("2026-03-02T15:15:05Z"), Some(1_772_464_505_000));
    assert_eq!(iso(1_772_464_505_000), "2026-03-02T15:15:05Z");
    assert_eq!(parse_time("garbage"), None);
}

#[test]
fn next_links() {
    let mut headers = HeaderMap::new();
    headers.insert(
        LINK,
        "<https://s/admin/api/2026-10/orders.json?limit=250&page_info=abc>; rel=\"previous\", <https://s/admin/api/2026-10/orders.json?limit=250&page_info=def>; rel=\"next\""
            .parse()
            .unwrap(),
    );
    assert_eq!(
        next_link(&headers).as_deref(),
        Some("https://s/admin/api/2026-10/orders.json?limit=250&page_info=def")
    );
    assert_eq!(next_link(&HeaderMap::new()), None);
}
