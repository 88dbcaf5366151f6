//! What can be wrong with the settings. Messages name the setting and show the
//! value, except a secret's, which shows as `<redacted>`.

use std::path::PathBuf;

use crate::redact::url_password;

pub(super) const REDACTED: &str = "<redacted>";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config or `.env` file that exists (or was asked for) but cannot be read.
    #[error("cannot read {what} {}: {source}", .path.display())]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A config or `.env` file that is not valid TOML / dotenv syntax.
    #[error("{file}: {message}")]
    Malformed { file: String, message: String },
    /// A key the config file does not know, most likely a typo.
    #[error("config file {}: unknown key `{key}` (known keys: {known})", .path.display())]
    UnknownKey {
        path: PathBuf,
        key: String,
        known: String,
    },
    /// One setting's value is wrong. `value` is quoted, or `<redacted>`.
    #[error("invalid {setting} {value} (from {origin}): {reason}")]
    Invalid {
        setting: String,
        value: String,
        origin: String,
        reason: String,
    },
    /// Settings that are fine alone but not together, or one that needs another.
    #[error("{0}")]
    Inconsistent(String),
}

/// A value as error messages may show it: quoted, with any password in a URL
/// hidden, or `<redacted>` for a secret.
pub(super) fn shown(value: &str, secret: bool) -> String {
    if secret {
        REDACTED.to_owned()
    } else {
        format!("{:?}", url_password(value))
    }
}
