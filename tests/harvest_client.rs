//! The Harvest client end to end, over real HTTP against harvest-sim: token refresh on expiry,
//! the rate budget, retries of injected faults, 403 streams skipped while others commit, bad
//! credentials, and `check` with missing scopes.

mod harness;
mod support;

use harness::*;
use support::Sim;

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_refreshed_when_they_expire_mid_run() {
    let sim = Sim::start(&[
        "--scale",
        "0.3",
        "--rate-limit",
        "0",
        "--token-ttl",
        "1",
        "--latency-ms",
        "150",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    // Small pages make the run outlive several tokens.
    let cfg = write_config(dir.path(), r#"{"per_page": 40, "concurrency": 2}"#);
    let out = sync_streams(
        &dest,
        &["candidates,applications"],
        Some(&cfg),
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stats = sim.stats().await;
    let tokens = stats["token_requests"].as_u64().unwrap_or(0);
    assert!(
        tokens >= 2,
        "expected several tokens, got {tokens}: {stats}"
    );
    assert_local_matches(&sim, &dest, &["candidates", "applications"]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_faults_are_retried_and_nothing_is_lost() {
    let sim = Sim::start(&[
        "--scale",
        "0.3",
        "--rate-limit",
        "0",
        "--fail-rate",
        "0.25",
        "--seed",
        "9",
        "--fault-kinds",
        "500,502,503,reset,truncate",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = write_config(dir.path(), r#"{"per_page": 100}"#);
    let streams = ["candidates", "applications", "notes", "scorecards"];
    let out = sync_streams(&dest, &streams, Some(&cfg), &sim_env(&sim.base_url));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_local_matches(&sim, &dest, &streams).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_budget_waits_for_the_window_instead_of_hitting_429() {
    // 6 requests per 30 s window and 9 streams of one page each: the run must wait for the
    // next window rather than provoke 429s.
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "6"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let streams = [
        "close_reasons",
        "departments",
        "offices",
        "sources",
        "user_roles",
        "candidate_tags",
        "prospect_pools",
        "interviewer_tags",
        "referrers",
    ];
    let cfg = write_config(dir.path(), r#"{"concurrency": 9, "max_in_flight": 9}"#);
    let out = sync_streams(&dest, &streams, Some(&cfg), &sim_env(&sim.base_url));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stats = sim.stats().await;
    let n429 = stats["rate_limited"].as_u64().unwrap_or(0);
    assert!(n429 <= 1, "the budget let {n429} requests hit 429: {stats}");
    assert_local_matches(&sim, &dest, &streams).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_stream_is_skipped_while_the_others_commit() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--deny-scope",
        "candidates",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let out = sync_streams(
        &dest,
        &["candidates", "jobs"],
        None,
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("skipped (missing scope harvest:candidates:list)"),
        "{stdout}"
    );
    assert_local_matches(&sim, &dest, &["jobs"]).await;
    assert!(!dest.join("candidates").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_give_the_auth_exit_code_and_no_secret() {
    let sim = Sim::start(&["--scale", "0.05"]);
    let dir = tempfile::tempdir().unwrap();
    let mut env = sim_env(&sim.base_url);
    for (k, v) in env.iter_mut() {
        if k == "GREENHOUSE_CLIENT_SECRET" {
            *v = "not-the-secret-4711".into();
        }
    }
    for cmd in ["sync", "check"] {
        let out = extract(
            &[
                cmd,
                "--destination",
                dir.path().join("out").to_str().unwrap(),
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(4), "{cmd}: {}", text(&out));
        let all = text(&out);
        assert!(all.contains("GREENHOUSE_CLIENT_SECRET"), "no hint: {all}");
        assert!(!all.contains("not-the-secret-4711"), "secret leaked: {all}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn check_reports_missing_scopes_with_their_names() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--deny-scope",
        "offers",
        "--deny-scope",
        "scorecards",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = extract(
        &[
            "check",
            "--destination",
            dir.path().join("out").to_str().unwrap(),
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_string()
    };
    for (name, scope) in [
        ("offers", "harvest:offers:list"),
        ("scorecards", "harvest:scorecards:list"),
    ] {
        let l = line(name);
        assert!(l.contains("missing scope") && l.contains(scope), "{l}");
    }
    assert!(
        line("candidates").contains(" ok "),
        "{}",
        line("candidates")
    );
    let missing = stdout
        .lines()
        .filter(|l| l.contains("missing scope"))
        .count();
    assert_eq!(missing, 2, "{stdout}");
    assert!(stdout.contains("Destination: ok"), "{stdout}");
}
