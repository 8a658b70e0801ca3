//! What a run is given and what it returns: run options, the selected streams, the report, and
//! the signpost every window ends at.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::summary::{StreamReport, StreamStatus};
use crate::error::ExitCode;
use crate::progress::RunProgress;
use crate::registry::Stream;
use crate::sink::SinkConfig;

/// How far behind "now" the signpost sits: records committed by Greenhouse in the last moments
/// before the run started may not be visible yet.
const SIGNPOST_SKEW: Duration = Duration::from_secs(5);
/// Test hook, not for production: overrides [`SIGNPOST_SKEW`] (milliseconds), so end-to-end
/// tests that change the simulator and sync again need not wait five seconds. An environment
/// variable rather than a CLI flag because the Singer and Airbyte invocations have fixed
/// command lines; a skew smaller than Greenhouse's commit lag can miss records for good.
pub const ENV_SIGNPOST_SKEW_MS: &str = "GREENHOUSE_SIGNPOST_SKEW_MS";

/// Run-level options that are not part of the user's configuration file.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub lease_ttl: Duration,
    /// How far before `started_at` the signpost sits ([`signpost_skew`]).
    pub signpost_skew: Duration,
    /// How raw files are written; a sync's row group size comes from the configured writer
    /// memory budget instead (`ParquetOutput::with_memory`).
    pub sink: SinkConfig,
    /// Local state file (`--state-file`): read instead of the destination's state, rewritten after every
    /// commit (the destination's state generations are still written).
    pub state_file: Option<std::path::PathBuf>,
    /// Live progress (drawn only on a terminal; see [`crate::progress`]).
    pub progress: Arc<RunProgress>,
    /// `sync --reconcile`: list the ids of these streams whatever the cadence (empty: every
    /// selected stream); `None` = the configured cadence.
    pub reconcile: Option<Vec<String>>,
}

impl SyncOptions {
    pub fn new() -> Self {
        let started_at = Utc::now();
        SyncOptions {
            run_id: uuid::Uuid::now_v7().to_string(),
            started_at,
            lease_ttl: Duration::from_secs(120),
            signpost_skew: signpost_skew(),
            sink: SinkConfig::default(),
            state_file: None,
            progress: RunProgress::disabled(),
            reconcile: None,
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
        signpost(self.started_at, self.signpost_skew)
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
pub fn signpost(started_at: DateTime<Utc>, skew: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(skew)
        .ok()
        .and_then(|d| started_at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The signpost skew: [`SIGNPOST_SKEW`], unless the test hook [`ENV_SIGNPOST_SKEW_MS`] is set.
pub fn signpost_skew() -> Duration {
    match std::env::var(ENV_SIGNPOST_SKEW_MS) {
        Err(_) => SIGNPOST_SKEW,
        Ok(v) => v
            .trim()
            .parse()
            .map(Duration::from_millis)
            .unwrap_or_else(|_| {
                crate::events::signpost_skew_ignored(ENV_SIGNPOST_SKEW_MS, &v);
                SIGNPOST_SKEW
            }),
    }
}
