//! The destination misbehaving, through a loopback TCP proxy in front of a real s3s-fs:
//! - an outage of ~1.5 s in the middle of a run (connections cut and refused) is ridden out by
//!   the store client's retries, and the run completes with the truth;
//! - a store that ignores conditional writes (the proxy strips `If-None-Match`, as moto 4.x and
//!   some older S3-compatible servers do) is refused by `sync` and `check` with exit 5 and a
//!   message that says why, unless `single_writer` is set.

mod harness;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use harness::*;
use object_store::path::Path as ObjPath;
use support::Sim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the traffic.
#[derive(Clone, Default)]
struct Faults {
    /// Remove `If-None-Match` request headers (the store then ignores conditional creates).
    strip_if_none_match: bool,
    /// On the first request whose bytes contain this text: cut every connection (that request
    /// included, unanswered) and refuse new ones for `outage`.
    outage_on: Option<String>,
    outage: Duration,
    /// On the first request whose bytes contain this text: forward it whole, then drop the
    /// store's answer and cut that connection (the store did the work; the client never
    /// hears of it). Trips `tripped` too.
    lose_answer_on: Option<String>,
}

struct Proxy {
    endpoint: String,
    /// The outage happened (its trigger was seen).
    tripped: Arc<AtomicBool>,
    _task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: &str, faults: Faults) -> Proxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .parse()
            .expect("upstream address");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tripped = Arc::new(AtomicBool::new(false));
        // Bumped once at the outage: every connection then drops.
        let (cut_tx, cut_rx) = watch::channel(0u32);
        // Never dropped while the proxy runs (a dropped sender would read as a cut).
        let cut_tx = Arc::new(cut_tx);
        let task = tokio::spawn(accept_loop(
            listener,
            addr,
            upstream,
            faults,
            tripped.clone(),
            cut_tx,
            cut_rx,
        ));
        Proxy {
            endpoint: format!("http://{addr}"),
            tripped,
            _task: task,
        }
    }
}

async fn accept_loop(
    mut listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    faults: Faults,
    tripped: Arc<AtomicBool>,
    cut_tx: Arc<watch::Sender<u32>>,
    cut_rx: watch::Receiver<u32>,
) {
    let mut outage = cut_rx.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, _)) = accepted else { continue };
                // `subscribe`: a connection made after the cut is not cut.
                tokio::spawn(pipe(client, upstream, faults.clone(), tripped.clone(), cut_tx.clone(), cut_tx.subscribe()));
            }
            Ok(()) = outage.changed() => {
                // Refuse connections for the outage (closed port: "connection refused"), then
                // listen on the same port again.
                drop(listener);
                tokio::time::sleep(faults.outage).await;
                let socket = TcpSocket::new_v4().unwrap();
                socket.set_reuseaddr(true).unwrap();
                if let Err(e) = socket.bind(addr) {
                    panic!("proxy: cannot listen on {addr} again: {e}");
                }
                listener = socket.listen(128).unwrap();
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Removes every `If-None-Match: …` header line from `chunk` (headers arrive in one segment on
/// loopback; a header split across reads would survive, and the test would then fail loudly).
fn strip_if_none_match(chunk: &[u8]) -> Vec<u8> {
    let lower = chunk.to_ascii_lowercase();
    let mut out = Vec::with_capacity(chunk.len());
    let mut i = 0;
    while let Some(at) = find(&lower[i..], b"\r\nif-none-match:") {
        let start = i + at + 2;
        out.extend_from_slice(&chunk[i..start]);
        let end = find(&chunk[start..], b"\r\n").map_or(chunk.len(), |e| start + e + 2);
        i = end;
    }
    out.extend_from_slice(&chunk[i..]);
    out
}

async fn pipe(
    mut client: TcpStream,
    upstream: SocketAddr,
    faults: Faults,
    tripped: Arc<AtomicBool>,
    cut_tx: Arc<watch::Sender<u32>>,
    mut cut: watch::Receiver<u32>,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cbuf, mut sbuf) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    // This connection carries the request whose answer is to be lost.
    let mut losing = false;
    loop {
        tokio::select! {
            n = client.read(&mut cbuf) => {
                let Ok(n) = n else { return };
                if n == 0 {
                    return;
                }
                let mut chunk = cbuf[..n].to_vec();
                if faults.strip_if_none_match {
                    chunk = strip_if_none_match(&chunk);
                }
                if let Some(trigger) = &faults.lose_answer_on
                    && find(&chunk, trigger.as_bytes()).is_some()
                    && !tripped.swap(true, Ordering::SeqCst)
                {
                    losing = true;
                }
                if let Some(trigger) = &faults.outage_on
                    && find(&chunk, trigger.as_bytes()).is_some()
                    && !tripped.swap(true, Ordering::SeqCst)
                {
                    cut_tx.send_replace(1);
                    break; // this request is never forwarded
                }
                if server.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            n = server.read(&mut sbuf) => {
                let Ok(n) = n else { return };
                if losing {
                    // The store answered: the answer goes nowhere, the connection closes.
                    drop(server);
                    let _ = client.shutdown().await;
                    return;
                }
                if n == 0 || client.write_all(&sbuf[..n]).await.is_err() {
                    return;
                }
            }
            Ok(()) = cut.changed() => break,
        }
    }
    // Cut: close our side without answering, reading (and dropping) what the client still
    // sends, so it sees a closed connection rather than a reset.
    drop(server);
    let _ = client.shutdown().await;
    while matches!(client.read(&mut cbuf).await, Ok(n) if n > 0) {}
}

const STREAMS: &str = "candidates,users,jobs";

/// A sync of `STREAMS` from a small simulator to `s3://lake/raw` on the S3 test server, through
/// a proxy with `faults`.
async fn sync_through(faults: Faults) -> (Sim, S3Server, Proxy, std::process::Output) {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let s3 = S3Server::start("lake");
    let proxy = Proxy::start(&s3.endpoint, faults).await;
    let mut env = sim_env(&sim.base_url);
    env.extend(s3.env());
    env.push(("AWS_ENDPOINT".into(), proxy.endpoint.clone()));
    let args = [
        "sync",
        "--destination",
        "s3://lake/raw",
        "--streams",
        STREAMS,
    ];
    let out = tokio::task::spawn_blocking(move || extract(&args, &env))
        .await
        .unwrap();
    (sim, s3, proxy, out)
}

/// Regression: a 1.5 s S3 blip failed the streams committing at that moment (exit 3): the store
/// client gave up after 5 retries within about a second.
#[tokio::test(flavor = "multi_thread")]
async fn a_short_store_outage_mid_run_is_ridden_out() {
    let (sim, s3, proxy, out) = sync_through(Faults {
        outage_on: Some("PUT /lake/raw/_state/state-0000000001.json".into()),
        outage: Duration::from_millis(1500),
        ..Faults::default()
    })
    .await;
    assert!(
        proxy.tripped.load(Ordering::SeqCst),
        "the outage never happened"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = s3.store("lake");
    let prefix = ObjPath::from("raw");
    for name in STREAMS.split(',') {
        let stream = registry().get(name).unwrap().clone();
        let truth = expected_rows(&sim, &stream).await;
        let rows = read_stream(&store, &prefix, name).await;
        assert_matches_truth(&stream, &truth, &dedup_latest(rows), false);
    }
}

/// Regression: a Delta commit whose answer a connection cut lost (the store had written it) was
/// retried by the store client, found to exist, and taken by delta-rs for a concurrent
/// writer's version, with which the merge conflicts: the stream failed (exit 3). The writer
/// now finds its own commit in the log by its id.
#[tokio::test(flavor = "multi_thread")]
async fn a_commit_whose_answer_was_lost_is_found_in_the_log() {
    // The first commit of the long table after its creation (version 1).
    let commit = "PUT /lake/raw/current/custom_field_values/_delta_log/00000000000000000001.json";
    let (_sim, _s3, proxy, out) = sync_through(Faults {
        lose_answer_on: Some(commit.into()),
        ..Faults::default()
    })
    .await;
    assert!(
        proxy.tripped.load(Ordering::SeqCst),
        "the commit was never sent"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

async fn stripping_proxy() -> (S3Server, Proxy) {
    let s3 = S3Server::start_unsigned("lake");
    let proxy = Proxy::start(
        &s3.endpoint,
        Faults {
            strip_if_none_match: true,
            ..Faults::default()
        },
    )
    .await;
    (s3, proxy)
}

async fn run(args: Vec<String>, env: Vec<(String, String)>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        extract(&args, &env)
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Regression: on a store that ignores `If-None-Match`, two concurrent runs both proceeded
/// (the lease create overwrote the other run's lease); the capability was assumed silently.
#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_ignores_conditional_writes_is_refused() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let (s3, proxy) = stripping_proxy().await;
    let mut env = sim_env(&sim.base_url);
    env.extend(s3.env());
    env.push(("AWS_ENDPOINT".into(), proxy.endpoint.clone()));

    let sync = args(&[
        "sync",
        "--destination",
        "s3://lake/raw",
        "--streams",
        "users",
    ]);
    let out = run(sync.clone(), env.clone()).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("ignores conditional writes") && text(&out).contains("single_writer"),
        "{}",
        text(&out)
    );
    // Nothing was written: no lease, no state, no data.
    let store = s3.store("lake");
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(
        object_store::ObjectStore::list(store.as_ref(), None),
    )
    .await
    .unwrap();
    assert!(listed.is_empty(), "{listed:?}");

    let check = args(&[
        "check",
        "--destination",
        "s3://lake/raw",
        "--streams",
        "users",
    ]);
    let out = run(check.clone(), env.clone()).await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("ignores conditional writes"),
        "{}",
        text(&out)
    );

    // The explicit opt-in goes on, with a warning.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), r#"{"single_writer": true}"#);
    let mut with_cfg = sync.clone();
    with_cfg.extend(args(&["--config", &cfg]));
    let out = run(with_cfg, env.clone()).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("ignores conditional writes"),
        "{}",
        text(&out)
    );
    let mut check_cfg = check;
    check_cfg.extend(args(&["--config", &cfg]));
    let out = run(check_cfg, env).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// The same probe passes on a store that honours `If-None-Match` (the proxy forwards it).
#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_honours_conditional_writes_passes_the_probe() {
    let (s3, _strip) = stripping_proxy().await;
    let env: std::collections::HashMap<String, String> = s3.env().into_iter().collect();
    greenhouse_extract::harvest::install_crypto_provider();
    let dest = greenhouse_extract::storage::open_with_env("s3://lake/raw", &env).unwrap();
    let state = greenhouse_extract::state::StateStore::new(dest.store, dest.prefix);
    assert!(state.probe_conditional_create().await.unwrap());
}
