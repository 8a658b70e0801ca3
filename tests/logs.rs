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
    // The summary stays on stdout, not mixed into the log stream.
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
