//! What the request handlers share — `server`'s `/v3`, `auth`'s `/token` and `control`'s
//! `/_sim`: the server's state and statistics, the response body type and the helpers that
//! build responses and set the rate-limit headers. It sits below all three, so `server` routes
//! to the other two without either of them importing `server`.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

use super::data::Db;
use super::ratelimit::{Decision, Limiter, WindowHistogram};
use super::webhooks::Hooks;
use super::{RateHeader, SimConfig};

pub(super) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

pub(super) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(super) struct TokenInfo {
    pub(super) client: String,
    pub(super) site_admin: bool,
    pub(super) expires_ms: i64,
}

pub(super) struct Stats {
    pub(super) by_resource: BTreeMap<String, BTreeMap<u16, u64>>,
    pub(super) total: u64,
    pub(super) rate_limited: u64,
    pub(super) records: u64,
    /// JSON body bytes of 200 list responses.
    pub(super) bytes: u64,
    pub(super) token_requests: u64,
    pub(super) faults: BTreeMap<&'static str, u64>,
    /// `/v3` requests per rate window (aligned like the limiter's windows).
    pub(super) windows: WindowHistogram,
}

impl Stats {
    pub(super) fn new(rate_window: u64) -> Self {
        Stats {
            by_resource: BTreeMap::new(),
            total: 0,
            rate_limited: 0,
            records: 0,
            bytes: 0,
            token_requests: 0,
            faults: BTreeMap::new(),
            windows: WindowHistogram::new(rate_window, WindowHistogram::DEFAULT_CAP),
        }
    }
}

pub(super) struct State {
    pub(super) cfg: Arc<SimConfig>,
    pub(super) base_url: String,
    pub(super) secret: u64,
    pub(super) db: RwLock<Db>,
    pub(super) tokens: Mutex<HashMap<String, TokenInfo>>,
    pub(super) limiter: Mutex<Limiter>,
    pub(super) token_limiter: Mutex<Limiter>,
    pub(super) stats: Mutex<Stats>,
    pub(super) seq: AtomicU64,
    pub(super) inflight: AtomicU64,
    pub(super) peak: AtomicU64,
    pub(super) minted: AtomicU64,
    /// Added to the wall clock (`POST /_sim/clock?advance_ms=`), so tests can let tokens expire
    /// and rate windows pass without waiting.
    pub(super) clock_offset_ms: AtomicI64,
    /// Webhook queue and log (a no-op without `--webhook-url`).
    pub(super) hooks: Arc<Hooks>,
}

impl State {
    /// The simulator's "now": the wall clock plus the offset tests advanced it by.
    pub(super) fn now_ms(&self) -> i64 {
        now_ms() + self.clock_offset_ms.load(Ordering::SeqCst)
    }
}

pub(super) fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed_unsync()
}

pub(super) fn json_resp(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

pub(super) fn text_resp(status: StatusCode, ctype: &'static str, s: String) -> Response<Body> {
    let mut r = Response::new(full(s));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

pub(super) fn not_found() -> Response<Body> {
    json_resp(
        StatusCode::NOT_FOUND,
        &json!({"message": "Resource not found"}),
    )
}

pub(super) fn set_header(r: &mut Response<Body>, k: &'static str, v: String) {
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().insert(k, v);
    }
}

pub(super) fn rate_headers(r: &mut Response<Body>, d: &Decision, retry: bool) {
    rate_headers_except(r, d, retry, &[]);
}

/// The rate-limit headers, without those in `omit` (`--omit-rate-headers`).
pub(super) fn rate_headers_except(
    r: &mut Response<Body>,
    d: &Decision,
    retry: bool,
    omit: &[RateHeader],
) {
    if d.limit > 0 {
        for (h, name, v) in [
            (RateHeader::Limit, "x-ratelimit-limit", u64::from(d.limit)),
            (
                RateHeader::Remaining,
                "x-ratelimit-remaining",
                u64::from(d.remaining),
            ),
            (RateHeader::Reset, "x-ratelimit-reset", d.reset),
        ] {
            if !omit.contains(&h) {
                set_header(r, name, v.to_string());
            }
        }
    }
    if retry {
        set_header(r, "retry-after", d.retry_after.to_string());
    }
}
