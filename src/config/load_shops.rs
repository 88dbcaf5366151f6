//! The shops' settings: the file's `[[shopify]]` and `[[woocommerce]]`
//! tables merged with the environment's one shop, each with its API access.

use std::collections::HashMap;

use url::Url;

use super::error::shown;
use super::settings::*;
use super::sources::{Layers, Raw};
use super::values::{self, Parsed};
use super::{ConfigError, Secret, ShopifyShop, WooCommerceShop};
use super::{ShopifyApi, WooCommerceApi, DEFAULT_SHOPIFY_API_VERSION};

/// The Shopify shops, each with its signing key and API access.
pub(super) fn shopify(layers: &Layers) -> Result<Vec<ShopifyShop>, ConfigError> {
    shops(layers, &SHOPIFY)?
        .into_iter()
        .map(|shop| {
            let api = shopify_api(&shop)?;
            Ok(ShopifyShop {
                domain: shop.id,
                api_key: shop.secret,
                api,
            })
        })
        .collect()
}

/// The WooCommerce shops, each with its secret and API access.
pub(super) fn woocommerce(layers: &Layers) -> Result<Vec<WooCommerceShop>, ConfigError> {
    shops(layers, &WOOCOMMERCE)?
        .into_iter()
        .map(|shop| {
            let api = woocommerce_api(&shop)?;
            Ok(WooCommerceShop {
                source: shop.id,
                secret: shop.secret,
                api,
            })
        })
        .collect()
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
