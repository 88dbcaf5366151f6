//! Settings, layered: built-in defaults < config file < `.env` < environment <
//! command-line flags. Every setting has an environment name; the Django app's
//! names are accepted as aliases. Secrets are wrapped so they never print.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

mod catalog;
mod database_url;
mod error;
mod file;
mod load;
mod load_shops;
mod settings;
mod sources;
#[cfg(test)]
mod tests;
mod values;
pub mod warnings;

pub use catalog::{known_settings, SettingNames};
pub use error::ConfigError;
pub use sources::Sources;
pub use values::{duration as parse_duration, source_key};
pub use warnings::{shopify_subject, woocommerce_subject, Warning};

/// A value that must never appear in logs, errors or pages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A configured secret, unless it is missing or blank: a shop with such a
/// secret is off, and an OAuth2 client with one cannot log in.
pub fn usable_secret(secret: Option<&Secret>) -> Option<&str> {
    secret.map(Secret::expose).filter(|k| !k.trim().is_empty())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// One Shopify shop. Without a signing key the shop is off: its deliveries get 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyShop {
    /// e.g. `my-shop.myshopify.com`, compared case-insensitively.
    pub domain: String,
    pub api_key: Option<Secret>,
    /// Admin API access, for reconciliation; `None`: the shop is not reconciled.
    pub api: Option<ShopifyApi>,
}

/// A Shopify custom app's Admin API access (scope `read_orders`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopifyApi {
    pub access_token: Secret,
    /// A dated version, e.g. `2026-10`.
    pub version: String,
    /// The API's base URL, by default `https://{domain}`.
    pub url: Url,
}

/// A WooCommerce REST API key with read access, for reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WooCommerceApi {
    pub consumer_key: Secret,
    pub consumer_secret: Secret,
    /// The API's base URL, by default the shop's source URL.
    pub url: Url,
}

/// The Shopify Admin API version used when none is set.
pub const DEFAULT_SHOPIFY_API_VERSION: &str = "2026-10";

/// One WooCommerce shop. Without a secret the shop is off: its deliveries get 403.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WooCommerceShop {
    /// The shop's home URL, e.g. `https://shop.example.com/`; matched with or
    /// without a trailing slash.
    pub source: String,
    pub secret: Option<Secret>,
    /// REST API access, for reconciliation; `None`: the shop is not reconciled.
    pub api: Option<WooCommerceApi>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LmsConfig {
    pub base_url: Url,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub sku_prefix: String,
    pub auto_enroll: bool,
    pub email_students: bool,
    pub timeout: Duration,
    /// LMS requests allowed in any 60 s window, all processes together.
    pub rate_limit: u32,
    /// Learners per bulk enrollment request.
    pub batch_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: u32,
}

/// Bounds on what clients may hold of the server, whoever they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time a client has to send a request's headers.
    pub header_timeout: Duration,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Bytes of request bodies held in memory at once, all requests together.
    pub request_memory: usize,
}

/// `Debug` is written out below: it hides the database URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub lms: LmsConfig,
    pub shopify: Vec<ShopifyShop>,
    pub woocommerce: Vec<WooCommerceShop>,
    pub require_payment: bool,
    pub retry: RetryPolicy,
    pub workers: usize,
    pub max_body: usize,
    /// What one client may cost the server: see [`HttpLimits`].
    pub http: HttpLimits,
    pub trusted_proxies: Vec<IpNet>,
    pub admin_password: Option<Secret>,
    pub admin_password_hash: Option<Secret>,
    pub unenroll_on_cancel: bool,
    /// The config file's `[[products]]`: SKUs sold as courses, bundles, paid seats.
    pub products: Vec<crate::domain::Product>,
    /// How long a paid seat waits for its learner to register…
    pub account_wait: Duration,
    /// …checking again after at most this long.
    pub account_recheck_max: Duration,
    /// How often shops with API access are reconciled; `None`: never by itself.
    pub reconcile_interval: Option<Duration>,
    /// How far back a shop's first reconciliation looks.
    pub reconcile_lookback: Duration,
    pub log_format: LogFormat,
    /// A `RUST_LOG`-style filter (`DJANGO_LOG_LEVEL` is accepted as an alias).
    pub log_filter: Option<String>,
}

impl Config {
    /// The settings with every default, for tests and as the base layer.
    pub fn defaults() -> Config {
        Config {
            listen: "127.0.0.1:8090".parse().expect("valid default"),
            database_url: "sqlite://edx-webhooks.sqlite3".into(),
            lms: LmsConfig {
                base_url: Url::parse("http://localhost:18000").expect("valid default"),
                client_id: None,
                client_secret: None,
                sku_prefix: String::new(),
                auto_enroll: true,
                email_students: true,
                timeout: Duration::from_secs(30),
                rate_limit: 100,
                batch_size: 25,
            },
            shopify: Vec::new(),
            woocommerce: Vec::new(),
            require_payment: false,
            retry: RetryPolicy {
                first_delay: Duration::from_secs(60),
                max_delay: Duration::from_secs(3600),
                max_attempts: 12,
            },
            workers: 4,
            max_body: 5 * 1024 * 1024,
            http: HttpLimits {
                header_timeout: Duration::from_secs(10),
                max_connections: 512,
                request_memory: 32 * 1024 * 1024,
            },
            trusted_proxies: Vec::new(),
            admin_password: None,
            admin_password_hash: None,
            unenroll_on_cancel: false,
            products: Vec::new(),
            account_wait: Duration::from_secs(30 * 86_400),
            account_recheck_max: Duration::from_secs(86_400),
            reconcile_interval: Some(Duration::from_secs(15 * 60)),
            reconcile_lookback: Duration::from_secs(24 * 3600),
            log_format: LogFormat::Text,
            log_filter: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Config {
            listen,
            database_url,
            lms,
            shopify,
            woocommerce,
            require_payment,
            retry,
            workers,
            max_body,
            http,
            trusted_proxies,
            admin_password,
            admin_password_hash,
            unenroll_on_cancel,
            products,
            account_wait,
            account_recheck_max,
            reconcile_interval,
            reconcile_lookback,
            log_format,
            log_filter,
        } = self;
        f.debug_struct("Config")
            .field("listen", listen)
            .field("database_url", &crate::redact::url_password(database_url))
            .field("lms", lms)
            .field("shopify", shopify)
            .field("woocommerce", woocommerce)
            .field("require_payment", require_payment)
            .field("retry", retry)
            .field("workers", workers)
            .field("max_body", max_body)
            .field("http", http)
            .field("trusted_proxies", trusted_proxies)
            .field("admin_password", admin_password)
            .field("admin_password_hash", admin_password_hash)
            .field("unenroll_on_cancel", unenroll_on_cancel)
            .field("products", products)
            .field("account_wait", account_wait)
            .field("account_recheck_max", account_recheck_max)
            .field("reconcile_interval", reconcile_interval)
            .field("reconcile_lookback", reconcile_lookback)
            .field("log_format", log_format)
            .field("log_filter", log_filter)
            .finish()
    }
}
