//! `current/custom_field_values`: every stream's custom-field values in long format (object
//! type, record id, `name_key`, value type, typed value columns), one Delta table for all.
//!
//! Contract:
//! - The long table is derived from the streams' current tables file by file: the data file
//!   `cfv-<object type>-<file>` holds the long rows of the wide table's data file `<file>`.
//!   [`sync`] makes the long files of an object type match the wide table's active files
//!   exactly (the long files of removed wide files go, those of new ones are written) in one
//!   commit, after every change to the wide table. Its cost follows the wide table's changes,
//!   and it is idempotent: a run killed between the two commits is mended by the next sync
//!   of the stream, which finds the difference and closes it; a long file a killed run wrote
//!   but never committed is overwritten (no version names it).
//! - Rows: one per record and field whose value is not null (see [`super::custom`]), in the
//!   wide file's row order and, per record, by `name_key`. A long file may be written with its
//!   wide file (a copied build, `super::copy`) and handed to [`sync`] to commit, the same rows.

use std::collections::{BTreeMap, BTreeSet};

use super::custom::{self, Plan};
use super::table::{Table, TableError};
use crate::state::ManifestCurrent as Applied;

/// The long file of a wide data file (`/` of a nested path written by another writer kept
/// out of the name).
pub(super) fn long_name(object_type: &str, wide: &str) -> String {
    format!("cfv-{object_type}-{}", wide.replace('/', "_"))
}

/// Brings the long files of `object_type` in `long` in line with `wide`'s active files.
/// `prepared` are long files already uploaded (not committed) for wide files that were just
/// written (see `super::copy`): each is committed as it is instead of derived again from its
/// wide file, or deleted when its wide file is not active (replaced since, by a compaction).
pub async fn sync(
    wide: &Table,
    long: &mut Table,
    object_type: &str,
    plan: &Plan,
    prepared: Vec<deltalake::kernel::Add>,
    run_id: &str,
    generation: u64,
) -> Result<Applied, TableError> {
    let mut out = Applied::default();
    // Each long file's record ids are its wide file's ids: the same range.
    let wanted: BTreeMap<String, (String, (i64, i64))> = wide
        .files()?
        .into_iter()
        .map(|f| {
            (
                long_name(object_type, &f.path),
                (f.path, (f.min_id, f.max_id)),
            )
        })
        .collect();
    let prefix = format!("cfv-{object_type}-");
    let have: BTreeSet<String> = long
        .files()?
        .into_iter()
        .map(|f| f.path)
        .filter(|p| p.starts_with(&prefix))
        .collect();
    let removes: Vec<_> = have
        .iter()
        .filter(|p| !wanted.contains_key(*p))
        .map(|p| long.remove(p))
        .collect();
    let mut adds = Vec::new();
    let mut ready: BTreeMap<String, deltalake::kernel::Add> = BTreeMap::new();
    for add in prepared {
        if wanted.contains_key(&add.path) && !have.contains(&add.path) {
            ready.insert(add.path.clone(), add);
        } else {
            long.discard(&add.path).await;
        }
    }
    // Only the columns the long rows come from are decoded: the wide rows' other columns (the
    // raw JSON among them) were most of the decoding.
    let inputs = plan.long_inputs();
    for (name, (path, range)) in wanted.iter().filter(|(n, _)| !have.contains(*n)) {
        if let Some(add) = ready.remove(name) {
            out.bytes_written += add.size as u64;
            adds.push(add);
            continue;
        }
        // A row group of the wide file at a time: a whole file of wide rows decoded (and its
        // long rows concatenated) was a sync's largest allocation.
        let file = wide.fetch(path).await?;
        let mut rows_read = 0u64;
        let parts = file.row_group_batches(Some(&inputs)).map(|b| {
            let b = b?;
            rows_read += b.num_rows() as u64;
            custom::long_rows(&b, plan, object_type).map_err(|e| e.to_string())
        });
        let add = long
            .write_file(
                &custom::long_schema(),
                parts,
                name.clone(),
                "record_id",
                *range,
            )
            .await?;
        out.rows_read += rows_read;
        out.bytes_written += add.size as u64;
        adds.push(add);
    }
    if removes.is_empty() && adds.is_empty() {
        return Ok(out);
    }
    out.files_removed += removes.len() as u64;
    out.files_added += adds.len() as u64;
    long.commit(removes, adds, run_id, generation).await?;
    out.commits += 1;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A destination holding a wide table `widgets` with one committed file (ids 1 and 2) and an
    /// empty long table; with that file's long name.
    async fn widgets_and_long() -> (
        tempfile::TempDir,
        crate::storage::Destination,
        Table,
        Table,
        String,
    ) {
        use arrow_array::{Int64Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let mut wide = Table::open(&dest, "widgets", &schema).await.unwrap();
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1, 2]))])
                .unwrap();
        let add = wide.write(&batch, 1, 2).await.unwrap();
        let name = long_name("widget", &add.path);
        wide.commit(Vec::new(), vec![add], "run", 1).await.unwrap();
        let long = Table::open(
            &dest,
            crate::registry::CUSTOM_FIELD_VALUES,
            &custom::long_schema(),
        )
        .await
        .unwrap();
        (dir, dest, wide, long, name)
    }

    /// A run killed after writing a long file and before committing it left the object
    /// behind: the next sync replaces it instead of failing on it for ever (found by the
    /// `kill -9` sweep of tests/soak.rs).
    #[tokio::test]
    async fn a_crashed_runs_uncommitted_long_file_is_replaced() {
        use object_store::ObjectStoreExt;
        let (_dir, dest, wide, mut long, name) = widgets_and_long().await;
        let leftover = dest
            .prefix
            .clone()
            .join(crate::current::table::CURRENT_DIR)
            .join(crate::registry::CUSTOM_FIELD_VALUES)
            .join(name.as_str());
        dest.store
            .put(&leftover, b"torn".to_vec().into())
            .await
            .unwrap();
        let out = sync(
            &wide,
            &mut long,
            "widget",
            &Plan::default(),
            Vec::new(),
            "run",
            2,
        )
        .await
        .unwrap();
        assert_eq!((out.files_added, out.commits), (1, 1));
        assert_eq!(long.files().unwrap()[0].path, name);
        // The replaced object is a readable data file.
        long.read(&name).await.unwrap();
    }

    /// A long file prepared with its wide file (by a copied build) is committed as it is, not
    /// derived again; one whose wide file is not active is deleted.
    #[tokio::test]
    async fn prepared_long_files_are_committed_or_deleted() {
        use arrow_array::{Int64Array, RecordBatch, StringArray};
        use std::sync::Arc;
        let (dir, dest, wide, mut long, name) = widgets_and_long().await;
        // A long row the wide file cannot give (it has no custom-field column): proof that the
        // prepared file is the one committed.
        let long_schema = custom::long_schema();
        let columns = long_schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "record_id" => Arc::new(Int64Array::from(vec![1])) as arrow_array::ArrayRef,
                "object_type" | "name_key" | "value_type" => Arc::new(StringArray::from(vec!["x"])),
                _ => arrow_array::new_null_array(f.data_type(), 1),
            })
            .collect();
        let rows = RecordBatch::try_new(long_schema.clone(), columns).unwrap();
        let prepare = async |name: String| {
            let mut file = super::super::table::file_encoder(&long_schema, "record_id").unwrap();
            file.write(&rows, None).unwrap();
            let key = "record_id";
            super::super::table::put_uncommitted(
                &dest,
                crate::registry::CUSTOM_FIELD_VALUES,
                name,
                file,
                key,
                (1, 1),
            )
            .await
            .unwrap()
        };
        let stale = long_name("widget", "part-gone.parquet");
        let prepared = vec![prepare(name.clone()).await, prepare(stale.clone()).await];
        let out = sync(
            &wide,
            &mut long,
            "widget",
            &Plan::default(),
            prepared,
            "run",
            2,
        )
        .await
        .unwrap();
        assert_eq!((out.files_added, out.rows_read, out.commits), (1, 0, 1));
        assert_eq!(long.files().unwrap()[0].path, name);
        let read = long.read(&name).await.unwrap();
        assert_eq!(read.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        let on_disk = dir
            .path()
            .join(crate::current::table::CURRENT_DIR)
            .join(crate::registry::CUSTOM_FIELD_VALUES);
        assert!(on_disk.join(&name).exists());
        assert!(!on_disk.join(&stale).exists());
    }

    #[test]
    fn long_names_are_flat_and_keyed_by_object_type() {
        assert_eq!(long_name("job", "part-1.parquet"), "cfv-job-part-1.parquet");
        assert_eq!(
            long_name("job", "x=1/part-2.parquet"),
            "cfv-job-x=1_part-2.parquet"
        );
    }
}
