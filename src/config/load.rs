//! `Config::load`: every setting of SPEC §2 read from its strongest layer,
//! parsed, then checked against the others.

use super::error::shown;
use super::settings::*;
use super::sources::{Layers, Raw, Sources};
use super::values::{self, DatabaseParts, Parsed};
use super::{Config, ConfigError, Secret, ShopifyShop, Warning, WooCommerceShop};
use super::{ShopifyApi, WooCommerceApi, DEFAULT_SHOPIFY_API_VERSION};
use crate::domain::{CourseKey, Product};
use std::collections::HashMap;
use std::time::Duration;
use url::Url;

impl Config {
    /// Defaults < config file < `.env` < environment < command line.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        Config::load_reporting(sources).map(|(config, _)| config)
    }

    /// The settings, and the names in `.env` or the environment that look
    /// like ours but are no setting (most likely typos), each with the
    /// closest known name.
    pub fn load_reporting(sources: &Sources) -> Result<(Config, Vec<Warning>), ConfigError> {
        let layers = Layers::read(sources)?;
        let config = Config::from_layers(&layers)?;
        Ok((config, layers.unknown_names()))
    }

    fn from_layers(layers: &Layers) -> Result<Config, ConfigError> {
        let mut config = Config::defaults();

        layers.apply(&LISTEN, values::listen, &mut config.listen)?;
        if let Some(url) = database_url(layers)? {
            config.database_url = url;
        }

        let lms = &mut config.lms;
        layers.apply(&LMS_BASE_URL, values::lms_base_url, &mut lms.base_url)?;
        layers.apply(
            &OAUTH2_CLIENT_ID,
            |v| Ok(Some(v.to_owned())),
            &mut lms.client_id,
        )?;
        layers.apply(&OAUTH2_CLIENT_SECRET, secret, &mut lms.client_secret)?;
        layers.apply(&SKU_PREFIX, |v| Ok(v.to_owned()), &mut lms.sku_prefix)?;
        layers.apply(&AUTO_ENROLL, values::boolean, &mut lms.auto_enroll)?;
        layers.apply(
            &SEND_ENROLLMENT_EMAIL,
            values::boolean,
            &mut lms.email_students,
        )?;
        layers.apply(&LMS_TIMEOUT, values::duration, &mut lms.timeout)?;
        layers.apply(
            &LMS_RATE_LIMIT,
            |v| values::count(v, 1, u64::MAX),
            &mut lms.rate_limit,
        )?;
        layers.apply(
            &BATCH_SIZE,
            |v| values::count(v, 1, 1000),
            &mut lms.batch_size,
        )?;

        config.shopify = shops(layers, &SHOPIFY)?
            .into_iter()
            .map(|shop| {
                let api = shopify_api(&shop)?;
                Ok(ShopifyShop {
                    domain: shop.id,
                    api_key: shop.secret,
                    api,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        config.woocommerce = shops(layers, &WOOCOMMERCE)?
            .into_iter()
            .map(|shop| {
                let api = woocommerce_api(&shop)?;
                Ok(WooCommerceShop {
                    source: shop.id,
                    secret: shop.secret,
                    api,
                })
            })
            .collect::<Result<_, ConfigError>>()?;
        let interval = |v: &str| match v.trim().to_ascii_lowercase().as_str() {
            "off" | "never" | "false" | "0" => Ok(None),
            _ => values::duration(v).and_then(|d| {
                if d < Duration::from_secs(1) {
                    Err("expected at least 1s, or off".into())
                } else {
                    Ok(Some(d))
                }
            }),
        };
        layers.apply(
            &RECONCILE_INTERVAL,
            interval,
            &mut config.reconcile_interval,
        )?;
        layers.apply(
            &RECONCILE_LOOKBACK,
            values::duration,
            &mut config.reconcile_lookback,
        )?;
        layers.apply(
            &REQUIRE_PAYMENT,
            values::boolean,
            &mut config.require_payment,
        )?;

        let retry = &mut config.retry;
        layers.apply(&RETRY_DELAY, values::duration, &mut retry.first_delay)?;
        layers.apply(&RETRY_MAX_DELAY, values::duration, &mut retry.max_delay)?;
        layers.apply(
            &MAX_ATTEMPTS,
            |v| values::count(v, 1, u64::MAX),
            &mut retry.max_attempts,
        )?;
        layers.apply(
            &ACCOUNT_RECHECK_MAX,
            values::duration,
            &mut config.account_recheck_max,
        )?;
        layers.apply(&ACCOUNT_WAIT, values::duration, &mut config.account_wait)?;
        if let Some(file) = layers.file() {
            config.products = products(file)?;
        }

        layers.apply(
            &WORKERS,
            |v| values::count(v, 1, u64::MAX),
            &mut config.workers,
        )?;
        let max_body = |v: &str| {
            values::size(v).and_then(|n| usize::try_from(n).map_err(|_| "too large".into()))
        };
        layers.apply(&MAX_BODY, max_body, &mut config.max_body)?;
        let http = &mut config.http;
        layers.apply(&HEADER_TIMEOUT, values::duration, &mut http.header_timeout)?;
        layers.apply(
            &MAX_CONNECTIONS,
            |v| values::count(v, 1, 1_000_000),
            &mut http.max_connections,
        )?;
        layers.apply(&REQUEST_MEMORY, max_body, &mut http.request_memory)?;
        layers.apply(
            &TRUSTED_PROXIES,
            values::trusted_proxies,
            &mut config.trusted_proxies,
        )?;
        layers.apply(&ADMIN_PASSWORD, secret, &mut config.admin_password)?;
        let hash = |v: &str| values::admin_password_hash(v).and_then(|()| secret(v));
        layers.apply(&ADMIN_PASSWORD_HASH, hash, &mut config.admin_password_hash)?;
        layers.apply(
            &UNENROLL_ON_CANCEL,
            values::boolean,
            &mut config.unenroll_on_cancel,
        )?;
        layers.apply(&LOG_FORMAT, values::log_format, &mut config.log_format)?;
        layers.apply(
            &LOG_LEVEL,
            |v| values::log_filter(v).map(Some),
            &mut config.log_filter,
        )?;

        check_together(&config)?;
        Ok(config)
    }
}

fn secret(text: &str) -> Parsed<Option<Secret>> {
    Ok(Some(Secret::new(text)))
}

fn check_together(config: &Config) -> Result<(), ConfigError> {
    let retry = &config.retry;
    if retry.max_delay < retry.first_delay {
        return Err(ConfigError::Inconsistent(format!(
            "{} ({}) must not be shorter than {} ({})",
            RETRY_MAX_DELAY.env,
            humantime::format_duration(retry.max_delay),
            RETRY_DELAY.env,
            humantime::format_duration(retry.first_delay),
        )));
    }
    if config.http.request_memory < config.max_body {
        return Err(ConfigError::Inconsistent(format!(
            "{} ({} bytes) must be at least {} ({} bytes): a body that size must fit",
            REQUEST_MEMORY.env, config.http.request_memory, MAX_BODY.env, config.max_body,
        )));
    }
    if config.account_recheck_max < retry.first_delay {
        return Err(ConfigError::Inconsistent(format!(
            "{} ({}) must not be shorter than {} ({})",
            ACCOUNT_RECHECK_MAX.env,
            humantime::format_duration(config.account_recheck_max),
            RETRY_DELAY.env,
            humantime::format_duration(retry.first_delay),
        )));
    }
    if config.admin_password.is_some() && config.admin_password_hash.is_some() {
        return Err(ConfigError::Inconsistent(format!(
            "set {} or {}, not both",
            ADMIN_PASSWORD.env, ADMIN_PASSWORD_HASH.env
        )));
    }
    Ok(())
}

/// The file's `[[products]]`, checked: a SKU once, well-formed course keys,
/// a mode that says something.
fn products(file: &super::file::FileLayer) -> Result<Vec<Product>, ConfigError> {
    let mut products: Vec<Product> = Vec::new();
    for entry in &file.products {
        let invalid = |key: &str, value: String, reason: &str| ConfigError::Invalid {
            setting: format!("[[{PRODUCTS_TABLE}]] {key}"),
            value,
            origin: format!(
                "product #{} in config file {}",
                entry.number,
                file.path.display()
            ),
            reason: reason.to_owned(),
        };
        let sku = entry.sku.trim();
        if sku.is_empty() {
            return Err(invalid(
                "sku",
                format!("{:?}", entry.sku),
                "a product needs the SKU the shop sends",
            ));
        }
        if products.iter().any(|p| p.sku == sku) {
            return Err(ConfigError::Inconsistent(format!(
                "config file {}: [[{PRODUCTS_TABLE}]] sku {sku:?} is configured twice",
                file.path.display()
            )));
        }
        if entry.courses.is_empty() {
            return Err(invalid(
                "courses",
                "[]".into(),
                "list one course key or more, e.g. [\"course-v1:Org+Course+Run\"]",
            ));
        }
        let mut courses = Vec::with_capacity(entry.courses.len());
        for course in &entry.courses {
            let key = CourseKey::parse(course.trim()).ok_or_else(|| {
                invalid(
                    "courses",
                    format!("{course:?}"),
                    "not a course key (course-v1:ORG+COURSE+RUN or ORG/COURSE/RUN)",
                )
            })?;
            if courses.contains(&key) {
                return Err(invalid("courses", format!("{course:?}"), "listed twice"));
            }
            courses.push(key);
        }
        let mode = match entry.mode.as_deref().map(str::trim) {
            None => None,
            Some(mode) if values::course_mode(mode) => Some(mode.to_owned()),
            Some(mode) => {
                return Err(invalid(
                    "mode",
                    format!("{mode:?}"),
                    "a course mode's slug, e.g. verified or professional (leave mode out for the course's default)",
                ))
            }
        };
        products.push(Product {
            sku: sku.to_owned(),
            courses,
            mode,
        });
    }
    Ok(products)
}

/// Ours, the Django app's `DJANGO_DATABASE_URL`, or Tutor's `DB_MIGRATION_*`
/// parts, in that order within a layer.
fn database_url(layers: &Layers) -> Result<Option<String>, ConfigError> {
    let Some(raw) = layers.get(&DATABASE_URL) else {
        return Ok(None);
    };
    let url = if raw.name == DJANGO_DATABASE_URL {
        raw.parse(&DATABASE_URL, values::django_database_url)?
    } else if raw.name.starts_with(DB_MIGRATION_PREFIX) {
        tutor_database_url(layers)?
    } else {
        raw.parse(&DATABASE_URL, values::database_url)?
    };
    Ok(Some(url))
}

fn tutor_database_url(layers: &Layers) -> Result<String, ConfigError> {
    let Some(engine) = layers.get(&DB_MIGRATION_ENGINE) else {
        return Err(ConfigError::Inconsistent(format!(
            "DB_MIGRATION_* settings are set but {} is not (e.g. django.db.backends.mysql); \
             set it, or set {} instead",
            DB_MIGRATION_ENGINE.env, DATABASE_URL.env
        )));
    };
    let engine = engine.parse(&DB_MIGRATION_ENGINE, values::django_engine)?;
    let Some(name) = layers.get(&DB_MIGRATION_NAME) else {
        return Err(ConfigError::Inconsistent(format!(
            "{} is set but {} (the database's name) is not",
            DB_MIGRATION_ENGINE.env, DB_MIGRATION_NAME.env
        )));
    };
    let port = match layers.get(&DB_MIGRATION_PORT) {
        Some(raw) => Some(raw.parse(&DB_MIGRATION_PORT, values::port)?),
        None => None,
    };
    let text = |setting: &Setting| layers.get(setting).map(|raw| raw.value);
    let (user, password, host) = (
        text(&DB_MIGRATION_USER),
        text(&DB_MIGRATION_PASS),
        text(&DB_MIGRATION_HOST),
    );
    let url = DatabaseParts {
        engine,
        name: &name.value,
        user: user.as_deref(),
        password: password.as_deref(),
        host: host.as_deref(),
        port,
    }
    .url();
    // The parts are percent-encoded, so the reason cannot quote the password.
    values::database_url(&url).map_err(|reason| {
        ConfigError::Inconsistent(format!(
            "DB_MIGRATION_* do not make a valid database URL: {reason}"
        ))
    })
}

/// How one platform's shops are configured.
struct Platform {
    table: ShopTable,
    id: Setting,
    secret: Setting,
    parse_id: fn(&str) -> Parsed<String>,
    same: fn(&str, &str) -> bool,
}

const SHOPIFY: Platform = Platform {
    table: SHOPIFY_TABLE,
    id: SHOPIFY_SHOP_DOMAIN,
    secret: SHOPIFY_API_KEY,
    parse_id: values::shop_domain,
    same: |a, b| a == b,
};

const WOOCOMMERCE: Platform = Platform {
    table: WOOCOMMERCE_TABLE,
    id: WOOCOMMERCE_SOURCE,
    secret: WOOCOMMERCE_SECRET,
    parse_id: values::woocommerce_source,
    same: values::same_source,
};

/// A shop as configured, its API access not yet checked.
struct ShopEntry {
    id: String,
    secret: Option<Secret>,
    /// API access keys (`ShopTable::api`) → value and where it came from.
    api: HashMap<&'static str, (String, String)>,
}

impl ShopEntry {
    fn api_value(&self, key: &str) -> Option<&str> {
        self.api.get(key).map(|(value, _)| value.as_str())
    }

    /// Parses one API value, naming it and where it came from on error.
    fn parse_api<T>(
        &self,
        table: &ShopTable,
        key: &str,
        parse: impl FnOnce(&str) -> Parsed<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((value, origin)) = self.api.get(key) else {
            return Ok(None);
        };
        let secret = table.api.iter().any(|(k, s)| *k == key && s.secret);
        parse(value)
            .map(Some)
            .map_err(|reason| ConfigError::Invalid {
                setting: format!("[[{}]] {key}", table.name),
                value: shown(value, secret),
                origin: origin.clone(),
                reason,
            })
    }
}

fn api_url(text: &str) -> Parsed<Url> {
    let url = Url::parse(text.trim()).map_err(|e| format!("expected a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http(s) URL, e.g. https://shop.example.com".into());
    }
    Ok(url)
}

fn api_version(text: &str) -> Parsed<String> {
    let t = text.trim();
    let dated = t.len() == 7
        && t.as_bytes()[4] == b'-'
        && t.chars()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit());
    if dated || t == "unstable" {
        Ok(t.to_owned())
    } else {
        Err("expected a dated API version such as 2026-10".into())
    }
}

/// Without what the API needs above all, other API keys are a mistake worth naming.
fn incomplete(table: &ShopTable, shop: &ShopEntry, needed: &str) -> ConfigError {
    let given: Vec<&str> = table
        .api
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| shop.api.contains_key(k))
        .collect();
    ConfigError::Inconsistent(format!(
        "[[{}]] {}: {} set but not {needed}: the shop's API cannot be used for reconciliation",
        table.name,
        shop.id,
        given.join(", ")
    ))
}

fn shopify_api(shop: &ShopEntry) -> Result<Option<ShopifyApi>, ConfigError> {
    let table = &SHOPIFY_TABLE;
    let Some(token) = shop.api_value("access_token") else {
        return if shop.api.is_empty() {
            Ok(None)
        } else {
            Err(incomplete(table, shop, "access_token"))
        };
    };
    let default_url = || api_url(&format!("https://{}", shop.id));
    let url = match shop.parse_api(table, "api_url", api_url)? {
        Some(url) => url,
        None => default_url().map_err(ConfigError::Inconsistent)?,
    };
    Ok(Some(ShopifyApi {
        access_token: Secret::new(token),
        version: shop
            .parse_api(table, "api_version", api_version)?
            .unwrap_or_else(|| DEFAULT_SHOPIFY_API_VERSION.to_owned()),
        url,
    }))
}

fn woocommerce_api(shop: &ShopEntry) -> Result<Option<WooCommerceApi>, ConfigError> {
    let table = &WOOCOMMERCE_TABLE;
    match (
        shop.api_value("consumer_key"),
        shop.api_value("consumer_secret"),
    ) {
        (Some(key), Some(secret)) => {
            let url = match shop.parse_api(table, "api_url", api_url)? {
                Some(url) => url,
                None => api_url(&shop.id).map_err(ConfigError::Inconsistent)?,
            };
            Ok(Some(WooCommerceApi {
                consumer_key: Secret::new(key),
                consumer_secret: Secret::new(secret),
                url,
            }))
        }
        _ if shop.api.is_empty() => Ok(None),
        (Some(_), None) | (None, None) => Err(incomplete(table, shop, "consumer_secret")),
        (None, Some(_)) => Err(incomplete(table, shop, "consumer_key")),
    }
}

/// The file's shops, plus the one of the environment-style settings, which
/// replaces the file's entry for the same shop (keeping its secret and API
/// keys where it brings none). A shop without a secret is kept: it is off, not forgotten.
fn shops(layers: &Layers, platform: &Platform) -> Result<Vec<ShopEntry>, ConfigError> {
    let mut shops: Vec<ShopEntry> = Vec::new();
    if let Some(file) = layers.file() {
        for entry in file.shops(&platform.table) {
            let id = (platform.parse_id)(&entry.id).map_err(|reason| ConfigError::Invalid {
                setting: format!("[[{}]] {}", platform.table.name, platform.table.id),
                value: shown(&entry.id, false),
                origin: format!(
                    "shop #{} in config file {}",
                    entry.number,
                    file.path.display()
                ),
                reason,
            })?;
            if shops.iter().any(|known| (platform.same)(&known.id, &id)) {
                return Err(ConfigError::Inconsistent(format!(
                    "config file {}: [[{}]] {id} is configured twice",
                    file.path.display(),
                    platform.table.name
                )));
            }
            let origin = format!(
                "shop #{} in config file {}",
                entry.number,
                file.path.display()
            );
            shops.push(ShopEntry {
                id,
                secret: entry.secret.clone().map(Secret::new),
                api: entry
                    .api
                    .iter()
                    .map(|(k, v)| (*k, (v.clone(), origin.clone())))
                    .collect(),
            });
        }
    }
    let env_api: Vec<(&'static str, &'static Setting, Raw)> = platform
        .table
        .api
        .iter()
        .filter_map(|(key, setting)| Some((*key, *setting, layers.get(setting)?)))
        .collect();
    match (layers.get(&platform.id), layers.get(&platform.secret)) {
        (None, None) => {
            if let Some((_, _, raw)) = env_api.first() {
                return Err(ConfigError::Inconsistent(format!(
                    "{} is set but {} is not: say which shop the API access belongs to \
                     (or configure shops in [[{}]] tables of the config file)",
                    raw.describe(),
                    platform.id.env,
                    platform.table.name
                )));
            }
        }
        (None, Some(secret)) => {
            return Err(ConfigError::Inconsistent(format!(
                "{} is set but {} is not: say which shop the secret belongs to \
                 (or configure shops in [[{}]] tables of the config file)",
                secret.describe(),
                platform.id.env,
                platform.table.name
            )));
        }
        (Some(raw), secret) => {
            let id = raw.parse(&platform.id, platform.parse_id)?;
            let secret = secret.map(|raw| Secret::new(raw.value));
            let index = match shops
                .iter()
                .position(|known| (platform.same)(&known.id, &id))
            {
                Some(index) => index,
                None => {
                    shops.push(ShopEntry {
                        id: id.clone(),
                        secret: None,
                        api: HashMap::new(),
                    });
                    shops.len() - 1
                }
            };
            let shop = &mut shops[index];
            shop.id = id;
            if secret.is_some() {
                shop.secret = secret;
            }
            for (key, _, raw) in env_api {
                let origin = raw.describe();
                shop.api.insert(key, (raw.value, origin));
            }
        }
    }
    Ok(shops)
}
