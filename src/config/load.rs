//! `Config::load`: every setting of SPEC §2 read from its strongest layer,
//! parsed, then checked against the others.

use super::database_url::database_url;
use super::load_shops;
use super::settings::*;
use super::sources::{Layers, Sources};
use super::values::{self, Parsed};
use super::{Config, ConfigError, Secret, Warning};
use crate::domain::{CourseKey, Product};
use std::time::Duration;

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

        config.shopify = load_shops::shopify(layers)?;
        config.woocommerce = load_shops::woocommerce(layers)?;
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
