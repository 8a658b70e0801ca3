//! Tombstone rows: how a delete is written into a stream's own files.
//!
//! Contract: a tombstone has the stream's schema; its primary key holds the deleted id,
//! `_deleted` is true, `_deleted_at` / `_deleted_by` / `_merged_into` say when and how the
//! delete was learned, `_extracted_at` / `_run_id` are the writing run's, and every other column
//! is null. Records read from the API carry `_deleted = false` and null in the other three
//! ([`live_columns`]), so one schema serves both.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    new_null_array,
};
use arrow_schema::{ArrowError, DataType, SchemaRef};
use chrono::{DateTime, Utc};

use super::schema::{
    DELETED_AT_COLUMN, DELETED_BY_COLUMN, DELETED_COLUMN, EXTRACTED_AT_COLUMN, MERGED_INTO_COLUMN,
    RUN_ID_COLUMN, UTC_TZ, timestamp_type,
};
use crate::state::ids::Deleted;

/// The four tombstone columns of `n` records read from the API.
pub(super) fn live_columns(n: usize) -> [ArrayRef; 4] {
    [
        Arc::new(BooleanArray::from(vec![false; n])),
        new_null_array(&timestamp_type(), n),
        new_null_array(&DataType::Utf8, n),
        new_null_array(&DataType::Int64, n),
    ]
}

/// Tombstones for `rows` in `schema` (a stream's schema, after any column policy), keyed by
/// column `key` (the stream's integer primary key).
pub fn tombstone_batch(
    schema: &SchemaRef,
    key: &str,
    rows: &[Deleted],
    run_id: &str,
    extracted_at: DateTime<Utc>,
) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match f.name().as_str() {
                name if name == key => {
                    Arc::new(Int64Array::from_iter_values(rows.iter().map(|d| d.id)))
                }
                DELETED_COLUMN => Arc::new(BooleanArray::from(vec![true; n])),
                DELETED_AT_COLUMN => Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|d| d.at_micros))
                        .with_timezone(UTC_TZ),
                ),
                DELETED_BY_COLUMN => Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|d| d.by.as_str()),
                )),
                MERGED_INTO_COLUMN => {
                    Arc::new(Int64Array::from_iter(rows.iter().map(|d| d.merged_into)))
                }
                EXTRACTED_AT_COLUMN => Arc::new(
                    TimestampMicrosecondArray::from(vec![extracted_at.timestamp_micros(); n])
                        .with_timezone(UTC_TZ),
                ),
                RUN_ID_COLUMN => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                    run_id, n,
                ))),
                _ => new_null_array(f.data_type(), n),
            }
        })
        .collect();
    RecordBatch::try_new(schema.clone(), columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ids::DeletedBy;
    use arrow_array::Array;

    #[test]
    fn a_tombstone_has_the_key_the_delete_columns_and_nulls() {
        let registry = crate::registry::Registry::embedded().unwrap();
        let stream = registry.get("candidates").unwrap();
        let schema = super::super::arrow_schema(stream);
        let rows = [Deleted {
            id: 42,
            at_micros: 1_000_000,
            by: DeletedBy::Webhook,
            merged_into: Some(7),
        }];
        let at = DateTime::from_timestamp_micros(5_000_000).unwrap();
        let b = tombstone_batch(&schema, "id", &rows, "run-1", at).unwrap();
        assert_eq!(b.num_rows(), 1);
        let col = |n: &str| b.column(schema.index_of(n).unwrap()).clone();
        assert_eq!(
            col("id")
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            42
        );
        assert!(
            col(DELETED_COLUMN)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .unwrap()
                .value(0)
        );
        assert_eq!(
            col(DELETED_BY_COLUMN)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .value(0),
            "webhook"
        );
        assert_eq!(
            col(MERGED_INTO_COLUMN)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0),
            7
        );
        assert!(col("first_name").is_null(0) && col("updated_at").is_null(0));
        assert!(col(EXTRACTED_AT_COLUMN).is_valid(0) && col(RUN_ID_COLUMN).is_valid(0));
    }
}
