//! No hang, ever: a run whose rate-limit headers lack a reset keeps going window after window,
//! and SIGTERM stops a run within 2 s whatever it waits for (the lease released, so the next
//! run starts at once); a next link that repeats its cursor ends the chain with an error.

mod harness;
mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use harness::*;
use support::Sim;

/// Waits until the simulator has answered `n` `/v3` requests.
async fn wait_for_requests(sim: &Sim, n: u64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let total = sim.stats().await["total_requests"].as_u64().unwrap_or(0);
        if total >= n {
            return;
        }
        assert!(Instant::now() < deadline, "only {total} requests arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits at most `within` for `child` to exit; kills it (and fails) otherwise.
fn exit_within(mut child: Child, within: Duration) -> (std::process::Output, Duration) {
    let t = Instant::now();
    while t.elapsed() < within {
        if child.try_wait().unwrap().is_some() {
            let elapsed = t.elapsed();
            return (child.wait_with_output().unwrap(), elapsed);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "still running {within:?} after the signal; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// Regression: without `X-RateLimit-Reset` the run stopped after `X-RateLimit-Limit`
/// requests, logged nothing, ignored SIGTERM and kept its lease.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_rate_limit_wait_without_reset_exits_at_once_and_releases_the_lease() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "3",
        "--omit-rate-headers",
        "reset",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = write_config(dir.path(), r#"{"per_page": 5}"#);
    let run = spawn_sync(
        dest.to_str().unwrap(),
        "candidates",
        &sim_env(&sim.base_url),
        &cfg,
    );
    wait_for_requests(&sim, 3, Duration::from_secs(30)).await;
    // Let the run reach its wait for the next window.
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal(&run, "-TERM");
    let (out, took) = exit_within(run, Duration::from_secs(10));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(took <= Duration::from_secs(2), "took {took:?} to stop");
    assert!(
        stderr.contains("\"rate_window_wait\""),
        "the wait for the window was not logged: {stderr}"
    );
    assert!(
        !dest.join("_state/lease.json").exists(),
        "the lease was not released"
    );

    // The next run starts at once (here against an unlimited simulator) and completes.
    let free = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let rerun = sync_streams(&dest, &["candidates"], None, &sim_env(&free.base_url));
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
}

/// Regression: a `Link rel="next"` that repeats its cursor was followed for ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_next_link_that_repeats_its_cursor_fails_the_stream_instead_of_looping() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--fail-rate",
        "1",
        "--fault-kinds",
        "repeat_cursor",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = write_config(dir.path(), r#"{"per_page": 5}"#);
    let run = spawn_sync(
        dest.to_str().unwrap(),
        "candidates,jobs",
        &sim_env(&sim.base_url),
        &cfg,
    );
    let (out, _) = exit_within(run, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("repeated"), "no reason given: {stderr}");
    let requests = sim.stats().await["total_requests"].as_u64().unwrap();
    assert!(requests <= 10, "{requests} requests for two looping chains");
}

/// `--deadline`: a scheduled run stops taking work in time, commits what finished and exits
/// with the partial code, instead of waiting out a rate-limit window past its slot.
#[tokio::test(flavor = "multi_thread")]
async fn the_deadline_commits_what_finished_and_exits_partial() {
    let sim = Sim::start(&["--scale", "0.2", "--rate-limit", "6"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = write_config(dir.path(), r#"{"per_page": 5, "backfill_slices": 1}"#);
    let t = Instant::now();
    let out = extract(
        &[
            "sync",
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "offices,candidates",
            "--config",
            &cfg,
            // Long enough for the debug binary to finish `offices` (a few pages, its table and
            // its commit) on a loaded 2-core machine: 2 s once was not; far below the 30 s
            // window that `candidates` would wait for.
            "--deadline",
            "4s",
        ],
        &sim_env(&sim.base_url),
    );
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(took < Duration::from_secs(12), "took {took:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("interrupted"), "{stdout}");
    assert!(!dest.join("_state/lease.json").exists(), "lease kept");
    // What finished before the deadline is committed.
    let store: std::sync::Arc<dyn object_store::ObjectStore> =
        std::sync::Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&dest).unwrap());
    let state =
        greenhouse_extract::state::StateStore::new(store, object_store::path::Path::from(""))
            .load()
            .await
            .unwrap();
    assert!(state.streams.contains_key("offices"), "{stdout}");
    assert!(!state.streams.contains_key("candidates"), "{stdout}");
}
