//! `sync --dry-run` plans a run without changing anything: it shows each stream's window as
//! `sync` would plan it, probes each stream with exactly one request, estimates requests and time
//! from the advertised rate limit, shows skipped streams as such, writes nothing anywhere (no
//! data, state, lease or manifest; a missing destination folder stays missing) and fails with the
//! same exit codes as `sync`.

mod harness;
mod support;

use std::path::{Path, PathBuf};

use harness::*;
use support::Sim;

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
                out.push((p, Vec::new()));
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The table row of `stream` in the dry run's stdout, split on runs of two or more spaces.
fn row(stdout: &str, stream: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(stream))
        .unwrap_or_else(|| panic!("no row for {stream}:\n{stdout}"));
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_dry_run_probes_once_per_stream_and_creates_nothing() {
    let sim = Sim::start(&["--scale", "0.05", "--deny-scope", "offers"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("never-created");
    // A small page size, so that one stream is larger than its first page.
    let config = write_config(dir.path(), r#"{"per_page": 20}"#);
    let before = requests_by_resource(&sim).await;
    let out = extract(
        &[
            "sync",
            "--dry-run",
            "--config",
            &config,
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "jobs,candidates,offers",
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!dest.exists(), "the destination folder was created");

    let truth_jobs = sim.truth("jobs").await.len();
    assert!(truth_jobs <= 20, "fixture: jobs should fit in one page");
    let jobs = row(&stdout, "jobs");
    assert_eq!(jobs[1], "start", "{jobs:?}");
    assert_eq!(jobs[3], truth_jobs.to_string(), "{jobs:?}");
    assert_eq!(jobs[4], "1", "{jobs:?}");
    // A first read is complete: it is the stream's reconcile, at no extra request.
    assert_eq!(jobs[5], "0", "{jobs:?}");
    assert!(jobs[6].contains("fits in one page"), "{jobs:?}");

    let truth_candidates = sim.truth("candidates").await.len();
    assert!(
        truth_candidates > 20,
        "fixture: candidates need several pages"
    );
    let candidates = row(&stdout, "candidates");
    assert_eq!(candidates[3], "20", "{candidates:?}");
    assert_eq!(
        candidates[4], "> 1 (more than per_page rows)",
        "{candidates:?}"
    );

    let offers = row(&stdout, "offers");
    assert!(
        offers
            .last()
            .unwrap()
            .contains("skipped: missing scope harvest:offers:list"),
        "{offers:?}"
    );
    assert!(
        stdout.contains("Estimated requests: at least 3 for 2 streams (1 would be skipped)"),
        "{stdout}"
    );
    // The simulator advertises its limit; the time line quotes it.
    assert!(
        stdout.contains("requests per 30 s") && stdout.contains("Estimated time:"),
        "{stdout}"
    );

    // Exactly one request per stream (the probe), nothing else.
    let after = requests_by_resource(&sim).await;
    for resource in ["jobs", "candidates", "offers"] {
        let n =
            after.get(resource).copied().unwrap_or(0) - before.get(resource).copied().unwrap_or(0);
        assert_eq!(n, 1, "{resource}: {n} requests");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_sync_the_dry_run_plans_the_next_window_and_changes_nothing() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env(&sim.base_url);
    let out = sync_streams(&dest, &["jobs", "users"], None, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The window starts one lookback (1 h) before the committed bookmark.
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("_state/state-0000000002.json")).unwrap())
            .unwrap();
    let bookmark = chrono::DateTime::parse_from_rfc3339(
        state["streams"]["jobs"]["bookmark"].as_str().unwrap(),
    )
    .unwrap()
    .with_timezone(&chrono::Utc);
    let from = (bookmark - chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let missing = dir.path().join("missing-state.json");
    let empty = dir.path().join("empty-state.json");
    std::fs::write(&empty, r#"{"version": 1, "generation": 0, "streams": {}}"#).unwrap();
    let before = snapshot(dir.path());

    // (state file, expected window start): like sync, a state file that does not exist yet
    // falls back to the destination's state (and is not created); an existing one wins.
    for (state_file, expected_from) in [
        (None, from.as_str()),
        (Some(&missing), from.as_str()),
        (Some(&empty), "start"),
    ] {
        let mut args = vec![
            "sync",
            "--dry-run",
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "jobs,users",
        ];
        if let Some(f) = state_file {
            args.extend(["--state-file", f.to_str().unwrap()]);
        }
        let out = extract(&args, &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(row(&stdout, "jobs")[1], expected_from, "{stdout}");
        if state_file.is_none() {
            assert!(stdout.contains("State: generation 2"), "{stdout}");
        }
        assert_eq!(
            snapshot(dir.path()),
            before,
            "the dry run changed the destination or created the state file"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_fails_like_sync_and_still_writes_nothing() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    // (name, environment changes, destination instead of a local folder, exit code)
    type Case = (
        &'static str,
        Vec<(String, String)>,
        Option<&'static str>,
        i32,
    );
    let cases: Vec<Case> = vec![
        (
            "bad config",
            vec![("GREENHOUSE_SUB".into(), "admin".into())],
            None,
            2,
        ),
        (
            "refused credentials",
            vec![(
                "GREENHOUSE_CLIENT_SECRET".into(),
                "wrong-secret-0815".into(),
            )],
            None,
            4,
        ),
        (
            "unreachable destination",
            vec![
                ("AWS_ENDPOINT".into(), "http://127.0.0.1:1".into()),
                ("AWS_ACCESS_KEY_ID".into(), "AK".into()),
                ("AWS_SECRET_ACCESS_KEY".into(), "SK".into()),
                ("AWS_REGION".into(), "us-east-1".into()),
            ],
            Some("s3://bucket/raw"),
            5,
        ),
    ];
    for (name, changes, destination, code) in cases {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out").to_str().unwrap().to_string();
        let mut env = sim_env(&sim.base_url);
        for (k, v) in changes {
            env.retain(|(n, _)| *n != k);
            env.push((k, v));
        }
        let out = extract(
            &[
                "sync",
                "--dry-run",
                "--destination",
                destination.unwrap_or(&dest),
                "--streams",
                "jobs",
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(code), "{name}: {}", text(&out));
        assert!(
            snapshot(dir.path()).is_empty(),
            "{name}: files were written"
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("wrong-secret-0815"),
            "{name}: the secret leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_larger_than_a_page_is_estimated_from_the_last_run() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    // The run changes the simulator and syncs again at once: no signpost skew to wait out.
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let config = write_config(dir.path(), r#"{"per_page": 5, "start_date": "2000-01-01"}"#);
    let out = sync_streams(&dest, &["candidates"], Some(&config), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rows = sim.truth("candidates").await.len();
    // Enough changes inside the next window (bookmark − lookback … now) to need several pages.
    sim_mutate(&sim, "updates=30&resources=candidates&seed=7").await;
    let before = snapshot(dir.path());
    let out = extract(
        &[
            "sync",
            "--dry-run",
            "--config",
            &config,
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "candidates",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let candidates = row(&stdout, "candidates");
    assert_eq!(candidates[3], "5", "{stdout}");
    assert!(candidates[4].starts_with('~'), "{stdout}");
    let estimate: u64 = candidates[4][1..].parse().unwrap();
    assert!(
        estimate >= 2,
        "a next link means at least two requests: {stdout}"
    );
    // Few ids: reconciled every run, one `fields=id` page of 500.
    assert_eq!(candidates[5], "1", "{stdout}");
    assert!(
        candidates[6].contains(&format!("the last run read {rows} rows in")),
        "{stdout}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the dry run changed something"
    );
}
