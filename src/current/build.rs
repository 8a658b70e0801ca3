//! A table built in one pass from raw files alone: the first merge into an empty table, and a
//! full refresh (whose raw files are the whole table). Merge rounds ([`super::merge`]) hold a
//! bounded round of changes and rewrite the files those touch, which for a table built from
//! nothing meant writing each row several times (a round's small file, the edge file growing
//! round by round, then the compaction of the small files) and a commit per round.
//!
//! Contract:
//! - When the raw files are one strictly descending run of ids without a tombstone (a listing
//!   read whole), the table is made of their row groups, column chunks copied
//!   ([`super::copy`]); otherwise, or when that finds a repeated id, as follows.
//! - Each raw file is read forward, a batch at a time. A listing returns ids descending and the
//!   engine writes pages in the order they come, so each file is a run of non-ascending ids;
//!   the runs are merged by id (highest first), and of each id's rows the latest version wins
//!   by the rules of [`super::merge::Changes`] (greatest `updated_at`, then `_extracted_at`,
//!   a later file on a tie; a tombstone beats the records extracted up to it).
//! - Rows go out [`PART_ROWS`] at a time (each part ascending, parts descending: a row group
//!   of [`ROW_GROUP_ROWS`] is not sorted within, its id range is tight) into files of about
//!   [`TARGET_ROWS`] rows with disjoint id ranges, all committed at once. What is held is one
//!   batch per raw file, the part being gathered and the file being encoded, whatever the
//!   table's size.
//! - At most [`MAX_FILES`] raw files: more (a rebuild from a long history) are merged in rounds.
//! - A raw file whose ids ascend somewhere (not written from a listing) stops the build before
//!   anything is committed: the files written so far are deleted and [`build`] returns
//!   `Ok(None)`, for the caller to merge in rounds, which take rows in any order.

use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray};
use arrow_schema::SchemaRef;
use futures::StreamExt;
use object_store::path::Path;

use super::copy;
use super::custom::{self, Custom, Plan};
#[cfg(doc)]
use super::layout::ROW_GROUP_ROWS;
use super::layout::{self, TARGET_ROWS};
use super::merge;
use super::raw::{RawFile, raw_err, read_raw};
use super::table::{Encoder, Table, TableError, commit_counted, table_err};
use crate::convert::{DELETED_COLUMN, EXTRA_COLUMN, EXTRACTED_AT_COLUMN};
use crate::state::ManifestCurrent as Applied;
use crate::storage::Destination;

/// Most raw files one build reads at once (a sync's units: the window, or its slices, at most
/// `backfill_slices`). Each open file holds a batch, its row group's column chunks and a
/// decompressor per column, so a rebuild from a long history merges in rounds instead.
pub(super) const MAX_FILES: usize = 16;

/// Rows gathered before they are copied out of the raw batches and encoded: small, so that
/// few raw batches are held for them (a row group's worth of wide rows is tens of MB).
const PART_ROWS: usize = 1024;

/// (`updated_at`, `_extracted_at`) in microseconds, `i64::MIN` when absent.
type Version = (i64, i64);

/// The batch a raw file is at, with the columns the merge compares.
struct Head {
    /// Index of the batch (in the table's schema) in [`Builder::sources`].
    source: usize,
    ids: Int64Array,
    deleted: Option<BooleanArray>,
    updated: Option<TimestampMicrosecondArray>,
    extracted: Option<TimestampMicrosecondArray>,
    row: usize,
}

impl Head {
    /// The id at the current row, skipping rows without one.
    fn id(&mut self) -> Option<i64> {
        while self.row < self.ids.len() {
            if self.ids.is_valid(self.row) {
                return Some(self.ids.value(self.row));
            }
            self.row += 1;
        }
        None
    }

    fn micros(col: &Option<TimestampMicrosecondArray>, row: usize) -> i64 {
        match col {
            Some(c) if c.is_valid(row) => c.value(row),
            _ => i64::MIN,
        }
    }
}

/// One raw file being read.
struct Run {
    key: Path,
    reader: parquet::arrow::async_reader::ParquetRecordBatchStream<RawFile>,
    head: Option<Head>,
    /// The last id taken from this file: the next may not be higher.
    last: Option<i64>,
    done: bool,
}

/// Why the one-pass build stopped.
enum Stop {
    /// A raw file's ids ascend: merge in rounds instead.
    Unsorted,
    Failed(TableError),
}

/// An error of `table`'s build, as a [`Stop`].
fn failed<E: std::fmt::Display>(table: &Table) -> impl FnOnce(E) -> Stop + '_ {
    move |e| Stop::Failed(table_err(table, e))
}

impl From<TableError> for Stop {
    fn from(e: TableError) -> Self {
        Stop::Failed(e)
    }
}

struct Builder<'a, 't> {
    table: &'t mut Table,
    base: &'a SchemaRef,
    custom: Custom<'a>,
    plan: &'a mut Plan,
    schema: SchemaRef,
    taken: std::collections::BTreeSet<String>,
    runs: Vec<Run>,
    /// Batches (in the table's schema) that the heads or the row group being gathered use.
    sources: Vec<RecordBatch>,
    /// (source, row) of the part being gathered, highest id first.
    gathered: Vec<(usize, usize)>,
    /// Its highest and lowest id.
    gathered_ids: Option<(i64, i64)>,
    file: Option<(Encoder, usize)>,
    sizes: std::vec::IntoIter<usize>,
    adds: Vec<deltalake::kernel::Add>,
    out: Applied,
}

/// Builds the table from `keys` alone (see the module contract). `old` are the files the
/// build replaces (a full refresh's); `plan` holds the custom-field columns and grows with
/// fields first seen in the raw files. `Ok(None)`: a raw file is not sorted, nothing changed.
/// With the table's counts, the long files of `custom_field_values` prepared for its new data
/// files (uploaded, not committed: see [`super::values::sync`]).
#[allow(clippy::too_many_arguments)]
pub(super) async fn build(
    table: &mut Table,
    dest: &Destination,
    base: &SchemaRef,
    custom: Custom<'_>,
    plan: &mut Plan,
    keys: &[Path],
    old: Vec<String>,
    run_id: &str,
    generation: u64,
) -> Result<Option<(Applied, Vec<deltalake::kernel::Add>)>, TableError> {
    // One descending run without tombstones (a listing read whole): its row groups are copied.
    if let Some(copied) = copy::build(table, dest, base, &custom, plan, keys).await? {
        let (adds, long, mut out) = copied;
        let removes = old.iter().map(|p| table.remove(p)).collect();
        commit_counted(table, removes, adds, run_id, generation, &mut out).await?;
        return Ok(Some((out, long)));
    }
    let mut runs = Vec::with_capacity(keys.len());
    let mut most = 0usize;
    for key in keys {
        let (reader, rows) = read_raw(dest, key, table).await?;
        most += rows;
        runs.push(Run {
            key: key.clone(),
            reader,
            head: None,
            last: None,
            done: false,
        });
    }
    let schema = plan.schema(base);
    let mut b = Builder {
        taken: base.fields().iter().map(|f| f.name().clone()).collect(),
        table,
        base,
        custom,
        plan,
        schema,
        runs,
        sources: Vec::new(),
        gathered: Vec::with_capacity(PART_ROWS),
        gathered_ids: None,
        file: None,
        sizes: layout::cut(most, TARGET_ROWS).into_iter(),
        adds: Vec::new(),
        out: Applied::default(),
    };
    match b.merge().await {
        Ok(()) => {}
        Err(stop) => {
            // Nothing is committed: the files written so far are nobody's.
            for add in std::mem::take(&mut b.adds) {
                b.table.discard(&add.path).await;
            }
            return match stop {
                Stop::Unsorted => Ok(None),
                Stop::Failed(e) => Err(e),
            };
        }
    }
    let Builder {
        table,
        adds,
        mut out,
        ..
    } = b;
    let removes = old.iter().map(|p| table.remove(p)).collect();
    commit_counted(table, removes, adds, run_id, generation, &mut out).await?;
    Ok(Some((out, Vec::new())))
}

impl Builder<'_, '_> {
    async fn merge(&mut self) -> Result<(), Stop> {
        for r in 0..self.runs.len() {
            self.load(r).await?;
        }
        loop {
            // The highest id at the heads (few files: a scan beats a heap).
            let mut top: Option<i64> = None;
            for r in 0..self.runs.len() {
                if let Some(id) = self.id_at(r).await? {
                    top = Some(top.map_or(id, |t| t.max(id)));
                }
            }
            let Some(id) = top else { break };
            let mut best: Option<(usize, usize, Version)> = None;
            let mut tomb: Option<i64> = None;
            for r in 0..self.runs.len() {
                while self.id_at(r).await? == Some(id) {
                    let run = &mut self.runs[r];
                    let Some(head) = run.head.as_mut() else { break };
                    let row = head.row;
                    let at = Head::micros(&head.extracted, row);
                    let is_tomb = head
                        .deleted
                        .as_ref()
                        .is_some_and(|d| d.is_valid(row) && d.value(row));
                    if is_tomb {
                        tomb = Some(tomb.map_or(at, |t| t.max(at)));
                    } else {
                        let version = (Head::micros(&head.updated, row), at);
                        if best.is_none_or(|(_, _, v)| version >= v) {
                            best = Some((head.source, row, version));
                        }
                    }
                    head.row += 1;
                    run.last = Some(id);
                }
            }
            if tomb.is_some() {
                self.out.deleted += 1;
            }
            if let Some((source, row, (_, at))) = best
                && tomb.is_none_or(|t| at > t)
            {
                self.out.upserted += 1;
                self.out.changed += 1;
                self.gathered.push((source, row));
                self.gathered_ids = Some(match self.gathered_ids {
                    Some((hi, _)) => (hi, id),
                    None => (id, id),
                });
                if self.gathered.len() >= self.room() {
                    self.flush().await?;
                }
            }
        }
        self.flush_and_close().await
    }

    /// The id run `r` is at (reading its next batch when the one it holds is used up); `None`
    /// at the end of its file.
    async fn id_at(&mut self, r: usize) -> Result<Option<i64>, Stop> {
        loop {
            let Some(head) = self.runs[r].head.as_mut() else {
                return Ok(None);
            };
            if let Some(id) = head.id() {
                return Ok(Some(id));
            }
            self.load(r).await?;
        }
    }

    /// Rows the open file (or the next one) still takes in this part.
    fn room(&self) -> usize {
        let left = match &self.file {
            Some((encoder, target)) => target.saturating_sub(encoder.rows()),
            None => self
                .sizes
                .as_slice()
                .first()
                .copied()
                .unwrap_or(TARGET_ROWS),
        };
        left.clamp(1, PART_ROWS)
    }

    /// Reads run `r`'s next batch into its head (none at the end of the file).
    async fn load(&mut self, r: usize) -> Result<(), Stop> {
        let run = &mut self.runs[r];
        if run.done {
            run.head = None;
            return Ok(());
        }
        let key = run.key.clone();
        let Some(batch) = run.reader.next().await else {
            run.done = true;
            run.head = None;
            return Ok(());
        };
        let batch = batch.map_err(|e| raw_err(self.table, &key, e))?;
        let ids = batch
            .column_by_name("id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .cloned()
            .unwrap_or_else(|| Int64Array::new_null(batch.num_rows()));
        // The file must not ascend, within the batch and from the one before.
        let mut last = self.runs[r].last;
        for id in ids.iter().flatten() {
            if last.is_some_and(|l| id > l) {
                return Err(Stop::Unsorted);
            }
            last = Some(id);
        }
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
                .cloned()
        };
        let head = Head {
            source: 0,
            deleted: batch
                .column_by_name(DELETED_COLUMN)
                .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
                .cloned(),
            updated: column("updated_at"),
            extracted: column(EXTRACTED_AT_COLUMN),
            ids,
            row: 0,
        };
        let wide = self.widen(&batch).await?;
        // Rows dropped as older versions or tombstones free no batch until a flush: keep the
        // held batches few even when nothing is gathered for a long while.
        if self.sources.len() > 2 * self.runs.len() + 16 {
            self.keep_used_sources();
        }
        self.sources.push(wide);
        let source = self.sources.len() - 1;
        self.runs[r].head = Some(Head { source, ..head });
        Ok(())
    }

    /// `batch` (raw) in the table's schema, with its custom fields as columns; a field first
    /// seen here widens the table (the file so far is finished in the old schema).
    async fn widen(&mut self, batch: &RecordBatch) -> Result<RecordBatch, Stop> {
        let Some((cf, _)) = &self.custom else {
            return merge::conform(batch, &self.schema, self.table.stream_name())
                .map_err(failed(self.table));
        };
        let maps = custom::maps(batch, &cf.field);
        let mut grew = false;
        for (k, t) in custom::unseen(&maps, self.plan) {
            grew |= self.plan.add(&k, &t, &self.taken);
        }
        if grew {
            self.flush_and_close().await?;
            self.schema = self.plan.schema(self.base);
            self.table.evolve_to(&self.schema).await?;
            for s in &mut self.sources {
                *s = merge::conform(s, &self.schema, self.table.stream_name())
                    .map_err(failed(self.table))?;
            }
        }
        let (wide, misfits) =
            custom::widen(batch, &maps, self.plan, EXTRA_COLUMN).map_err(failed(self.table))?;
        self.out.custom_field_misfits += misfits;
        merge::conform(&wide, &self.schema, self.table.stream_name()).map_err(failed(self.table))
    }

    /// Writes the gathered rows (ascending) into the open file, then keeps only the batches
    /// the heads still use.
    async fn flush(&mut self) -> Result<(), Stop> {
        if let Some((hi, lo)) = self.gathered_ids.take() {
            self.gathered.reverse();
            let mut columns = Vec::with_capacity(self.schema.fields().len());
            for c in 0..self.schema.fields().len() {
                let arrays: Vec<&dyn Array> =
                    self.sources.iter().map(|b| b.column(c).as_ref()).collect();
                columns.push(
                    arrow_select::interleave::interleave(&arrays, &self.gathered)
                        .map_err(failed(self.table))?,
                );
            }
            let part =
                RecordBatch::try_new(self.schema.clone(), columns).map_err(failed(self.table))?;
            self.gathered.clear();
            let (mut encoder, target) = match self.file.take() {
                Some(open) => open,
                None => (
                    self.table.encoder(&self.schema)?,
                    self.sizes.next().unwrap_or(TARGET_ROWS),
                ),
            };
            encoder
                .write(&part, Some((lo, hi)))
                .map_err(failed(self.table))?;
            if encoder.rows() >= target {
                self.finish(encoder).await?;
            } else {
                self.file = Some((encoder, target));
            }
        }
        self.keep_used_sources();
        Ok(())
    }

    /// Drops the batches that neither a head nor a gathered row uses.
    fn keep_used_sources(&mut self) {
        let mut new_index = vec![usize::MAX; self.sources.len()];
        let mut kept = Vec::with_capacity(self.runs.len());
        let used = self
            .runs
            .iter_mut()
            .filter_map(|run| run.head.as_mut().map(|h| &mut h.source))
            .chain(self.gathered.iter_mut().map(|(s, _)| s));
        for source in used {
            if new_index[*source] == usize::MAX {
                kept.push(self.sources[*source].clone());
                new_index[*source] = kept.len() - 1;
            }
            *source = new_index[*source];
        }
        self.sources = kept;
    }

    /// Writes out the gathered rows and finishes the open file.
    async fn flush_and_close(&mut self) -> Result<(), Stop> {
        self.flush().await?;
        match self.file.take() {
            Some((encoder, _)) => self.finish(encoder).await,
            None => Ok(()),
        }
    }

    async fn finish(&mut self, encoder: Encoder) -> Result<(), Stop> {
        let add = self.table.finish(encoder).await?;
        self.out.bytes_written += add.size as u64;
        self.adds.push(add);
        Ok(())
    }
}
