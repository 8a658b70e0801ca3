//! Authentication that survives waits and faults, against a tiny loopback stub of Harvest (the
//! simulator's token lifetimes are whole seconds; these need a fraction of one):
//! - the token is attached when a request is sent, after its rate-limit wait, so a token that
//!   lives shorter than the wait is never refused twice (the old exit 4 with valid credentials);
//! - a token endpoint that answers 5xx is a transient failure with its own exit code (7);
//! - a token that expires on its way to the API (the API's clock ahead of ours) is replaced and
//!   the page retried, however often in a row, never fatal;
//! - `Retry-After` waits are capped (15 minutes per page), and one that would cross the run's
//!   deadline ends the run at once (exit 3) instead of sleeping to the deadline.

mod harness;
mod support;

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// How the stub behaves.
#[derive(Clone, Copy)]
struct Stub {
    /// Token lifetime in seconds (sent as `expires_in`; the stub refuses older tokens).
    ttl: f64,
    /// Seconds until the stub's rate window ends; every response says none remain in it.
    window: f64,
    /// Pages in the chain.
    pages: u32,
    /// The token endpoint answers 503 (with `Retry-After: 0`).
    token_down: bool,
    /// The first this many tokens live only a third of `ttl` by the stub's clock (its clock is
    /// ahead of ours), so they expire while a request is on its way.
    skewed_tokens: u32,
    /// Seconds the stub takes before judging and answering a page request.
    delay: f64,
    /// Every page request is answered 429 with this `Retry-After` (seconds).
    retry_after: Option<u32>,
}

impl Default for Stub {
    fn default() -> Self {
        Stub {
            ttl: 60.0,
            window: 0.05,
            pages: 1,
            token_down: false,
            skewed_tokens: 0,
            delay: 0.0,
            retry_after: None,
        }
    }
}

#[derive(Default)]
struct Seen {
    /// Each token's mint time and lifetime by the stub's clock.
    tokens: HashMap<String, (Instant, f64)>,
    minted: u32,
    unauthorized: u32,
    token_requests: u32,
    rate_limited: u32,
}

/// Starts the stub on 127.0.0.1 and returns its base URL.
async fn start_stub(stub: Stub, seen: Arc<Mutex<Seen>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            let base = b.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers only: the token request's small form body is not needed.
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                if !req.contains(" /token") && stub.delay > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(stub.delay)).await;
                }
                let resp = answer(&stub, &seen, &base, &req);
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    base
}

fn answer(stub: &Stub, seen: &Mutex<Seen>, base: &str, req: &str) -> String {
    let line = req.lines().next().unwrap_or("");
    let target = line.split(' ').nth(1).unwrap_or("");
    let mut s = seen.lock().unwrap();
    if target.starts_with("/token") {
        s.token_requests += 1;
        if stub.token_down {
            return http(
                503,
                "Retry-After: 0\r\n",
                r#"{"error":"temporarily_unavailable"}"#,
            );
        }
        s.minted += 1;
        let token = format!("tok-{}", s.minted);
        let lives = if s.minted <= stub.skewed_tokens {
            stub.ttl / 3.0
        } else {
            stub.ttl
        };
        s.tokens.insert(token.clone(), (Instant::now(), lives));
        let body = format!(
            r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":{}}}"#,
            stub.ttl
        );
        return http(200, "", &body);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let rate = format!(
        "X-RateLimit-Limit: 1\r\nX-RateLimit-Remaining: 0\r\nX-RateLimit-Reset: {:.3}\r\n",
        now + stub.window
    );
    let bearer = req
        .lines()
        .find_map(|l| {
            l.strip_prefix("authorization: Bearer ")
                .or_else(|| l.strip_prefix("Authorization: Bearer "))
        })
        .unwrap_or("")
        .trim();
    let fresh = s
        .tokens
        .get(bearer)
        .is_some_and(|(at, lives)| at.elapsed().as_secs_f64() < *lives);
    if !fresh {
        s.unauthorized += 1;
        return http(401, &rate, r#"{"message":"Unauthorized"}"#);
    }
    if let Some(secs) = stub.retry_after {
        s.rate_limited += 1;
        return http(
            429,
            &format!("Retry-After: {secs}\r\n"),
            r#"{"message":"Too Many Requests"}"#,
        );
    }
    let page: u32 = target
        .split("cursor=")
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    let mut headers = rate;
    if page < stub.pages {
        let path = target.split('?').next().unwrap_or("");
        headers.push_str(&format!(
            "Link: <{base}{path}?cursor={}>; rel=\"next\"\r\n",
            page + 1
        ));
    }
    http(200, &headers, "[]")
}

fn http(status: u16, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
        body.len()
    )
}

fn stub_env(base: &str) -> Vec<(String, String)> {
    sim_env(base)
}

/// Regression: the token was taken before the rate-limit wait, so a token living shorter than
/// the wait was refused, its replacement (also taken before the wait) too, and the run exited 4
/// with valid credentials ("the API refused a freshly issued token (401 twice)").
#[tokio::test(flavor = "multi_thread")]
async fn a_token_shorter_than_the_rate_limit_wait_is_attached_after_the_wait() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = Stub {
        ttl: 0.3,
        window: 0.35,
        pages: 3,
        ..Stub::default()
    };
    let base = start_stub(stub, seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::task::spawn_blocking({
        let dest = dir.path().join("out");
        let cfg = write_config(dir.path(), r#"{"backfill_slices": 1}"#);
        move || sync_streams(&dest, &["departments"], Some(&cfg), &stub_env(&base))
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = seen.lock().unwrap();
    assert_eq!(s.unauthorized, 0, "a token was sent after it expired");
    assert!(s.minted >= 2, "the short-lived token was never renewed");
}

/// A token endpoint that answers 5xx is not an authentication failure: exit 7, "retry later".
#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_token_endpoint_exits_with_its_own_code() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = Stub {
        ttl: 60.0,
        window: 1.0,
        token_down: true,
        ..Stub::default()
    };
    let base = start_stub(stub, seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let out = tokio::task::spawn_blocking({
        let dest = dir.path().join("out");
        let cfg = write_config(dir.path(), r#"{"backfill_slices": 1}"#);
        move || sync_streams(&dest, &["departments"], Some(&cfg), &stub_env(&base))
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert!(
        text(&out).contains("token endpoint"),
        "the error should name the token endpoint: {}",
        text(&out)
    );
    assert!(seen.lock().unwrap().token_requests > 1, "never retried");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "Retry-After: 0 was not honoured"
    );
}

/// Runs `sync --streams departments` against the stub with `config` and extra arguments,
/// killing it (and failing) if it is still running after `within`.
async fn sync_stub(base: &str, config: &str, extra: &[&str], within: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), config);
    let dest = dir.path().join("out").to_str().unwrap().to_string();
    let mut cmd = Command::new(EXTRACT);
    cmd.args([
        "sync",
        "--destination",
        &dest,
        "--streams",
        "departments",
        "--config",
        &cfg,
    ]);
    cmd.args(extra);
    for (k, v) in stub_env(base) {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        while t.elapsed() < within {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("still running after {within:?}: {}", text(&out));
    })
    .await
    .unwrap()
}

/// A token the API's clock already counts as expired when the request arrives is not the
/// credential's fault: it is replaced and the page retried — twice in a row here, which the
/// "refused twice" rule for fresh tokens would have made fatal (exit 4).
#[tokio::test(flavor = "multi_thread")]
async fn tokens_that_expire_in_transit_are_replaced_never_fatal() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = Stub {
        ttl: 0.3,
        delay: 0.2,
        skewed_tokens: 2,
        pages: 2,
        ..Stub::default()
    };
    let base = start_stub(stub, seen.clone()).await;
    let config = r#"{"backfill_slices": 1}"#;
    let out = sync_stub(&base, config, &[], Duration::from_secs(20)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = seen.lock().unwrap();
    assert!(
        s.unauthorized >= 2,
        "no token expired in transit: {}",
        s.unauthorized
    );
    assert!(
        text(&out).contains("token_expired_in_transit"),
        "not logged: {}",
        text(&out)
    );
}

/// A page is rate-limited for at most 15 minutes in all: a `Retry-After` beyond what is left
/// of that fails the stream at once (saying so) instead of sleeping for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_beyond_the_cap_fails_the_stream_at_once() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = Stub {
        retry_after: Some(1000),
        ..Stub::default()
    };
    let base = start_stub(stub, seen.clone()).await;
    let config = r#"{"backfill_slices": 1}"#;
    let out = sync_stub(&base, config, &[], Duration::from_secs(15)).await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("rate-limited for 1000 s"),
        "{}",
        text(&out)
    );
    assert_eq!(seen.lock().unwrap().rate_limited, 1);
}

/// A `Retry-After` (within the cap) that would end after the run's deadline stops the run now:
/// exit 3 within seconds, not at the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_after_past_the_deadline_ends_the_run_at_once() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stub = Stub {
        retry_after: Some(600),
        ..Stub::default()
    };
    let base = start_stub(stub, seen.clone()).await;
    let config = r#"{"backfill_slices": 1}"#;
    let t = Instant::now();
    let out = sync_stub(
        &base,
        config,
        &["--deadline", "60s"],
        Duration::from_secs(70),
    )
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "waited {:?} for a Retry-After past the deadline",
        t.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("interrupted"),
        "{}",
        text(&out)
    );
}
