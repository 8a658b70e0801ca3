//! `state show|reset|unlock` end to end: a reset stream (and only it) is read again from scratch
//! by the next sync, the reset is a recorded state generation taken under the lease, and a lease
//! is removed only when its holder is gone.

mod harness;
mod support;

use harness::*;
use serde_json::{Value, json};
use support::Sim;

fn state_doc(dest: &std::path::Path) -> Value {
    let out = extract(
        &[
            "state",
            "show",
            "--json",
            "--destination",
            dest.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn delta(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    resource: &str,
) -> u64 {
    after.get(resource).copied().unwrap_or(0) - before.get(resource).copied().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_stream_and_only_it_is_read_again_from_scratch() {
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--seed", "5"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let d = dest.to_str().unwrap();
    // Small pages, so a full read of jobs takes many requests and an incremental one very few.
    let config = write_config(dir.path(), r#"{"per_page": 10, "backfill_slices": 1}"#);
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();

    let out = sync_streams(&dest, &["jobs", "departments"], Some(&config), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first = requests_by_resource(&sim).await;
    assert!(first["jobs"] > 3, "jobs took {} requests", first["jobs"]);
    let before = state_doc(&dest);
    let jobs_rows = before["state"]["streams"]["jobs"]["rows"].as_u64().unwrap();
    assert!(before["state"]["streams"]["departments"]["bookmark"].is_string());

    // Unknown names are refused before anything changes.
    let out = extract(
        &["state", "reset", "--destination", d, "--streams", "jbos"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(state_doc(&dest)["state"], before["state"]);

    let out = extract(
        &["state", "reset", "--destination", d, "--streams", "jobs"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Reset jobs"), "{stdout}");
    let after_reset = state_doc(&dest);
    let gen_before = before["state"]["generation"].as_u64().unwrap();
    assert_eq!(after_reset["state"]["generation"], json!(gen_before + 1));
    assert!(after_reset["state"]["streams"].get("jobs").is_none());
    assert_eq!(
        after_reset["state"]["streams"]["departments"],
        before["state"]["streams"]["departments"]
    );
    // Recorded: the generation names the reset's run, whose manifest says what it did.
    let run = after_reset["state"]["last_run_id"].as_str().unwrap();
    assert_eq!(after_reset["last_run"]["run_id"], json!(run));
    assert_eq!(
        after_reset["last_run"]["streams"]["jobs"]["status"],
        json!("reset")
    );
    assert!(
        after_reset["lease"].is_null(),
        "the reset released its lease"
    );
    let shown = extract(
        &[
            "state",
            "show",
            "--destination",
            d,
            "--streams",
            "jobs,departments",
        ],
        &[],
    );
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("reads from scratch"), "{shown}");

    // The next sync re-reads jobs in full and departments incrementally.
    let out = sync_streams(&dest, &["jobs", "departments"], Some(&config), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let second = requests_by_resource(&sim).await;
    assert_eq!(
        delta(&first, &second, "jobs"),
        first["jobs"],
        "jobs is read from scratch: {first:?} → {second:?}"
    );
    assert!(
        delta(&first, &second, "departments") <= 2,
        "departments stays incremental: {first:?} → {second:?}"
    );
    let again = state_doc(&dest);
    assert_eq!(
        again["state"]["streams"]["jobs"]["rows"].as_u64().unwrap(),
        jobs_rows
    );
    assert_matches_local(&sim, &dest).await;
}

async fn assert_matches_local(sim: &Sim, dest: &std::path::Path) {
    assert_local_matches(sim, dest, &["jobs", "departments"]).await;
}

fn write_lease(dest: &std::path::Path, host: &str, pid: u32, live: bool) -> String {
    let now = chrono::Utc::now();
    let expires = if live {
        now + chrono::TimeDelta::minutes(10)
    } else {
        now - chrono::TimeDelta::minutes(1)
    };
    let rec = json!({
        "run_id": "0190-holder", "host": host, "pid": pid,
        "started_at": now, "heartbeat_at": now, "expires_at": expires,
    });
    std::fs::create_dir_all(dest.join("_state")).unwrap();
    let body = serde_json::to_string_pretty(&rec).unwrap();
    std::fs::write(dest.join("_state/lease.json"), &body).unwrap();
    body
}

#[test]
fn unlock_removes_only_a_lease_whose_holder_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let d = dest.to_str().unwrap();
    let lease = dest.join("_state/lease.json");
    let env = [("HOSTNAME".to_string(), "this-host".to_string())];
    let unlock = |force: bool| {
        let mut args = vec!["state", "unlock", "--destination", d];
        if force {
            args.push("--force");
        }
        extract(&args, &env)
    };

    // Held by a live process on this host (this test): refused, even with --force, naming it.
    let body = write_lease(&dest, "this-host", std::process::id(), true);
    for force in [false, true] {
        let out = unlock(force);
        assert_eq!(out.status.code(), Some(6), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("0190-holder"), "{err}");
        assert_eq!(std::fs::read_to_string(&lease).unwrap(), body);
    }
    // A reset is refused while the lease is held, and changes nothing.
    let out = extract(
        &["state", "reset", "--destination", d, "--streams", "jobs"],
        &env,
    );
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&lease).unwrap(), body);

    // Live, but from another host: only with --force.
    write_lease(&dest, "other-host", 4242, true);
    let out = unlock(false);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert!(lease.exists());
    let out = unlock(true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!lease.exists());

    // Held by a process of this host that has exited: removed without --force.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    write_lease(&dest, "this-host", dead, true);
    let out = unlock(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!lease.exists());

    // Expired: removed.
    write_lease(&dest, "other-host", 4242, false);
    let out = unlock(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!lease.exists());
    let out = unlock(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("No lease"));
}
