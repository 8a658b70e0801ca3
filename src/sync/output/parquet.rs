//! The main job's output: typed Parquet files on the destination ([`crate::sink`]), a new state
//! generation per commit beside them under the run's lease ([`crate::state`]), and a manifest of
//! the run's files at the end.
//!
//! Contract: a commit is refused once the run has lost its lease (another run took over), so
//! two runs can never both advance a bookmark; with a Singer-style state file the committed
//! state is also written there (bookmarks come from the file, generations from the destination).
//! Files of a unit that will not be committed are deleted, so the destination never holds an
//! unreferenced file that looks complete. What cannot be written as rows — records without a
//! usable primary key, a page that stays unreadable — is saved (secrets masked) as a JSON
//! document under [`ERRORS_DIR`], and its key is reported with the stream.
//!
//! Webhook events: those `webhooks serve` stored under the destination ([`crate::webhooks`])
//! are read for the deletes phase; an object there that is not a stored event is logged and
//! kept. Dropping an applied event drops the later copies of it (Greenhouse's retries) too.
//!
//! Manifests: before each state generation, the files it commits are written to that
//! generation's commit record and the generation lists the run under `open_runs`, so a run
//! that never writes its manifest gets one from the next run ([`ParquetOutput::adopt`]; the
//! protocol is in [`crate::state`]). The run's own manifest lists only files it committed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};

use super::{CommitUnit, Output, PageOut, UnitWriter, WebhookEvent, WriteError};
use crate::config::ColumnPolicy;
use crate::convert::Converter;
use crate::error::{Error, ExitCode};
use crate::events;
use crate::registry::Stream;
use crate::sink::{RollingWriter, WrittenFile};
use crate::state::{
    CommitRecord, Lease, Manifest, ManifestFile, ManifestStream, OpenRun, State, StateError,
    StateStore,
};
use crate::storage::Destination;
use crate::sync::options::{RunReport, Selected, SyncOptions};

/// Where id indexes live, relative to the destination prefix: `<IDS_DIR>/<stream>/<digest>.ids`
/// (content-addressed, so a rewrite never changes an object a state generation names).
pub const IDS_DIR: &str = "_state/ids";

/// `prefix` joined with a `/`-separated relative key.
fn rel_path(prefix: &Path, rel: &str) -> Path {
    rel.split('/')
        .filter(|p| !p.is_empty())
        .fold(prefix.clone(), |p, part| p.join(part))
}

/// Parquet on `dest`, state in `store` under `lease`.
pub struct ParquetOutput<'a> {
    pub dest: &'a Destination,
    pub store: &'a StateStore,
    pub lease: &'a Lease,
    pub opts: &'a SyncOptions,
    pub policies: &'a BTreeMap<String, ColumnPolicy>,
    /// Keys of the files this run committed (each is recorded once, in its first commit).
    committed: Mutex<BTreeSet<String>>,
    /// Later copies of each webhook event read, by the key of the copy returned.
    webhook_duplicates: Mutex<BTreeMap<String, Vec<String>>>,
    /// Merge each commit into the stream's current-state table ([`crate::current`]), and
    /// vacuum the files replaced longer ago than this at the end of the run.
    current_tables: Option<std::time::Duration>,
    /// The current tables this run opened.
    tables: crate::current::Tables,
    /// How the raw files are written: the run's options with the row groups the writer memory
    /// budget allows ([`ParquetOutput::with_memory`]).
    sink: crate::sink::SinkConfig,
    /// Raw files merged into their current table, and the full-refresh streams whose complete
    /// read replaced their table (see `merge_unit`).
    merged_keys: Mutex<BTreeSet<String>>,
    refreshed: Mutex<BTreeSet<String>>,
    /// The last state generation this run wrote (or found), for merges outside the lock.
    last_generation: AtomicU64,
    /// What the run did to each stream's current table (for the manifest).
    current_stats: Mutex<BTreeMap<String, crate::state::ManifestCurrent>>,
}

impl<'a> ParquetOutput<'a> {
    pub fn new(
        dest: &'a Destination,
        store: &'a StateStore,
        lease: &'a Lease,
        opts: &'a SyncOptions,
        policies: &'a BTreeMap<String, ColumnPolicy>,
    ) -> Self {
        ParquetOutput {
            dest,
            store,
            lease,
            opts,
            policies,
            committed: Mutex::new(BTreeSet::new()),
            webhook_duplicates: Mutex::new(BTreeMap::new()),
            current_tables: None,
            tables: crate::current::Tables::default(),
            sink: opts.sink.clone(),
            merged_keys: Mutex::new(BTreeSet::new()),
            refreshed: Mutex::new(BTreeSet::new()),
            last_generation: AtomicU64::new(0),
            current_stats: Mutex::new(BTreeMap::new()),
        }
    }

    /// Also keeps the streams' current-state tables (see [`crate::current`]), vacuuming
    /// the files replaced longer ago than `retention` at the end of each run.
    pub fn with_current_tables(mut self, on: bool, retention: std::time::Duration) -> Self {
        self.current_tables = on.then_some(retention);
        self
    }

    /// Holds the writers to `memory`, the run's writer memory budget ([`crate::memory`]), in
    /// one place: the raw files' row groups and the current-table merges' rounds.
    pub fn with_memory(mut self, memory: &crate::memory::WriterMemory) -> Self {
        self.sink.row_group_bytes = memory.row_group_bytes;
        self.tables = crate::current::Tables::new(memory.round_bytes);
        self
    }

    /// Merges `unit`'s files into `stream`'s current table, once: files merged before (by the
    /// unit before its commit, or by a window's slices) are not merged again, nor is a
    /// full-refresh stream's table replaced twice. `generation` is the state generation the
    /// merge belongs to (the one about to be written, or the last written when it runs before
    /// the commit took the state lock).
    async fn merge_unit(
        &self,
        stream: &Stream,
        unit: &CommitUnit<'_>,
        generation: u64,
    ) -> Result<(), Error> {
        if self.current_tables.is_none() || unit.merge_later {
            return Ok(());
        }
        let full_refresh = !stream.is_incremental() && unit.window_complete;
        let keys: Vec<object_store::path::Path> = {
            let merged = self.merged_keys.lock().unwrap_or_else(|e| e.into_inner());
            let pending = unit
                .pending
                .iter()
                .map(|k| object_store::path::Path::parse(k).unwrap_or_else(|_| k.as_str().into()));
            let mut keys: Vec<object_store::path::Path> = Vec::new();
            for key in pending.chain(unit.files.iter().map(|f| f.key.clone())) {
                if !merged.contains(key.as_ref()) && !keys.contains(&key) {
                    keys.push(key);
                }
            }
            keys
        };
        let done = match full_refresh {
            true => self
                .refreshed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&stream.name),
            false => keys.is_empty(),
        };
        if done {
            return Ok(());
        }
        let raw_schema = crate::privacy::raw_schema(self.policies, stream);
        let started = std::time::Instant::now();
        let applied = self
            .tables
            .apply(
                self.dest,
                stream,
                &raw_schema,
                &keys,
                full_refresh,
                &self.opts.run_id,
                generation,
            )
            .await
            .map_err(|e| Error::Destination(e.to_string()))?;
        self.merged_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(keys.iter().map(|k| k.to_string()));
        if full_refresh {
            self.refreshed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(stream.name.clone());
        }
        self.count_current(&stream.name, &applied, started.elapsed());
        if applied.custom_field_misfits > 0 {
            events::custom_field_misfits(&stream.name, applied.custom_field_misfits);
        }
        events::current_table_merged(
            &stream.name,
            applied.upserted,
            applied.deleted,
            applied.files_removed,
            applied.files_added,
            applied.bytes_written,
        );
        Ok(())
    }

    /// Adds one merge (or prune) of `stream`'s current table to the run's numbers.
    fn count_current(
        &self,
        stream: &str,
        applied: &crate::current::Applied,
        took: std::time::Duration,
    ) {
        let mut stats = self.current_stats.lock().unwrap_or_else(|e| e.into_inner());
        let entry = stats.entry(stream.to_string()).or_default();
        entry.add(applied);
        entry.merge_ms += took.as_millis() as u64;
    }

    /// Writes the manifests of earlier runs that ended without one (see [`crate::state`]) and
    /// drops the finalised runs from `state` (persisted by this run's first commit).
    pub async fn adopt(&self, state: &mut State) {
        let done = self.store.adopt_open_runs(state, &self.opts.run_id).await;
        state.open_runs.retain(|run, _| !done.contains(run));
        if let Some(crashed) = self.lease.taken_over() {
            self.sweep(crashed).await;
        }
    }

    /// Deletes the raw files a crashed run closed but never committed (killed between a file
    /// and its commit, e.g. during a current-table merge): no manifest lists them, their rows
    /// are read again by this run, and after this the manifests list exactly the data files.
    /// Best effort; a purge in progress keeps its files (it resumes from its plan).
    async fn sweep(&self, crashed: &crate::state::LeaseRecord) {
        if crashed.run_id == self.opts.run_id {
            return;
        }
        let store = &self.dest.store;
        let plan = rel_path(&self.dest.prefix, crate::purge::PLAN_KEY);
        if store.head(&plan).await.is_ok() {
            return;
        }
        let committed: BTreeSet<String> = match self.store.read_manifest(&crashed.run_id).await {
            Ok(Some(m)) => m
                .streams
                .values()
                .flat_map(|s| s.files.iter().map(|f| f.key.clone()))
                .collect(),
            Ok(None) => BTreeSet::new(),
            Err(_) => return,
        };
        let Ok(top) = store.list_with_delimiter(Some(&self.dest.prefix)).await else {
            return;
        };
        let name = format!("part-{}-", crashed.run_id);
        let day = crashed.started_at.date_naive();
        let days = [day, day.succ_opt().unwrap_or(day)];
        let mut removed = 0;
        for dir in top.common_prefixes {
            let stream = dir.filename().unwrap_or_default();
            if stream.starts_with('_') || stream == crate::current::table::CURRENT_DIR {
                continue;
            }
            for d in days {
                let part = dir
                    .clone()
                    .join(format!("extracted_date={}", d.format("%Y-%m-%d")).as_str());
                let Ok(list) = store.list_with_delimiter(Some(&part)).await else {
                    continue;
                };
                for o in list.objects {
                    let file = o.location.filename().unwrap_or_default();
                    if file.starts_with(&name) && !committed.contains(o.location.as_ref()) {
                        match store.delete(&o.location).await {
                            Ok(()) => removed += 1,
                            Err(e) => events::file_delete_failed(&o.location, "uncommitted", &e),
                        }
                    }
                }
            }
        }
        if removed > 0 {
            events::uncommitted_files_removed(&crashed.run_id, removed);
        }
    }

    fn committed(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.committed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Output for ParquetOutput<'_> {
    async fn save_ids(&self, stream: &Stream, bytes: Vec<u8>) -> Result<String, Error> {
        use sha2::Digest;
        let digest = hex::encode(&sha2::Sha256::digest(&bytes)[..12]);
        let rel = format!("{IDS_DIR}/{}/{digest}.ids", stream.name);
        let key = rel_path(&self.dest.prefix, &rel);
        self.dest
            .store
            .put(&key, PutPayload::from(bytes))
            .await
            .map_err(|e| Error::Destination(format!("cannot write the id index {key}: {e}")))?;
        Ok(rel)
    }

    async fn load_ids(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        if let Some(b) = super::decode_inline_ids(key) {
            return Ok(Some(b));
        }
        let path = rel_path(&self.dest.prefix, key);
        match self.dest.store.get(&path).await {
            Ok(r) => {
                r.bytes().await.map(|b| Some(b.to_vec())).map_err(|e| {
                    Error::Destination(format!("cannot read the id index {path}: {e}"))
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::Destination(format!(
                "cannot read the id index {path}: {e}"
            ))),
        }
    }

    async fn drop_ids(&self, key: &str) {
        if key.starts_with(IDS_DIR) {
            let path = rel_path(&self.dest.prefix, key);
            let _ = self.dest.store.delete(&path).await;
        }
    }

    async fn webhook_events(
        &self,
        until: chrono::DateTime<Utc>,
    ) -> Result<Vec<WebhookEvent>, Error> {
        let scan = crate::webhooks::store::scan(self.dest.store.as_ref(), &self.dest.prefix, until)
            .await
            .map_err(|e| Error::Destination(e.to_string()))?;
        for u in &scan.unreadable {
            events::webhook_event_unusable(&u.key, &u.reason);
        }
        *self
            .webhook_duplicates
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = scan.duplicates;
        Ok(scan
            .events
            .into_iter()
            .map(|e| WebhookEvent {
                key: e.key,
                action: e.action,
                received_at: e.received_at,
                payload: e.payload,
            })
            .collect())
    }

    async fn drop_webhook_event(&self, key: &str) {
        let copies = self
            .webhook_duplicates
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key)
            .unwrap_or_default();
        for k in std::iter::once(key).chain(copies.iter().map(String::as_str)) {
            if let Err(e) = crate::webhooks::drop_event(self.dest.store.as_ref(), k).await {
                events::webhook_event_drop_failed(k, &e);
            }
        }
    }

    fn open(
        &self,
        sel: &Selected<'_>,
        tag: Option<&str>,
        extracted_at: Option<DateTime<Utc>>,
    ) -> Result<Box<dyn UnitWriter>, WriteError> {
        let stream = sel.stream;
        let policy = self.policies.get(&stream.name).cloned().unwrap_or_default();
        let converter = Converter::new(
            stream,
            &self.opts.run_id,
            extracted_at.unwrap_or(self.opts.started_at),
        );
        let schema = policy.schema(&converter.schema());
        let mut writer = RollingWriter::new(
            self.dest.store.clone(),
            &self.dest.prefix,
            stream,
            &self.opts.run_id,
            self.opts.started_at,
            schema.clone(),
            self.sink.clone(),
        )
        .map_err(|e| WriteError::Output(e.to_string()))?;
        if let Some(tag) = tag {
            writer = writer.with_file_tag(tag);
        }
        Ok(Box::new(ParquetUnit {
            converter,
            policy,
            schema,
            writer,
            errors: ErrorObjects {
                store: self.dest.store.clone(),
                dir: self
                    .dest
                    .prefix
                    .clone()
                    .join(ERRORS_DIR)
                    .join(stream.name.as_str()),
                stream: stream.name.clone(),
                run_id: self.opts.run_id.clone(),
            },
        }))
    }

    fn merges_current_tables(&self) -> bool {
        self.current_tables.is_some()
    }

    async fn merge(&self, stream: &Stream, unit: &CommitUnit<'_>) -> Result<(), Error> {
        let generation = self.last_generation.load(Ordering::Relaxed);
        self.merge_unit(stream, unit, generation).await
    }

    async fn commit(
        &self,
        stream: &Stream,
        unit: &CommitUnit<'_>,
        mut next: State,
    ) -> Result<State, Error> {
        self.last_generation
            .fetch_max(next.generation, Ordering::Relaxed);
        if self.lease.lost() {
            return Err(Error::Conflict(format!(
                "this run lost its lease on the destination ({}); another run took over",
                self.lease.lost_reason().unwrap_or_default()
            )));
        }
        if self.opts.state_file.is_some() {
            // Bookmarks come from the state file; generations are numbered by the destination.
            next.generation = self
                .store
                .generations()
                .await
                .map_err(StateError::into_error)?
                .last()
                .copied()
                .unwrap_or(0);
        }
        // The state file is written (beside its name) before the destination's state moves, so
        // a full disk or a read-only folder fails the commit with both still in step; it is put
        // in place only once the destination committed. It holds the generation the
        // destination is about to write (its `updated_at` is when it was prepared).
        let prepared = match &self.opts.state_file {
            Some(path) => {
                let doc = State {
                    version: crate::state::STATE_VERSION,
                    generation: next.generation + 1,
                    updated_at: Some(Utc::now()),
                    last_run_id: Some(self.lease.run_id().to_string()),
                    ..next.clone()
                };
                let prepared = crate::state::prepare_file(path, &doc).map_err(|e| {
                    Error::Destination(format!(
                        "cannot write the state file {}: {e}. Neither it nor the destination's state was changed.",
                        path.display()
                    ))
                })?;
                Some((path, prepared))
            }
            None => None,
        };
        // The commit record first, then the generation that names it (see `crate::state`).
        let new_files: Vec<ManifestFile> = {
            let committed = self.committed();
            unit.files
                .iter()
                .filter(|f| !committed.contains(f.key.as_ref()))
                .map(manifest_file)
                .collect()
        };
        let generation = next.generation + 1;
        let run_id = &self.opts.run_id;
        // Raw files durable → the current table → the bookmark (see `crate::current`); the
        // unit was usually merged before the state lock was taken (`Output::merge`).
        self.merge_unit(stream, unit, generation).await?;
        self.store
            .write_commit_record(&CommitRecord {
                run_id: run_id.clone(),
                generation,
                stream: stream.name.clone(),
                window_complete: unit.window_complete,
                window_from: unit.window_from,
                window_to: unit.window_to,
                files: new_files.clone(),
            })
            .await
            .map_err(StateError::into_error)?;
        next.open_runs
            .entry(run_id.clone())
            .or_insert_with(|| OpenRun {
                started_at: Some(self.opts.started_at),
                generations: Vec::new(),
            })
            .generations
            .push(generation);
        let committed = self
            .store
            .commit(self.lease, next)
            .await
            .map_err(StateError::into_error)?;
        self.last_generation
            .fetch_max(committed.generation, Ordering::Relaxed);
        self.committed()
            .extend(new_files.into_iter().map(|f| f.key));
        if let Some((path, prepared)) = prepared {
            prepared.publish().map_err(|e| {
                Error::Fatal(format!(
                    "cannot put the state file {} in place after the destination committed: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(committed)
    }

    async fn reconciled(&self, stream: &Stream, live: &[i64]) -> Result<u64, Error> {
        if self.current_tables.is_none() {
            return Ok(0);
        }
        let raw_schema = crate::privacy::raw_schema(self.policies, stream);
        // The deletes phase follows the stream's commits: the last generation is known.
        let generation = self.last_generation.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        let pruned = self
            .tables
            .prune(
                self.dest,
                stream,
                &raw_schema,
                live,
                &self.opts.run_id,
                generation,
            )
            .await
            .map_err(|e| Error::Destination(e.to_string()))?;
        self.count_current(&stream.name, &pruned, started.elapsed());
        Ok(pruned.deleted)
    }

    async fn discard(&self, files: Vec<WrittenFile>) {
        for f in files {
            if let Err(e) = self.dest.store.delete(&f.key).await {
                events::file_delete_failed(&f.key, "uncommitted", &e);
            }
        }
    }

    fn custom_field_misfits(&self, stream: &str) -> u64 {
        self.current_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
            .map_or(0, |c| c.custom_field_misfits)
    }

    async fn finish(&self, report: &RunReport) -> Option<String> {
        let current = self
            .current_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Replaced files past the retention go (a failure only postpones it to the next run),
        // in the tables this run committed to.
        if let Some(retention) = self.current_tables {
            for (name, _) in current.iter().filter(|(_, c)| c.commits > 0) {
                if let Err(e) = self.tables.vacuum(self.dest, name, retention, false).await {
                    events::current_table_vacuum_failed(name, &e);
                }
            }
            let values = crate::registry::CUSTOM_FIELD_VALUES;
            if self.tables.values_committed()
                && let Err(e) = self
                    .tables
                    .vacuum(self.dest, values, retention, false)
                    .await
            {
                events::current_table_vacuum_failed(values, &e);
            }
        }
        let manifest = manifest_of(report, self.opts, &self.committed(), &current);
        match self
            .store
            .write_manifest(&self.opts.run_id, &manifest)
            .await
        {
            Ok(key) => Some(key),
            Err(e) => {
                events::manifest_failed(&e);
                None
            }
        }
    }
}

/// The folder, under the destination prefix, of what could not be written as rows: unreadable
/// pages and quarantined records, one JSON document each (`_errors/<stream>/<run_id>-<n>.json`).
/// Readers of `<stream>/**/*.parquet` never see it.
pub const ERRORS_DIR: &str = "_errors";

/// Numbers this process's `_errors/` documents, so concurrent units of a run never share a key.
static ERROR_SEQ: AtomicU64 = AtomicU64::new(0);

/// Where one unit files what it could not write as rows.
struct ErrorObjects {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    stream: String,
    run_id: String,
}

impl ErrorObjects {
    /// Saves `doc` (with every registered secret masked) as a new document; returns its key.
    async fn save(&self, doc: serde_json::Value) -> Result<String, WriteError> {
        let n = ERROR_SEQ.fetch_add(1, Ordering::Relaxed);
        let key = self
            .dir
            .clone()
            .join(format!("{}-{n:04}.json", self.run_id));
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        let text = crate::secrets::scrub(&text).into_owned();
        self.store
            .put_opts(&key, PutPayload::from(text), PutMode::Create.into())
            .await
            .map_err(|e| WriteError::Output(format!("cannot save {key}: {e}")))?;
        events::error_object_saved(
            &self.stream,
            key.as_ref(),
            doc["reason"].as_str().unwrap_or(""),
        );
        Ok(key.to_string())
    }
}

/// Why records are in a quarantine document.
pub const QUARANTINED_REASON: &str = "records without a usable primary key";

/// One unit's converter and rolling file writer.
struct ParquetUnit {
    converter: Converter,
    policy: ColumnPolicy,
    schema: arrow_schema::SchemaRef,
    writer: RollingWriter,
    errors: ErrorObjects,
}

#[async_trait]
impl UnitWriter for ParquetUnit {
    async fn write_tombstones(
        &mut self,
        rows: &[crate::state::ids::Deleted],
    ) -> Result<(), WriteError> {
        let Some(key) = self.converter.primary_key() else {
            return Ok(());
        };
        if rows.is_empty() {
            return Ok(());
        }
        let batch = crate::convert::tombstone_batch(
            &self.converter.schema(),
            key,
            rows,
            self.converter.run_id(),
            self.converter.extracted_at(),
        )
        .and_then(|b| self.policy.apply(&b, &self.schema))
        .map_err(|e| WriteError::Output(format!("building tombstones failed: {e}")))?;
        self.writer
            .write(&batch)
            .await
            .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}")))
    }

    async fn write(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<PageOut, WriteError> {
        let converted = self
            .converter
            .convert_page(body)
            .map_err(|e| WriteError::Unreadable(e.to_string()))?;
        let mut batch = converted.batch;
        if let Some(low) = skip_from_id {
            let skip = converted.ids.iter().take_while(|id| **id >= low).count();
            batch = batch.slice(skip, batch.num_rows() - skip);
        }
        let mut out = PageOut {
            rows: batch.num_rows() as u64,
            extra_fields: converted.extra_fields,
            type_mismatches: converted.type_mismatches,
            null_violations: converted.null_violations,
            ids: converted.ids,
            refs: converted.refs,
            ..PageOut::default()
        };
        if !converted.quarantined.is_empty() {
            // Never written with a NULL key, never dropped: filed whole, as received.
            let records: Vec<serde_json::Value> = converted
                .quarantined
                .iter()
                .map(|r| serde_json::from_str(r).unwrap_or(serde_json::Value::String(r.clone())))
                .collect();
            out.quarantined = records.len() as u64;
            let key = self
                .errors
                .save(serde_json::json!({
                    "stream": self.errors.stream,
                    "run_id": self.errors.run_id,
                    "reason": QUARANTINED_REASON,
                    "records": records,
                }))
                .await?;
            out.error_objects.push(key);
        }
        if batch.num_rows() > 0 {
            let batch = self.policy.apply(&batch, &self.schema).map_err(|e| {
                WriteError::Output(format!("applying the column policy failed: {e}"))
            })?;
            self.writer
                .write(&batch)
                .await
                .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}")))?;
        }
        Ok(out)
    }

    async fn save_unreadable(&mut self, body: &[u8], error: &str) -> Option<String> {
        let doc = serde_json::json!({
            "stream": self.errors.stream,
            "run_id": self.errors.run_id,
            "reason": "unreadable page",
            "error": error,
            "body": String::from_utf8_lossy(body),
        });
        match self.errors.save(doc).await {
            Ok(key) => Some(key),
            Err(e) => {
                events::error_object_failed(&self.errors.stream, &e);
                None
            }
        }
    }

    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError> {
        self.writer
            .close()
            .await
            .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}")))
    }

    async fn abort(self: Box<Self>) {
        self.writer.abort().await;
    }
}

fn manifest_file(f: &WrittenFile) -> ManifestFile {
    ManifestFile {
        key: f.key.to_string(),
        rows: f.rows,
        bytes: f.bytes,
    }
}

/// The run's manifest: every stream's outcome and the files a loader should pick up (those in
/// `committed`: a file whose commit failed holds no committed data).
fn manifest_of(
    report: &RunReport,
    opts: &SyncOptions,
    committed: &BTreeSet<String>,
    current: &BTreeMap<String, crate::state::ManifestCurrent>,
) -> Manifest {
    use crate::state::status;
    let status = match report.exit_code() {
        ExitCode::Success => status::SUCCESS,
        ExitCode::Interrupted => status::INTERRUPTED,
        _ => status::PARTIAL,
    };
    Manifest {
        run_id: opts.run_id.clone(),
        started_at: opts.started_at,
        finished_at: Some(Utc::now()),
        status: status.to_string(),
        streams: report
            .streams
            .iter()
            .map(|r| {
                (
                    r.stream.clone(),
                    ManifestStream {
                        status: r.status.label().to_string(),
                        window_from: r.window.as_ref().and_then(|w| w.from),
                        window_to: r.window.as_ref().and_then(|w| w.to),
                        rows: r.rows,
                        pages: r.pages,
                        slices: r.slices as u64,
                        files: r
                            .files
                            .iter()
                            .filter(|f| committed.contains(f.key.as_ref()))
                            .map(manifest_file)
                            .collect(),
                        requests: r.requests,
                        bytes_fetched: r.bytes_fetched,
                        // Defence in depth: a secret quoted by an API error is masked.
                        error: r
                            .status
                            .error()
                            .map(|e| crate::secrets::scrub(e).into_owned()),
                        quarantined: r.quarantined,
                        error_objects: r.error_objects.clone(),
                        deletes: Some(crate::state::ManifestDeletes {
                            reconciled: r.deletes.reconciled,
                            reconcile_requests: r.deletes.reconcile_requests,
                            tombstones: r.deletes.tombstones(),
                            by_reconcile: r.deletes.by_reconcile,
                            by_cascade: r.deletes.by_cascade,
                            by_webhook: r.deletes.by_webhook,
                            refreshed: r.deletes.refreshed,
                            error: r.deletes.error.clone(),
                        }),
                        current: current.get(&r.stream).cloned(),
                    },
                )
            })
            .collect(),
    }
}
