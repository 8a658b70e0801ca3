//! Protocol output (Singer tap, Airbyte source): records and state go to a [`MessageSink`] as
//! messages instead of Parquet files and state objects.
//!
//! Contract: the records of a page are projected to the selected fields and have the column
//! policy applied before they reach the sink. Messages cannot be taken back, so `abort` writes
//! nothing more; no STATE that covers an aborted unit is ever emitted, so a target re-reads it
//! on the next run. A commit is one STATE message, after every record it covers.

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
            extracted_at: self.extracted_at,
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
        if let Err(e) = self.sink.stream_finished(stream, report) {
            events::messages_failed(&stream.name, &e);
        }
    }
}

struct MessageUnit {
    sink: Arc<dyn MessageSink>,
    stream: Box<Stream>,
    fields: Option<BTreeSet<String>>,
    policy: ColumnPolicy,
    extracted_at: DateTime<Utc>,
}

#[async_trait]
impl UnitWriter for MessageUnit {
    async fn write(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<PageOut, WriteError> {
        // Values are kept as their text (lone surrogate escapes included, as sent); a key
        // holding one cannot be a `String`, so such a page is read leniently (U+FFFD).
        let mut records: Vec<Record> = serde_json::from_slice(body)
            .or_else(|e| {
                std::str::from_utf8(body)
                    .ok()
                    .and_then(crate::convert::repair_lone_surrogates)
                    .map_or(Err(e), |t| serde_json::from_str(&t))
            })
            .map_err(|e| {
                WriteError::Unreadable(format!("response body is not a JSON array of objects: {e}"))
            })?;
        let pk = self
            .stream
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
        let stream = &self.stream;
        let is_json = |col: &str| {
            stream
                .field(col)
                .is_some_and(|f| matches!(f.ty, FieldType::Json))
        };
        for r in &mut records {
            if let Some(fields) = self.fields.as_ref() {
                r.retain(|k, _| fields.contains(k));
            }
            self.policy.apply_json(is_json, r);
        }
        self.sink
            .records(stream, &records, self.extracted_at)
            .map_err(|e| WriteError::Output(format!("writing messages failed: {e}")))?;
        Ok(PageOut {
            rows: records.len() as u64,
            ids,
            ..PageOut::default()
        })
    }

    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError> {
        Ok(Vec::new())
    }

    async fn abort(self: Box<Self>) {}
}
