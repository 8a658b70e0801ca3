//! Reading a stream's raw files back for its current table: by ranges from the destination's
//! store (the footer, then each row group's column chunks), so that a raw file as large as the
//! sink's target (128 MiB compressed) is never fetched or decoded whole.

use std::sync::Arc;

use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::table::{Table, TableError, table_err};
use crate::storage::Destination;

/// The batches of one raw file, a row group at a time: a raw file may be as large as the sink's
/// target (128 MiB compressed), so it is never fetched or decoded whole.
pub(super) async fn read_raw(
    dest: &Destination,
    key: &Path,
    table: &Table,
) -> Result<
    (
        parquet::arrow::async_reader::ParquetRecordBatchStream<RawFile>,
        usize,
    ),
    TableError,
> {
    let file = RawFile::open(dest, key, table).await?;
    let builder = parquet::arrow::ParquetRecordBatchStreamBuilder::new(file)
        .await
        .map_err(|e| raw_err(table, key, e))?;
    let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
    let stream = builder.build().map_err(|e| raw_err(table, key, e))?;
    Ok((stream, rows))
}

/// A raw file on the destination's store, read by ranges (the footer, then each row group's
/// column chunks).
pub(super) struct RawFile {
    store: Arc<dyn object_store::ObjectStore>,
    key: Path,
    size: u64,
}

impl RawFile {
    pub(super) async fn open(
        dest: &Destination,
        key: &Path,
        table: &Table,
    ) -> Result<RawFile, TableError> {
        // The size from a `head`, so that the footer is read with a plain range request (not
        // every store answers suffix requests).
        let size = dest
            .store
            .head(key)
            .await
            .map_err(|e| raw_err(table, key, e))?
            .size;
        Ok(RawFile {
            store: dest.store.clone(),
            key: key.clone(),
            size,
        })
    }

    /// The file's footer with its page indexes (when it has them).
    pub(super) async fn footer(
        &mut self,
        table: &Table,
    ) -> Result<parquet::file::metadata::ParquetMetaData, TableError> {
        let size = self.size;
        let key = self.key.clone();
        parquet::file::metadata::ParquetMetaDataReader::new()
            .with_page_index_policy(parquet::file::metadata::PageIndexPolicy::Optional)
            .load_and_finish(self, size)
            .await
            .map_err(|e| raw_err(table, &key, e))
    }

    /// The bytes of `range`, in one request.
    pub(super) async fn range(
        &self,
        range: std::ops::Range<u64>,
        table: &Table,
    ) -> Result<bytes::Bytes, TableError> {
        self.store
            .get_range(&self.key, range)
            .await
            .map_err(|e| raw_err(table, &self.key, e))
    }
}

impl parquet::arrow::async_reader::AsyncFileReader for RawFile {
    fn get_bytes(
        &mut self,
        range: std::ops::Range<u64>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<bytes::Bytes>> {
        Box::pin(async move {
            self.store
                .get_range(&self.key, range)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<std::ops::Range<u64>>,
    ) -> futures::future::BoxFuture<'_, parquet::errors::Result<Vec<bytes::Bytes>>> {
        Box::pin(async move {
            self.store
                .get_ranges(&self.key, &ranges)
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        })
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a parquet::arrow::arrow_reader::ArrowReaderOptions>,
    ) -> futures::future::BoxFuture<
        'a,
        parquet::errors::Result<Arc<parquet::file::metadata::ParquetMetaData>>,
    > {
        Box::pin(async move {
            let size = self.size;
            let meta = parquet::file::metadata::ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(meta))
        })
    }
}

pub(super) fn raw_err(table: &Table, key: &Path, e: impl std::fmt::Display) -> TableError {
    table_err(table, format!("cannot read the raw file {key}: {e}"))
}
