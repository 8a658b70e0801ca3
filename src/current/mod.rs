//! Current-state tables: one Delta Lake table per stream under `<prefix>/current/<stream>/`,
//! exactly one row per live id, merged by id from the raw files each commit makes durable.
//!
//! Contract:
//! - [`apply`] is called by the Parquet output for every unit it commits, after the unit's raw
//!   files are durable and before the state generation that names them: raw files → Delta
//!   commit → bookmark. Its input is only those raw files, so a re-run after a crash anywhere
//!   merges the same rows again, which changes nothing (an upsert by id neither loses nor
//!   doubles a row). Record rows are upserts, tombstones are deletes; per id the greatest
//!   `updated_at`, then the latest `_extracted_at`, wins.
//! - Cost grows with the changes: only the files owning a changed or deleted id are read and
//!   rewritten ([`layout`]); a unit with no row commits nothing.
//! - Memory is bounded by the run's budget, not by the tables' or the units' size: raw files
//!   are read a row group at a time, the changes are merged in rounds of at most
//!   [`Tables::new`]'s `round_bytes` of Arrow rows (plus the one batch that crossed it), and a
//!   merge decodes the files it rewrites one row group at a time ([`ROW_GROUP_ROWS`] rows, or
//!   a raw row group's for a file copied from raw row groups, see `copy`) and
//!   encodes its output as it goes (only the compressed files are held whole). Two exceptions:
//!   a full refresh, whose changes are the whole (small) table, and files whose row groups'
//!   id ranges overlap (another writer's layout), which are decoded whole.
//! - A full-refresh stream's complete read replaces its table's contents.
//! - The table's columns are the raw schema's (after column policies) without the tombstone
//!   columns: the declared fields, `_extra`, `_extracted_at`, `_run_id`; then, for a stream
//!   declaring `custom_fields`, one typed `cf_*` column group per custom field of its object
//!   type ([`custom`]), and the long-format table `custom_field_values` follows every change
//!   ([`values`]).
//!
//! Submodules: [`layout`] (which files a change touches), [`merge`] (the rows), [`table`] (the
//! Delta table through delta-rs), [`custom`] and [`values`] (custom-field columns and rows);
//! `build` and `copy` (a table made from raw files alone: merged in one pass, or copied).

mod build;
mod copy;
pub mod custom;
pub mod layout;
pub mod merge;
mod raw;
pub mod rebuild;
pub mod table;
pub mod values;

use std::sync::Arc;

use arrow_array::Array;
use arrow_schema::SchemaRef;
use futures::StreamExt;
use object_store::path::Path;

use crate::convert::EXTRA_COLUMN;
use crate::registry::{CUSTOM_FIELD_VALUES, DEFINITION_FIELDS, Stream};
use crate::storage::Destination;
use custom::Plan;
use merge::Changes;
use raw::{raw_err, read_raw};
use table::{Table, TableError, commit_counted, table_err};

pub use crate::memory::MERGES_AT_ONCE;
pub use custom::{Custom, Definition};
pub use layout::{PAGE_ROWS, ROW_GROUP_ROWS, TARGET_ROWS};
pub use table::table_schema;
/// Bytes of changed rows one merge round holds when no budget says otherwise (a larger unit
/// is merged in several rounds).
pub const DEFAULT_ROUND_BYTES: usize = 16 << 20;

/// What one merge did to a table (`merge_ms` is the caller's to fill): the manifest's numbers.
pub use crate::state::ManifestCurrent as Applied;

/// The current tables one run works on. Each is opened (its log replayed, its schema evolved)
/// once per run and brought up to date with its log before every later use, so that a commit
/// by an outside writer is seen, and a run with many commits does not replay the log for each.
/// At most [`MERGES_AT_ONCE`] merges run at a time (memory: a merge holds a round of changes and
/// the files it rewrites, so unbounded concurrent merges would multiply the run's peak), outside
/// the run's state lock, so they overlap with the other streams' reading and commits. A table whose merge
/// failed is dropped and opened afresh next time.
pub struct Tables {
    open: std::sync::Mutex<std::collections::HashMap<String, Slot>>,
    merging: tokio::sync::Semaphore,
    /// Custom-field definitions per definitions stream, read once per run from its current
    /// table (and again after that table's own merge).
    definitions: std::sync::Mutex<std::collections::HashMap<String, Arc<Vec<Definition>>>>,
    /// The long-format table committed in this run (so it is vacuumed).
    values_committed: std::sync::atomic::AtomicBool,
    limits: Limits,
}

/// What one merge may hold, and the most it did hold (counted, so that a test can check the
/// bound itself rather than a timing).
#[derive(Debug, Default)]
struct Limits {
    round_bytes: usize,
    /// The largest round's changed rows, in bytes ([`Changes::bytes`]).
    peak_round_bytes: std::sync::atomic::AtomicUsize,
    /// The most rows of a table's files a merge held decoded at once.
    peak_decoded_rows: std::sync::atomic::AtomicUsize,
}

impl Limits {
    fn held(&self, changes: &Changes) {
        self.peak_round_bytes
            .fetch_max(changes.bytes(), std::sync::atomic::Ordering::Relaxed);
    }

    fn decoded(&self, batches: &[arrow_array::RecordBatch]) {
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        self.peak_decoded_rows
            .fetch_max(rows, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Default for Tables {
    fn default() -> Self {
        Tables::new(DEFAULT_ROUND_BYTES)
    }
}

type Slot = Arc<tokio::sync::Mutex<Option<Table>>>;

impl Tables {
    /// The tables of one run, each merge round holding at most about `round_bytes` of changed
    /// rows (at least one batch: a round always makes progress).
    pub fn new(round_bytes: usize) -> Self {
        Tables {
            open: Default::default(),
            merging: tokio::sync::Semaphore::new(MERGES_AT_ONCE),
            definitions: Default::default(),
            values_committed: Default::default(),
            limits: Limits {
                round_bytes,
                ..Limits::default()
            },
        }
    }

    /// The most bytes of changed rows one merge round of this run held.
    pub fn peak_round_bytes(&self) -> usize {
        self.limits
            .peak_round_bytes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The most rows of a table's files one merge of this run held decoded at once.
    pub fn peak_decoded_rows(&self) -> usize {
        self.limits
            .peak_decoded_rows
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    fn slot(&self, stream: &str) -> Slot {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(stream.to_string())
            .or_default()
            .clone()
    }

    /// Runs `f` on the table of `stream`: the cached one refreshed, or opened (created with
    /// `schema` when given). `None` when there is no table and none is to be created.
    async fn with<T>(
        &self,
        dest: &Destination,
        stream: &str,
        create: Option<&SchemaRef>,
        f: impl AsyncFnOnce(&mut Table) -> Result<T, TableError>,
    ) -> Result<Option<T>, TableError> {
        let _turn = self.merging.acquire().await.map_err(|e| TableError {
            location: stream.to_string(),
            detail: e.to_string(),
        })?;
        let slot = self.slot(stream);
        let mut guard = slot.lock().await;
        let table = match guard.take() {
            Some(mut t) => {
                t.refresh().await?;
                t
            }
            None => match create {
                Some(schema) => Table::open(dest, stream, schema).await?,
                None => match Table::existing(dest, stream).await? {
                    Some(t) => t,
                    None => return Ok(None),
                },
            },
        };
        // A schema evolution is checked when a cached table meets a new schema.
        let mut table = match create {
            Some(schema) if !table.has_schema(schema) => Table::open(dest, stream, schema).await?,
            _ => table,
        };
        let out = f(&mut table).await?;
        *guard = Some(table);
        Ok(Some(out))
    }

    /// Merges the raw files `keys` (object keys on the destination's store, as written) into
    /// `stream`'s table (see the module contract; the table
    /// is created when there is none).
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        dest: &Destination,
        stream: &Stream,
        raw_schema: &SchemaRef,
        keys: &[Path],
        full_refresh: bool,
        run_id: &str,
        generation: u64,
    ) -> Result<Applied, TableError> {
        let schema = table_schema(raw_schema);
        let custom = self.custom(dest, stream, &schema).await?;
        let out = self
            .with(dest, &stream.name, Some(&schema), async |table| {
                let (mut out, plan, prepared) = apply_to(
                    table,
                    &self.limits,
                    dest,
                    stream,
                    &schema,
                    custom.clone(),
                    keys,
                    full_refresh,
                    run_id,
                    generation,
                )
                .await?;
                if let Some((cf, _)) = &custom {
                    let long = self
                        .sync_values(
                            dest,
                            table,
                            (&cf.object_type, &plan, prepared),
                            run_id,
                            generation,
                        )
                        .await?;
                    out.values_files_added += long.files_added;
                    out.bytes_written += long.bytes_written;
                }
                Ok(out)
            })
            .await?;
        // This stream may define other streams' custom fields: read them afresh next time.
        self.definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&stream.name);
        Ok(out.unwrap_or_default())
    }

    /// The custom fields of `stream` when it declares them and its raw files hold the map
    /// (a column policy may drop it), with the definitions known so far.
    async fn custom<'s>(
        &self,
        dest: &Destination,
        stream: &'s Stream,
        schema: &SchemaRef,
    ) -> Result<Custom<'s>, TableError> {
        let Some(cf) = &stream.custom_fields else {
            return Ok(None);
        };
        if schema.field_with_name(&cf.field).is_err() {
            return Ok(None);
        }
        Ok(Some((cf, self.definitions(dest, &cf.definitions).await?)))
    }

    /// The definitions in the current table of `source` (none before it has one).
    async fn definitions(
        &self,
        dest: &Destination,
        source: &str,
    ) -> Result<Arc<Vec<Definition>>, TableError> {
        if let Some(d) = self
            .definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(source)
        {
            return Ok(d.clone());
        }
        let mut defs = Vec::new();
        if let Some(table) = Table::existing(dest, source).await? {
            for f in table.files()? {
                for batch in table.read(&f.path).await? {
                    let col = |name: &str| {
                        batch
                            .column_by_name(name)
                            .and_then(|c| c.as_any().downcast_ref::<arrow_array::StringArray>())
                            .cloned()
                    };
                    let [Some(key), Some(object), Some(value)] = DEFINITION_FIELDS.map(col) else {
                        continue;
                    };
                    for row in 0..batch.num_rows() {
                        if key.is_null(row) || object.is_null(row) || value.is_null(row) {
                            continue;
                        }
                        defs.push(Definition {
                            key: key.value(row).to_string(),
                            object_type: object.value(row).to_string(),
                            value_type: value.value(row).to_string(),
                        });
                    }
                }
            }
        }
        // Deterministic column order whatever the files' order.
        defs.sort_by(|a, b| a.key.cmp(&b.key));
        let defs = Arc::new(defs);
        self.definitions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(source.to_string(), defs.clone());
        Ok(defs)
    }

    /// Brings the long-format table's rows of `object_type` in line with `wide` (see
    /// [`values`]). Its slot is only ever locked while a stream's slot is held, never the
    /// other way round, so the two locks cannot deadlock.
    async fn sync_values(
        &self,
        dest: &Destination,
        wide: &Table,
        (object_type, plan, prepared): (&str, &Plan, Vec<deltalake::kernel::Add>),
        run_id: &str,
        generation: u64,
    ) -> Result<Applied, TableError> {
        let slot = self.slot(CUSTOM_FIELD_VALUES);
        let mut guard = slot.lock().await;
        let mut long = match guard.take() {
            Some(mut t) => {
                t.refresh().await?;
                t
            }
            None => Table::open(dest, CUSTOM_FIELD_VALUES, &custom::long_schema()).await?,
        };
        let out = values::sync(
            wide,
            &mut long,
            object_type,
            plan,
            prepared,
            run_id,
            generation,
        )
        .await?;
        *guard = Some(long);
        if out.commits > 0 {
            self.values_committed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(out)
    }

    /// Whether this run committed to the long-format table (the caller then vacuums it).
    pub fn values_committed(&self) -> bool {
        self.values_committed
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Removes from `stream`'s table every id a complete listing of the live ids (`live`,
    /// sorted) does not hold: the table then cannot keep a record whose delete no index saw (a
    /// run killed after its merge and before its state commit, a record deleted before it was
    /// read again). Reads the table's id columns only when its files' row counts exceed the
    /// live ids; commits only when something goes (`deleted`: the ids removed).
    pub async fn prune(
        &self,
        dest: &Destination,
        stream: &Stream,
        raw_schema: &SchemaRef,
        live: &[i64],
        run_id: &str,
        generation: u64,
    ) -> Result<Applied, TableError> {
        let schema = table_schema(raw_schema);
        let custom = self.custom(dest, stream, &schema).await?;
        let out = self
            .with(dest, &stream.name, None, async |table| {
                let plan = match &custom {
                    Some(_) => Plan::from_schema(&table.column_metadata()?),
                    None => Plan::default(),
                };
                let full = plan.schema(&schema);
                let out = prune_table(table, &self.limits, stream, &full, live, run_id, generation)
                    .await?;
                if let Some((cf, _)) = &custom {
                    let long = (cf.object_type.as_str(), &plan, Vec::new());
                    self.sync_values(dest, table, long, run_id, generation)
                        .await?;
                }
                Ok(out)
            })
            .await?;
        Ok(out.unwrap_or_default())
    }

    /// Vacuums `stream`'s table (see [`Table::vacuum`]); a stream without a table has nothing
    /// to vacuum.
    pub async fn vacuum(
        &self,
        dest: &Destination,
        stream: &str,
        retention: std::time::Duration,
        full: bool,
    ) -> Result<u64, TableError> {
        let out = self
            .with(dest, stream, None, async |table| {
                table.vacuum(retention, full).await
            })
            .await?;
        Ok(out.unwrap_or(0))
    }
}

/// [`Tables::apply`] on an open table; also returns the table's custom-field columns.
#[allow(clippy::too_many_arguments)]
async fn apply_to(
    table: &mut Table,
    limits: &Limits,
    dest: &Destination,
    stream: &Stream,
    base: &SchemaRef,
    custom: Custom<'_>,
    keys: &[Path],
    full_refresh: bool,
    run_id: &str,
    generation: u64,
) -> Result<(Applied, Plan, Vec<deltalake::kernel::Add>), TableError> {
    let mut out = Applied::default();
    // The custom-field columns: the table's own, then every definition of the object type.
    let taken: std::collections::BTreeSet<String> =
        base.fields().iter().map(|f| f.name().clone()).collect();
    let mut plan = Plan::default();
    if let Some((cf, defs)) = &custom {
        plan = Plan::from_schema(&table.column_metadata()?);
        for d in defs.iter().filter(|d| d.object_type == cf.object_type) {
            plan.add(&d.key, &d.value_type, &taken);
        }
    }
    let mut schema = plan.schema(base);
    table.evolve_to(&schema).await?;
    let mut changes = Changes::new(&stream.name, schema.clone());
    // A full refresh replaces every file that was there before this unit.
    let mut replace: Option<Vec<String>> = match full_refresh {
        true => Some(table.files()?.into_iter().map(|f| f.path).collect()),
        false => None,
    };
    // A table built from the raw files alone (a first merge, a full refresh) is built in one
    // pass, when the raw files are sorted as listings write them.
    if !keys.is_empty()
        && keys.len() <= build::MAX_FILES
        && (full_refresh || table.files()?.is_empty())
    {
        let old = replace.clone().unwrap_or_default();
        let built = build::build(
            table,
            dest,
            base,
            custom.clone(),
            &mut plan,
            keys,
            old,
            run_id,
            generation,
        )
        .await?;
        if let Some((mut out, prepared)) = built {
            if out.commits > 0 {
                compact(table, &plan.schema(base), run_id, generation, &mut out).await?;
            }
            return Ok((out, plan, prepared));
        }
        // Merged in rounds instead, with the columns the build may have added.
        schema = plan.schema(base);
        changes = Changes::new(&stream.name, schema.clone());
    }
    for key in keys {
        let (mut raw, _) = read_raw(dest, key, table).await?;
        while let Some(batch) = raw.next().await {
            let batch = batch.map_err(|e| raw_err(table, key, e))?;
            let batch = match &custom {
                Some((cf, _)) => {
                    // A field no definition named yet (created since the definitions were
                    // read) gets its columns from the type its values carry.
                    let mut grew = false;
                    // Each cell's map is parsed once, for both uses.
                    let maps = custom::maps(&batch, &cf.field);
                    for (k, t) in custom::unseen(&maps, &plan) {
                        grew |= plan.add(&k, &t, &taken);
                    }
                    if grew {
                        schema = plan.schema(base);
                        table.evolve_to(&schema).await?;
                        changes.widen(&schema).map_err(|e| table_err(table, e))?;
                    }
                    let (wide, misfits) = custom::widen(&batch, &maps, &plan, EXTRA_COLUMN)
                        .map_err(|e| table_err(table, e))?;
                    out.custom_field_misfits += misfits;
                    wide
                }
                None => batch,
            };
            changes.add_raw(&batch).map_err(|e| table_err(table, e))?;
            if changes.bytes() >= limits.round_bytes && replace.is_none() {
                limits.held(&changes);
                round(table, limits, &changes, run_id, generation, &mut out).await?;
                changes = Changes::new(&stream.name, schema.clone());
            }
        }
    }
    limits.held(&changes);
    match replace.take() {
        Some(old) => replace_all(table, &changes, old, run_id, generation, &mut out).await?,
        None => round(table, limits, &changes, run_id, generation, &mut out).await?,
    }
    // Only a table that changed is compacted: a run without changes commits nothing.
    if out.commits > 0 {
        compact(table, &schema, run_id, generation, &mut out).await?;
    }
    Ok((out, plan, Vec::new()))
}

/// Files below this many rows are small: deletes shrank them, or the table is young.
pub const SMALL_ROWS: usize = TARGET_ROWS / 4;
/// Most runs of files one compaction merges (the rest wait for the next change).
const COMPACT_RUNS: usize = 8;

/// Merges runs of neighbouring files (in id order, disjoint ranges) that hold a small one and
/// fit in one file together, so that deletes and small tables do not leave a trail of small files that
/// every reader opens. Commits only when it merged something.
async fn compact(
    table: &mut Table,
    schema: &SchemaRef,
    run_id: &str,
    generation: u64,
    out: &mut Applied,
) -> Result<(), TableError> {
    let mut files = table.files()?;
    files.sort_by_key(|f| (f.min_id, f.max_id));
    // Runs of neighbours that fit in one file together and hold a small one, greedily.
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut run: Vec<usize> = Vec::new();
    let mut rows = 0usize;
    for (i, f) in files.iter().enumerate() {
        let fits = !run.is_empty()
            && rows + f.rows as usize <= TARGET_ROWS
            && files[run[run.len() - 1]].max_id < f.min_id
            && (run.iter().any(|&j| (files[j].rows as usize) < SMALL_ROWS)
                || (f.rows as usize) < SMALL_ROWS);
        if fits {
            run.push(i);
            rows += f.rows as usize;
            continue;
        }
        if run.len() >= 2 {
            runs.push(std::mem::take(&mut run));
        }
        run = vec![i];
        rows = f.rows as usize;
    }
    if run.len() >= 2 {
        runs.push(run);
    }
    runs.truncate(COMPACT_RUNS);
    let (mut removes, mut adds) = (Vec::new(), Vec::new());
    for run in runs {
        // The files' encoded bytes are held, their rows decoded and re-encoded a row group at
        // a time (a run of wide rows decoded whole and concatenated was tens of MB).
        let mut fetched = Vec::with_capacity(run.len());
        for &i in &run {
            out.bytes_read += files[i].size;
            fetched.push(table.fetch(&files[i].path).await?);
        }
        // The range from the id columns themselves (a file's `add` may lack statistics).
        let mut range: Option<(i64, i64)> = None;
        for f in &fetched {
            for id in f.ids()?.unwrap_or_default() {
                range = Some(range.map_or((id, id), |(lo, hi)| (lo.min(id), hi.max(id))));
            }
        }
        let Some((min, max)) = range else {
            continue;
        };
        let stream = table.stream_name().to_string();
        let parts = fetched
            .iter()
            .flat_map(|f| f.row_group_batches(None))
            .map(|b| merge::conform(&b?, schema, &stream).map_err(|e| e.to_string()));
        let add = table.write_parts(schema, parts, min, max).await?;
        out.bytes_written += add.size as u64;
        adds.push(add);
        removes.extend(run.iter().map(|&i| table.remove(&files[i].path)));
    }
    commit_counted(table, removes, adds, run_id, generation, out).await
}

/// [`Tables::prune`] on an open table.
async fn prune_table(
    table: &mut Table,
    limits: &Limits,
    stream: &Stream,
    schema: &SchemaRef,
    live: &[i64],
    run_id: &str,
    generation: u64,
) -> Result<Applied, TableError> {
    let mut out = Applied::default();
    // The files' row counts (their `add` stats) say whether the table holds more ids than are
    // live; only then are its id columns read, so a run without a stray id pays nothing.
    let files = table.files()?;
    let rows: u64 = files.iter().map(|f| f.rows).sum();
    let unknown = files.iter().any(|f| f.rows == 0);
    if rows <= live.len() as u64 && !unknown {
        return Ok(out);
    }
    let mut gone = Vec::new();
    for f in files {
        out.bytes_read += f.size;
        // The id column only: the rest of the file is not decoded.
        let ids = table.fetch(&f.path).await?.ids()?.unwrap_or_default();
        gone.extend(ids.into_iter().filter(|id| live.binary_search(id).is_err()));
    }
    if gone.is_empty() {
        return Ok(out);
    }
    let mut changes = Changes::new(&stream.name, schema.clone());
    changes.delete_ids(gone);
    round(table, limits, &changes, run_id, generation, &mut out).await?;
    Ok(out)
}

/// One merge round: rewrites the files owning the changed ids, commits.
async fn round(
    table: &mut Table,
    limits: &Limits,
    changes: &Changes,
    run_id: &str,
    generation: u64,
    out: &mut Applied,
) -> Result<(), TableError> {
    if changes.is_empty() {
        return Ok(());
    }
    let ids = changes.ids();
    let files = table.files()?;
    // An edge file of half the target size takes no more ids beyond its range (see `layout`).
    let plan = layout::plan(&files, &ids, (TARGET_ROWS / 2) as u64);
    let mut removes = Vec::new();
    let mut adds = Vec::new();
    for group in &plan.groups {
        let owned = &ids[group.changes.clone()];
        // First only the rows holding a changed id (in the row groups that can hold one): when
        // merging them changes nothing (the lookback's re-reads of unchanged records), the
        // files stay as they are and the rest of them is never decoded.
        let mut fetched = Vec::new();
        let mut probe = Vec::new();
        for &i in &group.files {
            out.bytes_read += files[i].size;
            let f = table.fetch(&files[i].path).await?;
            let rows = f.decode_ids(f.row_groups_holding(owned), owned)?;
            out.rows_read += rows.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            probe.extend(rows);
            fetched.push(f);
        }
        let check = merge::merge(changes, owned, &probe).map_err(|e| table_err(table, e))?;
        if check.removed == 0 && check.written == 0 {
            continue;
        }
        removes.extend(group.files.iter().map(|&i| table.remove(&files[i].path)));
        match pieces(&fetched) {
            Some(pieces) if !pieces.is_empty() => {
                let merge = (changes, owned, &fetched[..], &pieces[..]);
                merge_pieces(table, limits, merge, &mut adds, out).await?;
            }
            _ => {
                // Files without id statistics per row group, or overlapping ones (another
                // writer's layout), or none (an empty table): merged whole.
                let mut old = Vec::new();
                for f in &fetched {
                    let rows = f.decode(None)?;
                    out.rows_read += rows.iter().map(|b| b.num_rows() as u64).sum::<u64>();
                    old.extend(rows);
                }
                limits.decoded(&old);
                let merged = merge::merge(changes, owned, &old).map_err(|e| table_err(table, e))?;
                out.changed += merged.changed;
                write_cut(table, &merged, &mut adds, out).await?;
            }
        }
    }
    out.upserted += changes.upserted() as u64;
    out.deleted += changes.deleted() as u64;
    commit_counted(table, removes, adds, run_id, generation, out).await
}

/// One row group of a group's files: (file, row group) and its id range and rows.
struct Piece {
    file: usize,
    row_group: usize,
    min: i64,
    max: i64,
    rows: usize,
}

/// The row groups of `fetched` in id order, when their id ranges are disjoint (as this
/// writer's files always are): each can then be merged on its own, with the changes it owns.
fn pieces(fetched: &[table::Fetched]) -> Option<Vec<Piece>> {
    let mut pieces = Vec::new();
    for (file, f) in fetched.iter().enumerate() {
        for (row_group, (min, max, rows)) in f.row_group_ranges()?.into_iter().enumerate() {
            pieces.push(Piece {
                file,
                row_group,
                min,
                max,
                rows,
            });
        }
    }
    pieces.sort_by_key(|p| (p.min, p.max));
    let disjoint = pieces.windows(2).all(|w| w[0].max < w[1].min);
    disjoint.then_some(pieces)
}

/// Merges a group one row group at a time: each row group takes the changed ids from its
/// smallest id up to the next one's (the first also those below it, the last those above), as
/// files own them in [`layout`], so every id is merged exactly once and the output stays
/// sorted. Only one row group's rows (and the changes) are held decoded; the output goes
/// into files of the sizes [`layout::cut`] gives for the rows the group can have at most.
async fn merge_pieces(
    table: &Table,
    limits: &Limits,
    (changes, owned, fetched, pieces): (&Changes, &[i64], &[table::Fetched], &[Piece]),
    adds: &mut Vec<deltalake::kernel::Add>,
    out: &mut Applied,
) -> Result<(), TableError> {
    let most = pieces.iter().map(|p| p.rows).sum::<usize>() + owned.len();
    let mut sizes = layout::cut(most, TARGET_ROWS).into_iter();
    let mut file: Option<(table::Encoder, usize)> = None;
    let mut start = 0;
    for (n, piece) in pieces.iter().enumerate() {
        let end = match pieces.get(n + 1) {
            Some(next) => start + owned[start..].partition_point(|&id| id < next.min),
            None => owned.len(),
        };
        let ids = &owned[start..end];
        start = end;
        let rows = fetched[piece.file].decode(Some(vec![piece.row_group]))?;
        out.rows_read += rows.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        limits.decoded(&rows);
        let merged = merge::merge(changes, ids, &rows).map_err(|e| table_err(table, e))?;
        drop(rows);
        out.changed += merged.changed;
        let mut at = 0;
        while at < merged.num_rows() {
            let (mut encoder, target) = match file.take() {
                Some(open) => open,
                None => (
                    table.encoder(merged.schema())?,
                    sizes.next().unwrap_or(TARGET_ROWS),
                ),
            };
            let take = (target - encoder.rows())
                .min(ROW_GROUP_ROWS)
                .min(merged.num_rows() - at);
            let part = merged
                .rows(at..at + take)
                .map_err(|e| table_err(table, e))?;
            encoder
                .write(&part, merge::id_range(&part))
                .map_err(|e| table_err(table, e))?;
            at += take;
            if encoder.rows() >= target {
                let add = table.finish(encoder).await?;
                out.bytes_written += add.size as u64;
                adds.push(add);
            } else {
                file = Some((encoder, target));
            }
        }
    }
    if let Some((encoder, _)) = file.take() {
        let add = table.finish(encoder).await?;
        out.bytes_written += add.size as u64;
        adds.push(add);
    }
    Ok(())
}

/// A full refresh: the changes are the whole table.
async fn replace_all(
    table: &mut Table,
    changes: &Changes,
    old: Vec<String>,
    run_id: &str,
    generation: u64,
    out: &mut Applied,
) -> Result<(), TableError> {
    let ids = changes.ids();
    let merged = merge::merge(changes, &ids, &[]).map_err(|e| table_err(table, e))?;
    out.changed += merged.changed;
    let mut adds = Vec::new();
    write_cut(table, &merged, &mut adds, out).await?;
    let removes: Vec<_> = old.iter().map(|p| table.remove(p)).collect();
    out.upserted += changes.upserted() as u64;
    commit_counted(table, removes, adds, run_id, generation, out).await
}

/// Writes merged rows as files of about [`TARGET_ROWS`] rows, building and encoding them
/// [`ROW_GROUP_ROWS`] rows at a time (the merged rows are never copied whole).
async fn write_cut(
    table: &Table,
    merged: &merge::Merged,
    adds: &mut Vec<deltalake::kernel::Add>,
    out: &mut Applied,
) -> Result<(), TableError> {
    let mut offset = 0;
    for len in layout::cut(merged.num_rows(), TARGET_ROWS) {
        let range = offset..offset + len;
        offset += len;
        // The rows are sorted by id: the file's range is its first and last row's.
        let first = merged
            .rows(range.start..range.start + 1)
            .map_err(|e| table_err(table, e))?;
        let last = merged
            .rows(range.end - 1..range.end)
            .map_err(|e| table_err(table, e))?;
        let (Some((min, _)), Some((_, max))) = (merge::id_range(&first), merge::id_range(&last))
        else {
            continue;
        };
        let parts = range.clone().step_by(ROW_GROUP_ROWS).map(|start| {
            merged
                .rows(start..(start + ROW_GROUP_ROWS).min(range.end))
                .map_err(|e| e.to_string())
        });
        let add = table.write_parts(merged.schema(), parts, min, max).await?;
        out.bytes_written += add.size as u64;
        adds.push(add);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use object_store::ObjectStoreExt;

    fn batch(schema: &SchemaRef, ids: std::ops::Range<i64>) -> RecordBatch {
        let names: Vec<String> = ids.clone().map(|i| format!("n{i}")).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(ids)),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn a_reread_decodes_only_the_rows_holding_its_ids() {
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut table = Table::open(&dest, "widgets", &schema).await.unwrap();
        let rows = 3 * ROW_GROUP_ROWS as i64 + 100;
        let add = table
            .write(&batch(&schema, 0..rows), 0, rows - 1)
            .await
            .unwrap();
        table.commit(Vec::new(), vec![add], "run", 1).await.unwrap();
        // id 100 read again, unchanged: one row decoded (after the ids of one row group),
        // nothing written or committed.
        let mut same = Changes::new("widgets", schema.clone());
        same.add_raw(&batch(&schema, 100..101)).unwrap();
        let mut out = Applied::default();
        round(&mut table, &Limits::default(), &same, "run", 2, &mut out)
            .await
            .unwrap();
        assert_eq!(
            (out.rows_read, out.commits, out.changed, out.bytes_written),
            (1, 0, 0, 0)
        );
        // id 100 changed: the whole file is rewritten (once), with one changed row.
        let mut changed = Changes::new("widgets", schema.clone());
        let new = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![100])),
                Arc::new(StringArray::from(vec!["renamed"])),
            ],
        )
        .unwrap();
        changed.add_raw(&new).unwrap();
        let mut out = Applied::default();
        round(&mut table, &Limits::default(), &changed, "run", 3, &mut out)
            .await
            .unwrap();
        // The changed row, then the whole file.
        assert_eq!(
            (out.rows_read, out.commits, out.changed),
            (1 + rows as u64, 1, 1)
        );
        let files = table.files().unwrap();
        assert_eq!(files.iter().map(|f| f.rows).sum::<u64>(), rows as u64);
    }

    #[tokio::test]
    async fn small_neighbours_are_compacted_and_no_row_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let mut table = Table::open(&dest, "widgets", &schema).await.unwrap();
        // Three small files with disjoint ranges, and one big one that stays as it is.
        let mut adds = Vec::new();
        for (lo, hi) in [(0, 10), (10, 20), (20, 30)] {
            adds.push(
                table
                    .write(&batch(&schema, lo..hi), lo, hi - 1)
                    .await
                    .unwrap(),
            );
        }
        let big = (TARGET_ROWS - 5) as i64;
        adds.push(
            table
                .write(&batch(&schema, 100..100 + big), 100, 99 + big)
                .await
                .unwrap(),
        );
        table.commit(Vec::new(), adds, "run", 1).await.unwrap();
        let mut out = Applied::default();
        compact(&mut table, &schema, "run", 2, &mut out)
            .await
            .unwrap();
        let mut files = table.files().unwrap();
        files.sort_by_key(|f| f.min_id);
        // The three small files become one; none can join the big file (too many rows).
        let ranges: Vec<(i64, i64, u64)> =
            files.iter().map(|f| (f.min_id, f.max_id, f.rows)).collect();
        assert_eq!(ranges, vec![(0, 29, 30), (100, 99 + big, big as u64)]);
        assert_eq!((out.files_removed, out.files_added, out.commits), (3, 1, 1));
        let mut ids = Vec::new();
        for f in &files {
            for b in table.read(&f.path).await.unwrap() {
                let col = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                ids.extend(col.iter().flatten());
            }
        }
        assert_eq!(ids.len(), 30 + big as usize);
        // Nothing small left to pair: a second compaction commits nothing.
        let mut again = Applied::default();
        compact(&mut table, &schema, "run", 3, &mut again)
            .await
            .unwrap();
        assert_eq!(again.commits, 0);
    }

    /// A raw file of `departments` on `dest`: ids `ids`, each named `name<id>` with
    /// `updated_at` = `version`, every other column null.
    async fn raw_departments(
        dest: &Destination,
        stream: &Stream,
        key: &str,
        ids: std::ops::Range<i64>,
        version: i64,
    ) -> Path {
        raw_department_rows(dest, stream, key, ids.collect(), version, &[]).await
    }

    /// A raw file of `ids` in that order, `tombstones` among them marked deleted.
    async fn raw_department_rows(
        dest: &Destination,
        stream: &Stream,
        key: &str,
        ids: Vec<i64>,
        version: i64,
        tombstones: &[i64],
    ) -> Path {
        let names = StringArray::from_iter_values(ids.iter().map(|i| format!("name{i}-{version}")));
        let names: arrow_array::ArrayRef = Arc::new(names);
        let value = |name: &str| (name == "name").then(|| names.clone());
        raw_rows(dest, stream, key, (&ids, tombstones), version, None, value).await
    }

    /// A raw file of `stream` holding `ids` in that order (`tombstones` among them marked
    /// deleted): the columns `value` gives, `updated_at` and `_extracted_at` = `version`, every
    /// other column null (or any value where it is required); row groups of `group_rows`.
    async fn raw_rows(
        dest: &Destination,
        stream: &Stream,
        key: &str,
        (ids, tombstones): (&[i64], &[i64]),
        version: i64,
        group_rows: Option<usize>,
        value: impl Fn(&str) -> Option<arrow_array::ArrayRef>,
    ) -> Path {
        use arrow_array::{ArrayRef, TimestampMicrosecondArray};
        let schema = crate::privacy::raw_schema(&Default::default(), stream);
        let rows = ids.len();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                let ts = |v: i64| {
                    Arc::new(TimestampMicrosecondArray::from(vec![v; rows]).with_timezone("+00:00"))
                        as ArrayRef
                };
                if let Some(column) = value(f.name()) {
                    return column;
                }
                match f.name().as_str() {
                    "id" => Arc::new(Int64Array::from(ids.to_vec())),
                    "updated_at" => ts(version),
                    crate::convert::EXTRACTED_AT_COLUMN => ts(version),
                    crate::convert::DELETED_COLUMN => Arc::new(arrow_array::BooleanArray::from(
                        ids.iter()
                            .map(|i| tombstones.contains(i))
                            .collect::<Vec<_>>(),
                    )),
                    _ if f.is_nullable() => arrow_array::new_null_array(f.data_type(), rows),
                    // The other required columns (`created_at`, `_run_id`): any value.
                    _ => match f.data_type() {
                        DataType::Timestamp(..) => ts(version),
                        DataType::Utf8 => Arc::new(StringArray::from(vec!["run"; rows])),
                        DataType::Int64 => Arc::new(Int64Array::from(vec![0; rows])),
                        DataType::Boolean => {
                            Arc::new(arrow_array::BooleanArray::from(vec![false; rows]))
                        }
                        other => panic!("no test value for a required {other} column"),
                    },
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let props = group_rows.map(|rows| {
            parquet::file::properties::WriterProperties::builder()
                .set_max_row_group_row_count(Some(rows))
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build()
        });
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, props).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let key = dest.prefix.clone().join(stream.name.as_str()).join(key);
        dest.store.put(&key, buf.into()).await.unwrap();
        key
    }

    /// Every row of the departments table's files as (id, name), sorted, and its files by
    /// lowest id; with `check_ranges`, the files' id ranges are checked disjoint and holding
    /// their rows.
    async fn table_rows(
        dest: &Destination,
        check_ranges: bool,
    ) -> (Vec<(i64, String)>, Vec<layout::FileRange>) {
        let table = Table::existing(dest, "departments").await.unwrap().unwrap();
        let mut files = table.files().unwrap();
        files.sort_by_key(|f| f.min_id);
        if check_ranges {
            assert!(
                files.windows(2).all(|w| w[0].max_id < w[1].min_id),
                "{files:?}"
            );
        }
        let mut rows = Vec::new();
        for f in &files {
            for b in table.read(&f.path).await.unwrap() {
                let ids = b.column_by_name("id").unwrap();
                let ids = ids.as_any().downcast_ref::<Int64Array>().unwrap();
                let names = b.column_by_name("name").unwrap();
                let names = names.as_any().downcast_ref::<StringArray>().unwrap();
                for i in 0..b.num_rows() {
                    if check_ranges {
                        assert!((f.min_id..=f.max_id).contains(&ids.value(i)));
                    }
                    rows.push((ids.value(i), names.value(i).to_string()));
                }
            }
        }
        rows.sort();
        (rows, files)
    }

    /// The one-pass build of an empty table: runs of descending ids (a listing's order) merged
    /// by id, the latest version and tombstones winning as in rounds, in one commit of
    /// full-size files; a file that is not sorted falls back to rounds and leaves no stray file.
    #[tokio::test]
    async fn an_empty_table_is_built_in_one_pass_from_sorted_raw_files() {
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let registry = crate::registry::Registry::embedded().unwrap();
        let stream = registry.get("departments").unwrap();
        let raw_schema = crate::privacy::raw_schema(&Default::default(), stream);
        let tombs: Vec<i64> = (15_000..15_100).collect();
        let keys = vec![
            raw_department_rows(
                &dest,
                stream,
                "a.parquet",
                (0..30_000).rev().collect(),
                1,
                &[],
            )
            .await,
            raw_department_rows(
                &dest,
                stream,
                "b.parquet",
                (15_000..20_000).rev().collect(),
                2,
                &tombs,
            )
            .await,
            // An older copy of some ids, read again: changes nothing.
            raw_department_rows(
                &dest,
                stream,
                "c.parquet",
                (4_000..5_000).rev().collect(),
                0,
                &[],
            )
            .await,
        ];
        let tables = Tables::new(256 << 10);
        let built = tables
            .apply(&dest, stream, &raw_schema, &keys, false, "run", 1)
            .await
            .unwrap();
        assert_eq!(built.commits, 1, "{built:?}");
        assert_eq!((built.upserted, built.deleted), (29_900, 100), "{built:?}");
        // No round ran: nothing was held as changes.
        assert_eq!(tables.peak_round_bytes(), 0);
        let (rows, files) = table_rows(&dest, true).await;
        let truth: Vec<(i64, String)> = (0..30_000)
            .filter(|i| !(15_000..15_100).contains(i))
            .map(|i| {
                (
                    i,
                    format!(
                        "name{i}-{}",
                        if (15_100..20_000).contains(&i) { 2 } else { 1 }
                    ),
                )
            })
            .collect();
        assert_eq!(rows, truth);
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.iter().all(|f| f.rows as usize <= TARGET_ROWS));

        // A file whose ids ascend at its end (not a listing's order), found after the build
        // finished files: merged in rounds instead, the same rows.
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let unsorted = (0..20_000).rev().chain(0..10).collect();
        let keys = vec![
            raw_department_rows(
                &dest,
                stream,
                "a.parquet",
                (0..30_000).rev().collect(),
                1,
                &[],
            )
            .await,
            raw_department_rows(&dest, stream, "b.parquet", unsorted, 1, &[]).await,
        ];
        let tables = Tables::new(256 << 10);
        let merged = tables
            .apply(&dest, stream, &raw_schema, &keys, false, "run", 1)
            .await
            .unwrap();
        assert!(merged.commits >= 2, "{merged:?}");
        assert!(tables.peak_round_bytes() > 0);
        let (rows, _) = table_rows(&dest, true).await;
        assert!(rows.iter().map(|r| r.0).eq(0..30_000));
        // The build's abandoned file is gone: the data files on disk are the ones the rounds
        // committed (the replaced ones stay until a vacuum).
        let on_disk = walk_parquet(&dir.path().join("current").join("departments"));
        assert_eq!(on_disk.len() as u64, merged.files_added, "{on_disk:?}");
    }

    fn walk_parquet(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n != "_delta_log") {
                    out.extend(walk_parquet(&p));
                }
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
        out
    }

    /// A raw file of `candidates`: ids in that order (`tombstones` among them deleted), each
    /// with a text field `team` = `t<id>` and a number field `size` = id (`"big"` for id 7,
    /// which does not fit a number column), in row groups of `group_rows`.
    async fn raw_candidates(
        dest: &Destination,
        stream: &Stream,
        key: &str,
        ids: Vec<i64>,
        tombstones: &[i64],
        group_rows: usize,
    ) -> Path {
        let first: arrow_array::ArrayRef = Arc::new(StringArray::from_iter_values(
            ids.iter().map(|i| format!("first{i}")),
        ));
        let custom: arrow_array::ArrayRef =
            Arc::new(StringArray::from_iter_values(ids.iter().map(|i| {
                let size = if *i == 7 {
                    "\"big\"".to_string()
                } else {
                    i.to_string()
                };
                format!(
                    r#"{{"team":{{"type":"short_text","value":"t{i}"}},"size":{{"type":"number","value":{size}}}}}"#
                )
            })));
        let value = |name: &str| match name {
            "first_name" => Some(first.clone()),
            "custom_fields" => Some(custom.clone()),
            _ => None,
        };
        let rows = (&ids[..], tombstones);
        raw_rows(dest, stream, key, rows, 1, Some(group_rows), value).await
    }

    /// The candidates table's rows as (id, first_name, cf_team, cf_size, _extra), sorted.
    type CandidateRow = (i64, String, String, Option<f64>, Option<String>);
    async fn candidate_rows(dest: &Destination) -> Vec<CandidateRow> {
        use arrow_array::cast::AsArray;
        use arrow_array::types::Float64Type;
        let table = Table::existing(dest, "candidates").await.unwrap().unwrap();
        let mut rows = Vec::new();
        for f in table.files().unwrap() {
            for b in table.read(&f.path).await.unwrap() {
                let col = |n: &str| b.column_by_name(n).unwrap().clone();
                let (ids, first, team, size, extra) = (
                    col("id"),
                    col("first_name"),
                    col("cf_team"),
                    col("cf_size"),
                    col("_extra"),
                );
                let ids = ids.as_primitive::<arrow_array::types::Int64Type>();
                let size = size.as_primitive::<Float64Type>();
                let extra = extra.as_string::<i32>();
                for i in 0..b.num_rows() {
                    assert!((f.min_id..=f.max_id).contains(&ids.value(i)));
                    rows.push((
                        ids.value(i),
                        first.as_string::<i32>().value(i).to_string(),
                        team.as_string::<i32>().value(i).to_string(),
                        size.is_valid(i).then(|| size.value(i)),
                        extra.is_valid(i).then(|| extra.value(i).to_string()),
                    ));
                }
            }
        }
        rows.sort_by_key(|r| r.0);
        rows
    }

    fn candidate_truth(ids: impl Iterator<Item = i64>) -> Vec<CandidateRow> {
        ids.map(|i| {
            (
                i,
                format!("first{i}"),
                format!("t{i}"),
                (i != 7).then_some(i as f64),
                (i == 7).then(|| r#"{"cf_size":"big"}"#.to_string()),
            )
        })
        .collect()
    }

    /// A first build from one strictly descending run without tombstones (a listing read
    /// whole) copies the raw column chunks and encodes only the custom-field columns (and
    /// `_extra` where a value did not fit): the same rows as a merge gives. A tombstone, a
    /// repeated id or overlapping files make it build the other way, leaving no stray file.
    #[tokio::test]
    async fn a_descending_run_is_copied_and_anything_else_merged() {
        let registry = crate::registry::Registry::embedded().unwrap();
        let stream = registry.get("candidates").unwrap();
        let raw_schema = crate::privacy::raw_schema(&Default::default(), stream);
        let apply = async |keys: &[Path], dest: &Destination| {
            Tables::new(256 << 10)
                .apply(dest, stream, &raw_schema, keys, false, "run", 1)
                .await
                .unwrap()
        };

        // Two files (the higher ids in the second), row groups of 6,000 rows.
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let keys = vec![
            raw_candidates(
                &dest,
                stream,
                "a.parquet",
                (0..20_000).rev().collect(),
                &[],
                6_000,
            )
            .await,
            raw_candidates(
                &dest,
                stream,
                "b.parquet",
                (20_000..50_000).rev().collect(),
                &[],
                6_000,
            )
            .await,
        ];
        let built = apply(&keys, &dest).await;
        assert_eq!(
            (
                built.rows_copied,
                built.upserted,
                built.commits,
                built.custom_field_misfits
            ),
            (50_000, 50_000, 1, 1),
            "{built:?}"
        );
        assert_eq!(candidate_rows(&dest).await, candidate_truth(0..50_000));
        let table = Table::existing(&dest, "candidates").await.unwrap().unwrap();
        let mut files = table.files().unwrap();
        files.sort_by_key(|f| f.min_id);
        assert!(
            files.windows(2).all(|w| w[0].max_id < w[1].min_id),
            "{files:?}"
        );
        assert!(
            files.iter().all(|f| f.rows as usize <= TARGET_ROWS),
            "{files:?}"
        );

        // Not one descending run: a tombstone, an id repeated inside a row group (its
        // statistics cannot tell), files whose ranges overlap. Each is merged instead.
        let repeated: Vec<i64> = (0..10_000).rev().chain([0]).collect();
        // (each raw file's ids and tombstones, the live ids)
        type Case = (Vec<(Vec<i64>, Vec<i64>)>, Vec<i64>);
        let cases: Vec<Case> = vec![
            (
                vec![((0..10_000).rev().collect(), vec![500])],
                (0..10_000).filter(|&i| i != 500).collect(),
            ),
            (vec![(repeated, vec![])], (0..10_000).collect()),
            (
                vec![
                    ((0..10_000).rev().collect(), vec![]),
                    ((5_000..12_000).rev().collect(), vec![]),
                ],
                (0..12_000).collect(),
            ),
        ];
        for (files, live) in cases {
            let dir = tempfile::tempdir().unwrap();
            let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
            let mut keys = Vec::new();
            for (n, (ids, tombs)) in files.into_iter().enumerate() {
                keys.push(
                    raw_candidates(&dest, stream, &format!("{n}.parquet"), ids, &tombs, 6_000)
                        .await,
                );
            }
            let merged = apply(&keys, &dest).await;
            assert_eq!(merged.rows_copied, 0, "{merged:?}");
            assert_eq!(
                candidate_rows(&dest).await,
                candidate_truth(live.into_iter())
            );
            let on_disk = walk_parquet(&dir.path().join("current").join("candidates"));
            let table = Table::existing(&dest, "candidates").await.unwrap().unwrap();
            assert_eq!(on_disk.len(), table.files().unwrap().len(), "{on_disk:?}");
        }
    }

    /// The bound itself: a unit far larger than the round budget is merged in many rounds,
    /// none holding more than the budget and one batch, and the table ends exactly right.
    #[tokio::test]
    async fn a_large_unit_is_merged_in_rounds_that_hold_at_most_the_budget() {
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let registry = crate::registry::Registry::embedded().unwrap();
        let stream = registry.get("departments").unwrap();
        let raw_schema = crate::privacy::raw_schema(&Default::default(), stream);
        // 30,000 ids in three files, then 10,000 of them changed (ids 5,000..15,000) and
        // 2,000 new ones, in a second unit.
        let mut keys = Vec::new();
        for (i, lo) in [0i64, 10_000, 20_000].into_iter().enumerate() {
            keys.push(
                raw_departments(&dest, stream, &format!("a{i}.parquet"), lo..lo + 10_000, 1).await,
            );
        }
        let budget = 256 << 10;
        let tables = Tables::new(budget);
        let first = tables
            .apply(&dest, stream, &raw_schema, &keys, false, "run", 1)
            .await
            .unwrap();
        let keys = vec![
            raw_departments(&dest, stream, "b0.parquet", 5_000..15_000, 2).await,
            raw_departments(&dest, stream, "b1.parquet", 30_000..32_000, 2).await,
        ];
        let second = tables
            .apply(&dest, stream, &raw_schema, &keys, false, "run", 2)
            .await
            .unwrap();
        // Many rounds, each its own commit; none held more than the budget and one batch
        // (a raw batch is at most 1,024 rows of a few hundred bytes: under 1 MiB).
        assert!(first.commits >= 4, "{first:?}");
        assert!(second.commits >= 2, "{second:?}");
        let peak = tables.peak_round_bytes();
        assert!(peak >= budget && peak < budget + (1 << 20), "{peak}");
        // The files a round rewrites were decoded one row group at a time, never whole.
        let decoded = tables.peak_decoded_rows();
        assert!(decoded > 0 && decoded <= ROW_GROUP_ROWS, "{decoded}");
        // Exactly one row per id, the latest version of each.
        let (rows, files) = table_rows(&dest, false).await;
        // Files larger than a row group: decoding one whole would have broken the bound above.
        assert!(files.iter().any(|f| f.rows as usize > ROW_GROUP_ROWS));
        assert!(files.iter().all(|f| f.rows as usize <= TARGET_ROWS));
        let truth: Vec<(i64, String)> = (0..32_000)
            .map(|i| {
                let v = if (5_000..15_000).contains(&i) || i >= 30_000 {
                    2
                } else {
                    1
                };
                (i, format!("name{i}-{v}"))
            })
            .collect();
        assert_eq!(rows, truth);
    }
}
