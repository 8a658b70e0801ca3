//! greenhouse-extract as a Singer tap, consumed by a real Singer target (`target-jsonl`, installed
//! into `.venv-singer` by `make tools`): the records the target writes equal the simulator's
//! truth for the selected streams (minus a field deselected in the catalog); after mutations, a
//! run resumed from the target's final STATE fetches only the changed window, emits exactly the
//! changed rows, and the de-duplicated union of both runs equals the new truth.

mod harness;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use chrono::{DateTime, Utc};
use harness::*;
use serde_json::{Value, json};
use support::Sim;

const STREAMS: [&str; 3] = ["candidates", "departments", "jobs"];
/// Deselected in the catalog: never in a record.
const DROPPED: (&str, &str) = ("candidates", "first_name");

fn dropped(stream: &str) -> &'static [&'static str] {
    if stream == DROPPED.0 {
        &[DROPPED.1]
    } else {
        &[]
    }
}

fn target_jsonl() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-singer/bin/target-jsonl");
    assert!(
        p.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install target-jsonl",
        p.display()
    );
    p
}

/// The discovered catalog with only `STREAMS` selected and `DROPPED` deselected.
fn selected_catalog(discovered: &Value) -> Value {
    let mut catalog = discovered.clone();
    for s in catalog["streams"].as_array_mut().unwrap() {
        let name = s["tap_stream_id"].as_str().unwrap().to_string();
        for m in s["metadata"].as_array_mut().unwrap() {
            let crumb = m["breadcrumb"].clone();
            if crumb == json!([]) {
                m["metadata"]["selected"] = json!(STREAMS.contains(&name.as_str()));
            } else if name == DROPPED.0 && crumb == json!(["properties", DROPPED.1]) {
                m["metadata"]["selected"] = json!(false);
            }
        }
    }
    catalog
}

struct TapRun {
    code: Option<i32>,
    stderr: String,
    /// The state target-jsonl printed at the end (the last STATE it saw after the last record).
    state: Value,
    /// Records per stream, as target-jsonl wrote them.
    records: BTreeMap<String, Vec<Value>>,
}

/// `greenhouse-extract --config C --catalog CAT [--state S] | target-jsonl --config T`.
fn run_tap(
    dir: &Path,
    config: &str,
    catalog: &Path,
    state: Option<&Path>,
    env: &[(String, String)],
) -> TapRun {
    let out_dir = dir.join("jsonl");
    std::fs::create_dir_all(&out_dir).unwrap();
    let target_config = dir.join("target.json");
    std::fs::write(
        &target_config,
        json!({"destination_path": out_dir, "do_timestamp_file": false}).to_string(),
    )
    .unwrap();
    let mut tap = Command::new(EXTRACT);
    tap.args(["--config", config, "--catalog", catalog.to_str().unwrap()]);
    if let Some(s) = state {
        tap.args(["--state", s.to_str().unwrap()]);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("GREENHOUSE_") {
            tap.env_remove(k);
        }
    }
    tap.envs(env.iter().map(|(k, v)| (k, v)));
    let mut tap = tap
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the tap");
    let target = Command::new(target_jsonl())
        .args(["--config", target_config.to_str().unwrap()])
        .stdin(Stdio::from(tap.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn target-jsonl");
    let tap_out = tap.wait_with_output().unwrap();
    let target_out = target.wait_with_output().unwrap();
    assert!(
        target_out.status.success(),
        "target-jsonl failed: {}\n--- tap stderr\n{}",
        String::from_utf8_lossy(&target_out.stderr),
        String::from_utf8_lossy(&tap_out.stderr)
    );
    let state_line = String::from_utf8(target_out.stdout).unwrap();
    let state = serde_json::from_str(state_line.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("target state {state_line:?}: {e}"));
    let mut records = BTreeMap::new();
    for s in STREAMS {
        let p = out_dir.join(format!("{s}.jsonl"));
        let rows = std::fs::read_to_string(&p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        records.insert(s.to_string(), rows);
    }
    TapRun {
        code: tap_out.status.code(),
        stderr: String::from_utf8_lossy(&tap_out.stderr).into_owned(),
        state,
        records,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn target_jsonl_receives_the_truth_and_resumes_from_its_state() {
    let target = target_jsonl();
    assert!(target.exists());
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--seed", "21"]);
    let dir = tempfile::tempdir().unwrap();
    // The run changes the simulator and syncs again at once: no signpost skew to wait out.
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    // Credentials come from the environment, as a Meltano deployment would pass them.
    let config = write_config(dir.path(), r#"{"per_page": 100}"#);
    let registry = registry();

    let discovered = extract(&["--config", &config, "--discover"], &env);
    assert_eq!(discovered.status.code(), Some(0), "{}", text(&discovered));
    let discovered: Value = serde_json::from_slice(&discovered.stdout).unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, selected_catalog(&discovered).to_string()).unwrap();

    // 1. First run: everything, from the beginning.
    let run1_dir = dir.path().join("run1");
    let run1 = run_tap(&run1_dir, &config, &catalog, None, &env);
    assert_eq!(run1.code, Some(0), "{}", run1.stderr);
    for s in STREAMS {
        let truth = expected_rows(&sim, registry.get(s).unwrap()).await;
        assert!(!truth.is_empty(), "{s}: empty truth");
        let rows = &run1.records[s];
        assert_eq!(
            rows.len(),
            truth.len(),
            "{s}: a first run emits each row once"
        );
        assert_records_equal_truth(
            s,
            &truth,
            &dedup_records(rows.clone()),
            dropped(s),
            &BTreeSet::new(),
        );
    }
    let bookmark1 = |s: &str| {
        let v = &run1.state["bookmarks"][s]["updated_at"];
        DateTime::parse_from_rfc3339(
            v.as_str()
                .unwrap_or_else(|| panic!("{s}: no bookmark in {}", run1.state)),
        )
        .unwrap()
        .with_timezone(&Utc)
    };

    // 2. Greenhouse changes; the resumed run reads only the changed window.
    let changes = sim_mutate(
        &sim,
        &format!(
            "updates=7&inserts=3&deletes=1&seed=4&resources={}",
            STREAMS.join(",")
        ),
    )
    .await;
    assert!(
        changes["updated"]["candidates"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{changes}"
    );
    let state_file = dir.path().join("state.json");
    std::fs::write(&state_file, run1.state.to_string()).unwrap();
    let before = requests_by_resource(&sim).await;
    let run2_dir = dir.path().join("run2");
    let run2 = run_tap(&run2_dir, &config, &catalog, Some(&state_file), &env);
    assert_eq!(run2.code, Some(0), "{}", run2.stderr);
    let after = requests_by_resource(&sim).await;
    let lookback = chrono::Duration::hours(1);
    for s in STREAMS {
        let stream = registry.get(s).unwrap();
        let n = after.get(&stream.resource).copied().unwrap_or(0)
            - before.get(&stream.resource).copied().unwrap_or(0);
        let truth = expected_rows(&sim, stream).await;
        // One page of changes, plus the id listing of a hard-deleted stream small enough to be
        // reconciled on every run (at most 1000 ids; 500 per request).
        let listing = every_run_listing(stream, truth.len());
        assert_eq!(
            n,
            1 + listing,
            "{s}: {n} requests for a window of a few changed rows (one page and {listing} for the id listing expected)"
        );
        // Exactly the rows changed since the bookmark, reaching back by the lookback.
        let from = bookmark1(s) - lookback;
        let changed: BTreeSet<i64> = truth
            .iter()
            .filter(|t| record_updated_at(t) >= from)
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        // Deletes reach target-jsonl as records with `_sdc_deleted_at`: exactly the ids the
        // first run delivered that Greenhouse no longer has.
        let (emitted, tombstoned) = record_ids(&run2.records[s]);
        assert_eq!(
            tombstoned,
            gone_ids(&run1.records[s], &truth),
            "{s}: the deletes the target received"
        );
        assert!(!changed.is_empty(), "{s}: the mutation changed nothing");
        assert_eq!(
            emitted, changed,
            "{s}: the resumed run emitted other rows than the changed ones"
        );
        for id in changes["updated"][s]
            .as_array()
            .into_iter()
            .flatten()
            .chain(changes["inserted"][s].as_array().into_iter().flatten())
        {
            // A record changed and then deleted arrives as its tombstone.
            let id = id.as_i64().unwrap();
            assert!(
                emitted.contains(&id) || tombstoned.contains(&id),
                "{s}: changed id {id} not emitted"
            );
        }
        // With the tombstones applied, no deleted id is left.
        let union = dedup_records(run1.records[s].iter().chain(&run2.records[s]).cloned());
        assert_records_equal_truth(s, &truth, &union, dropped(s), &BTreeSet::new());
        let b2 = &run2.state["bookmarks"][s]["updated_at"];
        let b2 = DateTime::parse_from_rfc3339(b2.as_str().unwrap()).unwrap();
        assert!(b2 > bookmark1(s), "{s}: the bookmark did not advance");
    }
}

/// A sensitive stream selected in the catalog still needs the opt-in in the config.
#[test]
fn sensitive_streams_need_the_opt_in_even_when_selected() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), r#"{"client_id": "a", "client_secret": "b"}"#);
    let catalog = dir.path().join("catalog.json");
    std::fs::write(
        &catalog,
        json!({"streams": [{"tap_stream_id": "eeoc", "metadata": [{"breadcrumb": [], "metadata": {"selected": true}}]}]}).to_string(),
    )
    .unwrap();
    let out = extract(
        &["--config", &config, "--catalog", catalog.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("eeoc") && err.contains("include_sensitive"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn about_describes_the_tap() {
    let out = extract(&["--about"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let about: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(about["name"], "greenhouse-extract");
    assert_eq!(
        about["capabilities"],
        json!(["catalog", "discover", "state"])
    );
    assert!(about["settings"]["properties"]["client_secret"].is_object());
}

/// Meltano reads `--discover` output line by line with asyncio's 64 KiB line limit (regression:
/// the catalog printed as one 138 KB line failed `meltano run` with "Separator is not found,
/// and chunk exceed the limit").
#[test]
fn discover_prints_no_line_near_meltanos_limit() {
    let out = extract(&["--discover"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let longest = out.stdout.split(|b| *b == b'\n').map(<[u8]>::len).max();
    assert!(
        longest.is_some_and(|n| n < 4096),
        "longest line {longest:?} bytes"
    );
    let catalog: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(catalog["streams"].as_array().is_some_and(|s| s.len() > 50));
}

/// Meltano appends `--config`, `--catalog` and `--state` to every invocation it makes, so
/// `meltano invoke tap --about` (and `--discover`) arrive with them (regression: refused as a
/// conflicting pair).
#[test]
fn about_and_discover_accept_the_flags_meltano_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "{}");
    let file = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let catalog = file("catalog.json", r#"{"streams": []}"#);
    let state = file("state.json", r#"{"bookmarks": {}}"#);
    for extra in [
        &["--catalog", &catalog][..],
        &["--state", &state],
        &["--catalog", &catalog, "--state", &state],
    ] {
        for flag in ["--about", "--discover"] {
            let mut args = vec!["--config", config.as_str()];
            args.extend(extra.iter().copied());
            args.push(flag);
            let out = extract(&args, &[]);
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            let key = if flag == "--about" { "name" } else { "streams" };
            assert!(!v[key].is_null(), "{args:?}: {v}");
        }
    }
    // Without either, --state alone resumes nothing: a usage error that says what is missing.
    let out = extract(&["--config", &config, "--state", &state], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--state needs --catalog"),
        "{}",
        text(&out)
    );
}

/// Bad data through the tap: a record without a usable key is never emitted (nor with a null
/// key) but counted and named on stderr; a lone surrogate arrives as U+FFFD, never as an escape a
/// target cannot encode; a zero-padded numeric key is emitted as the integer.
#[tokio::test(flavor = "multi_thread")]
async fn records_without_a_usable_key_are_not_emitted_but_counted_and_named() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--bad-record",
        "candidates:no_id",
        "--bad-record",
        "jobs:surrogate:name",
        "--bad-record",
        "departments:number_text:id",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let env = sim_env(&sim.base_url);
    let config = write_config(dir.path(), r#"{"per_page": 20}"#);
    let discovered = extract(&["--config", &config, "--discover"], &env);
    let discovered: Value = serde_json::from_slice(&discovered.stdout).unwrap();
    let catalog = dir.path().join("catalog.json");
    std::fs::write(&catalog, selected_catalog(&discovered).to_string()).unwrap();
    let run = run_tap(&dir.path().join("run"), &config, &catalog, None, &env);
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let truth = sim.truth("candidates").await;
    let pages = truth.len().div_ceil(20);
    let rows = &run.records["candidates"];
    assert_eq!(rows.len(), truth.len() - pages, "{}", run.stderr);
    assert!(
        rows.iter().all(|r| r["id"].is_i64()),
        "a record without an integer key"
    );
    assert!(
        run.stderr.contains(&format!(
            "candidates: {pages} records without a usable primary key were not emitted"
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("records_not_emitted"),
        "the log event names them: {}",
        run.stderr
    );

    let jobs = &run.records["jobs"];
    assert_eq!(jobs.len(), sim.truth("jobs").await.len());
    assert!(
        jobs.iter().any(|r| r["name"]
            .as_str()
            .is_some_and(|n| n.starts_with('\u{FFFD}'))),
        "the lone surrogate becomes U+FFFD"
    );
    let departments = &run.records["departments"];
    assert_eq!(departments.len(), sim.truth("departments").await.len());
    assert!(
        departments.iter().all(|r| r["id"].is_i64()),
        "{departments:?}"
    );
}
