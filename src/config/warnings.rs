//! Problems visible from the settings alone: none stops the service, each
//! means some deliveries or enrollments cannot succeed until it is fixed.
//! Logged at start, shown by `/readyz`, `/status`, the dashboard and `check`.

use std::fmt;

use super::{usable_secret, Config};

/// One problem, and what to set to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// What it is about: `shops`, `Shopify shop a.myshopify.com`, `LMS OAuth2 client`, ...
    pub subject: String,
    /// What is wrong and the fix.
    pub problem: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.problem)
    }
}

pub const NO_SHOP: &str = "shops";
pub const OAUTH2_CLIENT: &str = "LMS OAuth2 client";
pub const LMS_URL: &str = "LMS base URL";

pub fn shopify_subject(domain: &str) -> String {
    format!("Shopify shop {domain}")
}

pub fn woocommerce_subject(source: &str) -> String {
    format!("WooCommerce shop {source}")
}

impl Config {
    /// Every problem the settings show, in the order an operator fixes them.
    pub fn warnings(&self) -> Vec<Warning> {
        let mut found = Vec::new();
        let mut warn = |subject: String, problem: &str| {
            found.push(Warning {
                subject,
                problem: problem.to_owned(),
            })
        };
        if self.shopify.is_empty() && self.woocommerce.is_empty() {
            warn(
                NO_SHOP.into(),
                "no shop is configured, so every delivery is refused (403): set \
                 EDX_WEBHOOKS_SHOPIFY_SHOP_DOMAIN and EDX_WEBHOOKS_SHOPIFY_API_KEY, or \
                 EDX_WEBHOOKS_WOOCOMMERCE_SOURCE and EDX_WEBHOOKS_WOOCOMMERCE_SECRET \
                 (or [[shopify]] / [[woocommerce]] entries in the config file)",
            );
        }
        for shop in &self.shopify {
            if usable_secret(shop.api_key.as_ref()).is_none() {
                warn(
                    shopify_subject(&shop.domain),
                    "no signing key, so the shop is off: its deliveries are refused (403). Set \
                     EDX_WEBHOOKS_SHOPIFY_API_KEY (or api_key in its [[shopify]] entry of the \
                     config file) to the key shown under the shop's webhooks",
                );
            }
        }
        for shop in &self.woocommerce {
            if usable_secret(shop.secret.as_ref()).is_none() {
                warn(
                    woocommerce_subject(&shop.source),
                    "no secret, so the shop is off: its deliveries are refused (403). Set \
                     EDX_WEBHOOKS_WOOCOMMERCE_SECRET (or secret in its [[woocommerce]] entry of \
                     the config file) to the secret of the shop's webhooks",
                );
            }
        }
        let id = self.lms.client_id.as_deref().map(str::trim);
        let secret = usable_secret(self.lms.client_secret.as_ref());
        if id.is_none_or(str::is_empty) || secret.is_none() {
            warn(
                OAUTH2_CLIENT.into(),
                "EDX_WEBHOOKS_OAUTH2_CLIENT_ID and EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET must both be \
                 set (an OAuth2 application of the LMS, client credentials grant), else nobody \
                 is enrolled",
            );
        }
        let url = &self.lms.base_url;
        let local = match url.host() {
            Some(url::Host::Domain(name)) => name == "localhost" || !name.contains('.'),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback() || ip.is_private(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => true,
        };
        if url.scheme() == "http" && !local {
            warn(
                LMS_URL.into(),
                "EDX_WEBHOOKS_LMS_BASE_URL is plain http:// to another machine: the OAuth2 \
                 secret and tokens cross the network unencrypted; use https://",
            );
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, ShopifyShop};

    fn subjects(config: &Config) -> Vec<String> {
        config.warnings().into_iter().map(|w| w.subject).collect()
    }

    #[test]
    fn nothing_configured_says_so() {
        assert_eq!(subjects(&Config::defaults()), [NO_SHOP, OAUTH2_CLIENT]);
    }

    #[test]
    fn a_complete_configuration_has_none() {
        let mut config = Config::defaults();
        config.lms.base_url = "https://lms.example.com/".parse().unwrap();
        config.lms.client_id = Some("edx-webhooks".into());
        config.lms.client_secret = Some(Secret::new("s"));
        config.shopify = vec![ShopifyShop {
            domain: "a.myshopify.com".into(),
            api_key: Some(Secret::new("k")),
            api: None,
        }];
        assert!(config.warnings().is_empty(), "{:?}", config.warnings());

        config.shopify[0].api_key = Some(Secret::new(" "));
        config.lms.base_url = "http://lms.example.com/".parse().unwrap();
        assert_eq!(subjects(&config), ["Shopify shop a.myshopify.com", LMS_URL]);
    }
}
