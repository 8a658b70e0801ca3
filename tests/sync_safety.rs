//! Crash and concurrency safety of `sync`: a second run on the same prefix is refused without
//! damage while the first goes on; a run killed mid-sync (SIGKILL) loses nothing once re-run.

mod harness;
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use support::Sim;

const STREAMS: [&str; 5] = ["candidates", "applications", "notes", "users", "jobs"];

/// Small pages stretch a run over many requests (with the simulator's latency: seconds).
const SMALL_PAGES: &str = r#"{"per_page": 50, "concurrency": 2}"#;

fn wait_for(path: &std::path::Path, within: Duration) {
    let deadline = Instant::now() + within;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_concurrent_second_run_is_refused_without_damage() {
    // Latency keeps the first run busy long enough to overlap.
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--latency-ms", "150"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(dir.path(), SMALL_PAGES);
    let mut first = spawn_sync(dest.to_str().unwrap(), &STREAMS.join(","), &env, &cfg);
    wait_for(&dest.join("_state/lease.json"), Duration::from_secs(30));

    let second = sync_streams(&dest, &STREAMS, None, &env);
    assert_eq!(second.status.code(), Some(6), "{}", text(&second));
    assert!(
        text(&second).contains("another run"),
        "the refusal should say why: {}",
        text(&second)
    );

    let status = first.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_local_matches(&sim, &dest, &STREAMS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_sync_loses_nothing_when_re_run() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--latency-ms", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(dir.path(), SMALL_PAGES);
    let mut victim = spawn_sync(dest.to_str().unwrap(), &STREAMS.join(","), &env, &cfg);
    // Kill it once at least one stream has committed and others are still in flight.
    wait_for(
        &dest.join("_state/state-0000000001.json"),
        Duration::from_secs(60),
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    // The kill really came mid-run: the run never got to write its manifest.
    assert!(
        manifests(&dest).is_empty(),
        "the first run had already finished; the test did not interrupt anything"
    );

    // The re-run takes over the dead run's lease (same host, process gone) and completes.
    let rerun = sync_streams(&dest, &STREAMS, None, &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_local_matches(&sim, &dest, &STREAMS).await;
}

/// Every `_runs/<run>/manifest.json` under the local destination `dest`.
fn manifests(dest: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(runs) = std::fs::read_dir(dest.join("_runs")) else {
        return Vec::new();
    };
    runs.filter_map(|r| {
        let p = r.unwrap().path().join("manifest.json");
        p.exists().then_some(p)
    })
    .collect()
}

/// Every data file (`*.parquet`) under `dest`, as object keys.
fn data_files(dest: &std::path::Path) -> std::collections::BTreeSet<String> {
    fn walk(
        root: &std::path::Path,
        dir: &std::path::Path,
        out: &mut std::collections::BTreeSet<String>,
    ) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            // The current tables' files are Delta's (its log lists them), not the manifests'.
            if p.is_dir() && p != root.join("current") {
                walk(root, &p, out);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.insert(p.strip_prefix(root).unwrap().to_str().unwrap().to_string());
            }
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(dest, dest, &mut out);
    out
}

/// Regression: a killed run's committed files were listed in no manifest (it never writes one,
/// and later runs do not re-read those streams), so a loader that loads manifests lost them.
#[tokio::test(flavor = "multi_thread")]
async fn after_a_kill_the_manifests_list_exactly_the_committed_files() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--latency-ms", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(dir.path(), SMALL_PAGES);
    let mut victim = spawn_sync(dest.to_str().unwrap(), &STREAMS.join(","), &env, &cfg);
    // Two generations: at least two commits with files of the killed run.
    wait_for(
        &dest.join("_state/state-0000000002.json"),
        Duration::from_secs(60),
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    assert!(
        manifests(&dest).is_empty(),
        "the first run was not interrupted"
    );
    let killed_files = data_files(&dest);
    assert!(!killed_files.is_empty());

    let rerun = sync_streams(&dest, &STREAMS, None, &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));

    // The union of the manifests' keys is exactly the set of data files under the prefix.
    let mut listed = std::collections::BTreeSet::new();
    let mut statuses = Vec::new();
    for m in manifests(&dest) {
        let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&m).unwrap()).unwrap();
        statuses.push(doc["status"].as_str().unwrap().to_string());
        for s in doc["streams"].as_object().unwrap().values() {
            for f in s["files"].as_array().unwrap() {
                assert!(
                    listed.insert(f["key"].as_str().unwrap().to_string()),
                    "{f} listed twice"
                );
            }
        }
    }
    statuses.sort();
    assert_eq!(statuses, ["crashed", "success"]);
    assert_eq!(listed, data_files(&dest));

    // A loader that reads only the manifests' files gets the truth.
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&dest).unwrap());
    let registry = registry();
    for name in STREAMS {
        let mut rows = Vec::new();
        for key in listed.iter().filter(|k| k.starts_with(&format!("{name}/"))) {
            let bytes =
                object_store::ObjectStoreExt::get(store.as_ref(), &ObjPath::from(key.as_str()))
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
            rows.extend(parquet_to_json(bytes));
        }
        let stream = registry.get(name).unwrap();
        let truth = expected_rows(&sim, stream).await;
        assert_matches_truth(stream, &truth, &dedup_latest(rows), false);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_cleanly_with_the_interrupted_code() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--latency-ms", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(dir.path(), SMALL_PAGES);
    let run = spawn_sync(dest.to_str().unwrap(), &STREAMS.join(","), &env, &cfg);
    wait_for(
        &dest.join("_state/state-0000000001.json"),
        Duration::from_secs(60),
    );
    let pid = run.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = run.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Committed streams keep their files; the others left no data file behind.
    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&dest).unwrap());
    let state = greenhouse_extract::state::StateStore::new(store.clone(), ObjPath::from(""))
        .load()
        .await
        .unwrap();
    assert!(!state.streams.is_empty());
    assert!(
        state.streams.len() < STREAMS.len(),
        "nothing was interrupted"
    );
    for name in STREAMS {
        let rows = read_stream(&store, &ObjPath::from(""), name).await;
        if !state.streams.contains_key(name) {
            assert!(
                rows.is_empty(),
                "{name}: files of an uncommitted stream remain"
            );
        }
    }
    // The lease was released: a re-run starts at once and completes.
    assert!(!dest.join("_state/lease.json").exists());
    let rerun = sync_streams(&dest, &STREAMS, None, &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_local_matches(&sim, &dest, &STREAMS).await;
}
