//! The run lease `P/_state/lease.json`: stops two runs from working on the same prefix.
//!
//! Race safety, per primitive:
//! * **Acquire**: `PutMode::Create` (all backends) — of two runs, exactly one creates the object.
//! * **Take over an expired lease** (a crashed run): `PutMode::Update` with the etag/version from
//!   the `get` that showed it expired (S3, GCS, Azure, InMemory) — of two runs taking over the same
//!   expired lease, exactly one succeeds. LocalFileSystem answers `NotImplemented` for `Update`;
//!   there we first *claim* that exact lease version by hard-linking it to
//!   `lease.takeover-<sha256 of its bytes>.json` (`copy_if_not_exists`, atomic on a local file
//!   system), check the claimed bytes are the expired lease we read, then delete `lease.json` and
//!   `Create` ours. Two runs racing for the same expired version collide on the claim name; a run
//!   that read an older version finds different bytes in its claim and backs off. A new `Create`
//!   from a third run in between simply makes our `Create` fail → Conflict.
//! * **Renew**: `Update` with the etag of our last write; on LocalFileSystem, read → check it is
//!   still ours → overwrite.
//!
//! Remaining windows (LocalFileSystem only, documented rather than hidden): a renewal's
//! read-check-overwrite, and a take-over's claim-check-delete, each leave a gap of a few
//! microseconds in which a concurrent writer's lease can be replaced. This needs a run whose own
//! lease had already expired to act in that gap; the run that lost its lease notices at its next
//! renewal (or commit, which renews first) and stops. And even then the state cannot be damaged:
//! state generations are written with `PutMode::Create`, so two runs can never both commit on top
//! of the same generation. `release` is a read-check-delete on every backend (object_store has no
//! conditional delete); it only runs at the end of a run, on a lease that is ours and live.
//!
//! Clocks: `expires_at` is compared with the *reader's* clock. Choose a ttl much larger than the
//! heartbeat interval plus any clock skew between the machines sharing a prefix (e.g. ttl 10 min,
//! heartbeat 1 min).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use tokio::sync::{Mutex, watch};

use super::{Clock, StateError, check_run_id, store_err};

use crate::events;

/// The content of `lease.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl LeaseRecord {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.expires_at > now
    }

    /// The holder ran on this host and its process no longer exists (killed, crashed): its
    /// lease may be taken over at once instead of after it expires, so a re-run right after a
    /// `kill -9` or an OOM kill does not have to wait out the ttl. Only decided where the
    /// process table can be read (Linux `/proc`); elsewhere the ttl decides. A reused pid only
    /// makes us wait for the expiry, never take a live lease.
    pub fn holder_is_gone(&self) -> bool {
        let proc_root = std::path::Path::new("/proc/self");
        self.host == hostname()
            && self.pid != std::process::id()
            && proc_root.exists()
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// The holder is a process of this host that is still running (never judged from another
    /// host, nor where the process table cannot be read).
    pub fn holder_is_alive_here(&self) -> bool {
        let proc_root = std::path::Path::new("/proc/self");
        self.host == hostname()
            && proc_root.exists()
            && std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Same lease holder (the same acquisition): renewals change only the times after `started_at`.
    fn same_holder(&self, other: &LeaseRecord) -> bool {
        self.run_id == other.run_id
            && self.host == other.host
            && self.pid == other.pid
            && self.started_at == other.started_at
    }

    /// `run R (host H, pid P, started …, last heartbeat …)`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "run {} (host {}, pid {}, started {}, last heartbeat {})",
            self.run_id,
            self.host,
            self.pid,
            ts(self.started_at),
            ts(self.heartbeat_at)
        )
    }
}

/// RFC 3339 to the second, in UTC (readable in error messages).
pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn hostname() -> String {
    for var in ["HOSTNAME", "COMPUTERNAME"] {
        if let Ok(h) = std::env::var(var)
            && !h.trim().is_empty()
        {
            return h.trim().to_string();
        }
    }
    for file in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(h) = std::fs::read_to_string(file)
            && !h.trim().is_empty()
        {
            return h.trim().to_string();
        }
    }
    "unknown".to_string()
}

fn ttl_delta(ttl: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(ttl).unwrap_or(chrono::TimeDelta::MAX)
}

fn body(rec: &LeaseRecord) -> PutPayload {
    PutPayload::from(serde_json::to_vec_pretty(rec).expect("lease record serializes"))
}

fn parse_record(bytes: &[u8], key: &Path) -> Result<LeaseRecord, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
        key: key.to_string(),
        detail: format!(
            "the run lease is not readable ({e}). If no greenhouse-extract run is active on this \
             destination, delete `{key}` and run again."
        ),
    })
}

/// Reads the lease: record, raw bytes, and the version to `Update` against.
pub(super) async fn read_record(
    store: &dyn ObjectStore,
    key: &Path,
) -> Result<Option<(LeaseRecord, bytes::Bytes, UpdateVersion)>, StateError> {
    let res = match store.get(key).await {
        Ok(r) => r,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(store_err("read", key, e)),
    };
    let version = UpdateVersion {
        e_tag: res.meta.e_tag.clone(),
        version: res.meta.version.clone(),
    };
    let bytes = res.bytes().await.map_err(|e| store_err("read", key, e))?;
    let rec = parse_record(&bytes, key)?;
    Ok(Some((rec, bytes, version)))
}

fn live_conflict(key: &Path, other: &LeaseRecord) -> StateError {
    StateError::Conflict(format!(
        "another run holds the lease `{key}`: {}, valid until {}. Wait for it to finish; if that \
         process is gone, delete `{key}`, or wait until the lease expires (the next run then takes \
         it over). Nothing was changed.",
        other.describe(),
        ts(other.expires_at),
    ))
}

/// Outcome of one take-over attempt.
enum TakeOver {
    Took(UpdateVersion),
    /// The lease changed under us: look again.
    Changed,
}

pub(super) async fn acquire(
    store: Arc<dyn ObjectStore>,
    state_dir: Path,
    key: Path,
    run_id: &str,
    ttl: Duration,
    clock: Arc<dyn Clock>,
) -> Result<Lease, StateError> {
    check_run_id(run_id)?;
    let started = clock.now();
    let mut rec = LeaseRecord {
        run_id: run_id.to_string(),
        host: hostname(),
        pid: std::process::id(),
        started_at: started,
        heartbeat_at: started,
        expires_at: started + ttl_delta(ttl),
    };

    const ATTEMPTS: usize = 4;
    for _ in 0..ATTEMPTS {
        match store
            .put_opts(&key, body(&rec), PutOptions::from(PutMode::Create))
            .await
        {
            Ok(r) => return Ok(Lease::new(store, key, ttl, clock, rec, r.into(), None)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(store_err("create", &key, e)),
        }
        let Some((existing, bytes, version)) = read_record(store.as_ref(), &key).await? else {
            continue; // released between our create and our read: try again
        };
        if existing.same_holder(&rec) {
            // Our own create succeeded but its response was lost and the retry saw it.
            return Ok(Lease::new(store, key, ttl, clock, existing, version, None));
        }
        let now = clock.now();
        if existing.is_live(now) && !existing.holder_is_gone() {
            return Err(live_conflict(&key, &existing));
        }

        // Expired: a crashed (or hung) run. Take it over atomically.
        rec.heartbeat_at = now;
        rec.expires_at = now + ttl_delta(ttl);
        let taken = match store
            .put_opts(&key, body(&rec), PutOptions::from(PutMode::Update(version)))
            .await
        {
            Ok(r) => TakeOver::Took(r.into()),
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::NotFound { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => TakeOver::Changed,
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => take_over_by_claim(store.as_ref(), &state_dir, &key, &bytes, &rec).await?,
            Err(e) => return Err(store_err("take over", &key, e)),
        };
        match taken {
            TakeOver::Took(v) => {
                events::lease_taken_over(&key, &existing.describe(), &ts(existing.expires_at));
                return Ok(Lease::new(store, key, ttl, clock, rec, v, Some(existing)));
            }
            TakeOver::Changed => continue,
        }
    }
    Err(StateError::Conflict(format!(
        "could not take the lease `{key}`: it kept changing while run {run_id} tried {ATTEMPTS} \
         times (other runs are starting on this destination). Wait for them to finish and run again."
    )))
}

/// Take-over on stores without `PutMode::Update` (LocalFileSystem); see the module comment.
async fn take_over_by_claim(
    store: &dyn ObjectStore,
    state_dir: &Path,
    key: &Path,
    expired_bytes: &[u8],
    rec: &LeaseRecord,
) -> Result<TakeOver, StateError> {
    let digest = hex::encode(sha2::Sha256::digest(expired_bytes));
    let claim = state_dir
        .clone()
        .join(format!("lease.takeover-{}.json", &digest[..16]));
    match store.copy_if_not_exists(key, &claim).await {
        Ok(()) => {}
        // Someone else claimed this version, or the lease vanished: look again.
        Err(object_store::Error::AlreadyExists { .. } | object_store::Error::NotFound { .. }) => {
            return Ok(TakeOver::Changed);
        }
        Err(
            object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. },
        ) => {
            // Last resort (a store with neither etag CAS nor create-if-absent copy): a lost race
            // still ends in AlreadyExists on the Create below for one of the two runs.
            return delete_then_create(store, key, rec).await;
        }
        Err(e) => return Err(store_err("claim", &claim, e)),
    }
    let claimed = match store.get(&claim).await {
        Ok(r) => r.bytes().await.map_err(|e| store_err("read", &claim, e))?,
        Err(e) => return Err(store_err("read", &claim, e)),
    };
    if claimed.as_ref() != expired_bytes {
        // The lease changed between our read and our claim (renewed, or already taken over).
        let _ = store.delete(&claim).await;
        return Ok(TakeOver::Changed);
    }
    let out = delete_then_create(store, key, rec).await;
    if let Err(e) = store.delete(&claim).await {
        events::lease_claim_delete_failed(&claim, &e);
    }
    out
}

async fn delete_then_create(
    store: &dyn ObjectStore,
    key: &Path,
    rec: &LeaseRecord,
) -> Result<TakeOver, StateError> {
    match store.delete(key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
        Err(e) => return Err(store_err("delete expired lease", key, e)),
    }
    match store
        .put_opts(key, body(rec), PutOptions::from(PutMode::Create))
        .await
    {
        Ok(r) => Ok(TakeOver::Took(r.into())),
        Err(object_store::Error::AlreadyExists { .. }) => Ok(TakeOver::Changed),
        Err(e) => Err(store_err("create", key, e)),
    }
}

// ---------------------------------------------------------------------------------------------
// Lease
// ---------------------------------------------------------------------------------------------

struct Held {
    record: LeaseRecord,
    version: UpdateVersion,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    key: Path,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    run_id: String,
    /// Serializes renewals (heartbeat task vs commit), so each uses the etag of the previous one.
    held: Mutex<Held>,
    /// `Some(reason)` once the lease is known to be lost. Never goes back to `None`.
    lost: watch::Sender<Option<String>>,
    /// `true` once released or dropped: stops the heartbeat task.
    stop: watch::Sender<bool>,
    /// The lease this one took over (its holder crashed or expired), if any.
    previous: Option<LeaseRecord>,
}

/// A held run lease. Keep it alive with [`Lease::spawn_heartbeat`]; check [`Lease::lost`] (or
/// `watch_lost`) between units of work; [`Lease::release`] at the end. Dropping it stops the
/// heartbeat but leaves the object to expire (as after a crash).
pub struct Lease {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.inner.key)
            .field("run_id", &self.inner.run_id)
            .field("ttl", &self.inner.ttl)
            .field("lost", &*self.inner.lost.borrow())
            .finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.inner.stop.send_replace(true);
    }
}

impl Lease {
    fn new(
        store: Arc<dyn ObjectStore>,
        key: Path,
        ttl: Duration,
        clock: Arc<dyn Clock>,
        record: LeaseRecord,
        version: UpdateVersion,
        previous: Option<LeaseRecord>,
    ) -> Self {
        Lease {
            inner: Arc::new(Inner {
                store,
                key,
                ttl,
                clock,
                run_id: record.run_id.clone(),
                held: Mutex::new(Held { record, version }),
                lost: watch::Sender::new(None),
                stop: watch::Sender::new(false),
                previous,
            }),
        }
    }

    /// The lease of a run that ended without releasing it (killed, crashed), when this one
    /// took it over: that run may have left files it never committed.
    pub fn taken_over(&self) -> Option<&LeaseRecord> {
        self.inner.previous.as_ref()
    }

    pub fn run_id(&self) -> &str {
        &self.inner.run_id
    }

    /// The lease object's key (`P/_state/lease.json`).
    pub fn key(&self) -> &Path {
        &self.inner.key
    }

    pub fn ttl(&self) -> Duration {
        self.inner.ttl
    }

    /// True once a renewal found the lease taken over or deleted, or heartbeats kept failing
    /// until it expired. The run must stop committing (commits would fail anyway).
    pub fn lost(&self) -> bool {
        self.inner.lost.borrow().is_some()
    }

    /// Why the lease was lost, if it was.
    pub fn lost_reason(&self) -> Option<String> {
        self.inner.lost.borrow().clone()
    }

    /// A receiver that changes to `Some(reason)` when the lease is lost (for `tokio::select!`).
    pub fn watch_lost(&self) -> watch::Receiver<Option<String>> {
        self.inner.lost.subscribe()
    }

    /// Extends the lease (`heartbeat_at` = now, `expires_at` = now + ttl). Err(Conflict) if
    /// another run took it over or it was deleted (the lease is then marked lost); Err(Store) for
    /// a store failure (the lease may still be ours: try again).
    pub async fn renew(&self) -> Result<(), StateError> {
        renew(&self.inner).await
    }

    /// Renews the lease every `every` until it is released, dropped or lost. A renewal that fails
    /// with a store error is retried at the next tick; once the lease has expired without a
    /// successful renewal it is marked lost. Watch [`Lease::lost`].
    pub fn spawn_heartbeat(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let inner = self.inner.clone();
        let mut stop = inner.stop.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                if *stop.borrow() || inner.lost.borrow().is_some() {
                    return;
                }
                match renew(&inner).await {
                    Ok(()) => {}
                    Err(StateError::Conflict(reason)) => {
                        events::lease_lost(&inner.key, &inner.run_id, &reason);
                        return;
                    }
                    Err(e) => {
                        let expires = inner.held.lock().await.record.expires_at;
                        if inner.clock.now() >= expires {
                            let reason = format!(
                                "the run lease `{}` of run {} expired at {} because it could not be \
                                 renewed ({e}); another run may take it over, so this run stops.",
                                inner.key,
                                inner.run_id,
                                ts(expires)
                            );
                            events::lease_lost(&inner.key, &inner.run_id, &reason);
                            inner.lost.send_replace(Some(reason));
                            return;
                        }
                        events::lease_renew_failed(&inner.key, &e);
                    }
                }
            }
        })
    }

    /// Stops the heartbeat and deletes the lease object if it is still ours (best effort; failures
    /// are logged, the lease then simply expires).
    pub async fn release(self) {
        let inner = self.inner.clone();
        inner.stop.send_replace(true);
        let held = inner.held.lock().await;
        match read_record(inner.store.as_ref(), &inner.key).await {
            Ok(Some((rec, _, _))) if rec.same_holder(&held.record) => {
                // No conditional delete in object_store: a read-check-delete (see module comment).
                match inner.store.delete(&inner.key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        events::lease_released(&inner.key)
                    }
                    Err(e) => events::lease_release_failed(&inner.key, &e),
                }
            }
            Ok(Some((rec, _, _))) => events::lease_not_ours(&inner.key, &rec.describe()),
            Ok(None) => {}
            Err(e) => events::lease_release_failed(&inner.key, &e),
        }
        drop(held);
        // Drop (of `self`) sends stop again: harmless.
    }
}

async fn renew(inner: &Inner) -> Result<(), StateError> {
    if let Some(reason) = inner.lost.borrow().clone() {
        return Err(StateError::Conflict(reason));
    }
    let mut held = inner.held.lock().await;
    let now = inner.clock.now();
    let mut next = held.record.clone();
    next.heartbeat_at = now;
    next.expires_at = now + ttl_delta(inner.ttl);

    // Update against the etag/version of our last write. If the object is still ours but the
    // version differs (a retried request whose first attempt had succeeded), adopt the version
    // we read and try once more.
    let mut attempts = 0;
    while held.version.e_tag.is_some() || held.version.version.is_some() {
        attempts += 1;
        match inner
            .store
            .put_opts(
                &inner.key,
                body(&next),
                PutOptions::from(PutMode::Update(held.version.clone())),
            )
            .await
        {
            Ok(r) => {
                held.version = r.into();
                held.record = next;
                return Ok(());
            }
            Err(
                object_store::Error::Precondition { .. }
                | object_store::Error::NotFound { .. }
                | object_store::Error::AlreadyExists { .. },
            ) => match read_record(inner.store.as_ref(), &inner.key).await? {
                Some((rec, _, version)) if rec.same_holder(&held.record) && attempts < 2 => {
                    held.version = version;
                }
                _ => {
                    let reason = describe_loss(inner, &held.record).await;
                    return Err(mark_lost(inner, reason));
                }
            },
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => break,
            Err(e) => return Err(store_err("renew lease", &inner.key, e)),
        }
    }
    // LocalFileSystem: read, check it is still ours, overwrite (small window: module comment).
    match read_record(inner.store.as_ref(), &inner.key).await? {
        Some((rec, _, _)) if rec.same_holder(&held.record) => {}
        _ => {
            let reason = describe_loss(inner, &held.record).await;
            return Err(mark_lost(inner, reason));
        }
    }
    let r = inner
        .store
        .put_opts(
            &inner.key,
            body(&next),
            PutOptions::from(PutMode::Overwrite),
        )
        .await
        .map_err(|e| store_err("renew lease", &inner.key, e))?;
    held.version = r.into();
    held.record = next;
    Ok(())
}

fn mark_lost(inner: &Inner, reason: String) -> StateError {
    inner.lost.send_replace(Some(reason.clone()));
    StateError::Conflict(reason)
}

async fn describe_loss(inner: &Inner, ours: &LeaseRecord) -> String {
    let tail = "This run stops without committing further state, so that two runs never write \
                the same prefix; the streams it already committed stay committed.";
    match read_record(inner.store.as_ref(), &inner.key).await {
        Ok(Some((other, _, _))) if !other.same_holder(ours) => format!(
            "run {} lost its lease `{}`: {} took it over (this run's lease was valid until {}; its \
             heartbeats must have been late or failing — use a longer lease ttl if runs pause for \
             long). {tail}",
            inner.run_id,
            inner.key,
            other.describe(),
            ts(ours.expires_at)
        ),
        Ok(Some(_)) => format!(
            "run {} lost its lease `{}`: the object was changed by someone else while this run held \
             it. {tail}",
            inner.run_id, inner.key
        ),
        Ok(None) => format!(
            "run {} lost its lease `{}`: the object was deleted while this run was working (by hand, \
             or by another run after it expired). {tail}",
            inner.run_id, inner.key
        ),
        Err(e) => format!(
            "run {} lost its lease `{}` (and reading it failed: {e}). {tail}",
            inner.run_id, inner.key
        ),
    }
}
