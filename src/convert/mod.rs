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
//!   - `type_mismatches`: values the typed column cannot hold exactly. Usually the JSON type
//!     disagrees with the declared type and the typed cell is null: `1.5` into an integer,
//!     `"abc"` into an integer, an object into a string, `12` into a string, an unparseable
//!     timestamp, an integer beyond i64. Never a silent coercion or truncation. When the column
//!     can hold a faithful *reading* of the value but not all of its text, the cell is filled
//!     **and** the original kept and counted: numeric text that is not canonical, a timestamp
//!     with sub-microsecond digits or without an offset, a full timestamp in a date column, a
//!     string with a lone surrogate.
//! - Strings in numeric columns follow one rule (integer and number alike, `columns::numeric_text`):
//!   numeric text (`-`? digits, leading zeros allowed, `.digits`?, `e±digits`?) is stored when
//!   the column holds its value exactly (`"4000000001"`, `"0042"`, `"1e3"` → integers; `"1.5"` →
//!   a number); the text is also kept in `_extra` unless it is the value's canonical spelling
//!   (`"42"`, `"1.5"`; not `"0042"`, `"1.0"`, `"2e3"`). Anything else (`"+1"`, `" 1"`, `"NaN"`,
//!   `"1.5"` for an integer) is a mismatch. Integer columns also take whole floats up to 2^53.
//! - Timestamps: `YYYY-MM-DD[T ]HH:MM:SS[.fraction]` with `Z`, `±HH:MM`, `±HHMM`, `±HH` or no offset,
//!   normalised to UTC microseconds. Non-zero digits beyond microseconds are cut from the cell and
//!   an offset-less value is read as UTC; either way the text as sent is kept in `_extra`.
//! - Dates: `YYYY-MM-DD`. A full timestamp in a date column stores its date *as written* (before
//!   offset normalisation) and keeps the original text in `_extra`, since the time of day would
//!   otherwise be lost.
//! - Lone UTF-16 surrogate escapes (`"\ud83d"`, a truncated emoji), which a strict JSON reader
//!   refuses, are read leniently when a page fails to parse (`repair`): U+FFFD in a string cell,
//!   the string's source text (escapes as written) in `_extra`, counted; JSON columns keep the
//!   text as received. In object keys and unknown fields they become U+FFFD.
//! - A record whose primary key is absent, null or not of its type is never written with a NULL
//!   key: it leaves the batch and is returned whole in [`ConvertedPage::quarantined`].
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
mod page;
mod repair;
mod schema;
mod time;
mod tombstone;

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{ArrowError, SchemaRef};
use chrono::{DateTime, Utc};

use crate::registry::Stream;
use json::{PageSeed, Record};
use page::{Leftovers, Reader};
use repair::Repairs;
use serde::de::DeserializeSeed;

/// An object key that borrows from the text when it has no escapes (serde's `Cow<str>` always
/// copies): for other borrowing readers of Harvest's JSON.
pub(crate) use json::Key as BorrowedKey;
pub use schema::{
    DELETED_AT_COLUMN, DELETED_BY_COLUMN, DELETED_COLUMN, DESCRIPTION_METADATA_KEY, EXTRA_COLUMN,
    EXTRACTED_AT_COLUMN, MERGED_INTO_COLUMN, NULLABLE_METADATA_KEY, RUN_ID_COLUMN,
    TYPE_METADATA_KEY, UTC_TZ, arrow_schema, plain_columns,
};
pub use tombstone::tombstone_batch;

/// `text` with every lone UTF-16 surrogate escape replaced by `\ufffd` (same length), or `None`
/// when it has none: the lenient reading the converter falls back to, for other readers of a
/// page (the protocol output).
pub fn repair_lone_surrogates(text: &str) -> Option<String> {
    repair::lone_surrogates(text).map(|r| r.text)
}

/// A primary-key value as the converter reads an integer key (JSON integers, whole floats,
/// numeric text such as `"007"`), or `None` when the record has no usable key there (absent,
/// null, `"abc"`): the one rule both outputs quarantine by.
pub fn integer_key(value: &serde_json::Value) -> Option<i64> {
    use serde_json::Value;
    let json = match value {
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => json::Json::U64(u),
            (None, Some(i), _) => json::Json::I64(i),
            (None, None, Some(f)) => json::Json::F64(f),
            _ => return None,
        },
        Value::String(s) => json::Json::Str(s.as_str().into()),
        _ => return None,
    };
    columns::to_i64(&json).map(|(n, _)| n)
}

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
    /// The first primary-key column's values, in page order, one per row of `batch`.
    pub ids: Vec<i64>,
    /// The declared cascade fields' values of each row of `ids` (one column per field,
    /// [`crate::state::ids::NULL_REF`] for null or not an integer).
    pub refs: Vec<Vec<i64>>,
    /// Records left out of `batch` because a primary-key value is absent, null or not of its
    /// type, each as compact JSON text (keys in the order received; a repaired lone surrogate
    /// as U+FFFD). The caller files them somewhere visible.
    pub quarantined: Vec<String>,
}

/// Totals over every page a [`Converter`] has converted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConvertTotals {
    pub pages: u64,
    pub rows: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
    pub quarantined: u64,
}

/// Converts a stream's pages; one per stream and run.
pub struct Converter {
    stream: Stream,
    schema: SchemaRef,
    run_id: String,
    extracted_at_micros: i64,
    /// Column index of the first primary-key field.
    pk_column: Option<usize>,
    /// Column indices of every primary-key field.
    pk_columns: Vec<usize>,
    /// Column index of the cursor field (incremental streams).
    cursor_column: Option<usize>,
    /// Column indices of the declared cascade fields (`None`: not an integer field).
    ref_columns: Vec<Option<usize>>,
    /// Top-level JSON-typed fields, kept as received text instead of parsed (see `json`).
    raw_fields: Vec<String>,
    /// The previous page's row count: sizes the next page's builders.
    rows_hint: usize,
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
            pk_columns: stream
                .primary_key
                .iter()
                .filter_map(|pk| column(pk))
                .collect(),
            cursor_column: stream.cursor_field().and_then(column),
            ref_columns: stream
                .deletes
                .cascade
                .iter()
                .map(|c| column(&c.field))
                .collect(),
            raw_fields: stream
                .fields
                .iter()
                .filter(|f| matches!(f.ty, crate::registry::FieldType::Json))
                .map(|f| f.name.clone())
                .collect(),
            rows_hint: 64,
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

    /// The stream's (first) primary-key column.
    pub fn primary_key(&self) -> Option<&str> {
        self.stream.primary_key.first().map(String::as_str)
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The `_extracted_at` of this converter's rows.
    pub fn extracted_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.extracted_at_micros).unwrap_or_default()
    }

    pub fn totals(&self) -> ConvertTotals {
        self.totals
    }

    /// Converts a Harvest list response body (a JSON array of objects).
    pub fn convert_page(&mut self, body: &[u8]) -> Result<ConvertedPage, ConvertError> {
        // One UTF-8 check of the whole body, then serde_json's `str` reader, which borrows every
        // string without validating it again (its byte reader re-checks each one: ~10 % of a
        // candidate page's conversion time).
        // SIMD validation first; on failure std's, for an error that says where.
        let text = match simdutf8::basic::from_utf8(body) {
            Ok(text) => text,
            Err(_) => std::str::from_utf8(body).map_err(|e| {
                ConvertError::NotAnArrayOfObjects(serde::de::Error::custom(format!(
                    "the body is not UTF-8: {e}"
                )))
            })?,
        };
        match self.convert_text(text, None) {
            // A lone surrogate escape is the one defect serde_json refuses that a lenient
            // reading can fix without guessing (see `repair`); only a failed page is scanned.
            Err(ConvertError::NotAnArrayOfObjects(e)) => match repair::lone_surrogates(text) {
                Some(repaired) => {
                    let repairs = Repairs::new(text, &repaired);
                    self.convert_text(&repaired.text, Some(repairs))
                }
                None => Err(ConvertError::NotAnArrayOfObjects(e)),
            },
            other => other,
        }
    }

    fn convert_text(
        &mut self,
        text: &str,
        repairs: Option<Repairs>,
    ) -> Result<ConvertedPage, ConvertError> {
        // One pass: values go from the text straight into the builders (see `page`).
        let mut reader = Reader::new(&self.stream.fields, self.schema.fields(), self.rows_hint)?;
        let mut left = Leftovers::new(self.rows_hint, repairs);
        let mut de = serde_json::Deserializer::from_str(text);
        reader
            .read(&mut de, &mut left)
            .and_then(|()| de.end())
            .map_err(ConvertError::NotAnArrayOfObjects)?;
        let n = left.rows();
        self.rows_hint = n.max(16);
        let mut columns: Vec<ArrayRef> = reader.finish()?;

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
        columns.extend(tombstone::live_columns(n));
        let mut batch = RecordBatch::try_new(self.schema.clone(), columns)?;

        // A row without a usable key (absent, null, `"abc"`) cannot be de-duplicated, updated or
        // deleted downstream: it is quarantined whole, as received, instead of written with a
        // NULL key.
        let mut quarantined = Vec::new();
        let keyless = self
            .pk_columns
            .iter()
            .any(|&c| batch.column(c).null_count() > 0);
        if keyless {
            let keep: BooleanArray = (0..n)
                .map(|row| {
                    Some(
                        self.pk_columns
                            .iter()
                            .all(|&c| batch.column(c).is_valid(row)),
                    )
                })
                .collect();
            // Rare: the page is parsed again, into records, for the quarantined ones' text.
            let mut de = serde_json::Deserializer::from_str(text);
            let records: Vec<Record> = PageSeed {
                raw: &self.raw_fields,
            }
            .deserialize(&mut de)
            .map_err(ConvertError::NotAnArrayOfObjects)?;
            for (row, record) in records.iter().enumerate() {
                if !keep.value(row) {
                    quarantined.push(record.to_json_text());
                }
            }
            batch = arrow_select::filter::filter_record_batch(&batch, &keep)?;
        }
        let n = batch.num_rows();

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

        let refs = self
            .ref_columns
            .iter()
            .map(|c| {
                let col = c.and_then(|c| batch.column(c).as_any().downcast_ref::<Int64Array>());
                match col {
                    Some(col) => col
                        .iter()
                        .map(|v| v.unwrap_or(crate::state::ids::NULL_REF))
                        .collect(),
                    None => vec![crate::state::ids::NULL_REF; n],
                }
            })
            .collect();
        self.totals.pages += 1;
        self.totals.rows += n as u64;
        self.totals.extra_fields += left.extra_fields;
        self.totals.type_mismatches += left.type_mismatches;
        self.totals.null_violations += left.null_violations;
        self.totals.quarantined += quarantined.len() as u64;
        Ok(ConvertedPage {
            quarantined,
            rows: n,
            extra_fields: left.extra_fields,
            type_mismatches: left.type_mismatches,
            null_violations: left.null_violations,
            max_cursor: max_cursor.and_then(DateTime::from_timestamp_micros),
            ids,
            refs,
            batch,
        })
    }
}

#[cfg(test)]
pub(crate) mod bench;
#[cfg(test)]
pub(crate) mod tests;
