//! Which orders a list shows: the filters and the search, each a range of
//! an index.

use crate::domain::EnrollmentState;
use crate::store::dialect::Dialect;
use crate::store::OrderQuery;

/// A value bound to a statement whose conditions depend on the query.
pub(super) enum Bind {
    Int(i64),
    Text(String),
}

/// The orders a list shows (`orders o`, joined to what a search finds, and
/// its `WHERE`) and what it binds, in order.
///
/// A search finds the orders whose number (with or without its `#`), buyer
/// email or learner email starts with the text, in any case, whose course key
/// starts with it as spelled, or whose shop id or our id is the text: each is
/// a range of an index (the `*_search` columns of migration 0007, and
/// `enrollments_by_course` per state), so no search reads every order.
pub(super) fn order_filter(query: &OrderQuery, dialect: Dialect) -> (String, Vec<Bind>) {
    let mut from = "orders o".to_owned();
    let mut binds = Vec::new();
    if let Some(search) = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let text = dialect.lowercase(search);
        let number = match text.trim_start_matches('#') {
            "" => text.clone(),
            number => number.to_owned(),
        };
        let mut found = vec![
            "SELECT id FROM orders WHERE number_search >= ? AND number_search < ?",
            "SELECT id FROM orders WHERE buyer_email_search >= ? AND buyer_email_search < ?",
            "SELECT id FROM orders WHERE external_id = ?",
            "SELECT order_id AS id FROM enrollments WHERE email_search >= ? AND email_search < ?",
        ];
        let course = format!(
            "SELECT order_id AS id FROM enrollments WHERE state IN ({}) AND course_key >= ? AND course_key < ?",
            vec!["?"; EnrollmentState::ALL.len()].join(", ")
        );
        found.push(&course);
        let shop_id = search.trim_start_matches('#').to_owned();
        let (past_number, past_text) = (past_prefix(&number), past_prefix(&text));
        for value in [
            number,
            past_number,
            text.clone(),
            past_text.clone(),
            shop_id,
            text,
            past_text,
        ] {
            binds.push(Bind::Text(value));
        }
        for state in EnrollmentState::ALL {
            binds.push(Bind::Text(state.as_str().to_owned()));
        }
        binds.push(Bind::Text(search.to_owned()));
        binds.push(Bind::Text(past_prefix(search)));
        if let Ok(id) = search.trim_start_matches('#').parse::<i64>() {
            found.push("SELECT id FROM orders WHERE id = ?");
            binds.push(Bind::Int(id));
        }
        from = format!(
            "{from} JOIN ({}) found ON found.id = o.id",
            found.join(" UNION ")
        );
    }
    let mut conditions = vec!["1 = 1".to_owned()];
    if let Some(state) = query.state {
        conditions.push("o.state = ?".into());
        binds.push(Bind::Text(state.as_str().to_owned()));
    }
    if let Some(shop) = query
        .shop
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        conditions.push("LOWER(o.shop) = ?".into());
        binds.push(Bind::Text(shop.to_lowercase()));
    }
    (format!("{from} WHERE {}", conditions.join(" AND ")), binds)
}

/// The least text greater than every text that starts with `prefix`: the
/// end of the prefix's range in an index compared byte by byte.
fn past_prefix(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32) {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    format!("{prefix}{}", char::MAX)
}

#[cfg(test)]
mod tests {
    use super::past_prefix;

    #[test]
    fn a_prefix_range_ends_past_every_text_it_starts() {
        assert_eq!(past_prefix("ann"), "ano");
        assert_eq!(past_prefix("a\u{D7FF}"), "a\u{E000}");
        assert_eq!(past_prefix(&format!("a{}", char::MAX)), "b");
        let end = past_prefix("ann");
        for inside in ["ann", "anna@example.org", "ann\u{10FFFF}"] {
            assert!(inside < end.as_str(), "{inside}");
        }
        for outside in ["ano", "anz", "b"] {
            assert!(outside >= end.as_str(), "{outside}");
        }
    }
}
