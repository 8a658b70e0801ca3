//! Bad data never blocks a stream and is never dropped or mangled silently. Each test injects
//! one kind of bad record or response into the simulator's pages (`--bad-record`), syncs over a
//! real socket into a local folder, and reads the output back (DuckDB where the value matters).

mod harness;
mod support;

use std::path::Path;
use std::sync::Arc;

use harness::*;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use serde_json::Value;
use support::Sim;

/// 100 candidates and 24 jobs, read 20 per page: every page's first record is the bad one.
fn sim(bad: &[&str]) -> Sim {
    let mut args = vec!["--scale", "0.05", "--rate-limit", "0"];
    for b in bad {
        args.extend(["--bad-record", b]);
    }
    Sim::start(&args)
}

fn sync(sim: &Sim, dir: &Path, streams: &[&str]) -> std::process::Output {
    let config = write_config(dir, r#"{"per_page": 20}"#);
    sync_streams(
        &dir.join("out"),
        streams,
        Some(&config),
        &sim_env(&sim.base_url),
    )
}

fn glob(dir: &Path, stream: &str) -> String {
    format!("{}/out/{stream}/**/*.parquet", dir.display())
}

/// The `_errors/` documents of `stream`, parsed.
fn error_docs(dir: &Path, stream: &str) -> Vec<(String, Value)> {
    let folder = dir.join("out").join("_errors").join(stream);
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Vec::new();
    };
    let mut docs: Vec<(String, Value)> = entries
        .map(|e| {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap();
            (text.clone(), serde_json::from_str(&text).unwrap())
        })
        .collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

/// The run's manifest (the one run under `out/_runs/`).
fn manifest(dir: &Path) -> Value {
    let runs: Vec<_> = std::fs::read_dir(dir.join("out/_runs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("manifest.json"))
        .filter(|p| p.exists())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    serde_json::from_str(&std::fs::read_to_string(&runs[0]).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lone_surrogate_is_decoded_leniently_and_kept() {
    let sim = sim(&["candidates:surrogate:first_name"]);
    let dir = tempfile::tempdir().unwrap();
    let out = sync(&sim, dir.path(), &["candidates"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let truth = sim.truth("candidates").await;
    let rows = duckdb_query(&format!(
        "SELECT id, first_name, _extra FROM read_parquet('{}') ORDER BY id DESC",
        glob(dir.path(), "candidates")
    ));
    // Every row is written, the pages' valid rows included.
    assert_eq!(rows.len(), truth.len());
    let repaired: Vec<&Value> = rows
        .iter()
        .filter(|r| {
            r["first_name"]
                .as_str()
                .is_some_and(|n| n.starts_with('\u{FFFD}'))
        })
        .collect();
    // The first record of each page, when it has a name (truth is id-descending, like pages).
    let firsts = truth
        .iter()
        .step_by(20)
        .filter(|t| t["first_name"].is_string())
        .count();
    assert!(firsts > 0);
    assert_eq!(repaired.len(), firsts, "{rows:?}");
    for r in repaired {
        let want = truth.iter().find(|t| t["id"] == r["id"]).unwrap();
        let name = want["first_name"].as_str().unwrap();
        assert_eq!(r["first_name"].as_str().unwrap(), format!("\u{FFFD}{name}"));
        // The text as sent is in `_extra`: the escape, then the name as the simulator escapes it.
        let extra: Value = serde_json::from_str(r["_extra"].as_str().unwrap()).unwrap();
        let sent = extra["first_name"].as_str().unwrap();
        assert!(sent.starts_with(r"\ud83d"), "{sent}");
        let decoded: String = serde_json::from_str(&format!("\"{}\"", &sent[6..])).unwrap();
        assert_eq!(decoded, name);
    }
    assert!(text(&out).contains("Kept in _extra"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn records_without_a_usable_key_are_quarantined_not_written_with_a_null_key() {
    let sim = sim(&["candidates:no_id", "jobs:text_id"]);
    let dir = tempfile::tempdir().unwrap();
    let out = sync(&sim, dir.path(), &["candidates", "jobs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = text(&out);
    for stream in ["candidates", "jobs"] {
        let truth = sim.truth(stream).await;
        let pages = truth.len().div_ceil(20);
        let rows = duckdb_query(&format!(
            "SELECT count(*) AS n, count(id) AS ids FROM read_parquet('{}')",
            glob(dir.path(), stream)
        ));
        assert_eq!(
            rows[0]["n"], rows[0]["ids"],
            "{stream}: a row with a NULL key"
        );
        assert_eq!(
            rows[0]["n"].as_u64(),
            Some((truth.len() - pages) as u64),
            "{stream}"
        );
        let docs = error_docs(dir.path(), stream);
        let records: Vec<&Value> = docs
            .iter()
            .flat_map(|(_, d)| d["records"].as_array().unwrap())
            .collect();
        assert_eq!(records.len(), pages, "{stream}: {docs:?}");
        for (_, d) in &docs {
            assert_eq!(d["reason"], "records without a usable primary key");
        }
        // The manifest says how many were quarantined and where they are, for a loader.
        let m = &manifest(dir.path())["streams"][stream];
        assert_eq!(m["quarantined"].as_u64(), Some(pages as u64), "{m}");
        let mut keys: Vec<String> = m["error_objects"]
            .as_array()
            .unwrap_or_else(|| panic!("{m}"))
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect();
        keys.sort();
        let mut want: Vec<String> = std::fs::read_dir(dir.path().join("out/_errors").join(stream))
            .unwrap()
            .map(|e| {
                format!(
                    "_errors/{stream}/{}",
                    e.unwrap().file_name().to_string_lossy()
                )
            })
            .collect();
        want.sort();
        assert_eq!(keys, want);
        // Each quarantined record is the one the API sent, whole.
        for r in records {
            let want = truth
                .iter()
                .find(|t| t["created_at"] == r["created_at"] && t["updated_at"] == r["updated_at"])
                .unwrap();
            let mut want = want.clone();
            match stream {
                "candidates" => {
                    want.as_object_mut().unwrap().remove("id");
                }
                _ => want["id"] = Value::from("abc"),
            }
            assert_eq!(r, &want);
        }
        assert!(
            stdout.contains(&format!(
                "{stream}: {pages} records without a usable primary key were not written; saved in _errors/{stream}/"
            )),
            "{}",
            text(&out)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_page_is_saved_scrubbed_and_named_in_the_error() {
    let sim = sim(&["jobs:garbage"]);
    let dir = tempfile::tempdir().unwrap();
    let out = sync(&sim, dir.path(), &["jobs", "offices"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let docs = error_docs(dir.path(), "jobs");
    assert_eq!(docs.len(), 1, "{}", text(&out));
    let (raw, doc) = &docs[0];
    assert_eq!(doc["reason"], "unreadable page");
    assert!(
        doc["body"]
            .as_str()
            .unwrap()
            .starts_with("[{oops *** \"id\":"),
        "{raw}"
    );
    assert!(
        !raw.contains("sim-secret"),
        "the client secret was saved: {raw}"
    );
    let key = format!("_errors/jobs/{}", {
        let name = std::fs::read_dir(dir.path().join("out/_errors/jobs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name();
        name.to_string_lossy().into_owned()
    });
    let all = text(&out);
    assert!(
        all.contains(&format!("the page was saved as {key}")),
        "{all}"
    );
    // The other stream is not held up.
    let offices = duckdb_query(&format!(
        "SELECT count(*) AS n FROM read_parquet('{}')",
        glob(dir.path(), "offices")
    ));
    assert_eq!(
        offices[0]["n"].as_u64(),
        Some(sim.truth("offices").await.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sub_microsecond_digits_and_offsetless_timestamps_are_kept() {
    let sim = sim(&[
        "candidates:nanos:created_at",
        "candidates:no_offset:last_activity_at",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out = sync(&sim, dir.path(), &["candidates"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let truth = sim.truth("candidates").await;
    let rows = duckdb_query(&format!(
        "SELECT id, epoch_us(created_at) AS c, epoch_us(last_activity_at) AS l, _extra \
         FROM read_parquet('{}') WHERE _extra IS NOT NULL",
        glob(dir.path(), "candidates")
    ));
    assert_eq!(rows.len(), truth.len().div_ceil(20), "{rows:?}");
    let micros = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp_micros()
    };
    for r in &rows {
        let want = truth.iter().find(|t| t["id"] == r["id"]).unwrap();
        let extra: Value = serde_json::from_str(r["_extra"].as_str().unwrap()).unwrap();
        // The cell: microseconds (the column's precision), the offset-less one read as UTC.
        assert_eq!(r["c"].as_i64().unwrap(), micros(&want["created_at"]) + 456);
        // The text as sent, in `_extra`.
        let created = want["created_at"].as_str().unwrap().replace('Z', "456789Z");
        let mut want_extra = serde_json::json!({ "created_at": created });
        if !want["last_activity_at"].is_null() {
            assert_eq!(r["l"].as_i64().unwrap(), micros(&want["last_activity_at"]));
            let active = want["last_activity_at"].as_str().unwrap().replace('Z', "");
            want_extra["last_activity_at"] = Value::from(active);
        }
        assert_eq!(extra, want_extra);
    }
    let store: Arc<dyn ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(dir.path().join("out")).unwrap());
    assert_eq!(
        read_stream(&store, &ObjPath::from(""), "candidates")
            .await
            .len(),
        truth.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_to_another_origin_is_refused_like_a_cross_origin_link() {
    let sim = sim(&["jobs:redirect"]);
    let dir = tempfile::tempdir().unwrap();
    let out = sync(&sim, dir.path(), &["jobs", "offices"]);
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("was redirected to another origin; refusing to follow it"),
        "{all}"
    );
    assert!(all.contains("http://localhost:"), "{all}");
    // Nothing from the other origin was written, and the other stream is not held up.
    assert!(!dir.path().join("out/jobs").exists(), "{all}");
    let offices = duckdb_query(&format!(
        "SELECT count(*) AS n FROM read_parquet('{}')",
        glob(dir.path(), "offices")
    ));
    assert_eq!(
        offices[0]["n"].as_u64(),
        Some(sim.truth("offices").await.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_is_not_inflated_beyond_max_page_bytes() {
    // 24 MiB of whitespace inside each page, about 24 KiB on the wire.
    let sim = sim(&["jobs:gzip_bomb:24"]);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), r#"{"per_page": 20, "max_page_bytes": 2097152}"#);
    let out = sync_streams(
        &dir.path().join("out"),
        &["jobs", "offices"],
        Some(&config),
        &sim_env(&sim.base_url),
    );
    let all = text(&out);
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains(
            "answered a body larger than max_page_bytes (2097152 bytes after decompression)"
        ),
        "{all}"
    );
    // Failed at once: the same page would be as large on a retry.
    assert_eq!(
        requests_by_resource(&sim).await.get("jobs"),
        Some(&1),
        "{all}"
    );
    let offices = duckdb_query(&format!(
        "SELECT count(*) AS n FROM read_parquet('{}')",
        glob(dir.path(), "offices")
    ));
    assert_eq!(
        offices[0]["n"].as_u64(),
        Some(sim.truth("offices").await.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn numeric_text_follows_the_one_rule() {
    // `"id": "00<id>"`: numeric text that is not canonical is stored and also kept.
    let sim = sim(&["jobs:number_text:id"]);
    let dir = tempfile::tempdir().unwrap();
    let out = sync(&sim, dir.path(), &["jobs"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let truth = sim.truth("jobs").await;
    let rows = duckdb_query(&format!(
        "SELECT id, _extra FROM read_parquet('{}') WHERE _extra IS NOT NULL ORDER BY id DESC",
        glob(dir.path(), "jobs")
    ));
    let firsts: Vec<i64> = truth
        .iter()
        .step_by(20)
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    let got: Vec<i64> = rows.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(got, firsts);
    for r in &rows {
        let extra: Value = serde_json::from_str(r["_extra"].as_str().unwrap()).unwrap();
        assert_eq!(extra, serde_json::json!({"id": format!("00{}", r["id"])}));
    }
    let all = duckdb_query(&format!(
        "SELECT count(id) AS n FROM read_parquet('{}')",
        glob(dir.path(), "jobs")
    ));
    assert_eq!(all[0]["n"].as_u64(), Some(truth.len() as u64));
}
