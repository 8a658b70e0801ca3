//! The run's stop signal: set by SIGINT/SIGTERM (the CLI) or reached at the run's deadline
//! (`max_run_time` / `sync --deadline`), and awaited by every wait of the run — the rate budget,
//! retry backoff, `Retry-After`, token retries, requests in flight, units queued for a slot.
//!
//! Contract: a leaf (it imports nothing from the crate), so the HTTP client and the engine can
//! both hold it without depending on each other. Cloning shares the signal. Once stopped it
//! stays stopped; a signal outranks the deadline (the exit code says "interrupted", not
//! "partial"). [`Cancel::cancelled`] never misses a stop that happens while it is being polled.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Why the run stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// SIGINT or SIGTERM: exit with the interrupted code.
    Signal,
    /// The run's deadline: commit what is done and exit with the partial code.
    Deadline,
}

const RUNNING: u8 = 0;
const SIGNAL: u8 = 1;
const DEADLINE: u8 = 2;

#[derive(Default)]
struct Inner {
    state: AtomicU8,
    notify: Notify,
    deadline: Mutex<Option<Instant>>,
}

/// A shared, awaitable stop signal (see the module docs).
#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel")
            .field("reason", &self.reason())
            .field("deadline", &self.deadline())
            .finish()
    }
}

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the run for `reason` and wakes every waiter.
    pub fn cancel(&self, reason: Reason) {
        let code = match reason {
            Reason::Signal => SIGNAL,
            Reason::Deadline => DEADLINE,
        };
        match reason {
            // A signal always wins: the operator asked for the process to end.
            Reason::Signal => self.0.state.store(code, Ordering::SeqCst),
            Reason::Deadline => {
                let _ = self.0.state.compare_exchange(
                    RUNNING,
                    code,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                );
            }
        }
        self.0.notify.notify_waiters();
    }

    /// Makes the run stop at `at` (an earlier deadline replaces a later one, never the reverse).
    pub fn set_deadline(&self, at: Instant) {
        let mut d = self.0.deadline.lock().unwrap_or_else(|e| e.into_inner());
        if d.is_none_or(|old| at < old) {
            *d = Some(at);
        }
        drop(d);
        // Waiters re-arm their timers with the new deadline.
        self.0.notify.notify_waiters();
    }

    /// The deadline, if the run has one.
    pub fn deadline(&self) -> Option<Instant> {
        *self.0.deadline.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Why the run stops, or `None` while it goes on.
    pub fn reason(&self) -> Option<Reason> {
        match self.0.state.load(Ordering::SeqCst) {
            SIGNAL => Some(Reason::Signal),
            DEADLINE => Some(Reason::Deadline),
            _ if self.deadline().is_some_and(|d| Instant::now() >= d) => {
                self.cancel(Reason::Deadline);
                self.reason()
            }
            _ => None,
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// Whether waiting `wait` from now would end after the deadline.
    pub fn would_cross_deadline(&self, wait: Duration) -> bool {
        self.deadline()
            .is_some_and(|d| Instant::now().checked_add(wait).is_none_or(|end| end > d))
    }

    /// Resolves once the run stops (at once if it already has).
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a stop between the check and the await is seen.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            match self.deadline() {
                Some(d) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(d.into()) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Sleeps for `d`, or less if the run stops first; `Err(reason)` when it stopped.
    pub async fn sleep(&self, d: Duration) -> Result<(), Reason> {
        tokio::select! {
            biased;
            _ = self.cancelled() => Err(self.reason().unwrap_or(Reason::Signal)),
            _ = tokio::time::sleep(d) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stop_wakes_a_sleeper_at_once() {
        let c = Cancel::new();
        let c2 = c.clone();
        let t = Instant::now();
        let sleeper = tokio::spawn(async move { c2.sleep(Duration::from_secs(60)).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        c.cancel(Reason::Signal);
        assert_eq!(sleeper.await.unwrap(), Err(Reason::Signal));
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn the_deadline_stops_the_run_and_a_signal_outranks_it() {
        let c = Cancel::new();
        c.set_deadline(Instant::now() + Duration::from_millis(30));
        assert!(!c.is_cancelled());
        assert!(c.would_cross_deadline(Duration::from_secs(1)));
        assert_eq!(
            c.sleep(Duration::from_secs(60)).await,
            Err(Reason::Deadline)
        );
        assert_eq!(c.reason(), Some(Reason::Deadline));
        c.cancel(Reason::Signal);
        assert_eq!(c.reason(), Some(Reason::Signal));
        c.cancel(Reason::Deadline);
        assert_eq!(c.reason(), Some(Reason::Signal));
    }
}
