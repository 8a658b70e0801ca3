//! Where a run's records and progress go: one [`Output`] trait, one module per destination
//! (as object_store has one trait and a module per backend). The engine never asks which output
//! it writes to.
//!
//! - [`parquet`]: typed Parquet files on the destination, state generations beside them under
//!   the run's lease, a manifest at the end (the main job).
//! - [`messages`]: Singer / Airbyte protocol messages written by a [`MessageSink`].
//! - `memory` (tests): rows and states kept in memory, for the engine's own tests.
//!
//! Contract, for every output:
//! - A unit of work (a whole window, or one slice) writes through one [`UnitWriter`] that
//!   [`Output::open`] hands out. [`UnitWriter::close`] makes what it wrote durable before the
//!   engine commits the unit's progress; [`UnitWriter::abort`] leaves nothing of the unit behind
//!   that could look complete.
//! - [`Output::commit`] records a new state only after the output of everything it covers is
//!   durable, and returns the state as recorded; [`Output::discard`] removes durable output that
//!   will never be committed (a slice whose commit failed).
//! - Column exclusion and hashing are applied before anything leaves the process.

pub mod messages;
pub mod parquet;

#[cfg(test)]
pub mod memory;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::options::{RunReport, Selected};
use super::summary::StreamReport;
use crate::error::Error;
use crate::registry::Stream;
use crate::sink::WrittenFile;
use crate::state::State;

/// Marks an id index kept inside the state (see [`Output::save_ids`]).
pub const INLINE_IDS: &str = "inline:";

/// The bytes of an inline id index key.
pub fn decode_inline_ids(key: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let b64 = key.strip_prefix(INLINE_IDS)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A stored Greenhouse webhook event, as the deletes phase reads it.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// Where it is stored (for deleting it once applied, and for messages).
    pub key: String,
    pub action: String,
    pub received_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

/// What one page contributed.
#[derive(Debug, Default)]
pub struct PageOut {
    pub rows: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
    /// Every id of the page, written or not (the engine tracks the lowest for window restarts).
    pub ids: Vec<i64>,
    /// The stream's cascade references of each row of `ids`: one column per declared cascade
    /// field, [`crate::state::ids::NULL_REF`] for null (they join the stream's id index).
    pub refs: Vec<Vec<i64>>,
    /// Records not written because their primary key is absent, null or not of its type.
    pub quarantined: u64,
    /// Where the output filed what it could not write as rows (keys of `_errors/` documents).
    pub error_objects: Vec<String>,
}

/// What one commit covers.
#[derive(Debug, Clone, Copy)]
pub struct CommitUnit<'a> {
    /// The unit's files (a whole window's may include files its slices committed before).
    pub files: &'a [WrittenFile],
    /// The whole window is done (`false`: one slice of it).
    pub window_complete: bool,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    /// The unit's files are merged later, with the rest of their window (the state keeps
    /// them in [`crate::state::Slices::unmerged`]).
    pub merge_later: bool,
    /// Files committed before whose merge waited for this unit (object keys).
    pub pending: &'a [String],
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

/// A destination for a run (see the module contract).
#[async_trait]
pub trait Output: Send + Sync {
    /// Before the first unit of `sel`'s stream runs.
    fn stream_started(&self, _sel: &Selected<'_>) -> Result<(), WriteError> {
        Ok(())
    }

    /// The writer of one unit of `sel`'s stream; `tag` tells apart the files of concurrent
    /// slices of one window. `extracted_at` is the rows' `_extracted_at` (`None`: the run's
    /// start); a re-read by id passes the instant it began, so that its rows win over the rows
    /// the same run read earlier (an anonymised candidate keeps its `updated_at`).
    fn open(
        &self,
        sel: &Selected<'_>,
        tag: Option<&str>,
        extracted_at: Option<DateTime<Utc>>,
    ) -> Result<Box<dyn UnitWriter>, WriteError>;

    /// Before the commit of `unit` takes the run's state lock, with its files durable: the slow
    /// part of a commit that needs no state (a current-table merge) runs here, so that the
    /// commits of different streams overlap. [`Output::commit`] still does whatever this did
    /// not (it may not have been called).
    async fn merge(&self, _stream: &Stream, _unit: &CommitUnit<'_>) -> Result<(), Error> {
        Ok(())
    }

    /// Whether commits are merged into current tables, so that a first read's slices are
    /// better merged together when their window completes (one pass into an empty table)
    /// than each into a table the slices before it filled.
    fn merges_current_tables(&self) -> bool {
        false
    }

    /// Records `next` after a commit of `stream` (a completed slice, or the whole window, as
    /// `unit` says); returns the state as recorded.
    async fn commit(
        &self,
        stream: &Stream,
        unit: &CommitUnit<'_>,
        next: State,
    ) -> Result<State, Error>;

    /// Removes the durable output of units that will not be committed.
    async fn discard(&self, _files: Vec<WrittenFile>) {}

    /// Stores a stream's encoded id index ([`crate::state::ids`]) and returns where, for the
    /// state to name. By default the bytes travel inside the state itself (outputs without a
    /// store of their own: Singer, Airbyte, tests).
    async fn save_ids(&self, _stream: &Stream, bytes: Vec<u8>) -> Result<String, Error> {
        use base64::Engine;
        Ok(format!(
            "{INLINE_IDS}{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }

    /// Reads back what [`Output::save_ids`] stored (`None`: it is gone).
    async fn load_ids(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(decode_inline_ids(key))
    }

    /// Forgets an index [`Output::save_ids`] stored that no state names any more.
    async fn drop_ids(&self, _key: &str) {}

    /// Webhook events stored for this destination (`webhooks serve`) and received before
    /// `until`, oldest first. Outputs without a destination have none.
    async fn webhook_events(&self, _until: DateTime<Utc>) -> Result<Vec<WebhookEvent>, Error> {
        Ok(Vec::new())
    }

    /// A complete listing of `stream`'s live ids (`live`, sorted) was taken and its deletes are
    /// committed: outputs that keep a current state drop every other id from it.
    async fn reconciled(&self, _stream: &Stream, _live: &[i64]) -> Result<u64, Error> {
        Ok(0)
    }

    /// Deletes a stored webhook event whose facts are committed.
    async fn drop_webhook_event(&self, _key: &str) {}

    /// After the stream ended, with its outcome.
    fn stream_finished(&self, _stream: &Stream, _report: &StreamReport) {}

    /// After every stream ended: what the run leaves behind for loaders (the manifest key).
    /// Custom-field values of `stream` this run's current-table merges could not type (see
    /// [`crate::current::custom`]); outputs without current tables have none.
    fn custom_field_misfits(&self, _stream: &str) -> u64 {
        0
    }

    async fn finish(&self, _report: &RunReport) -> Option<String> {
        None
    }
}

/// Writes the pages of one unit of work.
#[async_trait]
pub trait UnitWriter: Send {
    /// Writes one page, leaving out rows whose key is at or above `skip_from_id` (rows already
    /// written before a window restart: pages are id-descending).
    async fn write(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<PageOut, WriteError>;

    /// Files a page that stayed unreadable through every re-fetch where a person can look at it;
    /// returns where (the stream still fails). Outputs without a place for it return `None`.
    async fn save_unreadable(&mut self, _body: &[u8], _error: &str) -> Option<String> {
        None
    }

    /// Writes tombstones (see [`crate::convert::tombstone_batch`]) for deleted records of the
    /// unit's stream.
    async fn write_tombstones(
        &mut self,
        rows: &[crate::state::ids::Deleted],
    ) -> Result<(), WriteError>;

    /// Makes everything written durable; returns the files written (none for messages).
    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError>;

    /// Abandons the unit (see the module contract).
    async fn abort(self: Box<Self>);
}
