//! JSON list pages → Arrow record batches, typed by the stream's declaration.
//!
//! Contract:
//! - One column per declared field, in declaration order, then `_extra`, `_extracted_at` and
//!   `_run_id` ([`arrow_schema`]). Type mapping: integer → Int64, number → Float64,
//!   boolean → Boolean, string → Utf8 (enum values stay plain strings), timestamp →
//!   Timestamp(µs, "+00:00"), date → Date32, list → List(item), struct → Struct(children),
//!   json → Utf8 holding compact JSON text (field metadata `greenhouse.type = "json"`).
//! - **Nothing Greenhouse sends is dropped.** A value that has no typed home is kept, unchanged,
//!   in the row's `_extra` column: a JSON object (text) keyed by the value's path, or null when the
//!   row has nothing to keep. The path scheme:
//!   - a top-level key: `new_field`
//!   - a key inside a struct: `source.new_field` (nested structs: `a.b.c`)
//!   - inside a list element: `emails[2].new_field`; a list element itself: `tags[3]`
//!   - keys are used verbatim, so a key containing `.` or `[` can look like a nested path; on the
//!     (improbable) collision the first value filed wins.
//!
//!   Two kinds of values land there, counted separately in [`ConvertedPage`]:
//!   - `extra_fields`: keys the declaration does not know (top level, in a struct, in a list
//!     element struct);
//!   - `type_mismatches`: values whose JSON type disagrees with the declared type. The typed cell
//!     is then null. Never a silent coercion or truncation: `1.5` into an integer, `"abc"` into an
//!     integer, an object into a string, `12` into a string, an unparseable timestamp, an integer
//!     beyond i64 are all mismatches.
//! - Accepted coercions (lossless by construction): integer columns take whole floats up to 2^53
//!   (`3.0` → 3) and strings in canonical decimal form (`"42"`, `"-7"`; not `"042"`); number
//!   columns take any JSON number and finite numeric strings (`"1.5"`).
//! - Timestamps: `YYYY-MM-DD[T ]HH:MM:SS[.fraction]` with `Z`, `±HH:MM`, `±HHMM`, `±HH` or no offset
//!   (read as UTC), normalised to UTC microseconds; digits beyond microseconds are truncated.
//! - Dates: `YYYY-MM-DD`. A full timestamp in a date column stores its date *as written* (before
//!   offset normalisation) **and** keeps the original text in `_extra` as a type mismatch, because
//!   the time of day would otherwise be lost. It is the only case where a mismatch has a non-null
//!   cell.
//! - JSON columns: the value's JSON text exactly as received — Greenhouse sends compact JSON, keys
//!   in their order — (`null` → null cell); top-level ones are never parsed into a tree, nested
//!   ones are written back compactly.
//!   Integers beyond the u64 range have already become floats in the parser (serde_json without
//!   `arbitrary_precision`), so they are the one lossy case (anywhere, `_extra` included).
//! - Every declared column is nullable in Arrow. A null or absent value where the declaration says
//!   non-null is stored as null and counted in `null_violations` (a non-null field under a null
//!   struct or list is not counted: its parent is null). A mismatch is counted only as a mismatch.
//! - A body that is not a JSON array of objects is a [`ConvertError`]: the engine treats it as a
//!   bad or truncated response.
//! - Never panics on input.

mod columns;
mod json;
mod schema;
mod time;

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, SchemaRef};
use chrono::{DateTime, Utc};

use crate::registry::Stream;
use columns::{Leftovers, Pairs};
use json::{PageSeed, Record};
use serde::de::DeserializeSeed;

pub use schema::{
    DESCRIPTION_METADATA_KEY, EXTRA_COLUMN, EXTRACTED_AT_COLUMN, NULLABLE_METADATA_KEY,
    RUN_ID_COLUMN, TYPE_METADATA_KEY, UTC_TZ, arrow_schema,
};

/// Why a page could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The body is not a JSON array of objects (truncated, an error document, HTML, …).
    #[error("response body is not a JSON array of objects: {0}")]
    NotAnArrayOfObjects(#[source] serde_json::Error),
    /// Assembling the batch failed. Only reachable through a bug (schema and builders disagree).
    #[error("could not assemble the Arrow batch: {0}")]
    Arrow(#[from] ArrowError),
}

/// One converted page.
#[derive(Debug, Clone)]
pub struct ConvertedPage {
    pub batch: RecordBatch,
    pub rows: usize,
    /// Unknown keys kept in `_extra`.
    pub extra_fields: u64,
    /// Values kept in `_extra` because their type disagreed with the declaration.
    pub type_mismatches: u64,
    /// Null or absent values where the declaration says non-null.
    pub null_violations: u64,
    /// The largest value of the stream's cursor field on this page (incremental streams only;
    /// `None` for full refresh or when no row has a valid cursor).
    pub max_cursor: Option<DateTime<Utc>>,
    /// The first primary-key column's values, in page order. Rows whose key is null or
    /// mismatched are left out (they are counted as null violations / mismatches).
    pub ids: Vec<i64>,
}

/// Totals over every page a [`Converter`] has converted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertTotals {
    pub pages: u64,
    pub rows: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
}

/// Converts a stream's pages; one per stream and run.
pub struct Converter {
    stream: Stream,
    schema: SchemaRef,
    run_id: String,
    extracted_at_micros: i64,
    /// Column index of the first primary-key field.
    pk_column: Option<usize>,
    /// Column index of the cursor field (incremental streams).
    cursor_column: Option<usize>,
    /// Top-level JSON-typed fields, kept as received text instead of parsed (see `json`).
    raw_fields: Vec<String>,
    totals: ConvertTotals,
}

impl Converter {
    pub fn new(stream: &Stream, run_id: &str, extracted_at: DateTime<Utc>) -> Self {
        let column = |name: &str| stream.fields.iter().position(|f| f.name == name);
        Converter {
            stream: stream.clone(),
            schema: arrow_schema(stream),
            run_id: run_id.to_string(),
            extracted_at_micros: extracted_at.timestamp_micros(),
            pk_column: stream.primary_key.first().and_then(|pk| column(pk)),
            cursor_column: stream.cursor_field().and_then(column),
            raw_fields: stream
                .fields
                .iter()
                .filter(|f| matches!(f.ty, crate::registry::FieldType::Json))
                .map(|f| f.name.clone())
                .collect(),
            totals: ConvertTotals::default(),
        }
    }

    /// The schema of every batch this converter produces (the same `Arc`).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// A zero-row batch with the stream's schema.
    pub fn empty_batch(&self) -> RecordBatch {
        RecordBatch::new_empty(self.schema.clone())
    }

    pub fn totals(&self) -> ConvertTotals {
        self.totals
    }

    /// Converts a Harvest list response body (a JSON array of objects).
    pub fn convert_page(&mut self, body: &[u8]) -> Result<ConvertedPage, ConvertError> {
        // One UTF-8 check of the whole body, then serde_json's `str` reader, which borrows every
        // string without validating it again (its byte reader re-checks each one: ~10 % of a
        // candidate page's conversion time).
        let text = std::str::from_utf8(body).map_err(|e| {
            ConvertError::NotAnArrayOfObjects(serde::de::Error::custom(format!(
                "the body is not UTF-8: {e}"
            )))
        })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let records: Vec<Record> = PageSeed {
            raw: &self.raw_fields,
        }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(ConvertError::NotAnArrayOfObjects)?;
        let n = records.len();
        let mut left = Leftovers::new(n);
        let locs: Vec<usize> = (0..n).collect();
        let objects: Vec<Option<&Pairs>> = records.iter().map(|r| Some(r.0.as_slice())).collect();
        let children = left.gather_children(&self.stream.fields, &objects, &locs, "");
        let mut columns: Vec<ArrayRef> = left.build_children(
            &self.stream.fields,
            self.schema.fields(),
            &children,
            &locs,
            "",
        )?;

        let extra: StringArray = left
            .extra
            .iter()
            .map(|m| m.as_ref().map(serde_json::to_string).transpose())
            .collect::<Result<_, _>>()
            .map_err(|e| ArrowError::JsonError(e.to_string()))?;
        columns.push(Arc::new(extra));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![self.extracted_at_micros; n])
                .with_timezone(UTC_TZ),
        ));
        columns.push(Arc::new(StringArray::from_iter_values(
            std::iter::repeat_n(self.run_id.as_str(), n),
        )));
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;

        let max_cursor = self.cursor_column.and_then(|c| {
            let col = batch
                .column(c)
                .as_any()
                .downcast_ref::<TimestampMicrosecondArray>()?;
            col.iter().flatten().max()
        });
        let ids = self
            .pk_column
            .and_then(|c| batch.column(c).as_any().downcast_ref::<Int64Array>())
            .map(|col| col.iter().flatten().collect())
            .unwrap_or_default();

        self.totals.pages += 1;
        self.totals.rows += n as u64;
        self.totals.extra_fields += left.extra_fields;
        self.totals.type_mismatches += left.type_mismatches;
        self.totals.null_violations += left.null_violations;
        Ok(ConvertedPage {
            rows: n,
            extra_fields: left.extra_fields,
            type_mismatches: left.type_mismatches,
            null_violations: left.null_violations,
            max_cursor: max_cursor.and_then(DateTime::from_timestamp_micros),
            ids,
            batch,
        })
    }
}

#[cfg(test)]
pub(crate) mod bench;
#[cfg(test)]
pub(crate) mod tests;
