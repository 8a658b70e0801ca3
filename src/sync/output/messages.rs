//! Protocol output (Singer tap, Airbyte source): records and state go to a [`MessageSink`] as
//! messages instead of Parquet files and state objects.
//!
//! Contract: the records of a page are projected to the selected fields and have the column
//! policy applied before they reach the sink. Messages cannot be taken back, so `abort` writes
//! nothing more; no STATE that covers an aborted unit is ever emitted, so a target re-reads it
//! on the next run. A commit is one STATE message, after every record it covers.
//!
//! Bad data: a record without a usable primary key (absent, null, not an integer by the
//! converter's rule) is never emitted and never emitted with a null key; it is counted
//! ([`PageOut::quarantined`], the run summary, a log event at the stream's end) and named in a
//! log event (after the column policy, clipped). Lone surrogate escapes become U+FFFD before
//! anything is emitted, so every message is valid Unicode JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{CommitUnit, Output, PageOut, UnitWriter, WriteError};
use crate::config::ColumnPolicy;
use crate::error::Error;
use crate::events;
use crate::registry::{FieldType, Stream};
use crate::sink::WrittenFile;
use crate::state::State;
use crate::sync::options::Selected;
use crate::sync::summary::StreamReport;

/// One record as received, top-level keys sorted, values kept as their exact JSON text.
pub type Record = crate::privacy::JsonRecord;

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
    /// The record field that marks a delete in this protocol (`_sdc_deleted_at` for Singer
    /// targets, `_ab_cdc_deleted_at` for Airbyte destinations).
    fn deleted_at_field(&self) -> &'static str;
    /// After the stream ended, with its outcome.
    fn stream_finished(&self, stream: &Stream, report: &StreamReport) -> std::io::Result<()>;
}

/// Protocol messages through `sink`.
pub struct MessageOutput {
    sink: Arc<dyn MessageSink>,
    policies: BTreeMap<String, ColumnPolicy>,
    extracted_at: DateTime<Utc>,
}

impl MessageOutput {
    pub fn new(
        sink: Arc<dyn MessageSink>,
        policies: BTreeMap<String, ColumnPolicy>,
        extracted_at: DateTime<Utc>,
    ) -> Self {
        MessageOutput {
            sink,
            policies,
            extracted_at,
        }
    }
}

#[async_trait]
impl Output for MessageOutput {
    fn stream_started(&self, sel: &Selected<'_>) -> Result<(), WriteError> {
        self.sink
            .stream_started(sel.stream, sel.fields.as_ref())
            .map_err(|e| WriteError::Output(format!("writing messages failed: {e}")))
    }

    fn open(
        &self,
        sel: &Selected<'_>,
        _tag: Option<&str>,
        extracted_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Box<dyn UnitWriter>, WriteError> {
        Ok(Box::new(MessageUnit {
            sink: self.sink.clone(),
            stream: Box::new(sel.stream.clone()),
            fields: sel.fields.clone(),
            policy: self
                .policies
                .get(&sel.stream.name)
                .cloned()
                .unwrap_or_default(),
            extracted_at: extracted_at.unwrap_or(self.extracted_at),
        }))
    }

    async fn commit(
        &self,
        stream: &Stream,
        _unit: &CommitUnit<'_>,
        mut next: State,
    ) -> Result<State, Error> {
        next.generation += 1;
        self.sink
            .state(stream, &next)
            .map_err(|e| Error::Fatal(format!("writing the state message failed: {e}")))?;
        Ok(next)
    }

    fn stream_finished(&self, stream: &Stream, report: &StreamReport) {
        if report.quarantined > 0 {
            events::records_not_emitted_total(&stream.name, report.quarantined);
        }
        if let Err(e) = self.sink.stream_finished(stream, report) {
            events::messages_failed(&stream.name, &e);
        }
    }
}

/// How much of one record without a usable key its log event quotes.
const NAMED_RECORD_CHARS: usize = 2000;

struct MessageUnit {
    sink: Arc<dyn MessageSink>,
    stream: Box<Stream>,
    fields: Option<BTreeSet<String>>,
    policy: ColumnPolicy,
    extracted_at: DateTime<Utc>,
}

#[async_trait]
impl UnitWriter for MessageUnit {
    async fn write_tombstones(
        &mut self,
        rows: &[crate::state::ids::Deleted],
    ) -> Result<(), WriteError> {
        let Some(key) = self.stream.primary_key.first() else {
            return Ok(());
        };
        let field = self.sink.deleted_at_field();
        let raw = |v: serde_json::Value| {
            serde_json::value::RawValue::from_string(v.to_string())
                .map_err(|e| WriteError::Output(format!("encoding a delete failed: {e}")))
        };
        let mut records = Vec::with_capacity(rows.len());
        for d in rows {
            let mut r = Record::new();
            r.insert(key.clone(), raw(serde_json::json!(d.id))?);
            let at = d.at().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            r.insert(field.to_string(), raw(serde_json::json!(at))?);
            r.insert(
                crate::convert::DELETED_BY_COLUMN.to_string(),
                raw(serde_json::json!(d.by.as_str()))?,
            );
            if let Some(m) = d.merged_into {
                r.insert(
                    crate::convert::MERGED_INTO_COLUMN.to_string(),
                    raw(serde_json::json!(m))?,
                );
            }
            records.push(r);
        }
        self.sink
            .records(&self.stream, &records, self.extracted_at)
            .map_err(|e| WriteError::Output(format!("writing messages failed: {e}")))
    }

    async fn write(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<PageOut, WriteError> {
        // A lone surrogate escape (`"\ud83d"`) is valid JSON text but no Unicode string: a
        // target that decodes it strictly fails, one that re-encodes it writes invalid UTF-8.
        // Every one becomes U+FFFD before parsing (JSON-typed fields included), as the Parquet
        // path stores it in a string cell; other values are kept as their text.
        let repaired = std::str::from_utf8(body)
            .ok()
            .and_then(crate::convert::repair_lone_surrogates);
        let text = repaired.as_deref().map_or(body, str::as_bytes);
        let mut records: Vec<Record> = serde_json::from_slice(text).map_err(|e| {
            WriteError::Unreadable(format!("response body is not a JSON array of objects: {e}"))
        })?;
        // A record without a usable key (absent, null, `"abc"`) is never emitted: a target
        // cannot de-duplicate or update it. It is counted and named in a log event instead
        // (messages have nowhere to file it). A usable key that is not a JSON integer
        // (`"007"`) is emitted as the integer the Parquet path stores.
        let mut keyless = Vec::new();
        let mut ids = Vec::with_capacity(records.len());
        let mut refs: Vec<Vec<i64>> = vec![Vec::new(); self.stream.deletes.cascade.len()];
        records.retain_mut(|r| {
            let mut first = None;
            for col in &self.stream.primary_key {
                let key = r
                    .get(col)
                    .and_then(|v| serde_json::from_str::<serde_json::Value>(v.get()).ok())
                    .and_then(|v| crate::convert::integer_key(&v));
                let Some(key) = key else {
                    keyless.push(std::mem::take(r));
                    return false;
                };
                if r.get(col).is_some_and(|v| v.get() != key.to_string()) {
                    let raw = serde_json::value::RawValue::from_string(key.to_string());
                    if let Ok(raw) = raw {
                        r.insert(col.clone(), raw);
                    }
                }
                first.get_or_insert(key);
            }
            if first.is_some() {
                for (col, c) in refs.iter_mut().zip(&self.stream.deletes.cascade) {
                    col.push(
                        r.get(&c.field)
                            .and_then(|v| v.get().parse::<i64>().ok())
                            .unwrap_or(crate::state::ids::NULL_REF),
                    );
                }
            }
            ids.extend(first);
            true
        });
        if let Some(low) = skip_from_id {
            let pk = self.stream.primary_key.first();
            records.retain(|r| {
                pk.and_then(|pk| r.get(pk))
                    .and_then(|v| v.get().parse::<i64>().ok())
                    .is_none_or(|id| id < low)
            });
        }
        let stream = &self.stream;
        let is_json = |col: &str| {
            stream
                .field(col)
                .is_some_and(|f| matches!(f.ty, FieldType::Json))
        };
        for r in records.iter_mut().chain(keyless.iter_mut()) {
            if let Some(fields) = self.fields.as_ref() {
                r.retain(|k, _| fields.contains(k));
            }
            self.policy.apply_json(is_json, r);
        }
        if !keyless.is_empty() {
            let named: Vec<String> = keyless
                .iter()
                .map(|r| {
                    let text = serde_json::to_string(r).unwrap_or_default();
                    crate::secrets::clip(&text, NAMED_RECORD_CHARS)
                })
                .collect();
            events::records_not_emitted(&stream.name, keyless.len(), &named.join("\n"));
        }
        self.sink
            .records(stream, &records, self.extracted_at)
            .map_err(|e| WriteError::Output(format!("writing messages failed: {e}")))?;
        Ok(PageOut {
            rows: records.len() as u64,
            ids,
            refs,
            quarantined: keyless.len() as u64,
            ..PageOut::default()
        })
    }

    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError> {
        Ok(Vec::new())
    }

    async fn abort(self: Box<Self>) {}
}
