//! Authentication that survives waits and faults, against a tiny loopback stub of Harvest (the
//! simulator's token lifetimes are whole seconds; these need a fraction of one):
//! - the token is attached when a request is sent, after its rate-limit wait, so a token that
//!   lives shorter than the wait is never refused twice (the old exit 4 with valid credentials);
//! - a token endpoint that answers 5xx is a transient failure with its own exit code (7).

mod harness;
mod support;

use std::collections::HashMap;
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
}

#[derive(Default)]
struct Seen {
    tokens: HashMap<String, Instant>,
    minted: u32,
    unauthorized: u32,
    token_requests: u32,
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
        s.tokens.insert(token.clone(), Instant::now());
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
        .is_some_and(|at| at.elapsed().as_secs_f64() < stub.ttl);
    if !fresh {
        s.unauthorized += 1;
        return http(401, &rate, r#"{"message":"Unauthorized"}"#);
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
        token_down: false,
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
        pages: 1,
        token_down: true,
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
