//! The stall watchdog: a server that accepts a page request and then trickles bytes for ever
//! (which no request timeout catches: each byte is "progress") fails the stream after
//! `stall_timeout` with an error naming the stream and the setting, instead of holding the run.

mod harness;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A Harvest stub: tokens are granted; every page answers its headers, then one byte of body
/// every 100 ms, never finishing.
async fn start_trickling_stub() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf).to_string();
                if req.starts_with("POST /token") {
                    let body = r#"{"access_token":"t","token_type":"Bearer","expires_in":3600}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    return;
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n[";
                if sock.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if sock.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

/// Regression: a page that trickled in never ended (reqwest's timeout covers one attempt, and
/// each attempt was retried), so the run hung for as long as the server kept sending.
#[tokio::test(flavor = "multi_thread")]
async fn a_page_that_never_finishes_fails_its_stream_after_stall_timeout() {
    let base = start_trickling_stub().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        r#"{"backfill_slices": 1, "stall_timeout": "500ms"}"#,
    );
    let mut cmd = Command::new(EXTRACT);
    cmd.args([
        "sync",
        "--destination",
        dir.path().join("out").to_str().unwrap(),
        "--streams",
        "departments",
        "--config",
        &cfg,
    ]);
    for (k, v) in sim_env(&base) {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        while t.elapsed() < Duration::from_secs(15) {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("still waiting after 15 s: {}", text(&out));
    })
    .await
    .unwrap();
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("stall_timeout"),
        "the error should name the setting: {all}"
    );
    assert!(
        all.contains("departments: no page arrived"),
        "the error should name the stream: {all}"
    );
}
