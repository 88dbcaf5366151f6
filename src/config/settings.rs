//! The settings table of SPEC §2: each setting's environment name, the Django
//! app's names for it (aliases) and its key in the config file.

/// One setting as it can be written down.
pub(super) struct Setting {
    /// Our environment name; errors name the setting by it.
    pub env: &'static str,
    /// The Django app's (and Tutor's) names: weaker than `env` within one layer.
    pub aliases: &'static [&'static str],
    /// The flat key in the config file; `None` where the file has none.
    pub key: Option<&'static str>,
    /// Never shown: errors print `<redacted>` instead of the value.
    pub secret: bool,
    /// The config file may give a list of strings (joined with commas).
    pub list: bool,
}

const fn setting(env: &'static str, key: &'static str) -> Setting {
    Setting {
        env,
        aliases: &[],
        key: Some(key),
        secret: false,
        list: false,
    }
}

const fn env_only(env: &'static str) -> Setting {
    Setting {
        env,
        aliases: &[],
        key: None,
        secret: false,
        list: false,
    }
}

pub(super) const CONFIG_FILE: Setting = env_only("EDX_WEBHOOKS_CONFIG");

pub(super) const LISTEN: Setting = setting("EDX_WEBHOOKS_LISTEN", "listen");
pub(super) const DJANGO_DATABASE_URL: &str = "DJANGO_DATABASE_URL";
/// Tutor's names come last: the group counts as set when any of them is.
pub(super) const DATABASE_URL: Setting = Setting {
    aliases: &[
        DJANGO_DATABASE_URL,
        "DB_MIGRATION_ENGINE",
        "DB_MIGRATION_NAME",
        "DB_MIGRATION_USER",
        "DB_MIGRATION_PASS",
        "DB_MIGRATION_HOST",
        "DB_MIGRATION_PORT",
    ],
    ..setting("EDX_WEBHOOKS_DATABASE_URL", "database_url")
};
pub(super) const DB_MIGRATION_PREFIX: &str = "DB_MIGRATION_";
pub(super) const DB_MIGRATION_ENGINE: Setting = env_only("DB_MIGRATION_ENGINE");
pub(super) const DB_MIGRATION_NAME: Setting = env_only("DB_MIGRATION_NAME");
pub(super) const DB_MIGRATION_USER: Setting = env_only("DB_MIGRATION_USER");
pub(super) const DB_MIGRATION_PASS: Setting = Setting {
    secret: true,
    ..env_only("DB_MIGRATION_PASS")
};
pub(super) const DB_MIGRATION_HOST: Setting = env_only("DB_MIGRATION_HOST");
pub(super) const DB_MIGRATION_PORT: Setting = env_only("DB_MIGRATION_PORT");

pub(super) const LMS_BASE_URL: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_LMS_BASE_URL"],
    ..setting("EDX_WEBHOOKS_LMS_BASE_URL", "lms_base_url")
};
pub(super) const OAUTH2_CLIENT_ID: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_EDX_OAUTH2_KEY"],
    ..setting("EDX_WEBHOOKS_OAUTH2_CLIENT_ID", "oauth2_client_id")
};
pub(super) const OAUTH2_CLIENT_SECRET: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_EDX_OAUTH2_SECRET"],
    secret: true,
    ..setting("EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET", "oauth2_client_secret")
};

pub(super) const SHOPIFY_SHOP_DOMAIN: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SETTINGS_SHOPIFY_SHOP_DOMAIN"],
    ..env_only("EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN")
};
pub(super) const SHOPIFY_API_KEY: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SETTINGS_SHOPIFY_API_KEY"],
    secret: true,
    ..env_only("EDX_WEBHOOKS_SHOPIFY_API_KEY")
};
pub(super) const WOOCOMMERCE_SOURCE: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_SOURCE"],
    ..env_only("EDX_WEBHOOKS_WOOCOMMERCE_SOURCE")
};
pub(super) const WOOCOMMERCE_SECRET: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_SECRET"],
    secret: true,
    ..env_only("EDX_WEBHOOKS_WOOCOMMERCE_SECRET")
};

/// The shop's API access, for reconciliation (the environment's shop; a
/// `[[shopify]]`/`[[woocommerce]]` table has its own keys, `ShopTable::api`).
pub(super) const SHOPIFY_ACCESS_TOKEN: Setting = Setting {
    secret: true,
    ..env_only("EDX_WEBHOOKS_SHOPIFY_ACCESS_TOKEN")
};
pub(super) const SHOPIFY_API_VERSION: Setting = env_only("EDX_WEBHOOKS_SHOPIFY_API_VERSION");
pub(super) const SHOPIFY_API_URL: Setting = env_only("EDX_WEBHOOKS_SHOPIFY_API_URL");
pub(super) const WOOCOMMERCE_CONSUMER_KEY: Setting = Setting {
    secret: true,
    ..env_only("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_KEY")
};
pub(super) const WOOCOMMERCE_CONSUMER_SECRET: Setting = Setting {
    secret: true,
    ..env_only("EDX_WEBHOOKS_WOOCOMMERCE_CONSUMER_SECRET")
};
pub(super) const WOOCOMMERCE_API_URL: Setting = env_only("EDX_WEBHOOKS_WOOCOMMERCE_API_URL");
pub(super) const RECONCILE_INTERVAL: Setting =
    setting("EDX_WEBHOOKS_RECONCILE_INTERVAL", "reconcile_interval");
pub(super) const RECONCILE_LOOKBACK: Setting =
    setting("EDX_WEBHOOKS_RECONCILE_LOOKBACK", "reconcile_lookback");

pub(super) const REQUIRE_PAYMENT: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SETTINGS_WOOCOMMERCE_REQUIRE_PAYMENT"],
    ..setting("EDX_WEBHOOKS_REQUIRE_PAYMENT", "require_payment")
};
pub(super) const SKU_PREFIX: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SKU_PREFIX"],
    ..setting("EDX_WEBHOOKS_SKU_PREFIX", "sku_prefix")
};
pub(super) const AUTO_ENROLL: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_AUTO_ENROLL"],
    ..setting("EDX_WEBHOOKS_AUTO_ENROLL", "auto_enroll")
};
pub(super) const SEND_ENROLLMENT_EMAIL: Setting = Setting {
    aliases: &["DJANGO_WEBHOOK_RECEIVER_SEND_ENROLLMENT_EMAIL"],
    ..setting(
        "EDX_WEBHOOKS_SEND_ENROLLMENT_EMAIL",
        "send_enrollment_email",
    )
};

pub(super) const RETRY_DELAY: Setting = setting("EDX_WEBHOOKS_RETRY_DELAY", "retry_delay");
pub(super) const RETRY_MAX_DELAY: Setting =
    setting("EDX_WEBHOOKS_RETRY_MAX_DELAY", "retry_max_delay");
pub(super) const MAX_ATTEMPTS: Setting = setting("EDX_WEBHOOKS_MAX_ATTEMPTS", "max_attempts");
pub(super) const ACCOUNT_RECHECK_MAX: Setting =
    setting("EDX_WEBHOOKS_ACCOUNT_RECHECK_MAX", "account_recheck_max");
pub(super) const ACCOUNT_WAIT: Setting = setting("EDX_WEBHOOKS_ACCOUNT_WAIT", "account_wait");
pub(super) const BATCH_SIZE: Setting = setting("EDX_WEBHOOKS_BATCH_SIZE", "batch_size");
pub(super) const LMS_RATE_LIMIT: Setting = setting("EDX_WEBHOOKS_LMS_RATE_LIMIT", "lms_rate_limit");
pub(super) const LMS_TIMEOUT: Setting = setting("EDX_WEBHOOKS_LMS_TIMEOUT", "lms_timeout");
pub(super) const WORKERS: Setting = setting("EDX_WEBHOOKS_WORKERS", "workers");
pub(super) const MAX_BODY: Setting = setting("EDX_WEBHOOKS_MAX_BODY", "max_body");
pub(super) const HEADER_TIMEOUT: Setting = setting("EDX_WEBHOOKS_HEADER_TIMEOUT", "header_timeout");
pub(super) const MAX_CONNECTIONS: Setting =
    setting("EDX_WEBHOOKS_MAX_CONNECTIONS", "max_connections");
pub(super) const REQUEST_MEMORY: Setting = setting("EDX_WEBHOOKS_REQUEST_MEMORY", "request_memory");
pub(super) const TRUSTED_PROXIES: Setting = Setting {
    list: true,
    ..setting("EDX_WEBHOOKS_TRUSTED_PROXIES", "trusted_proxies")
};
pub(super) const ADMIN_PASSWORD: Setting = Setting {
    secret: true,
    ..setting("EDX_WEBHOOKS_ADMIN_PASSWORD", "admin_password")
};
pub(super) const ADMIN_PASSWORD_HASH: Setting = Setting {
    secret: true,
    ..setting("EDX_WEBHOOKS_ADMIN_PASSWORD_HASH", "admin_password_hash")
};
pub(super) const UNENROLL_ON_CANCEL: Setting =
    setting("EDX_WEBHOOKS_UNENROLL_ON_CANCEL", "unenroll_on_cancel");
pub(super) const LOG_FORMAT: Setting = setting("EDX_WEBHOOKS_LOG_FORMAT", "log_format");
pub(super) const LOG_LEVEL: Setting = Setting {
    aliases: &["DJANGO_LOG_LEVEL"],
    ..setting("RUST_LOG", "log_level")
};

/// Every setting, for `edx-webhooks settings` and the config file (those with
/// a `key`); a test below checks that no `Setting` of this file is missing.
pub(super) const ALL: &[&Setting] = &[
    &CONFIG_FILE,
    &LISTEN,
    &DATABASE_URL,
    &DB_MIGRATION_ENGINE,
    &DB_MIGRATION_NAME,
    &DB_MIGRATION_USER,
    &DB_MIGRATION_PASS,
    &DB_MIGRATION_HOST,
    &DB_MIGRATION_PORT,
    &LMS_BASE_URL,
    &OAUTH2_CLIENT_ID,
    &OAUTH2_CLIENT_SECRET,
    &SHOPIFY_SHOP_DOMAIN,
    &SHOPIFY_API_KEY,
    &WOOCOMMERCE_SOURCE,
    &WOOCOMMERCE_SECRET,
    &SHOPIFY_ACCESS_TOKEN,
    &SHOPIFY_API_VERSION,
    &SHOPIFY_API_URL,
    &WOOCOMMERCE_CONSUMER_KEY,
    &WOOCOMMERCE_CONSUMER_SECRET,
    &WOOCOMMERCE_API_URL,
    &RECONCILE_INTERVAL,
    &RECONCILE_LOOKBACK,
    &REQUIRE_PAYMENT,
    &SKU_PREFIX,
    &AUTO_ENROLL,
    &SEND_ENROLLMENT_EMAIL,
    &RETRY_DELAY,
    &RETRY_MAX_DELAY,
    &MAX_ATTEMPTS,
    &ACCOUNT_RECHECK_MAX,
    &ACCOUNT_WAIT,
    &BATCH_SIZE,
    &LMS_RATE_LIMIT,
    &LMS_TIMEOUT,
    &WORKERS,
    &MAX_BODY,
    &HEADER_TIMEOUT,
    &MAX_CONNECTIONS,
    &REQUEST_MEMORY,
    &TRUSTED_PROXIES,
    &ADMIN_PASSWORD,
    &ADMIN_PASSWORD_HASH,
    &UNENROLL_ON_CANCEL,
    &LOG_FORMAT,
    &LOG_LEVEL,
];

/// The config file's tables of shops, one per platform.
pub(super) struct ShopTable {
    /// `[[shopify]]`, `[[woocommerce]]`.
    pub name: &'static str,
    /// The key that identifies the shop: its domain or source URL.
    pub id: &'static str,
    /// The key of its signing secret.
    pub secret: &'static str,
    /// The keys of its API access, each with the environment setting it
    /// mirrors (which says whether it is a secret).
    pub api: &'static [(&'static str, &'static Setting)],
}

pub(super) const SHOPIFY_TABLE: ShopTable = ShopTable {
    name: "shopify",
    id: "shop_domain",
    secret: "api_key",
    api: &[
        ("access_token", &SHOPIFY_ACCESS_TOKEN),
        ("api_version", &SHOPIFY_API_VERSION),
        ("api_url", &SHOPIFY_API_URL),
    ],
};
/// The config file's product table: `[[products]]` with these keys.
pub(super) const PRODUCTS_TABLE: &str = "products";
pub(super) const PRODUCT_KEYS: &[&str] = &["sku", "courses", "mode"];

pub(super) const WOOCOMMERCE_TABLE: ShopTable = ShopTable {
    name: "woocommerce",
    id: "source",
    secret: "secret",
    api: &[
        ("consumer_key", &WOOCOMMERCE_CONSUMER_KEY),
        ("consumer_secret", &WOOCOMMERCE_CONSUMER_SECRET),
        ("api_url", &WOOCOMMERCE_API_URL),
    ],
};

#[cfg(test)]
mod tests {
    use super::ALL;

    /// The names of this file's `Setting` constants, read from its source.
    fn declared() -> Vec<&'static str> {
        include_str!("settings.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub(super) const "))
            .filter_map(|rest| rest.split_once(": "))
            .filter(|(_, ty)| ty.starts_with("Setting ") || *ty == "Setting =")
            .map(|(name, _)| name)
            .collect()
    }

    #[test]
    fn every_setting_is_in_the_list_once() {
        let source = include_str!("settings.rs");
        let list = source
            .split("pub(super) const ALL: &[&Setting] = &[")
            .nth(1)
            .and_then(|rest| rest.split("];").next())
            .expect("the list");
        let listed: Vec<&str> = list
            .lines()
            .filter_map(|line| line.trim().strip_prefix('&')?.strip_suffix(','))
            .collect();
        let declared = declared();
        assert!(
            declared.len() > 30,
            "the scan finds the constants: {declared:?}"
        );
        assert_eq!(
            listed, declared,
            "ALL lists every Setting, in the file's order"
        );
        let mut names: Vec<&str> = ALL.iter().map(|s| s.env).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "no environment name twice");
    }
}
