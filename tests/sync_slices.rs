//! Sliced backfills: a large first window is read as concurrent `updated_at` slices whose union
//! equals the truth, at a bounded request overhead; a backfill killed after some slices were
//! committed resumes from them instead of starting over.

mod harness;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use greenhouse_extract::state::State;
use harness::*;
use serde_json::Value;
use support::Sim;

const STREAMS: [&str; 3] = ["applications", "candidates", "notes"];
/// Small pages turn scale 1 into hundreds of pages: enough to slice.
const SMALL_PAGES: &str = r#"{"per_page": 20, "backfill_slices": 6, "backfill_slice_pages": 50}"#;

fn manifest(dest: &std::path::Path) -> Value {
    let runs = std::fs::read_dir(dest.join("_runs")).unwrap();
    let mut newest: Option<(std::time::SystemTime, std::path::PathBuf)> = None;
    for r in runs {
        let p = r.unwrap().path().join("manifest.json");
        let t = std::fs::metadata(&p).unwrap().modified().unwrap();
        if newest.as_ref().is_none_or(|(n, _)| t > *n) {
            newest = Some((t, p));
        }
    }
    serde_json::from_slice(&std::fs::read(newest.unwrap().1).unwrap()).unwrap()
}

fn newest_state(dest: &std::path::Path) -> Option<State> {
    let mut names: Vec<_> = std::fs::read_dir(dest.join("_state"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state-"))
        .collect();
    names.sort();
    let bytes = std::fs::read(dest.join("_state").join(names.last()?)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sliced_backfill_equals_the_truth_at_a_bounded_overhead() {
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--seed", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(dir.path(), SMALL_PAGES);
    let out = sync_streams(&dest, &STREAMS, Some(&cfg), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_local_matches(&sim, &dest, &STREAMS).await;

    let m = manifest(&dest);
    for name in STREAMS {
        let s = &m["streams"][name];
        let slices = s["slices"].as_u64().unwrap();
        assert!(slices >= 2, "{name} was not sliced: {s}");
        let truth = sim.truth(name).await.len() as u64;
        let minimum = truth.div_ceil(20);
        // Overhead: the probe page, the lower-bound search, one partial page per slice.
        let bound = minimum + 1 + 4 + slices;
        let requests = s["requests"].as_u64().unwrap();
        assert!(
            requests >= minimum && requests <= bound,
            "{name}: {requests} requests, minimum {minimum}, bound {bound}"
        );
        // One file set per slice, all committed in the manifest.
        assert!(s["files"].as_array().unwrap().len() as u64 >= slices - 1);
        // A complete read is its own listing, slices and all: nothing it read is a delete.
        assert_eq!(
            s["deletes"]["by_reconcile"], 0,
            "{name}: a sliced first read tombstoned ids it read: {}",
            s["deletes"]
        );
    }
    // The window completed: the bookmark moved and no slice progress is left behind.
    let state = newest_state(&dest).unwrap();
    for name in STREAMS {
        let entry = &state.streams[name];
        assert!(entry.bookmark.is_some(), "{name}: no bookmark");
        assert!(entry.slices.is_none(), "{name}: slice progress left");
    }

    // Below the per-slice minimum (the default, 200 pages) or with slicing off, the same backfill
    // is one chain per stream and the minimum of requests.
    let dest2 = dir.path().join("out2");
    let cfg2 = dir.path().join("c2.json");
    std::fs::write(&cfg2, r#"{"per_page": 20, "backfill_slices": 1}"#).unwrap();
    let out = sync_streams(&dest2, &STREAMS, cfg2.to_str(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let m = manifest(&dest2);
    for name in STREAMS {
        let truth = sim.truth(name).await.len() as u64;
        assert_eq!(m["streams"][name]["slices"], 0);
        assert_eq!(
            m["streams"][name]["requests"].as_u64().unwrap(),
            truth.div_ceil(20),
            "{name}"
        );
    }
    assert_local_matches(&sim, &dest2, &STREAMS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_backfill_resumes_from_its_completed_slices() {
    // Latency stretches the backfill; one unit at a time makes slices finish one by one.
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--latency-ms", "15"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(
        dir.path(),
        r#"{"per_page": 20, "backfill_slices": 6, "backfill_slice_pages": 40, "concurrency": 1}"#,
    );
    let mut cmd = Command::new(EXTRACT);
    cmd.args([
        "sync",
        "--destination",
        dest.to_str().unwrap(),
        "--streams",
        "notes",
        "--config",
        &cfg,
    ]);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut run = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait until at least two slices are committed, then kill the run without warning.
    let deadline = Instant::now() + Duration::from_secs(120);
    let progress = loop {
        if let Some(s) = newest_state(&dest)
            && let Some(p) = s.streams.get("notes").and_then(|e| e.slices.clone())
            && p.ranges().len() - p.pending().len() >= 2
        {
            break p;
        }
        assert!(Instant::now() < deadline, "no slice was committed in time");
        std::thread::sleep(Duration::from_millis(20));
    };
    run.kill().unwrap();
    run.wait().unwrap();
    let state = newest_state(&dest).unwrap();
    let progress = state.streams["notes"].slices.clone().unwrap_or(progress);
    assert!(
        state.streams["notes"].bookmark.is_none(),
        "bookmark moved early"
    );
    let total = progress.ranges().len();
    let pending = progress.pending().len();
    assert!(
        pending >= 1 && pending < total,
        "{pending} of {total} pending"
    );
    // The committed slices' files wait in the state for the window's merge into the current
    // table (a first read's slices are merged together): none of them is merged yet.
    let unmerged = &state.streams["notes"].slices.as_ref().unwrap().unmerged;
    assert!(!unmerged.is_empty(), "no slice file waits for its merge");
    for key in unmerged {
        assert!(
            dest.join(key).is_file(),
            "{key} is not a committed raw file"
        );
    }
    assert!(
        !dest
            .join("current")
            .join("notes")
            .join("_delta_log")
            .exists()
            || delta_table_rows(&dest.join("current").join("notes")).is_empty(),
        "slices were merged before their window completed"
    );

    // The re-run reads only what is not done (plus the lookback tail) and completes.
    let before = requests_by_resource(&sim).await;
    let rerun = sync_streams(&dest, &["notes"], Some(&cfg), &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    let after = requests_by_resource(&sim).await;
    let used = after["notes"] - before.get("notes").copied().unwrap_or(0);
    let full = (sim.truth("notes").await.len() as u64).div_ceil(20);
    assert!(
        used < full,
        "the re-run made {used} requests; a fresh backfill needs {full}"
    );
    let m = manifest(&dest);
    assert_eq!(m["streams"]["notes"]["status"], "committed");
    // The re-run read only part of the window: its ids are no listing of the live ones (taken
    // for one, every note the killed run read was tombstoned).
    assert_eq!(
        m["streams"]["notes"]["deletes"]["by_reconcile"], 0,
        "{:#}",
        m["streams"]["notes"]["deletes"]
    );
    assert_local_matches(&sim, &dest, &["notes"]).await;
    let state = newest_state(&dest).unwrap();
    assert!(state.streams["notes"].slices.is_none());
    assert!(state.streams["notes"].bookmark.is_some());
    // The re-run merged the killed run's slices with its own: the current table holds every
    // note exactly once, the latest version of each, in one commit of the re-run.
    let notes = registry().get("notes").unwrap().clone();
    let truth = expected_rows(&sim, &notes).await;
    let rows = delta_table_rows(&dest.join("current").join("notes"));
    assert_eq!(
        m["streams"]["notes"]["current"]["commits"], 1,
        "{:#}",
        m["streams"]["notes"]
    );
    assert_matches_truth(&notes, &truth, &rows, false);
}
