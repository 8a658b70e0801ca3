//! `sync --state-file` takes a Singer STATE (`{"bookmarks": …}`, as the tap prints it) as well
//! as its own state document: the run is incremental from those bookmarks, and the file is
//! rewritten in the form it was read in.

mod harness;
mod support;

use chrono::{DateTime, Utc};
use harness::*;
use serde_json::{Value, json};
use support::Sim;

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_singer_state_file_is_read_and_rewritten_as_singer() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let truth = sim.truth("jobs").await;
    let mut times: Vec<DateTime<Utc>> = truth.iter().map(|r| time(&r["updated_at"])).collect();
    times.sort();
    let bookmark = times[times.len() / 2];
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        json!({"bookmarks": {"jobs": {"updated_at": bookmark.to_rfc3339()}}}).to_string(),
    )
    .unwrap();
    let dest = dir.path().join("out");
    let out = extract(
        &[
            "sync",
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "jobs",
            "--state-file",
            state.to_str().unwrap(),
        ],
        &sim_env(&sim.base_url),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Incremental from the bookmark (minus the default 1 h lookback), not a full read.
    let from = bookmark - chrono::Duration::hours(1);
    let want = times.iter().filter(|t| **t >= from).count();
    assert!(want < truth.len(), "the bookmark must cut the stream");
    let rows = duckdb_query(&format!(
        "SELECT count(*) AS n FROM read_parquet('{}/jobs/**/*.parquet')",
        dest.display()
    ));
    assert_eq!(rows[0]["n"].as_u64(), Some(want as u64), "{}", text(&out));

    // Rewritten as a Singer STATE, the bookmark moved on.
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(after.get("version").is_none(), "{after}");
    let obj = after.as_object().unwrap();
    assert_eq!(obj.keys().collect::<Vec<_>>(), ["bookmarks"], "{after}");
    assert!(
        time(&after["bookmarks"]["jobs"]["updated_at"]) > bookmark,
        "{after}"
    );
}
