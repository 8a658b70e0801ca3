//! A run that cannot authenticate leaves its destination exactly as it found it: the credential
//! is tried before the lease is taken, so neither `_state/lease.json` nor the conditional-write
//! probe is ever written (and deleted) on the store — checked against a real S3 server.

mod harness;
mod support;

use futures::TryStreamExt;
use harness::*;
use object_store::ObjectStore;
use support::Sim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Every key in the bucket, and every entry s3s-fs left in the bucket's folder (a written and
/// deleted object leaves its parent folders behind, so a store that was touched shows).
async fn keys(s3: &S3Server) -> Vec<String> {
    let store = s3.store("lake");
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut keys: Vec<String> = objects
        .into_iter()
        .map(|o| o.location.to_string())
        .collect();
    for entry in std::fs::read_dir(s3.root.path().join("lake")).unwrap() {
        keys.push(format!("(on disk) {}", entry.unwrap().path().display()));
    }
    keys
}

async fn sync_into(s3: &S3Server, env: Vec<(String, String)>) -> std::process::Output {
    let mut env = env;
    env.extend(s3.env());
    tokio::task::spawn_blocking(move || {
        extract(
            &[
                "sync",
                "--destination",
                "s3://lake/raw",
                "--streams",
                "departments",
            ],
            &env,
        )
    })
    .await
    .unwrap()
}

/// Regression: the lease (and the conditional-write probe before it) were written before the
/// first token, so a wrong client secret wrote and deleted objects on the destination.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_client_secret_creates_nothing_at_the_destination() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let s3 = S3Server::start("lake");
    let mut env = sim_env(&sim.base_url);
    for (k, v) in env.iter_mut() {
        if k == "GREENHOUSE_CLIENT_SECRET" {
            *v = "not-the-secret".into();
        }
    }
    let out = sync_into(&s3, env).await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(keys(&s3).await, Vec::<String>::new());
}

/// The same for a token endpoint that is down (exit 7).
#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_token_endpoint_creates_nothing_at_the_destination() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"error":"temporarily_unavailable"}"#;
                let resp = format!(
                    "HTTP/1.1 503 X\r\nRetry-After: 0\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    let s3 = S3Server::start("lake");
    let out = sync_into(&s3, sim_env(&base)).await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(keys(&s3).await, Vec::<String>::new());
}
