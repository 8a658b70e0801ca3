//! One data file's upload, which creates its key or fails: it never replaces an object, even
//! when two writers race for the same key (the reason this is not object_store's `BufWriter`,
//! whose final put and multipart completion always overwrite).
//!
//! What makes the create conditional, per size:
//! - **Up to the upload buffer**: one `put_opts` with `PutMode::Create` — an atomic
//!   create-if-absent on every backend (S3 `If-None-Match: *`, GCS `ifGenerationMatch=0`, Azure
//!   `If-None-Match: *`, LocalFileSystem a hard link, InMemory).
//! - **Larger (multipart)**: object_store 0.14 cannot make a multipart completion conditional
//!   (`PutMultipartOptions` has no mode), so the parts go to a unique staging key beside the file
//!   (`_<file name>.<uuid>.staging`: the leading `_` hides it from Hive-style readers, the suffix
//!   from `*.parquet` globs), which is then copied to the file's key with `copy_if_not_exists`
//!   and deleted. That copy is atomic on LocalFileSystem (a hard link: no bytes copied), GCS,
//!   Azure and InMemory, and on S3 once `AWS_COPY_IF_NOT_EXISTS` is set — `multipart` makes it an
//!   `UploadPartCopy` completed with `If-None-Match: *` (AWS S3 supports it since 2024; so does
//!   s3s-fs). Without that setting object_store answers `NotSupported` and the file is published
//!   with a `head` and then a plain `copy`: the one remaining gap, the milliseconds between the
//!   two, in which a second writer of the same key could be overwritten.
//!
//! A taken key ends in `object_store::Error::AlreadyExists` and [`CreateUpload::taken`]; the
//! object there is then someone else's, and the caller must neither report nor delete it. What a
//! crash can leave behind: an incomplete multipart upload (S3: remove with an
//! `AbortIncompleteMultipartUpload` lifecycle rule), or, between the copy and the delete, a
//! `…staging` object that no reader picks up.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use object_store::path::{Path, PathPart};
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayloadMut, WriteMultipart,
};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::errors::ParquetError;

/// Parts in flight per multipart upload (as object_store's `BufWriter`).
const MAX_PARTS_IN_FLIGHT: usize = 8;
/// Allocation unit of a file's buffer: row groups are copied into blocks of this size (a
/// larger row group gets one block of its own size), so a buffer holds at most one partly
/// filled block beyond its bytes.
const BLOCK_BYTES: usize = 256 << 10;

pub(super) struct CreateUpload {
    store: Arc<dyn ObjectStore>,
    key: Path,
    /// Objects below this size go up in one put; larger ones in parts of exactly this size.
    capacity: usize,
    state: State,
    taken: bool,
}

enum State {
    Buffer(PutPayloadMut),
    Multipart {
        staging: Path,
        parts: WriteMultipart,
    },
    /// Finished, failed or aborted; a completed staging object may still need deleting.
    Done {
        staging: Option<Path>,
    },
}

impl CreateUpload {
    pub(super) fn new(store: Arc<dyn ObjectStore>, key: Path, capacity: usize) -> Self {
        CreateUpload {
            store,
            key,
            capacity,
            state: State::Buffer(PutPayloadMut::new().with_block_size(BLOCK_BYTES)),
            taken: false,
        }
    }

    /// The key already held an object when this upload tried to create it.
    pub(super) fn taken(&self) -> bool {
        self.taken
    }

    /// Abandons the upload: aborts a multipart upload, deletes a staging object. Safe in every
    /// state, also after a failed `complete`.
    pub(super) async fn abort(&mut self) -> object_store::Result<()> {
        match std::mem::replace(&mut self.state, State::Done { staging: None }) {
            State::Buffer(_) | State::Done { staging: None } => Ok(()),
            State::Multipart { parts, .. } => parts.abort().await,
            State::Done {
                staging: Some(staging),
            } => delete_staging(self.store.as_ref(), &staging).await,
        }
    }

    async fn put(&mut self, bytes: Bytes) -> object_store::Result<()> {
        match &mut self.state {
            State::Buffer(buf)
                if buf.content_length().saturating_add(bytes.len()) < self.capacity =>
            {
                // Copied, not kept: parquet hands over each row group in the `Vec` it grew by
                // doubling, and `Bytes` keeps that whole allocation alive — up to twice the
                // bytes, in every open file's buffer until the file is finished.
                buf.extend_from_slice(&bytes);
                Ok(())
            }
            State::Buffer(buf) => {
                let buffered = std::mem::take(buf).freeze();
                self.state = State::Done { staging: None };
                let staging = staging_key(&self.key);
                let upload = self.store.put_multipart(&staging).await?;
                let mut parts = WriteMultipart::new_with_chunk_size(upload, self.capacity);
                for chunk in buffered {
                    parts.put(chunk);
                }
                parts.write(&bytes);
                self.state = State::Multipart { staging, parts };
                Ok(())
            }
            State::Multipart { parts, .. } => {
                parts.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await?;
                // Copied into the part being filled, for the same reason as above.
                parts.write(&bytes);
                Ok(())
            }
            State::Done { .. } => Err(object_store::Error::Generic {
                store: "sink",
                source: format!("{}: write after the upload finished", self.key).into(),
            }),
        }
    }

    async fn finish(&mut self) -> object_store::Result<()> {
        match std::mem::replace(&mut self.state, State::Done { staging: None }) {
            State::Buffer(buf) => {
                let payload = buf.freeze();
                let created = self
                    .store
                    .put_opts(
                        &self.key,
                        payload.clone(),
                        PutOptions::from(PutMode::Create),
                    )
                    .await;
                if let Err(object_store::Error::AlreadyExists { .. }) = &created
                    && holds(self.store.clone(), self.key.clone(), payload).await
                {
                    // The store's client retried a create whose answer was lost (a connection
                    // cut after the object was written): the object there is ours.
                    return Ok(());
                }
                self.note_taken(created).map(|_| ())
            }
            State::Multipart { staging, parts } => {
                // A failing finish aborts the multipart upload itself.
                parts.finish().await?;
                self.state = State::Done {
                    staging: Some(staging.clone()),
                };
                let published = self.publish(&staging).await;
                if let Err(e) = self.abort().await {
                    crate::events::staging_delete_failed(&staging, &e);
                }
                published
            }
            State::Done { .. } => Ok(()),
        }
    }

    /// Copies the completed staging object to the file's key, if that key is free.
    async fn publish(&mut self, staging: &Path) -> object_store::Result<()> {
        match self.store.copy_if_not_exists(staging, &self.key).await {
            Err(
                object_store::Error::NotSupported { .. }
                | object_store::Error::NotImplemented { .. },
            ) => {}
            Err(object_store::Error::AlreadyExists { .. })
                if same_as(self.store.clone(), self.key.clone(), staging.clone()).await =>
            {
                // A retried copy whose first attempt succeeded: the object is our staging copy.
                return Ok(());
            }
            other => return self.note_taken(other),
        }
        // S3 without AWS_COPY_IF_NOT_EXISTS: check, then copy (the gap in the module docs).
        match self.store.head(&self.key).await {
            Ok(_) => self.note_taken(Err(object_store::Error::AlreadyExists {
                path: self.key.to_string(),
                source: "the object exists (checked before an unconditional copy)".into(),
            })),
            Err(object_store::Error::NotFound { .. }) => self.store.copy(staging, &self.key).await,
            Err(e) => Err(e),
        }
    }

    fn note_taken<T>(&mut self, r: object_store::Result<T>) -> object_store::Result<T> {
        if let Err(object_store::Error::AlreadyExists { .. }) = &r {
            self.taken = true;
        }
        r
    }
}

/// Does `key` hold exactly `payload`? (Only asked after `AlreadyExists`.)
async fn holds(store: Arc<dyn ObjectStore>, key: Path, payload: object_store::PutPayload) -> bool {
    let Ok(got) = store.get(&key).await else {
        return false;
    };
    let Ok(bytes) = got.bytes().await else {
        return false;
    };
    let ours: Vec<u8> = payload.iter().flat_map(|b| b.iter().copied()).collect();
    bytes.as_ref() == ours.as_slice()
}

/// Does `key` hold a copy of `staging`: the same size and the same last 64 KiB (a Parquet
/// file's footer: its schema, row groups, offsets and statistics)?
async fn same_as(store: Arc<dyn ObjectStore>, key: Path, staging: Path) -> bool {
    let (Ok(a), Ok(b)) = (store.head(&key).await, store.head(&staging).await) else {
        return false;
    };
    if a.size != b.size {
        return false;
    }
    if a.e_tag.is_some() && a.e_tag == b.e_tag {
        return true;
    }
    let tail = a.size.saturating_sub(64 << 10)..a.size;
    match (
        store.get_range(&key, tail.clone()).await,
        store.get_range(&staging, tail).await,
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

async fn delete_staging(store: &dyn ObjectStore, staging: &Path) -> object_store::Result<()> {
    match store.delete(staging).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

impl AsyncFileWriter for CreateUpload {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move { self.put(bs).await.map_err(external) })
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move { self.finish().await.map_err(external) })
    }
}

fn external(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

/// `<dir>/_<file name>.<uuid v7>.staging`: unique per upload, beside the file (a copy within one
/// bucket), invisible to the readers of the data.
fn staging_key(key: &Path) -> Path {
    let mut parts: Vec<PathPart<'static>> = key
        .parts()
        .map(|p| PathPart::from(p.as_ref().to_string()))
        .collect();
    let name = parts
        .pop()
        .map(|p| p.as_ref().to_string())
        .unwrap_or_default();
    parts.push(PathPart::from(format!(
        "_{name}.{}.staging",
        uuid::Uuid::now_v7()
    )));
    Path::from_iter(parts)
}
