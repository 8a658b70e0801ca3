//! Crash-safe, versioned state beside the data, the run lease, and the per-run manifest.
//!
//! Layout under the destination prefix `P`:
//!
//! ```text
//! P/_state/state-0000000042.json          one immutable object per state generation (the newest wins)
//! P/_state/lease.json                     the run lease: who is running on this prefix, until when
//! P/_state/lease.takeover-<hash>.json     short-lived claim marker (only on stores without etag CAS)
//! P/_runs/<run_id>/manifest.json          what one run did (files, rows, windows, errors)
//! P/_runs/<run_id>/commits/0000000042.json the files one state generation committed
//! ```
//!
//! **Why one object per generation** (and not one `state.json` updated with an etag): every backend
//! object_store supports — LocalFileSystem, S3, GCS, Azure, InMemory — implements
//! `PutMode::Create`, but LocalFileSystem does not implement `PutMode::Update`. Creating
//! generation `N+1` with `Create` is therefore an atomic compare-and-swap everywhere: two writers
//! that both start from generation `N` race for the same key and exactly one wins; the loser gets
//! [`StateError::Conflict`] and nothing is overwritten. A crash can never leave a half-written
//! state object (puts are atomic), and the previous generations stay readable as a fallback
//! ([`KEEP_GENERATIONS`] are kept).
//!
//! **Conditional writes are verified, not assumed.** Everything above rests on the store
//! refusing a `PutMode::Create` of an existing key; some S3-compatible servers (moto 4.x, older
//! MinIO/Ceph) ignore `If-None-Match` and overwrite instead, and then two runs both proceed.
//! Before writing the lease, [`StateStore::acquire_lease`] creates a probe object under `_state/`
//! twice ([`StateStore::probe_conditional_create`]; `check` runs the same probe): unless the
//! second create fails with `AlreadyExists`, the run is refused with
//! [`StateError::Unsupported`] (exit 5) — or, with the explicit `single_writer` opt-in
//! ([`StateStore::single_writer`]), goes on with a warning.
//!
//! **Data safety does not depend on the lease.** The lease stops a second run early (before it
//! downloads anything) and gives a readable error; the generation `Create` is what guarantees that
//! two runs can never both commit on top of the same state.
//!
//! **Manifests are true after any crash.** The union of all `manifest.json` files lists exactly
//! the data files that hold committed data, even when a run never got to write its own manifest
//! (killed, crashed, an error that ended the run early, the store failing at its end). Each state
//! commit works in two steps:
//!
//! 1. the run writes a *commit record* `_runs/<run_id>/commits/<generation>.json` naming the
//!    files that generation makes durable ([`CommitRecord`]);
//! 2. it creates state generation `<generation>`, which lists that generation under
//!    [`State::open_runs`]`[run_id]`.
//!
//! A record is therefore committed exactly when the state names its generation: a crash between
//! the steps leaves a record that no state names, and a failed commit is followed by a retry that
//! rewrites the same record. A run stays in `open_runs` until its manifest is final. The next run
//! on the prefix, once it holds the lease, *adopts* every open run but its own
//! ([`StateStore::adopt_open_runs`]): a run whose manifest exists with a final status is simply
//! dropped from the list; any other gets a manifest built from its committed records with status
//! [`status::CRASHED`], and is then dropped. Dropping is persisted by the adopter's first commit,
//! so an adopter that itself crashes first leaves the list as it was (adoption is idempotent).
//! Per-commit records (rather than a growing file list in the state) keep each state generation
//! small however many files a run writes.
//!
//! The state document is versioned ([`STATE_VERSION`]): a newer document is refused with
//! [`StateError::Incompatible`], a malformed one with [`StateError::Corrupt`] — never treated as
//! empty, because an empty state means "re-extract everything".

mod admin;
mod clock;
pub mod ids;
mod lease;
pub mod singer;

pub use admin::{LeaseClear, ResetOutcome};
pub use clock::{Clock, ManualClock, SystemClock};
pub use lease::{Lease, LeaseRecord};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

/// The newest state document version this build reads and writes.
pub const STATE_VERSION: u32 = 1;
/// The newest manifest version this build writes (stored as `"version"` in `manifest.json`).
pub const MANIFEST_VERSION: u32 = 1;
/// How many state generations are kept; older ones are deleted after a successful commit.
pub const KEEP_GENERATIONS: usize = 20;

/// Folder (under the destination prefix) holding the state generations and the lease.
pub const STATE_DIR: &str = "_state";
/// Folder (under the destination prefix) holding one sub-folder per run with its manifest.
pub const RUNS_DIR: &str = "_runs";
/// File name of the lease object inside [`STATE_DIR`].
pub const LEASE_FILE: &str = "lease.json";

/// Manifest / stream status values.
pub mod status {
    pub const SUCCESS: &str = "success";
    pub const PARTIAL: &str = "partial";
    pub const FAILED: &str = "failed";
    pub const INTERRUPTED: &str = "interrupted";
    /// For a manifest written at the start of a run (before it knows how it ends).
    pub const RUNNING: &str = "running";
    /// For a stream that was selected but not run (missing scope, earlier failure...).
    pub const SKIPPED: &str = "skipped";
    /// A run that ended without writing its manifest; the next run wrote it from the run's
    /// commit records (see the module docs). Its files are exactly the ones it committed.
    pub const CRASHED: &str = "crashed";
    /// A stream dropped from the state by `state reset` (its next sync re-reads it from scratch).
    pub const RESET: &str = "reset";
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// What went wrong with state, lease or manifest. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Another run holds the lease, or committed first, or took over this run's lease.
    #[error("{0}")]
    Conflict(String),
    /// A state or lease object cannot be parsed. Nothing was changed.
    #[error("corrupt state object `{key}`: {detail}")]
    Corrupt { key: String, detail: String },
    /// The state was written by a newer greenhouse-extract.
    #[error("{0}")]
    Incompatible(String),
    /// The store (or local file system) failed or refused the request.
    #[error("state storage error: {0}")]
    Store(String),
    /// The store lacks a capability the state needs (conditional writes). Nothing was changed.
    #[error("{0}")]
    Unsupported(String),
}

impl StateError {
    /// Maps to the crate's error groups (and so to the process exit codes):
    /// Conflict → `Conflict` (6); Corrupt / Incompatible / Store → `Destination` (5). A store
    /// failure says what to check.
    pub fn into_error(self) -> crate::error::Error {
        use crate::error::Error;
        match self {
            StateError::Conflict(m) => Error::Conflict(m),
            StateError::Store(m) => Error::Destination(format!(
                "{m}. Check that the destination is reachable and writable with these credentials (URL, AWS_ENDPOINT and region, network, permissions); `greenhouse-extract check` probes it"
            )),
            e @ (StateError::Corrupt { .. }
            | StateError::Incompatible(_)
            | StateError::Unsupported(_)) => Error::Destination(e.to_string()),
        }
    }
}

/// Why a store without conditional writes is refused, and what to do.
pub fn ignores_conditional_writes(prefix: &Path) -> String {
    format!(
        "the destination ignores conditional writes: creating `{}` twice with `If-None-Match: *` \
         (a create that must fail when the object exists) overwrote it instead of failing. On \
         such a store two runs on one prefix would both proceed and overwrite each other's lease \
         and state. Use a store that honours conditional writes (AWS S3, GCS, Azure, current \
         MinIO/Ceph/R2), or, if you guarantee that only one run at a time ever works on this \
         prefix, set \"single_writer\": true in the config file. Nothing was changed.",
        prefix
            .clone()
            .join(STATE_DIR)
            .join("conditional-write-probe-….json")
    )
}

pub(crate) fn store_err(op: &str, key: &Path, e: object_store::Error) -> StateError {
    StateError::Store(format!("{op} `{key}`: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------------

/// The state document: per stream, the bookmark of the last committed window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Document format version ([`STATE_VERSION`]).
    pub version: u32,
    /// 0 for "no state yet"; each commit writes `generation + 1`.
    pub generation: u64,
    /// When this generation was committed.
    #[serde(default)]
    pub updated_at: Option<DateTime<Utc>>,
    /// The run that committed this generation.
    #[serde(default)]
    pub last_run_id: Option<String>,
    #[serde(default)]
    pub streams: BTreeMap<String, StreamState>,
    /// Runs whose commits may be missing from every manifest (their own is not written yet): per
    /// run, the generations it committed, each with a commit record (see the module docs).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub open_runs: BTreeMap<String, OpenRun>,
}

/// A run listed in [`State::open_runs`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenRun {
    /// When the run started (its manifest's `started_at` if another run has to write it).
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// The state generations this run committed, ascending; each has a [`CommitRecord`].
    #[serde(default)]
    pub generations: Vec<u64>,
}

/// `P/_runs/<run_id>/commits/<generation>.json`: what one state generation committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitRecord {
    pub run_id: String,
    pub generation: u64,
    pub stream: String,
    /// The stream's whole window is committed (`false`: one slice of it).
    pub window_complete: bool,
    #[serde(default)]
    pub window_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub window_to: Option<DateTime<Utc>>,
    /// The files this generation made part of the committed data (none already committed).
    #[serde(default)]
    pub files: Vec<ManifestFile>,
}

impl Default for State {
    fn default() -> Self {
        State::empty()
    }
}

impl State {
    /// No state yet: generation 0, no streams (every stream starts from its configured start date).
    pub fn empty() -> Self {
        State {
            version: STATE_VERSION,
            generation: 0,
            updated_at: None,
            last_run_id: None,
            streams: BTreeMap::new(),
            open_runs: BTreeMap::new(),
        }
    }

    pub fn stream(&self, name: &str) -> Option<&StreamState> {
        self.streams.get(name)
    }

    /// The stream's bookmark (signpost of its last committed window), if any.
    pub fn bookmark(&self, name: &str) -> Option<DateTime<Utc>> {
        self.streams.get(name).and_then(|s| s.bookmark)
    }

    /// The stream's entry, created empty if missing.
    pub fn stream_mut(&mut self, name: &str) -> &mut StreamState {
        self.streams.entry(name.to_string()).or_default()
    }
}

/// One stream's committed position.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// The signpost of the last committed window: the next window starts here (minus lookback).
    #[serde(default)]
    pub bookmark: Option<DateTime<Utc>>,
    /// The run that committed this bookmark.
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub committed_at: Option<DateTime<Utc>>,
    /// Rows / files written by the committing run for this stream.
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub files: u64,
    /// Progress of an unfinished (resumable) window; `None` when the last window completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slices: Option<Slices>,
    /// The stream's id index ([`ids::IdIndex`]): where it is kept and what it holds. `None`
    /// for streams whose deletes need none, and before the first commit that builds one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ids: Option<IdsRef>,
    /// Records Greenhouse changed in place by erasing data (re-read after a `refresh` webhook,
    /// e.g. an anonymised candidate): per id, the instant its re-read began. Its rows extracted
    /// before then still hold the erased data; `purge` removes them and forgets the entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub erase_before: BTreeMap<i64, DateTime<Utc>>,
    /// What the last `purge` erased of this stream (a digest of its deleted ids): a purge with
    /// nothing new to erase reads no file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<String>,
}

/// Where a stream's id index is kept, and a summary of it (so `state show` needs no read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IdsRef {
    /// An object key relative to the destination prefix (`_state/ids/...`), or `inline:<base64>`
    /// for outputs without a store (Singer, Airbyte).
    pub key: String,
    pub live: u64,
    pub deleted: u64,
    /// When the stream's ids were last reconciled against a complete listing.
    #[serde(default)]
    pub reconciled_at: Option<DateTime<Utc>>,
}

/// Progress of a sliced window that has not been fully committed yet, so a crashed backfill
/// resumes where it stopped. The window `[window_from, window_to]` is cut at `cuts` into slices;
/// `done` holds the completed ones as half-open `[from, to)` ranges (the window's start is
/// [`BEGINNING`] when the window has no lower bound).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slices {
    /// Lower bound of the window being filled; `None` = from the beginning.
    #[serde(default)]
    pub window_from: Option<DateTime<Utc>>,
    /// The signpost (end) of the window being filled; the bookmark moves here once it is covered.
    pub window_to: DateTime<Utc>,
    /// Slice boundaries strictly inside the window, ascending.
    #[serde(default)]
    pub cuts: Vec<DateTime<Utc>>,
    /// Completed ranges, kept sorted and merged by [`Slices::mark_done`].
    #[serde(default)]
    pub done: Vec<Slice>,
    /// Raw files of completed slices whose merge into the current table waits for the window
    /// (object keys as written): a first read's slices are merged together, in one pass, when
    /// the window completes, and a run that stops before then leaves them here for the run
    /// that completes it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmerged: Vec<String>,
}

/// Stands for "no lower bound" in slice ranges: Greenhouse has no record updated before 1970.
pub const BEGINNING: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// A half-open `[from, to)` range of `updated_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slice {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

// The range algebra of `Slices` (cover, merge, resume) lives with the engine's slice planning
// (`sync/slices.rs`): the state document only holds the data.

/// What one run did; written to `P/_runs/<run_id>/manifest.json` (with a `"version"` key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the run is in progress.
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// One of [`status`]: "success" | "partial" | "failed" | "interrupted" (| "running").
    pub status: String,
    #[serde(default)]
    pub streams: BTreeMap<String, ManifestStream>,
}

impl Manifest {
    /// A manifest for a run that just started (status "running", no streams yet).
    pub fn new(run_id: impl Into<String>, started_at: DateTime<Utc>) -> Self {
        Manifest {
            run_id: run_id.into(),
            started_at,
            finished_at: None,
            status: status::RUNNING.to_string(),
            streams: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestStream {
    /// One of [`status`].
    pub status: String,
    #[serde(default)]
    pub window_from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub window_to: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rows: u64,
    /// Pages read (successful list responses written).
    #[serde(default)]
    pub pages: u64,
    /// Slices the window was read as (0: one chain).
    #[serde(default)]
    pub slices: u64,
    #[serde(default)]
    pub files: Vec<ManifestFile>,
    /// HTTP requests made for this stream (retries, probes and 429s included).
    #[serde(default)]
    pub requests: u64,
    /// Bytes of JSON received for this stream.
    #[serde(default)]
    pub bytes_fetched: u64,
    #[serde(default)]
    pub error: Option<String>,
    /// Records not written as rows because their primary key was absent, null or not of its
    /// type; each was saved whole in one of [`ManifestStream::error_objects`].
    #[serde(default)]
    pub quarantined: u64,
    /// Keys (relative to the store root) of the `_errors/` documents holding this stream's
    /// quarantined records (an unreadable page's document is named in [`ManifestStream::error`]).
    /// Never data files: a person reviews them. Both fields default, so older manifests read.
    #[serde(default)]
    pub error_objects: Vec<String>,
    /// What the run learned about deleted records (absent in manifests of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletes: Option<ManifestDeletes>,
    /// What the run did to the stream's current-state table (absent when it has none or the
    /// run left it untouched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<ManifestCurrent>,
}

/// What merges did to one stream's current-state table: one merge (what the current-tables module reports for it),
/// or, in a manifest, the run's merges and prunes summed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestCurrent {
    /// Delta versions committed (0: the table did not change).
    pub commits: u64,
    /// Ids the run's rows upserted and deleted (re-reads of unchanged records included).
    pub upserted: u64,
    pub deleted: u64,
    /// Ids whose row in the table changed: inserted, replaced or removed.
    pub changed: u64,
    pub files_removed: u64,
    pub files_added: u64,
    /// Bytes of the table's data files read to merge, and written.
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// Rows of the table's files decoded to merge (a re-read of unchanged records decodes only
    /// the row groups that can hold its ids).
    #[serde(default)]
    pub rows_read: u64,
    /// Time spent merging and committing, in milliseconds.
    pub merge_ms: u64,
    /// Custom-field values that did not fit their typed `cf_*` column (null there, kept in
    /// the row's `_extra`).
    #[serde(default)]
    pub custom_field_misfits: u64,
    /// Data files added to the long-format `custom_field_values` table.
    #[serde(default)]
    pub values_files_added: u64,
    /// Rows whose declared columns were copied from the raw files' encoded column chunks
    /// instead of decoded and encoded again (a first build from one descending run).
    #[serde(default)]
    pub rows_copied: u64,
}

impl ManifestCurrent {
    pub fn add(&mut self, o: &ManifestCurrent) {
        self.commits += o.commits;
        self.upserted += o.upserted;
        self.deleted += o.deleted;
        self.changed += o.changed;
        self.files_removed += o.files_removed;
        self.files_added += o.files_added;
        self.bytes_read += o.bytes_read;
        self.rows_read += o.rows_read;
        self.bytes_written += o.bytes_written;
        self.merge_ms += o.merge_ms;
        self.custom_field_misfits += o.custom_field_misfits;
        self.values_files_added += o.values_files_added;
        self.rows_copied += o.rows_copied;
    }
}

/// Deletes of one stream in one run (see the run summary's `deletes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestDeletes {
    pub reconciled: bool,
    pub reconcile_requests: u64,
    pub tombstones: u64,
    pub by_reconcile: u64,
    pub by_cascade: u64,
    pub by_webhook: u64,
    pub refreshed: u64,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// Object key, relative to the store root (as object_store prints it).
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
}

/// Adds `"version"` in front of a document when serializing.
#[derive(Serialize)]
struct Versioned<'a, T: Serialize> {
    version: u32,
    #[serde(flatten)]
    doc: &'a T,
}

// ---------------------------------------------------------------------------------------------
// Parsing with readable errors
// ---------------------------------------------------------------------------------------------

/// `recovery`: what the user should do with the broken object (appended to the detail).
fn parse_state(bytes: &[u8], key: &str, recovery: &str) -> Result<State, StateError> {
    let corrupt = |what: String| StateError::Corrupt {
        key: key.to_string(),
        detail: format!("{what}. Nothing was changed. {recovery}"),
    };
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("not valid JSON ({e})")))?;
    if !value.is_object() {
        return Err(corrupt("not a JSON object".into()));
    }
    let version = match value.get("version") {
        None => return Err(corrupt("no \"version\" field".into())),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| corrupt(format!("\"version\" is {v}, expected a positive integer")))?,
    };
    if version == 0 {
        return Err(corrupt("\"version\" is 0".into()));
    }
    if version > u64::from(STATE_VERSION) {
        return Err(StateError::Incompatible(format!(
            "state object `{key}` has version {version}, but this greenhouse-extract supports state \
             version {STATE_VERSION} at most: it was written by a newer release. Upgrade \
             greenhouse-extract, or use another destination prefix (or --state-file). Nothing was changed."
        )));
    }
    serde_json::from_value(value).map_err(|e| corrupt(format!("unexpected content ({e})")))
}

fn parse_generation(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("state-")?.strip_suffix(".json")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Run ids become path segments: keep them to a safe alphabet.
pub(crate) fn check_run_id(run_id: &str) -> Result<(), StateError> {
    let ok = !run_id.is_empty()
        && run_id.len() <= 128
        && run_id != "."
        && run_id != ".."
        && run_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(StateError::Store(format!(
            "invalid run id {run_id:?}: use 1-128 characters from A-Z a-z 0-9 - _ . (a UUID works)"
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// StateStore
// ---------------------------------------------------------------------------------------------

/// State, lease and manifests of one destination prefix.
#[derive(Clone)]
pub struct StateStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    clock: Arc<dyn Clock>,
    single_writer: bool,
}

impl std::fmt::Debug for StateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateStore")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl StateStore {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: Path) -> Self {
        StateStore {
            store,
            prefix,
            clock: Arc::new(SystemClock),
            single_writer: false,
        }
    }

    /// With `true`, a store that ignores conditional writes is used anyway (with a warning)
    /// instead of being refused: the user guarantees one run at a time (see the module docs).
    pub fn single_writer(self, single_writer: bool) -> Self {
        StateStore {
            single_writer,
            ..self
        }
    }

    /// The same store reading "now" from `clock` (for leases and `updated_at`; see [`Clock`]).
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        StateStore { clock, ..self }
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// `P/_state`
    pub fn state_dir(&self) -> Path {
        self.prefix.clone().join(STATE_DIR)
    }

    /// `P/_state/state-<generation:010>.json`
    pub fn generation_key(&self, generation: u64) -> Path {
        self.state_dir()
            .join(format!("state-{generation:010}.json"))
    }

    /// `P/_state/lease.json`
    pub fn lease_key(&self) -> Path {
        self.state_dir().join(LEASE_FILE)
    }

    /// `P/_runs/<run_id>/manifest.json`
    pub fn manifest_key(&self, run_id: &str) -> Path {
        self.prefix
            .clone()
            .join(RUNS_DIR)
            .join(run_id)
            .join("manifest.json")
    }

    /// `P/_runs/<run_id>/commits/<generation:010>.json`
    pub fn commit_record_key(&self, run_id: &str, generation: u64) -> Path {
        self.prefix
            .clone()
            .join(RUNS_DIR)
            .join(run_id)
            .join("commits")
            .join(format!("{generation:010}.json"))
    }

    /// Existing generations, ascending.
    pub async fn generations(&self) -> Result<Vec<u64>, StateError> {
        let dir = self.state_dir();
        // One level only: a recursive listing also walked `_state/ids/` (every stream's index
        // files), and every state commit lists, so a run's listings grew with streams × files.
        let metas = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(|e| store_err("list", &dir, e))?
            .objects;
        let mut gens: Vec<u64> = metas
            .iter()
            .filter(|m| m.location.parts_count() == dir.parts_count() + 1)
            .filter_map(|m| m.location.filename().and_then(parse_generation))
            .collect();
        gens.sort_unstable();
        gens.dedup();
        Ok(gens)
    }

    /// Current state (highest generation) or an empty State with generation 0 if none exists.
    pub async fn load(&self) -> Result<State, StateError> {
        let gens = self.generations().await?;
        let Some(&newest) = gens.last() else {
            return Ok(State::empty());
        };
        let previous = gens.len().checked_sub(2).map(|i| gens[i]);
        self.read_generation(newest, previous).await
    }

    async fn read_generation(
        &self,
        generation: u64,
        previous: Option<u64>,
    ) -> Result<State, StateError> {
        let key = self.generation_key(generation);
        let bytes = self.read_object(&key).await?;
        let recovery = match previous {
            Some(p) => format!(
                "To recover, repair this object, or delete it to fall back to the previous \
                 generation `{}` (streams then re-read from that generation's bookmarks).",
                self.generation_key(p)
            ),
            None => "To recover, repair this object, or delete it to start from an empty state \
                     (every stream is then re-extracted from its start date)."
                .to_string(),
        };
        let key_s = key.to_string();
        let state = parse_state(&bytes, &key_s, &recovery)?;
        if state.generation != generation {
            return Err(StateError::Corrupt {
                key: key_s,
                detail: format!(
                    "it says generation {} but its name says {generation}. Nothing was changed. {recovery}",
                    state.generation
                ),
            });
        }
        Ok(state)
    }

    /// Takes the run lease; see [`Lease`]. A live lease of another run → [`StateError::Conflict`]
    /// naming that run; an expired one (a crashed run) is taken over atomically.
    pub async fn acquire_lease(&self, run_id: &str, ttl: Duration) -> Result<Lease, StateError> {
        check_run_id(run_id)?;
        if !self.probe_conditional_create().await? {
            if !self.single_writer {
                return Err(StateError::Unsupported(ignores_conditional_writes(
                    &self.prefix,
                )));
            }
            crate::events::conditional_writes_ignored(&self.prefix);
        }
        lease::acquire(
            self.store.clone(),
            self.state_dir(),
            self.lease_key(),
            run_id,
            ttl,
            self.clock.clone(),
        )
        .await
    }

    /// Whether the store refuses to create an existing object (`PutMode::Create`, S3
    /// `If-None-Match: *`): creates `P/_state/conditional-write-probe-<uuid>.json` twice and
    /// expects the second create to fail with `AlreadyExists`, then deletes the probe.
    /// `Ok(false)`: the second create overwrote the first.
    pub async fn probe_conditional_create(&self) -> Result<bool, StateError> {
        let key = self.state_dir().join(format!(
            "conditional-write-probe-{}.json",
            uuid::Uuid::now_v7()
        ));
        let create = |n: u8| {
            let body = format!("{{\"probe\": {n}}}\n");
            self.store.put_opts(
                &key,
                PutPayload::from(body),
                PutOptions::from(PutMode::Create),
            )
        };
        create(1)
            .await
            .map_err(|e| store_err("create a probe object", &key, e))?;
        let honoured = match create(2).await {
            Err(object_store::Error::AlreadyExists { .. }) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) => Err(store_err("create a probe object again", &key, e)),
        };
        if let Err(e) = self.store.delete(&key).await {
            crate::events::probe_delete_failed(&key, &e);
        }
        honoured
    }

    /// The current lease object, if any (for `status`-style commands and messages).
    pub async fn read_lease(&self) -> Result<Option<LeaseRecord>, StateError> {
        lease::read_record(self.store.as_ref(), &self.lease_key())
            .await
            .map(|o| o.map(|(rec, _, _)| rec))
    }

    /// Writes generation `next.generation + 1` with `PutMode::Create` and returns it (with
    /// `version`, `generation`, `updated_at` and `last_run_id` filled in).
    ///
    /// `next` is the loaded state with the caller's changes; its `generation` must stay the one
    /// it was loaded with. Before writing, the lease is renewed (which proves this run still holds
    /// it). Err(Conflict) if another writer created that generation (or a newer one) first; then
    /// nothing was written. After a successful commit, generations older than the newest
    /// [`KEEP_GENERATIONS`] are deleted (best effort).
    pub async fn commit(&self, lease: &Lease, next: State) -> Result<State, StateError> {
        if lease.key() != &self.lease_key() {
            return Err(StateError::Store(format!(
                "commit on `{}` with the lease of another prefix (`{}`): this is a bug",
                self.prefix,
                lease.key()
            )));
        }
        lease.renew().await?;

        let base = next.generation;
        let new_gen = base
            .checked_add(1)
            .ok_or_else(|| StateError::Store("generation overflow".into()))?;
        let gens = self.generations().await?;
        if let Some(&newest) = gens.last()
            && newest > base
        {
            return Err(StateError::Conflict(format!(
                "the state changed while run {} was working: generation {newest} exists, but this \
                 run's changes are based on generation {base}. Another run wrote to this prefix \
                 (check `{}` and `{}/`). Nothing was overwritten; run again to continue from the new state.",
                lease.run_id(),
                self.lease_key(),
                self.prefix.clone().join(RUNS_DIR),
            )));
        }

        let doc = State {
            version: STATE_VERSION,
            generation: new_gen,
            updated_at: Some(self.clock.now()),
            last_run_id: Some(lease.run_id().to_string()),
            streams: next.streams,
            open_runs: next.open_runs,
        };
        let key = self.generation_key(new_gen);
        let body = serde_json::to_vec_pretty(&doc)
            .map_err(|e| StateError::Store(format!("serialize state: {e}")))?;
        match self
            .store
            .put_opts(
                &key,
                PutPayload::from(body),
                PutOptions::from(PutMode::Create),
            )
            .await
        {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                return Err(StateError::Conflict(format!(
                    "state generation `{key}` was written by another run first (run {} based its \
                     changes on generation {base}). Nothing was overwritten; check `{}` for the \
                     other run and run again afterwards.",
                    lease.run_id(),
                    self.lease_key()
                )));
            }
            Err(e) => return Err(store_err("write", &key, e)),
        }
        crate::events::state_committed(new_gen, &key);

        // Best-effort pruning: keep the newest KEEP_GENERATIONS (including the one just written).
        let mut all = gens;
        all.push(new_gen);
        if all.len() > KEEP_GENERATIONS {
            let cut = all.len() - KEEP_GENERATIONS;
            for g in &all[..cut] {
                let old = self.generation_key(*g);
                match self.store.delete(&old).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => crate::events::state_prune_failed(&old, &e),
                }
            }
        }
        Ok(doc)
    }

    /// Writes (or rewrites) `P/_runs/<run_id>/manifest.json`; returns its key.
    pub async fn write_manifest(
        &self,
        run_id: &str,
        manifest: &Manifest,
    ) -> Result<String, StateError> {
        check_run_id(run_id)?;
        let key = self.manifest_key(run_id);
        let body = serde_json::to_vec_pretty(&Versioned {
            version: MANIFEST_VERSION,
            doc: manifest,
        })
        .map_err(|e| StateError::Store(format!("serialize manifest: {e}")))?;
        self.store
            .put(&key, PutPayload::from(body))
            .await
            .map_err(|e| store_err("write", &key, e))?;
        Ok(key.to_string())
    }

    /// The whole object at `key` (a state generation, manifest or commit record).
    async fn read_object(&self, key: &Path) -> Result<bytes::Bytes, StateError> {
        let object = self
            .store
            .get(key)
            .await
            .map_err(|e| store_err("read", key, e))?;
        object.bytes().await.map_err(|e| store_err("read", key, e))
    }

    /// Every run's manifest, with its key (the union of their files is every committed data
    /// file; see the module docs).
    pub async fn manifests(&self) -> Result<Vec<(Path, Manifest)>, StateError> {
        let runs = self.prefix.clone().join("_runs");
        let keys: Vec<Path> = self
            .store
            .list(Some(&runs))
            .map_ok(|m| m.location)
            .try_filter(|k| futures::future::ready(k.filename() == Some("manifest.json")))
            .try_collect()
            .await
            .map_err(|e| store_err("list", &runs, e))?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let bytes = self
                .store
                .get(&key)
                .await
                .map_err(|e| store_err("read", &key, e))?
                .bytes()
                .await
                .map_err(|e| store_err("read", &key, e))?;
            let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
                key: key.to_string(),
                detail: format!("manifest is not readable ({e})"),
            })?;
            out.push((key, m));
        }
        Ok(out)
    }

    /// Reads a run's manifest; `None` if that run wrote none.
    pub async fn read_manifest(&self, run_id: &str) -> Result<Option<Manifest>, StateError> {
        check_run_id(run_id)?;
        let key = self.manifest_key(run_id);
        let bytes = match self.store.get(&key).await {
            Ok(r) => r.bytes().await.map_err(|e| store_err("read", &key, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_err("read", &key, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                key: key.to_string(),
                detail: format!("manifest is not readable ({e})"),
            })
    }
}

impl StateStore {
    /// Writes (or rewrites: a failed commit is retried under the same generation) the commit
    /// record of `record.generation`. Call it before committing that generation.
    pub async fn write_commit_record(&self, record: &CommitRecord) -> Result<(), StateError> {
        check_run_id(&record.run_id)?;
        let key = self.commit_record_key(&record.run_id, record.generation);
        let body = serde_json::to_vec_pretty(record)
            .map_err(|e| StateError::Store(format!("serialize commit record: {e}")))?;
        self.store
            .put(&key, PutPayload::from(body))
            .await
            .map_err(|e| store_err("write", &key, e))?;
        Ok(())
    }

    async fn read_commit_record(
        &self,
        run_id: &str,
        generation: u64,
    ) -> Result<CommitRecord, StateError> {
        let key = self.commit_record_key(run_id, generation);
        let bytes = self.read_object(&key).await?;
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            key: key.to_string(),
            detail: format!("commit record is not readable ({e})"),
        })
    }

    /// The manifest of run `run_id` as its commit records tell it: status [`status::CRASHED`],
    /// per stream every committed file (each once), the window of its last record.
    pub async fn manifest_from_records(
        &self,
        run_id: &str,
        open: &OpenRun,
    ) -> Result<Manifest, StateError> {
        let mut records = Vec::with_capacity(open.generations.len());
        for g in &open.generations {
            records.push(self.read_commit_record(run_id, *g).await?);
        }
        let mut manifest = Manifest::new(run_id, open.started_at.unwrap_or(DateTime::UNIX_EPOCH));
        manifest.status = status::CRASHED.to_string();
        manifest.finished_at = Some(self.clock.now());
        let mut seen = std::collections::BTreeSet::new();
        for r in records {
            let entry = manifest.streams.entry(r.stream.clone()).or_default();
            if r.window_complete {
                entry.status = crate::events::status::COMMITTED.to_string();
            } else if entry.status.is_empty() {
                entry.status = crate::events::status::INTERRUPTED.to_string();
            }
            entry.window_from = r.window_from;
            entry.window_to = r.window_to;
            for f in r.files {
                if seen.insert(f.key.clone()) {
                    entry.rows += f.rows;
                    entry.files.push(f);
                }
            }
        }
        Ok(manifest)
    }

    /// Finalises the manifests of the runs in `state.open_runs` other than `own_run_id` (see the
    /// module docs) and returns the runs that no longer need to be listed. A run whose manifest
    /// cannot be finalised now (a store error) stays listed, for the next run to try again.
    pub async fn adopt_open_runs(&self, state: &State, own_run_id: &str) -> Vec<String> {
        let mut done = Vec::new();
        for (run_id, open) in &state.open_runs {
            if run_id == own_run_id {
                continue;
            }
            let adopted = async {
                if let Some(m) = self.read_manifest(run_id).await?
                    && m.status != status::RUNNING
                {
                    return Ok::<_, StateError>(None);
                }
                let manifest = self.manifest_from_records(run_id, open).await?;
                let files = manifest.streams.values().map(|s| s.files.len()).sum();
                self.write_manifest(run_id, &manifest)
                    .await
                    .map(|k| Some((k, files)))
            }
            .await;
            match adopted {
                Ok(None) => done.push(run_id.clone()),
                Ok(Some((key, files))) => {
                    crate::events::manifest_adopted(run_id, &key, files);
                    done.push(run_id.clone());
                }
                Err(e) => crate::events::manifest_adopt_failed(run_id, &e),
            }
        }
        done
    }
}

// ---------------------------------------------------------------------------------------------
// --state-file: the state document kept in a local file, outside the destination
// ---------------------------------------------------------------------------------------------

/// Reads a state file (`--state-file`): this tool's state document, or a Singer STATE
/// (`{"bookmarks": …}`, see [`singer`]). A missing file is an empty state (generation 0);
/// a malformed one is [`StateError::Corrupt`].
pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<State, StateError> {
    let path = path.as_ref();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::empty()),
        Err(e) => {
            return Err(StateError::Store(format!(
                "read state file {}: {e}",
                path.display()
            )));
        }
    };
    // A Singer STATE (as the tap prints it) is read too; the file is then rewritten in that
    // form (see `prepare_file`).
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes)
        && singer::is_singer(&value)
    {
        let registry = file_registry().map_err(|detail| StateError::Corrupt {
            key: path.display().to_string(),
            detail,
        })?;
        return singer::from_singer(
            &value,
            registry,
            "its Singer STATE",
            "Repair the file, or delete it to re-read every stream from its start date.",
        )
        .map_err(|detail| StateError::Corrupt {
            key: path.display().to_string(),
            detail,
        });
    }
    parse_state(
        &bytes,
        &path.display().to_string(),
        "To recover, repair the file (or restore it from a backup), or delete it to start from an \
         empty state (every stream is then re-extracted from its start date).",
    )
}

/// The streams a Singer-form state file is read and written with (their cursor names): this
/// build's own, as the tap uses.
fn file_registry() -> Result<&'static crate::registry::Registry, String> {
    static REGISTRY: std::sync::OnceLock<Result<crate::registry::Registry, String>> =
        std::sync::OnceLock::new();
    REGISTRY
        .get_or_init(|| crate::registry::Registry::embedded().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

/// Writes a state file atomically: `<path>.tmp`, fsync, rename over `path`, fsync the folder.
/// The state is written as given (the caller sets `generation` / `updated_at`).
pub fn save_file(path: impl AsRef<std::path::Path>, state: &State) -> Result<(), StateError> {
    prepare_file(path, state)?.publish()
}

/// Checks, before a run reads anything, that the state file `path` can be written where
/// [`save_file`] writes it: its folder exists and takes a new file (`<path>.tmp`, created and
/// removed again), and `path` is not a folder. The file itself is left untouched.
pub fn check_file_writable(path: impl AsRef<std::path::Path>) -> Result<(), StateError> {
    let path = path.as_ref();
    if path.is_dir() {
        return Err(StateError::Store(format!(
            "state file {} is a folder; give a file path",
            path.display()
        )));
    }
    let tmp = tmp_path(path);
    std::fs::File::create(&tmp).map_err(|e| {
        StateError::Store(format!(
            "cannot write the state file {} ({e}): its folder must exist and be writable",
            path.display()
        ))
    })?;
    let _ = std::fs::remove_file(&tmp);
    Ok(())
}

/// A state file written and synced beside its final name, not yet in place (see
/// [`prepare_file`]). Dropping it without [`PreparedFile::publish`] removes it.
#[derive(Debug)]
pub struct PreparedFile {
    path: std::path::PathBuf,
    tmp: Option<std::path::PathBuf>,
}

/// The first half of [`save_file`]: writes `state` to `<path>.tmp` and syncs it. A commit that
/// must keep the state file and the destination in step prepares the file first (a full disk or
/// a read-only folder fails here, before the destination moves), commits the destination, then
/// publishes.
pub fn prepare_file(
    path: impl AsRef<std::path::Path>,
    state: &State,
) -> Result<PreparedFile, StateError> {
    use std::io::Write;
    let path = path.as_ref();
    let tmp = tmp_path(path);
    // Written back in the form it was read in: a Singer STATE stays one.
    let singer_form = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| singer::is_singer(&v));
    let body = if singer_form {
        let registry = file_registry().map_err(StateError::Store)?;
        serde_json::to_vec_pretty(&singer::to_singer(state, registry))
    } else {
        serde_json::to_vec_pretty(state)
    }
    .map_err(|e| StateError::Store(format!("serialize state: {e}")))?;
    let prepared = PreparedFile {
        path: path.to_path_buf(),
        tmp: Some(tmp.clone()),
    };
    let mut f = std::fs::File::create(&tmp).map_err(|e| file_err("create", &tmp, e))?;
    f.write_all(&body).map_err(|e| file_err("write", &tmp, e))?;
    f.write_all(b"\n").map_err(|e| file_err("write", &tmp, e))?;
    f.sync_all().map_err(|e| file_err("sync", &tmp, e))?;
    Ok(prepared)
}

impl PreparedFile {
    /// Renames the prepared file over the state file and syncs the folder.
    pub fn publish(mut self) -> Result<(), StateError> {
        let tmp = self.tmp.take().expect("a prepared file is published once");
        if let Err(e) = std::fs::rename(&tmp, &self.path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(file_err("replace", &self.path, e));
        }
        // Make the rename durable (best effort: not every platform can open a directory).
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for PreparedFile {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn tmp_path(path: &std::path::Path) -> std::path::PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::path::PathBuf::from(tmp)
}

fn file_err(what: &str, p: &std::path::Path, e: std::io::Error) -> StateError {
    StateError::Store(format!("{what} state file {}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_manifest_stream_from_before_quarantine_counts_still_reads() {
        let old: ManifestStream =
            serde_json::from_str(r#"{"status": "committed", "rows": 3}"#).unwrap();
        assert_eq!(old.quarantined, 0);
        assert!(old.error_objects.is_empty());
    }

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn generation_names() {
        assert_eq!(parse_generation("state-0000000042.json"), Some(42));
        assert_eq!(
            parse_generation("state-12345678901.json"),
            Some(12_345_678_901)
        );
        assert_eq!(parse_generation("lease.json"), None);
        assert_eq!(parse_generation("state-.json"), None);
        assert_eq!(parse_generation("state-00x1.json"), None);
    }

    #[test]
    fn state_json_shape() {
        let mut s = State::empty();
        s.stream_mut("candidates").bookmark = Some(t(1));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(
            v["streams"]["candidates"]["bookmark"],
            "2024-01-01T01:00:00Z"
        );
        assert!(v["streams"]["candidates"].get("slices").is_none());
        let back: State = serde_json::from_value(v).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn run_ids() {
        assert!(check_run_id("0190f3a2-7c1e-7abc-9def-0123456789ab").is_ok());
        assert!(check_run_id("").is_err());
        assert!(check_run_id("..").is_err());
        assert!(check_run_id("a/b").is_err());
    }
}
