//! `purge`: erases deleted and anonymised people from the raw history files.
//!
//! **Which rows.** The streams of [`Registry::erasure_order`]: those whose declaration says
//! `deletes.erase` (candidates) and every stream cascading from them, parents first. In each, a
//! row goes when
//! - its id is deleted in the stream's id index (a merge whose survivor is known is not an
//!   erasure: the person lives on in the survivor, so a merged-away id keeps its history), or
//! - one of its cascade references names an erased parent (a child whose own tombstone never
//!   came, because its stream was not selected, goes too; its id then counts as erased for its
//!   own children), or
//! - its id is in the stream's `erase_before` and the row was extracted before that instant (the
//!   versions from before an anonymisation; the re-read after it stays).
//!
//! Tombstones stay: they hold the id and how it was deleted, nothing of the person, and readers
//! need them to drop the id.
//!
//! **How, resumably and losing nothing else.** Under the run lease:
//! 1. *plan*: read the key, reference, `_deleted` and `_extracted_at` columns of every committed
//!    file of those streams (the union of the manifests) and write the plan to
//!    `_state/purge.json`: the files to rewrite and the ids erased per stream;
//! 2. *rewrite* each planned file into a new file in the same partition
//!    (`part-<purge_id>-p<n>-<seq>.parquet`) without the erased rows, marking it done in the plan
//!    (a rewrite interrupted half-way is redone from the old file; its leftovers are deleted
//!    first);
//! 3. point every manifest and commit record that lists an old file at its replacement;
//! 4. delete the old files;
//! 5. commit a state generation recording what was erased (so that a purge with nothing new to
//!    erase reads no file, and `erase_before` entries are forgotten), then delete the plan.
//!
//! A purge that stops anywhere resumes from its plan on the next `purge`. Between steps 2 and 4
//! a reader of `<stream>/**/*.parquet` may see a row in the old and the new file: identical
//! copies, which de-duplication by id folds; after step 4 no object holds an erased row.
//! Stored webhook events are deleted by the `sync` that applies them, before a purge runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use serde::{Deserialize, Serialize};

use crate::convert::{DELETED_COLUMN, EXTRACTED_AT_COLUMN};
use crate::error::Error;
use crate::registry::{Registry, Stream};
use crate::sink::{RollingWriter, SinkConfig};
use crate::state::ids::IdIndex;
use crate::state::{CommitRecord, Manifest, ManifestFile, State, StateError, StateStore};
use crate::storage::Destination;

/// The plan of the purge in progress, relative to the destination prefix.
pub const PLAN_KEY: &str = "_state/purge.json";
/// Where id indexes live (as the sync writes them), relative to the prefix.
const IDS_DIR: &str = "_state/ids";
const LEASE_TTL: Duration = Duration::from_secs(120);

/// What one stream's purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPurge {
    /// Ids whose rows were erased (deleted, cascaded, or anonymised versions).
    pub ids: u64,
    pub rows_removed: u64,
    pub files_rewritten: u64,
    /// Files that held only erased rows (deleted, not replaced).
    pub files_removed: u64,
}

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub purge_id: String,
    /// It continued an interrupted purge's plan.
    pub resumed: bool,
    pub streams: BTreeMap<String, StreamPurge>,
    /// Files of the closure streams whose columns were read to plan.
    pub files_scanned: u64,
}

impl PurgeReport {
    pub fn rows_removed(&self) -> u64 {
        self.streams.values().map(|s| s.rows_removed).sum()
    }

    /// The text summary `purge` prints.
    pub fn render(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .streams
            .iter()
            .map(|(name, s)| {
                vec![
                    name.clone(),
                    s.ids.to_string(),
                    s.rows_removed.to_string(),
                    s.files_rewritten.to_string(),
                    s.files_removed.to_string(),
                ]
            })
            .collect();
        let mut out = String::new();
        if rows.is_empty() {
            out.push_str("Purge: nothing to erase.\n");
        } else {
            out.push_str(&crate::table::text_table(
                &[
                    "stream",
                    "erased ids",
                    "rows removed",
                    "files rewritten",
                    "files removed",
                ],
                &rows,
                &[1, 2, 3, 4],
            ));
        }
        out.push_str(&format!(
            "Purge {}{}: {} rows removed; {} files read to plan\n",
            self.purge_id,
            if self.resumed { " (resumed)" } else { "" },
            self.rows_removed(),
            self.files_scanned
        ));
        out
    }
}

/// The rows one stream loses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Erase {
    /// Ids whose every row (but tombstones) goes.
    ids: BTreeSet<i64>,
    /// Per id, rows extracted before this instant (micros) go.
    before: BTreeMap<i64, i64>,
    /// Cascade references: (column, parent stream) whose erased ids take the row along.
    refs: Vec<(String, String)>,
    /// The digest recorded in the state once done ([`crate::state::StreamState::purged`]).
    digest: String,
}

/// One file to rewrite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileTask {
    stream: String,
    /// The old file's key (relative to the store root, as manifests list it).
    key: String,
    /// Its replacements, once written (`Some(vec![])`: every row was erased).
    #[serde(default)]
    done: Option<Vec<ManifestFile>>,
    #[serde(default)]
    removed: u64,
}

/// `_state/purge.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plan {
    purge_id: String,
    started_at: DateTime<Utc>,
    streams: BTreeMap<String, Erase>,
    files: Vec<FileTask>,
    /// Manifests and commit records already point at the replacements.
    #[serde(default)]
    relinked: bool,
    files_scanned: u64,
}

/// Runs (or resumes) a purge of `dest` (see the module contract).
pub async fn run(
    dest: &Destination,
    registry: &Registry,
    sink: &SinkConfig,
    single_writer: bool,
) -> Result<PurgeReport, Error> {
    let store =
        StateStore::new(dest.store.clone(), dest.prefix.clone()).single_writer(single_writer);
    let purge_id = uuid::Uuid::now_v7().to_string();
    let lease = store
        .acquire_lease(&purge_id, LEASE_TTL)
        .await
        .map_err(StateError::into_error)?;
    let heartbeat = lease.spawn_heartbeat(LEASE_TTL / 4);
    let purger = Purger {
        dest,
        registry,
        sink,
    };
    let result = async {
        let mut state = store.load().await.map_err(StateError::into_error)?;
        // Crashed runs' files join the manifests first, so that the plan sees every file.
        let adopted = store.adopt_open_runs(&state, &purge_id).await;
        state.open_runs.retain(|run, _| !adopted.contains(run));
        let (mut plan, resumed) = match purger.read_plan().await? {
            Some(plan) => (plan, true),
            None => (purger.plan(&state, &purge_id).await?, false),
        };
        let nothing = plan.files.is_empty()
            && plan.streams.iter().all(|(name, e)| {
                let last = state
                    .stream(name)
                    .and_then(|s| s.purged.clone())
                    .unwrap_or_else(|| digest(&BTreeSet::new()));
                last == e.digest && state.stream(name).is_none_or(|s| s.erase_before.is_empty())
            });
        if !nothing {
            if !resumed {
                purger.write_plan(&plan).await?;
            }
            purger.rewrite(&mut plan).await?;
            if !plan.relinked {
                purger.relink(&plan).await?;
                plan.relinked = true;
                purger.write_plan(&plan).await?;
            }
            purger.delete_old(&plan).await?;
            let mut next = store.load().await.map_err(StateError::into_error)?;
            next.open_runs.retain(|run, _| !adopted.contains(run));
            for (name, e) in &plan.streams {
                let entry = next.stream_mut(name);
                entry.purged = Some(e.digest.clone());
                entry
                    .erase_before
                    .retain(|id, at| e.before.get(id) != Some(&at.timestamp_micros()));
            }
            store
                .commit(&lease, next)
                .await
                .map_err(StateError::into_error)?;
            // The current tables dropped the erased rows when their tombstones were merged;
            // the files that still hold them go now, not after the retention.
            let tables = crate::current::Tables::default();
            // The long-format custom-field table holds the erased records' values too.
            let values = crate::registry::CUSTOM_FIELD_VALUES.to_string();
            for name in plan.streams.keys().chain(std::iter::once(&values)) {
                tables
                    .vacuum(dest, name, Duration::ZERO, true)
                    .await
                    .map_err(|e| Error::Destination(format!("purge: {e}")))?;
            }
            purger.drop_plan().await?;
        } else if !adopted.is_empty() {
            store
                .commit(&lease, state)
                .await
                .map_err(StateError::into_error)?;
        }
        let report = report(&plan, resumed);
        crate::events::purge_finished(
            &report.purge_id,
            resumed,
            report.rows_removed(),
            report
                .streams
                .values()
                .map(|s| s.files_rewritten + s.files_removed)
                .sum(),
        );
        Ok(report)
    }
    .await;
    heartbeat.abort();
    lease.release().await;
    result
}

fn report(plan: &Plan, resumed: bool) -> PurgeReport {
    let mut streams: BTreeMap<String, StreamPurge> = BTreeMap::new();
    for (name, e) in &plan.streams {
        if !e.ids.is_empty() || !e.before.is_empty() {
            streams.entry(name.clone()).or_default().ids = (e.ids.len() + e.before.len()) as u64;
        }
    }
    for f in &plan.files {
        let s = streams.entry(f.stream.clone()).or_default();
        s.rows_removed += f.removed;
        match f.done.as_deref() {
            Some([]) => s.files_removed += 1,
            Some(_) => s.files_rewritten += 1,
            None => {}
        }
    }
    PurgeReport {
        purge_id: plan.purge_id.clone(),
        resumed,
        streams,
        files_scanned: plan.files_scanned,
    }
}

struct Purger<'a> {
    dest: &'a Destination,
    registry: &'a Registry,
    sink: &'a SinkConfig,
}

fn dest_err(what: &str, key: &impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::Destination(format!("purge: cannot {what} {key}: {e}"))
}

impl Purger<'_> {
    fn rel(&self, rel: &str) -> Path {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.dest.prefix.clone(), |p, part| p.join(part))
    }

    /// The whole object at `key`.
    async fn read(&self, key: &Path) -> Result<Bytes, Error> {
        let object = self
            .dest
            .store
            .get(key)
            .await
            .map_err(|e| dest_err("read", key, e))?;
        object.bytes().await.map_err(|e| dest_err("read", key, e))
    }

    async fn read_plan(&self) -> Result<Option<Plan>, Error> {
        let key = self.rel(PLAN_KEY);
        match self.dest.store.get(&key).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| dest_err("read", &key, e))?;
                serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    Error::Destination(format!(
                        "purge: the plan {key} of an interrupted purge is not readable ({e}); \
                         delete it and run `purge` again (its old files are all still there)"
                    ))
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(dest_err("read", &key, e)),
        }
    }

    async fn write_plan(&self, plan: &Plan) -> Result<(), Error> {
        let key = self.rel(PLAN_KEY);
        let body = serde_json::to_vec(plan).expect("a plan serialises");
        self.dest
            .store
            .put(&key, PutPayload::from(body))
            .await
            .map(|_| ())
            .map_err(|e| dest_err("write", &key, e))
    }

    async fn drop_plan(&self) -> Result<(), Error> {
        let key = self.rel(PLAN_KEY);
        match self.dest.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(dest_err("delete", &key, e)),
        }
    }

    /// Every manifest under `_runs/`, with its key.
    async fn manifests(&self) -> Result<Vec<(Path, Manifest)>, Error> {
        StateStore::new(self.dest.store.clone(), self.dest.prefix.clone())
            .manifests()
            .await
            .map_err(StateError::into_error)
    }

    async fn index(&self, stream: &Stream, state: &State) -> Result<Option<IdIndex>, Error> {
        let Some(ids) = state.stream(&stream.name).and_then(|s| s.ids.as_ref()) else {
            return Ok(None);
        };
        if !ids.key.starts_with(IDS_DIR) {
            return Ok(None);
        }
        let key = self.rel(&ids.key);
        let bytes = match self.dest.store.get(&key).await {
            Ok(r) => r.bytes().await.map_err(|e| dest_err("read", &key, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(dest_err("read", &key, e)),
        };
        let fields: Vec<String> = stream
            .deletes
            .cascade
            .iter()
            .map(|c| c.field.clone())
            .collect();
        IdIndex::decode(&bytes, &fields).map(Some).map_err(|e| {
            Error::Destination(format!(
                "purge: the id index {key} of {} is not readable ({e}); a `sync --reconcile {}` \
                 rebuilds it",
                stream.name, stream.name
            ))
        })
    }

    /// Step 1: what to erase and which files hold it.
    async fn plan(&self, state: &State, purge_id: &str) -> Result<Plan, Error> {
        let order = self.registry.erasure_order();
        let manifests = self.manifests().await?;
        let mut files_of: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for (_, m) in &manifests {
            for (name, s) in &m.streams {
                for f in &s.files {
                    files_of
                        .entry(name.as_str())
                        .or_default()
                        .insert(f.key.clone());
                }
            }
        }
        let mut plan = Plan {
            purge_id: purge_id.to_string(),
            started_at: Utc::now(),
            streams: BTreeMap::new(),
            files: Vec::new(),
            relinked: false,
            files_scanned: 0,
        };
        // Streams whose erased set grew since the last purge; their children are read again.
        let mut changed: BTreeSet<String> = BTreeSet::new();
        for stream in order {
            let entry = state.stream(&stream.name);
            let index = self.index(stream, state).await?;
            let mut erase = Erase {
                refs: stream
                    .deletes
                    .cascade
                    .iter()
                    .filter(|c| plan.streams.contains_key(&c.parent))
                    .map(|c| (c.field.clone(), c.parent.clone()))
                    .collect(),
                ..Erase::default()
            };
            if let Some(ix) = &index {
                erase.ids.extend(
                    ix.deleted()
                        .iter()
                        .filter(|d| d.merged_into.is_none())
                        .map(|d| d.id),
                );
            }
            if let Some(e) = entry {
                erase.before.extend(
                    e.erase_before
                        .iter()
                        .map(|(id, at)| (*id, at.timestamp_micros())),
                );
            }
            erase.digest = digest(&erase.ids);
            let parents_changed = erase.refs.iter().any(|(_, p)| changed.contains(p));
            // Never purged counts as having erased nothing.
            let last = entry
                .and_then(|e| e.purged.clone())
                .unwrap_or_else(|| digest(&BTreeSet::new()));
            let unchanged = last == erase.digest && erase.before.is_empty() && !parents_changed;
            if unchanged {
                plan.streams.insert(stream.name.clone(), erase);
                continue;
            }
            changed.insert(stream.name.clone());
            let keys: Vec<String> = files_of
                .get(stream.name.as_str())
                .map(|k| k.iter().cloned().collect())
                .unwrap_or_default();
            // Parent ids erased, per reference column.
            let parent_sets: Vec<(String, BTreeSet<i64>)> = erase
                .refs
                .iter()
                .map(|(field, parent)| (field.clone(), plan.streams[parent].ids.clone()))
                .collect();
            let live = |id: i64| index.as_ref().is_some_and(|ix| ix.is_live(id));
            let mut hits: BTreeMap<String, u64> = BTreeMap::new();
            let mut derived: BTreeSet<i64> = BTreeSet::new();
            for key in &keys {
                let Some(rows) = self
                    .scan(stream, key, &erase, &parent_sets, &mut derived, &live)
                    .await?
                else {
                    continue;
                };
                plan.files_scanned += 1;
                if rows > 0 {
                    hits.insert(key.clone(), rows);
                }
            }
            // Children found dead through a reference: their other rows go too.
            let fresh: BTreeSet<i64> = derived.difference(&erase.ids).copied().collect();
            if !fresh.is_empty() {
                erase.ids.extend(fresh.iter().copied());
                let only_ids = Erase {
                    ids: fresh,
                    ..Erase::default()
                };
                let rest: Vec<&String> = keys.iter().filter(|k| !hits.contains_key(*k)).collect();
                for key in rest {
                    let mut none = BTreeSet::new();
                    if let Some(rows) = self
                        .scan(stream, key, &only_ids, &[], &mut none, &|_| true)
                        .await?
                        && rows > 0
                    {
                        hits.insert(key.clone(), rows);
                    }
                }
            }
            for key in hits.into_keys() {
                plan.files.push(FileTask {
                    stream: stream.name.clone(),
                    key,
                    done: None,
                    removed: 0,
                });
            }
            plan.streams.insert(stream.name.clone(), erase);
        }
        // Streams with nothing to erase and nothing recorded need no state change either.
        plan.streams.retain(|name, e| {
            !e.ids.is_empty()
                || !e.before.is_empty()
                || state.stream(name).and_then(|s| s.purged.as_ref()).is_some()
        });
        Ok(plan)
    }

    /// Counts the rows of `key` the erase removes (`None`: the file is gone); records in
    /// `derived` the ids of rows taken along by a reference whose record is not live.
    async fn scan(
        &self,
        stream: &Stream,
        key: &str,
        erase: &Erase,
        parents: &[(String, BTreeSet<i64>)],
        derived: &mut BTreeSet<i64>,
        live: &dyn Fn(i64) -> bool,
    ) -> Result<Option<u64>, Error> {
        let path = object_path(key);
        let Some(reader) = self.reader(&path).await? else {
            return Ok(None);
        };
        let pk = stream.primary_key.first().cloned().unwrap_or_default();
        let mut wanted: Vec<&str> = vec![pk.as_str(), DELETED_COLUMN, EXTRACTED_AT_COLUMN];
        wanted.extend(parents.iter().map(|(f, _)| f.as_str()));
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| dest_err("read", &path, e))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), wanted.iter().copied());
        let mut batches = builder
            .with_projection(mask)
            .build()
            .map_err(|e| dest_err("read", &path, e))?;
        let mut rows = 0;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| dest_err("read", &path, e))?;
            let doomed = doomed_rows(
                &batch,
                &pk,
                erase,
                parents,
                Some(Derive { ids: derived, live }),
            );
            rows += doomed.true_count() as u64;
        }
        Ok(Some(rows))
    }

    async fn reader(&self, path: &Path) -> Result<Option<StoreReader>, Error> {
        match self.dest.store.head(path).await {
            Ok(meta) => Ok(Some(StoreReader {
                store: self.dest.store.clone(),
                path: path.clone(),
                size: meta.size,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(dest_err("read", path, e)),
        }
    }

    /// Step 2: writes every planned file's replacement, recording each in the plan.
    async fn rewrite(&self, plan: &mut Plan) -> Result<(), Error> {
        for n in 0..plan.files.len() {
            if plan.files[n].done.is_some() {
                continue;
            }
            let task = plan.files[n].clone();
            let stream = self.registry.get(&task.stream).ok_or_else(|| {
                Error::Destination(format!(
                    "purge: the plan names stream `{}`, which this version does not declare",
                    task.stream
                ))
            })?;
            let erase = &plan.streams[&task.stream];
            let parents: Vec<(String, BTreeSet<i64>)> = erase
                .refs
                .iter()
                .map(|(f, p)| {
                    let ids = plan
                        .streams
                        .get(p)
                        .map(|e| e.ids.clone())
                        .unwrap_or_default();
                    (f.clone(), ids)
                })
                .collect();
            let tag = format!("p{n}");
            let (files, removed) = self
                .rewrite_file(stream, &task.key, &plan.purge_id, &tag, erase, &parents)
                .await?;
            plan.files[n].done = Some(files);
            plan.files[n].removed = removed;
            self.write_plan(plan).await?;
        }
        Ok(())
    }

    async fn rewrite_file(
        &self,
        stream: &Stream,
        key: &str,
        purge_id: &str,
        tag: &str,
        erase: &Erase,
        parents: &[(String, BTreeSet<i64>)],
    ) -> Result<(Vec<ManifestFile>, u64), Error> {
        let path = object_path(key);
        let dir = path.parts().collect::<Vec<_>>();
        let dir = Path::from_iter(dir[..dir.len().saturating_sub(1)].iter().cloned());
        // A rewrite an earlier attempt left half-way: its objects go before it is redone.
        let prefix = format!("part-{purge_id}-{tag}-");
        let leftovers: Vec<Path> = self
            .dest
            .store
            .list(Some(&dir))
            .map_ok(|m| m.location)
            .try_filter(|k| {
                futures::future::ready(k.filename().is_some_and(|f| f.starts_with(&prefix)))
            })
            .try_collect()
            .await
            .map_err(|e| dest_err("list", &dir, e))?;
        for k in leftovers {
            match self.dest.store.delete(&k).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(dest_err("delete", &k, e)),
            }
        }
        let Some(reader) = self.reader(&path).await? else {
            return Ok((Vec::new(), 0));
        };
        let builder = ParquetRecordBatchStreamBuilder::new(reader)
            .await
            .map_err(|e| dest_err("read", &path, e))?;
        let schema = builder.schema().clone();
        let mut batches = builder.build().map_err(|e| dest_err("read", &path, e))?;
        let mut writer = RollingWriter::new(
            self.dest.store.clone(),
            &self.dest.prefix,
            stream,
            purge_id,
            Utc::now(),
            schema,
            self.sink.clone(),
        )
        .map_err(|e| Error::Destination(format!("purge: {e}")))?
        .in_dir(dir)
        .with_file_tag(tag);
        let pk = stream.primary_key.first().cloned().unwrap_or_default();
        let mut removed = 0;
        let result: Result<(), Error> = async {
            while let Some(batch) = batches.next().await {
                let batch = batch.map_err(|e| dest_err("read", &path, e))?;
                let doomed = doomed_rows(&batch, &pk, erase, parents, None);
                removed += doomed.true_count() as u64;
                let keep =
                    BooleanArray::from(doomed.values().iter().map(|d| !d).collect::<Vec<_>>());
                let kept = arrow_select::filter::filter_record_batch(&batch, &keep)
                    .map_err(|e| Error::Fatal(format!("purge: {e}")))?;
                writer
                    .write(&kept)
                    .await
                    .map_err(|e| Error::Destination(format!("purge: {e}")))?;
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            writer.abort().await;
            return Err(e);
        }
        let files = writer
            .close()
            .await
            .map_err(|e| Error::Destination(format!("purge: {e}")))?;
        Ok((
            files
                .into_iter()
                .map(|f| ManifestFile {
                    key: f.key.to_string(),
                    rows: f.rows,
                    bytes: f.bytes,
                })
                .collect(),
            removed,
        ))
    }

    /// Step 3: manifests and commit records list the replacements instead of the old files.
    async fn relink(&self, plan: &Plan) -> Result<(), Error> {
        let swap: BTreeMap<&str, &[ManifestFile]> = plan
            .files
            .iter()
            .filter_map(|f| f.done.as_deref().map(|d| (f.key.as_str(), d)))
            .collect();
        let relist = |files: &mut Vec<ManifestFile>| -> bool {
            if !files.iter().any(|f| swap.contains_key(f.key.as_str())) {
                return false;
            }
            *files = files
                .drain(..)
                .flat_map(|f| match swap.get(f.key.as_str()) {
                    Some(new) => new.to_vec(),
                    None => vec![f],
                })
                .collect();
            true
        };
        for (key, mut m) in self.manifests().await? {
            let mut touched = false;
            for s in m.streams.values_mut() {
                touched |= relist(&mut s.files);
            }
            if touched {
                let store = StateStore::new(self.dest.store.clone(), self.dest.prefix.clone());
                store
                    .write_manifest(&m.run_id, &m)
                    .await
                    .map_err(|e| dest_err("rewrite", &key, e))?;
            }
        }
        // Commit records of runs still open (a crashed run not adopted yet).
        let runs = self.rel("_runs");
        let records: Vec<Path> = self
            .dest
            .store
            .list(Some(&runs))
            .map_ok(|m| m.location)
            .try_filter(|k| {
                futures::future::ready(
                    k.parts().any(|p| p.as_ref() == "commits")
                        && k.filename().is_some_and(|f| f.ends_with(".json")),
                )
            })
            .try_collect()
            .await
            .map_err(|e| dest_err("list", &runs, e))?;
        for key in records {
            let bytes = self.read(&key).await?;
            let Ok(mut record) = serde_json::from_slice::<CommitRecord>(&bytes) else {
                continue;
            };
            if relist(&mut record.files) {
                let body = serde_json::to_vec_pretty(&record).expect("a record serialises");
                self.dest
                    .store
                    .put(&key, PutPayload::from(body))
                    .await
                    .map_err(|e| dest_err("rewrite", &key, e))?;
            }
        }
        Ok(())
    }

    /// Step 4.
    async fn delete_old(&self, plan: &Plan) -> Result<(), Error> {
        for f in &plan.files {
            let key = object_path(&f.key);
            match self.dest.store.delete(&key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(dest_err("delete", &key, e)),
            }
        }
        Ok(())
    }
}

/// An object key as manifests print it (already encoded) back into a path.
fn object_path(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

/// A short digest of an id set (what [`crate::state::StreamState::purged`] records).
fn digest(ids: &BTreeSet<i64>) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for id in ids {
        h.update(id.to_le_bytes());
    }
    hex::encode(&h.finalize()[..12])
}

/// Where [`doomed_rows`] records the children a reference took along whose own record is not
/// live (`live`: the stream's id index says it is).
struct Derive<'a> {
    ids: &'a mut BTreeSet<i64>,
    live: &'a dyn Fn(i64) -> bool,
}

/// Which rows of `batch` the erase removes (never a tombstone). With `derive`, the ids of rows
/// taken along by a reference whose own record is not live are added to its set.
fn doomed_rows(
    batch: &RecordBatch,
    pk: &str,
    erase: &Erase,
    parents: &[(String, BTreeSet<i64>)],
    mut derive: Option<Derive<'_>>,
) -> BooleanArray {
    let int = |name: &str| {
        batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
    };
    let ids = int(pk);
    let deleted = batch
        .column_by_name(DELETED_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<BooleanArray>());
    let extracted = batch
        .column_by_name(EXTRACTED_AT_COLUMN)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>());
    let refs: Vec<(Option<&Int64Array>, &BTreeSet<i64>)> =
        parents.iter().map(|(f, set)| (int(f), set)).collect();
    let mut out = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let tombstone = deleted.is_some_and(|d| d.is_valid(row) && d.value(row));
        let id = ids.and_then(|a| a.is_valid(row).then(|| a.value(row)));
        if tombstone {
            out.push(false);
            continue;
        }
        let by_id = id.is_some_and(|id| erase.ids.contains(&id));
        let by_version = id.is_some_and(|id| {
            erase.before.get(&id).is_some_and(|before| {
                extracted.is_some_and(|e| e.is_valid(row) && e.value(row) < *before)
            })
        });
        let by_ref = refs
            .iter()
            .any(|(col, set)| col.is_some_and(|c| c.is_valid(row) && set.contains(&c.value(row))));
        if by_ref
            && let (Some(id), Some(d)) = (id, derive.as_mut())
            && !(d.live)(id)
        {
            d.ids.insert(id);
        }
        out.push(by_id || by_version || by_ref);
    }
    BooleanArray::from(out)
}

/// Reads a Parquet object through ranged GETs (the footer, then the row groups it needs).
struct StoreReader {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            self.store
                .get_range(&self.path, range)
                .await
                .map_err(|e| ParquetError::External(Box::new(e)))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use arrow_schema::{DataType, Field, Schema, TimeUnit};

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("candidate_id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new(
                EXTRACTED_AT_COLUMN,
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                false,
            ),
            Field::new(DELETED_COLUMN, DataType::Boolean, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3, 4, 5, 1])),
                Arc::new(Int64Array::from(vec![
                    Some(10),
                    Some(20),
                    Some(30),
                    None,
                    Some(10),
                    None,
                ])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d", "e", "tomb"])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![100, 100, 100, 100, 300, 400])
                        .with_timezone("+00:00"),
                ),
                Arc::new(BooleanArray::from(vec![
                    false, false, false, false, false, true,
                ])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn erased_ids_references_and_old_versions_go_tombstones_stay() {
        let erase = Erase {
            ids: [1].into(),
            before: [(4, 200)].into(),
            ..Erase::default()
        };
        let parents = vec![("candidate_id".to_string(), BTreeSet::from([20, 30]))];
        let mut derived = BTreeSet::new();
        let live = |id: i64| id == 3;
        let doomed = doomed_rows(
            &batch(),
            "id",
            &erase,
            &parents,
            Some(Derive {
                ids: &mut derived,
                live: &live,
            }),
        );
        // id 1 (erased), 2 and 3 (their candidate is erased), 4 (a version before 200); the
        // tombstone of 1 and row 5 stay.
        assert_eq!(
            doomed.iter().map(|v| v.unwrap()).collect::<Vec<_>>(),
            vec![true, true, true, true, false, false]
        );
        // 2 is not live any more: its other rows go too; 3 lives on (a reference that moved).
        assert_eq!(derived, BTreeSet::from([2]));
    }

    #[test]
    fn a_file_without_the_tombstone_columns_is_read_as_all_records() {
        let b = batch();
        let b = b.project(&[0, 1, 2]).unwrap();
        let erase = Erase {
            ids: [1].into(),
            ..Erase::default()
        };
        let doomed = doomed_rows(&b, "id", &erase, &[], None);
        assert_eq!(doomed.true_count(), 2);
    }

    #[test]
    fn the_digest_tells_sets_apart() {
        assert_eq!(digest(&[1, 2].into()), digest(&[2, 1].into()));
        assert_ne!(digest(&[1, 2].into()), digest(&[1, 3].into()));
    }
}
