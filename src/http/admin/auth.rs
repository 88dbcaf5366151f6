//! Who may use the admin UI: the password check, throttled per client
//! address, server-side sessions kept in the database, their cookie, and the
//! per-session CSRF token every form carries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::{Argon2, PasswordHash, PasswordVerifier};
use axum::http::HeaderMap;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::store::Store;

/// The session cookie; `Path=/admin` keeps it away from the webhook endpoints.
pub const SESSION_COOKIE: &str = "edx_webhooks_admin";
/// The login form's own CSRF cookie (double submit: there is no session yet).
pub const LOGIN_COOKIE: &str = "edx_webhooks_login";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// How long a login form stays valid.
pub const LOGIN_FORM_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// What a wrong password costs, so guessing is slow.
const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);
/// Password checks running at once, whoever asks: argon2 is costly.
const CONCURRENT_CHECKS: usize = 2;

/// The configured admin password, in the form it can be checked against.
#[derive(Clone)]
pub enum Credential {
    /// SHA-256 of the plain password: digests compare in constant time
    /// whatever the lengths.
    Plain([u8; 32]),
    /// An argon2 PHC string (validated when the configuration was read).
    Argon2(String),
}

impl Credential {
    /// `None` when no admin password is configured: the admin UI is off.
    pub fn from_config(config: &Config) -> Option<Credential> {
        if let Some(hash) = &config.admin_password_hash {
            return Some(Credential::Argon2(hash.expose().to_owned()));
        }
        config
            .admin_password
            .as_ref()
            .map(|password| Credential::Plain(Sha256::digest(password.expose()).into()))
    }

    fn matches(&self, password: &str) -> bool {
        match self {
            Credential::Plain(expected) => {
                let given: [u8; 32] = Sha256::digest(password).into();
                bool::from(given.ct_eq(expected))
            }
            Credential::Argon2(phc) => match PasswordHash::new(phc) {
                Ok(hash) => Argon2::default()
                    .verify_password(password.as_bytes(), &hash)
                    .is_ok(),
                Err(e) => {
                    tracing::error!(error = %e, "the admin password hash cannot be read");
                    false
                }
            },
        }
    }
}

/// One logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Hidden in every form of this session and checked on every POST.
    pub csrf: String,
}

/// The password check and the sessions.
pub struct Auth {
    credential: Credential,
    store: Store,
    /// One password check at a time per client address, each failure held
    /// for a moment: one address cannot guess faster than once a second,
    /// and cannot slow anybody else's login.
    gates: Mutex<HashMap<IpAddr, Arc<tokio::sync::Mutex<()>>>>,
    checks: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(credential: Credential, store: Store) -> Auth {
        Auth {
            credential,
            store,
            gates: Mutex::new(HashMap::new()),
            checks: tokio::sync::Semaphore::new(CONCURRENT_CHECKS),
        }
    }

    /// Checks a password from `client`; a wrong one is answered only after
    /// a delay, during which that client's next try waits.
    pub async fn check_password(&self, client: IpAddr, password: &str) -> bool {
        let gate = {
            let mut gates = self.gates.lock().expect("login gates lock");
            // Gates nobody waits at go: the map holds only clients trying now.
            gates.retain(|_, gate| Arc::strong_count(gate) > 1);
            gates.entry(throttled_as(client)).or_default().clone()
        };
        let _turn = gate.lock().await;
        let matches = {
            let _check = self.checks.acquire().await.expect("never closed");
            // argon2 is deliberately slow: off the async threads.
            let credential = self.credential.clone();
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || credential.matches(&password))
                .await
                .unwrap_or(false)
        };
        if !matches {
            tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        }
        matches
    }

    /// Starts a session; returns the cookie value.
    pub async fn open_session(&self) -> Result<String, crate::store::StoreError> {
        let id = random_token();
        self.store
            .open_admin_session(&key_of(&id), &random_token(), SESSION_LIFETIME)
            .await?;
        Ok(id)
    }

    /// The live session a cookie value names. A database that cannot be
    /// read logs no one in.
    pub async fn session(&self, id: &str) -> Option<Session> {
        match self.store.admin_session(&key_of(id)).await {
            Ok(found) => found.map(|csrf| Session { csrf }),
            Err(e) => {
                tracing::warn!(error = %e, "could not read admin sessions");
                None
            }
        }
    }

    pub async fn close_session(&self, id: &str) {
        if let Err(e) = self.store.close_admin_session(&key_of(id)).await {
            tracing::warn!(error = %e, "could not end an admin session");
        }
    }
}

/// IPv6 clients are throttled by their /64: one host usually holds all of it.
fn throttled_as(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(v6) => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            IpAddr::from(octets)
        }
    }
}

/// The hex SHA-256 of a session id: what is stored, never the id.
fn key_of(id: &str) -> String {
    Sha256::digest(id)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 256 random bits from the operating system, URL-safe.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares a submitted token with the expected one in constant time; an
/// empty expectation never matches.
pub fn tokens_match(given: &str, expected: &str) -> bool {
    !expected.is_empty()
        && given.len() == expected.len()
        && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for the admin pages; `max_age` zero removes it.
pub fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/admin; Max-Age={}; HttpOnly; SameSite=Strict{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// Whether the browser reached us over HTTPS: only a trusted proxy's
/// `X-Forwarded-Proto` can say so, since the service itself speaks plain HTTP.
pub fn over_https(peer: IpAddr, headers: &HeaderMap, config: &Config) -> bool {
    config.trusted_proxies.iter().any(|net| net.contains(&peer))
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use argon2::PasswordHasher;

    fn config_with(password: Option<&str>, hash: Option<String>) -> Config {
        let mut config = Config::defaults();
        config.admin_password = password.map(Secret::new);
        config.admin_password_hash = hash.map(Secret::new);
        config
    }

    #[test]
    fn no_password_no_admin() {
        assert!(Credential::from_config(&config_with(None, None)).is_none());
    }

    #[test]
    fn plain_password_matches_only_itself() {
        let credential = Credential::from_config(&config_with(Some("s3cret"), None)).unwrap();
        assert!(credential.matches("s3cret"));
        assert!(!credential.matches("s3cret "));
        assert!(!credential.matches(""));
    }

    #[test]
    fn argon2_hash_verifies() {
        let phc = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let credential = Credential::from_config(&config_with(None, Some(phc))).unwrap();
        assert!(credential.matches("correct horse"));
        assert!(!credential.matches("wrong horse"));
    }

    #[test]
    fn hashes_of_the_argon2_command_line_tool_verify() {
        // echo -n 'correct horse' | argon2 SALT -id -m 16 -t 2 -p 1 -e
        let phc = "$argon2id$v=19$m=65536,t=2,p=1$elgyUVB6Z21JU25laXptUQ$PzeH1gbYy7wkrrHsQdFBa5xwGTleShSm+CrIXmXDnGI";
        let credential = Credential::from_config(&config_with(None, Some(phc.into()))).unwrap();
        assert!(credential.matches("correct horse"));
        assert!(!credential.matches("correct horse "));
    }

    #[test]
    fn ipv6_clients_are_throttled_by_their_prefix() {
        let one: IpAddr = "2001:db8:1:2::5".parse().unwrap();
        let other: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(throttled_as(one), throttled_as(other));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttled_as(v4), v4);
        assert_eq!(key_of("x").len(), 64);
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abd", "abc"));
        assert!(!tokens_match("ab", "abc"));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "cookie",
            "a=1; edx_webhooks_admin=xyz; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn https_only_from_a_trusted_proxy() {
        let mut config = Config::defaults();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", "https".parse().unwrap());
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(!over_https(proxy, &headers, &config));
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        assert!(over_https(proxy, &headers, &config));
        assert!(!over_https("10.1.1.1".parse().unwrap(), &headers, &config));
        headers.insert("x-forwarded-proto", "http".parse().unwrap());
        assert!(!over_https(proxy, &headers, &config));
    }
}
