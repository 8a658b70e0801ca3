//! Operator actions on a destination's state: reset chosen streams (they re-backfill on the
//! next sync) and clear a stale run lease.
//!
//! Contract: a reset is an ordinary state commit under the run lease — it waits for no one and
//! refuses (Conflict) while a run holds the lease, writes a new generation with
//! `PutMode::Create` (so it can never overwrite a run's commit), keeps every other stream and
//! the open-run list as they were, and is recorded: the generation names the reset's run id, and
//! `_runs/<run_id>/manifest.json` lists the reset streams with status [`status::RESET`]. Data
//! files are never deleted: the re-read rows are new extractions of the same primary keys, which
//! consumers de-duplicate as usual. Clearing the lease never removes a lease whose holder is a
//! live process on this host.

use std::time::Duration;

use chrono::Utc;
use object_store::ObjectStoreExt;

use super::lease::{self, LeaseRecord};
use super::{Manifest, ManifestStream, State, StateError, StateStore, status};
use crate::events;

/// What [`StateStore::reset_streams`] did.
#[derive(Debug)]
pub struct ResetOutcome {
    /// The run id the reset committed under (`None`: nothing to reset, nothing written).
    pub run_id: Option<String>,
    /// The new state (the loaded one when nothing was written).
    pub state: State,
    /// Streams whose bookmark and slice progress were dropped.
    pub reset: Vec<String>,
    /// Requested streams that had no state entry (they already start from scratch).
    pub absent: Vec<String>,
    /// The manifest that records the reset.
    pub manifest_key: Option<String>,
}

/// What [`StateStore::clear_lease`] did.
#[derive(Debug)]
pub enum LeaseClear {
    /// There was no lease.
    NoLease,
    /// The lease was deleted; this was its holder.
    Cleared(LeaseRecord),
}

impl StateStore {
    /// Drops `streams` from the state (bookmark, slice progress, counters) in one new generation,
    /// under a lease taken for `run_id`. Another run holding the lease → Conflict, nothing changed.
    pub async fn reset_streams(
        &self,
        run_id: &str,
        streams: &[String],
        ttl: Duration,
    ) -> Result<ResetOutcome, StateError> {
        let lease = self.acquire_lease(run_id, ttl).await?;
        let out = self.reset_under(&lease, streams).await;
        lease.release().await;
        out
    }

    async fn reset_under(
        &self,
        lease: &lease::Lease,
        streams: &[String],
    ) -> Result<ResetOutcome, StateError> {
        let loaded = self.load().await?;
        let mut next = loaded.clone();
        let (mut reset, mut absent) = (Vec::new(), Vec::new());
        for name in streams {
            if reset.contains(name) || absent.contains(name) {
                continue;
            }
            match next.streams.remove(name) {
                Some(_) => reset.push(name.clone()),
                None => absent.push(name.clone()),
            }
        }
        if reset.is_empty() {
            return Ok(ResetOutcome {
                run_id: None,
                state: loaded,
                reset,
                absent,
                manifest_key: None,
            });
        }
        let started = Utc::now();
        let state = self.commit(lease, next).await?;
        let mut manifest = Manifest::new(lease.run_id(), started);
        manifest.finished_at = Some(Utc::now());
        manifest.status = status::SUCCESS.to_string();
        for name in &reset {
            let before = loaded.stream(name);
            manifest.streams.insert(
                name.clone(),
                ManifestStream {
                    status: status::RESET.to_string(),
                    window_from: None,
                    window_to: before.and_then(|s| s.bookmark),
                    rows: 0,
                    pages: 0,
                    slices: 0,
                    files: Vec::new(),
                    requests: 0,
                    bytes_fetched: 0,
                    error: None,
                    quarantined: 0,
                    error_objects: Vec::new(),
                    deletes: None,
                    current: None,
                },
            );
        }
        let manifest_key = self.write_manifest(lease.run_id(), &manifest).await?;
        events::state_reset(lease.run_id(), &reset.join(","), state.generation);
        Ok(ResetOutcome {
            run_id: Some(lease.run_id().to_string()),
            state,
            reset,
            absent,
            manifest_key: Some(manifest_key),
        })
    }

    /// Deletes the run lease if it is stale: expired, or held by a process of this host that no
    /// longer exists. A live lease of another host is deleted only with `force` (this host cannot
    /// see whether that process still runs). A lease whose holder is a live process on this host
    /// is never deleted. Refusals are Conflict errors naming the holder; nothing is changed.
    pub async fn clear_lease(&self, force: bool) -> Result<LeaseClear, StateError> {
        let key = self.lease_key();
        let Some((rec, bytes, _)) = lease::read_record(self.store.as_ref(), &key).await? else {
            return Ok(LeaseClear::NoLease);
        };
        let now = self.clock.now();
        if rec.holder_is_alive_here() {
            return Err(StateError::Conflict(format!(
                "the lease `{key}` is held by {}, and that process is running on this host. Let it \
                 finish, or stop it (kill {}) first; the lease is not removed while its holder lives, \
                 even with --force. Nothing was changed.",
                rec.describe(),
                rec.pid
            )));
        }
        if rec.is_live(now) && !rec.holder_is_gone() && !force {
            return Err(StateError::Conflict(format!(
                "the lease `{key}` is held by {}, valid until {}. This host cannot tell whether \
                 that process still runs. If you are sure it is gone, run `state unlock --force`; \
                 otherwise wait: an abandoned lease expires by itself and the next run takes it \
                 over. Nothing was changed.",
                rec.describe(),
                lease::ts(rec.expires_at)
            )));
        }
        // No conditional delete in object_store: re-read and delete only the lease we judged.
        match lease::read_record(self.store.as_ref(), &key).await? {
            Some((_, again, _)) if again == bytes => {}
            Some(_) => {
                return Err(StateError::Conflict(format!(
                    "the lease `{key}` changed while it was being cleared (a run took it or renewed \
                     it). Nothing was changed; look again with `state show`."
                )));
            }
            None => return Ok(LeaseClear::NoLease),
        }
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(super::store_err("delete", &key, e)),
        }
        events::lease_cleared(&key, &rec.describe(), force);
        Ok(LeaseClear::Cleared(rec))
    }
}
