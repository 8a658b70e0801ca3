//! The Harvest v3 client: OAuth tokens, one page fetch with its retry table, `Link` following,
//! and the shared rate budget.
//!
//! Contract:
//! - Only the first page of a read carries parameters; later pages are the `Link rel="next"` URL
//!   exactly as sent (v3 answers 422 to a cursor combined with anything else). A next link must
//!   stay on the API's origin, so the bearer token is never sent elsewhere; so must a redirect
//!   (one to another origin fails the request), so another origin's answer is never a page.
//! - Every request first takes a slot from the shared [`budget::RateBudget`] and a place among
//!   the `max_in_flight` concurrent requests.
//! - Every wait (rate window, backoff, `Retry-After`, token retries) and every request in flight
//!   ends as soon as the run's stop signal ([`Cancel`]) does: [`FetchError::Interrupted`].
//! - The retry table (status → action) lives in [`HarvestClient::get_page`] and nowhere else:
//!   401 → refresh the token and retry (a token that expired in transit is simply replaced; a
//!   second refusal of a token well within its lifetime is fatal); 403 → the stream is skipped;
//!   422 on a cursor → restart the window; 429 → wait `Retry-After` (at most 15 minutes in all
//!   per page; a wait that would cross the run's deadline ends the request at once); 5xx,
//!   timeouts, resets and truncated bodies → capped, jittered exponential backoff; other 4xx →
//!   the stream fails.
//! - No page waits for ever: a page not received within `stall_timeout` (retries and waits
//!   included) fails its stream with [`FetchError::Stalled`], which names the setting — the
//!   request timeout alone misses a server that trickles bytes, and the watchdog also covers
//!   any wait that a future change might leave unbounded.
//! - A body is read up to `max_page_bytes` after decompression, never further (a gzip bomb fails
//!   its stream with a clear error instead of filling memory).

pub mod auth;
pub mod budget;
pub mod link;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use tokio::sync::Semaphore;
use url::Url;

use crate::cancel::Cancel;
use crate::config::Config;
use crate::events;
use auth::TokenSource;
use budget::RateBudget;

/// How many times a transient failure (5xx, reset, timeout, truncation) is retried per page.
const MAX_TRANSIENT_RETRIES: usize = 8;
/// The wait after a 429 without a (readable) `Retry-After`.
const RETRY_AFTER_DEFAULT: Duration = Duration::from_secs(5);

/// How many 429s in a row a page survives before giving up (each waits `Retry-After`).
const MAX_RATE_LIMITED: usize = 50;
/// How long one page may wait on 429s in total before it fails (a 429 storm with long
/// `Retry-After`s once held a run for hours).
const MAX_RATE_LIMITED_WAIT: Duration = Duration::from_secs(15 * 60);
/// How many tokens in a row may expire on their way to the API for one page (each is replaced).
const MAX_EXPIRED_IN_TRANSIT: usize = 5;

/// Told what the client does as it happens, for live progress. The client knows nothing of
/// terminals or bars: whoever draws them implements this (the `progress` module does) and hands
/// it to [`HarvestClient::set_observer`]. Calls come from the request tasks, so an
/// implementation must be cheap and never block.
pub trait Observer: Send + Sync {
    /// A request was let through the rate budget and is about to be sent.
    fn request_started(&self);
    /// A request waits for the rate-limit window, which reopens at `until`.
    fn rate_wait_began(&self, until: Instant);
    /// That wait is over.
    fn rate_wait_ended(&self);
}

/// Why a page could not be fetched, grouped by what the caller does next.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// 403: the credential lacks this resource's scope, or `sub` is not a Site Admin.
    /// The stream is skipped; the rest of the run goes on.
    #[error("{detail}")]
    Forbidden { reason: Forbidden, detail: String },
    /// The cursor expired (422 on a cursor request): restart the window.
    #[error("the pagination cursor expired")]
    CursorExpired,
    /// The token endpoint refused the credentials, or the API refused a token well within its
    /// lifetime twice (fatal for the run).
    #[error("{0}")]
    Auth(String),
    /// The token endpoint could not be reached or answered 5xx through every retry: transient,
    /// a later run may succeed.
    #[error("{0}")]
    TokenUnavailable(String),
    /// A request the API rejects for good (404, 422 on a first page, other 4xx): this stream fails.
    #[error("{0}")]
    Rejected(String),
    /// The API stayed unavailable after every retry: this stream fails.
    #[error("{0}")]
    Unavailable(String),
    /// Something we cannot interpret.
    #[error("{0}")]
    Fatal(String),
    /// No page arrived within `stall_timeout` (the stall watchdog): this stream fails, a later
    /// run may succeed.
    #[error(
        "no page arrived from {url} for {} (stall_timeout); the API accepted the request but stopped answering. Raise stall_timeout if its pages legitimately take this long",
        config_duration(*.after)
    )]
    Stalled { url: String, after: Duration },
    /// The run was stopped (signal or deadline) while this request waited or was out.
    #[error("interrupted")]
    Interrupted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    MissingScope,
    NotSiteAdmin,
}

/// Per-stream request counters (the run summary reads them).
#[derive(Debug, Default)]
pub struct RequestStats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    pub bytes: AtomicU64,
}

impl RequestStats {
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.retries.load(Ordering::Relaxed),
            self.rate_limited.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }
}

/// The outcome of one request, before the retry table decides what follows.
enum Attempt {
    Done(Page),
    Fail(FetchError),
    Transient(String),
    RateLimited(Duration),
    /// 401 for this token.
    Unauthorized(auth::Token),
}

/// One page of a list response.
#[derive(Debug)]
pub struct Page {
    /// The raw body: a JSON array of records.
    pub body: Bytes,
    /// The next page, if any (already checked to be on the API's origin).
    pub next: Option<Url>,
}

pub struct HarvestClient {
    http: reqwest::Client,
    api_url: Url,
    tokens: TokenSource,
    budget: Arc<RateBudget>,
    in_flight: Arc<Semaphore>,
    per_page: u32,
    /// Every wait of a request (window, backoff, Retry-After, token retries) and the request
    /// itself end when this does.
    cancel: Cancel,
    /// Largest body accepted after decompression (`max_page_bytes`).
    max_page_bytes: u64,
    /// Longest one page may take, retries and waits included (`stall_timeout`).
    stall_timeout: Duration,
}

impl HarvestClient {
    pub fn new(config: &Config) -> Result<Self, FetchError> {
        let http = http_client()?;
        Ok(HarvestClient {
            tokens: TokenSource::new(
                http.clone(),
                config.token_url.clone(),
                config.credentials.clone(),
            ),
            http,
            api_url: config.api_url.clone(),
            budget: Arc::new(RateBudget::new(config.max_requests_per_window)),
            in_flight: Arc::new(Semaphore::new(config.max_in_flight)),
            per_page: config.per_page,
            cancel: Cancel::new(),
            max_page_bytes: config.max_page_bytes,
            stall_timeout: config.stall_timeout,
        })
    }

    /// Stops every wait and request of this client when `cancel` does (the run's stop signal).
    pub fn with_cancel(mut self, cancel: Cancel) -> Self {
        self.cancel = cancel;
        self
    }

    /// Reports requests and rate-limit waits of this client to `observer` (live progress).
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        self.budget.set_observer(observer);
    }

    /// The rate-limit window as the last responses reported it (`None` before any response).
    pub fn rate_limit(&self) -> Option<budget::RateLimit> {
        self.budget.rate_limit()
    }

    /// Obtains a token now (used by `check` to report authentication separately).
    pub async fn authenticate(&self) -> Result<(), FetchError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(FetchError::Interrupted),
            t = self.tokens.token() => t.map(|_| ()),
        }
    }

    /// The first-page URL of a read: `<api_url>/v3/<resource>?per_page=…&<params>`.
    pub fn first_page_url(
        &self,
        resource: &str,
        params: &BTreeMap<String, String>,
        per_page: Option<u32>,
    ) -> Url {
        let mut url = self.api_url.clone();
        {
            let mut segs = url
                .path_segments_mut()
                .expect("validated http(s) URL has path segments");
            segs.pop_if_empty().push("v3").push(resource);
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("per_page", &per_page.unwrap_or(self.per_page).to_string());
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        url
    }

    /// Fetches one page, applying the retry table. `url` is a first-page URL or a next link.
    /// Ends with [`FetchError::Interrupted`] as soon as the run stops, whatever it waits for.
    pub async fn get_page(&self, url: &Url, stats: &RequestStats) -> Result<Page, FetchError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(FetchError::Interrupted),
            page = tokio::time::timeout(self.stall_timeout, self.get_page_retrying(url, stats)) => {
                page.unwrap_or_else(|_| Err(FetchError::Stalled {
                    url: redact_url(url),
                    after: self.stall_timeout,
                }))
            }
        }
    }

    async fn get_page_retrying(&self, url: &Url, stats: &RequestStats) -> Result<Page, FetchError> {
        let is_cursor = url.query_pairs().any(|(k, _)| k == "cursor");
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(250))
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(MAX_TRANSIENT_RETRIES)
            .with_jitter()
            .build();
        // 401s for a token refused well within its lifetime (a second one is fatal), and for a
        // token that expired on its way (refreshed and retried, bounded).
        let mut refused_fresh = false;
        let mut expired_in_transit = 0usize;
        let mut rate_limited = 0usize;
        let mut limited_for = Duration::ZERO;
        let mut attempts = 0u64;
        loop {
            if attempts > 0 {
                stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            attempts += 1;
            match self.attempt(url, is_cursor, stats).await {
                Attempt::Done(page) => return Ok(page),
                Attempt::Fail(e) => return Err(e),
                Attempt::Transient(why) => match backoff.next() {
                    Some(d) => {
                        events::request_retried(&redact_url(url), &why, d.as_millis() as u64);
                        tokio::time::sleep(d).await;
                    }
                    None => {
                        return Err(FetchError::Unavailable(format!(
                            "{} failed after {attempts} attempts: {why}",
                            redact_url(url)
                        )));
                    }
                },
                Attempt::RateLimited(wait) => {
                    // The budget now blocks every request until the window reopens.
                    stats.rate_limited.fetch_add(1, Ordering::Relaxed);
                    rate_limited += 1;
                    limited_for += wait;
                    if self.cancel.would_cross_deadline(wait) {
                        // Waiting would end after the run's deadline: stop now instead.
                        return Err(FetchError::Interrupted);
                    }
                    if limited_for > MAX_RATE_LIMITED_WAIT {
                        return Err(FetchError::Unavailable(format!(
                            "{}: rate-limited for {} s in a row (Retry-After {} s)",
                            redact_url(url),
                            limited_for.as_secs(),
                            wait.as_secs()
                        )));
                    }
                    if rate_limited > MAX_RATE_LIMITED {
                        return Err(FetchError::Unavailable(format!(
                            "{}: still rate-limited after {rate_limited} waits",
                            redact_url(url)
                        )));
                    }
                    events::rate_limited(&redact_url(url), wait.as_millis() as u64);
                }
                Attempt::Unauthorized(token) => {
                    self.tokens.invalidate(token.generation).await;
                    if token.well_within_lifetime() {
                        if refused_fresh {
                            return Err(FetchError::Auth(
                                "the API refused a freshly issued token (401 twice). Check that the credential is active and not revoked.".into(),
                            ));
                        }
                        refused_fresh = true;
                    } else {
                        // It expired between leaving us and reaching the server: not the
                        // credential's fault. A fresh token is fetched (once for all requests).
                        expired_in_transit += 1;
                        events::token_expired_in_transit(&redact_url(url), expired_in_transit);
                        if expired_in_transit > MAX_EXPIRED_IN_TRANSIT {
                            return Err(FetchError::Unavailable(format!(
                                "{}: {expired_in_transit} tokens in a row expired before the API saw them",
                                redact_url(url)
                            )));
                        }
                    }
                }
            }
        }
    }

    /// One request: holds a concurrency slot and a budget unit only while the request is out
    /// (never while sleeping before a retry). The token is taken last, after every wait, so it
    /// is as fresh as it can be when the request leaves.
    async fn attempt(&self, url: &Url, is_cursor: bool, stats: &RequestStats) -> Attempt {
        let Ok(_slot) = self.in_flight.acquire().await else {
            return Attempt::Fail(FetchError::Fatal("request pool closed".into()));
        };
        let ticket = self.budget.acquire().await;
        let token = match self.tokens.token().await {
            Ok(t) => t,
            Err(e) => {
                // Nothing was sent: the budget unit goes back unspent.
                self.budget.unspend(ticket);
                return Attempt::Fail(e);
            }
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let sent = self
            .http
            .get(url.clone())
            .bearer_auth(token.value.expose())
            .header("accept", "application/json")
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_redirect() => {
                self.budget.observe(ticket, &HeaderMap::new());
                return Attempt::Fail(FetchError::Fatal(format!(
                    "{} was redirected to another origin; refusing to follow it (the answer would not be the API's): {}",
                    redact_url(url),
                    describe_reqwest(&e)
                )));
            }
            Err(e) => {
                self.budget.observe(ticket, &HeaderMap::new());
                return Attempt::Transient(describe_reqwest(&e));
            }
        };
        let status = resp.status().as_u16();
        if status == 429 {
            // The window's end first, so a task woken by this answer already sees it.
            self.budget
                .observe_429(retry_after(resp.headers()).unwrap_or(RETRY_AFTER_DEFAULT));
        }
        self.budget.observe(ticket, resp.headers());
        match status {
            200..=299 => {
                let next = resp
                    .headers()
                    .get(reqwest::header::LINK)
                    .and_then(|v| v.to_str().ok())
                    .and_then(link::next_link)
                    .map(|l| self.check_next(l))
                    .transpose();
                let next = match next {
                    Ok(n) => n,
                    Err(e) => return Attempt::Fail(e),
                };
                match self.read_body(resp, url).await {
                    Ok(body) if looks_like_json_array(&body) => {
                        stats.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
                        Attempt::Done(Page { body, next })
                    }
                    Ok(_) => {
                        Attempt::Transient("response body is not a complete JSON array".into())
                    }
                    Err(a) => a,
                }
            }
            401 => Attempt::Unauthorized(token),
            403 => {
                let body = resp.text().await.unwrap_or_default();
                let reason = if body.to_ascii_lowercase().contains("admin") {
                    Forbidden::NotSiteAdmin
                } else {
                    Forbidden::MissingScope
                };
                Attempt::Fail(FetchError::Forbidden {
                    reason,
                    detail: error_message(&body),
                })
            }
            429 => {
                let wait = retry_after(resp.headers()).unwrap_or(RETRY_AFTER_DEFAULT);
                Attempt::RateLimited(wait)
            }
            422 if is_cursor => Attempt::Fail(FetchError::CursorExpired),
            500..=599 => Attempt::Transient(format!("the server answered {status}")),
            _ => {
                let body = resp.text().await.unwrap_or_default();
                Attempt::Fail(FetchError::Rejected(format!(
                    "{} answered {status}: {}",
                    redact_url(url),
                    error_message(&body)
                )))
            }
        }
    }

    /// Reads a body chunk by chunk (reqwest inflates gzip as it goes), never holding more than
    /// `max_page_bytes`: a body that decompresses beyond it (a gzip bomb) fails the stream
    /// instead of being inflated whole. Not retried: the same page would be as large again.
    async fn read_body(&self, mut resp: reqwest::Response, url: &Url) -> Result<Bytes, Attempt> {
        let limit = self.max_page_bytes;
        let hint = resp.content_length().unwrap_or(0).min(limit);
        let mut body = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    if (body.len() + chunk.len()) as u64 > limit {
                        return Err(Attempt::Fail(FetchError::Rejected(format!(
                            "{} answered a body larger than max_page_bytes ({limit} bytes after decompression); stopped reading it. Raise max_page_bytes, or lower per_page if records are this large",
                            redact_url(url)
                        ))));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Bytes::from(body)),
                Err(e) => return Err(Attempt::Transient(describe_reqwest(&e))),
            }
        }
    }

    /// Accepts a next link only on the API's own origin: the bearer token must never leave it.
    fn check_next(&self, link: &str) -> Result<Url, FetchError> {
        let next = Url::parse(link)
            .or_else(|_| self.api_url.join(link))
            .map_err(|_| {
                FetchError::Fatal(format!("the API sent an unreadable next link {link:?}"))
            })?;
        if next.origin() != self.api_url.origin() {
            return Err(FetchError::Fatal(format!(
                "the API sent a next link to another origin ({}); refusing to send the token there",
                next.origin().ascii_serialization()
            )));
        }
        Ok(next)
    }
}

/// The shared HTTP client: rustls with the ring provider, gzip, sane timeouts.
pub fn http_client() -> Result<reqwest::Client, FetchError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120))
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("greenhouse-extract/", env!("CARGO_PKG_VERSION")))
        .redirect(same_origin_redirects())
        .build()
        .map_err(|e| FetchError::Fatal(format!("cannot build the HTTP client: {e}")))
}

/// What a redirect refused for leaving the origin says (the request's error chain holds it).
const CROSS_ORIGIN_REDIRECT: &str = "redirect to another origin refused";

/// Redirects are followed only within the request's origin, like next links: reqwest would drop
/// the token on the way out, but the other origin's answer would still be taken as a page.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let from = attempt.previous().first().map(Url::origin);
        if from.as_ref() != Some(&attempt.url().origin()) {
            let to = attempt.url().origin().ascii_serialization();
            attempt.error(format!("{CROSS_ORIGIN_REDIRECT} ({to})"))
        } else if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else {
            attempt.follow()
        }
    })
}

/// rustls needs a process-wide crypto provider; we build with ring (see Cargo.toml).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// A transport error in one line, without the URL (which the caller adds, redacted).
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body incomplete"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// A duration as a person writes it in the config: `500ms`, `90s`, `30m`.
fn config_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The URL without its cursor value (cursors are long and useless in logs).
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    if u.query_pairs().any(|(k, _)| k == "cursor") {
        u.set_query(Some("cursor=(redacted)"));
    }
    u.to_string()
}

fn looks_like_json_array(body: &[u8]) -> bool {
    let trimmed = body.trim_ascii();
    trimmed.first() == Some(&b'[') && trimmed.last() == Some(&b']')
}

/// Flattens Greenhouse's error envelope (`message` and/or `errors` as strings or objects).
fn error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        let t = body.trim();
        return if t.is_empty() {
            "(empty body)".into()
        } else {
            t.chars().take(300).collect()
        };
    };
    let mut parts = Vec::new();
    if let Some(m) = v.get("message").and_then(|m| m.as_str()) {
        parts.push(m.to_string());
    }
    if let Some(errs) = v.get("errors").and_then(|e| e.as_array()) {
        for e in errs {
            match e {
                serde_json::Value::String(s) => parts.push(s.clone()),
                serde_json::Value::Object(o) => {
                    for (k, v) in o {
                        parts.push(format!("{k}: {}", v.as_str().unwrap_or(&v.to_string())));
                    }
                }
                other => parts.push(other.to_string()),
            }
        }
    }
    if parts.is_empty() {
        body.chars().take(300).collect()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelopes_flatten() {
        assert_eq!(
            error_message(
                r#"{"message":"Unprocessable Content","errors":[{"per_page":"too big"}]}"#
            ),
            "Unprocessable Content; per_page: too big"
        );
        assert_eq!(
            error_message(
                r#"{"errors":["When passing a cursor, do not include other query params."]}"#
            ),
            "When passing a cursor, do not include other query params."
        );
        assert_eq!(error_message(""), "(empty body)");
    }

    #[test]
    fn truncated_bodies_are_detected() {
        assert!(looks_like_json_array(b" [{\"id\":1}]\n"));
        assert!(!looks_like_json_array(b"[{\"id\":1}"));
        assert!(!looks_like_json_array(b""));
    }

    #[test]
    fn cursor_values_are_redacted() {
        let u = Url::parse("https://h/v3/jobs?cursor=secretish").unwrap();
        assert_eq!(redact_url(&u), "https://h/v3/jobs?cursor=(redacted)");
    }
}
