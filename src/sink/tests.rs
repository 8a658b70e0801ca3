use super::*;
use crate::convert::Converter;
use crate::convert::tests::stream;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{ArrayRef, Int64Array, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chrono::TimeZone;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::file::metadata::ParquetMetaData;
use serde_json::json;

const RUN: &str = "0190f5b2-7c1e-7a4b-9d2e-1234567890ab";

fn started() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 23, 59, 30).unwrap()
}

fn records(from: i64, n: i64) -> Vec<u8> {
    let rows: Vec<_> = (from..from + n)
        .map(|i| {
            json!({
                "id": i,
                "updated_at": "2024-01-15T10:30:00.123Z",
                "name": format!("Candidate {i}"),
                "age": i % 90,
                "tags": ["a", format!("t{}", i % 7)],
                "emails": [{"value": format!("c{i}@example.com"), "type": "work"}],
                "source": {"id": i % 5, "name": "Referral"},
                "custom_fields": {"level": i % 3, "note": "x"},
                "surprise": i % 2 == 0,
            })
        })
        .collect();
    serde_json::to_vec(&rows).unwrap()
}

fn batch(from: i64, n: i64) -> RecordBatch {
    let mut c = Converter::new(&stream(), RUN, started());
    c.convert_page(&records(from, n)).unwrap().batch
}

fn writer(store: Arc<dyn ObjectStore>, config: SinkConfig) -> RollingWriter {
    RollingWriter::new(
        store,
        &Path::from("raw/greenhouse"),
        &stream(),
        RUN,
        started(),
        crate::convert::arrow_schema(&stream()),
        config,
    )
    .unwrap()
}

async fn read_back(
    store: &Arc<dyn ObjectStore>,
    key: &Path,
) -> (Vec<RecordBatch>, Arc<ParquetMetaData>) {
    let bytes = store.get(key).await.unwrap().bytes().await.unwrap();
    // With the page index, so that tests can see where pages were cut.
    let options = ArrowReaderOptions::new()
        .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Required);
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(bytes, options).unwrap();
    let meta = builder.metadata().clone();
    let batches = builder
        .with_batch_size(1 << 20)
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (batches, meta)
}

async fn list(store: &Arc<dyn ObjectStore>) -> Vec<String> {
    let mut keys: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    keys
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

#[tokio::test]
async fn writes_readable_zstd_parquet_with_metadata_to_memory() {
    let store = memory();
    let mut w = writer(store.clone(), SinkConfig::default());
    let (b1, b2) = (batch(0, 100), batch(100, 50));
    w.write(&b1).await.unwrap();
    w.write(&b2).await.unwrap();
    let files = w.close().await.unwrap();
    assert_eq!(files.len(), 1);
    let f = &files[0];
    assert_eq!(
        f.key.as_ref(),
        format!("raw/greenhouse/x/extracted_date=2026-11-22/part-{RUN}-00000.parquet")
    );
    assert_eq!(f.rows, 150);
    assert_eq!(f.row_groups, 1);
    assert_eq!(f.bytes, store.head(&f.key).await.unwrap().size);
    assert_eq!(list(&store).await, [f.key.to_string()]);

    let (batches, meta) = read_back(&store, &f.key).await;
    assert_eq!(batches.len(), 1);
    let back = &batches[0];
    // Same schema (field metadata and timestamp zone included) and the same values.
    assert_eq!(back.schema(), b1.schema());
    assert_eq!(back.slice(0, 100), b1);
    assert_eq!(back.slice(100, 50), b2);

    for rg in meta.row_groups() {
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), Compression::ZSTD(_)),
                "{} is {:?}",
                c.column_path(),
                c.compression()
            );
        }
    }
    let kv: std::collections::HashMap<_, _> = meta
        .file_metadata()
        .key_value_metadata()
        .unwrap()
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(kv["greenhouse.stream"], "x");
    assert_eq!(kv["greenhouse.primary_key"], "id");
    assert_eq!(kv["greenhouse.cursor_field"], "updated_at");
    assert_eq!(kv["greenhouse.run_id"], RUN);
    assert_eq!(
        kv["greenhouse.extractor_version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[tokio::test]
async fn cuts_data_pages_at_page_bytes() {
    // 20,000 plain ids are 160,000 bytes: more than one page of PAGE_BYTES, in one row group.
    let store = memory();
    let mut w = writer(store.clone(), SinkConfig::default());
    w.write(&batch(0, 20_000)).await.unwrap();
    let files = w.close().await.unwrap();
    assert_eq!(files[0].row_groups, 1);
    let (_, meta) = read_back(&store, &files[0].key).await;
    let id = meta
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == "id")
        .unwrap();
    let pages = meta.offset_index().unwrap()[0][id].page_locations().len();
    let expected = (20_000 * 8usize).div_ceil(PAGE_BYTES);
    assert!(
        pages >= expected,
        "the id column has {pages} pages, expected at least {expected}"
    );
}

#[tokio::test]
async fn writes_to_the_local_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_automatic_cleanup(true),
    );
    let mut w = writer(
        store.clone(),
        SinkConfig {
            row_group_rows: 40,
            ..SinkConfig::default()
        },
    );
    w.write(&batch(0, 100)).await.unwrap();
    let files = w.close().await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].row_groups, 3);
    let on_disk = dir.path().join(files[0].key.as_ref());
    assert_eq!(std::fs::metadata(&on_disk).unwrap().len(), files[0].bytes);
    let (batches, _) = read_back(&store, &files[0].key).await;
    assert_eq!(ids(&batches), (0..100).collect::<Vec<_>>());
}

#[tokio::test]
async fn rolls_to_new_files_past_the_target_size() {
    let store = memory();
    let mut w = writer(
        store.clone(),
        SinkConfig {
            target_file_bytes: 1,
            ..SinkConfig::default()
        },
    );
    for i in 0..3 {
        w.write(&batch(i * 10, 10)).await.unwrap();
    }
    let files = w.close().await.unwrap();
    assert_eq!(files.len(), 3);
    let mut all = Vec::new();
    for (i, f) in files.iter().enumerate() {
        assert!(
            f.key.as_ref().ends_with(&format!("-{i:05}.parquet")),
            "{}",
            f.key
        );
        assert_eq!(f.rows, 10);
        let (batches, _) = read_back(&store, &f.key).await;
        all.extend(ids(&batches));
    }
    assert_eq!(all, (0..30).collect::<Vec<_>>());
    assert_eq!(list(&store).await.len(), 3);
}

#[tokio::test]
async fn an_empty_stream_writes_no_file() {
    let store = memory();
    let mut w = writer(store.clone(), SinkConfig::default());
    let c = Converter::new(&stream(), RUN, started());
    w.write(&c.empty_batch()).await.unwrap();
    assert!(w.close().await.unwrap().is_empty());
    assert!(list(&store).await.is_empty());
}

#[tokio::test]
async fn abort_leaves_no_object_in_memory() {
    let store = memory();
    let mut w = writer(
        store.clone(),
        SinkConfig {
            target_file_bytes: 1,
            ..SinkConfig::default()
        },
    );
    w.write(&batch(0, 10)).await.unwrap(); // completed file
    w.write(&batch(10, 10)).await.unwrap(); // completed file
    assert_eq!(list(&store).await.len(), 2);
    w.abort().await;
    assert!(list(&store).await.is_empty());
}

#[tokio::test]
async fn never_overwrites_an_existing_file() {
    let store = memory();
    let mut first = writer(store.clone(), SinkConfig::default());
    first.write(&batch(0, 5)).await.unwrap();
    let files = first.close().await.unwrap();
    let mut second = writer(store.clone(), SinkConfig::default());
    let err = second.write(&batch(0, 5)).await.unwrap_err();
    assert!(matches!(err, SinkError::AlreadyExists { .. }), "{err}");
    second.abort().await;
    // The existing file is untouched.
    assert_eq!(list(&store).await, [files[0].key.to_string()]);
}

#[test]
fn rejects_bad_configuration() {
    let build = |run_id: &str, config: SinkConfig| {
        RollingWriter::new(
            memory(),
            &Path::default(),
            &stream(),
            run_id,
            started(),
            crate::convert::arrow_schema(&stream()),
            config,
        )
    };
    let small = SinkConfig {
        upload_buffer_bytes: 1 << 20,
        ..SinkConfig::default()
    };
    assert!(matches!(build(RUN, small), Err(SinkError::Config(m)) if m.contains("5 MiB")));
    let zstd = SinkConfig {
        zstd_level: 99,
        ..SinkConfig::default()
    };
    assert!(matches!(build(RUN, zstd), Err(SinkError::Config(_))));
    for bad in ["", "a/b", "../x", "run id"] {
        assert!(matches!(
            build(bad, SinkConfig::default()),
            Err(SinkError::Config(_))
        ));
    }
    // An empty prefix puts the stream directory at the store's root.
    let w = build(RUN, SinkConfig::default()).unwrap();
    assert_eq!(w.dir().as_ref(), "x/extracted_date=2026-11-22");
}

/// A batch of `rows` rows holding ~`bytes_per_row` of incompressible text each, so the Parquet
/// file is about `rows * bytes_per_row` bytes even after ZSTD.
fn incompressible(start: i64, rows: usize, bytes_per_row: usize) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("blob", DataType::Utf8, false),
    ]));
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ start as u64;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let blobs: StringArray = (0..rows)
        .map(|_| {
            (0..bytes_per_row)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state >> 58) as usize] as char
                })
                .collect::<String>()
        })
        .map(Some)
        .collect();
    let ids = Int64Array::from_iter_values(start..start + rows as i64);
    let columns: Vec<ArrayRef> = vec![Arc::new(ids), Arc::new(blobs)];
    (
        schema.clone(),
        RecordBatch::try_new(schema, columns).unwrap(),
    )
}

/// Files at the sink's LocalFileSystem directory, including object_store's multipart staging
/// files (`<key>#<n>`), which `list` hides.
fn files_on_disk(root: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out)
            } else {
                out.push(p.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

const MIB: usize = 1 << 20;

fn big_config() -> SinkConfig {
    SinkConfig {
        upload_buffer_bytes: 5 * MIB,
        row_group_rows: 2_000,
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn large_files_go_multipart_and_read_back_on_local_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let local: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_automatic_cleanup(true),
    );
    for store in [local, memory()] {
        let mut w = None;
        // ~12 MiB after ZSTD (6 bits of entropy per character): 4 batches of 3,000 rows.
        for i in 0..4 {
            let (schema, b) = incompressible(i * 3_000, 3_000, 1_400);
            let w = w.get_or_insert_with(|| {
                RollingWriter::new(
                    store.clone(),
                    &Path::from("big"),
                    &stream(),
                    RUN,
                    started(),
                    schema,
                    big_config(),
                )
                .unwrap()
            });
            w.write(&b).await.unwrap();
        }
        if store.to_string().starts_with("LocalFileSystem") {
            // Past the 5 MiB buffer the upload is multipart: LocalFileSystem stages it in a
            // `<key>#<id>` file until completion.
            assert!(
                files_on_disk(dir.path()).iter().any(|f| f.contains('#')),
                "{:?}",
                files_on_disk(dir.path())
            );
        }
        let files = w.unwrap().close().await.unwrap();
        assert_eq!(files.len(), 1);
        let f = &files[0];
        // More than two 5 MiB parts.
        assert!(f.bytes > 10 * MIB as u64, "{} bytes", f.bytes);
        assert_eq!(store.head(&f.key).await.unwrap().size, f.bytes);
        assert_eq!(f.rows, 12_000);
        assert_eq!(f.row_groups, 6);
        let (batches, _) = read_back(&store, &f.key).await;
        assert_eq!(ids(&batches), (0..12_000).collect::<Vec<_>>());
        let (_, expected) = incompressible(3_000, 3_000, 1_400);
        let blob = batches[0].column(1).as_string::<i32>();
        assert_eq!(
            blob.value(3_000),
            expected.column(1).as_string::<i32>().value(0)
        );
    }
    assert!(!files_on_disk(dir.path()).iter().any(|f| f.contains('#')));
}

#[tokio::test]
async fn abort_of_a_multipart_upload_leaves_nothing_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(
        LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_automatic_cleanup(true),
    );
    let (schema, small) = incompressible(0, 10, 100);
    let mut w = RollingWriter::new(
        store.clone(),
        &Path::from("big"),
        &stream(),
        RUN,
        started(),
        schema,
        SinkConfig {
            target_file_bytes: 1,
            ..big_config()
        },
    )
    .unwrap();
    w.write(&small).await.unwrap(); // one completed file
    let mut w = RollingWriter {
        config: SinkConfig {
            target_file_bytes: u64::MAX,
            ..big_config()
        },
        ..w
    };
    for i in 0..2 {
        w.write(&incompressible(10 + i * 4_000, 4_000, 1_024).1)
            .await
            .unwrap();
    }
    let on_disk = files_on_disk(dir.path());
    assert!(on_disk.iter().any(|f| f.contains('#')), "{on_disk:?}");
    assert_eq!(list(&store).await.len(), 1);
    w.abort().await;
    assert!(list(&store).await.is_empty());
    assert!(
        files_on_disk(dir.path()).is_empty(),
        "{:?}",
        files_on_disk(dir.path())
    );
}

#[test]
fn writer_and_its_futures_are_send() {
    // The engine runs streams as tokio tasks: the writer and the futures it returns must be Send.
    fn send<T: Send>(_: &T) {}
    let mut w = writer(memory(), SinkConfig::default());
    let b = batch(0, 1);
    send(&w.write(&b));
    send(&w);
    send(&w.close());
    send(&writer(memory(), SinkConfig::default()).abort());
}
