//! Typed custom-field columns: after a sync of the simulator, DuckDB (its `delta` extension)
//! reads every stream's `cf_*` columns with the type their definition's `value_type` names,
//! and their values equal the simulator's truth field by field, for every stream that
//! declares custom fields; `current/custom_field_values` holds exactly the truth's non-null
//! values in long format; and a custom field created between two runs becomes a new column
//! with its values on the next run.

mod harness;
mod support;

use std::collections::BTreeMap;
use std::path::Path;

use harness::*;
use serde_json::{Value, json};
use support::Sim;

const STREAMS: &str =
    "candidates,applications,jobs,offers,openings,users,rejection_details,custom_fields";

/// A decimal as DuckDB prints a `DECIMAL(18,4)`: four digits after the point.
fn dec4(v: &Value) -> Value {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Value::Null,
    };
    let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
    json!(format!("{int}.{frac:0<4}"))
}

/// Wide columns (name, value as DuckDB returns it, DuckDB type) and long columns (name, value).
type Expected = (Vec<(String, Value, &'static str)>, LongColumns);
type LongColumns = Vec<(&'static str, Value)>;

/// The typed columns one truth value gives, and the long table's columns for it.
fn expected(key: &str, value_type: &str, v: &Value) -> Expected {
    let c = format!("cf_{key}");
    let null = v.is_null();
    let get = |k: &str| if null { Value::Null } else { v[k].clone() };
    match value_type {
        "currency" => (
            vec![
                (c.clone(), dec4(&get("amount")), "DECIMAL(18,4)"),
                (format!("{c}_unit"), get("unit"), "VARCHAR"),
            ],
            vec![
                ("value_decimal", dec4(&get("amount"))),
                ("value_unit", get("unit")),
            ],
        ),
        "currency_range" => (
            vec![
                (format!("{c}_min"), dec4(&get("min_value")), "DECIMAL(18,4)"),
                (format!("{c}_max"), dec4(&get("max_value")), "DECIMAL(18,4)"),
                (format!("{c}_unit"), get("unit"), "VARCHAR"),
            ],
            vec![
                ("value_decimal_min", dec4(&get("min_value"))),
                ("value_decimal_max", dec4(&get("max_value"))),
                ("value_unit", get("unit")),
            ],
        ),
        "number" => {
            let f = v.as_f64().map_or(Value::Null, |f| json!(f));
            (vec![(c, f.clone(), "DOUBLE")], vec![("value_number", f)])
        }
        "date" => (
            vec![(c, v.clone(), "DATE")],
            vec![("value_date", v.clone())],
        ),
        "yes_no" => (
            vec![(c, v.clone(), "BOOLEAN")],
            vec![("value_bool", v.clone())],
        ),
        "multi_select" => (
            vec![(c, v.clone(), "VARCHAR[]")],
            vec![("value_list", v.clone())],
        ),
        "user" => (
            vec![(c, get("user_id"), "BIGINT")],
            vec![("value_user_id", get("user_id"))],
        ),
        _ => (
            vec![(c, v.clone(), "VARCHAR")],
            vec![("value_text", v.clone())],
        ),
    }
}

/// Every custom-field stream's table and the long table against the truth; returns the
/// number of values compared.
async fn assert_custom_fields_match(sim: &Sim, dest: &Path) -> usize {
    let registry = registry();
    let defs = sim.truth("custom_fields").await;
    let streams: Vec<_> = registry
        .streams()
        .iter()
        .filter(|s| s.custom_fields.is_some())
        .collect();
    assert!(
        streams.len() >= 7,
        "custom-field streams: {}",
        streams.len()
    );
    let mut queries = Vec::new();
    for s in &streams {
        let dir = dest.join("current").join(&s.name);
        queries.push(format!(
            "DESCRIBE SELECT * FROM delta_scan('{}')",
            dir.display()
        ));
        // Timestamps stay out (the venv's DuckDB would need pytz to hand them to Python).
        queries.push(format!(
            "SELECT COLUMNS('^(id|_extra|cf_.*)$') FROM delta_scan('{}')",
            dir.display()
        ));
    }
    let long_dir = dest.join("current").join("custom_field_values");
    queries.push(format!(
        "DESCRIBE SELECT * FROM delta_scan('{}')",
        long_dir.display()
    ));
    queries.push(format!(
        "SELECT * FROM delta_scan('{}')",
        long_dir.display()
    ));
    let results = duckdb_delta_query(&queries);

    let mut problems = Vec::new();
    let mut compared = 0;
    let mut long_expected: BTreeMap<(String, i64, String), LongColumns> = BTreeMap::new();
    for (i, s) in streams.iter().enumerate() {
        let cf = s.custom_fields.as_ref().unwrap();
        let types: BTreeMap<String, String> = results[2 * i]
            .iter()
            .map(|r| {
                (
                    r["column_name"].as_str().unwrap().to_string(),
                    r["column_type"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let rows: BTreeMap<i64, &Value> = results[2 * i + 1]
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r))
            .collect();
        let fields: Vec<(&str, &str)> = defs
            .iter()
            .filter(|d| d["field_type"] == cf.object_type.as_str())
            .map(|d| {
                (
                    d["name_key"].as_str().unwrap(),
                    d["value_type"].as_str().unwrap(),
                )
            })
            .collect();
        assert!(
            !fields.is_empty(),
            "{}: no custom fields in the truth",
            s.name
        );
        for (key, vt) in &fields {
            for (col, _, ty) in expected(key, vt, &Value::Null).0 {
                if types.get(&col).map(String::as_str) != Some(ty) {
                    problems.push(format!(
                        "{}: column {col} is {:?}, expected {ty}",
                        s.name,
                        types.get(&col)
                    ));
                }
            }
        }
        let truth = expected_rows(sim, s).await;
        assert_eq!(rows.len(), truth.len(), "{}: rows", s.name);
        for t in &truth {
            let id = t["id"].as_i64().unwrap();
            let Some(row) = rows.get(&id) else {
                problems.push(format!("{} id {id}: missing", s.name));
                continue;
            };
            for (key, vt) in &fields {
                let v = &t[&cf.field][*key]["value"];
                let (cols, long) = expected(key, vt, v);
                for (col, want, _) in cols {
                    compared += 1;
                    if row[&col] != want {
                        problems.push(format!(
                            "{} id {id} {col}: truth {want} != table {}",
                            s.name, row[&col]
                        ));
                    }
                }
                if !v.is_null() {
                    long_expected.insert((cf.object_type.clone(), id, key.to_string()), long);
                }
            }
            if !row["_extra"].is_null() {
                problems.push(format!("{} id {id}: _extra {}", s.name, row["_extra"]));
            }
        }
    }
    // The long table: exactly the truth's non-null values.
    let long_types: BTreeMap<String, String> = results[results.len() - 2]
        .iter()
        .map(|r| {
            (
                r["column_name"].as_str().unwrap().to_string(),
                r["column_type"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(long_types["value_decimal"], "DECIMAL(18,4)");
    assert_eq!(long_types["value_list"], "VARCHAR[]");
    let long_rows = &results[results.len() - 1];
    let mut seen = 0;
    for r in long_rows {
        let k = (
            r["object_type"].as_str().unwrap().to_string(),
            r["record_id"].as_i64().unwrap(),
            r["name_key"].as_str().unwrap().to_string(),
        );
        let Some(want) = long_expected.get(&k) else {
            problems.push(format!("custom_field_values: {k:?} is not in the truth"));
            continue;
        };
        seen += 1;
        for (col, v) in want {
            compared += 1;
            if &r[*col] != v {
                problems.push(format!(
                    "custom_field_values {k:?} {col}: truth {v} != {}",
                    r[*col]
                ));
            }
        }
    }
    if seen != long_expected.len() || long_rows.len() != long_expected.len() {
        problems.push(format!(
            "custom_field_values: {} rows, {} expected",
            long_rows.len(),
            long_expected.len()
        ));
    }
    assert!(
        problems.is_empty(),
        "{} problems, first ones:\n{}",
        problems.len(),
        problems
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    compared
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_fields_are_typed_columns_and_long_rows_equal_to_the_truth() {
    let sim = Sim::start(&["--scale", "0.3", "--rate-limit", "0", "--seed", "23"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest_s = dest.to_str().unwrap();
    let env = [sim_env(&sim.base_url), vec![no_signpost_skew()]].concat();
    let sync = |env: &[(String, String)]| {
        let out = extract(
            &[
                "sync",
                "--destination",
                dest_s,
                "--streams",
                STREAMS,
                "--include-sensitive",
            ],
            env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    };
    sync(&env);
    let compared = assert_custom_fields_match(&sim, &dest).await;
    assert!(compared > 5_000, "only {compared} values compared");

    // A custom field is created and candidates are updated (and one inserted): the next run
    // gives the field its own typed column, filled for the records that carry it.
    let before = sim.truth("custom_fields").await.len();
    sim_mutate(
        &sim,
        "resources=custom_fields,candidates&inserts=1&updates=8&seed=4",
    )
    .await;
    let defs = sim.truth("custom_fields").await;
    assert_eq!(defs.len(), before + 1);
    let added = defs
        .iter()
        .map(|d| d["name_key"].as_str().unwrap().to_string())
        .find(|k| k.starts_with("added_field_"))
        .expect("the new field");
    sync(&env);
    assert_custom_fields_match(&sim, &dest).await;
    let filled = duckdb_delta_query(&[format!(
        "SELECT count(cf_{added}) AS n FROM delta_scan('{}')",
        dest.join("current/candidates").display()
    )]);
    let n = filled[0][0]["n"].as_i64().unwrap();
    assert!(n >= 8, "the new field's column holds {n} values");
}
