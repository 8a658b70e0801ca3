//! `webhooks serve` on a real socket, as Greenhouse (and the simulator's sender) call it: a
//! signed event is stored before the 200 (and survives `kill -9` right after it); every bad
//! signature is a 401 that stores nothing; oversized, ping, health and bad-JSON requests get
//! their own answers; a retried event id is one event; S3 and TLS work; SIGTERM finishes the
//! request in flight and exits 0; and the next `sync` applies the stored events and deletes them.
//!
//! The TLS certificate is a committed test fixture (tests/fixtures/webhooks-tls/README.md).

mod harness;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use greenhouse_extract::webhooks::{self, signature};
use harness::*;
use object_store::path::Path as ObjPath;
use serde_json::{Value, json};
use support::Sim;

const SECRET: &str = "whsec-greenhouse-test-4f1c9a";

/// A running `greenhouse-extract webhooks serve`.
struct Receiver {
    child: Child,
    /// `127.0.0.1:PORT`, from its `webhooks_listening` log line.
    addr: String,
    scheme: &'static str,
    stderr: Arc<Mutex<String>>,
}

impl Receiver {
    /// Starts the receiver on a free loopback port with `--log-format json`.
    fn start(dest: &str, args: &[&str], env: &[(String, String)]) -> Receiver {
        let mut cmd = Command::new(EXTRACT);
        cmd.args([
            "webhooks",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--destination",
            dest,
            "--log-format",
            "json",
        ])
        .args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("GREENHOUSE_") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("GREENHOUSE_WEBHOOK_SECRET", SECRET);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the receiver");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        let log = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["event"] == "webhooks_listening"
                {
                    let _ = tx.send(v["address"].as_str().unwrap_or_default().to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the receiver did not start listening:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let scheme = if args.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        Receiver {
            child,
            addr,
            scheme,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The log once `done` holds for it (lines arrive through a pipe, a little after the
    /// answers), or after 10 s.
    fn log_until(&self, done: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let log = self.stderr();
            if done(&log) || t.elapsed() > Duration::from_secs(10) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends `sig` (`-TERM`, `-KILL`) and waits for the exit.
    fn signal_and_wait(&mut self, sig: &str) -> ExitStatus {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} failed");
        let t = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("still running 30 s after {sig}:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    greenhouse_extract::harvest::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs `body` with `signature` (a whole header value) and an event id; returns status and body.
async fn post(
    c: &reqwest::Client,
    url: &str,
    body: &[u8],
    signature: Option<&str>,
    event_id: Option<&str>,
) -> (u16, String) {
    let mut req = c
        .post(url)
        .header("Content-Type", "application/json")
        .body(body.to_vec());
    if let Some(s) = signature {
        req = req.header("Signature", s);
    }
    if let Some(id) = event_id {
        req = req.header("Greenhouse-Event-ID", id);
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn signed(body: &[u8]) -> String {
    format!("sha256 {}", signature::sign(SECRET.as_bytes(), body))
}

fn delete_candidate(id: i64) -> Vec<u8> {
    json!({"action": "delete_candidate", "payload": {"person": {"id": id, "first_name": "Ada"}}})
        .to_string()
        .into_bytes()
}

/// Every file under `dir` (relative path, contents).
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn event_files(dest: &Path) -> Vec<(String, Value)> {
    files(dest)
        .into_iter()
        .filter(|(k, _)| k.starts_with("_webhooks/events/"))
        .map(|(k, b)| (k, serde_json::from_slice(&b).expect("stored event is JSON")))
        .collect()
}

async fn pending(dest: &Path) -> (Vec<webhooks::StoredEvent>, Vec<String>) {
    let store = object_store::local::LocalFileSystem::new_with_prefix(dest).unwrap();
    webhooks::pending_events(&store, &ObjPath::from(""), chrono::Utc::now())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_event_is_stored_with_its_fields_and_no_secret_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let r = Receiver::start(dest.to_str().unwrap(), &[], &[]);
    let body = delete_candidate(4242);
    let sig = signed(&body);
    let id = "0c8f3a2e-1b4d-4e5f-8a9b-0c1d2e3f4a5b";
    let before = chrono::Utc::now();
    let (status, text) = post(&client(), &r.url("/webhooks"), &body, Some(&sig), Some(id)).await;
    assert_eq!(status, 200, "{text}\n{}", r.stderr());

    let stored = event_files(&dest);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let (key, doc) = &stored[0];
    let day = before.format("%Y-%m-%d").to_string();
    assert!(
        key.starts_with(&format!("_webhooks/events/{day}/"))
            && key.ends_with(&format!("-{id}.json")),
        "{key}"
    );
    let name = key.rsplit('/').next().unwrap();
    let micros: i64 = name[..20].parse().unwrap();
    assert!(micros >= before.timestamp_micros(), "{name}");
    let mut fields: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort();
    assert_eq!(fields, ["action", "event_id", "payload", "received_at"]);
    assert_eq!(doc["event_id"], id);
    assert_eq!(doc["action"], "delete_candidate");
    assert_eq!(doc["payload"]["person"]["id"], 4242);
    let received: chrono::DateTime<chrono::Utc> =
        doc["received_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(received.timestamp_micros(), micros);

    // The library API the sync uses reads it back.
    let (events, unreadable) = pending(&dest).await;
    assert!(unreadable.is_empty());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, id);
    assert_eq!(events[0].key, *key);
    assert_eq!(events[0].payload["person"]["id"], 4242);

    // Neither the secret nor the signature is in any stored object or in the log.
    let hex = sig.strip_prefix("sha256 ").unwrap();
    for (k, bytes) in files(&dest) {
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(SECRET) && !text.contains(hex), "{k}: {text}");
    }
    let log = r.log_until(|l| l.contains("\"event\":\"webhook_stored\""));
    assert!(log.contains("\"event\":\"webhook_stored\""), "{log}");
    assert!(!log.contains(SECRET) && !log.contains(hex), "{log}");
    assert!(
        log.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok()),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_wrong_truncated_and_replayed_signatures_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let r = Receiver::start(dest.to_str().unwrap(), &[], &[]);
    let c = client();
    let body = delete_candidate(7);
    let good = signed(&body);
    let other = delete_candidate(8);
    let wrong_key = format!("sha256 {}", signature::sign(b"not-the-secret", &body));
    let cases: [(&str, &[u8], Option<&str>); 6] = [
        ("missing", &body, None),
        ("wrong key", &body, Some(&wrong_key)),
        ("truncated", &body, Some(&good[..good.len() - 8])),
        (
            "no algorithm",
            &body,
            Some(good.strip_prefix("sha256 ").unwrap()),
        ),
        ("garbage", &body, Some("sha256 zz")),
        // A captured signature replayed with another body.
        ("replayed on another body", &other, Some(&good)),
    ];
    for (what, b, sig) in cases {
        let (status, text) = post(&c, &r.url("/"), b, sig, Some("evt-1")).await;
        assert_eq!(status, 401, "{what}: {text}");
    }
    assert!(event_files(&dest).is_empty(), "{:?}", event_files(&dest));
    let rejected = |l: &str| l.matches("\"event\":\"webhook_rejected\"").count();
    let log = r.log_until(|l| rejected(l) >= 6);
    assert_eq!(rejected(&log), 6, "{log}");
    assert!(!log.contains(SECRET), "{log}");
    // The genuine delivery still goes through.
    let (status, _) = post(&c, &r.url("/"), &body, Some(&good), Some("evt-1")).await;
    assert_eq!(status, 200);
    assert_eq!(event_files(&dest).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_ping_health_bad_json_and_other_methods_get_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let config = write_config(dir.path(), r#"{"webhook_max_body_bytes": 4096}"#);
    let r = Receiver::start(dest.to_str().unwrap(), &["--config", &config], &[]);
    let c = client();

    // Over the limit: 413, signed or not, declared up front or not.
    let big = json!({"action": "delete_candidate", "payload": {"pad": "x".repeat(64 * 1024)}})
        .to_string()
        .into_bytes();
    let (status, text) = post(&c, &r.url("/"), &big, Some(&signed(&big)), None).await;
    assert_eq!(status, 413, "{text}");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(1000).map(|c| Ok(c.to_vec())).collect();
    let chunked = c
        .post(r.url("/"))
        .header("Signature", signed(&big))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(chunked.status().as_u16(), 413);

    // Greenhouse's ping when a hook is saved: 200, nothing stored.
    let ping = br#"{"action":"ping","payload":{"web_hook_id":7}}"#;
    let (status, _) = post(&c, &r.url("/"), ping, Some(&signed(ping)), Some("p-1")).await;
    assert_eq!(status, 200);

    // Signed, but not JSON / no action: 400.
    for bad in [&b"{not json"[..], br#"{"payload":{}}"#, br#"[1,2]"#] {
        let (status, text) = post(&c, &r.url("/"), bad, Some(&signed(bad)), None).await;
        assert_eq!(status, 400, "{}: {text}", String::from_utf8_lossy(bad));
    }

    let health = c.get(r.url("/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let v: Value = health.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let get = c.get(r.url("/")).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 405);

    assert!(event_files(&dest).is_empty(), "{:?}", event_files(&dest));
    let log = r.log_until(|l| l.contains("\"event\":\"webhook_ping\""));
    assert!(log.contains("\"event\":\"webhook_ping\""), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_event_id_is_answered_200_and_read_as_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let r = Receiver::start(dest.to_str().unwrap(), &[], &[]);
    let c = client();
    let body = delete_candidate(99);
    for _ in 0..3 {
        let (status, text) = post(
            &c,
            &r.url("/"),
            &body,
            Some(&signed(&body)),
            Some("same-id"),
        )
        .await;
        assert_eq!(status, 200, "{text}");
    }
    // Without an event id the body names the event: the same body twice is one event too.
    let other = delete_candidate(100);
    for _ in 0..2 {
        let (status, _) = post(&c, &r.url("/"), &other, Some(&signed(&other)), None).await;
        assert_eq!(status, 200);
    }
    let (events, unreadable) = pending(&dest).await;
    assert!(unreadable.is_empty());
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(ids[0], "same-id");
    assert!(ids[1].starts_with("sha256:"), "{ids:?}");
    // The first copy is the one kept.
    let first = event_files(&dest)
        .into_iter()
        .find(|(k, _)| k.ends_with("-same-id.json"))
        .unwrap();
    assert_eq!(events[0].key, first.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_answered_200_survives_kill_9_right_after() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let mut r = Receiver::start(dest.to_str().unwrap(), &[], &[]);
    let body = delete_candidate(31337);
    let (status, _) = post(
        &client(),
        &r.url("/"),
        &body,
        Some(&signed(&body)),
        Some("k9"),
    )
    .await;
    assert_eq!(status, 200);
    let exit = r.signal_and_wait("-KILL");
    assert!(!exit.success());
    let (events, _) = pending(&dest).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "k9");
    assert_eq!(events[0].payload["person"]["id"], 31337);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_the_request_in_flight_finish_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let mut r = Receiver::start(dest.to_str().unwrap(), &[], &[]);
    let body = delete_candidate(5);
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nSignature: {}\r\nGreenhouse-Event-ID: in-flight\r\n\r\n",
        body.len(),
        signed(&body)
    );
    let mut conn = std::net::TcpStream::connect(&r.addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&body[..10]).unwrap();
    // Time for the receiver to accept the connection and read the headers: a connection still
    // in the listen queue at SIGTERM is not accepted any more.
    std::thread::sleep(Duration::from_millis(1000));
    let pid = r.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        r.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    conn.write_all(&body[10..]).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = r.child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "{}", r.stderr());
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
    assert_eq!(event_files(&dest).len(), 1);
    // Nothing is accepted any more.
    assert!(std::net::TcpStream::connect(&r.addr).is_err());
    let log = r.log_until(|l| l.contains("\"event\":\"webhooks_stopped\""));
    assert!(log.contains("\"event\":\"webhooks_stopped\""), "{log}");
}

#[test]
fn a_missing_secret_is_a_configuration_error_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let out = extract(
        &[
            "webhooks",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--destination",
            dest.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("GREENHOUSE_WEBHOOK_SECRET"),
        "{}",
        text(&out)
    );
    assert!(
        !dest.exists(),
        "nothing is created before the settings are valid"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_pem_certificate_and_key() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/webhooks-tls");
    let (cert, key) = (fixtures.join("cert.pem"), fixtures.join("key.pem"));
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let r = Receiver::start(
        dest.to_str().unwrap(),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[],
    );
    greenhouse_extract::harvest::install_crypto_provider();
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(fixtures.join("ca.pem")).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let body = delete_candidate(443);
    let url = format!("https://localhost:{}/", r.addr.rsplit(':').next().unwrap());
    let (status, text) = post(&https, &url, &body, Some(&signed(&body)), Some("tls-1")).await;
    assert_eq!(status, 200, "{text}\n{}", r.stderr());
    let (status, _) = post(
        &https,
        &r.url("/"),
        &body,
        Some(&signed(&body)),
        Some("tls-2"),
    )
    .await;
    assert_eq!(status, 200, "by IP address too");
    // Plain HTTP to the TLS port gets no answer.
    let plain = client()
        .post(format!("http://{}/", r.addr))
        .body(body.clone())
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // A client that does not trust the certificate is refused at the handshake.
    let untrusting = reqwest::Client::builder().build().unwrap();
    assert!(untrusting.get(format!("{url}health")).send().await.is_err());
    assert_eq!(event_files(&dest).len(), 2);
    assert!(r.stderr().contains("\"tls\":true"));
}

#[tokio::test(flavor = "multi_thread")]
async fn events_go_to_an_s3_destination() {
    let s3 = S3Server::start("hooks");
    let r = Receiver::start("s3://hooks/raw/greenhouse", &[], &s3.env());
    let c = client();
    for n in 0..3 {
        let body = delete_candidate(n);
        let (status, text) = post(
            &c,
            &r.url("/"),
            &body,
            Some(&signed(&body)),
            Some(&format!("s3-{n}")),
        )
        .await;
        assert_eq!(status, 200, "{text}\n{}", r.stderr());
    }
    let store = s3.store("hooks");
    let (events, unreadable) = webhooks::pending_events(
        store.as_ref(),
        &ObjPath::from("raw/greenhouse"),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert!(unreadable.is_empty());
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["s3-0", "s3-1", "s3-2"]);
    assert!(
        events
            .iter()
            .all(|e| e.key.starts_with("raw/greenhouse/_webhooks/events/"))
    );
    webhooks::drop_event(store.as_ref(), &events[0].key)
        .await
        .unwrap();
    let (left, _) = webhooks::pending_events(
        store.as_ref(),
        &ObjPath::from("raw/greenhouse"),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(left.len(), 2);
}

/// The simulator's own sender (signed like Greenhouse, `\uXXXX`-escaped bodies, retries)
/// delivers every event of its mutations; with reconciliation off, the next `sync` applies them
/// (tombstones for deletes and merges, cascades to the children, re-reads of anonymised
/// candidates) so that every stream equals the truth with no id listed, and deletes the events;
/// `purge` then leaves no candidate row from before an anonymisation.
#[tokio::test(flavor = "multi_thread")]
async fn webhooks_alone_bring_every_stream_to_the_truth_and_are_deleted_once_applied() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("lake");
    let dest_s = dest.to_str().unwrap().to_string();
    let r = Receiver::start(&dest_s, &[], &[]);
    let hook_url = r.url("/greenhouse");
    let sim = Sim::start(&[
        "--scale",
        "0.3",
        "--rate-limit",
        "0",
        "--seed",
        "12",
        "--webhook-url",
        &hook_url,
        "--webhook-secret",
        SECRET,
    ]);
    let mut env = sim_env(&sim.base_url);
    env.push(no_signpost_skew());
    // No listing of ids: every delete below must come from the webhooks.
    let config = write_config(dir.path(), r#"{"reconcile": false}"#);
    let sync = |env: &[(String, String)]| {
        extract(
            &[
                "sync",
                "--config",
                &config,
                "--destination",
                &dest_s,
                "--include-sensitive",
                "--summary",
                "json",
            ],
            env,
        )
    };
    let out = sync(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before = sim.truth("candidates").await;

    // Deletes in every resource Greenhouse sends a delete webhook for (their children follow
    // through the declared cascades), merges, anonymisations and some churn.
    let report = sim_mutate(
        &sim,
        "updates=3&deletes=2&merges=2&anonymizes=2&seed=5&resources=candidates,applications,offers,interviews,scorecards,jobs,departments,offices",
    )
    .await;
    let anonymized: Vec<i64> = report["anonymized"]["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(anonymized.len(), 2, "{report}");
    let sent = sim.flush_webhooks(20_000).await;
    assert!(sent.len() >= 10, "{sent:#?}");
    for e in &sent {
        assert_eq!(e["delivered"], true, "{e}\n{}", r.stderr());
    }
    let (events, unreadable) = pending(&dest).await;
    assert!(unreadable.is_empty());
    let mut got: Vec<(String, String)> = events
        .iter()
        .map(|e| (e.event_id.clone(), e.action.clone()))
        .collect();
    let mut want: Vec<(String, String)> = sent
        .iter()
        .map(|e| {
            (
                e["event_id"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // The next sync applies them: no listing, every stream equals the truth.
    let out = sync(&env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = summary(&out);
    assert_eq!(run["totals"]["reconcile_requests"], 0, "{run}");
    let streams = by_stream(&run);
    let by_webhook: u64 = streams
        .values()
        .map(|s| s["deletes"]["by_webhook"].as_u64().unwrap_or(0))
        .sum();
    let by_cascade: u64 = streams
        .values()
        .map(|s| s["deletes"]["by_cascade"].as_u64().unwrap_or(0))
        .sum();
    assert!(by_webhook >= 10 && by_cascade > 0, "{run}");
    assert_eq!(streams["candidates"]["deletes"]["refreshed"], 2, "{run}");
    assert!(
        event_files(&dest).is_empty(),
        "{:?}\n{}",
        event_files(&dest),
        text(&out)
    );
    let store = local_store(&dest);
    let reg = registry();
    let mut compared = 0;
    for stream in reg.streams() {
        let rows = read_stream(&store, &ObjPath::from(""), &stream.name).await;
        let truth = expected_rows(&sim, stream).await;
        compared += assert_matches_truth(stream, &truth, &current_rows(rows), false);
    }
    assert!(compared > 3_000, "only {compared} rows compared");

    // The anonymised candidates' earlier rows hold what Greenhouse erased; purge removes them.
    let emails: Vec<String> = before
        .iter()
        .filter(|c| anonymized.contains(&c["id"].as_i64().unwrap()))
        .flat_map(|c| c["email_addresses"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["value"].as_str().map(str::to_string))
        .collect();
    assert!(
        !emails.is_empty(),
        "fixture: anonymised candidates had emails"
    );
    let holding = |rows: &[Value]| {
        rows.iter()
            .filter(|r| emails.iter().any(|e| r.to_string().contains(e.as_str())))
            .count()
    };
    let rows = read_stream(&store, &ObjPath::from(""), "candidates").await;
    assert!(
        holding(&rows) > 0,
        "fixture: the history holds the old emails"
    );
    let out = extract(&["purge", "--destination", &dest_s], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = read_stream(&store, &ObjPath::from(""), "candidates").await;
    assert_eq!(holding(&rows), 0, "{}", text(&out));
    let truth = expected_rows(&sim, reg.get("candidates").unwrap()).await;
    assert_matches_truth(
        reg.get("candidates").unwrap(),
        &truth,
        &current_rows(rows),
        false,
    );
}
