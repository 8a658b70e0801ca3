//! greenhouse-extract as an Airbyte source: every line that `airbyte spec`, `check`, `discover`
//! and `read` print validates against the Airbyte protocol models (`airbyte-protocol-models`,
//! installed into `.venv-airbyte` by `make tools`, checked by `scripts/validate_airbyte.py`);
//! records equal the simulator's truth, each STATE follows the records it covers, a resumed read
//! emits only the changed rows, and failures arrive as TRACE errors with the right failure type.

mod harness;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use harness::*;
use serde_json::{Value, json};
use support::Sim;

const SECRET: &str = "sim-secret";

fn validator() -> (std::path::PathBuf, std::path::PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv-airbyte/bin/python");
    assert!(
        python.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install airbyte-protocol-models",
        python.display()
    );
    (python, root.join("scripts/validate_airbyte.py"))
}

/// Validates every stdout line of `out` with the protocol models; returns the parsed lines.
fn validated(out: &Output) -> Vec<Value> {
    let (python, script) = validator();
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the validator");
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let v = child.wait_with_output().unwrap();
    assert!(
        v.status.success(),
        "invalid Airbyte output: {}\n{}",
        String::from_utf8_lossy(&v.stderr),
        text(out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(SECRET), "the client secret is on stdout");
    assert!(!stdout.contains("Bearer "), "a token is on stdout");
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn of_type<'a>(lines: &'a [Value], t: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == t).collect()
}

fn statuses(lines: &[Value], stream: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["trace"]["type"] == "STREAM_STATUS")
        .filter(|l| l["trace"]["stream_status"]["stream_descriptor"]["name"] == stream)
        .map(|l| {
            l["trace"]["stream_status"]["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn errors(lines: &[Value]) -> Vec<&Value> {
    lines
        .iter()
        .filter(|l| l["trace"]["type"] == "ERROR")
        .map(|l| &l["trace"]["error"])
        .collect()
}

/// Records of `stream` and, for each STATE of it, how many of its records came before.
fn records_and_states(lines: &[Value], stream: &str) -> (Vec<Value>, Vec<(usize, Value)>) {
    let mut records = Vec::new();
    let mut states = Vec::new();
    for l in lines {
        if l["type"] == "RECORD" && l["record"]["stream"] == stream {
            assert!(l["record"]["emitted_at"].is_i64());
            records.push(l["record"]["data"].clone());
        }
        if l["type"] == "STATE" && l["state"]["stream"]["stream_descriptor"]["name"] == stream {
            states.push((records.len(), l["state"].clone()));
        }
    }
    (records, states)
}

fn airbyte(args: &[&str], env: &[(String, String)]) -> Output {
    let mut all = vec!["airbyte"];
    all.extend_from_slice(args);
    extract(&all, env)
}

fn configured_catalog(discovered: &Value, streams: &[(&str, &str)]) -> Value {
    let mut out = Vec::new();
    for s in discovered["catalog"]["streams"].as_array().unwrap() {
        if let Some((_, mode)) = streams.iter().find(|(n, _)| s["name"] == *n) {
            out.push(
                json!({"stream": s, "sync_mode": mode, "destination_sync_mode": "append_dedup"}),
            );
        }
    }
    json!({ "streams": out })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_speaks_the_airbyte_protocol() {
    let sim = Sim::start(&[
        "--scale",
        "0.1",
        "--rate-limit",
        "0",
        "--seed",
        "8",
        "--deny-scope",
        "offers",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let registry = registry();
    let url = &sim.base_url;
    let config = write_config(
        dir.path(),
        &json!({"client_id": "sim-client", "client_secret": SECRET, "api_url": url, "token_url": format!("{url}/token"), "streams": ["users", "jobs"]}).to_string(),
    );
    let bad_dir = tempfile::tempdir().unwrap();
    let bad_config = write_config(
        bad_dir.path(),
        &json!({"client_id": "sim-client", "client_secret": "wrong-secret-0815", "api_url": url, "token_url": format!("{url}/token")}).to_string(),
    );

    // spec
    let spec = validated(&airbyte(&["spec"], &[]));
    assert_eq!(spec.len(), 1);
    let props = &spec[0]["spec"]["connectionSpecification"]["properties"];
    assert_eq!(props["client_secret"]["airbyte_secret"], true);

    // check: good config, then a refused secret (a FAILED status naming the fix, exit 0)
    let out = airbyte(&["check", "--config", &config], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = validated(&out);
    let status = of_type(&lines, "CONNECTION_STATUS");
    assert_eq!(status.len(), 1);
    assert_eq!(
        status[0]["connectionStatus"]["status"],
        "SUCCEEDED",
        "{}",
        text(&out)
    );
    let out = airbyte(&["check", "--config", &bad_config], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = validated(&out);
    let status = &of_type(&lines, "CONNECTION_STATUS")[0]["connectionStatus"];
    assert_eq!(status["status"], "FAILED");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("GREENHOUSE_CLIENT_SECRET"),
        "{status}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("wrong-secret-0815"));

    // discover
    let out = airbyte(&["discover", "--config", &config], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = validated(&out);
    let discovered = of_type(&lines, "CATALOG")[0].clone();
    assert_eq!(
        discovered["catalog"]["streams"].as_array().unwrap().len(),
        registry.streams().len()
    );

    // read: two incremental streams, one full refresh, one without its scope
    let catalog = dir.path().join("configured.json");
    let streams = [
        ("users", "incremental"),
        ("jobs", "incremental"),
        ("departments", "full_refresh"),
        ("offers", "incremental"),
    ];
    std::fs::write(
        &catalog,
        configured_catalog(&discovered, &streams).to_string(),
    )
    .unwrap();
    let out = airbyte(
        &[
            "read",
            "--config",
            &config,
            "--catalog",
            catalog.to_str().unwrap(),
        ],
        // The test changes the simulator and reads again at once: no signpost skew to wait out.
        &[no_signpost_skew()],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "a skipped stream makes the run partial: {}",
        text(&out)
    );
    let lines = validated(&out);
    assert!(
        !of_type(&lines, "LOG").is_empty(),
        "log lines arrive as LOG messages"
    );
    let mut first: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut saved_state = Vec::new();
    for (name, _) in &streams[..3] {
        let stream = registry.get(name).unwrap();
        let (records, states) = records_and_states(&lines, name);
        let truth = expected_rows(&sim, stream).await;
        assert_eq!(records.len(), truth.len(), "{name}");
        let by_id: BTreeMap<i64, Value> = records
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
            .collect();
        for t in &truth {
            assert_eq!(
                by_id.get(&t["id"].as_i64().unwrap()),
                Some(t),
                "{name}: a record differs from the truth"
            );
        }
        // Every STATE follows the records it covers; the last one follows them all.
        let (covered, last) = states.last().unwrap_or_else(|| panic!("{name}: no STATE"));
        assert_eq!(
            *covered,
            records.len(),
            "{name}: records after the last STATE"
        );
        let counted: f64 = states
            .iter()
            .map(|(_, s)| s["sourceStats"]["recordCount"].as_f64().unwrap())
            .sum();
        assert_eq!(counted as usize, records.len(), "{name}: recordCount");
        assert_eq!(
            statuses(&lines, name),
            ["STARTED", "RUNNING", "COMPLETE"],
            "{name}"
        );
        if stream.is_incremental() {
            assert!(
                last["stream"]["stream_state"]["updated_at"].is_string(),
                "{last}"
            );
        }
        saved_state.push(json!({"type": last["type"], "stream": last["stream"]}));
        first.insert(name.to_string(), records);
    }
    assert_eq!(statuses(&lines, "offers"), ["STARTED", "INCOMPLETE"]);
    let errs = errors(&lines);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0]["failure_type"], "config_error");
    assert_eq!(errs[0]["stream_descriptor"]["name"], "offers");
    assert!(
        errs[0]["message"]
            .as_str()
            .unwrap()
            .contains("harvest:offers:list"),
        "{}",
        errs[0]
    );

    // read again with the list-form state, after changes: only the changed rows come back
    let changes = sim_mutate(
        &sim,
        "updates=4&inserts=2&deletes=2&seed=5&resources=users,jobs,departments",
    )
    .await;
    let state = dir.path().join("state.json");
    std::fs::write(&state, Value::Array(saved_state).to_string()).unwrap();
    let catalog2 = dir.path().join("configured2.json");
    std::fs::write(
        &catalog2,
        configured_catalog(&discovered, &streams[..3]).to_string(),
    )
    .unwrap();
    let out = airbyte(
        &[
            "read",
            "--config",
            &config,
            "--catalog",
            catalog2.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
        ],
        &[no_signpost_skew()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = validated(&out);
    assert!(errors(&lines).is_empty());
    let mut tombstones_seen = 0;
    for (name, _) in &streams[..3] {
        let stream = registry.get(name).unwrap();
        let (records, _) = records_and_states(&lines, name);
        let truth = expected_rows(&sim, stream).await;
        // Deletes arrive as records with `_ab_cdc_deleted_at` (validated by the models above):
        // exactly the ids the first read delivered that Greenhouse no longer has.
        let (ids, tombstoned) = record_ids(&records);
        tombstones_seen += tombstoned.len();
        assert_eq!(
            tombstoned,
            gone_ids(&first[*name], &truth),
            "{name}: the deletes the destination received"
        );
        let changed: BTreeSet<i64> = changes["updated"][name]
            .as_array()
            .into_iter()
            .flatten()
            .chain(changes["inserted"][name].as_array().into_iter().flatten())
            .map(|v| v.as_i64().unwrap())
            .collect();
        // Changed rows still in Greenhouse come back (one inserted and deleted in between was
        // never seen, so it needs no tombstone).
        let live: BTreeSet<i64> = truth.iter().map(|t| t["id"].as_i64().unwrap()).collect();
        assert!(
            changed.intersection(&live).all(|id| ids.contains(id)),
            "{name}: changed rows missing from the resumed read"
        );
        if stream.is_incremental() {
            assert!(
                ids.len() < truth.len() / 2 || truth.len() < 20,
                "{name}: the resumed read re-read everything ({} of {})",
                ids.len(),
                truth.len()
            );
        } else {
            assert_eq!(
                ids.len(),
                truth.len(),
                "{name}: a full refresh reads everything"
            );
        }
        let mut union: BTreeMap<i64, Value> = first[*name]
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
            .collect();
        for r in records {
            let id = r["id"].as_i64().unwrap();
            if is_deleted_record(&r) {
                union.remove(&id);
            } else {
                union.insert(id, r);
            }
        }
        assert_eq!(union.len(), truth.len(), "{name}: deleted ids left");
        for t in &truth {
            assert_eq!(
                union.get(&t["id"].as_i64().unwrap()),
                Some(t),
                "{name}: the union differs from the truth"
            );
        }
    }

    assert!(
        tombstones_seen > 0,
        "no delete reached the destination: {changes}"
    );

    // a refused credential on read: one config_error TRACE, the auth exit code, nothing else
    let out = airbyte(
        &[
            "read",
            "--config",
            &bad_config,
            "--catalog",
            catalog2.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let lines = validated(&out);
    assert!(of_type(&lines, "RECORD").is_empty() && of_type(&lines, "STATE").is_empty());
    let errs = errors(&lines);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0]["failure_type"], "config_error");

    // the legacy state form is read too
    let legacy = dir.path().join("legacy.json");
    std::fs::write(
        &legacy,
        json!({"type": "LEGACY", "data": {"users": {"updated_at": "2030-01-01T00:00:00Z"}}})
            .to_string(),
    )
    .unwrap();
    let users_only = dir.path().join("users.json");
    std::fs::write(
        &users_only,
        configured_catalog(&discovered, &[("users", "incremental")]).to_string(),
    )
    .unwrap();
    let out = airbyte(
        &[
            "read",
            "--config",
            &config,
            "--catalog",
            users_only.to_str().unwrap(),
            "--state",
            legacy.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = validated(&out);
    // A bookmark in the future leaves an empty window (minus the lookback): no record.
    assert!(of_type(&lines, "RECORD").is_empty(), "{}", text(&out));
}

/// Bad data through the source: a record without a usable key is never emitted (nor with a null
/// key) but counted in a LOG message; a lone surrogate is emitted as U+FFFD, never as an escape
/// (invalid Unicode for a strict reader); a zero-padded numeric key is emitted as the integer.
#[tokio::test(flavor = "multi_thread")]
async fn records_without_a_usable_key_are_not_emitted_but_counted_in_a_log_message() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--bad-record",
        "jobs:text_id",
        "--bad-record",
        "users:surrogate:first_name",
        "--bad-record",
        "departments:number_text:id",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let url = &sim.base_url;
    let config = write_config(
        dir.path(),
        &json!({"client_id": "sim-client", "client_secret": SECRET, "api_url": url, "token_url": format!("{url}/token"), "per_page": 20}).to_string(),
    );
    let out = airbyte(&["discover", "--config", &config], &[]);
    let discovered = of_type(&validated(&out), "CATALOG")[0].clone();
    let catalog = dir.path().join("configured.json");
    let streams = [
        ("jobs", "incremental"),
        ("users", "incremental"),
        ("departments", "full_refresh"),
    ];
    std::fs::write(
        &catalog,
        configured_catalog(&discovered, &streams).to_string(),
    )
    .unwrap();
    let out = airbyte(
        &[
            "read",
            "--config",
            &config,
            "--catalog",
            catalog.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        !stdout.contains(r"\ud83d"),
        "a lone surrogate escape on stdout"
    );
    let lines = validated(&out);

    let truth = sim.truth("jobs").await;
    let pages = truth.len().div_ceil(20);
    let (jobs, _) = records_and_states(&lines, "jobs");
    assert_eq!(jobs.len(), truth.len() - pages);
    assert!(
        jobs.iter().all(|r| r["id"].is_i64()),
        "a record without an integer key"
    );
    let logs: Vec<String> = of_type(&lines, "LOG")
        .iter()
        .map(|l| l["log"]["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        logs.iter().any(|m| m.contains(&format!(
            "jobs: {pages} records without a usable primary key were not emitted"
        ))),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|m| m.contains("records_not_emitted") && m.contains(r#"\"abc\""#)),
        "a LOG message names them: {logs:#?}"
    );

    let (users, _) = records_and_states(&lines, "users");
    assert_eq!(users.len(), sim.truth("users").await.len());
    assert!(
        users.iter().any(|r| r["first_name"]
            .as_str()
            .is_some_and(|n| n.starts_with('\u{FFFD}'))),
        "the lone surrogate becomes U+FFFD"
    );
    let (departments, _) = records_and_states(&lines, "departments");
    assert_eq!(departments.len(), sim.truth("departments").await.len());
    assert!(
        departments.iter().all(|r| r["id"].is_i64()),
        "{departments:?}"
    );
}
