//! What may be shown of stored and configured values: credentials in headers
//! hidden, configured secrets replaced, passwords taken out of URLs. The admin
//! UI, the command line, the settings' messages and the store all use this.

use std::borrow::Cow;

use crate::config::Config;
use crate::store::{RequestView, StoredRequest};

/// What a hidden header value reads as.
pub const HIDDEN: &str = "[hidden]";
/// What a configured secret found in a text reads as.
pub const SECRET_HIDDEN: &str = "[secret hidden]";

/// Headers whose value is a credential, whoever sent them.
const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-shopify-access-token",
    "x-api-key",
];

/// Words that make any other header a credential (`X-Auth-Token`,
/// `X-Client-Secret`, ...). Signatures are not: they prove, they do not unlock.
const CREDENTIAL_WORDS: &[&str] = &[
    "token", "secret", "password", "api-key", "apikey", "session",
];

/// Whether a header's value must never be shown.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    CREDENTIAL_HEADERS.contains(&name.as_str())
        || CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
}

/// A URL fit to show: its password, if any, as `***`. Splits at the last `@`
/// before the path, so a password with a stray `@` or `/` is still hidden.
pub fn url_password(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return text.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => text.to_owned(),
    }
}

/// Replaces every configured secret in what is shown. Webhook bodies, headers
/// and LMS answers should never contain one; if one ever does, it still does
/// not reach a page or a terminal.
#[derive(Debug, Clone)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    pub fn from_config(config: &Config) -> Redactor {
        let mut secrets: Vec<String> = config
            .shopify
            .iter()
            .filter_map(|shop| shop.api_key.as_ref())
            .chain(config.woocommerce.iter().filter_map(|s| s.secret.as_ref()))
            .chain(config.lms.client_secret.as_ref())
            .chain(config.admin_password.as_ref())
            .chain(config.admin_password_hash.as_ref())
            .map(|secret| secret.expose().to_owned())
            .filter(|secret| !secret.trim().is_empty())
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    pub fn clean<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), SECRET_HIDDEN));
            }
        }
        text
    }

    /// Headers as received, credentials hidden.
    pub fn headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let value = if is_credential_header(name) {
                    HIDDEN.to_owned()
                } else {
                    self.clean(value).into_owned()
                };
                (name.clone(), value)
            })
            .collect()
    }

    /// A stored request as it may be shown: credential headers hidden and
    /// configured secrets replaced in what the sender wrote; a body holding
    /// none is kept byte for byte.
    pub fn stored_request(&self, request: &StoredRequest) -> StoredRequest {
        let mut shown = request.clone();
        shown.headers = self.headers(&request.headers);
        if let Cow::Owned(clean) = self.clean(&String::from_utf8_lossy(&request.body)) {
            shown.body = clean.into_bytes();
        }
        shown.reason = self.optional(&request.reason);
        shown.shop = self.optional(&request.shop);
        shown.topic = self.optional(&request.topic);
        shown.webhook_id = self.optional(&request.webhook_id);
        shown
    }

    /// A request's line in a list, as it may be shown: configured secrets
    /// replaced in what the sender wrote.
    pub fn request_view(&self, request: &RequestView) -> RequestView {
        let mut shown = request.clone();
        shown.reason = self.optional(&request.reason);
        shown.shop = self.optional(&request.shop);
        shown.topic = self.optional(&request.topic);
        shown
    }

    fn optional(&self, text: &Option<String>) -> Option<String> {
        text.as_deref().map(|t| self.clean(t).into_owned())
    }

    /// A body exactly as received (as text), configured secrets replaced.
    pub fn raw_body(&self, bytes: &[u8]) -> String {
        self.clean(&String::from_utf8_lossy(bytes)).into_owned()
    }

    /// JSON pretty-printed, anything else as text: for an LMS answer.
    pub fn readable(&self, bytes: &[u8]) -> String {
        self.pretty_body(bytes)
            .unwrap_or_else(|| self.raw_body(bytes))
    }

    /// A JSON body pretty-printed for reading, beside the raw one; `None` for
    /// a body that is not JSON.
    pub fn pretty_body(&self, bytes: &[u8]) -> Option<String> {
        let json = serde_json::from_slice::<serde_json::Value>(bytes).ok()?;
        let pretty = serde_json::to_string_pretty(&json).ok()?;
        Some(self.clean(&pretty).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, WooCommerceShop};

    #[test]
    fn credential_headers_are_hidden_whatever_their_case() {
        for name in [
            "Authorization",
            "cookie",
            "X-Shopify-Access-Token",
            "X-Auth-Token",
            "x-client-secret",
            "Proxy-Authorization",
        ] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in [
            "X-Shopify-Hmac-Sha256",
            "X-WC-Webhook-Source",
            "Content-Type",
        ] {
            assert!(!is_credential_header(name), "{name}");
        }
    }

    #[test]
    fn secrets_and_credentials_never_show() {
        let mut config = Config::defaults();
        config.woocommerce = vec![WooCommerceShop {
            source: "https://shop.example.com/".into(),
            secret: Some(Secret::new("woo-s3cret")),
            api: None,
        }];
        config.lms.client_secret = Some(Secret::new("lms-s3cret"));
        let redactor = Redactor::from_config(&config);
        let raw = br#"{"note":"key woo-s3cret and lms-s3cret","id":1}"#;
        assert_eq!(
            redactor.raw_body(raw),
            r#"{"note":"key [secret hidden] and [secret hidden]","id":1}"#
        );
        let pretty = redactor.pretty_body(raw).unwrap();
        assert!(
            !pretty.contains("s3cret") && pretty.contains('\n'),
            "{pretty}"
        );
        let headers = redactor.headers(&[
            ("Authorization".into(), "Basic dXNlcjpwYXNz".into()),
            ("X-Shopify-Access-Token".into(), "shpat_123".into()),
            (
                "x-wc-webhook-source".into(),
                "https://shop.example.com/".into(),
            ),
        ]);
        assert_eq!(headers[0].1, HIDDEN);
        assert_eq!(headers[1].1, HIDDEN);
        assert_eq!(headers[2].1, "https://shop.example.com/");
        assert_eq!(redactor.raw_body(b"not json"), "not json");
        assert_eq!(redactor.pretty_body(b"not json"), None);
    }

    #[test]
    fn what_a_sender_wrote_is_shown_without_a_configured_secret() {
        let mut config = Config::defaults();
        config.lms.client_secret = Some(Secret::new("lms-s3cret"));
        let redactor = Redactor::from_config(&config);
        let stored = StoredRequest {
            id: 1,
            received_at_ms: 0,
            platform: "shopify".into(),
            method: "POST".into(),
            endpoint: "/webhooks/shopify".into(),
            source_ip: None,
            headers: vec![("Cookie".into(), "a=b".into())],
            body: b"\xff not utf-8".to_vec(),
            body_size: 13,
            body_truncated: false,
            http_status: 403,
            outcome: "rejected".into(),
            reason: Some("shop lms-s3cret.myshopify.com is not configured".into()),
            shop: Some("lms-s3cret.myshopify.com".into()),
            topic: Some("lms-s3cret".into()),
            webhook_id: None,
            order_id: None,
            replays: Default::default(),
        };
        let shown = redactor.stored_request(&stored);
        assert_eq!(shown.headers[0].1, HIDDEN);
        assert_eq!(
            shown.body, stored.body,
            "a body without a secret, byte for byte"
        );
        for text in [&shown.reason, &shown.shop, &shown.topic] {
            let text = text.as_deref().unwrap();
            assert!(
                !text.contains("s3cret") && text.contains(SECRET_HIDDEN),
                "{text}"
            );
        }
        let view = RequestView {
            id: 1,
            received_at_ms: 0,
            platform: "shopify".into(),
            http_status: 403,
            outcome: "rejected".into(),
            reason: stored.reason.clone(),
            shop: stored.shop.clone(),
            topic: None,
            body_size: 0,
            body_truncated: false,
            stored_body_len: 0,
            source_ip: None,
            replays: Default::default(),
        };
        let shown = redactor.request_view(&view);
        assert!(!format!("{shown:?}").contains("s3cret"), "{shown:?}");
    }

    #[test]
    fn url_passwords_are_hidden() {
        assert_eq!(url_password("mysql://u:hunter2@h/d"), "mysql://u:***@h/d");
        assert_eq!(url_password("mysql://u:a@b/c@h/d"), "mysql://u:***@h/d");
        assert_eq!(url_password("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(url_password("sqlite://x.db"), "sqlite://x.db");
        assert_eq!(url_password("not a url"), "not a url");
        assert!(!url_password("postgres://u:s3cret@[broken").contains("s3cret"));
    }
}
