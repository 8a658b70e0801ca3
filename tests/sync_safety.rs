//! Crash and concurrency safety of `sync`: a second run on the same prefix is refused without
//! damage while the first goes on; a run killed mid-sync (SIGKILL) loses nothing once re-run.

mod harness;
mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use support::Sim;

const STREAMS: [&str; 5] = ["candidates", "applications", "notes", "users", "jobs"];

fn spawn_sync(dest: &str, env: &[(String, String)], config: &str) -> std::process::Child {
    let mut cmd = Command::new(EXTRACT);
    cmd.args([
        "sync",
        "--destination",
        dest,
        "--streams",
        &STREAMS.join(","),
        "--log-format",
        "json",
        "--config",
        config,
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

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
    let mut first = spawn_sync(dest.to_str().unwrap(), &env, &cfg);
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
    let mut victim = spawn_sync(dest.to_str().unwrap(), &env, &cfg);
    // Kill it once at least one stream has committed and others are still in flight.
    wait_for(
        &dest.join("_state/state-0000000001.json"),
        Duration::from_secs(60),
    );
    victim.kill().unwrap();
    victim.wait().unwrap();
    // The kill really came mid-run: the run never got to write its manifest.
    assert!(
        !dest.join("_runs").exists(),
        "the first run had already finished; the test did not interrupt anything"
    );

    // The re-run takes over the dead run's lease (same host, process gone) and completes.
    let rerun = sync_streams(&dest, &STREAMS, None, &env);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_local_matches(&sim, &dest, &STREAMS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_cleanly_with_the_interrupted_code() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--latency-ms", "100"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let cfg = write_config(dir.path(), SMALL_PAGES);
    let run = spawn_sync(dest.to_str().unwrap(), &env, &cfg);
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
