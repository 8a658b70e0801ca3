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

/// What one page contributed.
#[derive(Debug, Default)]
pub struct PageOut {
    pub rows: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
    /// Every id of the page, written or not (the engine tracks the lowest for window restarts).
    pub ids: Vec<i64>,
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
    /// slices of one window.
    fn open(
        &self,
        sel: &Selected<'_>,
        tag: Option<&str>,
    ) -> Result<Box<dyn UnitWriter>, WriteError>;

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

    /// After the stream ended, with its outcome.
    fn stream_finished(&self, _stream: &Stream, _report: &StreamReport) {}

    /// After every stream ended: what the run leaves behind for loaders (the manifest key).
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

    /// Makes everything written durable; returns the files written (none for messages).
    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError>;

    /// Abandons the unit (see the module contract).
    async fn abort(self: Box<Self>);
}
