//! `sync` into a real S3-compatible server (s3s-fs on 127.0.0.1, which checks SigV4 signatures):
//! every stream read back equals the simulator's truth; a file larger than the multipart part
//! size goes through multipart upload and reads back intact; a wrong secret is a destination
//! error that changes nothing.

mod harness;
mod support;

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use chrono::Utc;
use harness::*;
use object_store::ObjectStoreExt;
use object_store::path::Path as ObjPath;
use support::Sim;

#[tokio::test(flavor = "multi_thread")]
async fn full_sync_into_s3_equals_the_truth() {
    let sim = Sim::start(&["--scale", "1", "--rate-limit", "0", "--seed", "5"]);
    let s3 = S3Server::start("lake");
    let mut env = sim_env(&sim.base_url);
    env.extend(s3.env());
    let out = extract(
        &[
            "sync",
            "--destination",
            "s3://lake/raw/greenhouse",
            "--include-sensitive",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let store = s3.store("lake");
    let prefix = ObjPath::from("raw/greenhouse");
    for stream in registry().streams() {
        let truth = expected_rows(&sim, stream).await;
        let rows = read_stream(&store, &prefix, &stream.name).await;
        assert_matches_truth(stream, &truth, &dedup_latest(rows), false);
    }
    // State lives beside the data: one committed bookmark per stream.
    let state = greenhouse_extract::state::StateStore::new(store.clone(), prefix.clone())
        .load()
        .await
        .unwrap();
    assert_eq!(state.streams.len(), registry().streams().len());
    assert!(state.generation >= state.streams.len() as u64);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_larger_than_the_part_size_uses_multipart_and_reads_back() {
    use greenhouse_extract::registry::Registry;
    use greenhouse_extract::sink::{RollingWriter, SinkConfig};
    greenhouse_extract::harvest::install_crypto_provider();
    let s3 = S3Server::start("big");
    let store = s3.store("big");
    let registry = Registry::from_sources([(
        "blobs.toml",
        r#"
name = "blobs"
resource = "blobs"
scope = "harvest:blobs:list"
group = "Test"
description = "Incompressible rows."
primary_key = ["id"]
replication = { mode = "full_refresh", reason = "test" }
deletes = { mode = "never" }
fields = [ { name = "id", type = "integer" }, { name = "body", type = "string" } ]
"#,
    )])
    .unwrap();
    let stream = &registry.streams()[0];
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, false),
        arrow_schema::Field::new("body", arrow_schema::DataType::Utf8, false),
    ]));
    let config = SinkConfig {
        upload_buffer_bytes: 5 * 1024 * 1024,
        ..SinkConfig::default()
    };
    let mut w = RollingWriter::new(
        store.clone(),
        &ObjPath::from("p"),
        stream,
        "run-multipart",
        Utc::now(),
        schema.clone(),
        config,
    )
    .unwrap();
    // ~25 MiB of pseudo-random hex (~13 MiB after zstd): well above the 5 MiB part size.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut total_rows = 0;
    for chunk in 0..8 {
        let ids: Vec<i64> = (0..1000).map(|i| chunk * 1000 + i).collect();
        let bodies: Vec<String> = (0..1000)
            .map(|_| {
                (0..200)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        format!("{x:016x}")
                    })
                    .collect()
            })
            .collect();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)) as ArrayRef,
                Arc::new(StringArray::from(bodies)) as ArrayRef,
            ],
        )
        .unwrap();
        total_rows += batch.num_rows();
        w.write(&batch).await.unwrap();
    }
    let files = w.close().await.unwrap();
    assert_eq!(files.len(), 1);
    assert!(
        files[0].bytes > 5 * 1024 * 1024,
        "file of {} bytes is below the part size",
        files[0].bytes
    );
    let bytes = store
        .get(&files[0].key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.len() as u64, files[0].bytes);
    let rows = parquet_to_json(bytes);
    assert_eq!(rows.len(), total_rows);
    assert_eq!(rows[7999]["id"], 7999);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_s3_secret_is_a_destination_error() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let s3 = S3Server::start("lake");
    let mut env = sim_env(&sim.base_url);
    env.extend(s3.env());
    for (k, v) in env.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "wrong-secret".into();
        }
    }
    let out = extract(
        &[
            "sync",
            "--destination",
            "s3://lake/raw",
            "--streams",
            "candidates",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        !text(&out).contains("wrong-secret"),
        "secret leaked: {}",
        text(&out)
    );
}
