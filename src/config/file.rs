//! The TOML config file: flat keys named like the settings (`listen`,
//! `retry_delay`, ...) plus `[[shopify]]` and `[[woocommerce]]` tables for
//! several shops. Unknown keys are errors, to catch typos.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::error::{shown, REDACTED};
use super::settings::{
    Setting, ShopTable, ALL, PRODUCTS_TABLE, PRODUCT_KEYS, SHOPIFY_TABLE, WOOCOMMERCE_TABLE,
};
use super::sources::Origin;
use super::ConfigError;

pub(super) struct FileLayer {
    pub path: PathBuf,
    /// Setting key → text (TOML numbers and booleans written as text).
    pub values: HashMap<&'static str, String>,
    pub shopify: Vec<FileShop>,
    pub woocommerce: Vec<FileShop>,
    pub products: Vec<FileProduct>,
}

impl FileLayer {
    pub fn shops(&self, table: &ShopTable) -> &[FileShop] {
        if table.name == SHOPIFY_TABLE.name {
            &self.shopify
        } else {
            &self.woocommerce
        }
    }
}

/// One `[[shopify]]` / `[[woocommerce]]` entry, not yet validated.
pub(super) struct FileShop {
    /// 1-based position among its platform's entries, for messages.
    pub number: usize,
    /// The shop's domain (Shopify) or source URL (WooCommerce).
    pub id: String,
    pub secret: Option<String>,
    /// API access keys given (`ShopTable::api`), by key.
    pub api: HashMap<&'static str, String>,
}

/// One `[[products]]` entry, read but not yet validated (`load` checks keys and modes).
pub(super) struct FileProduct {
    /// 1-based position among the entries, for messages.
    pub number: usize,
    pub sku: String,
    pub courses: Vec<String>,
    pub mode: Option<String>,
}

pub(super) fn read(path: &Path) -> Result<FileLayer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
        what: "config file",
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text)
}

fn parse(path: &Path, text: &str) -> Result<FileLayer, ConfigError> {
    // `message()`, not `Display`: the latter quotes the line, which may hold a secret.
    let table: Table = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        ConfigError::Malformed {
            file: match line {
                Some(line) => format!("config file {}, line {line}", path.display()),
                None => format!("config file {}", path.display()),
            },
            message: e.message().trim().replace('\n', "; "),
        }
    })?;
    let mut layer = FileLayer {
        path: path.to_owned(),
        values: HashMap::new(),
        shopify: Vec::new(),
        woocommerce: Vec::new(),
        products: Vec::new(),
    };
    for (key, value) in table {
        if key == SHOPIFY_TABLE.name {
            layer.shopify = shops(path, &SHOPIFY_TABLE, value)?;
        } else if key == WOOCOMMERCE_TABLE.name {
            layer.woocommerce = shops(path, &WOOCOMMERCE_TABLE, value)?;
        } else if key == PRODUCTS_TABLE {
            layer.products = products(path, value)?;
        } else {
            let Some((setting, known)) = ALL
                .iter()
                .find_map(|s| Some((*s, s.key.filter(|k| *k == key)?)))
            else {
                return Err(unknown_key(path, &key, &known_keys()));
            };
            if let Some(text) = scalar(path, setting, known, value)? {
                layer.values.insert(known, text);
            }
        }
    }
    Ok(layer)
}

/// A value as text; `None` for an empty string, which is not set.
fn scalar(
    path: &Path,
    setting: &Setting,
    key: &str,
    value: Value,
) -> Result<Option<String>, ConfigError> {
    let text = match value {
        Value::String(text) => text,
        Value::Integer(number) => number.to_string(),
        Value::Boolean(flag) => flag.to_string(),
        Value::Array(items) if setting.list && items.iter().all(Value::is_str) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        other => {
            return Err(ConfigError::Invalid {
                setting: setting.env.to_owned(),
                value: shown(&other.to_string(), setting.secret),
                origin: Origin::File(path.to_owned()).describe(key),
                reason: if setting.list {
                    "expected a string or a list of strings".into()
                } else {
                    "expected a string, a whole number or true/false".into()
                },
            })
        }
    };
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}

fn shops(path: &Path, table: &ShopTable, value: Value) -> Result<Vec<FileShop>, ConfigError> {
    let entries = match value {
        Value::Array(entries) => entries,
        // A lone `[shopify]` table is read as one shop.
        Value::Table(entry) => vec![Value::Table(entry)],
        _ => {
            return Err(ConfigError::Inconsistent(format!(
                "config file {}: `{}` must be tables written [[{}]]",
                path.display(),
                table.name,
                table.name
            )))
        }
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| shop(path, table, index + 1, entry))
        .collect()
}

fn shop(
    path: &Path,
    table: &ShopTable,
    number: usize,
    entry: Value,
) -> Result<FileShop, ConfigError> {
    let where_ = || {
        format!(
            "config file {}: [[{}]] #{number}",
            path.display(),
            table.name
        )
    };
    let Value::Table(fields) = entry else {
        return Err(ConfigError::Inconsistent(format!(
            "{} is not a table",
            where_()
        )));
    };
    let (mut id, mut secret) = (None, None);
    let mut api = HashMap::new();
    for (key, value) in fields {
        let api_key = table.api.iter().find(|(k, _)| *k == key);
        let mut api_value = None;
        let field = if key == table.id {
            &mut id
        } else if key == table.secret {
            &mut secret
        } else if api_key.is_some() {
            &mut api_value
        } else {
            let known = std::iter::once(table.id)
                .chain(std::iter::once(table.secret))
                .chain(table.api.iter().map(|(k, _)| *k))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(unknown_key(path, &format!("{}.{key}", table.name), &known));
        };
        let hidden = key == table.secret || api_key.is_some_and(|(_, s)| s.secret);
        let Value::String(text) = value else {
            return Err(ConfigError::Invalid {
                setting: format!("[[{}]] {key}", table.name),
                value: if hidden {
                    REDACTED.to_owned()
                } else {
                    value.to_string()
                },
                origin: format!("shop #{number} in config file {}", path.display()),
                reason: "expected a string".into(),
            });
        };
        let text = text.trim();
        if !text.is_empty() {
            *field = Some(text.to_owned());
        }
        if let (Some((known, _)), Some(text)) = (api_key, api_value) {
            api.insert(*known, text);
        }
    }
    let id =
        id.ok_or_else(|| ConfigError::Inconsistent(format!("{} has no {}", where_(), table.id)))?;
    Ok(FileShop {
        number,
        id,
        secret,
        api,
    })
}

fn products(path: &Path, value: Value) -> Result<Vec<FileProduct>, ConfigError> {
    let Value::Array(entries) = value else {
        return Err(ConfigError::Inconsistent(format!(
            "config file {}: `{PRODUCTS_TABLE}` must be tables written [[{PRODUCTS_TABLE}]]",
            path.display()
        )));
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(index, entry)| product(path, index + 1, entry))
        .collect()
}

fn product(path: &Path, number: usize, entry: Value) -> Result<FileProduct, ConfigError> {
    let where_ = || {
        format!(
            "config file {}: [[{PRODUCTS_TABLE}]] #{number}",
            path.display()
        )
    };
    let Value::Table(fields) = entry else {
        return Err(ConfigError::Inconsistent(format!(
            "{} is not a table",
            where_()
        )));
    };
    let invalid = |key: &str, value: &Value, reason: &str| ConfigError::Invalid {
        setting: format!("[[{PRODUCTS_TABLE}]] {key}"),
        value: value.to_string(),
        origin: format!("product #{number} in config file {}", path.display()),
        reason: reason.to_owned(),
    };
    let (mut sku, mut courses, mut mode) = (None, None, None);
    for (key, value) in fields {
        match (key.as_str(), &value) {
            ("sku", Value::String(text)) => sku = Some(text.clone()),
            ("mode", Value::String(text)) => mode = Some(text.clone()),
            ("courses", Value::String(text)) => courses = Some(vec![text.clone()]),
            ("courses", Value::Array(items)) if items.iter().all(Value::is_str) => {
                courses = Some(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                )
            }
            ("courses", _) => {
                return Err(invalid(
                    &key,
                    &value,
                    "expected a list of course keys (strings)",
                ))
            }
            ("sku" | "mode", _) => return Err(invalid(&key, &value, "expected a string")),
            _ => {
                return Err(unknown_key(
                    path,
                    &format!("{PRODUCTS_TABLE}.{key}"),
                    &PRODUCT_KEYS.join(", "),
                ))
            }
        }
    }
    let sku = sku.ok_or_else(|| ConfigError::Inconsistent(format!("{} has no sku", where_())))?;
    let courses = courses
        .ok_or_else(|| ConfigError::Inconsistent(format!("{} ({sku}) has no courses", where_())))?;
    Ok(FileProduct {
        number,
        sku,
        courses,
        mode,
    })
}

fn known_keys() -> String {
    let flat = ALL.iter().filter_map(|s| s.key);
    let tables = [SHOPIFY_TABLE.name, WOOCOMMERCE_TABLE.name, PRODUCTS_TABLE]
        .map(|name| format!("[[{name}]]"));
    flat.map(str::to_owned)
        .chain(tables)
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_key(path: &Path, key: &str, known: &str) -> ConfigError {
    ConfigError::UnknownKey {
        path: path.to_owned(),
        key: key.to_owned(),
        known: known.to_owned(),
    }
}

#[cfg(test)]
mod tests;
