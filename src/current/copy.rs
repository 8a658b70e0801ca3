//! A table built by copying the raw files' encoded column chunks: when a first build's (or a
//! full refresh's) raw files hold one run of strictly descending ids and no tombstone — a
//! complete read of a listing, the common first sync — the table's rows are exactly the raw
//! rows, in the raw order, so there is nothing to merge, and decoding and encoding them again
//! would only spend CPU. Each table file is made of whole raw row groups: every declared
//! column's chunk (pages, dictionary, statistics, page index) is spliced in byte for byte, and
//! only what the raw files do not have is encoded: the custom-field columns, and `_extra` in a
//! row group where a value did not fit its column.
//!
//! Contract:
//! - [`build`] first reads the raw files' footers and returns `Ok(None)`, having written
//!   nothing, unless: every declared column of the table exists in every raw file with the
//!   same type and the same Parquet column (so its chunks are valid in the table's file),
//!   every row group has `id` statistics and no null id, no row group's `_deleted` statistics
//!   say true, and the row groups of all the files, ordered by id, have disjoint id ranges.
//! - Each row group's `id` and `_deleted` (and, for a stream with custom fields, `_extra` and
//!   the custom-field column) are decoded: ids must strictly descend through the whole run and
//!   no row may be a tombstone; otherwise the files written so far are deleted and it returns
//!   `Ok(None)` (the caller builds the table another way), with only the custom-field plan
//!   possibly grown. A field first seen in a row group widens the table as in [`super::build`]:
//!   the file so far is finished in the old schema.
//! - Files hold consecutive row groups, highest ids first, up to [`TARGET_ROWS`] rows (a raw row
//!   group larger than that is a file alone); rows keep the raw order, descending within a row
//!   group, which merges accept (they sort a row group's rows). `add` actions carry the rows and
//!   the id range as for every other file.
//! - For a stream with custom fields, each table file's long rows (`custom_field_values`) are
//!   made from the same decoded row groups as the file is written, and uploaded as its long
//!   file when it is finished, not committed: [`super::values::sync`] commits them after the
//!   table's commit instead of reading the table file back to derive them.
//! - Held at once: one raw row group's compressed bytes and its few decoded columns, and the
//!   table file being written and its long file (compressed).

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch};
use arrow_schema::SchemaRef;
use bytes::{Buf, Bytes};
use deltalake::kernel::Add;
use object_store::path::Path;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::{ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::arrow::{ArrowSchemaConverter, ProjectionMask};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::Statistics;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

use super::custom::{self, Custom, Plan};
use super::layout::TARGET_ROWS;
use super::raw::RawFile;
use super::table::{
    Encoder, Table, TableError, discard_uncommitted, file_encoder, put_uncommitted, table_err,
};
use super::values::long_name;
use crate::convert::{DELETED_COLUMN, EXTRA_COLUMN};
use crate::registry::CUSTOM_FIELD_VALUES;
use crate::state::ManifestCurrent as Applied;
use crate::storage::Destination;

/// One raw file, with its footer.
struct Source {
    file: RawFile,
    meta: ArrowReaderMetadata,
    /// Table column name → the raw file's leaf column index holding it.
    leaves: HashMap<String, usize>,
    /// Declared columns whose raw Parquet column differs from the table's (a required raw
    /// column is optional in the table, whose columns are all nullable): decoded and encoded
    /// again, with their raw root column indexes.
    reencode: Vec<(String, usize)>,
    /// Root (top-level) column indexes of `id`, `_deleted`, `_extra` and the custom fields.
    id: usize,
    deleted: Option<usize>,
    extra: Option<usize>,
    custom: Option<usize>,
}

/// One raw row group, with its id range.
struct Group {
    source: usize,
    index: usize,
    min: i64,
    max: i64,
    rows: usize,
}

/// The table file being written.
struct Open {
    writer: SerializedFileWriter<Vec<u8>>,
    factory: ArrowRowGroupWriterFactory,
    rows: usize,
    range: (i64, i64),
    /// Its long file, for a stream with custom fields.
    long: Option<Encoder>,
}

/// Why copying stopped.
enum Stop {
    /// The rows are not one strictly descending run without tombstones.
    NotARun,
    Failed(TableError),
}

impl From<TableError> for Stop {
    fn from(e: TableError) -> Self {
        Stop::Failed(e)
    }
}

/// The table's data files, copied from `keys` (see the module contract), and their long files,
/// none committed; `Ok(None)` when the raw files are not one descending run (nothing is left
/// written).
pub(super) async fn build(
    table: &mut Table,
    dest: &Destination,
    base: &SchemaRef,
    custom: &Custom<'_>,
    plan: &mut Plan,
    keys: &[Path],
) -> Result<Option<Copied>, TableError> {
    let field = custom.as_ref().map(|(cf, _)| cf.field.as_str());
    let Some((sources, groups)) = survey(table, dest, base, plan, field, keys).await? else {
        return Ok(None);
    };
    let mut copy = Copy {
        table,
        dest,
        long: Vec::new(),
        base,
        custom,
        plan,
        sources,
        adds: Vec::new(),
        out: Applied::default(),
        last: None,
    };
    match copy.run(&groups).await {
        Ok(()) => Ok(Some((copy.adds, copy.long, copy.out))),
        Err(stop) => {
            for add in std::mem::take(&mut copy.adds) {
                copy.table.discard(&add.path).await;
            }
            for add in std::mem::take(&mut copy.long) {
                discard_uncommitted(dest, CUSTOM_FIELD_VALUES, &add.path).await;
            }
            match stop {
                Stop::NotARun => Ok(None),
                Stop::Failed(e) => Err(e),
            }
        }
    }
}

/// The raw files and their row groups (highest ids first) when their footers allow a copy.
async fn survey(
    table: &Table,
    dest: &Destination,
    base: &SchemaRef,
    plan: &Plan,
    custom_field: Option<&str>,
    keys: &[Path],
) -> Result<Option<(Vec<Source>, Vec<Group>)>, TableError> {
    let wanted = ArrowSchemaConverter::new()
        .convert(&plan.schema(base))
        .map_err(|e| table_err(table, e))?;
    let mut sources = Vec::with_capacity(keys.len());
    let mut groups = Vec::new();
    for key in keys {
        let mut file = RawFile::open(dest, key, table).await?;
        let footer = file.footer(table).await?;
        let meta = ArrowReaderMetadata::try_new(Arc::new(footer), ArrowReaderOptions::new())
            .map_err(|e| super::raw::raw_err(table, key, e))?;
        let Some(source) = source(file, meta, base, &wanted, custom_field) else {
            return Ok(None);
        };
        let parquet = source.meta.metadata();
        let id_leaf = source.leaves["id"];
        let deleted_leaf = source
            .deleted
            .and_then(|_| source.leaves_of(DELETED_COLUMN));
        for (index, rg) in parquet.row_groups().iter().enumerate() {
            if rg.num_rows() == 0 {
                continue;
            }
            let stats = rg.column(id_leaf).statistics();
            let (min, max) = match stats {
                Some(Statistics::Int64(s)) if stats.and_then(|s| s.null_count_opt()) == Some(0) => {
                    match (s.min_opt(), s.max_opt()) {
                        (Some(&min), Some(&max)) => (min, max),
                        _ => return Ok(None),
                    }
                }
                _ => return Ok(None),
            };
            if let Some(leaf) = deleted_leaf
                && let Some(Statistics::Boolean(s)) = rg.column(leaf).statistics()
                && s.max_opt() == Some(&true)
            {
                return Ok(None);
            }
            groups.push(Group {
                source: sources.len(),
                index,
                min,
                max,
                rows: rg.num_rows() as usize,
            });
        }
        sources.push(source);
    }
    groups.sort_by_key(|g| std::cmp::Reverse((g.max, g.min)));
    if groups.windows(2).any(|w| w[0].min <= w[1].max) {
        return Ok(None);
    }
    Ok(Some((sources, groups)))
}

/// A raw file as a [`Source`], when each declared column of the table (`base`, whose Parquet
/// schema with the custom-field columns is `wanted`) is one of its columns, same type.
fn source(
    file: RawFile,
    meta: ArrowReaderMetadata,
    base: &SchemaRef,
    wanted: &SchemaDescriptor,
    custom_field: Option<&str>,
) -> Option<Source> {
    let raw = super::table::table_schema(meta.schema());
    for f in base.fields() {
        let r = raw.field_with_name(f.name()).ok()?;
        if r.data_type() != f.data_type() {
            return None;
        }
    }
    let descr = meta.metadata().file_metadata().schema_descr();
    let root = |name: &str| meta.schema().index_of(name).ok();
    let mut leaves = HashMap::new();
    let mut reencode: Vec<(String, usize)> = Vec::new();
    for (i, column) in wanted.columns().iter().enumerate() {
        let t = wanted.get_column_root_idx(i);
        let Some(field) = base.fields().get(t) else {
            continue;
        };
        let at = descr
            .columns()
            .iter()
            .position(|c| c.path() == column.path())?;
        // The same Parquet column (type, repetition, levels): its chunks fit the table's file.
        // Otherwise (the arrow types being equal) it is decoded and encoded again.
        if descr.column(at).as_ref() == column.as_ref() {
            leaves.insert(column.path().string(), at);
        } else if !reencode.iter().any(|(n, _)| n == field.name()) {
            reencode.push((field.name().clone(), root(field.name())?));
        }
    }
    Some(Source {
        id: root("id")?,
        deleted: root(DELETED_COLUMN),
        extra: root(EXTRA_COLUMN),
        // A stream with custom fields whose raw file lacks their column: not copied.
        custom: match custom_field {
            Some(name) => Some(root(name)?),
            None => None,
        },
        leaves,
        reencode,
        file,
        meta,
    })
}

impl Source {
    /// The leaf index of a top-level, single-leaf raw column.
    fn leaves_of(&self, name: &str) -> Option<usize> {
        let descr = self.meta.metadata().file_metadata().schema_descr();
        descr
            .columns()
            .iter()
            .position(|c| c.path().string() == name)
    }
}

/// A row group's bytes, addressed by their offsets in the raw file.
#[derive(Clone)]
struct Slice {
    start: u64,
    bytes: Bytes,
}

impl Length for Slice {
    fn len(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }
}

impl ChunkReader for Slice {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self
            .get_bytes(start, (self.len() - start.min(self.len())) as usize)?
            .reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let at = start
            .checked_sub(self.start)
            .map(|a| a as usize)
            .filter(|a| a + length <= self.bytes.len())
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "bytes {start}+{length} are outside the row group read ({}+{})",
                    self.start,
                    self.bytes.len()
                ))
            })?;
        Ok(self.bytes.slice(at..at + length))
    }
}

/// The table's new data files, their long files, and the counts.
pub(super) type Copied = (Vec<Add>, Vec<Add>, Applied);

struct Copy<'a, 't> {
    table: &'t mut Table,
    dest: &'a Destination,
    /// The long files uploaded for the data files written.
    long: Vec<Add>,
    base: &'a SchemaRef,
    custom: &'a Custom<'a>,
    plan: &'a mut Plan,
    sources: Vec<Source>,
    adds: Vec<Add>,
    out: Applied,
    /// The last id copied: the next must be lower.
    last: Option<i64>,
}

impl Copy<'_, '_> {
    async fn run(&mut self, groups: &[Group]) -> Result<(), Stop> {
        let taken: std::collections::BTreeSet<String> = self
            .base
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut schema = self.plan.schema(self.base);
        let mut open: Option<Open> = None;
        for g in groups {
            let source = &self.sources[g.source];
            let rg = source.meta.metadata().row_group(g.index);
            let (start, end) = rg
                .columns()
                .iter()
                .map(|c| c.byte_range())
                .fold((u64::MAX, 0), |(s, e), (at, len)| {
                    (s.min(at), e.max(at + len))
                });
            let slice = Slice {
                start,
                bytes: source.file.range(start..end, self.table).await?,
            };
            let decoded = self.decode(source, g, &slice)?;
            self.check(&decoded, g)?;
            // The custom-field columns, and `_extra` when a value did not fit its column.
            let mut encoded: Vec<(String, ArrayRef)> = Vec::new();
            // The batch with the custom-field columns, for the long rows.
            let mut wide: Option<RecordBatch> = None;
            let source = &self.sources[g.source];
            if !source.reencode.is_empty() {
                let fields: Vec<arrow_schema::FieldRef> = source
                    .reencode
                    .iter()
                    .filter_map(|(n, _)| schema.field_with_name(n).ok())
                    .map(|f| Arc::new(f.clone()))
                    .collect();
                let again = super::merge::conform(
                    &decoded,
                    &Arc::new(arrow_schema::Schema::new(fields)),
                    self.table.stream_name(),
                )
                .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
                for (f, c) in again.schema().fields().iter().zip(again.columns()) {
                    encoded.push((f.name().clone(), c.clone()));
                }
            }
            if let Some((cf, _)) = self.custom.as_ref() {
                let maps = custom::maps(&decoded, &cf.field);
                let mut grew = false;
                for (k, t) in custom::unseen(&maps, self.plan) {
                    grew |= self.plan.add(&k, &t, &taken);
                }
                if grew {
                    if let Some(file) = open.take() {
                        self.finish(file).await?;
                    }
                    schema = self.plan.schema(self.base);
                    self.table.evolve_to(&schema).await?;
                }
                let (widened, misfits) = custom::widen(&decoded, &maps, self.plan, EXTRA_COLUMN)
                    .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
                self.out.custom_field_misfits += misfits;
                let mut names: Vec<String> = self
                    .plan
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                if misfits > 0 {
                    names.push(EXTRA_COLUMN.to_string());
                }
                for name in names {
                    if let Some(c) = widened.column_by_name(&name) {
                        encoded.push((name, c.clone()));
                    }
                }
                wide = Some(widened);
            }
            if let Some(file) = open.take_if(|f| f.rows > 0 && f.rows + g.rows > TARGET_ROWS) {
                self.finish(file).await?;
            }
            if open.is_none() {
                let (writer, factory) = self.table.column_writer(&schema)?;
                let long = match self.custom {
                    Some(_) => Some(
                        file_encoder(&custom::long_schema(), "record_id")
                            .map_err(|e| Stop::Failed(table_err(self.table, e)))?,
                    ),
                    None => None,
                };
                open = Some(Open {
                    writer,
                    factory,
                    rows: 0,
                    range: (g.min, g.max),
                    long,
                });
            }
            let file = open.as_mut().expect("opened above");
            if let (Some(long), Some(wide), Some((cf, _))) =
                (file.long.as_mut(), &wide, self.custom.as_ref())
            {
                let rows = custom::long_rows(wide, self.plan, &cf.object_type)
                    .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
                long.write(&rows, None)
                    .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
            }
            let source = &self.sources[g.source];
            write_group(file, &schema, source, g.index, &slice, &encoded)
                .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
            file.rows += g.rows;
            file.range = (file.range.0.min(g.min), file.range.1.max(g.max));
            self.out.upserted += g.rows as u64;
            self.out.changed += g.rows as u64;
            self.out.rows_copied += g.rows as u64;
        }
        if let Some(file) = open.take() {
            self.finish(file).await?;
        }
        Ok(())
    }

    /// The row group's `id`, `_deleted`, `_extra` and custom-field columns (those it has).
    fn decode(&self, source: &Source, g: &Group, slice: &Slice) -> Result<RecordBatch, Stop> {
        let descr = source.meta.metadata().file_metadata().schema_descr();
        let mut roots = vec![source.id];
        if let Some(c) = source.custom {
            roots.extend(source.extra);
            roots.push(c);
        }
        roots.extend(source.deleted);
        roots.extend(source.reencode.iter().map(|(_, r)| *r));
        let failed = |e: parquet::errors::ParquetError| Stop::Failed(table_err(self.table, e));
        let reader =
            ParquetRecordBatchReaderBuilder::new_with_metadata(slice.clone(), source.meta.clone())
                .with_row_groups(vec![g.index])
                .with_projection(ProjectionMask::roots(descr, roots))
                .with_batch_size(g.rows.max(1))
                .build()
                .map_err(failed)?;
        let batches = reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(arrow_schema::Schema::empty()));
        arrow_select::concat::concat_batches(&schema, &batches)
            .map_err(|e| Stop::Failed(table_err(self.table, e)))
    }

    /// Ids strictly descend from the row group before, none is null, no row is a tombstone.
    fn check(&mut self, decoded: &RecordBatch, g: &Group) -> Result<(), Stop> {
        let ids = decoded
            .column_by_name("id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .ok_or(Stop::NotARun)?;
        if ids.len() != g.rows || ids.null_count() > 0 {
            return Err(Stop::NotARun);
        }
        for &id in ids.values() {
            if self.last.is_some_and(|l| id >= l) {
                return Err(Stop::NotARun);
            }
            self.last = Some(id);
        }
        if let Some(deleted) = decoded
            .column_by_name(DELETED_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>())
            && deleted.true_count() > 0
        {
            return Err(Stop::NotARun);
        }
        Ok(())
    }

    async fn finish(&mut self, file: Open) -> Result<(), Stop> {
        let Open {
            writer,
            rows,
            range,
            long,
            ..
        } = file;
        let buf = writer
            .into_inner()
            .map_err(|e| Stop::Failed(table_err(self.table, e)))?;
        let add = self.table.finish_written(buf, rows, range).await?;
        self.out.bytes_written += add.size as u64;
        if let (Some(long), Some((cf, _))) = (long, self.custom.as_ref()) {
            let name = long_name(&cf.object_type, &add.path);
            let key = "record_id";
            let long = put_uncommitted(self.dest, CUSTOM_FIELD_VALUES, name, long, key, range);
            self.long.push(long.await?);
        }
        self.adds.push(add);
        Ok(())
    }
}

/// Appends raw row group `index` of `source` to `file` as a row group in `schema`: the
/// columns in `encoded` are encoded from their arrays, every other one is copied from `slice`.
fn write_group(
    file: &mut Open,
    schema: &SchemaRef,
    source: &Source,
    index: usize,
    slice: &Slice,
    encoded: &[(String, ArrayRef)],
) -> parquet::errors::Result<()> {
    let parquet = source.meta.metadata();
    let rg = parquet.row_group(index);
    let written = file.writer.flushed_row_groups().len();
    let writers = file.factory.create_column_writers(written)?;
    let descr = file.writer.schema_descr().clone();
    let mut rgw = file.writer.next_row_group()?;
    // The leaves of the encoded column being written: (root, leaves, next leaf).
    let mut leaves: Option<(usize, Vec<ArrowLeafColumn>, usize)> = None;
    for (leaf, mut writer) in writers.into_iter().enumerate() {
        let root = descr.get_column_root_idx(leaf);
        let field = schema.field(root);
        match encoded.iter().find(|(name, _)| name == field.name()) {
            Some((_, array)) => {
                if leaves.as_ref().is_none_or(|(r, _, _)| *r != root) {
                    leaves = Some((root, compute_leaves(field, array)?, 0));
                }
                let (_, columns, next) = leaves.as_mut().expect("set above");
                let column = columns.get(*next).ok_or_else(|| {
                    parquet::errors::ParquetError::General(format!(
                        "column {} has fewer leaves than its schema",
                        field.name()
                    ))
                })?;
                *next += 1;
                writer.write(column)?;
                writer.close()?.append_to_row_group(&mut rgw)?;
            }
            None => {
                let path = descr.column(leaf).path().string();
                let at = *source.leaves.get(&path).ok_or_else(|| {
                    parquet::errors::ParquetError::General(format!(
                        "the raw file has no column {path}"
                    ))
                })?;
                let chunk = rg.column(at);
                let close = ColumnCloseResult {
                    bytes_written: chunk.compressed_size() as u64,
                    rows_written: rg.num_rows() as u64,
                    metadata: chunk.clone(),
                    bloom_filter: None,
                    column_index: parquet
                        .column_index()
                        .and_then(|c| c.get(index)?.get(at).cloned()),
                    offset_index: parquet
                        .offset_index()
                        .and_then(|o| o.get(index)?.get(at).cloned()),
                };
                rgw.append_column(slice, close)?;
            }
        }
    }
    rgw.close()?;
    Ok(())
}
