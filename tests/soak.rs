//! Soak: a bounded `kill -9` sweep against the simulator with faults on. Each trial kills a sync
//! at a random moment (and once kills the recovery run too: a double crash), then re-runs it to
//! completion and checks that the output equals the simulator's truth *and* that the union of
//! every run manifest lists exactly the data files under the destination — so a loader that
//! trusts manifests loses nothing and loads nothing twice.
//!
//! `SOAK_TRIALS` (default 10; `make soak` runs 100) and `SOAK_SEED` (default 1) make a sweep
//! reproducible: the same seed kills at the same offsets.

mod harness;
mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use harness::*;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use support::Sim;

const STREAMS: [&str; 5] = ["candidates", "applications", "notes", "users", "jobs"];

/// A small deterministic generator (xorshift64*): kill offsets from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn spawn_sync(dest: &str, env: &[(String, String)], config: &str) -> std::process::Child {
    let mut cmd = Command::new(EXTRACT);
    cmd.args(["sync", "--quiet", "--destination", dest, "--streams"])
        .arg(STREAMS.join(","))
        .args(["--config", config]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Starts a sync and SIGKILLs it after `after`; returns whether it was still running (a kill
/// that came after the run finished tests nothing, but is harmless).
fn kill_after(dest: &str, env: &[(String, String)], config: &str, after: Duration) -> bool {
    let mut child = spawn_sync(dest, env, config);
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// Every data file under the destination, and every file the run manifests list.
async fn files_and_manifests(dest: &std::path::Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let store = Arc::new(LocalFileSystem::new_with_prefix(dest).unwrap());
    let objects: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut files = BTreeSet::new();
    let mut listed = BTreeSet::new();
    for o in &objects {
        let key = o.location.to_string();
        let name = o.location.filename().unwrap_or_default();
        // Raw data files (the current tables under `current/` are Delta's, listed by its log).
        if key.ends_with(".parquet") && !name.starts_with('_') && !key.starts_with("current/") {
            files.insert(key.clone());
        }
        if key.starts_with("_runs/") && key.ends_with("/manifest.json") {
            let text = std::fs::read_to_string(dest.join(&key)).unwrap();
            let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
            for s in manifest["streams"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
            {
                for f in s["files"].as_array().into_iter().flatten() {
                    listed.insert(f["key"].as_str().unwrap().to_string());
                }
            }
        }
    }
    (files, listed)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_nine_sweep_keeps_output_and_manifests_true() {
    let trials = env_num("SOAK_TRIALS", 10);
    let mut rng = Rng(env_num("SOAK_SEED", 1).max(1));
    let sim = Sim::start(&[
        "--scale",
        "0.1",
        "--rate-limit",
        "0",
        "--latency-ms",
        "60",
        "--fail-rate",
        "0.03",
        "--fault-kinds",
        "500,502,503,reset,truncate",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_str = dest.to_str().unwrap().to_string();
    let mut env = sim_env(&sim.base_url);
    env.push(no_signpost_skew());
    let cfg = write_config(dir.path(), r#"{"per_page": 20, "concurrency": 2}"#);
    let mut interrupted = 0;
    for trial in 0..trials {
        if trial > 0 {
            // Greenhouse changes between runs: the next window has pages to read.
            sim_mutate(&sim, &format!("updates=60&inserts=20&seed={trial}")).await;
        }
        let after = Duration::from_millis(rng.between(30, 700));
        if kill_after(&dest_str, &env, &cfg, after) {
            interrupted += 1;
        }
        if trial == trials / 2 {
            // A double crash: the recovery run is killed too.
            let again = Duration::from_millis(rng.between(50, 800));
            kill_after(&dest_str, &env, &cfg, again);
        }
        let rerun = sync_streams(&dest, &STREAMS, Some(&cfg), &env);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "trial {trial} (killed after {after:?}): {}",
            text(&rerun)
        );
        assert_local_matches(&sim, &dest, &STREAMS).await;
        let (files, listed) = files_and_manifests(&dest).await;
        let unlisted: Vec<_> = files.difference(&listed).collect();
        let missing: Vec<_> = listed.difference(&files).collect();
        assert!(
            unlisted.is_empty() && missing.is_empty(),
            "trial {trial}: data files in no manifest: {unlisted:?}; manifest entries without a file: {missing:?}"
        );
    }
    assert!(
        interrupted * 2 >= trials,
        "only {interrupted} of {trials} kills interrupted a run: the sweep tested little"
    );
}
