//! `greenhouse-extract ddl`: the statements it prints describe the destination as it is.
//!
//! - DuckDB: the output for a destination a real sync wrote (tombstones included) runs in
//!   DuckDB, and its views hold exactly the rows of the current Delta tables as `delta_scan`
//!   reads them; the de-duplicating view over the raw history holds the same rows too.
//! - Every dialect: its output (for that destination, and for a fixed layout with every column
//!   type a table can hold) is parsed by sqlglot in that dialect; the few statements sqlglot
//!   does not model are checked by pieces. The fixed layout's output is also compared with
//!   golden files, `tests/golden/ddl/<dialect>.sql`: after an intended change, regenerate them
//!   with `UPDATE_GOLDEN=1 cargo test --test ddl golden` and review the diff.
//! - Usage errors and an empty destination exit with the configuration code; a raw history
//!   without a current table is described, with the way to build the table.
//! - A bucket (the S3 test server) is described with its own URLs, as each engine spells the
//!   scheme, with the column policies applied to the raw tables and no credential printed.

mod harness;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use greenhouse_extract::ddl::{self, CurrentTable, Dialect, Layout, Options, RawTable};
use greenhouse_extract::registry::Registry;
use harness::*;
use serde_json::Value;
use support::Sim;

// ---- checkers ------------------------------------------------------------------------------

fn venv_python(venv: &str, what: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(venv)
        .join("bin/python");
    assert!(
        p.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install {what}",
        p.display()
    );
    p
}

fn python(venv: &str, what: &str, script: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(venv_python(venv, what))
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Parses each `(label, dialect, sql)` with sqlglot (errors raise). A statement sqlglot only
/// keeps as an opaque command must be one of the shapes it is known not to model, and its
/// pieces must parse: Trino's `CALL catalog.system.procedure(...)` (the call as a function),
/// Snowflake's `ALTER EXTERNAL TABLE t REFRESH` and Spark's `MSCK REPAIR TABLE t` (the table
/// name), BigQuery's `CREATE EXTERNAL TABLE` with `WITH CONNECTION` / `WITH PARTITION COLUMNS`
/// (the statement without those clauses). Also checks that every statement written was parsed.
const SQLGLOT_CHECK: &str = r#"
import json, logging, re, sys
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel

# Its warning for each opaque command: those are checked below instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

def parse_one(sql, d):
    return sqlglot.parse_one(sql, read=d, error_level=ErrorLevel.RAISE)

def opaque_ok(d, text):
    if d == "trino":
        m = re.fullmatch(r"CALL ((?:hive|delta)\.system\.\w+\(.*\))", text, re.S)
        return bool(m) and isinstance(parse_one("SELECT " + m.group(1), d), exp.Select)
    if d == "snowflake":
        m = re.fullmatch(r"ALTER EXTERNAL TABLE (\S+) REFRESH", text)
        return bool(m) and isinstance(parse_one("SELECT * FROM " + m.group(1), d), exp.Select)
    if d == "spark":
        m = re.fullmatch(r"MSCK REPAIR TABLE (\S+)", text)
        return bool(m) and isinstance(parse_one("SELECT * FROM " + m.group(1), d), exp.Select)
    if d == "bigquery" and text.startswith("CREATE OR REPLACE EXTERNAL TABLE"):
        rest = re.sub(r"\s*WITH CONNECTION `[^`]+`", "", text)
        rest = re.sub(r"\s*WITH PARTITION COLUMNS \([^()]*\)", "", rest)
        return rest != text and isinstance(parse_one(rest, d), exp.Create)
    return False

for case in json.load(sys.stdin):
    d, sql = case["dialect"], case["sql"]
    written = sum(1 for l in sql.splitlines()
                  if l.rstrip().endswith(";") and not l.lstrip().startswith("--"))
    problems = []
    try:
        parsed = [s for s in sqlglot.parse(sql, read=d, error_level=ErrorLevel.RAISE) if s is not None]
    except Exception as e:
        parsed = []
        problems.append("does not parse: " + str(e))
    for s in parsed:
        if isinstance(s, exp.Command):
            rest = s.expression if isinstance(s.expression, str) else s.expression.name
            text = s.this.strip() + " " + rest.strip()
            try:
                ok = opaque_ok(d, text)
            except Exception as e:
                ok = False
                problems.append("a piece does not parse: " + str(e))
            if not ok:
                problems.append("not understood by sqlglot: " + text[:200])
    if not problems and len(parsed) != written:
        problems.append(f"{written} statements written, {len(parsed)} parsed")
    kinds = sorted({type(s).__name__ for s in parsed})
    print(json.dumps({"label": case["label"], "statements": len(parsed), "kinds": kinds,
                      "problems": problems}))
"#;

/// Runs [`SQLGLOT_CHECK`] on every case (sqlglot's dialect names are `ddl`'s) and fails with each problem it found.
fn assert_parses(cases: &[(String, Dialect, String)]) {
    let input: Vec<Value> = cases
        .iter()
        .map(|(label, d, sql)| serde_json::json!({"label": label, "dialect": d.name(), "sql": sql}))
        .collect();
    let out = python(
        ".venv-sqlglot",
        "sqlglot",
        SQLGLOT_CHECK,
        &[],
        &Value::Array(input).to_string(),
    );
    let results: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), cases.len(), "{out}");
    let mut failed = Vec::new();
    for r in &results {
        let problems = r["problems"].as_array().unwrap();
        if !problems.is_empty() {
            failed.push(format!("{}: {problems:?}", r["label"]));
        }
        assert!(r["statements"].as_u64().unwrap() >= 3, "{r}");
    }
    assert!(failed.is_empty(), "sqlglot:\n{}", failed.join("\n"));
}

/// Runs `sql` in DuckDB (with its delta extension), then compares, for each table, the view
/// `greenhouse.<t>` with `delta_scan(<dir>)` and `greenhouse.<t>_raw_latest` with
/// `greenhouse.<t>` (on the view's columns): rows in one and not the other, both ways, with
/// duplicates counted. Prints one JSON object per table.
const DUCKDB_CHECK: &str = r#"
import json, os, sys, duckdb, duckdb_extension_delta
ext = os.path.join(os.path.dirname(duckdb_extension_delta.__file__),
                   "extensions", "v" + duckdb.__version__, "delta.duckdb_extension")
con = duckdb.connect()
con.execute(f"LOAD '{ext}'")
con.execute(sys.stdin.read())
def one(q):
    return con.execute(q).fetchone()[0]
def apart(a, b, cols="*"):
    return one(f"SELECT count(*) FROM ((SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b}) "
               f"UNION ALL (SELECT {cols} FROM {b} EXCEPT ALL SELECT {cols} FROM {a}))")
for arg in sys.argv[1:]:
    name, d = arg.split("=", 1)
    table = f'greenhouse."{name}"'
    out = {"table": name, "rows": one(f"SELECT count(*) FROM {table}"),
           "delta_rows": one(f"SELECT count(*) FROM delta_scan('{d}')"),
           "apart_from_delta": apart(table, f"delta_scan('{d}')")}
    latest = f'greenhouse."{name}_raw_latest"'
    has_raw = one(f"SELECT count(*) FROM duckdb_views() WHERE schema_name = 'greenhouse' AND view_name = '{name}_raw_latest'")
    if has_raw:
        cols = ", ".join('"' + r[0] + '"' for r in con.execute(f"DESCRIBE {latest}").fetchall())
        out["raw_rows"] = one(f"SELECT count(*) FROM {latest}")
        out["raw_ids"] = one(f"SELECT count(DISTINCT id) FROM {latest}")
        out["apart_from_raw"] = apart(latest, table, cols)
        out["tombstones"] = one(f'SELECT count(*) FROM greenhouse."{name}_raw" WHERE _deleted')
    print(json.dumps(out))
"#;

/// The rows of the Delta table at `dir`: its active files as the `deltalake` package lists
/// them, counted from their Parquet footers (a table need not have an `id`).
fn delta_row_count(dir: &Path) -> u64 {
    let (_, files) = delta_table_files(dir);
    files
        .iter()
        .map(|f| {
            let bytes = bytes::Bytes::from(std::fs::read(f).unwrap());
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
                    .unwrap();
            reader.metadata().file_metadata().num_rows() as u64
        })
        .sum()
}

// ---- a real destination --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn duckdb_runs_the_output_and_every_dialect_parses_it() {
    let sim = Sim::start(&["--scale", "0.2", "--rate-limit", "0", "--seed", "53"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let streams = "candidates,applications,jobs,offers,departments,demographic_questions";
    let sync = |extra: &[&str]| {
        let mut args = vec![
            "sync",
            "--destination",
            dest_s,
            "--streams",
            streams,
            "--include-sensitive",
        ];
        args.extend(extra);
        let out = extract(&args, &env);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    sync(&[]);
    // Updates, inserts, deletes with cascades and merges: the raw history gets tombstones and
    // second versions, which the de-duplicating view has to see through.
    sim_mutate(&sim, "updates=6&inserts=3&deletes=3&merges=2&seed=11").await;
    sync(&["--reconcile"]);

    let out = extract(
        &["ddl", "--dialect", "duckdb", "--destination", dest_s],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let sql = String::from_utf8(out.stdout).unwrap();
    let tables: Vec<String> = std::fs::read_dir(dest.join("current"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for s in streams.split(',') {
        assert!(tables.iter().any(|t| t == s), "no current table for {s}");
    }
    let args: Vec<String> = tables
        .iter()
        .map(|t| format!("{t}={}", dest.join("current").join(t).display()))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let report = python(
        ".venv-delta",
        "DuckDB and its delta extension",
        DUCKDB_CHECK,
        &args,
        &sql,
    );
    let mut tombstones = 0;
    let mut compared = 0;
    for line in report.lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let name = r["table"].as_str().unwrap().to_string();
        let rows = r["rows"].as_u64().unwrap();
        // The deltalake package reads the same log independently of DuckDB.
        let truth = delta_row_count(&dest.join("current").join(&name));
        assert_eq!(
            (rows, r["delta_rows"].as_u64().unwrap()),
            (truth, truth),
            "{r}"
        );
        assert_eq!(r["apart_from_delta"], 0, "{r}");
        if streams.split(',').any(|s| s == name) {
            assert!(rows > 0, "{r}");
            assert_eq!(r["raw_rows"], rows, "{r}");
            assert_eq!(r["raw_ids"], rows, "one row per id: {r}");
            assert_eq!(r["apart_from_raw"], 0, "{r}");
            tombstones += r["tombstones"].as_u64().unwrap();
            compared += rows;
        }
    }
    assert!(tombstones > 0, "no tombstone in the raw history: {report}");
    assert!(compared > 500, "only {compared} rows compared: {report}");

    // Every other dialect's output for the same destination parses in that dialect.
    let mut cases = vec![("real destination: duckdb".to_string(), Dialect::Duckdb, sql)];
    for d in Dialect::ALL.into_iter().filter(|d| *d != Dialect::Duckdb) {
        let out = extract(
            &["ddl", "--dialect", d.name(), "--destination", dest_s],
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let sql = String::from_utf8(out.stdout).unwrap();
        assert!(
            sql.to_lowercase().contains("applications_raw_latest"),
            "{sql}"
        );
        cases.push((format!("real destination: {}", d.name()), d, sql));
    }
    assert_parses(&cases);
}

// ---- a fixed layout: golden files ----------------------------------------------------------

const WIDGETS: &str = r#"
name = "widgets"
resource = "widgets"
scope = "harvest:widgets:list"
group = "Test"
description = "Every declared type."
primary_key = ["id"]
replication = { mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }
deletes = { mode = "never" }
fields = [
  { name = "id", type = "integer" },
  { name = "updated_at", type = "timestamp" },
  { name = "name", type = "string" },
  { name = "order", type = "string", nullable = true, description = "A keyword as a name." },
  { name = "score", type = "number", nullable = true },
  { name = "active", type = "boolean" },
  { name = "born_on", type = "date", nullable = true },
  { name = "tags", type = "list", items = { type = "string" } },
  { name = "owner", type = "struct", nullable = true, fields = [ { name = "id", type = "integer" }, { name = "email", type = "string", nullable = true } ] },
  { name = "custom_fields", type = "json", nullable = true },
]
"#;

const GADGETS: &str = r#"
name = "gadgets"
resource = "gadgets"
scope = "harvest:gadgets:list"
group = "Test"
description = "A dictionary without updated_at, raw history only."
primary_key = ["id"]
replication = { mode = "full_refresh", reason = "test" }
deletes = { mode = "never" }
fields = [ { name = "id", type = "integer" }, { name = "label", type = "string" } ]
"#;

fn field(name: &str, t: DataType) -> Field {
    Field::new(name, t, true)
}

fn list_of(t: DataType) -> DataType {
    DataType::List(Arc::new(Field::new("element", t, true)))
}

/// The layout every golden file describes: a table with every declared type plus typed
/// custom-field columns (as its Delta log would declare them), a raw history without a current
/// table, and a current table that is no stream's (with a struct list and a map).
fn golden_layout(url: &str) -> Layout {
    let registry = Registry::from_sources([("widgets.toml", WIDGETS), ("gadgets.toml", GADGETS)])
        .expect("test declarations");
    let raw = |name: &str, first_date: &str| {
        let stream = registry.get(name).unwrap();
        RawTable {
            name: name.into(),
            schema: greenhouse_extract::privacy::raw_schema(&BTreeMap::new(), stream),
            key: stream.primary_key.clone(),
            latest_read_only: !stream.is_incremental(),
            first_date: first_date.into(),
        }
    };
    let widgets = raw("widgets", "2025-03-01");
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut current: Vec<Field> = greenhouse_extract::current::table_schema(&widgets.schema)
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    current.extend([
        field("cf_salary", DataType::Decimal128(18, 2)),
        field("cf_salary_unit", DataType::Utf8),
        field("cf_start_date", DataType::Date32),
        field("cf_remote", DataType::Boolean),
        field("cf_skills", list_of(DataType::Utf8)),
        field("cf_recruiter", DataType::Int64),
        field("cf_score", DataType::Float64),
        field("cf_note", DataType::Utf8),
    ]);
    let entries = Field::new(
        "key_value",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, true),
        ])),
        false,
    );
    let values: SchemaRef = Arc::new(Schema::new(vec![
        field("id", DataType::Int64),
        field("object_id", DataType::Int64),
        field("name_key", DataType::Utf8),
        field("value_decimal", DataType::Decimal128(38, 6)),
        field("value_at", ts.clone()),
        field(
            "value_local",
            DataType::Timestamp(TimeUnit::Microsecond, None),
        ),
        field(
            "options",
            list_of(DataType::Struct(Fields::from(vec![
                field("id", DataType::Int64),
                field("name", DataType::Utf8),
            ]))),
        ),
        field("attributes", DataType::Map(Arc::new(entries), false)),
        field("_extracted_at", ts),
    ]));
    Layout {
        url: url.into(),
        current: vec![
            CurrentTable {
                name: "custom_field_values".into(),
                schema: values,
            },
            CurrentTable {
                name: "widgets".into(),
                schema: Arc::new(Schema::new(current)),
            },
        ],
        raw: vec![raw("gadgets", "2025-02-14"), widgets],
    }
}

fn golden_url(d: Dialect) -> &'static str {
    match d {
        Dialect::Bigquery => "gs://my-bucket/greenhouse",
        _ => "s3://my-bucket/greenhouse",
    }
}

#[test]
fn golden_files_hold_each_dialects_output_and_it_parses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ddl");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases = Vec::new();
    let mut drift = Vec::new();
    for d in Dialect::ALL {
        let sql = ddl::render(&golden_layout(golden_url(d)), d, &Options::default()).unwrap();
        let path = dir.join(format!("{}.sql", d.name()));
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &sql).unwrap();
        }
        match std::fs::read_to_string(&path) {
            Ok(golden) if golden == sql => {}
            Ok(golden) => {
                let line = golden
                    .lines()
                    .zip(sql.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(golden.lines().count().min(sql.lines().count()));
                drift.push(format!(
                    "{}: differs from line {}:\n  golden: {:?}\n  now:    {:?}",
                    path.display(),
                    line + 1,
                    golden.lines().nth(line).unwrap_or("<end>"),
                    sql.lines().nth(line).unwrap_or("<end>")
                ));
            }
            Err(e) => drift.push(format!("{}: {e}", path.display())),
        }
        // What the layout holds is in every dialect's text.
        for name in [
            "custom_field_values",
            "widgets",
            "gadgets_raw",
            "widgets_raw_latest",
        ] {
            assert!(sql.to_lowercase().contains(name), "{d:?} misses {name}");
        }
        // Where the engine does not read the columns from the Delta log, they are declared
        // from it: the custom-field columns included.
        if d == Dialect::Snowflake {
            assert!(sql.contains("\"CF_SALARY\" NUMBER(18, 2)"), "{sql}");
        }
        cases.push((format!("golden: {}", d.name()), d, sql));
    }
    assert!(
        drift.is_empty(),
        "the ddl output changed; if that is intended, run `UPDATE_GOLDEN=1 cargo test --test ddl golden` and review the diff:\n{}",
        drift.join("\n")
    );
    assert_parses(&cases);
}

#[test]
fn the_view_leaves_out_what_a_stream_does_not_have() {
    let layout = golden_layout("s3://b/p");
    let sql = ddl::render(&layout, Dialect::Duckdb, &Options::default()).unwrap();
    let view = |name: &str| {
        let start = sql
            .find(&format!("VIEW \"greenhouse\".\"{name}_raw_latest\""))
            .unwrap();
        sql[start..start + sql[start..].find(';').unwrap()].to_string()
    };
    assert!(view("widgets").contains("\"updated_at\" DESC"));
    assert!(!view("gadgets").contains("updated_at"));
    assert!(view("gadgets").contains("NOT COALESCE(\"_deleted\", FALSE)"));
    // A full-refresh stream's current state is its latest read; an incremental one's, all.
    let latest = "WHERE \"_extracted_at\" = (SELECT MAX(\"_extracted_at\") FROM";
    assert!(view("gadgets").contains(latest), "{}", view("gadgets"));
    assert!(!view("widgets").contains(latest));
    // No tombstone column leaks into the view.
    assert!(!view("widgets").contains("\"_deleted_at\""));
    // The raw history without a current table says how to build it.
    assert!(sql.contains("rebuild --streams gadgets"), "{sql}");
    // --schema, --connection and --location reach every statement.
    let o = Options {
        schema: "analytics.gh".into(),
        connection: Some("eu.lake".into()),
        location: Some("gs://other/root/".into()),
    };
    o.validate().unwrap();
    let bq = ddl::render(&layout, Dialect::Bigquery, &o).unwrap();
    assert!(bq.contains("`analytics`.`gh`.`widgets_raw`"), "{bq}");
    assert!(bq.contains("WITH CONNECTION `eu.lake`"), "{bq}");
    assert!(bq.contains("'gs://other/root/current/widgets'"), "{bq}");
    assert!(!bq.contains("s3://b/p"), "{bq}");
    for d in [Dialect::Trino, Dialect::Athena] {
        let e = ddl::render(&layout, d, &o).unwrap_err();
        assert!(e.to_string().contains("one schema name"), "{e}");
    }
    for bad in [
        Options {
            schema: "my schema".into(),
            ..Options::default()
        },
        Options {
            location: Some("s3://b/it's".into()),
            ..Options::default()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

// ---- the command's errors ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn errors_say_what_to_do_and_a_raw_history_alone_is_described() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let run = |args: &[&str]| extract(&[&["ddl"][..], args].concat(), &[]);

    let out = run(&["--dialect", "oracle", "--destination", missing]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("duckdb"), "{}", text(&out));

    let out = run(&["--dialect", "duckdb", "--destination", missing]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
    assert!(!Path::new(missing).exists(), "ddl created the destination");

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let empty = empty.to_str().unwrap();
    let out = run(&["--dialect", "trino", "--destination", empty]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("greenhouse-extract sync"),
        "{}",
        text(&out)
    );

    // A destination of raw files only (`tables = "raw"`).
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0", "--seed", "59"]);
    let raw = dir.path().join("raw");
    let raw_s = raw.to_str().unwrap();
    let config = write_config(dir.path(), r#"{"tables": "raw"}"#);
    let env = sim_env(&sim.base_url);
    let out = extract(
        &[
            "sync",
            "--config",
            &config,
            "--destination",
            raw_s,
            "--streams",
            "close_reasons",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&["--dialect", "athena", "--destination", raw_s]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("`greenhouse`.`close_reasons_raw`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rebuild --streams close_reasons"),
        "{stdout}"
    );
    assert!(!stdout.contains("'table_type' = 'DELTA'"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rebuild"), "{stderr}");

    let out = run(&[
        "--dialect",
        "spark",
        "--destination",
        raw_s,
        "--streams",
        "jobs",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("sync --streams jobs"), "{}", text(&out));
    let out = run(&[
        "--dialect",
        "spark",
        "--destination",
        raw_s,
        "--streams",
        "closereasons",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("close_reasons"),
        "the nearest name: {}",
        text(&out)
    );
    let out = run(&[
        "--dialect",
        "spark",
        "--destination",
        raw_s,
        "--schema",
        "a b",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

// ---- a bucket ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_bucket_destination_is_described_with_its_own_urls_and_policies() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0", "--seed", "61"]);
    let s3 = S3Server::start("lake");
    let mut env = sim_env(&sim.base_url);
    env.extend(s3.env());
    let dir = tempfile::tempdir().unwrap();
    // A column policy changes the raw files' columns, and so the raw tables'.
    let config = write_config(
        dir.path(),
        r#"{"exclude_columns": {"departments": ["external_id"]}}"#,
    );
    let dest = "s3://lake/gh";
    let out = extract(
        &[
            "sync",
            "--config",
            &config,
            "--destination",
            dest,
            "--streams",
            "departments,close_reasons",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ddl = |d: &str| {
        let out = extract(
            &[
                "ddl",
                "--config",
                &config,
                "--dialect",
                d,
                "--destination",
                dest,
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        // The store's credentials are never printed.
        assert!(!text(&out).contains(S3_SECRET_KEY), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    let athena = ddl("athena");
    assert!(
        athena.contains("LOCATION 's3://lake/gh/current/departments/'"),
        "{athena}"
    );
    assert!(
        athena.contains("LOCATION 's3://lake/gh/close_reasons/'"),
        "{athena}"
    );
    let raw = &athena[athena.find("`departments_raw`").unwrap()..];
    let raw = &raw[..raw.find(';').unwrap()];
    assert!(raw.contains("`name` string"), "{raw}");
    assert!(
        !raw.contains("external_id"),
        "an excluded column is declared: {raw}"
    );
    let spark = ddl("spark");
    assert!(
        spark.contains("LOCATION 's3a://lake/gh/current/departments'"),
        "{spark}"
    );
    let duckdb = ddl("duckdb");
    assert!(
        duckdb.contains("delta_scan('s3://lake/gh/current/close_reasons')"),
        "{duckdb}"
    );
}
