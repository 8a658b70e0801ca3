//! Arrow types → each warehouse's column types, for the columns a statement has to declare.
//!
//! Contract: every type a raw file or a current-state table can hold maps for every dialect
//! that declares columns — integers, floating point, boolean, text, binary, `Date32`,
//! timestamps (with a zone: an instant; without: a wall-clock time), decimals, lists, structs
//! and maps, nested in any way the engine accepts. A type an engine cannot declare is an error
//! naming it, never a silent `string`. DuckDB declares nothing (it reads the types from the
//! files and the Delta log), so it has no mapping here.

use arrow_schema::DataType;

use super::Dialect;

/// Why a type has no column type in a dialect.
pub type Unmappable = String;

/// The column type of `t` in `dialect`'s DDL. `quote` quotes a struct field's name as the
/// dialect's DDL wants it.
pub fn column_type(
    dialect: Dialect,
    t: &DataType,
    quote: &dyn Fn(&str) -> String,
) -> Result<String, Unmappable> {
    use DataType as D;
    let name = |s: &str| Ok(s.to_string());
    let nested = |t: &DataType| column_type(dialect, t, quote);
    match dialect {
        Dialect::Duckdb => Err("DuckDB reads column types from the files".into()),
        Dialect::Athena => match t {
            D::Int8 => name("tinyint"),
            D::Int16 => name("smallint"),
            D::Int32 => name("int"),
            D::Int64 => name("bigint"),
            D::Float32 => name("float"),
            D::Float64 => name("double"),
            D::Boolean => name("boolean"),
            D::Utf8 | D::LargeUtf8 | D::Utf8View => name("string"),
            D::Binary | D::LargeBinary | D::BinaryView => name("binary"),
            D::Date32 => name("date"),
            D::Timestamp(_, _) => name("timestamp"),
            D::Decimal128(p, s) | D::Decimal256(p, s) => decimal("decimal", *p, *s, 38),
            D::List(f) | D::LargeList(f) => Ok(format!("array<{}>", nested(f.data_type())?)),
            D::Struct(fields) => {
                let parts = fields
                    .iter()
                    .map(|f| Ok(format!("{}:{}", quote(f.name()), nested(f.data_type())?)))
                    .collect::<Result<Vec<_>, Unmappable>>()?;
                Ok(format!("struct<{}>", parts.join(",")))
            }
            D::Map(entries, _) => {
                let (k, v) = map_types(entries)?;
                Ok(format!("map<{},{}>", nested(k)?, nested(v)?))
            }
            other => Err(unmappable(dialect, other)),
        },
        Dialect::Trino => match t {
            D::Int8 => name("tinyint"),
            D::Int16 => name("smallint"),
            D::Int32 => name("integer"),
            D::Int64 => name("bigint"),
            D::Float32 => name("real"),
            D::Float64 => name("double"),
            D::Boolean => name("boolean"),
            D::Utf8 | D::LargeUtf8 | D::Utf8View => name("varchar"),
            D::Binary | D::LargeBinary | D::BinaryView => name("varbinary"),
            D::Date32 => name("date"),
            // The Hive connector declares no zone: it reads an instant stored in UTC as a
            // timestamp in UTC (its configured precision, milliseconds by default).
            D::Timestamp(_, _) => name("timestamp"),
            D::Decimal128(p, s) | D::Decimal256(p, s) => decimal("decimal", *p, *s, 38),
            D::List(f) | D::LargeList(f) => Ok(format!("array({})", nested(f.data_type())?)),
            D::Struct(fields) => {
                let parts = fields
                    .iter()
                    .map(|f| Ok(format!("{} {}", quote(f.name()), nested(f.data_type())?)))
                    .collect::<Result<Vec<_>, Unmappable>>()?;
                Ok(format!("row({})", parts.join(", ")))
            }
            D::Map(entries, _) => {
                let (k, v) = map_types(entries)?;
                Ok(format!("map({}, {})", nested(k)?, nested(v)?))
            }
            other => Err(unmappable(dialect, other)),
        },
        // External tables read Parquet as one VARIANT per row: nested values stay semi-structured
        // (ARRAY, OBJECT), scalars are cast.
        Dialect::Snowflake => match t {
            D::Int8 | D::Int16 | D::Int32 | D::Int64 => name("NUMBER(38, 0)"),
            D::Float32 | D::Float64 => name("FLOAT"),
            D::Boolean => name("BOOLEAN"),
            D::Utf8 | D::LargeUtf8 | D::Utf8View => name("VARCHAR"),
            D::Binary | D::LargeBinary | D::BinaryView => name("BINARY"),
            D::Date32 => name("DATE"),
            D::Timestamp(_, Some(_)) => name("TIMESTAMP_TZ"),
            D::Timestamp(_, None) => name("TIMESTAMP_NTZ"),
            D::Decimal128(p, s) | D::Decimal256(p, s) => decimal("NUMBER", *p, *s, 38),
            D::List(_) | D::LargeList(_) => name("ARRAY"),
            D::Struct(_) | D::Map(_, _) => name("OBJECT"),
            other => Err(unmappable(dialect, other)),
        },
        Dialect::Bigquery => match t {
            D::Int8 | D::Int16 | D::Int32 | D::Int64 => name("INT64"),
            D::Float32 | D::Float64 => name("FLOAT64"),
            D::Boolean => name("BOOL"),
            D::Utf8 | D::LargeUtf8 | D::Utf8View => name("STRING"),
            D::Binary | D::LargeBinary | D::BinaryView => name("BYTES"),
            D::Date32 => name("DATE"),
            D::Timestamp(_, Some(_)) => name("TIMESTAMP"),
            D::Timestamp(_, None) => name("DATETIME"),
            // NUMERIC holds 29 integer and 9 fractional digits; BIGNUMERIC 38 and 38.
            D::Decimal128(p, s) | D::Decimal256(p, s)
                if *s >= 0 && *s <= 9 && (*p as i16 - *s as i16) <= 29 =>
            {
                decimal("NUMERIC", *p, *s, 38)
            }
            D::Decimal128(p, s) | D::Decimal256(p, s) => decimal("BIGNUMERIC", *p, *s, 76),
            D::List(f) | D::LargeList(f) => match f.data_type() {
                D::List(_) | D::LargeList(_) => Err(format!(
                    "BigQuery has no array of arrays (a column of type {t})"
                )),
                item => Ok(format!("ARRAY<{}>", nested(item)?)),
            },
            D::Struct(fields) => {
                let parts = fields
                    .iter()
                    .map(|f| Ok(format!("{} {}", quote(f.name()), nested(f.data_type())?)))
                    .collect::<Result<Vec<_>, Unmappable>>()?;
                Ok(format!("STRUCT<{}>", parts.join(", ")))
            }
            // A Parquet map reads as its repeated key/value group.
            D::Map(entries, _) => {
                let (k, v) = map_types(entries)?;
                Ok(format!(
                    "ARRAY<STRUCT<{} {}, {} {}>>",
                    quote("key"),
                    nested(k)?,
                    quote("value"),
                    nested(v)?
                ))
            }
            other => Err(unmappable(dialect, other)),
        },
        Dialect::Spark => match t {
            D::Int8 => name("TINYINT"),
            D::Int16 => name("SMALLINT"),
            D::Int32 => name("INT"),
            D::Int64 => name("BIGINT"),
            D::Float32 => name("FLOAT"),
            D::Float64 => name("DOUBLE"),
            D::Boolean => name("BOOLEAN"),
            D::Utf8 | D::LargeUtf8 | D::Utf8View => name("STRING"),
            D::Binary | D::LargeBinary | D::BinaryView => name("BINARY"),
            D::Date32 => name("DATE"),
            D::Timestamp(_, Some(_)) => name("TIMESTAMP"),
            D::Timestamp(_, None) => name("TIMESTAMP_NTZ"),
            D::Decimal128(p, s) | D::Decimal256(p, s) => decimal("DECIMAL", *p, *s, 38),
            D::List(f) | D::LargeList(f) => Ok(format!("ARRAY<{}>", nested(f.data_type())?)),
            D::Struct(fields) => {
                let parts = fields
                    .iter()
                    .map(|f| Ok(format!("{}: {}", quote(f.name()), nested(f.data_type())?)))
                    .collect::<Result<Vec<_>, Unmappable>>()?;
                Ok(format!("STRUCT<{}>", parts.join(", ")))
            }
            D::Map(entries, _) => {
                let (k, v) = map_types(entries)?;
                Ok(format!("MAP<{}, {}>", nested(k)?, nested(v)?))
            }
            other => Err(unmappable(dialect, other)),
        },
    }
}

fn decimal(keyword: &str, p: u8, s: i8, max: u8) -> Result<String, Unmappable> {
    if p == 0 || p > max || s < 0 || s as u8 > p {
        return Err(format!("{keyword}({p}, {s}) is out of range"));
    }
    Ok(format!("{keyword}({p}, {s})"))
}

fn map_types(entries: &arrow_schema::FieldRef) -> Result<(&DataType, &DataType), Unmappable> {
    match entries.data_type() {
        DataType::Struct(kv) if kv.len() == 2 => Ok((kv[0].data_type(), kv[1].data_type())),
        other => Err(format!("a map whose entries are {other}")),
    }
}

fn unmappable(dialect: Dialect, t: &DataType) -> Unmappable {
    format!("{} has no column type for {t}", dialect.label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{Field, Fields, TimeUnit};
    use std::sync::Arc;

    fn every_type() -> Vec<DataType> {
        let item = Arc::new(Field::new("element", DataType::Utf8, true));
        let row = Fields::from(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::List(item.clone()), true),
        ]);
        let entries = Arc::new(Field::new(
            "key_value",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Float64, true),
            ])),
            false,
        ));
        vec![
            DataType::Int64,
            DataType::Int32,
            DataType::Float64,
            DataType::Boolean,
            DataType::Utf8,
            DataType::Binary,
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Decimal128(18, 2),
            DataType::List(item),
            DataType::Struct(row.clone()),
            DataType::List(Arc::new(Field::new("element", DataType::Struct(row), true))),
            DataType::Map(entries, false),
        ]
    }

    #[test]
    fn every_type_a_table_holds_maps_in_every_declaring_dialect() {
        let q = |s: &str| format!("`{s}`");
        for d in Dialect::ALL {
            if d == Dialect::Duckdb {
                continue;
            }
            for t in every_type() {
                let got = column_type(d, &t, &q);
                assert!(got.is_ok(), "{d:?} {t}: {got:?}");
            }
        }
    }

    #[test]
    fn the_types_read_as_each_engine_spells_them() {
        let q = |s: &str| format!("\"{s}\"");
        let ty = |d, t: DataType| column_type(d, &t, &q).unwrap();
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()));
        assert_eq!(ty(Dialect::Athena, ts.clone()), "timestamp");
        assert_eq!(ty(Dialect::Snowflake, ts.clone()), "TIMESTAMP_TZ");
        assert_eq!(ty(Dialect::Bigquery, ts.clone()), "TIMESTAMP");
        assert_eq!(ty(Dialect::Spark, ts), "TIMESTAMP");
        assert_eq!(
            ty(Dialect::Bigquery, DataType::Decimal128(18, 2)),
            "NUMERIC(18, 2)"
        );
        assert_eq!(
            ty(Dialect::Bigquery, DataType::Decimal128(38, 12)),
            "BIGNUMERIC(38, 12)"
        );
        assert_eq!(
            ty(Dialect::Trino, DataType::Decimal128(18, 4)),
            "decimal(18, 4)"
        );
        let list = DataType::List(Arc::new(Field::new("item", DataType::Int64, true)));
        assert_eq!(ty(Dialect::Trino, list.clone()), "array(bigint)");
        assert_eq!(ty(Dialect::Athena, list.clone()), "array<bigint>");
        assert_eq!(ty(Dialect::Snowflake, list), "ARRAY");
        // What an engine cannot declare is an error that says so.
        let nested = DataType::List(Arc::new(Field::new(
            "item",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        )));
        let e = column_type(Dialect::Bigquery, &nested, &q).unwrap_err();
        assert!(e.contains("array of arrays"), "{e}");
        let e = column_type(Dialect::Spark, &DataType::Float16, &q).unwrap_err();
        assert!(e.contains("Spark"), "{e}");
        assert!(column_type(Dialect::Athena, &DataType::Decimal256(60, 2), &q).is_err());
    }
}
