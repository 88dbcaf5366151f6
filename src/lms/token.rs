//! OAuth2 client credentials, cached until shortly before they expire.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use super::{excerpt, LmsClient, LmsError};
use crate::metrics::LmsCall;

#[derive(Clone)]
pub(super) struct Token {
    /// `JWT <token>` or `Bearer <token>`, as the token type asks.
    pub header: String,
    expires: Instant,
}

#[derive(Default)]
pub(super) struct TokenCache(Mutex<Option<Token>>);

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: Option<String>,
}

impl LmsClient {
    /// The cached token, or a new one; `fresh` forces a new one (after a 401).
    pub(super) async fn token(&self, fresh: bool) -> Result<Token, LmsError> {
        let mut cached = self.token.0.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|t| !fresh && t.expires > Instant::now())
        {
            return Ok(token.clone());
        }
        let token = self.request_token().await?;
        *cached = Some(token.clone());
        Ok(token)
    }

    async fn request_token(&self) -> Result<Token, LmsError> {
        let (Some(id), Some(secret)) = (&self.config.client_id, &self.config.client_secret) else {
            let missing: Vec<&str> = [
                (
                    self.config.client_id.is_none(),
                    "EDX_WEBHOOKS_OAUTH2_CLIENT_ID",
                ),
                (
                    self.config.client_secret.is_none(),
                    "EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET",
                ),
            ]
            .into_iter()
            .filter_map(|(missing, name)| missing.then_some(name))
            .collect();
            return Err(LmsError::Misconfigured {
                status: None,
                reason: format!(
                    "no OAuth2 client configured: set {} (the client id and secret of the LMS's OAuth2 application)",
                    missing.join(" and ")
                ),
            });
        };
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", id.as_str()),
            ("client_secret", secret.expose()),
            ("token_type", "jwt"),
        ];
        let request = self.http.post(self.url("oauth2/access_token")).form(&form);
        let answer = self.exchange(LmsCall::Token, request).await?;
        let (code, body) = (answer.status, answer.body);
        if (200..300).contains(&code) {
            let answer: TokenAnswer =
                serde_json::from_str(&body).map_err(|_| LmsError::Transient {
                    status: Some(code),
                    detail: "the LMS's token endpoint answered without an access token".into(),
                })?;
            let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3600));
            // Renew a little early so a token never expires on its way to the LMS.
            let margin = (lifetime / 10).min(Duration::from_secs(60));
            let kind = match answer.token_type.as_deref() {
                Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer",
                _ => "JWT",
            };
            return Ok(Token {
                header: format!("{kind} {}", answer.access_token),
                expires: Instant::now() + lifetime - margin,
            });
        }
        if code >= 500 {
            return Err(LmsError::Transient {
                status: Some(code),
                detail: format!("the LMS's token endpoint answered {code}"),
            });
        }
        let error = serde_json::from_str::<TokenError>(&body)
            .ok()
            .and_then(|e| e.error);
        let reason = match error.as_deref() {
            Some("invalid_client") => "the LMS rejected the OAuth2 client credentials (invalid_client): \
                 check EDX_WEBHOOKS_OAUTH2_CLIENT_ID and EDX_WEBHOOKS_OAUTH2_CLIENT_SECRET against the \
                 LMS's OAuth2 application (Django admin → Django OAuth Toolkit → Applications)"
                .to_owned(),
            _ => format!(
                "the LMS's token endpoint answered {code}: {}: check EDX_WEBHOOKS_LMS_BASE_URL and the OAuth2 application",
                excerpt(&body)
            ),
        };
        Err(LmsError::Misconfigured {
            status: Some(code),
            reason,
        })
    }
}
