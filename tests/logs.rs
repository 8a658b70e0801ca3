//! `--log-format json` writes one JSON object per line on stderr (timestamp, level, a stable
//! `event` name, `stream` where it applies, and the event's fields), for Airflow and log
//! shippers; stdout keeps the run summary.

mod harness;
mod support;

use harness::*;
use support::Sim;

#[tokio::test(flavor = "multi_thread")]
async fn json_logs_are_one_object_per_line_with_named_events() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--deny-scope",
        "offers",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = extract(
        &[
            "sync",
            "--log-format",
            "json",
            "--destination",
            dir.path().to_str().unwrap(),
            "--streams",
            "jobs,offers",
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let mut events = Vec::new();
    for line in stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object per line ({e}): {line}"));
        for key in ["timestamp", "level", "event", "message"] {
            assert!(v.get(key).is_some(), "{key} missing: {line}");
        }
        events.push((
            v["event"].as_str().unwrap().to_string(),
            v["stream"].as_str().map(str::to_string),
        ));
    }
    let has = |e: &str, s: &str| {
        events
            .iter()
            .any(|(ev, st)| ev == e && st.as_deref() == Some(s))
    };
    assert!(
        events.iter().any(|(e, _)| e == "sync_started"),
        "{events:?}"
    );
    assert!(has("stream_started", "jobs"), "{events:?}");
    assert!(has("bookmark_advanced", "jobs"), "{events:?}");
    assert!(has("stream_skipped", "offers"), "{events:?}");
    // Issue "fits the tools our users run" (4): every output line is JSON, the last one is
    // `run_finished` holding the whole summary, and stdout carries no table.
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run_finished", "{last}");
    assert_eq!(last["exit_code"], 3, "{last}");
    let summary = &last["summary"];
    assert!(summary.is_object(), "nested, not a string: {last}");
    assert_eq!(summary["exit_code"], 3);
    assert_eq!(summary["streams_total"], 2);
    assert_eq!(summary["streams_committed"], 1);
    assert!(summary["manifest"].is_string(), "{summary}");
    let stream = |name: &str| {
        summary["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stream"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {summary}"))
            .clone()
    };
    let jobs = stream("jobs");
    assert_eq!(jobs["status"], "committed");
    assert!(jobs["rows"].as_u64().unwrap() > 0, "{jobs}");
    assert!(jobs["files"].as_u64().unwrap() > 0, "{jobs}");
    assert!(jobs["bytes"].as_u64().unwrap() > 0, "{jobs}");
    assert!(jobs["requests"].as_u64().unwrap() > 0, "{jobs}");
    for key in ["retries", "rate_limited", "duration_ms", "window"] {
        assert!(jobs.get(key).is_some(), "{key} missing: {jobs}");
    }
    assert!(jobs["window"]["to"].is_string(), "{jobs}");
    // A first (complete) read is the stream's reconcile: nothing to tombstone yet.
    assert_eq!(jobs["deletes"]["tombstones"], 0, "{jobs}");
    assert_eq!(jobs["deletes"]["reconcile_requests"], 0, "{jobs}");
    let offers = stream("offers");
    assert_eq!(offers["status"], "skipped");
    assert!(offers["error"].is_string(), "{offers}");
    assert_eq!(summary["totals"]["rows"], jobs["rows"]);

    // `--summary json`: the same object, as the one line on stdout, for scripts.
    let out = extract(
        &[
            "sync",
            "--log-format",
            "json",
            "--summary",
            "json",
            "--destination",
            dir.path().to_str().unwrap(),
            "--streams",
            "jobs",
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let printed: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "run_finished");
    assert_eq!(printed, last["summary"]);
    assert_eq!(printed["exit_code"], 0);
}

/// Text logs are logfmt: a value with spaces (a skip reason) is quoted, so log parsers split the
/// line into the right fields.
#[tokio::test(flavor = "multi_thread")]
async fn text_logs_quote_values_with_spaces() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--deny-scope",
        "offers",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = extract(
        &[
            "sync",
            "--destination",
            dir.path().to_str().unwrap(),
            "--streams",
            "offers",
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.contains("event=stream_skipped"))
        .unwrap_or_else(|| panic!("no stream_skipped line: {stderr}"));
    let reason = line
        .split_once(" reason=")
        .unwrap_or_else(|| panic!("no reason: {line}"))
        .1;
    assert!(reason.starts_with('"') && reason.contains(' '), "{line}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .contains("event=run_finished"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("streams committed"));
}

/// Progress bars are for terminals only: with stderr piped (cron, Airflow, CI) a text-format run
/// writes plain log lines — no escape codes, no carriage returns, no progress lines.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_without_a_terminal_draws_no_progress() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let out = extract(
        &[
            "sync",
            "--destination",
            dir.path().to_str().unwrap(),
            "--streams",
            "jobs,users",
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(stderr.contains("Stream started"), "expected logs: {stderr}");
    for (what, needle) in [
        ("an escape code", "\x1b"),
        ("a carriage return", "\r"),
        ("a progress line", " running, "),
    ] {
        assert!(
            !stderr.contains(needle),
            "found {what} in stderr: {stderr:?}"
        );
    }
    for line in stderr.lines() {
        assert!(
            line.contains("INFO") || line.contains("WARN") || line.contains("DEBUG"),
            "not a log line: {line:?}"
        );
    }
}
