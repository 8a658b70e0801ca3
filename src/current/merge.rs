//! The rows of one change to a current-state table, and the merge of a group of the table's
//! files with the changes they own, as Arrow batches in the table's schema.
//!
//! Contract:
//! - [`Changes::add_raw`] takes a raw file's batches (the stream's raw schema): record rows
//!   become upserts in the table's columns, tombstones (`_deleted`) become deletes. Per id the
//!   latest version wins: greatest `updated_at`, then latest `_extracted_at`; a tombstone wins
//!   over a record of the same or an earlier extraction (and only over those: a record read
//!   again after its tombstone lives), so the order in which changes arrive does not matter.
//! - [`merge`] keeps every old row whose id is not changed, replaces changed ones by their new
//!   version when it is newer, drops deleted ids, and returns all rows sorted by id: exactly one
//!   row per live id.
//! - Batches from files written with an older declaration are conformed to the current schema
//!   (missing columns become null); a column whose type changed is refused with
//!   [`MergeError::TypeChanged`] (the way forward is `rebuild`).

use std::collections::{BTreeMap, BTreeSet};

use arrow_array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, TimestampMicrosecondArray,
    new_null_array,
};
use arrow_schema::SchemaRef;

use crate::convert::{DELETED_COLUMN, EXTRACTED_AT_COLUMN};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error(
        "column `{column}` is {found} in the table but {declared} in the declaration; a type \
         change cannot be merged: run `greenhouse-extract rebuild --streams {stream}` to rebuild \
         the table from the raw history with the new types"
    )]
    TypeChanged {
        stream: String,
        column: String,
        found: String,
        declared: String,
    },
    #[error("{0}")]
    Arrow(String),
}

fn arrow_err(e: impl std::fmt::Display) -> MergeError {
    MergeError::Arrow(e.to_string())
}

/// A row's version: (`updated_at`, `_extracted_at`), both in microseconds (`i64::MIN` when
/// absent, so that any value wins over none).
type Version = (i64, i64);

/// The changes of one commit, in the table's schema.
#[derive(Debug)]
pub struct Changes {
    stream: String,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// Per upserted id: (batch, row, version) of its winning row.
    upserts: BTreeMap<i64, (usize, usize, Version)>,
    /// Deleted ids, with the extraction of their tombstone.
    deleted: BTreeMap<i64, i64>,
    /// Arrow memory of `batches`: what a merge round's budget counts.
    bytes: usize,
}

impl Changes {
    pub fn new(stream: &str, schema: SchemaRef) -> Self {
        Changes {
            stream: stream.to_string(),
            schema,
            batches: Vec::new(),
            upserts: BTreeMap::new(),
            deleted: BTreeMap::new(),
            bytes: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.deleted.is_empty()
    }

    /// Bytes of the rows held (their Arrow buffers; the per-id index is not counted, at ~40
    /// bytes an id it is small beside the rows): the memory bound of a merge round counts
    /// these.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Every changed id (upserted or deleted), sorted.
    pub fn ids(&self) -> Vec<i64> {
        let set: BTreeSet<i64> = self
            .upserts
            .keys()
            .chain(self.deleted.keys())
            .copied()
            .collect();
        set.into_iter().collect()
    }

    pub fn upserted(&self) -> usize {
        self.upserts.len()
    }

    pub fn deleted(&self) -> usize {
        self.deleted.len()
    }

    /// Deletes `ids` whatever extraction their rows come from (a complete listing said they
    /// are gone).
    pub fn delete_ids(&mut self, ids: impl IntoIterator<Item = i64>) {
        for id in ids {
            self.deleted.insert(id, i64::MAX);
            self.upserts.remove(&id);
        }
    }

    /// Moves the changes to a wider schema (new columns: the held rows read them as null).
    pub fn widen(&mut self, schema: &SchemaRef) -> Result<(), MergeError> {
        self.bytes = 0;
        for b in &mut self.batches {
            *b = conform(b, schema, &self.stream)?;
            self.bytes += b.get_array_memory_size();
        }
        self.schema = schema.clone();
        Ok(())
    }

    /// Adds one batch of a raw file (the stream's raw schema, `id` first among the keys).
    pub fn add_raw(&mut self, batch: &RecordBatch) -> Result<(), MergeError> {
        let ids = int64(batch, "id");
        let Some(ids) = ids else {
            return Ok(());
        };
        let deleted = batch
            .column_by_name(DELETED_COLUMN)
            .and_then(|c| c.as_any().downcast_ref::<BooleanArray>());
        let extracted = timestamps(batch, EXTRACTED_AT_COLUMN);
        let updated = timestamps(batch, "updated_at");
        let conformed = conform(batch, &self.schema, &self.stream)?;
        let b = self.batches.len();
        let mut used = false;
        for row in 0..batch.num_rows() {
            if !ids.is_valid(row) {
                continue;
            }
            let id = ids.value(row);
            let at = value(extracted, row);
            if deleted.is_some_and(|d| d.is_valid(row) && d.value(row)) {
                let newest = self.deleted.entry(id).or_insert(at);
                *newest = (*newest).max(at);
                continue;
            }
            let version = (value(updated, row), at);
            match self.upserts.get(&id) {
                Some(&(_, _, old)) if old > version => {}
                _ => {
                    self.upserts.insert(id, (b, row, version));
                    used = true;
                }
            }
        }
        if used {
            self.bytes += conformed.get_array_memory_size();
            self.batches.push(conformed);
        }
        // A tombstone that is newer than (or as new as) the upsert wins.
        let deleted = &self.deleted;
        self.upserts.retain(|id, (_, _, v)| match deleted.get(id) {
            Some(at) => v.1 > *at,
            None => true,
        });
        Ok(())
    }
}

/// A group's rows after the merge, sorted by id, and what happened to them. The rows are
/// not copied yet: [`Merged::rows`] builds any run of them, so that a caller writing files of
/// a few thousand rows never holds the whole group twice (sources and a copy).
pub struct Merged {
    schema: SchemaRef,
    /// The old batches (conformed) followed by the changes' batches.
    sources: Vec<RecordBatch>,
    /// (source, row) of every row that stays, sorted by id.
    indices: Vec<(usize, usize)>,
    /// Old rows replaced or deleted.
    pub removed: u64,
    /// New rows written (inserted or replacing).
    pub written: u64,
    /// Ids whose row changed (inserted, replaced or removed): each counts once.
    pub changed: u64,
}

impl Merged {
    /// The table's schema, which the rows are in.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows after the merge.
    pub fn num_rows(&self) -> usize {
        self.indices.len()
    }

    /// The merged rows `range` (positions in id order) as one batch.
    pub fn rows(&self, range: std::ops::Range<usize>) -> Result<RecordBatch, MergeError> {
        let indices = &self.indices[range];
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for c in 0..self.schema.fields().len() {
            let arrays: Vec<&dyn Array> =
                self.sources.iter().map(|b| b.column(c).as_ref()).collect();
            columns
                .push(arrow_select::interleave::interleave(&arrays, indices).map_err(arrow_err)?);
        }
        RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow_err)
    }

    /// Every merged row as one batch.
    pub fn batch(&self) -> Result<RecordBatch, MergeError> {
        self.rows(0..self.num_rows())
    }
}

/// Merges the rows of `old` (a group's files, any schema the table had) with the changes
/// whose ids are `ids` (a sorted slice of [`Changes::ids`]).
pub fn merge(changes: &Changes, ids: &[i64], old: &[RecordBatch]) -> Result<Merged, MergeError> {
    let schema = &changes.schema;
    let mut sources: Vec<RecordBatch> = Vec::with_capacity(old.len() + changes.batches.len());
    for b in old {
        sources.push(conform(b, schema, &changes.stream)?);
    }
    let first_change = sources.len();
    sources.extend(changes.batches.iter().cloned());
    let wanted: BTreeSet<i64> = ids.iter().copied().collect();
    // (id, source, row) of every row that stays.
    let mut rows: Vec<(i64, usize, usize)> = Vec::new();
    let mut removed = 0u64;
    let mut removed_ids: BTreeSet<i64> = BTreeSet::new();
    // Old rows of a changed id stay only when their version beats the change's.
    for (s, batch) in sources[..first_change].iter().enumerate() {
        let ids_col = int64(batch, "id").ok_or_else(|| arrow_err("a table file has no id"))?;
        let updated = timestamps(batch, "updated_at");
        let extracted = timestamps(batch, EXTRACTED_AT_COLUMN);
        for row in 0..batch.num_rows() {
            if !ids_col.is_valid(row) {
                continue;
            }
            let id = ids_col.value(row);
            if !wanted.contains(&id) {
                rows.push((id, s, row));
                continue;
            }
            let version = (value(updated, row), value(extracted, row));
            // A tombstone removes the rows extracted up to its own extraction (so changes
            // commute: a rebuild may apply the raw files in any order). A re-read of the same
            // content (the lookback's overlap) is no change: the old row stays, and a run that
            // changed nothing rewrites nothing.
            let replaced = match changes.upserts.get(&id) {
                Some(&(b, r, new)) => {
                    new >= version && !same_record(batch, row, &changes.batches[b], r)
                }
                None => changes.deleted.get(&id).is_some_and(|at| *at >= version.1),
            };
            if replaced {
                removed += 1;
                removed_ids.insert(id);
            } else {
                rows.push((id, s, row));
            }
        }
    }
    let kept_old: BTreeSet<i64> = rows.iter().map(|r| r.0).collect();
    let mut written = 0u64;
    for id in ids {
        if let Some(&(b, row, _)) = changes.upserts.get(id)
            && !kept_old.contains(id)
        {
            rows.push((*id, first_change + b, row));
            written += 1;
            removed_ids.insert(*id);
        }
    }
    rows.sort_unstable_by_key(|r| r.0);
    rows.dedup_by_key(|r| r.0);
    let indices: Vec<(usize, usize)> = rows.iter().map(|&(_, s, r)| (s, r)).collect();
    Ok(Merged {
        schema: schema.clone(),
        sources,
        indices,
        removed,
        written,
        changed: removed_ids.len() as u64,
    })
}

/// Whether two rows (of batches in the table's schema) hold the same record: every column
/// equal but the extraction's own (`_extracted_at`, `_run_id`).
fn same_record(a: &RecordBatch, ra: usize, b: &RecordBatch, rb: usize) -> bool {
    a.schema().fields().iter().enumerate().all(|(c, f)| {
        f.name() == EXTRACTED_AT_COLUMN
            || f.name() == crate::convert::RUN_ID_COLUMN
            || a.column(c).slice(ra, 1).to_data() == b.column(c).slice(rb, 1).to_data()
    })
}

/// `batch` in `schema`: columns by name, nulls for the ones it lacks, the rest dropped; a
/// column of another type is refused.
pub fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
    stream: &str,
) -> Result<RecordBatch, MergeError> {
    let mut columns = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        match batch.column_by_name(field.name()) {
            Some(c) if c.data_type() == field.data_type() => columns.push(c.clone()),
            // The same layout under other field metadata or zone spelling: relabel it.
            Some(c) if same_ignoring_metadata(c.data_type(), field.data_type()) => {
                let data = c
                    .to_data()
                    .into_builder()
                    .data_type(field.data_type().clone())
                    .build()
                    .map_err(arrow_err)?;
                columns.push(arrow_array::make_array(data));
            }
            Some(c) => {
                return Err(MergeError::TypeChanged {
                    stream: stream.to_string(),
                    column: field.name().clone(),
                    found: c.data_type().to_string(),
                    declared: field.data_type().to_string(),
                });
            }
            None => columns.push(new_null_array(field.data_type(), batch.num_rows())),
        }
    }
    RecordBatch::try_new(schema.clone(), columns).map_err(arrow_err)
}

/// Types equal but for field metadata or names inside (lists' item names, nested metadata).
fn same_ignoring_metadata(a: &arrow_schema::DataType, b: &arrow_schema::DataType) -> bool {
    use arrow_schema::DataType as D;
    match (a, b) {
        (D::List(x), D::List(y)) => same_ignoring_metadata(x.data_type(), y.data_type()),
        (D::Struct(x), D::Struct(y)) => {
            x.len() == y.len()
                && x.iter().zip(y.iter()).all(|(f, g)| {
                    f.name() == g.name() && same_ignoring_metadata(f.data_type(), g.data_type())
                })
        }
        (D::Timestamp(u, _), D::Timestamp(v, _)) => u == v,
        _ => a == b,
    }
}

fn int64<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a Int64Array> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
}

fn timestamps<'a>(batch: &'a RecordBatch, name: &str) -> Option<&'a TimestampMicrosecondArray> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
}

fn value(col: Option<&TimestampMicrosecondArray>, row: usize) -> i64 {
    match col {
        Some(c) if c.is_valid(row) => c.value(row),
        _ => i64::MIN,
    }
}

/// The smallest and largest id of a sorted, non-empty merged batch.
pub fn id_range(batch: &RecordBatch) -> Option<(i64, i64)> {
    let ids = int64(batch, "id")?;
    if ids.is_empty() {
        return None;
    }
    Some((ids.value(0), ids.value(ids.len() - 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::StringArray;
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use std::sync::Arc;

    fn schema_ref(schema: Schema) -> SchemaRef {
        Arc::new(schema)
    }

    fn ts() -> DataType {
        DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
    }

    fn table_schema() -> SchemaRef {
        schema_ref(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("updated_at", ts(), true),
            Field::new("name", DataType::Utf8, true),
            Field::new(EXTRACTED_AT_COLUMN, ts(), true),
        ]))
    }

    /// A raw batch: (id, updated_at, name, extracted_at, deleted).
    fn raw(rows: &[(i64, i64, &str, i64, bool)]) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("updated_at", ts(), true),
            Field::new("name", DataType::Utf8, true),
            Field::new(EXTRACTED_AT_COLUMN, ts(), false),
            Field::new(DELETED_COLUMN, DataType::Boolean, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                        .with_timezone("+00:00"),
                ),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.3))
                        .with_timezone("+00:00"),
                ),
                Arc::new(BooleanArray::from_iter(rows.iter().map(|r| Some(r.4)))),
            ],
        )
        .unwrap()
    }

    fn names(b: &RecordBatch) -> Vec<(i64, String)> {
        let ids = int64(b, "id").unwrap();
        let n = b
            .column_by_name("name")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        (0..b.num_rows())
            .map(|i| (ids.value(i), n.value(i).to_string()))
            .collect()
    }

    #[test]
    fn the_latest_version_wins_and_deletes_remove() {
        let old = conform(
            &raw(&[
                (1, 10, "a1", 100, false),
                (2, 10, "b1", 100, false),
                (3, 10, "c1", 100, false),
            ]),
            &table_schema(),
            "t",
        )
        .unwrap();
        let mut ch = Changes::new("t", table_schema());
        // 1 updated; 2 deleted; 4 inserted; 5 inserted twice (the newer wins); 6 inserted and
        // deleted in the same run (the tombstone wins).
        ch.add_raw(&raw(&[
            (1, 20, "a2", 200, false),
            (4, 20, "d1", 200, false),
            (5, 20, "e2", 200, false),
            (5, 15, "e1", 200, false),
            (6, 20, "f1", 200, false),
        ]))
        .unwrap();
        ch.add_raw(&raw(&[(2, 0, "", 200, true), (6, 0, "", 200, true)]))
            .unwrap();
        assert_eq!(ch.ids(), vec![1, 2, 4, 5, 6]);
        let m = merge(&ch, &ch.ids(), &[old]).unwrap();
        assert_eq!(
            names(&m.batch().unwrap()),
            vec![
                (1, "a2".to_string()),
                (3, "c1".to_string()),
                (4, "d1".to_string()),
                (5, "e2".to_string()),
            ]
        );
        assert_eq!((m.removed, m.written), (2, 3));
        assert_eq!(id_range(&m.batch().unwrap()), Some((1, 5)));
    }

    #[test]
    fn a_tombstone_removes_only_what_was_extracted_before_it() {
        let old = conform(&raw(&[(1, 10, "a1", 300, false)]), &table_schema(), "t").unwrap();
        let mut ch = Changes::new("t", table_schema());
        // An older tombstone (a rebuild applying files out of order) leaves the later row.
        ch.add_raw(&raw(&[(1, 0, "", 200, true)])).unwrap();
        let m = merge(&ch, &ch.ids(), std::slice::from_ref(&old)).unwrap();
        assert_eq!(names(&m.batch().unwrap()), vec![(1, "a1".to_string())]);
        let mut ch = Changes::new("t", table_schema());
        ch.add_raw(&raw(&[(1, 0, "", 300, true)])).unwrap();
        let m = merge(&ch, &ch.ids(), &[old]).unwrap();
        assert_eq!(m.num_rows(), 0);
    }

    #[test]
    fn a_reread_of_the_same_content_is_no_change() {
        let old = conform(&raw(&[(1, 10, "a1", 100, false)]), &table_schema(), "t").unwrap();
        let mut ch = Changes::new("t", table_schema());
        ch.add_raw(&raw(&[(1, 10, "a1", 200, false)])).unwrap();
        let m = merge(&ch, &ch.ids(), std::slice::from_ref(&old)).unwrap();
        assert_eq!((m.removed, m.written), (0, 0));
        assert_eq!(m.num_rows(), 1);
    }

    #[test]
    fn an_older_change_does_not_replace_a_newer_row() {
        let old = conform(&raw(&[(1, 50, "new", 300, false)]), &table_schema(), "t").unwrap();
        let mut ch = Changes::new("t", table_schema());
        ch.add_raw(&raw(&[(1, 40, "old", 200, false)])).unwrap();
        let m = merge(&ch, &ch.ids(), &[old]).unwrap();
        assert_eq!(names(&m.batch().unwrap()), vec![(1, "new".to_string())]);
        assert_eq!((m.removed, m.written), (0, 0));
    }

    #[test]
    fn older_files_gain_new_columns_as_nulls_and_a_type_change_is_refused() {
        let narrow = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![7]))],
        )
        .unwrap();
        let c = conform(&narrow, &table_schema(), "t").unwrap();
        assert_eq!(c.num_columns(), 4);
        assert!(c.column(2).is_null(0));
        let wrong = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["7"]))],
        )
        .unwrap();
        let e = conform(&wrong, &table_schema(), "widgets").unwrap_err();
        assert!(e.to_string().contains("rebuild --streams widgets"), "{e}");
    }
}
