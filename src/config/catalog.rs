//! The settings as `edx-webhooks settings` lists them, made from the table in
//! `settings.rs`: the one place they are defined.

use serde::Serialize;

use super::settings::ALL;

/// One setting's names: where it can be set, and whether it is a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SettingNames {
    /// Our environment name.
    pub env: &'static str,
    /// The Django app's (and Tutor's) names, accepted too; ours wins.
    pub aliases: &'static [&'static str],
    /// The flat key in the TOML config file, if it has one.
    pub file_key: Option<&'static str>,
    /// Its value is never shown.
    pub secret: bool,
}

/// Every setting the binary reads, in the order of the settings table.
pub fn known_settings() -> Vec<SettingNames> {
    ALL.iter()
        .map(|setting| SettingNames {
            env: setting.env,
            aliases: setting.aliases,
            file_key: setting.key,
            secret: setting.secret,
        })
        .collect()
}
