//! Parsers for one setting's text: each returns the value, or why the text is
//! wrong (the caller adds the setting's name and the value).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

pub(super) type Parsed<T> = Result<T, String>;

pub(super) fn boolean(text: &str) -> Parsed<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("expected true/false, yes/no or 1/0".into()),
    }
}

/// `200ms`, `3m`, `1h`, `30d`; a bare number is refused rather than guessed.
/// A duration as the settings take it (a bare number refused: the unit is written).
pub fn duration(text: &str) -> Parsed<Duration> {
    if text.chars().any(|c| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        return Err(format!(
            "a duration needs a unit: write {text}s for seconds (durations look like 200ms, 3m, 1h, 30d)"
        ));
    }
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("expected a duration like 200ms, 3m, 1h or 30d ({e})"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

/// A course mode's slug as the LMS names them (`verified`, `no-id-professional`):
/// letters, digits, `-` and `_`, at most 64 (what the store keeps).
pub(super) fn course_mode(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Bytes: `1048576`, `512KiB`, `5MiB`, `1GiB` (binary) or `1kB`, `1MB`, `1GB` (decimal).
pub(super) fn size(text: &str) -> Parsed<u64> {
    const EXPECTED: &str = "expected a size like 1048576, 512KiB, 5MiB or 1MB";
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(EXPECTED.into()),
    };
    let number: u64 = number.parse().map_err(|_| EXPECTED.to_owned())?;
    match number.checked_mul(scale) {
        Some(0) => Err("must be at least 1 byte".into()),
        Some(bytes) => Ok(bytes),
        None => Err("too large".into()),
    }
}

/// A whole number in `min..=max`.
pub(super) fn count<T: TryFrom<u64>>(text: &str, min: u64, max: u64) -> Parsed<T> {
    let expected = || {
        if max == u64::MAX {
            format!("expected a whole number of at least {min}")
        } else {
            format!("expected a whole number from {min} to {max}")
        }
    };
    let number: u64 = text.parse().map_err(|_| expected())?;
    if !(min..=max).contains(&number) {
        return Err(expected());
    }
    T::try_from(number).map_err(|_| "too large".into())
}

pub(super) fn listen(text: &str) -> Parsed<SocketAddr> {
    text.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:8090, 0.0.0.0:8090 or [::]:8090".into())
}

/// An http(s) URL whose path ends with `/`, so `base_url.join("api/...")`
/// keeps any path prefix the LMS is served under.
pub(super) fn lms_base_url(text: &str) -> Parsed<Url> {
    const EXPECTED: &str =
        "expected the LMS's http:// or https:// URL, e.g. https://lms.example.com";
    let mut url = Url::parse(text).map_err(|_| EXPECTED.to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(EXPECTED.into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query (?...) or fragment (#...)".into());
    }
    // The client authenticates with OAuth2; credentials here would also print in `Debug`.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Comma-separated IPs or CIDR ranges; a bare IP is one address (/32, /128).
pub(super) fn trusted_proxies(text: &str) -> Parsed<Vec<IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("{item:?} is not an IP address or CIDR range (e.g. 10.0.0.1, 10.0.0.0/8, ::1)")
                })
        })
        .collect()
}

pub(super) fn log_format(text: &str) -> Parsed<super::LogFormat> {
    match text.to_ascii_lowercase().as_str() {
        "text" => Ok(super::LogFormat::Text),
        "json" => Ok(super::LogFormat::Json),
        _ => Err("expected text or json".into()),
    }
}

/// A Python logging level (`DEBUG`, `INFO`, `WARNING`, ...) becomes its
/// `tracing` level; anything else must be a valid `RUST_LOG` filter.
pub(super) fn log_filter(text: &str) -> Parsed<String> {
    let level = match text.to_ascii_lowercase().as_str() {
        "notset" | "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "critical" | "fatal" => "error",
        "off" => "off",
        _ => {
            // A bare word is a target with every level: `verbose` would log
            // nothing at all. Only our own crate makes sense written so.
            let levels = ["trace", "debug", "info", "warn", "error", "off"];
            let bare = text.split(',').map(str::trim).find(|d| {
                !d.is_empty()
                    && !d.contains('=')
                    && !levels.contains(&d.to_ascii_lowercase().as_str())
                    && !d.starts_with("edx_webhooks")
            });
            if let Some(word) = bare {
                return Err(format!(
                    "`{word}` is neither a level (trace, debug, info, warn, error, off) nor a                      target=level directive (e.g. info,edx_webhooks=debug): it would turn                      logging off"
                ));
            }
            tracing_subscriber::EnvFilter::try_new(text).map_err(|e| {
                format!("expected a level (debug, info, warn, error) or a RUST_LOG filter ({e})")
            })?;
            return Ok(text.to_owned());
        }
    };
    Ok(level.to_owned())
}

/// An argon2 PHC string; the value is a secret, so the reason never quotes it.
pub(super) fn admin_password_hash(text: &str) -> Parsed<()> {
    let readable = argon2::PasswordHash::new(text).is_ok_and(|hash| {
        matches!(hash.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d")
            && hash.hash.is_some()
            && argon2::Params::try_from(&hash).is_ok()
    });
    if readable {
        Ok(())
    } else {
        Err("expected an argon2 hash such as $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH".into())
    }
}

/// A Shopify shop's domain, lowercased; `https://` and a trailing `/` are
/// forgiven because operators copy the shop's address from the browser.
pub(super) fn shop_domain(text: &str) -> Parsed<String> {
    let lower = text.to_ascii_lowercase();
    let domain = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or(&lower)
        .trim_end_matches('/');
    let bad = |c: char| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#');
    if domain.is_empty() || domain.contains(bad) {
        return Err("expected the shop's domain, e.g. my-shop.myshopify.com".into());
    }
    Ok(domain.to_owned())
}

/// A WooCommerce shop's home URL, kept as written (matching ignores a trailing `/`).
pub(super) fn woocommerce_source(text: &str) -> Parsed<String> {
    const EXPECTED: &str = "expected the shop's URL, e.g. https://shop.example.com/";
    let url = Url::parse(text).map_err(|_| EXPECTED.to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(EXPECTED.into());
    }
    Ok(text.to_owned())
}

pub(super) fn same_source(a: &str, b: &str) -> bool {
    source_key(a) == source_key(b)
}

/// What makes two WooCommerce source URLs the same shop, for the settings and
/// for a delivery's `X-WC-Webhook-Source` alike: scheme and host in lower
/// case, the scheme's default port dropped, a trailing `/` ignored.
pub fn source_key(text: &str) -> String {
    let text = text.trim();
    match Url::parse(text) {
        // The parser lowercases scheme and host and drops a default port.
        Ok(url) => url.as_str().trim_end_matches('/').to_owned(),
        Err(_) => text.trim_end_matches('/').to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_any_case() {
        for yes in ["true", "TRUE", "1", "yes", "Yes", "on"] {
            assert_eq!(boolean(yes), Ok(true), "{yes}");
        }
        for no in ["false", "False", "0", "no", "NO", "off"] {
            assert_eq!(boolean(no), Ok(false), "{no}");
        }
        assert!(boolean("maybe").is_err());
        assert!(boolean("2").is_err());
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("30d"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        let bare = duration("30").unwrap_err();
        assert!(bare.contains("30s"), "{bare}");
        assert!(duration("0s").is_err());
        assert!(duration("soon").is_err());
    }

    #[test]
    fn sizes_binary_decimal_and_bytes() {
        assert_eq!(size("1048576"), Ok(1_048_576));
        assert_eq!(size("5MiB"), Ok(5 * 1024 * 1024));
        assert_eq!(size("512KiB"), Ok(512 * 1024));
        assert_eq!(size("512 kib"), Ok(512 * 1024));
        assert_eq!(size("1MB"), Ok(1_000_000));
        assert_eq!(size("2GiB"), Ok(2 << 30));
        assert_eq!(size("10B"), Ok(10));
        for bad in [
            "",
            "MiB",
            "5 parsecs",
            "1.5MiB",
            "-1",
            "0",
            "99999999999999GiB",
        ] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_within_bounds() {
        assert_eq!(count::<usize>("25", 1, 1000), Ok(25));
        assert!(count::<usize>("0", 1, 1000).is_err());
        assert!(count::<usize>("1001", 1, 1000).is_err());
        assert!(count::<u32>("-3", 1, u64::MAX).is_err());
        assert!(count::<u32>("4294967296", 1, u64::MAX).is_err());
        assert!(count::<u32>("many", 1, u64::MAX).is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen("0.0.0.0:8090"), Ok("0.0.0.0:8090".parse().unwrap()));
        assert_eq!(listen("[::]:80"), Ok("[::]:80".parse().unwrap()));
        assert!(listen("8090").is_err());
        assert!(listen("localhost").is_err());
    }

    #[test]
    fn lms_base_url_gets_a_trailing_slash() {
        let url = lms_base_url("https://lms.example.com").unwrap();
        assert_eq!(url.as_str(), "https://lms.example.com/");
        let url = lms_base_url("https://example.com/lms").unwrap();
        assert_eq!(url.as_str(), "https://example.com/lms/");
        assert_eq!(
            url.join("api/bulk_enroll/v1/bulk_enroll").unwrap().as_str(),
            "https://example.com/lms/api/bulk_enroll/v1/bulk_enroll"
        );
        assert_eq!(
            lms_base_url("http://lms:8000/").unwrap().as_str(),
            "http://lms:8000/"
        );
        for bad in [
            "ftp://lms.example.com",
            "lms.example.com",
            "https://x/?a=1",
            "file:///etc",
        ] {
            assert!(lms_base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trusted_proxies_ips_and_ranges() {
        let nets = trusted_proxies(" 10.0.0.1, 192.168.0.0/16 ,::1,").unwrap();
        let expected: Vec<IpNet> = ["10.0.0.1/32", "192.168.0.0/16", "::1/128"]
            .iter()
            .map(|n| n.parse().unwrap())
            .collect();
        assert_eq!(nets, expected);
        assert!(trusted_proxies("10.0.0.0/33").is_err());
        assert!(trusted_proxies("proxy.local").is_err());
    }

    #[test]
    fn django_log_levels_map_to_tracing() {
        assert_eq!(log_filter("INFO").unwrap(), "info");
        assert_eq!(log_filter("WARNING").unwrap(), "warn");
        assert_eq!(log_filter("debug").unwrap(), "debug");
        assert_eq!(log_filter("CRITICAL").unwrap(), "error");
        assert_eq!(
            log_filter("edx_webhooks=debug,sqlx=warn").unwrap(),
            "edx_webhooks=debug,sqlx=warn"
        );
        assert!(log_filter("edx_webhooks=loud").is_err());
        // A bare word is a target: it would log nothing.
        assert!(log_filter("verbose").unwrap_err().contains("`verbose`"));
        assert!(log_filter("info,verbose").is_err());
        assert_eq!(
            log_filter("info,edx_webhooks").unwrap(),
            "info,edx_webhooks"
        );
    }

    #[test]
    fn shop_domains_are_forgiving_but_strict() {
        assert_eq!(
            shop_domain("My-Shop.myshopify.com").unwrap(),
            "my-shop.myshopify.com"
        );
        assert_eq!(
            shop_domain("https://a.myshopify.com/").unwrap(),
            "a.myshopify.com"
        );
        assert!(shop_domain("a.myshopify.com/admin").is_err());
        assert!(shop_domain("my shop").is_err());
        assert!(woocommerce_source("https://shop.example.com/").is_ok());
        assert!(woocommerce_source("shop.example.com").is_err());
        assert!(same_source(
            "https://Shop.example.com/",
            "https://shop.example.com"
        ));
        assert!(!same_source(
            "https://a.example.com",
            "https://b.example.com"
        ));
        for same in [
            "https://shop.example.com:443/",
            "HTTPS://SHOP.example.com",
            " https://shop.example.com/ ",
        ] {
            assert!(same_source(same, "https://shop.example.com/"), "{same}");
        }
        assert!(!same_source(
            "https://shop.example.com:8080/",
            "https://shop.example.com/"
        ));
        assert!(!same_source(
            "http://shop.example.com/",
            "https://shop.example.com/"
        ));
        assert!(!same_source(
            "https://shop.example.com/Store/",
            "https://shop.example.com/store/"
        ));
    }
}
