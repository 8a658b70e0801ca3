//! The sync engine: for each selected stream, plan a window, fetch its pages, convert them to
//! Arrow, write Parquet, and commit the stream's bookmark once its files are durably written.
//!
//! Contract:
//! - The signpost (upper bound of every incremental window) is fixed once, at run start, a small
//!   skew before now. A bookmark only ever moves to a signpost, and only after every page of that
//!   stream's window was read and its files closed (object store put/multipart complete).
//! - Streams run concurrently (`concurrency`) under the one shared rate budget of the client.
//! - A stream that fails or lacks its scope is reported and skipped; the others still commit.
//!   An authentication failure stops the run (every stream would fail the same way).
//! - One run per destination at a time: the run holds the state lease for its whole life; a second
//!   run fails fast with the conflict exit code and changes nothing.
//! - Interruption (the caller's cancel flag; the CLI sets it on SIGINT/SIGTERM) stops fetching,
//!   aborts in-flight files (no partial object stays behind; complete files of an uncommitted
//!   stream are deleted) and leaves committed streams committed. Nothing here holds a whole
//!   stream in memory: pages flow through a bounded channel.
//!
//! The rooms: [`run`] (lifecycle, scheduling, per-stream outcome), [`read`] (pages → writer,
//! chains, partitions, slices), [`commit`] (what a durable unit records), [`window`] (planning a
//! stream's window), [`slices`] (slice heuristics, planning and range algebra), [`output`] (the
//! one trait every destination implements: Parquet, protocol messages, memory for tests),
//! [`summary`] (the report and the table printed at the end).

pub mod commit;
pub mod output;
pub mod read;
pub mod run;
pub mod slices;
pub mod summary;
pub mod window;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::progress::RunProgress;
use crate::registry::{Registry, Stream};
use crate::sink::SinkConfig;
use crate::storage::Destination;
use output::{MessageOutput, MessageSink, ParquetOutput};
use summary::{StreamReport, StreamStatus};

pub use commit::state_error;
pub use run::run_with;

/// How far behind "now" the signpost sits: records committed by Greenhouse in the last moments
/// before the run started may not be visible yet.
const SIGNPOST_SKEW: Duration = Duration::from_secs(5);

/// Run-level options that are not part of the user's configuration file.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub lease_ttl: Duration,
    pub sink: SinkConfig,
    /// Singer-style state file: read instead of the destination's state, rewritten after every
    /// commit (the destination's state generations are still written).
    pub state_file: Option<std::path::PathBuf>,
    /// Live progress (drawn only on a terminal; see [`crate::progress`]).
    pub progress: Arc<RunProgress>,
}

impl SyncOptions {
    pub fn new() -> Self {
        let started_at = Utc::now();
        SyncOptions {
            run_id: uuid::Uuid::now_v7().to_string(),
            started_at,
            lease_ttl: Duration::from_secs(120),
            sink: SinkConfig::default(),
            state_file: None,
            progress: RunProgress::disabled(),
        }
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    pub run_id: String,
    pub streams: Vec<StreamReport>,
    pub manifest_key: Option<String>,
    pub interrupted: bool,
    pub duration: Duration,
}

impl RunReport {
    pub fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::Interrupted
        } else if self
            .streams
            .iter()
            .all(|s| s.status == StreamStatus::Committed)
        {
            ExitCode::Success
        } else {
            ExitCode::Partial
        }
    }
}

impl SyncOptions {
    /// This run's signpost (see [`signpost`]).
    pub fn signpost(&self) -> DateTime<Utc> {
        signpost(self.started_at)
    }
}

/// One stream as a run reads it.
#[derive(Debug, Clone)]
pub struct Selected<'r> {
    pub stream: &'r Stream,
    /// The selected fields (protocol modes); `None` = every field.
    pub fields: Option<BTreeSet<String>>,
    /// Ignore the saved bookmark and read the whole history (a full-refresh sync of an
    /// incremental stream, as an Airbyte catalog may ask).
    pub full_refresh: bool,
}

impl<'r> Selected<'r> {
    pub fn all(stream: &'r Stream) -> Self {
        Selected {
            stream,
            fields: None,
            full_refresh: false,
        }
    }
}

/// The run's signpost: the upper bound of every incremental window, fixed once at run start.
pub fn signpost(started_at: DateTime<Utc>) -> DateTime<Utc> {
    started_at - chrono::Duration::from_std(SIGNPOST_SKEW).expect("small constant duration")
}

/// Runs a sync into Parquet on `dest`, holding the destination's lease for the whole run.
/// `cancel` is set by the caller (the CLI's signal handler) to stop early.
pub async fn run(
    config: &Config,
    registry: &Registry,
    dest: &Destination,
    opts: &SyncOptions,
    cancel: Arc<AtomicBool>,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let streams: Vec<Selected> = config
        .selected(registry)?
        .into_iter()
        .map(Selected::all)
        .collect();
    let store = crate::state::StateStore::new(dest.store.clone(), dest.prefix.clone());
    let lease = store
        .acquire_lease(&opts.run_id, opts.lease_ttl)
        .await
        .map_err(state_error)?;
    let heartbeat = lease.spawn_heartbeat(opts.lease_ttl / 4);
    let result = async {
        let state = match &opts.state_file {
            Some(path) if path.exists() => crate::state::load_file(path)
                .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?,
            _ => store.load().await.map_err(state_error)?,
        };
        let output = ParquetOutput {
            dest,
            store: &store,
            lease: &lease,
            opts,
            policies: &config.policies,
        };
        tracing::info!(event = "sync_started", run_id = %opts.run_id, streams = streams.len(), destination = %dest.url, "Sync started");
        run_with(config, &streams, state, &output, opts, cancel, started).await
    }
    .await;
    heartbeat.abort();
    lease.release().await;
    result
}

/// Runs a sync whose records go to `sink` as protocol messages (Singer tap, Airbyte source),
/// starting from `state` (read from the protocol's state input). Same windows, slices, retries
/// and rate budget as [`run`]; nothing is written to a destination.
pub async fn run_messages(
    config: &Config,
    streams: &[Selected<'_>],
    state: crate::state::State,
    sink: Arc<dyn MessageSink>,
    opts: &SyncOptions,
    cancel: Arc<AtomicBool>,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let output = MessageOutput::new(sink, config.policies.clone(), opts.started_at);
    run_with(config, streams, state, &output, opts, cancel, started).await
}
