//! HTTP server: accept loop, routing and `/v3` list handling on hyper 1 (HTTP/1.1), bound
//! to 127.0.0.1.  `/token` lives in `auth`, `/_sim` in `control`.
//!
//! Contract: `/v3/<resource>` checks, in order: bearer token (401), rate limit (429), route
//! (404), scope and Site Admin (403), parameters (422), injected faults, then serves a page.
//! Every `/v3` response carries `X-RateLimit-Limit/Remaining/Reset` unless the limit is 0
//! (unlimited).  Unauthenticated requests are counted in a separate `anonymous` bucket.
//! Latency (`latency_ms + per_record_us × records`) is a non-blocking sleep before the
//! response.  Shutdown stops accepting and lets in-flight connections finish gracefully.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::SimConfig;
use super::data::Db;
use super::faults::{self, FaultKind};
use super::model::R;
use super::page;
use super::query;
use super::ratelimit::{Decision, Limiter};
use super::rng::hash;
use super::shared::{
    Body, State, Stats, full, json_resp, not_found, rate_headers_except, set_header,
};
use super::webhooks::{Hooks, Target};

/// A running simulator.
pub struct RunningSim {
    base_url: String,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// Stops accepting connections and waits for in-flight ones to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

pub async fn start(cfg: Arc<SimConfig>) -> std::io::Result<RunningSim> {
    if !(cfg.scale > 0.0 && cfg.scale.is_finite()) {
        return Err(std::io::Error::other("--scale must be a positive number"));
    }
    if !(0.0..=1.0).contains(&cfg.fail_rate) {
        return Err(std::io::Error::other("--fail-rate must be within 0..=1"));
    }
    for s in &cfg.deny_scope {
        if R::from_name(s).is_none() {
            return Err(std::io::Error::other(format!(
                "--deny-scope: unknown resource `{s}`"
            )));
        }
    }
    let target = match (&cfg.webhook_url, &cfg.webhook_secret) {
        (None, None) => None,
        (Some(url), Some(secret)) => {
            if url::Url::parse(url).is_err() {
                return Err(std::io::Error::other(format!(
                    "--webhook-url: `{url}` is not a URL"
                )));
            }
            Some(Target {
                url: url.clone(),
                secret: secret.0.clone(),
                retry_delays: cfg
                    .webhook_retry_delays_ms
                    .iter()
                    .map(|ms| Duration::from_millis(*ms))
                    .collect(),
            })
        }
        _ => {
            return Err(std::io::Error::other(
                "--webhook-url and --webhook-secret go together",
            ));
        }
    };
    let hooks = Arc::new(Hooks::new(target, cfg.seed));
    let (seed, scale) = (cfg.seed, cfg.scale);
    let db = tokio::task::spawn_blocking(move || Db::new(seed, scale))
        .await
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(super::loopback(cfg.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let state = Arc::new(State {
        base_url: base_url.clone(),
        secret: hash(&[cfg.seed, 0xC425_0125]),
        db: RwLock::new(db),
        tokens: Mutex::new(HashMap::new()),
        limiter: Mutex::new(Limiter::new(cfg.rate_limit, cfg.rate_window)),
        token_limiter: Mutex::new(Limiter::new(cfg.token_rate_limit, cfg.token_rate_window)),
        stats: Mutex::new(Stats::new(cfg.rate_window)),
        seq: AtomicU64::new(0),
        inflight: AtomicU64::new(0),
        peak: AtomicU64::new(0),
        minted: AtomicU64::new(0),
        clock_offset_ms: AtomicI64::new(0),
        hooks: hooks.clone(),
        cfg,
    });
    let (stop, stop_rx) = watch::channel(false);
    tokio::spawn(hooks.run(stop_rx.clone()));
    let task = tokio::spawn(accept_loop(listener, state, stop_rx));
    Ok(RunningSim {
        base_url,
        addr,
        stop,
        task,
    })
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let mut stop = stop.clone();
                conns.spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, req).await) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(6), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/token" {
        return super::auth::token(&state, req).await;
    }
    if let Some(rest) = path.strip_prefix("/v3/") {
        let rest = rest.to_string();
        return v3(&state, req, &rest).await;
    }
    if let Some(rest) = path.strip_prefix("/_sim/") {
        let rest = rest.to_string();
        return super::control::control(&state, req, &rest).await;
    }
    not_found()
}

// ---------------------------------------------------------------- /v3

struct Inflight<'a>(&'a AtomicU64);
impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn v3(state: &State, req: Request<Incoming>, rest: &str) -> Response<Body> {
    let cur = state.inflight.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak.fetch_max(cur, Ordering::SeqCst);
    let _guard = Inflight(&state.inflight);
    let seq = state.seq.fetch_add(1, Ordering::SeqCst);
    let label = R::from_name(rest)
        .map(|r| r.name().to_string())
        .unwrap_or_else(|| "(unknown)".into());
    // One instant for the limiter and the histogram, so a request is counted in the window
    // whose budget it was judged against.
    let now = state.now_ms();
    let (resp, served, fault) = v3_inner(state, &req, rest, seq, now).await;
    let mut st = state.stats.lock().unwrap_or_else(|e| e.into_inner());
    st.total += 1;
    st.records += served.records as u64;
    st.bytes += served.bytes as u64;
    st.windows.record(now, resp.status().as_u16());
    if resp.status() == StatusCode::TOO_MANY_REQUESTS {
        st.rate_limited += 1;
    }
    if let Some(f) = fault {
        *st.faults.entry(f.name()).or_default() += 1;
    }
    *st.by_resource
        .entry(label)
        .or_default()
        .entry(resp.status().as_u16())
        .or_default() += 1;
    resp
}

/// What a `/v3` response delivered, for the stats.
#[derive(Default)]
struct Served {
    records: usize,
    bytes: usize,
}

async fn v3_inner(
    state: &State,
    req: &Request<Incoming>,
    rest: &str,
    seq: u64,
    now: i64,
) -> (Response<Body>, Served, Option<FaultKind>) {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let auth = bearer.and_then(|t| {
        let tokens = state.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(t)
            .filter(|i| i.expires_ms > now)
            .map(|i| (i.client.clone(), i.site_admin))
    });
    let key = auth
        .as_ref()
        .map(|a| a.0.clone())
        .unwrap_or_else(|| "anonymous".into());
    let d = state
        .limiter
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .check(&key, now);
    let finish = |mut r: Response<Body>, d: &Decision| {
        let retry = r.status() == StatusCode::TOO_MANY_REQUESTS;
        rate_headers_except(&mut r, d, retry, &state.cfg.omit_rate_headers);
        r
    };
    if req.method() != Method::GET {
        return (finish(not_found(), &d), Served::default(), None);
    }
    let Some((_, site_admin)) = auth else {
        let body = json!({"message": "Unauthorized", "errors": ["missing, invalid or expired access token"]});
        return (
            finish(json_resp(StatusCode::UNAUTHORIZED, &body), &d),
            Served::default(),
            None,
        );
    };
    if !d.allowed {
        return (
            finish(
                json_resp(
                    StatusCode::TOO_MANY_REQUESTS,
                    &json!({"message": "Rate limit exceeded"}),
                ),
                &d,
            ),
            Served::default(),
            None,
        );
    }
    let Some(r) = R::from_name(rest) else {
        return (finish(not_found(), &d), Served::default(), None);
    };
    if state.cfg.deny_scope.iter().any(|s| s == r.name()) {
        let body = json!({"message": "Forbidden", "errors": [format!("missing scope harvest:{}:list", r.name())]});
        return (
            finish(json_resp(StatusCode::FORBIDDEN, &body), &d),
            Served::default(),
            None,
        );
    }
    if !site_admin {
        let body =
            json!({"message": "Forbidden", "errors": ["the token's user is not a Site Admin"]});
        return (
            finish(json_resp(StatusCode::FORBIDDEN, &body), &d),
            Served::default(),
            None,
        );
    }
    let raw = req.uri().query().unwrap_or("");
    let parsed = {
        let db = state.db.read().unwrap_or_else(|e| e.into_inner());
        query::parse(&db, r, raw, state.secret)
    };
    let q = match parsed {
        Ok(q) => q,
        Err(body) => {
            return (
                finish(json_resp(StatusCode::UNPROCESSABLE_ENTITY, &body), &d),
                Served::default(),
                None,
            );
        }
    };
    let expired_cursor = || {
        let body = json!({"message": "Unprocessable Content", "errors": ["Cursor expired"]});
        json_resp(StatusCode::UNPROCESSABLE_ENTITY, &body)
    };
    if let Some(issued) = q.cursor_issued
        && state.cfg.cursor_ttl > 0
        && (now / 1000) as u64 > issued + state.cfg.cursor_ttl
    {
        return (finish(expired_cursor(), &d), Served::default(), None);
    }
    let cfg = &state.cfg;
    let fault = faults::decide(
        cfg.seed,
        seq,
        cfg.fail_rate,
        &cfg.fault_kinds,
        q.cursor_issued.is_some(),
    );
    let status_fault = |code: StatusCode, msg: &str| {
        json_resp(code, &json!({"message": msg, "errors": ["injected fault"]}))
    };
    match fault {
        Some(FaultKind::E500) => {
            return (
                finish(
                    status_fault(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
                    &d,
                ),
                Served::default(),
                fault,
            );
        }
        Some(FaultKind::E502) => {
            return (
                finish(status_fault(StatusCode::BAD_GATEWAY, "Bad Gateway"), &d),
                Served::default(),
                fault,
            );
        }
        Some(FaultKind::E503) => {
            return (
                finish(
                    status_fault(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
                    &d,
                ),
                Served::default(),
                fault,
            );
        }
        Some(FaultKind::CursorExpired) => {
            return (finish(expired_cursor(), &d), Served::default(), fault);
        }
        _ => {}
    }
    let pg = {
        let db = state.db.read().unwrap_or_else(|e| e.into_inner());
        page::run(&db, &q)
    };
    let mut delay = cfg.latency_ms * 1000 + cfg.per_record_us * pg.count as u64;
    if fault == Some(FaultKind::Slow) {
        delay += cfg.slow_ms * 1000;
    }
    if delay > 0 {
        tokio::time::sleep(Duration::from_micros(delay)).await;
    }
    let mut gzip = false;
    let body = match super::bad::apply(&cfg.bad_record, r.name(), pg.body, &cfg.client_secret) {
        super::bad::Served::Body(b) => b,
        super::bad::Served::Gzip(b) => {
            gzip = true;
            b
        }
        super::bad::Served::Redirect => {
            let mut resp = Response::new(full(Vec::new()));
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            let elsewhere = state.base_url.replacen("127.0.0.1", "localhost", 1);
            set_header(&mut resp, "location", format!("{elsewhere}/_sim/elsewhere"));
            return (finish(resp, &d), Served::default(), fault);
        }
    };
    let body_len = body.len();
    let mut resp = match fault {
        Some(FaultKind::Reset) | Some(FaultKind::Truncate) => {
            let bytes = Bytes::from(body);
            let part = bytes.slice(..body_len / 2);
            let stream = futures::stream::unfold(Some(part), |st| async move {
                match st {
                    Some(part) => Some((Ok(Frame::data(part)), None)),
                    None => {
                        // Let the partial body reach the client before the abort.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Some((
                            Err(std::io::Error::other("injected connection abort")),
                            None,
                        ))
                    }
                }
            });
            let mut r = Response::new(StreamBody::new(stream).boxed_unsync());
            if fault == Some(FaultKind::Truncate) {
                set_header(&mut r, "content-length", body_len.to_string());
            }
            r
        }
        _ => Response::new(full(body)),
    };
    if gzip {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if fault == Some(FaultKind::RepeatCursor) {
        // The same cursor again: the next page would be this one, for ever.
        set_header(
            &mut resp,
            "link",
            format!("<{}/v3/{}?{raw}>; rel=\"next\"", state.base_url, r.name()),
        );
    } else if let Some(last) = pg.next_after {
        let issued = (now / 1000) as u64;
        let c = query::encode_cursor(&q, last, issued, state.secret);
        set_header(
            &mut resp,
            "link",
            format!(
                "<{}/v3/{}?cursor={}>; rel=\"next\"",
                state.base_url,
                r.name(),
                c
            ),
        );
    }
    let served = Served {
        records: pg.count,
        // Reset and truncate faults send only the first half of the body.
        bytes: match fault {
            Some(FaultKind::Reset) | Some(FaultKind::Truncate) => body_len / 2,
            _ => body_len,
        },
    };
    (finish(resp, &d), served, fault)
}
