//! Where the state module reads "now": the lease's `expires_at`/`heartbeat_at` and a state
//! document's `updated_at`. Production uses [`SystemClock`]; tests hand a [`ManualClock`] to
//! [`StateStore::with_clock`](super::StateStore::with_clock) and advance it, so a lease expires
//! because the test said so and not because a real-time margin happened to pass under load.
//!
//! The heartbeat's *interval* is tokio's timer (`tokio::time::sleep`), not this clock: tests that
//! drive the heartbeat pause tokio's time (`start_paused`) and read this clock from it.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock (`Utc::now()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to (for tests).
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock {
            now: Mutex::new(start),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = chrono::TimeDelta::from_std(by).expect("a test advances by a sane duration");
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}
