//! Declared stream schema → Arrow schema.
//!
//! The mapping is fixed and documented in [`crate::convert`]. Every declared column is nullable in
//! Arrow: a declaration that says "never null" is a promise Greenhouse may break, and a broken
//! promise must be counted (`null_violations`), not abort a sync. The declared type and
//! nullability travel with each field as metadata, so a reader of the Parquet file can still see
//! what was declared.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field as ArrowField, FieldRef, Fields, Schema, SchemaRef, TimeUnit};

use crate::registry::{Field, FieldType, Stream, ValueType};

/// Row-level leftovers: a JSON object (as text) with every value that could not be stored in a
/// typed column, keyed by its path; null when the row had none.
pub const EXTRA_COLUMN: &str = "_extra";
/// When the run started extracting (UTC, microseconds); the same for every row of a run.
pub const EXTRACTED_AT_COLUMN: &str = "_extracted_at";
/// The run's id (a UUID v7 string from the engine).
pub const RUN_ID_COLUMN: &str = "_run_id";
/// True on a tombstone: a row saying the record with this id no longer exists in Greenhouse
/// (every declared column but the key is null). False on every record read from the API.
pub const DELETED_COLUMN: &str = "_deleted";
/// When the extractor learned of the delete (tombstones only).
pub const DELETED_AT_COLUMN: &str = "_deleted_at";
/// How the delete was learned: `reconcile`, `cascade` or `webhook` (tombstones only).
pub const DELETED_BY_COLUMN: &str = "_deleted_by";
/// The record this one was merged into, when known (a candidate merge).
pub const MERGED_INTO_COLUMN: &str = "_merged_into";

/// Field metadata key holding the declared type (`integer`, `list<struct>`, `json`, …).
pub const TYPE_METADATA_KEY: &str = "greenhouse.type";
/// Field metadata key, present with value `"false"` when the declaration says the field is never
/// null (the Arrow field is nullable anyway, see the module docs).
pub const NULLABLE_METADATA_KEY: &str = "greenhouse.nullable";
/// Field metadata key holding the declaration's description, when it has one.
pub const DESCRIPTION_METADATA_KEY: &str = "greenhouse.description";

/// The timezone of every timestamp column: a fixed offset rather than `"UTC"`, because named
/// zones need arrow's `chrono-tz` feature in readers built without it.
pub const UTC_TZ: &str = "+00:00";

/// The top-level columns of `schema` whose values are (nearly) unique per row, so that a
/// Parquet dictionary for them would be hashed value by value only to be abandoned when it
/// outgrows its page: the key columns (`keys`), timestamps and JSON text (`_extra` among it).
/// Both writers (raw files and current tables) encode these plain.
pub fn plain_columns<'s>(schema: &'s Schema, keys: &'s [&str]) -> impl Iterator<Item = &'s str> {
    schema
        .fields()
        .iter()
        .filter(|f| {
            keys.contains(&f.name().as_str())
                || f.name() == EXTRA_COLUMN
                || matches!(f.data_type(), DataType::Timestamp(..))
                || f.metadata()
                    .get(TYPE_METADATA_KEY)
                    .is_some_and(|t| t == "json")
        })
        .map(|f| f.name().as_str())
}

/// The Arrow schema of a stream's batches: the declared fields in declaration order, then
/// `_extra`, `_extracted_at`, `_run_id` and the tombstone columns (`_deleted`, `_deleted_at`,
/// `_deleted_by`, `_merged_into`).
pub fn arrow_schema(stream: &Stream) -> SchemaRef {
    let mut fields: Vec<FieldRef> = stream.fields.iter().map(arrow_field).collect();
    fields.push(Arc::new(ArrowField::new(
        EXTRA_COLUMN,
        DataType::Utf8,
        true,
    )));
    fields.push(Arc::new(ArrowField::new(
        EXTRACTED_AT_COLUMN,
        timestamp_type(),
        false,
    )));
    fields.push(Arc::new(ArrowField::new(
        RUN_ID_COLUMN,
        DataType::Utf8,
        false,
    )));
    fields.push(Arc::new(ArrowField::new(
        DELETED_COLUMN,
        DataType::Boolean,
        false,
    )));
    fields.push(Arc::new(ArrowField::new(
        DELETED_AT_COLUMN,
        timestamp_type(),
        true,
    )));
    fields.push(Arc::new(ArrowField::new(
        DELETED_BY_COLUMN,
        DataType::Utf8,
        true,
    )));
    fields.push(Arc::new(ArrowField::new(
        MERGED_INTO_COLUMN,
        DataType::Int64,
        true,
    )));
    Arc::new(Schema::new(fields))
}

pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC_TZ.into()))
}

/// The Arrow field of a declared field (always nullable, see the module docs).
pub(crate) fn arrow_field(field: &Field) -> FieldRef {
    let mut metadata = type_metadata(&field.ty, field.nullable);
    if let Some(d) = &field.description {
        metadata.insert(DESCRIPTION_METADATA_KEY.to_string(), d.clone());
    }
    Arc::new(ArrowField::new(&field.name, data_type(&field.ty), true).with_metadata(metadata))
}

fn item_field(item: &ValueType) -> FieldRef {
    Arc::new(
        ArrowField::new("item", data_type(&item.ty), true)
            .with_metadata(type_metadata(&item.ty, item.nullable)),
    )
}

fn type_metadata(ty: &FieldType, nullable: bool) -> HashMap<String, String> {
    let mut m = HashMap::with_capacity(2);
    m.insert(TYPE_METADATA_KEY.to_string(), ty.to_string());
    if !nullable {
        m.insert(NULLABLE_METADATA_KEY.to_string(), "false".to_string());
    }
    m
}

/// The Arrow type of a declared type.
pub(crate) fn data_type(ty: &FieldType) -> DataType {
    match ty {
        FieldType::Integer => DataType::Int64,
        FieldType::Number => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::String { .. } | FieldType::Json => DataType::Utf8,
        FieldType::Timestamp => timestamp_type(),
        FieldType::Date => DataType::Date32,
        FieldType::List(item) => DataType::List(item_field(item)),
        FieldType::Struct(children) => {
            DataType::Struct(children.iter().map(arrow_field).collect::<Fields>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::tests::stream;

    #[test]
    fn keys_timestamps_and_json_text_are_plain_columns() {
        let schema = Schema::new(vec![
            ArrowField::new("id", DataType::Int64, true),
            ArrowField::new("name", DataType::Utf8, true),
            ArrowField::new("custom_fields", DataType::Utf8, true)
                .with_metadata([(TYPE_METADATA_KEY.to_string(), "json".to_string())].into()),
            ArrowField::new(EXTRA_COLUMN, DataType::Utf8, true),
            ArrowField::new("updated_at", timestamp_type(), true),
            ArrowField::new("count", DataType::Int64, true),
        ]);
        let plain: Vec<&str> = plain_columns(&schema, &["id"]).collect();
        assert_eq!(plain, ["id", "custom_fields", EXTRA_COLUMN, "updated_at"]);
    }

    #[test]
    fn maps_every_declared_type_and_appends_the_extractor_columns() {
        let s = stream();
        let schema = arrow_schema(&s);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let declared: Vec<&str> = s.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(&names[..declared.len()], &declared[..]);
        assert_eq!(
            &names[declared.len()..],
            &[
                EXTRA_COLUMN,
                EXTRACTED_AT_COLUMN,
                RUN_ID_COLUMN,
                DELETED_COLUMN,
                DELETED_AT_COLUMN,
                DELETED_BY_COLUMN,
                MERGED_INTO_COLUMN
            ]
        );
        let dt = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
        assert_eq!(dt("id"), DataType::Int64);
        assert_eq!(dt("score"), DataType::Float64);
        assert_eq!(dt("active"), DataType::Boolean);
        assert_eq!(dt("name"), DataType::Utf8);
        assert_eq!(dt("updated_at"), timestamp_type());
        assert_eq!(dt("born_on"), DataType::Date32);
        assert_eq!(dt("custom_fields"), DataType::Utf8);
        match dt("tags") {
            DataType::List(item) => assert_eq!(item.data_type(), &DataType::Utf8),
            other => panic!("tags is {other:?}"),
        }
        match dt("emails") {
            DataType::List(item) => match item.data_type() {
                DataType::Struct(children) => assert_eq!(children.len(), 2),
                other => panic!("emails item is {other:?}"),
            },
            other => panic!("emails is {other:?}"),
        }
        assert!(matches!(dt("source"), DataType::Struct(_)));
        // Declared columns are nullable in Arrow; the extractor columns say what they are.
        for f in &schema.fields()[..declared.len()] {
            assert!(f.is_nullable(), "{}", f.name());
        }
        assert!(schema.field_with_name(EXTRA_COLUMN).unwrap().is_nullable());
        assert!(
            !schema
                .field_with_name(EXTRACTED_AT_COLUMN)
                .unwrap()
                .is_nullable()
        );
        assert!(!schema.field_with_name(RUN_ID_COLUMN).unwrap().is_nullable());
    }

    #[test]
    fn fields_carry_the_declared_type_as_metadata() {
        let schema = arrow_schema(&stream());
        let md = |n: &str| schema.field_with_name(n).unwrap().metadata().clone();
        assert_eq!(md("custom_fields")[TYPE_METADATA_KEY], "json");
        assert_eq!(md("id")[TYPE_METADATA_KEY], "integer");
        assert_eq!(md("id")[NULLABLE_METADATA_KEY], "false");
        assert!(!md("name").contains_key(NULLABLE_METADATA_KEY));
        assert_eq!(md("tags")[TYPE_METADATA_KEY], "list<string>");
        assert_eq!(md("name")[DESCRIPTION_METADATA_KEY], "Display name.");
    }
}
