//! What every stream and unit of one run shares: the configuration, the client and its rate
//! budget, the signpost, the committed state behind its lock, the output, the cancel flag and
//! the pool of unit slots.

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, Semaphore};

use super::options::SyncOptions;
use super::output::Output;
use crate::cancel::Cancel;
use crate::config::Config;
use crate::harvest::HarvestClient;
use crate::state::State;

/// Shared by every stream of one run.
pub(crate) struct RunCtx<'a> {
    pub config: &'a Config,
    pub opts: &'a SyncOptions,
    pub client: &'a HarvestClient,
    pub signpost: DateTime<Utc>,
    /// The committed state; commits are serialised through this lock.
    pub state: Mutex<State>,
    pub output: &'a dyn Output,
    /// The run's stop signal (SIGINT/SIGTERM or the deadline).
    pub cancel: Cancel,
    /// Units of work (a whole window, or one slice) running at once, across all streams.
    pub units: Semaphore,
}
