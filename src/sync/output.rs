//! Where a stream's records go: typed Parquet files on the destination (the main job), or
//! protocol messages (Singer, Airbyte) written by a [`MessageSink`].
//!
//! Contract: both outputs receive the same pages from the same engine (windows, slices, retries,
//! rate budget). A unit of work writes through one [`UnitWriter`]; `close` makes what it wrote
//! durable (Parquet: files complete on the store) before the engine commits the unit's progress,
//! and `abort` leaves nothing of the unit behind that could look complete (Parquet: in-flight
//! uploads aborted, completed files deleted; messages cannot be taken back, but no STATE that
//! covers them is emitted, so a target re-reads them on the next run). Column exclusion and
//! hashing apply to both outputs before anything leaves the process.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::convert::Converter;
use crate::privacy::ColumnPolicy;
use crate::registry::Stream;
use crate::sink::{RollingWriter, WrittenFile};
use crate::state::State;

use super::summary::StreamReport;

/// One record as received, top-level keys sorted, values kept as their exact JSON text.
pub type Record = BTreeMap<String, Box<RawValue>>;

/// Receives protocol output. Implementations write whole messages (one line each) and must be
/// safe to call from concurrent stream tasks.
pub trait MessageSink: Send + Sync {
    /// Before the first record of `stream` (Singer: SCHEMA; Airbyte: stream status STARTED).
    /// `fields` is the selected field set (`None` = all).
    fn stream_started(
        &self,
        stream: &Stream,
        fields: Option<&BTreeSet<String>>,
    ) -> std::io::Result<()>;
    /// Records of one page, already projected and with the column policy applied.
    fn records(
        &self,
        stream: &Stream,
        records: &[Record],
        extracted_at: DateTime<Utc>,
    ) -> std::io::Result<()>;
    /// The state after a commit of `stream` (a completed slice, or the whole window): every
    /// record it covers was passed to [`MessageSink::records`] before.
    fn state(&self, stream: &Stream, state: &State) -> std::io::Result<()>;
    /// After the stream ended, with its outcome.
    fn stream_finished(&self, stream: &Stream, report: &StreamReport) -> std::io::Result<()>;
}

/// What one page contributed.
pub struct PageOut {
    pub rows: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
}

/// Why a page could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The body is not a JSON array of records (truncated or an error document): fetch again.
    #[error("{0}")]
    Unreadable(String),
    /// The destination or the output failed.
    #[error("{0}")]
    Output(String),
}

/// The writer of one unit of work (a whole window, or one slice).
pub enum UnitWriter {
    Parquet {
        converter: Box<Converter>,
        policy: ColumnPolicy,
        schema: SchemaRef,
        writer: Box<RollingWriter>,
    },
    Messages {
        sink: Arc<dyn MessageSink>,
        stream: Box<Stream>,
        fields: Option<BTreeSet<String>>,
        policy: ColumnPolicy,
        extracted_at: DateTime<Utc>,
    },
}

impl UnitWriter {
    /// Writes one page, leaving out rows whose key is at or above `skip_from_id` (rows already
    /// written before a window restart: pages are id-descending). Returns the page's ids too.
    pub async fn write_page(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<(PageOut, Vec<i64>), WriteError> {
        match self {
            UnitWriter::Parquet {
                converter,
                policy,
                schema,
                writer,
            } => {
                let converted = converter
                    .convert_page(body)
                    .map_err(|e| WriteError::Unreadable(e.to_string()))?;
                let mut batch = converted.batch;
                if let Some(low) = skip_from_id {
                    let skip = converted.ids.iter().take_while(|id| **id >= low).count();
                    batch = batch.slice(skip, batch.num_rows() - skip);
                }
                let out = PageOut {
                    rows: batch.num_rows() as u64,
                    extra_fields: converted.extra_fields,
                    type_mismatches: converted.type_mismatches,
                    null_violations: converted.null_violations,
                };
                if batch.num_rows() > 0 {
                    let batch = policy.apply(&batch, schema).map_err(|e| {
                        WriteError::Output(format!("applying the column policy failed: {e}"))
                    })?;
                    writer
                        .write(&batch)
                        .await
                        .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}")))?;
                }
                Ok((out, converted.ids))
            }
            UnitWriter::Messages {
                sink,
                stream,
                fields,
                policy,
                extracted_at,
            } => {
                let mut records: Vec<Record> = serde_json::from_slice(body).map_err(|e| {
                    WriteError::Unreadable(format!(
                        "response body is not a JSON array of objects: {e}"
                    ))
                })?;
                let pk = stream
                    .primary_key
                    .first()
                    .map(String::as_str)
                    .unwrap_or("id");
                let ids: Vec<i64> = records
                    .iter()
                    .filter_map(|r| r.get(pk)?.get().parse().ok())
                    .collect();
                if let Some(low) = skip_from_id {
                    records.retain(|r| {
                        r.get(pk)
                            .and_then(|v| v.get().parse::<i64>().ok())
                            .is_none_or(|id| id < low)
                    });
                }
                for r in &mut records {
                    if let Some(fields) = fields.as_ref() {
                        r.retain(|k, _| fields.contains(k));
                    }
                    apply_policy(policy, stream, r);
                }
                sink.records(stream, &records, *extracted_at)
                    .map_err(|e| WriteError::Output(format!("writing messages failed: {e}")))?;
                Ok((
                    PageOut {
                        rows: records.len() as u64,
                        extra_fields: 0,
                        type_mismatches: 0,
                        null_violations: 0,
                    },
                    ids,
                ))
            }
        }
    }

    /// Makes everything written durable; returns the files (none for messages).
    pub async fn close(self) -> Result<Vec<WrittenFile>, WriteError> {
        match self {
            UnitWriter::Parquet { writer, .. } => writer
                .close()
                .await
                .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}"))),
            UnitWriter::Messages { .. } => Ok(Vec::new()),
        }
    }

    /// Abandons the unit (see the module contract).
    pub async fn abort(self) {
        if let UnitWriter::Parquet { writer, .. } = self {
            writer.abort().await;
        }
    }
}

/// Exclusion and hashing on a JSON record: the same digests as the Parquet path (string columns
/// as their UTF-8 value, integers as decimal text, JSON columns as their compact text as
/// received).
fn apply_policy(policy: &ColumnPolicy, stream: &Stream, record: &mut Record) {
    if policy.is_noop() {
        return;
    }
    record.retain(|k, _| !policy.exclude.contains(k));
    for col in &policy.hash {
        let Some(raw) = record.get_mut(col) else {
            continue;
        };
        let text = raw.get();
        if text == "null" {
            continue;
        }
        let is_json = stream
            .field(col)
            .is_some_and(|f| matches!(f.ty, crate::registry::FieldType::Json));
        let digest = match serde_json::from_str::<String>(text) {
            Ok(s) if !is_json => policy.digest(s.as_bytes()),
            _ => policy.digest(text.as_bytes()),
        };
        if let Ok(v) = RawValue::from_string(serde_json::Value::String(digest).to_string()) {
            *raw = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    #[test]
    fn json_policy_matches_the_parquet_digests() {
        let registry = crate::registry::fixture(
            "people",
            r#"{ mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }"#,
            r#"{ name = "id", type = "integer" }, { name = "updated_at", type = "timestamp" },
  { name = "email", type = "string" }, { name = "n", type = "integer" }, { name = "phone", type = "string" }"#,
        );
        let stream = &registry.streams()[0];
        let policy = ColumnPolicy {
            exclude: ["phone".to_string()].into(),
            hash: ["email".to_string(), "n".to_string()].into(),
            salt: Some(Secret::new("pepper")),
        };
        let mut r: Record =
            serde_json::from_str(r#"{"id":1,"email":"a@b.c","n":42,"phone":"555"}"#).unwrap();
        apply_policy(&policy, stream, &mut r);
        assert!(!r.contains_key("phone"));
        assert_eq!(r["email"].get(), format!("\"{}\"", policy.digest(b"a@b.c")));
        assert_eq!(r["n"].get(), format!("\"{}\"", policy.digest(b"42")));
        assert_eq!(r["id"].get(), "1");
    }
}
