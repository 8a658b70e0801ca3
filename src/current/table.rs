//! One stream's Delta table on the destination, through delta-rs's transaction API (no
//! DataFusion): open or create it, list its files with their id ranges, write data files, and
//! commit removes and adds in one conditional-put commit.
//!
//! Contract:
//! - The table lives at `<prefix>/current/<stream>/` on the destination's own object store (the
//!   same credentials and endpoint as the raw files); commits go through delta-rs's default log
//!   store, which creates `_delta_log/<version>.json` with a conditional put, so an outside writer
//!   committing the same version makes ours fail and retry against its commit, never clobber it.
//! - Data files are `part-<uuid>.parquet` beside `_delta_log/`, zstd-compressed, each holding a
//!   contiguous id range in row groups with disjoint id ranges (rows in any order within one:
//!   merges sort them); their `add` actions carry `numRecords` and the id's min/max, which
//!   [`super::layout`] plans with.
//! - Every commit records the run id and the state generation it belongs to
//!   (`greenhouse.run_id`, `greenhouse.generation` in `commitInfo`, and an application
//!   transaction `greenhouse-extract/<stream>`), so a replay after a crash is recognisable; and
//!   a commit id of its own (`greenhouse.commit_id`), so that a commit the store wrote but whose
//!   answer was lost (retried, then found to exist) is recognised as this writer's, not failed
//!   as a conflict with itself.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{Field, Schema, SchemaRef};
use deltalake::DeltaTable;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, Add, Remove, StructField, Transaction};
use deltalake::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake::protocol::{DeltaOperation, SaveMode};
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;
use url::Url;

use super::layout::FileRange;
use crate::convert::{
    DELETED_AT_COLUMN, DELETED_BY_COLUMN, DELETED_COLUMN, MERGED_INTO_COLUMN, plain_columns,
};
use crate::storage::Destination;

/// `commitInfo` key naming each commit of this writer (a UUID), by which a commit whose answer
/// was lost is recognised in the log.
pub const COMMIT_ID_KEY: &str = "greenhouse.commit_id";

/// Latest commits searched for a commit whose answer was lost: more than the writers that can
/// commit to one table between its attempt and the check (the streams sharing the long table).
const LANDED_LOOKBACK: usize = 64;

/// Where current tables live, relative to the destination prefix.
pub const CURRENT_DIR: &str = "current";

/// A failure of the table layer, with the table's location.
#[derive(Debug, thiserror::Error)]
#[error("current table {location}: {detail}")]
pub struct TableError {
    pub location: String,
    pub detail: String,
}

/// One stream's current table.
pub struct Table {
    pub location: String,
    /// The table's directory on the destination's store (for data files).
    store: Arc<dyn ObjectStore>,
    log_store: LogStoreRef,
    table: DeltaTable,
    /// The schema [`Table::open`] evolved the table to.
    opened_for: Option<SchemaRef>,
    /// The wider schema [`Table::evolve_to`] last evolved the table to (custom-field columns).
    evolved_to: Option<SchemaRef>,
}

impl Table {
    fn err(&self, detail: impl std::fmt::Display) -> TableError {
        TableError {
            location: self.location.clone(),
            detail: detail.to_string(),
        }
    }

    /// Opens the table of `stream`, creating it (empty, with `schema`) when there is none.
    pub async fn open(
        dest: &Destination,
        stream: &str,
        schema: &SchemaRef,
    ) -> Result<Table, TableError> {
        let (mut t, exists) = Self::connect(dest, stream).await?;
        if exists {
            t.evolve(stream, schema).await?;
        } else {
            let fields = delta_fields(schema).map_err(|e| t.err(e))?;
            t.table = t
                .table
                .clone()
                .create()
                .with_table_name(stream)
                .with_columns(fields)
                .with_save_mode(SaveMode::Ignore)
                .await
                .map_err(|e| t.err(format!("cannot create it: {e}")))?;
        }
        t.opened_for = Some(schema.clone());
        Ok(t)
    }

    /// Schema evolution: a declared field the table lacks becomes a column (its older files
    /// read it as null); a field whose type changed is refused with the way forward.
    async fn evolve(&mut self, stream: &str, schema: &SchemaRef) -> Result<(), TableError> {
        let wanted = delta_fields(schema).map_err(|e| self.err(e))?;
        let current = self.table.snapshot().map_err(|e| self.err(e))?.schema();
        let mut missing = Vec::new();
        for f in wanted {
            match current.field(f.name()) {
                Some(have) if have.data_type() != f.data_type() => {
                    return Err(self.err(format!(
                        "column `{}` is {} in the table but {} in the declaration; a type change \
                         cannot be merged: run `greenhouse-extract rebuild --streams {stream}` to \
                         build the table again from the raw history with the new types",
                        f.name(),
                        have.data_type(),
                        f.data_type()
                    )));
                }
                Some(_) => {}
                None => missing.push(f),
            }
        }
        if !missing.is_empty() {
            self.table = self
                .table
                .clone()
                .add_columns()
                .with_fields(missing)
                .await
                .map_err(|e| self.err(format!("cannot add the new columns: {e}")))?;
        }
        Ok(())
    }

    /// Evolves an open table to `schema` (see [`Table::open`]) unless it was opened for it.
    pub async fn evolve_to(&mut self, schema: &SchemaRef) -> Result<(), TableError> {
        if self.evolved_to.as_ref() == Some(schema) {
            return Ok(());
        }
        let stream = self.stream_name().to_string();
        self.evolve(&stream, schema).await?;
        self.evolved_to = Some(schema.clone());
        Ok(())
    }

    /// The table's columns as Arrow fields carrying only their names and field metadata (the
    /// types stay with Delta): what [`super::custom::Plan::from_schema`] reads.
    pub fn column_metadata(&self) -> Result<arrow_schema::Schema, TableError> {
        use deltalake::kernel::MetadataValue;
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        let fields: Vec<arrow_schema::Field> = snapshot
            .schema()
            .fields()
            .map(|f| {
                let meta: HashMap<String, String> = f
                    .metadata()
                    .iter()
                    .filter_map(|(k, v)| match v {
                        MetadataValue::String(s) => Some((k.clone(), s.clone())),
                        _ => None,
                    })
                    .collect();
                arrow_schema::Field::new(f.name(), arrow_schema::DataType::Null, true)
                    .with_metadata(meta)
            })
            .collect();
        Ok(arrow_schema::Schema::new(fields))
    }

    /// Opens the table of `stream` if there is one.
    pub async fn existing(dest: &Destination, stream: &str) -> Result<Option<Table>, TableError> {
        let (t, exists) = Self::connect(dest, stream).await?;
        Ok(exists.then_some(t))
    }

    async fn connect(dest: &Destination, stream: &str) -> Result<(Table, bool), TableError> {
        let (location, store) = table_dir(dest, stream);
        let err = |detail: String| TableError {
            location: location.clone(),
            detail,
        };
        let url = table_url(&location).map_err(err)?;
        // delta-rs reads through a store whose root is the URL's root: the bucket's for a cloud
        // store (the destination's own), the filesystem's for a local folder (whose own store
        // is sandboxed to the folder).
        let root: Arc<dyn ObjectStore> = match dest.kind {
            crate::storage::Kind::Local => Arc::new(object_store::local::LocalFileSystem::new()),
            _ => dest.store.clone(),
        };
        let log_store = default_logstore(store.clone(), root, &url, &StorageConfig::default());
        let mut table = DeltaTable::new(log_store.clone());
        // A table is there once its log holds a commit (a folder alone is none).
        let exists = table
            .verify_deltatable_existence()
            .await
            .map_err(|e| err(format!("cannot read its log: {e}")))?;
        if exists {
            table
                .load()
                .await
                .map_err(|e| err(format!("cannot read its log: {e}")))?;
        }
        Ok((
            Table {
                location,
                store,
                log_store,
                table,
                opened_for: None,
                evolved_to: None,
            },
            exists,
        ))
    }

    /// Whether the table was opened for `schema` (the cached table of a run: the declaration's
    /// schema does not change mid-run, a column policy's may differ between streams only).
    pub fn has_schema(&self, schema: &SchemaRef) -> bool {
        self.opened_for.as_ref() == Some(schema)
    }

    /// The table's columns as its log declares them now (schema evolution, and columns added
    /// by any writer, included).
    pub fn arrow_schema(&self) -> Result<SchemaRef, TableError> {
        use deltalake::kernel::engine::arrow_conversion::TryIntoArrow;
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        let schema: arrow_schema::Schema = snapshot
            .schema()
            .as_ref()
            .try_into_arrow()
            .map_err(|e| self.err(format!("its schema has no Arrow equivalent: {e}")))?;
        Ok(Arc::new(schema))
    }

    /// Brings the table up to date with its log (an outside writer may have committed).
    pub async fn refresh(&mut self) -> Result<(), TableError> {
        self.table
            .update_state()
            .await
            .map_err(|e| self.err(format!("cannot read its log: {e}")))
    }

    /// The table's version (0 right after its creation).
    pub fn version(&self) -> i64 {
        self.table.version().map_or(-1, |v| v as i64)
    }

    /// The active data files with their id ranges (a file without usable stats gets the widest
    /// range, so that every change touches it: correct, only slower).
    pub fn files(&self) -> Result<Vec<FileRange>, TableError> {
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for f in snapshot.log_data().iter() {
            let stats: Option<serde_json::Value> =
                f.stats().and_then(|s| serde_json::from_str(&s).ok());
            let bound = |key: &str| stats.as_ref().and_then(|s| s[key]["id"].as_i64());
            out.push(FileRange {
                path: f.path().to_string(),
                min_id: bound("minValues").unwrap_or(i64::MIN),
                max_id: bound("maxValues").unwrap_or(i64::MAX),
                rows: f.num_records().unwrap_or(0) as u64,
                size: f.size().max(0) as u64,
            });
        }
        Ok(out)
    }

    /// Reads one data file whole (a file holds at most `target_rows` rows).
    pub async fn read(&self, path: &str) -> Result<Vec<RecordBatch>, TableError> {
        self.fetch(path).await?.decode(None)
    }

    /// Fetches one data file, to decode all or some of its row groups.
    pub async fn fetch(&self, path: &str) -> Result<Fetched, TableError> {
        let key = Path::parse(path).map_err(|e| self.err(e))?;
        let err = |e: &dyn std::fmt::Display| self.err(format!("cannot read {path}: {e}"));
        let bytes = self
            .store
            .get(&key)
            .await
            .map_err(|e| err(&e))?
            .bytes()
            .await
            .map_err(|e| err(&e))?;
        // Optional: files written before (or by another writer) may have no page index.
        let options = parquet::arrow::arrow_reader::ArrowReaderOptions::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional);
        let meta = ArrowReaderMetadata::load(&bytes, options).map_err(|e| err(&e))?;
        Ok(Fetched {
            location: format!("{}/{path}", self.location),
            bytes,
            meta,
        })
    }

    /// Writes `batch` (sorted by id) as a new data file; returns its `add` action.
    pub async fn write(
        &self,
        batch: &RecordBatch,
        min_id: i64,
        max_id: i64,
    ) -> Result<Add, TableError> {
        self.write_parts(&batch.schema(), [Ok(batch.clone())], min_id, max_id)
            .await
    }

    /// Writes the batches `parts` (in `schema`, sorted by id across them) as one new data file;
    /// returns its `add` action. Each part is encoded and dropped before the next is taken, so
    /// a file built from a lazy iterator never holds more than one part's rows uncompressed.
    pub async fn write_parts(
        &self,
        schema: &SchemaRef,
        parts: impl IntoIterator<Item = Result<RecordBatch, String>>,
        min_id: i64,
        max_id: i64,
    ) -> Result<Add, TableError> {
        let path = format!("part-{}.parquet", uuid::Uuid::now_v7());
        let range = (min_id, max_id);
        self.write_file_parts(schema, parts, path, "id", range, PutMode::Create, true)
            .await
    }

    /// Writes the batches `parts` (in `schema`, each encoded and dropped before the next is
    /// taken) as the data file `path`, its `add` action carrying `min_id` and `max_id` as the
    /// range of `key` (a column of the parts). `path` is a name derived from what the file holds
    /// (the long files of [`super::values`]), written only when the table holds no file of that
    /// name: an object already there is the leftover of a run killed between writing it and
    /// committing it, which no version names, so it is replaced (refusing it would fail every
    /// later run on that file).
    pub async fn write_file(
        &self,
        schema: &SchemaRef,
        parts: impl IntoIterator<Item = Result<RecordBatch, String>>,
        path: String,
        key: &str,
        range: (i64, i64),
    ) -> Result<Add, TableError> {
        // The long files are replaced whole, never checked row by row: large pages.
        self.write_file_parts(schema, parts, path, key, range, PutMode::Overwrite, false)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_file_parts(
        &self,
        schema: &SchemaRef,
        parts: impl IntoIterator<Item = Result<RecordBatch, String>>,
        path: String,
        key: &str,
        (min_id, max_id): (i64, i64),
        mode: PutMode,
        row_checked: bool,
    ) -> Result<Add, TableError> {
        let mut file = self.encoder_keyed(schema, key, row_checked)?;
        for part in parts {
            let part = part.map_err(|e| self.err(e))?;
            file.write(&part, None).map_err(|e| self.err(e))?;
        }
        file.range = Some((min_id, max_id));
        self.upload(file, path, key, mode).await
    }

    /// A new data file in `schema`, encoded part by part ([`Encoder`]) and uploaded by
    /// [`Table::finish`].
    pub fn encoder(&self, schema: &SchemaRef) -> Result<Encoder, TableError> {
        self.encoder_keyed(schema, "id", true)
    }

    /// [`Table::encoder`] for a table whose key column is `key`; `row_checked` for files whose
    /// rows merges check a few at a time.
    fn encoder_keyed(
        &self,
        schema: &SchemaRef,
        key: &str,
        row_checked: bool,
    ) -> Result<Encoder, TableError> {
        let writer = ArrowWriter::try_new(
            Vec::new(),
            schema.clone(),
            Some(Self::properties(schema, key, row_checked)),
        )
        .map_err(|e| self.err(e))?;
        Ok(Encoder {
            writer,
            rows: 0,
            range: None,
        })
    }

    /// A new data file in `schema` written row group by row group through Parquet's column
    /// writers, for a file that splices in column chunks encoded elsewhere
    /// ([`super::copy`]); the same properties as [`Table::encoder`]'s. Uploaded by
    /// [`Table::finish_written`].
    pub fn column_writer(
        &self,
        schema: &SchemaRef,
    ) -> Result<
        (
            parquet::file::writer::SerializedFileWriter<Vec<u8>>,
            parquet::arrow::arrow_writer::ArrowRowGroupWriterFactory,
        ),
        TableError,
    > {
        ArrowWriter::try_new(
            Vec::new(),
            schema.clone(),
            Some(Self::properties(schema, "id", true)),
        )
        .and_then(ArrowWriter::into_serialized_writer)
        .map_err(|e| self.err(e))
    }

    /// Uploads a file written with [`Table::column_writer`] as `part-<uuid>.parquet`, holding
    /// `rows` rows whose ids span `range`.
    pub async fn finish_written(
        &self,
        buf: Vec<u8>,
        rows: usize,
        range: (i64, i64),
    ) -> Result<Add, TableError> {
        let path = format!("part-{}.parquet", uuid::Uuid::now_v7());
        self.upload_bytes(buf, rows, range, path, "id", PutMode::Create)
            .await
    }

    fn properties(schema: &SchemaRef, key: &str, row_checked: bool) -> WriterProperties {
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::default()))
            .set_max_row_group_row_count(Some(super::layout::ROW_GROUP_ROWS));
        if row_checked {
            // Small pages with an offset index: a check of a few rows decompresses only the
            // pages that hold them. Each page is compressed on its own, which costs.
            props = props.set_data_page_row_count_limit(super::layout::PAGE_ROWS);
        }
        for name in plain_columns(schema, &[key]) {
            props = props.set_column_dictionary_enabled(ColumnPath::from(name), false);
        }
        props.build()
    }

    /// Uploads an encoded file as `part-<uuid>.parquet`; its `add` action carries the id range
    /// of the rows written.
    pub async fn finish(&self, file: Encoder) -> Result<Add, TableError> {
        let path = format!("part-{}.parquet", uuid::Uuid::now_v7());
        self.upload(file, path, "id", PutMode::Create).await
    }

    async fn upload(
        &self,
        file: Encoder,
        path: String,
        key: &str,
        mode: PutMode,
    ) -> Result<Add, TableError> {
        let rows = file.rows;
        let range = file.range.unwrap_or((0, 0));
        let buf = file.writer.into_inner().map_err(|e| self.err(e))?;
        self.upload_bytes(buf, rows, range, path, key, mode).await
    }

    async fn upload_bytes(
        &self,
        buf: Vec<u8>,
        rows: usize,
        range: (i64, i64),
        path: String,
        key: &str,
        mode: PutMode,
    ) -> Result<Add, TableError> {
        let file = (buf, rows, range);
        upload_to(self.store.as_ref(), &self.location, file, path, key, mode).await
    }

    /// Deletes a data file that was written but never committed (no version names it), so
    /// that an abandoned build leaves nothing behind; a failure only leaves an orphan, which
    /// vacuum removes.
    pub async fn discard(&self, path: &str) {
        let _ = self.store.delete(&Path::from(path)).await;
    }

    /// The `remove` action of an active file.
    pub fn remove(&self, path: &str) -> Remove {
        Remove {
            path: path.to_string(),
            data_change: true,
            deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
            extended_file_metadata: Some(false),
            partition_values: None,
            size: None,
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
        }
    }

    /// Commits `removes` and `adds` as one version, recording the run and generation.
    pub async fn commit(
        &mut self,
        removes: Vec<Remove>,
        adds: Vec<Add>,
        run_id: &str,
        generation: u64,
    ) -> Result<(), TableError> {
        if removes.is_empty() && adds.is_empty() {
            return Ok(());
        }
        let actions: Vec<Action> = removes
            .into_iter()
            .map(Action::Remove)
            .chain(adds.into_iter().map(Action::Add))
            .collect();
        // A name for this commit alone: see the error path below.
        let commit_id = uuid::Uuid::now_v7().to_string();
        let props = CommitProperties::default()
            .with_metadata([
                ("greenhouse.run_id".to_string(), serde_json::json!(run_id)),
                (
                    "greenhouse.generation".to_string(),
                    serde_json::json!(generation),
                ),
                (COMMIT_ID_KEY.to_string(), serde_json::json!(commit_id)),
            ])
            .with_application_transaction(Transaction::new(
                format!("greenhouse-extract/{}", self.stream_name()),
                generation as i64,
            ));
        let snapshot = self.table.snapshot().map_err(|e| self.err(e))?;
        let operation = DeltaOperation::Merge {
            predicate: None,
            merge_predicate: Some("target.id = source.id".to_string()),
            matched_predicates: Vec::new(),
            not_matched_predicates: Vec::new(),
            not_matched_by_source_predicates: Vec::new(),
        };
        let done = CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), self.log_store.clone(), operation)
            .await;
        match done {
            Ok(done) => {
                // The commit's own snapshot is the table after it (no second read of the log).
                self.table.state = Some(done.snapshot);
                Ok(())
            }
            // A commit whose answer was lost (a store outage cut the connection after the
            // store wrote it) is retried by the store client and then found to exist: delta-rs
            // takes that version for a concurrent writer's, with which a merge conflicts. It is
            // ours when the log holds this commit's id: the table then is as committed.
            Err(e) => match self.landed(&commit_id).await {
                Ok(true) => Ok(()),
                _ => Err(self.err(format!("commit failed: {e}"))),
            },
        }
    }

    /// Whether one of the table's latest commits is the one named `commit_id` (the table is
    /// brought up to date with its log on the way).
    async fn landed(&mut self, commit_id: &str) -> Result<bool, TableError> {
        use futures::TryStreamExt;
        self.refresh().await?;
        let recent: Vec<_> = self
            .table
            .history(Some(LANDED_LOOKBACK))
            .try_collect()
            .await
            .map_err(|e| self.err(format!("cannot read its history: {e}")))?;
        Ok(recent
            .iter()
            .any(|c| c.info.get(COMMIT_ID_KEY).and_then(|v| v.as_str()) == Some(commit_id)))
    }

    /// Deletes the data files no version within `retention` needs (`full`: also files no
    /// version ever named, e.g. a crashed merge's); returns how many.
    pub async fn vacuum(
        &mut self,
        retention: std::time::Duration,
        full: bool,
    ) -> Result<u64, TableError> {
        use deltalake::operations::vacuum::VacuumMode;
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let (table, metrics) = self
            .table
            .clone()
            .vacuum()
            .with_retention_period(retention)
            .with_enforce_retention_duration(false)
            .with_mode(if full {
                VacuumMode::Full
            } else {
                VacuumMode::Lite
            })
            .await
            .map_err(|e| self.err(format!("vacuum failed: {e}")))?;
        self.table = table;
        Ok(metrics.files_deleted.len() as u64)
    }

    pub fn stream_name(&self) -> &str {
        self.location.rsplit('/').next().unwrap_or_default()
    }
}

/// The table schema of a stream whose raw files have `raw` (its schema after column policies).
pub fn table_schema(raw: &SchemaRef) -> SchemaRef {
    let tombstone = [
        DELETED_COLUMN,
        DELETED_AT_COLUMN,
        DELETED_BY_COLUMN,
        MERGED_INTO_COLUMN,
    ];
    let fields: Vec<Field> = raw
        .fields()
        .iter()
        .filter(|f| !tombstone.contains(&f.name().as_str()))
        .map(|f| delta_field(f.as_ref()))
        .collect();
    Arc::new(Schema::new(fields))
}

/// A field as the table holds it: nullable, and timestamps in the zone Delta names `UTC`
/// (the raw files spell it `+00:00`; the values are the same instants).
fn delta_field(f: &Field) -> Field {
    f.clone()
        .with_data_type(delta_type(f.data_type()))
        .with_nullable(true)
}

fn delta_type(t: &arrow_schema::DataType) -> arrow_schema::DataType {
    use arrow_schema::DataType as D;
    match t {
        D::Timestamp(unit, Some(_)) => D::Timestamp(*unit, Some("UTC".into())),
        D::List(item) => D::List(Arc::new(delta_field(item))),
        D::Struct(children) => D::Struct(children.iter().map(|c| delta_field(c)).collect()),
        other => other.clone(),
    }
}

/// The table of `stream` on `dest`: its location (for messages and delta-rs) and its directory
/// as a store of its own.
fn table_dir(dest: &Destination, stream: &str) -> (String, Arc<dyn ObjectStore>) {
    let location = format!("{}/{CURRENT_DIR}/{stream}", dest.url.trim_end_matches('/'));
    let dir = dest.prefix.clone().join(CURRENT_DIR).join(stream);
    (
        location,
        Arc::new(PrefixStore::new(dest.store.clone(), dir)),
    )
}

/// Puts a data file's bytes (`buf`, holding `rows` rows whose `key` spans `range`) at `path`
/// in `store`, the directory of the table at `location`, and returns its `add` action.
async fn upload_to(
    store: &dyn ObjectStore,
    location: &str,
    (buf, rows, (min_id, max_id)): (Vec<u8>, usize, (i64, i64)),
    path: String,
    key: &str,
    mode: PutMode,
) -> Result<Add, TableError> {
    let size = buf.len() as i64;
    store
        .put_opts(
            &Path::from(path.as_str()),
            PutPayload::from(buf),
            PutOptions {
                mode,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| TableError {
            location: location.to_string(),
            detail: format!("cannot write {path}: {e}"),
        })?;
    let stats = match rows {
        0 => serde_json::json!({ "numRecords": 0 }),
        rows => serde_json::json!({
            "numRecords": rows,
            "minValues": { key: min_id },
            "maxValues": { key: max_id },
            "nullCount": { key: 0 },
        }),
    };
    Ok(Add {
        path,
        partition_values: HashMap::new(),
        size,
        modification_time: chrono::Utc::now().timestamp_millis(),
        data_change: true,
        stats: Some(stats.to_string()),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
        clustering_provider: None,
    })
}

/// A new data file in `schema` for a table whose key column is `key`, replaced whole and never
/// checked row by row (large pages), e.g. a long file of [`super::values`]; uploaded with
/// [`put_uncommitted`].
pub fn file_encoder(schema: &SchemaRef, key: &str) -> Result<Encoder, String> {
    let props = Table::properties(schema, key, false);
    let writer =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props)).map_err(|e| e.to_string())?;
    Ok(Encoder {
        writer,
        rows: 0,
        range: None,
    })
}

/// Uploads `file` as the data file `name` of `stream`'s table on `dest` (replacing an object
/// of that name, which no version names: see [`Table::write_file`]) without committing it,
/// its `add` action carrying `range` as the range of `key`: a file prepared for a later
/// commit by whoever holds the table.
pub async fn put_uncommitted(
    dest: &Destination,
    stream: &str,
    name: String,
    file: Encoder,
    key: &str,
    range: (i64, i64),
) -> Result<Add, TableError> {
    let (location, store) = table_dir(dest, stream);
    let rows = file.rows;
    let buf = file.writer.into_inner().map_err(|e| TableError {
        location: location.clone(),
        detail: e.to_string(),
    })?;
    let file = (buf, rows, range);
    upload_to(
        store.as_ref(),
        &location,
        file,
        name,
        key,
        PutMode::Overwrite,
    )
    .await
}

/// Deletes a file [`put_uncommitted`] wrote for a commit that will not happen (as
/// [`Table::discard`]).
pub async fn discard_uncommitted(dest: &Destination, stream: &str, name: &str) {
    let (_, store) = table_dir(dest, stream);
    let _ = store.delete(&Path::from(name)).await;
}

/// A data file being encoded: each part is encoded as it is written, so only the compressed
/// bytes and at most one row group in progress are held until the file is uploaded.
pub struct Encoder {
    writer: ArrowWriter<Vec<u8>>,
    rows: usize,
    /// The smallest and largest id written.
    range: Option<(i64, i64)>,
}

impl Encoder {
    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Encodes `part` (sorted by id; its ids above or below every row written before, so that
    /// the file's row groups have disjoint ranges); `ids` is its lowest and highest id, which
    /// the file's `add` statistics record.
    pub fn write(&mut self, part: &RecordBatch, ids: Option<(i64, i64)>) -> Result<(), String> {
        self.writer.write(part).map_err(|e| e.to_string())?;
        self.rows += part.num_rows();
        if let Some((lo, hi)) = ids {
            self.range = Some(match self.range {
                Some((min, max)) => (min.min(lo), max.max(hi)),
                None => (lo, hi),
            });
        }
        Ok(())
    }
}

/// A data file's bytes and Parquet metadata: its row groups decode separately, so that a
/// change is checked against only the row groups that can hold its ids.
pub struct Fetched {
    location: String,
    bytes: bytes::Bytes,
    meta: ArrowReaderMetadata,
}

impl Fetched {
    fn err(&self, e: impl std::fmt::Display) -> TableError {
        TableError {
            location: self.location.clone(),
            detail: format!("cannot decode it: {e}"),
        }
    }

    /// The leaf column index of `id`, if the file has one.
    fn id_column(&self) -> Option<usize> {
        self.meta
            .metadata()
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .position(|c| c.path().string() == "id")
    }

    /// The file's row groups.
    pub fn row_groups(&self) -> usize {
        self.meta.metadata().num_row_groups()
    }

    /// Each row group's smallest and largest id and its rows; `None` when a row group has no
    /// usable `id` statistics.
    pub fn row_group_ranges(&self) -> Option<Vec<(i64, i64, usize)>> {
        let meta = self.meta.metadata();
        let column = self.id_column()?;
        (0..meta.num_row_groups())
            .map(|g| {
                let rg = meta.row_group(g);
                match rg.column(column).statistics() {
                    Some(Statistics::Int64(s)) => {
                        Some((*s.min_opt()?, *s.max_opt()?, rg.num_rows() as usize))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    /// The row groups whose `id` statistics hold one of `ids` (sorted); every row group when
    /// the file has no usable statistics.
    pub fn row_groups_holding(&self, ids: &[i64]) -> Vec<usize> {
        let meta = self.meta.metadata();
        let column = self.id_column();
        (0..meta.num_row_groups())
            .filter(|&g| {
                let bounds = column.and_then(|c| match meta.row_group(g).column(c).statistics() {
                    Some(Statistics::Int64(s)) => Some((*s.min_opt()?, *s.max_opt()?)),
                    _ => None,
                });
                match bounds {
                    Some((lo, hi)) => {
                        let i = ids.partition_point(|&id| id < lo);
                        i < ids.len() && ids[i] <= hi
                    }
                    None => true,
                }
            })
            .collect()
    }

    /// Decodes the rows of `groups` whose id is one of `ids` (sorted): the id column is
    /// decoded first, then every column of those rows only.
    pub fn decode_ids(
        &self,
        groups: Vec<usize>,
        ids: &[i64],
    ) -> Result<Vec<RecordBatch>, TableError> {
        if groups.is_empty() || ids.is_empty() {
            return Ok(Vec::new());
        }
        let Some(only_ids) = self.id_reader(Some(groups.clone()))? else {
            return self.decode(Some(groups));
        };
        let mut selectors: Vec<RowSelector> = Vec::new();
        let mut push = |select: bool, n: usize| match selectors.last_mut() {
            Some(last) if last.skip != select => last.row_count += n,
            _ => selectors.push(if select {
                RowSelector::select(n)
            } else {
                RowSelector::skip(n)
            }),
        };
        for batch in only_ids {
            let batch = batch.map_err(|e| self.err(e))?;
            let Some(col) = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
            else {
                return self.decode(Some(groups));
            };
            for i in 0..col.len() {
                let wanted = col.is_valid(i) && ids.binary_search(&col.value(i)).is_ok();
                push(wanted, 1);
            }
        }
        if !selectors.iter().any(|s| !s.skip) {
            return Ok(Vec::new());
        }
        ParquetRecordBatchReaderBuilder::new_with_metadata(self.bytes.clone(), self.meta.clone())
            .with_row_groups(groups)
            .with_row_selection(RowSelection::from(selectors))
            .build()
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// Every non-null id of the file, decoding the `id` column only (`None`: the file has no
    /// Int64 `id` column).
    pub fn ids(&self) -> Result<Option<Vec<i64>>, TableError> {
        let Some(reader) = self.id_reader(None)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| self.err(e))?;
            let Some(col) = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
            else {
                return Ok(None);
            };
            out.extend(col.iter().flatten());
        }
        Ok(Some(out))
    }

    /// A reader of the `id` column alone, over `groups` (all when `None`); `None` when the file
    /// has no `id` column.
    fn id_reader(
        &self,
        groups: Option<Vec<usize>>,
    ) -> Result<Option<parquet::arrow::arrow_reader::ParquetRecordBatchReader>, TableError> {
        let Some(id_leaf) = self.id_column() else {
            return Ok(None);
        };
        let descr = self.meta.metadata().file_metadata().schema_descr_ptr();
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.bytes.clone(),
            self.meta.clone(),
        )
        .with_projection(ProjectionMask::leaves(&descr, [id_leaf]));
        if let Some(groups) = groups {
            builder = builder.with_row_groups(groups);
        }
        builder.build().map(Some).map_err(|e| self.err(e))
    }

    /// Every row of the file, decoded one row group at a time as the iterator is taken (the
    /// file's bytes are held, its rows never all at once); errors as text, for
    /// [`Table::write_parts`] and [`Table::write_file`].
    /// `columns`: only the top-level columns of those names (the others are not decompressed);
    /// `None`: every column.
    pub fn row_group_batches<'s>(
        &'s self,
        columns: Option<&'s BTreeSet<&str>>,
    ) -> impl Iterator<Item = Result<RecordBatch, String>> + 's {
        (0..self.row_groups()).flat_map(move |g| {
            match self.decode_columns(Some(vec![g]), columns) {
                Ok(batches) => batches.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e.to_string())],
            }
        })
    }

    /// Decodes `groups` (all when `None`).
    pub fn decode(&self, groups: Option<Vec<usize>>) -> Result<Vec<RecordBatch>, TableError> {
        self.decode_columns(groups, None)
    }

    /// Decodes `groups` (all when `None`), only `columns` when given.
    fn decode_columns(
        &self,
        groups: Option<Vec<usize>>,
        columns: Option<&BTreeSet<&str>>,
    ) -> Result<Vec<RecordBatch>, TableError> {
        let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(
            self.bytes.clone(),
            self.meta.clone(),
        );
        if let Some(columns) = columns {
            let descr = self.meta.metadata().file_metadata().schema_descr_ptr();
            let roots = descr
                .root_schema()
                .get_fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| columns.contains(f.name()))
                .map(|(i, _)| i)
                .collect::<Vec<_>>();
            builder = builder.with_projection(ProjectionMask::roots(&descr, roots));
        }
        if let Some(groups) = groups {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            builder = builder.with_row_groups(groups);
        }
        builder
            .build()
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }
}

/// The table's URL: the destination URL with `/current/<stream>`; a local folder becomes a
/// `file://` URL.
fn table_url(location: &str) -> Result<Url, String> {
    if location.contains("://") {
        Url::parse(location).map_err(|e| format!("not a URL ({e})"))
    } else {
        let abs = std::path::absolute(location).map_err(|e| e.to_string())?;
        Url::from_directory_path(&abs).map_err(|()| format!("not a path: {}", abs.display()))
    }
}

/// The Delta schema of an Arrow schema.
fn delta_fields(schema: &SchemaRef) -> Result<Vec<StructField>, String> {
    use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
    let st: deltalake::kernel::StructType = schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| format!("its schema has no Delta equivalent: {e}"))?;
    Ok(st.fields().cloned().collect())
}

/// An error of `table`, naming its location.
pub(crate) fn table_err(table: &Table, e: impl std::fmt::Display) -> TableError {
    TableError {
        location: table.location.clone(),
        detail: e.to_string(),
    }
}

/// Commits `removes` and `adds` (nothing when both are empty) and counts them in `out`.
pub(super) async fn commit_counted(
    table: &mut Table,
    removes: Vec<deltalake::kernel::Remove>,
    adds: Vec<deltalake::kernel::Add>,
    run_id: &str,
    generation: u64,
    out: &mut crate::state::ManifestCurrent,
) -> Result<(), TableError> {
    if removes.is_empty() && adds.is_empty() {
        return Ok(());
    }
    out.files_removed += removes.len() as u64;
    out.files_added += adds.len() as u64;
    table.commit(removes, adds, run_id, generation).await?;
    out.commits += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::{DataType, Field, Schema};

    fn schema(fields: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn a_new_field_becomes_a_column_and_a_type_change_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dest = crate::storage::open(dir.path().to_str().unwrap()).unwrap();
        let v1 = schema(&[("id", DataType::Int64), ("name", DataType::Utf8)]);
        let t = Table::open(&dest, "widgets", &v1).await.unwrap();
        assert_eq!(t.version(), 0);
        assert!(t.files().unwrap().is_empty());
        // The declaration gains a field: a metadata commit adds the column.
        let v2 = schema(&[
            ("id", DataType::Int64),
            ("name", DataType::Utf8),
            ("size", DataType::Float64),
        ]);
        let t = Table::open(&dest, "widgets", &v2).await.unwrap();
        assert_eq!(t.version(), 1);
        let fields: Vec<String> = t
            .table
            .snapshot()
            .unwrap()
            .schema()
            .fields()
            .map(|f| f.name().to_string())
            .collect();
        assert_eq!(fields, ["id", "name", "size"]);
        // Opening with the same schema again changes nothing.
        assert_eq!(
            Table::open(&dest, "widgets", &v2).await.unwrap().version(),
            1
        );
        // A changed type: refused, naming the way forward.
        let v3 = schema(&[("id", DataType::Int64), ("name", DataType::Int64)]);
        let e = Table::open(&dest, "widgets", &v3).await.err().unwrap();
        assert!(e.to_string().contains("rebuild --streams widgets"), "{e}");
        assert!(Table::existing(&dest, "gadgets").await.unwrap().is_none());
    }
}
