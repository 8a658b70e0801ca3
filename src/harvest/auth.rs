//! OAuth 2.0 client-credentials tokens for Harvest v3, cached and shared by all requests.
//!
//! Contract: at most one token request is in flight at a time (concurrent callers wait for it,
//! so a refresh after a 401 is single-flight); a cached token is reused until shortly before it
//! expires; after a 401 the caller invalidates the token it used and the next caller fetches a
//! fresh one. The token endpoint refusing the grant is [`FetchError::Auth`]; an endpoint that
//! cannot be reached or answers 5xx through every retry is [`FetchError::TokenUnavailable`]
//! (transient: its own exit code). Token values and the client secret
//! never appear in errors or logs: they are wrapped in `Secret`, and every token is registered
//! with the output scrubber (`secrets::register`) as soon as it is minted.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use super::FetchError;
use crate::config::Credentials;
use crate::secrets::Secret;

/// Refresh this long before the reported expiry, so a token never expires mid-request.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
const MAX_TOKEN_ATTEMPTS: usize = 6;

#[derive(Clone)]
pub struct Token {
    pub value: Secret,
    /// Increments with every token fetched; lets a caller invalidate exactly the token it used.
    pub generation: u64,
    expires: Option<Instant>,
    /// Refresh this long before `expires` (a tenth of the lifetime, at most EXPIRY_MARGIN).
    margin: Duration,
    /// The lifetime the token endpoint gave it.
    lifetime: Duration,
}

impl Token {
    /// Whether more than half of the token's lifetime is left: a 401 for such a token is the
    /// credential's (or the server's) problem, not a token that ran out on its way. A token
    /// without a known expiry (pre-minted) always counts as within its lifetime.
    pub fn well_within_lifetime(&self) -> bool {
        match self.expires {
            None => true,
            Some(e) => e.saturating_duration_since(Instant::now()) > self.lifetime / 2,
        }
    }
}

pub struct TokenSource {
    http: reqwest::Client,
    token_url: Url,
    credentials: Credentials,
    cached: Mutex<(Option<Token>, u64)>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// Seconds; Greenhouse sends an integer, a fraction is accepted too.
    #[serde(default)]
    expires_in: Option<f64>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, token_url: Url, credentials: Credentials) -> Self {
        TokenSource {
            http,
            token_url,
            credentials,
            cached: Mutex::new((None, 0)),
        }
    }

    /// A valid bearer token (cached, or freshly fetched).
    pub async fn token(&self) -> Result<Token, FetchError> {
        let mut guard = self.cached.lock().await;
        if let Some(t) = &guard.0
            && t.expires.is_none_or(|e| Instant::now() + t.margin < e)
        {
            return Ok(t.clone());
        }
        let generation = guard.1 + 1;
        let token = match &self.credentials {
            Credentials::AccessToken(secret) => {
                crate::secrets::register(secret.expose());
                if generation > 1 {
                    return Err(FetchError::Auth(
                        "the pre-minted access token was refused (expired or revoked). Provide a new token, or configure client_id/client_secret so tokens can be refreshed.".into(),
                    ));
                }
                Token {
                    value: secret.clone(),
                    generation,
                    expires: None,
                    margin: Duration::ZERO,
                    lifetime: Duration::ZERO,
                }
            }
            Credentials::ClientCredentials {
                client_id,
                client_secret,
                sub,
            } => {
                let (value, expires) = self.fetch(client_id, client_secret, *sub).await?;
                let lifetime = expires
                    .map(|e| e.saturating_duration_since(Instant::now()))
                    .unwrap_or(Duration::ZERO);
                Token {
                    value,
                    generation,
                    expires,
                    margin: (lifetime / 10).min(EXPIRY_MARGIN),
                    lifetime,
                }
            }
        };
        *guard = (Some(token.clone()), generation);
        Ok(token)
    }

    /// Forgets `generation`'s token after the API refused it (401), unless a newer one is cached.
    pub async fn invalidate(&self, generation: u64) {
        let mut guard = self.cached.lock().await;
        if guard.0.as_ref().is_some_and(|t| t.generation == generation) {
            guard.0 = None;
        }
    }

    async fn fetch(
        &self,
        client_id: &str,
        secret: &Secret,
        sub: Option<u64>,
    ) -> Result<(Secret, Option<Instant>), FetchError> {
        let mut form: Vec<(&str, String)> = vec![("grant_type", "client_credentials".into())];
        if let Some(sub) = sub {
            form.push(("sub", sub.to_string()));
        }
        let mut last = String::new();
        let mut retry_after_given = false;
        for attempt in 0..MAX_TOKEN_ATTEMPTS {
            if attempt > 0 && !std::mem::take(&mut retry_after_given) {
                tokio::time::sleep(Duration::from_millis(500 * (1 << attempt.min(5)))).await;
            }
            let resp = self
                .http
                .post(self.token_url.clone())
                .basic_auth(client_id, Some(secret.expose()))
                .form(&form)
                .send()
                .await;
            let resp = match resp {
                Ok(r) => r,
                Err(e) => {
                    last = format!(
                        "cannot reach the token endpoint {}: {}",
                        self.token_url,
                        super::describe_reqwest(&e)
                    );
                    continue;
                }
            };
            let status = resp.status();
            if status.as_u16() == 429 {
                let wait = super::retry_after(resp.headers()).unwrap_or(Duration::from_secs(5));
                last = "the token endpoint rate-limited us (429)".into();
                tokio::time::sleep(wait).await;
                retry_after_given = true;
                continue;
            }
            if status.is_server_error() {
                last = format!("the token endpoint {} answered {status}", self.token_url);
                // A Retry-After on a 5xx is the server's own estimate of when to come back.
                if let Some(wait) = super::retry_after(resp.headers()) {
                    tokio::time::sleep(wait.min(Duration::from_secs(60))).await;
                    retry_after_given = true;
                }
                continue;
            }
            let body = resp.text().await.unwrap_or_default();
            if status.is_success() {
                let parsed: TokenResponse = serde_json::from_str(&body).map_err(|_| {
                    FetchError::Fatal(format!(
                        "the token endpoint {} answered 200 without an access_token; is token_url right?",
                        self.token_url
                    ))
                })?;
                let expires = parsed
                    .expires_in
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(|s| Instant::now() + Duration::from_secs_f64(s.min(1e9)))
                    .or_else(|| {
                        let at =
                            chrono::DateTime::parse_from_rfc3339(parsed.expires_at.as_deref()?)
                                .ok()?;
                        let secs = (at.timestamp() - chrono::Utc::now().timestamp()).max(0) as u64;
                        Some(Instant::now() + Duration::from_secs(secs))
                    });
                // Masked on every output path from the moment it exists (see `logging`).
                crate::secrets::register(&parsed.access_token);
                return Ok((Secret::new(parsed.access_token), expires));
            }
            // 400/401/403: the grant itself was refused; retrying will not help.
            let code = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
                .unwrap_or_else(|| status.to_string());
            let hint = match code.as_str() {
                "invalid_client" | "unauthorized_client" => {
                    "check GREENHOUSE_CLIENT_ID and GREENHOUSE_CLIENT_SECRET (client_id/client_secret): they must be a \"Harvest V3 (OAuth)\" credential; a rotated secret stops working a week after rotation"
                }
                "invalid_request" if sub.is_some() => {
                    "the `sub` user id is not a user of this Greenhouse account; fix or remove `sub`"
                }
                _ => "check the credential and token_url",
            };
            return Err(FetchError::Auth(format!(
                "the token endpoint {} refused the credentials ({status}, {code}): {hint}",
                self.token_url
            )));
        }
        Err(FetchError::TokenUnavailable(format!(
            "{last} (after {MAX_TOKEN_ATTEMPTS} attempts); retry later"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(lifetime: Duration, left: Duration) -> Token {
        Token {
            value: Secret::new(String::from("t")),
            generation: 1,
            expires: Some(Instant::now() + left),
            margin: (lifetime / 10).min(EXPIRY_MARGIN),
            lifetime,
        }
    }

    /// A 401 for a token at the end of its life is an expiry in transit (refreshed, retried);
    /// only one refused with most of its life left counts against the credential.
    #[test]
    fn a_token_near_its_expiry_is_not_held_against_the_credential() {
        let ttl = Duration::from_secs(20);
        assert!(token(ttl, Duration::from_secs(15)).well_within_lifetime());
        assert!(!token(ttl, Duration::from_secs(1)).well_within_lifetime());
        assert!(!token(ttl, Duration::ZERO).well_within_lifetime());
    }
}
