//! `sync` into a local folder: a full sync of every stream equals the simulator's truth field by
//! field (read back with the parquet crate and, independently, with DuckDB); after mutations an
//! incremental sync fetches only the changed window and the de-duplicated output equals the truth
//! again.

mod harness;
mod support;

use harness::*;
use object_store::path::Path as ObjPath;
use support::Sim;

#[tokio::test(flavor = "multi_thread")]
async fn full_then_incremental_sync_equals_the_truth() {
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--seed", "11"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    // The run changes the simulator and syncs again at once: no signpost skew to wait out.
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let registry = registry();

    // 1. Full sync of every stream, sensitive ones included.
    let out = extract(
        &["sync", "--destination", dest_s, "--include-sensitive"],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = local_store(&dest);
    let mut compared = 0;
    for stream in registry.streams() {
        let truth = expected_rows(&sim, stream).await;
        let rows = read_stream(&store, &ObjPath::from(""), &stream.name).await;
        assert!(
            rows.len() >= truth.len(),
            "{}: {} rows written, truth has {}",
            stream.name,
            rows.len(),
            truth.len()
        );
        compared += assert_matches_truth(stream, &truth, &dedup_latest(rows), false);
    }
    assert!(compared > 10_000, "only {compared} rows compared");

    // The independent reader sees the same rows (hive partitioning, typed columns).
    let candidates = expected_rows(&sim, registry.get("candidates").unwrap()).await;
    let glob = format!("{}/candidates/**/*.parquet", dest.display());
    let rows = duckdb_query(&format!(
        "SELECT count(DISTINCT id) AS n, min(extracted_date) AS d, \
         typeof(any_value(updated_at)) AS t, typeof(any_value(id)) AS i \
         FROM read_parquet('{glob}', hive_partitioning = true)"
    ));
    assert_eq!(rows[0]["n"].as_u64(), Some(candidates.len() as u64));
    assert_eq!(rows[0]["t"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(rows[0]["i"], "BIGINT");
    let sample = &candidates[candidates.len() / 2];
    let id = sample["id"].as_i64().unwrap();
    let got = duckdb_query(&format!(
        "SELECT first_name, last_name, custom_fields FROM read_parquet('{glob}') WHERE id = {id}"
    ));
    assert_eq!(got[0]["first_name"], sample["first_name"]);
    assert_eq!(got[0]["last_name"], sample["last_name"]);
    if !sample["custom_fields"].is_null() {
        let cf: serde_json::Value =
            serde_json::from_str(got[0]["custom_fields"].as_str().unwrap()).unwrap();
        assert_eq!(cf, sample["custom_fields"]);
    }

    // 2. Greenhouse changes; the next run reads only the changed window.
    let before = requests_by_resource(&sim).await;
    sim_mutate(&sim, "updates=20&inserts=5&deletes=2&seed=3").await;
    let out = extract(
        &[
            "sync",
            "--destination",
            dest_s,
            "--include-sensitive",
            "--summary",
            "json",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = requests_by_resource(&sim).await;
    // The id listings that find the deletes are counted apart (tests/deletes.rs bounds them).
    let run = by_stream(&summary(&out));
    let listing = |resource: &str| -> u64 {
        registry
            .streams()
            .iter()
            .filter(|s| s.resource == resource)
            .filter_map(|s| run.get(&s.name))
            .map(|r| r["deletes"]["reconcile_requests"].as_u64().unwrap_or(0))
            .sum()
    };
    for stream in registry.streams() {
        let truth = expected_rows(&sim, stream).await;
        let rows = read_stream(&store, &ObjPath::from(""), &stream.name).await;
        assert_matches_truth(stream, &truth, &dedup_latest(rows), true);
    }
    // ~25 changed rows per resource fit in one page per partition (plus the lookback overlap,
    // which at these sizes stays within the same page): a full re-read would need many more.
    for (resource, n_after) in &after {
        let n = n_after - before.get(resource).copied().unwrap_or(0) - listing(resource);
        let partitions: usize = registry
            .streams()
            .iter()
            .filter(|s| &s.resource == resource)
            .map(|s| s.partition_params().len())
            .sum();
        assert!(
            n <= partitions as u64 * 2,
            "{resource}: {n} requests on the incremental run for {partitions} partition(s)"
        );
    }
}

/// `zstd_level` is what the raw files are compressed with: the same account synced at level 19
/// takes fewer bytes than at level 1, and both read back to the same rows (DuckDB).
#[tokio::test(flavor = "multi_thread")]
async fn zstd_level_sets_the_raw_files_compression() {
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--seed", "5"]);
    let env = sim_env(&sim.base_url);
    let dir = tempfile::tempdir().unwrap();
    let mut sizes = Vec::new();
    for level in [1, 19] {
        let cfg = write_config(
            dir.path(),
            &format!(r#"{{"zstd_level": {level}, "tables": "raw"}}"#),
        );
        let dest = dir.path().join(format!("level-{level}"));
        let out = extract(
            &[
                "sync",
                "--destination",
                dest.to_str().unwrap(),
                "--streams",
                "candidates",
                "--config",
                &cfg,
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let glob = format!("{}/candidates/**/*.parquet", dest.display());
        let rows = duckdb_query(&format!(
            "SELECT count(*) AS n, sum(length(custom_fields)) AS c FROM read_parquet('{glob}')"
        ));
        let meta = duckdb_query(&format!(
            "SELECT sum(total_compressed_size)::BIGINT AS b, min(compression) AS z \
             FROM parquet_metadata('{glob}')"
        ));
        assert_eq!(meta[0]["z"], "ZSTD");
        sizes.push((rows[0].clone(), meta[0]["b"].as_u64().unwrap()));
    }
    assert_eq!(sizes[0].0, sizes[1].0, "the same rows at both levels");
    assert!(
        sizes[1].1 < sizes[0].1,
        "level 19 wrote {} bytes, level 1 {}",
        sizes[1].1,
        sizes[0].1
    );
}
