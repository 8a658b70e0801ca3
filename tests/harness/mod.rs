//! End-to-end helpers shared by the extractor's integration tests: run the `greenhouse-extract`
//! binary against a simulator, start a real S3-compatible server (s3s-fs) on 127.0.0.1, read the
//! written Parquet back, and compare it field by field with the simulator's truth export.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use greenhouse_extract::registry::{Field, FieldType, Registry, Stream};
use object_store::{ObjectStore, ObjectStoreExt, path::Path as ObjPath};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::support::Sim;

pub const EXTRACT: &str = env!("CARGO_BIN_EXE_greenhouse-extract");

pub fn registry() -> Registry {
    Registry::embedded().expect("embedded registry")
}

/// Environment pointing the extractor at a simulator with its default credentials.
pub fn sim_env(base_url: &str) -> Vec<(String, String)> {
    vec![
        ("GREENHOUSE_API_URL".into(), base_url.to_string()),
        ("GREENHOUSE_TOKEN_URL".into(), format!("{base_url}/token")),
        ("GREENHOUSE_CLIENT_ID".into(), "sim-client".into()),
        ("GREENHOUSE_CLIENT_SECRET".into(), "sim-secret".into()),
    ]
}

/// The extractor's test hook that puts the signpost at the run's start instead of a few seconds
/// before it, for tests that change the simulator and sync again at once: the simulator stamps a
/// change with its wall clock in milliseconds, the next run starts (same clock) after the change
/// was acknowledged, and its window's end is inclusive, so the change lies inside that window
/// without waiting out the production skew.
pub fn no_signpost_skew() -> (String, String) {
    (
        greenhouse_extract::sync::ENV_SIGNPOST_SKEW_MS.into(),
        "0".into(),
    )
}

/// Runs `greenhouse-extract` with `args` and extra environment (the process environment's
/// GREENHOUSE_* and AWS_* variables are cleared so the host cannot leak into a test).
pub fn extract(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(EXTRACT);
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GREENHOUSE_") || k.starts_with("AWS_") || k.starts_with("OPENLINEAGE_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run greenhouse-extract")
}

/// `greenhouse-extract sync --destination DEST --streams a,b [--config CFG]` against a simulator.
pub fn sync_streams(
    dest: &Path,
    streams: &[&str],
    config: Option<&str>,
    env: &[(String, String)],
) -> Output {
    let dest = dest.to_str().expect("utf-8 path");
    let streams = streams.join(",");
    let mut args = vec!["sync", "--destination", dest, "--streams", &streams];
    if let Some(c) = config {
        args.extend(["--config", c]);
    }
    extract(&args, env)
}

/// The JSON run summary a `sync --summary json` printed (its last JSON line).
pub fn summary(out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON summary in {}", text(out)));
    serde_json::from_str(line).unwrap()
}

/// The summary's streams by name.
pub fn by_stream(summary: &Value) -> BTreeMap<String, Value> {
    summary["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stream"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

/// Requests of the id listing an incremental run makes for `stream` holding `live` ids with the
/// default cadence (reconciled on every run up to 1000 ids; 500 ids per request), in one
/// partition; 0 when it is not listed.
pub fn every_run_listing(stream: &Stream, live: usize) -> u64 {
    if stream.deletes.is_hard() && stream.deletes.reconcile && live <= 1000 {
        live.div_ceil(500).max(1) as u64
    } else {
        0
    }
}

/// The destination folder `dir` as an object store (keys relative to it).
pub fn local_store(dir: &Path) -> Arc<dyn ObjectStore> {
    Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap())
}

/// Writes `json` as `dir/config.json` and returns its path.
pub fn write_config(dir: &Path, json: &str) -> String {
    let p = dir.join("config.json");
    std::fs::write(&p, json).unwrap();
    p.to_str().unwrap().to_string()
}

/// Asserts that each stream written to the local folder `dest` equals the simulator's truth.
pub async fn assert_local_matches(sim: &Sim, dest: &Path, streams: &[&str]) {
    let store: Arc<dyn ObjectStore> =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dest).unwrap());
    let registry = registry();
    for name in streams {
        let stream = registry.get(name).unwrap();
        let truth = expected_rows(sim, stream).await;
        let rows = read_stream(&store, &ObjPath::from(""), name).await;
        assert_matches_truth(stream, &truth, &dedup_latest(rows), false);
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

// ------------------------------------------------------------------------------------------
// Simulator control API
// ------------------------------------------------------------------------------------------

/// Applies `/_sim/mutate?<query>` and returns the simulator's description of the changes.
pub async fn sim_mutate(sim: &Sim, query: &str) -> Value {
    let r = sim.post(&format!("/_sim/mutate?{query}")).await;
    assert_eq!(r.status, 200, "mutate failed: {}", r.body);
    r.json()
}

/// Requests served per resource (all statuses), from `/_sim/stats`.
pub async fn requests_by_resource(sim: &Sim) -> BTreeMap<String, u64> {
    let stats = sim.stats().await;
    let mut out = BTreeMap::new();
    if let Some(m) = stats["by_resource"].as_object() {
        for (k, v) in m {
            let n = v
                .as_object()
                .map(|o| o.values().filter_map(|x| x.as_u64()).sum())
                .unwrap_or(0);
            out.insert(k.clone(), n);
        }
    }
    out
}

/// The rows a stream should hold: the simulator's truth for its resource, narrowed by the
/// stream's static parameters where they select a subset (`custom_field_key`).
pub async fn expected_rows(sim: &Sim, stream: &Stream) -> Vec<Value> {
    let rows = sim.truth(&stream.resource).await;
    match stream.params.get("custom_field_key") {
        Some(key) => {
            let fields = sim.truth("custom_fields").await;
            let ids: Vec<i64> = fields
                .iter()
                .filter(|f| f["name_key"].as_str() == Some(key))
                .filter_map(|f| f["id"].as_i64())
                .collect();
            rows.into_iter()
                .filter(|r| {
                    r["custom_field_id"]
                        .as_i64()
                        .is_some_and(|i| ids.contains(&i))
                })
                .collect()
        }
        None => rows,
    }
}

// ------------------------------------------------------------------------------------------
// Reading Parquet back
// ------------------------------------------------------------------------------------------

/// Every row of every Parquet file of `stream` under `prefix`, as JSON objects (nulls explicit).
pub async fn read_stream(
    store: &Arc<dyn ObjectStore>,
    prefix: &ObjPath,
    stream: &str,
) -> Vec<Value> {
    let dir = prefix.clone().join(stream);
    let metas: Vec<_> = store.list(Some(&dir)).try_collect().await.unwrap();
    let mut rows = Vec::new();
    for m in metas {
        if !m.location.as_ref().ends_with(".parquet") {
            continue;
        }
        let bytes = store.get(&m.location).await.unwrap().bytes().await.unwrap();
        rows.extend(parquet_to_json(bytes));
    }
    rows
}

pub fn parquet_to_json(bytes: bytes::Bytes) -> Vec<Value> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let mut buf = Vec::new();
        {
            let mut w = arrow_json::writer::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow_json::writer::LineDelimited>(&mut buf);
            w.write(&batch).unwrap();
            w.finish().unwrap();
        }
        for line in String::from_utf8(buf).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

/// Keeps the latest version of each id: greatest `updated_at` (when the stream has one), then
/// greatest `_extracted_at` — the de-duplication the README tells users to apply.
pub fn dedup_latest(rows: Vec<Value>) -> BTreeMap<i64, Value> {
    let mut by_id: BTreeMap<i64, Value> = BTreeMap::new();
    let key = |v: &Value| {
        (
            ts(&v["updated_at"]).unwrap_or(i64::MIN),
            ts(&v["_extracted_at"]).unwrap_or(i64::MIN),
        )
    };
    for r in rows {
        let id = r["id"].as_i64().expect("id column");
        match by_id.get(&id) {
            Some(old) if key(old) >= key(&r) => {}
            _ => {
                by_id.insert(id, r);
            }
        }
    }
    by_id
}

/// The current state of a stream from its rows, tombstones included — the README's rule: per id
/// the row of the latest extraction wins (`_extracted_at`), within one run a tombstone wins,
/// then the greatest `updated_at`; ids whose winning row is a tombstone are left out.
pub fn current_rows(rows: Vec<Value>) -> BTreeMap<i64, Value> {
    let key = |v: &Value| {
        (
            ts(&v["_extracted_at"]).unwrap_or(i64::MIN),
            v["_deleted"].as_bool().unwrap_or(false),
            ts(&v["updated_at"]).unwrap_or(i64::MIN),
        )
    };
    let mut by_id: BTreeMap<i64, Value> = BTreeMap::new();
    for r in rows {
        let id = r["id"].as_i64().expect("id column");
        match by_id.get(&id) {
            Some(old) if key(old) >= key(&r) => {}
            _ => {
                by_id.insert(id, r);
            }
        }
    }
    by_id.retain(|_, v| !v["_deleted"].as_bool().unwrap_or(false));
    by_id
}

/// The tombstone rows of a stream, by id (the latest per id).
pub fn tombstones(rows: &[Value]) -> BTreeMap<i64, Value> {
    rows.iter()
        .filter(|r| r["_deleted"].as_bool() == Some(true))
        .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
        .collect()
}

fn ts(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc).timestamp_micros())
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|d| d.and_utc().timestamp_micros())
        })
}

/// Compares one declared value from the truth with what came back from Parquet.
fn same(ty: &FieldType, truth: &Value, out: &Value) -> bool {
    if truth.is_null() || out.is_null() {
        return truth.is_null() && out.is_null();
    }
    match ty {
        FieldType::Timestamp => ts(truth).is_some() && ts(truth) == ts(out),
        FieldType::Json => out
            .as_str()
            .and_then(|s| serde_json::from_str::<Value>(s).ok())
            .is_some_and(|parsed| &parsed == truth),
        FieldType::Number => truth.as_f64() == out.as_f64(),
        FieldType::List(item) => match (truth.as_array(), out.as_array()) {
            (Some(a), Some(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(&item.ty, x, y))
            }
            _ => false,
        },
        FieldType::Struct(fields) => fields
            .iter()
            .all(|f| same(&f.ty, &truth[&f.name], &out[&f.name])),
        _ => truth == out,
    }
}

/// Asserts that the de-duplicated output equals the truth, field by field, and returns the number
/// of rows compared. `allow_extra_ids`: ids in the output but not in the truth (hard deletes).
pub fn assert_matches_truth(
    stream: &Stream,
    truth: &[Value],
    output: &BTreeMap<i64, Value>,
    allow_extra_ids: bool,
) -> usize {
    let mut problems = Vec::new();
    for t in truth {
        let id = t["id"].as_i64().expect("truth id");
        let Some(o) = output.get(&id) else {
            problems.push(format!("id {id} missing from the output"));
            continue;
        };
        for f in &stream.fields {
            let Field { name, ty, .. } = f;
            if !same(ty, &t[name], &o[name]) {
                problems.push(format!(
                    "id {id} field {name}: truth {} != output {}",
                    t[name], o[name]
                ));
            }
        }
        // Nothing the simulator sends is unknown to the declaration.
        if !o["_extra"].is_null() {
            problems.push(format!("id {id}: unexpected _extra {}", o["_extra"]));
        }
    }
    if !allow_extra_ids {
        let truth_ids: std::collections::BTreeSet<i64> =
            truth.iter().filter_map(|t| t["id"].as_i64()).collect();
        for id in output.keys() {
            if !truth_ids.contains(id) {
                problems.push(format!("id {id} in the output but not in the truth"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "stream {}: {} problems, first ones:\n{}",
        stream.name,
        problems.len(),
        problems
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    truth.len()
}

// ------------------------------------------------------------------------------------------
// A real S3-compatible server: s3s-fs on 127.0.0.1 (installed by `make tools` / .ci/run)
// ------------------------------------------------------------------------------------------

pub const S3_ACCESS_KEY: &str = "AKTESTGREENHOUSE";
pub const S3_SECRET_KEY: &str = "SKtestgreenhousesecret";

pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    child: Child,
    /// Requests must be SigV4-signed (false: anonymous, for proxies that rewrite headers).
    auth: bool,
}

fn s3s_fs_binary() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    let local = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/bin/s3s-fs");
    if local.exists() {
        return local;
    }
    panic!(
        "s3s-fs not found at {}: run `make tools` (CI's .ci/run does) or set S3S_FS_BIN",
        local.display()
    );
}

impl S3Server {
    /// Starts s3s-fs with one bucket, waiting until it accepts connections.
    pub fn start(bucket: &str) -> S3Server {
        S3Server::start_with(bucket, true)
    }

    /// s3s-fs that accepts unsigned requests ([`S3Server::env`] then sets `AWS_SKIP_SIGNATURE`),
    /// so a test proxy in front of it may rewrite headers that a signature would cover.
    pub fn start_unsigned(bucket: &str) -> S3Server {
        S3Server::start_with(bucket, false)
    }

    fn start_with(bucket: &str, auth: bool) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(bucket)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(s3s_fs_binary());
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        if auth {
            cmd.args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY]);
        }
        let child = cmd
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "s3s-fs did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
            child,
            auth,
        }
    }

    /// AWS_* variables for the extractor (and for `storage::open_with_env`).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET_KEY.into()),
            ("AWS_REGION".into(), "us-east-1".into()),
            ("AWS_ENDPOINT".into(), self.endpoint.clone()),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
        ];
        if !self.auth {
            env.push(("AWS_SKIP_SIGNATURE".into(), "true".into()));
        }
        env
    }

    /// An object store client for reading back what the extractor wrote.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        greenhouse_extract::harvest::install_crypto_provider();
        let env: std::collections::HashMap<String, String> = self.env().into_iter().collect();
        greenhouse_extract::storage::open_with_env(&format!("s3://{bucket}"), &env)
            .expect("open s3 store")
            .store
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------------------------------
// The independent reader: DuckDB (installed into .venv by `make tools` / .ci/run)
// ------------------------------------------------------------------------------------------

pub fn python_with_duckdb() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install DuckDB",
        venv.display()
    );
    venv
}

// ------------------------------------------------------------------------------------------
// Delta Lake readers of the current-state tables (installed into .venv-delta by `make tools`)
// ------------------------------------------------------------------------------------------

fn python_with_delta() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-delta/bin/python");
    assert!(
        venv.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install the Delta readers",
        venv.display()
    );
    venv
}

fn run_python(python: &Path, script: &str, args: &[&str]) -> String {
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The Delta table at `dir` as the `deltalake` package (delta-rs's Python bindings, an
/// independent build) reads its log: the version and the active data files.
pub fn delta_table_files(dir: &Path) -> (i64, Vec<PathBuf>) {
    let script = r#"
import json, sys
from deltalake import DeltaTable
t = DeltaTable(sys.argv[1])
print(json.dumps({"version": t.version(), "files": t.file_uris()}))
"#;
    let out = run_python(&python_with_delta(), script, &[dir.to_str().unwrap()]);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    let files = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let f = f.as_str().unwrap();
            PathBuf::from(f.strip_prefix("file://").unwrap_or(f))
        })
        .collect();
    (v["version"].as_i64().unwrap(), files)
}

/// The rows of the Delta table at `dir` (the files `deltalake` says are active, decoded like the
/// raw files), by id; panics on a duplicate id.
pub fn delta_table_rows(dir: &Path) -> BTreeMap<i64, Value> {
    let (_, files) = delta_table_files(dir);
    let mut out = BTreeMap::new();
    for f in files {
        let bytes = bytes::Bytes::from(std::fs::read(&f).unwrap());
        for row in parquet_to_json(bytes) {
            let id = row["id"].as_i64().expect("id");
            assert!(
                out.insert(id, row).is_none(),
                "{}: id {id} twice in the current table",
                dir.display()
            );
        }
    }
    out
}

/// Per table directory: (rows, distinct ids) as DuckDB's `delta` extension reads it.
pub fn duckdb_delta_counts(dirs: &[PathBuf]) -> Vec<(u64, u64)> {
    let script = r#"
import json, os, sys, duckdb, duckdb_extension_delta
ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__),
                   "extensions", "v" + duckdb.__version__, "delta.duckdb_extension")
con = duckdb.connect()
con.execute(f"LOAD '{ext}'")
for d in sys.argv[1:]:
    n, k = con.execute(f"SELECT count(*), count(DISTINCT id) FROM delta_scan('{d}')").fetchone()
    print(json.dumps([n, k]))
"#;
    let args: Vec<&str> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
    run_python(&python_with_delta(), script, &args)
        .lines()
        .map(|l| {
            let v: Vec<u64> = serde_json::from_str(l).unwrap();
            (v[0], v[1])
        })
        .collect()
}

/// Runs DuckDB queries with the `delta` extension loaded (the `.venv-delta` DuckDB), each
/// query's rows as JSON objects (decimals, dates and timestamps as their text).
pub fn duckdb_delta_query(queries: &[String]) -> Vec<Vec<Value>> {
    let script = r#"
import json, os, sys, duckdb, duckdb_extension_delta
ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__),
                   "extensions", "v" + duckdb.__version__, "delta.duckdb_extension")
con = duckdb.connect()
con.execute(f"LOAD '{ext}'")
for q in sys.argv[1:]:
    cur = con.execute(q)
    if cur.description is None:
        print("[]")
        continue
    cols = [d[0] for d in cur.description]
    print(json.dumps([dict(zip(cols, row)) for row in cur.fetchall()], default=str))
"#;
    let args: Vec<&str> = queries.iter().map(String::as_str).collect();
    run_python(&python_with_delta(), script, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs a DuckDB query through Python and returns the rows as JSON values.
pub fn duckdb_query(sql: &str) -> Vec<Value> {
    let script = r#"
import json, sys, duckdb
con = duckdb.connect()
cur = con.execute(sys.argv[1])
cols = [d[0] for d in cur.description]
for row in cur.fetchall():
    print(json.dumps(dict(zip(cols, row)), default=str))
"#;
    let out = Command::new(python_with_duckdb())
        .args(["-c", script, sql])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// ------------------------------------------------------------------------------------------
// Protocol records (Singer targets' JSON lines)
// ------------------------------------------------------------------------------------------

pub fn record_updated_at(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v["updated_at"].as_str().expect("updated_at"))
        .unwrap()
        .with_timezone(&Utc)
}

/// Whether a protocol record is a tombstone (`_sdc_deleted_at` or `_ab_cdc_deleted_at` set).
pub fn is_deleted_record(v: &Value) -> bool {
    ["_sdc_deleted_at", "_ab_cdc_deleted_at"]
        .iter()
        .any(|k| v.get(*k).is_some_and(|d| !d.is_null()))
}

/// The ids of a run's records, and of its tombstones, apart.
pub fn record_ids(
    records: &[Value],
) -> (
    std::collections::BTreeSet<i64>,
    std::collections::BTreeSet<i64>,
) {
    let (deleted, live): (Vec<&Value>, Vec<&Value>) =
        records.iter().partition(|r| is_deleted_record(r));
    let ids = |v: Vec<&Value>| v.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    (ids(live), ids(deleted))
}

/// The ids of `earlier` records that `truth` no longer has (what the next run must delete).
pub fn gone_ids(earlier: &[Value], truth: &[Value]) -> std::collections::BTreeSet<i64> {
    let truth: std::collections::BTreeSet<i64> =
        truth.iter().filter_map(|t| t["id"].as_i64()).collect();
    earlier
        .iter()
        .filter(|r| !is_deleted_record(r))
        .filter_map(|r| r["id"].as_i64())
        .filter(|id| !truth.contains(id))
        .collect()
}

/// Latest version per id (greatest `updated_at`; a later record wins ties), as a target that
/// honours deletes keeps them: a tombstone removes its id.
pub fn dedup_records(rows: impl IntoIterator<Item = Value>) -> BTreeMap<i64, Value> {
    let mut out: BTreeMap<i64, Value> = BTreeMap::new();
    for r in rows {
        let id = r["id"].as_i64().unwrap();
        if is_deleted_record(&r) {
            out.remove(&id);
            continue;
        }
        if out
            .get(&id)
            .is_none_or(|old| record_updated_at(old) <= record_updated_at(&r))
        {
            out.insert(id, r);
        }
    }
    out
}

/// Every truth row is among the records with the same JSON value in every field (the
/// `dropped` fields, deselected in the catalog, must be absent), and the records have no other
/// ids than `allowed_extra` (hard deletes).
pub fn assert_records_equal_truth(
    stream: &str,
    truth: &[Value],
    out: &BTreeMap<i64, Value>,
    dropped: &[&str],
    allowed_extra: &std::collections::BTreeSet<i64>,
) {
    let mut problems = Vec::new();
    for t in truth {
        let id = t["id"].as_i64().unwrap();
        let Some(o) = out.get(&id) else {
            problems.push(format!("id {id} missing"));
            continue;
        };
        for (k, v) in t.as_object().unwrap() {
            if dropped.contains(&k.as_str()) {
                if o.get(k).is_some() {
                    problems.push(format!("id {id}: deselected field {k} present"));
                }
            } else if o.get(k) != Some(v) {
                problems.push(format!(
                    "id {id} field {k}: truth {v} != output {:?}",
                    o.get(k)
                ));
            }
        }
    }
    let truth_ids: std::collections::BTreeSet<i64> =
        truth.iter().filter_map(|t| t["id"].as_i64()).collect();
    for id in out.keys() {
        if !truth_ids.contains(id) && !allowed_extra.contains(id) {
            problems.push(format!("id {id} in the output but not in the truth"));
        }
    }
    assert!(
        problems.is_empty(),
        "{stream}: {} problems:\n{}",
        problems.len(),
        problems
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Starts `greenhouse-extract sync --destination DEST --streams S --log-format json --config CFG`
/// in the background, stdout and stderr piped (kill, signal or wait on it).
pub fn spawn_sync(dest: &str, streams: &str, env: &[(String, String)], config: &str) -> Child {
    let mut cmd = Command::new(EXTRACT);
    cmd.args([
        "sync",
        "--destination",
        dest,
        "--streams",
        streams,
        "--log-format",
        "json",
        "--config",
        config,
    ]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
