//! delta-rs links against the project's own arrow, parquet and object_store (issue 13's
//! prerequisite): a `RecordBatch` built with our `arrow-array` goes straight into deltalake's
//! writer, with no conversion between two arrow versions. If the versions drift apart again (an
//! arrow bump here without a matching deltalake release), this file stops compiling.

use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch};
use arrow_schema::{DataType as ArrowType, Field, Schema};
use deltalake::kernel::{DataType, PrimitiveType, StructField};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, open_table};
use url::Url;

#[tokio::test]
async fn a_batch_of_our_arrow_appends_to_a_delta_table_on_file_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = Url::from_directory_path(dir.path()).unwrap();

    let mut table = DeltaTable::try_from_url(url.clone())
        .await
        .unwrap()
        .create()
        .with_table_name("smoke")
        .with_columns([StructField::new(
            "id",
            DataType::Primitive(PrimitiveType::Long),
            false,
        )])
        .await
        .unwrap();
    assert_eq!(table.version(), Some(0));

    let schema = Arc::new(Schema::new(vec![Field::new("id", ArrowType::Int64, false)]));
    let batch =
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap();

    let mut writer = RecordBatchWriter::for_table(&table).unwrap();
    writer.write(batch).await.unwrap();
    let version = writer.flush_and_commit(&mut table).await.unwrap();
    assert_eq!(version, 1);

    let reopened = open_table(url).await.unwrap();
    assert_eq!(reopened.version(), Some(1));
    let files: Vec<String> = reopened.get_file_uris().unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].ends_with(".parquet"), "{files:?}");
}
