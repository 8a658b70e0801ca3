//! Current-state tables: after a full sync, and after Greenhouse changes (updates, inserts,
//! deletes, merges) and an incremental sync, every stream's Delta table under
//! `<destination>/current/<stream>/` holds exactly one row per live record, equal to the
//! simulator's truth field by field, as the `deltalake` package (the active files of its log)
//! and DuckDB's `delta` extension read it; a run with no change commits nothing; on the S3 test
//! server too; and a sync killed at any point, then re-run, leaves the tables equal to the truth.

mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use harness::*;
use support::Sim;

fn table_dir(dest: &Path, stream: &str) -> PathBuf {
    dest.join("current").join(stream)
}

/// Every stream's current table equals the truth (and DuckDB counts the same rows).
async fn assert_tables_match(
    sim: &Sim,
    dest: &Path,
    streams: &[&greenhouse_extract::registry::Stream],
) -> usize {
    let mut compared = 0;
    let mut dirs = Vec::new();
    let mut expected = Vec::new();
    for stream in streams {
        let truth = expected_rows(sim, stream).await;
        let dir = table_dir(dest, &stream.name);
        let rows = delta_table_rows(&dir);
        compared += assert_matches_truth(stream, &truth, &rows, false);
        dirs.push(dir);
        expected.push((truth.len() as u64, truth.len() as u64));
    }
    assert_eq!(duckdb_delta_counts(&dirs), expected, "DuckDB's delta_scan");
    compared
}

/// The streams whose table rows the (only) run's manifest says were copied, with the rows.
fn rows_copied(dest: &Path) -> Vec<(String, u64)> {
    let runs: Vec<_> = std::fs::read_dir(dest.join("_runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs[0].path().join("manifest.json")).unwrap())
            .unwrap();
    manifest["streams"]
        .as_object()
        .unwrap()
        .iter()
        .filter_map(|(name, s)| {
            let rows = s["current"]["rows_copied"].as_u64()?;
            (rows > 0).then(|| (name.clone(), rows))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn current_tables_equal_the_truth_after_changes_and_deletes() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--seed", "41"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let registry = registry();
    let all: Vec<&greenhouse_extract::registry::Stream> = registry.streams().iter().collect();

    let out = extract(
        &["sync", "--destination", dest_s, "--include-sensitive"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let compared = assert_tables_match(&sim, &dest, &all).await;
    assert!(compared > 3_000, "only {compared} rows compared");
    // A first sync reads each listing whole, ids descending: most tables are made from the raw
    // files' column chunks (copied, not decoded and encoded again), and read back as above.
    let copied = rows_copied(&dest);
    assert!(copied.len() > all.len() / 2, "copied: {copied:?}");

    // Updates, inserts, deletes (with cascades) and merges, then an incremental sync.
    sim_mutate(&sim, "updates=5&inserts=3&deletes=3&merges=3&seed=9").await;
    let out = extract(
        &[
            "sync",
            "--destination",
            dest_s,
            "--include-sensitive",
            "--reconcile",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_tables_match(&sim, &dest, &all).await;

    // Nothing changed: no table gets a new version.
    let versions: Vec<i64> = all
        .iter()
        .map(|s| delta_table_files(&table_dir(&dest, &s.name)).0)
        .collect();
    let out = extract(
        &["sync", "--destination", dest_s, "--include-sensitive"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after: Vec<i64> = all
        .iter()
        .map(|s| delta_table_files(&table_dir(&dest, &s.name)).0)
        .collect();
    let moved: Vec<&str> = all
        .iter()
        .zip(versions.iter().zip(&after))
        .filter(|(s, (a, b))| a != b && s.is_incremental())
        .map(|(s, _)| s.name.as_str())
        .collect();
    assert!(moved.is_empty(), "a no-change run committed to {moved:?}");

    // `rebuild` builds tables again from the raw history: the same current state.
    let out = extract(
        &[
            "rebuild",
            "--destination",
            dest_s,
            "--streams",
            "candidates,applications,demographic_questions",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rebuilt: Vec<&greenhouse_extract::registry::Stream> =
        ["candidates", "applications", "demographic_questions"]
            .iter()
            .map(|n| registry.get(n).unwrap())
            .collect();
    assert_tables_match(&sim, &dest, &rebuilt).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn current_tables_on_the_s3_server() {
    let sim = Sim::start(&["--scale", "0.2", "--rate-limit", "0", "--seed", "43"]);
    let s3 = S3Server::start("lake");
    let mut env = sim_env(&sim.base_url);
    env.extend(s3.env());
    env.push(no_signpost_skew());
    let streams = "candidates,applications,jobs,offers,scorecards,departments";
    let dest = "s3://lake/gh";
    let out = extract(&["sync", "--destination", dest, "--streams", streams], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sim_mutate(
        &sim,
        "updates=4&inserts=2&deletes=2&merges=1&seed=3&resources=candidates,applications,jobs,offers,scorecards,departments",
    )
    .await;
    let out = extract(
        &[
            "sync",
            "--destination",
            dest,
            "--streams",
            streams,
            "--reconcile",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The server keeps each object as a file under its root: read the tables from there.
    let root = s3.root.path().join("lake").join("gh");
    let registry = registry();
    let chosen: Vec<&greenhouse_extract::registry::Stream> = streams
        .split(',')
        .map(|n| registry.get(n).unwrap())
        .collect();
    assert_tables_match(&sim, &root, &chosen).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_killed_anywhere_leaves_the_tables_right_after_a_rerun() {
    let trials: u64 = std::env::var("CURRENT_TABLE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let sim = Sim::start(&["--scale", "0.2", "--rate-limit", "0", "--seed", "47"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let streams = "candidates,applications,offers,jobs,departments,scorecards,interviews";
    let out = extract(
        &["sync", "--destination", dest_s, "--streams", streams],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let registry = registry();
    let chosen: Vec<&greenhouse_extract::registry::Stream> = streams
        .split(',')
        .map(|n| registry.get(n).unwrap())
        .collect();
    for trial in 0..trials {
        sim_mutate(
            &sim,
            &format!("updates=4&inserts=2&deletes=1&merges=1&seed={trial}"),
        )
        .await;
        // Kill somewhere between the first raw write and the last bookmark.
        let delay = Duration::from_millis(20 + (trial * 37) % 400);
        let mut cmd = std::process::Command::new(EXTRACT);
        cmd.args([
            "sync",
            "--destination",
            dest_s,
            "--streams",
            streams,
            "--reconcile",
        ]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let _ = extract(
            &["state", "unlock", "--destination", dest_s, "--force"],
            &env,
        );
    }
    let out = extract(
        &[
            "sync",
            "--destination",
            dest_s,
            "--streams",
            streams,
            "--reconcile",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_tables_match(&sim, &dest, &chosen).await;
}
