//! `purge` erases deleted candidates: after Greenhouse (the simulator) deletes candidates and a
//! sync tombstones them and their children, `purge` rewrites the raw history so that the
//! deleted candidates' unique email is in no object under the destination (Parquet decoded, every
//! other object read as text), every other row is unchanged, the current state of every stream is
//! the same, the manifests list exactly the data files, and a purge killed at any point resumes
//! to the same end. A second purge with nothing new to erase reads no file.

mod harness;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use harness::*;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde_json::Value;
use support::Sim;

/// Every object under the destination: (key, decoded text). Parquet files are decoded into
/// their rows as JSON (their bytes are compressed), every other object is read as it is.
async fn objects(store: &Arc<dyn ObjectStore>) -> Vec<(String, String)> {
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for m in metas {
        let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        let key = m.location.to_string();
        let text = if key.ends_with(".parquet") {
            parquet_to_json(bytes)
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            String::from_utf8_lossy(&bytes).to_string()
        };
        out.push((key, text));
    }
    out
}

/// Every row of every stream, as sorted JSON text (a multiset).
async fn all_rows(store: &Arc<dyn ObjectStore>, names: &[String]) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for name in names {
        out.insert(
            name.clone(),
            read_stream(store, &ObjPath::from(""), name).await,
        );
    }
    out
}

fn sorted_text(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(Value::to_string).collect();
    v.sort();
    v
}

/// The data files the manifests list, and the data files there are.
async fn manifest_files(store: &Arc<dyn ObjectStore>) -> (BTreeSet<String>, BTreeSet<String>) {
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut listed = BTreeSet::new();
    let mut present = BTreeSet::new();
    for m in metas {
        let key = m.location.to_string();
        // Raw data files (the current tables under `current/` are Delta's, listed by its log).
        if key.ends_with(".parquet") && !key.starts_with("current/") {
            present.insert(key);
        } else if key.ends_with("/manifest.json") {
            let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
            let doc: Value = serde_json::from_slice(&bytes).unwrap();
            for s in doc["streams"].as_object().unwrap().values() {
                for f in s["files"].as_array().unwrap() {
                    listed.insert(f["key"].as_str().unwrap().to_string());
                }
            }
        }
    }
    (listed, present)
}

fn emails(candidate: &Value) -> Vec<String> {
    candidate["email_addresses"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["value"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_purged_candidate_is_in_no_object_and_nothing_else_changes() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--seed", "29"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let registry = registry();
    let names: Vec<String> = registry.streams().iter().map(|s| s.name.clone()).collect();

    let out = extract(
        &["sync", "--destination", dest_s, "--include-sensitive"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let before_delete = sim.truth("candidates").await;

    let report = sim_mutate(&sim, "deletes=3&resources=candidates&seed=4").await;
    let deleted: BTreeSet<i64> = report["deleted"]["candidates"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(deleted.len(), 3, "{report}");
    // The deleted candidates' emails, each unique to its candidate in the whole account.
    let marks: Vec<String> = before_delete
        .iter()
        .filter(|c| deleted.contains(&c["id"].as_i64().unwrap()))
        .flat_map(emails)
        .collect();
    assert!(
        !marks.is_empty(),
        "fixture: the deleted candidates have emails"
    );
    for m in &marks {
        let owners = before_delete
            .iter()
            .filter(|c| emails(c).contains(m))
            .count();
        assert_eq!(owners, 1, "fixture: {m} belongs to one candidate");
    }

    // The sync that learns the deletes (reconcile) tombstones them and their children.
    let out = extract(
        &[
            "sync",
            "--destination",
            dest_s,
            "--include-sensitive",
            "--reconcile",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = local_store(&dest);
    let holding = |objs: &[(String, String)]| -> Vec<String> {
        objs.iter()
            .filter(|(_, t)| marks.iter().any(|m| t.contains(m.as_str())))
            .map(|(k, _)| k.clone())
            .collect()
    };
    let before_objs = objects(&store).await;
    assert!(
        !holding(&before_objs).is_empty(),
        "fixture: the history holds the deleted candidates' emails before the purge"
    );
    let before = all_rows(&store, &names).await;
    let current_before: BTreeMap<String, BTreeMap<i64, Value>> = before
        .iter()
        .filter(|(_, rows)| rows.iter().all(|r| r["id"].is_i64()))
        .map(|(n, rows)| (n.clone(), current_rows(rows.clone())))
        .collect();

    // A purge killed at a few points along the way, then run to its end.
    for delay_ms in [15u64, 60, 150] {
        let mut child = std::process::Command::new(EXTRACT)
            .args(["purge", "--destination", dest_s])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        // A killed purge leaves its lease behind: remove it as an operator would.
        let _ = extract(
            &["state", "unlock", "--destination", dest_s, "--force"],
            &env,
        );
    }
    let out = extract(&["purge", "--destination", dest_s, "--json"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let purge: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));

    // No object holds the emails any more: data files, manifests, state, indexes, events.
    let after_objs = objects(&store).await;
    assert_eq!(holding(&after_objs), Vec::<String>::new(), "{purge}");
    assert!(!dest.join("_state/purge.json").exists(), "the plan is left");

    // What went is exactly the erased records' rows; every other row is unchanged.
    let after = all_rows(&store, &names).await;
    let erased_ids = |name: &str| -> BTreeSet<i64> {
        tombstones(&before[name])
            .into_keys()
            .filter(|id| name != "candidates" || deleted.contains(id))
            .collect()
    };
    let mut removed_total = 0;
    for name in &names {
        let b = &before[name];
        let a = &after[name];
        let kept: Vec<Value> = b
            .iter()
            .filter(|r| {
                let tomb = r["_deleted"].as_bool() == Some(true);
                let id = r["id"].as_i64();
                let erased = id.is_some_and(|id| erased_ids(name).contains(&id))
                    || r["candidate_id"]
                        .as_i64()
                        .is_some_and(|c| deleted.contains(&c));
                tomb || !erased || !registry.erasure_order().iter().any(|s| &s.name == name)
            })
            .cloned()
            .collect();
        // Rows of children whose own record was erased by cascade may not name the candidate.
        assert_eq!(
            sorted_text(a),
            sorted_text(&kept),
            "{name}: the purge removed other rows than the erased ones"
        );
        removed_total += b.len() - a.len();
        if let Some(cur) = current_before.get(name) {
            assert_eq!(
                &current_rows(a.clone()),
                cur,
                "{name}: the current state changed"
            );
        }
    }
    assert!(removed_total > 3, "only {removed_total} rows removed");
    assert_eq!(
        purge["streams"]
            .as_object()
            .unwrap()
            .values()
            .map(|s| s["rows_removed"].as_u64().unwrap())
            .sum::<u64>() as usize,
        removed_total,
        "{purge}"
    );

    // The manifests list exactly the data files (old ones gone, replacements listed).
    let (listed, present) = manifest_files(&store).await;
    assert_eq!(listed, present);

    // An independent reader sees the same.
    let sql = format!(
        "SELECT count(*) AS n FROM read_parquet('{}/candidates/**/*.parquet', union_by_name=true) \
         WHERE CAST(email_addresses AS VARCHAR) LIKE '%{}%'",
        dest_s, marks[0]
    );
    assert_eq!(duckdb_query(&sql)[0]["n"], 0);

    // Nothing new: the next purge reads no file and changes nothing.
    let objs = objects(&store).await;
    let out = extract(&["purge", "--destination", dest_s, "--json"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["files_scanned"], 0, "{again}");
    let objs_after: Vec<(String, String)> = objects(&store)
        .await
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_state/lease"))
        .collect();
    let objs: Vec<(String, String)> = objs
        .into_iter()
        .filter(|(k, _)| !k.starts_with("_state/lease"))
        .collect();
    assert_eq!(
        objs.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        objs_after.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );

    // `purge_after_sync`: a sync that learns a new delete erases it before it exits.
    let report = sim_mutate(&sim, "deletes=1&resources=candidates&seed=12").await;
    let gone = report["deleted"]["candidates"][0].as_i64().unwrap();
    let config = write_config(dir.path(), r#"{"purge_after_sync": true}"#);
    let out = extract(
        &[
            "sync",
            "--config",
            &config,
            "--destination",
            dest_s,
            "--include-sensitive",
            "--reconcile",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rows removed"),
        "{}",
        text(&out)
    );
    let rows = read_stream(&store, &ObjPath::from(""), "candidates").await;
    let left: Vec<&Value> = rows
        .iter()
        .filter(|r| r["id"].as_i64() == Some(gone) && r["_deleted"] != true)
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
