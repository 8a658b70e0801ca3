//! Deletes reach the destination: after a full sync, Greenhouse (the simulator) hard-deletes,
//! merges and cascades; the next sync's reconciliation and the declared cascades turn every
//! vanished record into a tombstone, so that the current state of every stream (latest row per
//! id, tombstones dropped) equals the simulator's truth field by field, with no deleted id left
//! live. The id listings cost exactly ⌈ids ÷ 500⌉ requests per partition, a reconcile that
//! finds nothing writes nothing, and a reconcile killed at any point leaves no false tombstone
//! and is redone. The README's de-duplicating DuckDB query gives the same current state.

mod harness;
mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use harness::*;
use object_store::ObjectStore;
use object_store::path::Path as ObjPath;
use support::Sim;

/// How many live rows the simulator lists for `resource` with `params`.
async fn count(sim: &Sim, resource: &str, params: &BTreeMap<String, String>) -> u64 {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            )
        })
        .collect();
    let r = sim
        .get(None, &format!("/_sim/count/{resource}?{}", query.join("&")))
        .await;
    r.json()["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("count {resource}: {}", r.body))
}

#[tokio::test(flavor = "multi_thread")]
async fn reconcile_and_cascades_leave_no_deleted_record_live() {
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--seed", "17"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let registry = registry();

    let out = extract(
        &["sync", "--destination", dest_s, "--include-sensitive"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = local_store(&dest);

    // Hard deletes in every resource that has them, candidate merges, and the usual churn.
    let report = sim_mutate(&sim, "updates=5&inserts=3&deletes=3&merges=3&seed=9").await;
    assert!(
        report["deleted"].as_object().is_some_and(|d| d.len() > 10),
        "{report}"
    );

    let out = extract(
        &[
            "sync",
            "--destination",
            dest_s,
            "--include-sensitive",
            "--reconcile",
            "--summary",
            "json",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = by_stream(&summary(&out));

    let mut compared = 0;
    let mut deleted_seen = 0;
    for stream in registry.streams() {
        let truth = expected_rows(&sim, stream).await;
        let rows = read_stream(&store, &ObjPath::from(""), &stream.name).await;
        let tomb = tombstones(&rows);
        deleted_seen += tomb.len();
        // No deleted id is live, and nothing live is missing.
        compared += assert_matches_truth(stream, &truth, &current_rows(rows), false);
        for t in tomb.values() {
            assert!(
                ["reconcile", "cascade"].contains(&t["_deleted_by"].as_str().unwrap_or("")),
                "{}: {t}",
                stream.name
            );
            assert!(t["_deleted_at"].is_string(), "{}: {t}", stream.name);
        }
    }
    assert!(compared > 10_000, "only {compared} rows compared");
    assert!(deleted_seen > 50, "only {deleted_seen} tombstones");

    // The de-duplicating views `ddl --dialect duckdb` prints (the README's way to read the raw
    // history) give the same current state.
    let out = extract(
        &[
            "ddl",
            "--dialect",
            "duckdb",
            "--destination",
            dest_s,
            "--streams",
            "applications,candidates,scorecards",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ddl = String::from_utf8(out.stdout).unwrap();
    for name in ["applications", "candidates", "scorecards"] {
        let rows = read_stream(&store, &ObjPath::from(""), name).await;
        let expected: Vec<i64> = current_rows(rows).into_keys().collect();
        let result = duckdb_delta_query(&[
            ddl.clone(),
            format!("SELECT id FROM greenhouse.{name}_raw_latest"),
        ]);
        let mut got: Vec<i64> = result[1]
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, expected, "{name}: the view `ddl` prints");
    }

    // Every listing cost ⌈live ids ÷ 500⌉ requests per partition (an empty one costs its one).
    let mut listed = 0;
    for stream in registry.streams() {
        let d = &run[&stream.name]["deletes"];
        if !stream.is_incremental() || !d["reconciled"].as_bool().unwrap_or(false) {
            continue;
        }
        let mut expected = 0;
        for params in stream.partition_params() {
            expected += count(&sim, &stream.resource, &params)
                .await
                .div_ceil(500)
                .max(1);
        }
        assert_eq!(
            d["reconcile_requests"].as_u64(),
            Some(expected),
            "{}: {d}",
            stream.name
        );
        listed += 1;
    }
    assert!(listed > 20, "only {listed} streams reconciled by listing");
    // Children followed their parents through the declared cascades, at no request cost.
    let cascaded: u64 = run
        .values()
        .map(|s| s["deletes"]["by_cascade"].as_u64().unwrap_or(0))
        .sum();
    assert!(cascaded > 0, "no cascade tombstones: {run:?}");
    for stream in registry.streams().iter().filter(|s| !s.deletes.reconcile) {
        assert_eq!(
            run[&stream.name]["deletes"]["reconcile_requests"].as_u64(),
            Some(0),
            "{} declares no listing",
            stream.name
        );
    }

    // Nothing changed: the next reconcile writes no tombstone (and no file for one).
    let files_before = read_files(&store).await;
    let out = extract(
        &[
            "sync",
            "--destination",
            dest_s,
            "--include-sensitive",
            "--reconcile",
            "--summary",
            "json",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let quiet = summary(&out);
    assert_eq!(quiet["totals"]["tombstones"].as_u64(), Some(0), "{quiet}");
    assert!(quiet["totals"]["reconcile_requests"].as_u64().unwrap() > 0);
    let new_files: Vec<String> = read_files(&store)
        .await
        .into_iter()
        .filter(|f| !files_before.contains(f) && f.contains("deletes"))
        .collect();
    assert!(new_files.is_empty(), "{new_files:?}");
}

async fn read_files(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    use futures::TryStreamExt;
    store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap()
}

/// A reconcile killed at any point leaves no false tombstone and is redone by the next run:
/// every tombstone names a record Greenhouse deleted, and the current state equals the truth.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_reconcile_leaves_no_false_tombstone_and_is_redone() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--seed", "31"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let registry = registry();
    let out = extract(&["sync", "--destination", dest_s], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    sim_mutate(&sim, "updates=3&deletes=3&merges=2&seed=8").await;

    for delay_ms in [40u64, 120, 250, 400, 700] {
        let mut cmd = std::process::Command::new(EXTRACT);
        cmd.args(["sync", "--destination", dest_s, "--reconcile"]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // Every tombstone written so far names a record that is really gone.
        let store = local_store(&dest);
        for stream in registry.streams() {
            let rows = read_stream(&store, &ObjPath::from(""), &stream.name).await;
            let truth: std::collections::BTreeSet<i64> = expected_rows(&sim, stream)
                .await
                .iter()
                .filter_map(|t| t["id"].as_i64())
                .collect();
            for id in tombstones(&rows).keys() {
                assert!(
                    !truth.contains(id),
                    "{}: live id {id} tombstoned after a kill at {delay_ms} ms",
                    stream.name
                );
            }
        }
        let _ = extract(
            &["state", "unlock", "--destination", dest_s, "--force"],
            &env,
        );
    }
    let out = extract(&["sync", "--destination", dest_s, "--reconcile"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = local_store(&dest);
    for stream in registry.streams().iter().filter(|s| !s.sensitive) {
        let truth = expected_rows(&sim, stream).await;
        let rows = read_stream(&store, &ObjPath::from(""), &stream.name).await;
        assert_matches_truth(stream, &truth, &current_rows(rows), false);
    }
}
