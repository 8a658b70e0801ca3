//! OpenLineage events (`openlineage_url`): a loopback receiver collects what a `sync` posts to
//! `/api/v1/lineage` (or a `file:` target collects the lines), and every event is checked with
//! the official Python client's models (openlineage-python, installed into `.venv-lineage` by
//! `make tools`; `scripts/validate_openlineage.py`).

mod harness;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use harness::*;
use serde_json::Value;
use support::Sim;

const PARENT_RUN: &str = "01931c2e-5a5b-7c3d-8e9f-0a1b2c3d4e5f";
const ROOT_RUN: &str = "01931c2e-0000-7c3d-8e9f-0a1b2c3d4e5f";

/// Checks every line with the client's models; returns the parsed events.
fn validated(lines: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv-lineage/bin/python");
    assert!(
        python.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install openlineage-python",
        python.display()
    );
    let mut child = Command::new(python)
        .arg(root.join("scripts/validate_openlineage.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the validator");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let v = child.wait_with_output().unwrap();
    assert!(
        v.status.success(),
        "invalid OpenLineage event: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// What the receiver saw: `(path, body)` per request.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

/// A loopback HTTP receiver: answers 201 to each request and keeps `(path, body)`.
fn receiver() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(conn);
            // Keep-alive: several requests may come on one connection.
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    break;
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_string();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let h = header.trim();
                    if h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                keep.lock()
                    .unwrap()
                    .push((path, String::from_utf8(body).unwrap()));
                let _ = reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n");
            }
        }
    });
    (url, seen)
}

fn config(dir: &Path, url: &str) -> String {
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        serde_json::json!({ "openlineage_url": url }).to_string(),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

/// Issue "fits the tools our users run" (3): START then COMPLETE, outputs are the streams'
/// tables in the destination's namespace, the parent from Airflow's macros.
#[tokio::test(flavor = "multi_thread")]
async fn a_sync_posts_start_and_complete_with_the_parent_from_airflow() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let (url, seen) = receiver();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("data");
    let cfg = config(dir.path(), &url);
    let mut env = sim_env(&sim.base_url);
    env.push((
        "OPENLINEAGE_PARENT_ID".into(),
        format!("airflow/greenhouse_sync.sync/{PARENT_RUN}"),
    ));
    env.push((
        "OPENLINEAGE_ROOT_PARENT_ID".into(),
        format!("airflow/greenhouse_sync/{ROOT_RUN}"),
    ));
    let out = extract(
        &[
            "sync",
            "--config",
            &cfg,
            "--log-format",
            "json",
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "jobs,users",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("lineage_failed"), "{}", text(&out));
    let posted = seen.lock().unwrap().clone();
    assert!(
        posted.iter().all(|(p, _)| p == "/api/v1/lineage"),
        "{posted:?}"
    );
    let lines: String = posted.iter().map(|(_, b)| format!("{b}\n")).collect();
    let events = validated(&lines);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["START", "COMPLETE"]);
    let namespace = format!("file://{}", std::fs::canonicalize(&dest).unwrap().display());
    for e in &events {
        let parent = &e["run"]["facets"]["parent"];
        assert_eq!(parent["run"]["runId"], PARENT_RUN, "{e}");
        assert_eq!(parent["job"]["name"], "greenhouse_sync.sync", "{e}");
        assert_eq!(parent["root"]["run"]["runId"], ROOT_RUN, "{e}");
        let mut outputs: Vec<(&str, &str)> = e["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["namespace"].as_str().unwrap(),
                    o["name"].as_str().unwrap(),
                )
            })
            .collect();
        outputs.sort();
        assert_eq!(
            outputs,
            [(namespace.as_str(), "jobs"), (namespace.as_str(), "users")]
        );
    }
    assert_eq!(events[0]["run"]["runId"], events[1]["run"]["runId"]);
    // The run id is the run's own (the manifest's and run_finished's).
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["run_id"], events[0]["run"]["runId"]);
    let stats = &events[1]["outputs"][0]["outputFacets"]["outputStatistics"];
    assert!(stats["rowCount"].as_u64().unwrap() > 0, "{stats}");
}

/// A partial run ends with FAIL (its committed streams as outputs, an errorMessage), written
/// to a `file:` target; an unreachable endpoint is a warning, never a failed run.
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_run_ends_with_fail_and_lineage_never_fails_a_run() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--deny-scope",
        "offers",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lineage.jsonl");
    let cfg = config(dir.path(), &format!("file:{}", file.display()));
    let dest = dir.path().join("data");
    let args = |cfg: &str| {
        extract(
            &[
                "sync",
                "--config",
                cfg,
                "--destination",
                dest.to_str().unwrap(),
                "--streams",
                "jobs,offers",
            ],
            &sim_env(&sim.base_url),
        )
    };
    let out = args(&cfg);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let events = validated(&std::fs::read_to_string(&file).unwrap());
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["START", "FAIL"]);
    assert_eq!(events[0]["outputs"].as_array().unwrap().len(), 2);
    let outputs = events[1]["outputs"].as_array().unwrap();
    assert_eq!(outputs.len(), 1, "only the committed stream: {outputs:?}");
    assert_eq!(outputs[0]["name"], "jobs");
    let message = events[1]["run"]["facets"]["errorMessage"]["message"]
        .as_str()
        .unwrap();
    assert!(message.contains("offers"), "{message}");
    assert!(events[0]["run"]["facets"].get("parent").is_none());

    // Nothing listens on a port just released: the run still succeeds, with a warning.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = args(&config(dir.path(), &url));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("event=lineage_failed"),
        "{}",
        text(&out)
    );
}
