//! How stored values read on a page: times, states, order numbers, webhook
//! (headers and bodies go through `crate::redact`).

use std::time::{Duration, UNIX_EPOCH};

pub(crate) use crate::store::now_ms;

/// `2026-11-28 10:00:03 UTC`
pub fn time(ms: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    let rfc3339 = humantime::format_rfc3339_seconds(at).to_string();
    format!(
        "{} UTC",
        rfc3339.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// `5 min ago`, `in 20 s`, `just now`.
pub fn relative(ms: i64, now: i64) -> String {
    let delta = now - ms;
    if delta.abs() < 1000 {
        return "just now".into();
    }
    let span = span(delta.unsigned_abs());
    if delta > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A rough length of time: `42 s`, `5 min`, `3 h 20 min`, `2 d 4 h`.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", s / 60),
        3600..=86_399 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{} d", s / 86_400),
            h => format!("{} d {h} h", s / 86_400),
        },
    }
}

/// A state as words: `awaiting_payment` → `awaiting payment`.
pub fn label(state: &str) -> String {
    state.replace('_', " ")
}

/// Shopify numbers come as `#1001`, WooCommerce's as `727`: both show as `#…`.
pub fn order_number(number: &str) -> String {
    if number.starts_with('#') {
        number.to_owned()
    } else {
        format!("#{number}")
    }
}

/// `1.2 KiB`
pub fn size(bytes: u64) -> String {
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1_048_575 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_utc() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_795_860_003_999), "2026-11-28 10:00:03 UTC");
    }

    #[test]
    fn spans_and_relative_times() {
        assert_eq!(span(42_000), "42 s");
        assert_eq!(span(300_000), "5 min");
        assert_eq!(span(3_600_000), "1 h");
        assert_eq!(span(12_000_000), "3 h 20 min");
        assert_eq!(span(187_200_000), "2 d 4 h");
        assert_eq!(relative(1_000, 301_000), "5 min ago");
        assert_eq!(relative(21_000, 1_000), "in 20 s");
        assert_eq!(relative(1_000, 1_500), "just now");
    }

    #[test]
    fn labels_and_numbers() {
        assert_eq!(label("awaiting_payment"), "awaiting payment");
        assert_eq!(order_number("#1001"), "#1001");
        assert_eq!(order_number("727"), "#727");
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
    }
}
