//! Data files are created, never overwritten, even between two writers: two writers of one key
//! (same run id, stream and sequence) both get past the `head` at open; the second to finish
//! fails with AlreadyExists and the first one's file stays byte-identical. For a one-put file
//! and a multipart file, on LocalFileSystem, InMemory and a real S3 server (s3s-fs), with and
//! without `AWS_COPY_IF_NOT_EXISTS=multipart` (see src/sink/upload.rs for what each one
//! guarantees).

mod harness;
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chrono::{TimeZone, Utc};
use futures::TryStreamExt;
use greenhouse_extract::registry::Registry;
use greenhouse_extract::sink::{RollingWriter, SinkConfig, SinkError, WrittenFile};
use harness::*;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

const PART: usize = 5 << 20;

fn registry() -> Registry {
    Registry::from_sources([(
        "blobs.toml",
        r#"
name = "blobs"
resource = "blobs"
scope = "harvest:blobs:list"
group = "Test"
description = "Rows of random text."
primary_key = ["id"]
replication = { mode = "full_refresh", reason = "test" }
deletes = { mode = "never" }
fields = [ { name = "id", type = "integer" }, { name = "body", type = "string" } ]
"#,
    )])
    .unwrap()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("body", DataType::Utf8, false),
    ]))
}

/// `rows` rows from id `from`, each with `hex` pseudo-random hex characters (~half of that after
/// zstd), seeded by `from` so two writers' files differ.
fn batch(from: i64, rows: i64, hex: usize) -> RecordBatch {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ from as u64;
    let body = |x: &mut u64| -> String {
        (0..hex.div_ceil(16))
            .map(|_| {
                *x ^= *x << 13;
                *x ^= *x >> 7;
                *x ^= *x << 17;
                format!("{:016x}", *x)
            })
            .collect()
    };
    let ids: Vec<i64> = (from..from + rows).collect();
    let bodies: Vec<String> = ids.iter().map(|_| body(&mut x)).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from(ids)) as ArrayRef,
            Arc::new(StringArray::from(bodies)) as ArrayRef,
        ],
    )
    .unwrap()
}

/// A one-put file (far below the part size) or a multipart one (~6 MiB after zstd).
#[derive(Clone, Copy, Debug)]
enum Size {
    OnePut,
    Multipart,
}

fn batch_for(size: Size, from: i64) -> RecordBatch {
    // Generated once per (size, seed): a debug build takes a while to make ~12 MB of hex.
    static CACHE: Mutex<Vec<((u8, i64), RecordBatch)>> = Mutex::new(Vec::new());
    let id = (size as u8, from);
    let mut cache = CACHE.lock().unwrap();
    if let Some((_, b)) = cache.iter().find(|(k, _)| *k == id) {
        return b.clone();
    }
    let b = match size {
        Size::OnePut => batch(from, 10, 32),
        Size::Multipart => batch(from, 5_800, 2_048),
    };
    cache.push((id, b.clone()));
    b
}

fn writer(store: &Arc<dyn ObjectStore>, registry: &Registry) -> RollingWriter {
    RollingWriter::new(
        store.clone(),
        &Path::from("p"),
        &registry.streams()[0],
        "run-same",
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        schema(),
        SinkConfig {
            upload_buffer_bytes: PART,
            row_group_rows: 2_000,
            zstd_level: 1,
            ..SinkConfig::default()
        },
    )
    .unwrap()
}

async fn bytes(store: &Arc<dyn ObjectStore>, key: &Path) -> bytes::Bytes {
    store.get(key).await.unwrap().bytes().await.unwrap()
}

async fn keys(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let metas: Vec<_> = store
        .list(Some(&Path::from("p")))
        .try_collect()
        .await
        .unwrap();
    let mut keys: Vec<String> = metas.into_iter().map(|m| m.location.to_string()).collect();
    keys.sort();
    keys
}

fn ids(bytes: bytes::Bytes) -> Vec<i64> {
    parquet_to_json(bytes)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// Both writers open the same key (both `head`s find nothing); the first closes and creates it;
/// the second's close must fail with AlreadyExists and leave the first file as it was.
async fn the_second_writer_cannot_overwrite(store: Arc<dyn ObjectStore>, size: Size) {
    let registry = registry();
    let (mut first, mut second) = (writer(&store, &registry), writer(&store, &registry));
    first.write(&batch_for(size, 0)).await.unwrap();
    second.write(&batch_for(size, 1_000_000)).await.unwrap();
    let files: Vec<WrittenFile> = first.close().await.unwrap();
    assert_eq!(files.len(), 1);
    let key = files[0].key.clone();
    if let Size::Multipart = size {
        assert!(
            files[0].bytes > PART as u64,
            "{} bytes: not multipart",
            files[0].bytes
        );
    }
    let written = bytes(&store, &key).await;
    assert_eq!(written.len() as u64, files[0].bytes);

    let err = second.close().await.unwrap_err();
    assert!(
        matches!(err, SinkError::AlreadyExists { key: ref k } if *k == key),
        "{store} {size:?}: {err}"
    );
    assert!(err.to_string().contains("refusing to overwrite"), "{err}");
    assert_eq!(bytes(&store, &key).await, written, "{store} {size:?}");
    // Nothing else is left: no staging object, no second file.
    assert_eq!(keys(&store).await, [key.to_string()], "{store} {size:?}");
}

/// Both writers close at the same time: exactly one creates the file, with its own rows.
async fn racing_writers_one_wins(store: Arc<dyn ObjectStore>, size: Size) {
    let registry = registry();
    let (mut a, mut b) = (writer(&store, &registry), writer(&store, &registry));
    a.write(&batch_for(size, 0)).await.unwrap();
    b.write(&batch_for(size, 1_000_000)).await.unwrap();
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.close().await }),
        tokio::spawn(async move { b.close().await })
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let (won, lost, first_id) = match (ra, rb) {
        (Ok(w), Err(l)) => (w, l, 0),
        (Err(l), Ok(w)) => (w, l, 1_000_000),
        (a, b) => panic!("{store} {size:?}: exactly one writer must win: {a:?} / {b:?}"),
    };
    assert!(matches!(lost, SinkError::AlreadyExists { .. }), "{lost}");
    let key = &won[0].key;
    let got = bytes(&store, key).await;
    assert_eq!(got.len() as u64, won[0].bytes);
    assert_eq!(ids(got)[0], first_id, "{store} {size:?}: the winner's rows");
    assert_eq!(keys(&store).await, [key.to_string()], "{store} {size:?}");
}

fn local(dir: &tempfile::TempDir) -> Arc<dyn ObjectStore> {
    greenhouse_extract::storage::open_with_env(dir.path().to_str().unwrap(), &HashMap::new())
        .unwrap()
        .store
}

#[tokio::test(flavor = "multi_thread")]
async fn local_filesystem_and_memory_refuse_to_overwrite() {
    for size in [Size::OnePut, Size::Multipart] {
        let dir = tempfile::tempdir().unwrap();
        the_second_writer_cannot_overwrite(local(&dir), size).await;
        the_second_writer_cannot_overwrite(Arc::new(InMemory::new()), size).await;
        // Atomic create-if-absent on both (a hard link on the local file system): a true race
        // has exactly one winner.
        for _ in 0..2 {
            let dir = tempfile::tempdir().unwrap();
            racing_writers_one_wins(local(&dir), size).await;
            racing_writers_one_wins(Arc::new(InMemory::new()), size).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_refuses_to_overwrite() {
    greenhouse_extract::harvest::install_crypto_provider();
    let s3 = S3Server::start("lake");
    let open = |extra: &[(&str, &str)]| {
        let mut env: HashMap<String, String> = s3.env().into_iter().collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        greenhouse_extract::storage::open_with_env("s3://lake", &env)
            .unwrap()
            .store
    };
    let plain = open(&[]);
    let conditional_copy = open(&[("AWS_COPY_IF_NOT_EXISTS", "multipart")]);

    // What the server supports: If-None-Match on PutObject and on CompleteMultipartUpload (so
    // object_store's `copy_if_not_exists` in `multipart` mode); without that setting
    // object_store has no conditional copy for S3.
    let (from, to) = (Path::from("probe/from"), Path::from("probe/to"));
    plain
        .put(&from, PutPayload::from_static(b"a"))
        .await
        .unwrap();
    plain.put(&to, PutPayload::from_static(b"b")).await.unwrap();
    let err = conditional_copy
        .copy_if_not_exists(&from, &to)
        .await
        .unwrap_err();
    assert!(
        matches!(err, object_store::Error::AlreadyExists { .. }),
        "{err}"
    );
    let err = plain.copy_if_not_exists(&from, &to).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotSupported { .. }),
        "{err}"
    );
    assert_eq!(bytes(&plain, &to).await.as_ref(), b"b");
    plain.delete(&from).await.unwrap();
    plain.delete(&to).await.unwrap();

    // One-put files: `PutMode::Create` (If-None-Match: *) either way. Multipart files: a
    // conditional copy with the setting, the head-then-copy fallback without it — the second
    // writer below finishes after the first, which both paths refuse. (A true race is not run
    // against s3s-fs: it checks If-None-Match before writing, not atomically with it.)
    for store in [plain, conditional_copy] {
        for size in [Size::OnePut, Size::Multipart] {
            the_second_writer_cannot_overwrite(store.clone(), size).await;
            let keys: Vec<Path> = store
                .list(Some(&Path::from("p")))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .unwrap();
            for k in keys {
                store.delete(&k).await.unwrap();
            }
        }
    }
}
