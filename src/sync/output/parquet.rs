//! The main job's output: typed Parquet files on the destination ([`crate::sink`]), a new state
//! generation per commit beside them under the run's lease ([`crate::state`]), and a manifest of
//! the run's files at the end.
//!
//! Contract: a commit is refused once the run has lost its lease (another run took over), so
//! two runs can never both advance a bookmark; with a Singer-style state file the committed
//! state is also written there (bookmarks come from the file, generations from the destination).
//! Files of a unit that will not be committed are deleted, so the destination never holds an
//! unreferenced file that looks complete.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Utc;
use object_store::ObjectStoreExt;

use super::{Output, PageOut, UnitWriter, WriteError};
use crate::config::ColumnPolicy;
use crate::convert::Converter;
use crate::error::{Error, ExitCode};
use crate::events;
use crate::registry::Stream;
use crate::sink::{RollingWriter, WrittenFile};
use crate::state::{Lease, Manifest, ManifestFile, ManifestStream, State, StateError, StateStore};
use crate::storage::Destination;
use crate::sync::options::{RunReport, Selected, SyncOptions};

/// Parquet on `dest`, state in `store` under `lease`.
pub struct ParquetOutput<'a> {
    pub dest: &'a Destination,
    pub store: &'a StateStore,
    pub lease: &'a Lease,
    pub opts: &'a SyncOptions,
    pub policies: &'a BTreeMap<String, ColumnPolicy>,
}

#[async_trait]
impl Output for ParquetOutput<'_> {
    fn open(
        &self,
        sel: &Selected<'_>,
        tag: Option<&str>,
    ) -> Result<Box<dyn UnitWriter>, WriteError> {
        let stream = sel.stream;
        let policy = self.policies.get(&stream.name).cloned().unwrap_or_default();
        let converter = Converter::new(stream, &self.opts.run_id, self.opts.started_at);
        let schema = policy.schema(&converter.schema());
        let mut writer = RollingWriter::new(
            self.dest.store.clone(),
            &self.dest.prefix,
            stream,
            &self.opts.run_id,
            self.opts.started_at,
            schema.clone(),
            self.opts.sink.clone(),
        )
        .map_err(|e| WriteError::Output(e.to_string()))?;
        if let Some(tag) = tag {
            writer = writer.with_file_tag(tag);
        }
        Ok(Box::new(ParquetUnit {
            converter,
            policy,
            schema,
            writer,
        }))
    }

    async fn commit(&self, _stream: &Stream, mut next: State) -> Result<State, Error> {
        if self.lease.lost() {
            return Err(Error::Conflict(format!(
                "this run lost its lease on the destination ({}); another run took over",
                self.lease.lost_reason().unwrap_or_default()
            )));
        }
        if self.opts.state_file.is_some() {
            // Bookmarks come from the state file; generations are numbered by the destination.
            next.generation = self
                .store
                .generations()
                .await
                .map_err(StateError::into_error)?
                .last()
                .copied()
                .unwrap_or(0);
        }
        // The state file is written (beside its name) before the destination's state moves, so
        // a full disk or a read-only folder fails the commit with both still in step; it is put
        // in place only once the destination committed. It holds the generation the
        // destination is about to write (its `updated_at` is when it was prepared).
        let prepared = match &self.opts.state_file {
            Some(path) => {
                let doc = State {
                    version: crate::state::STATE_VERSION,
                    generation: next.generation + 1,
                    updated_at: Some(Utc::now()),
                    last_run_id: Some(self.lease.run_id().to_string()),
                    streams: next.streams.clone(),
                };
                let prepared = crate::state::prepare_file(path, &doc).map_err(|e| {
                    Error::Destination(format!(
                        "cannot write the state file {}: {e}. Neither it nor the destination's state was changed.",
                        path.display()
                    ))
                })?;
                Some((path, prepared))
            }
            None => None,
        };
        let committed = self
            .store
            .commit(self.lease, next)
            .await
            .map_err(StateError::into_error)?;
        if let Some((path, prepared)) = prepared {
            prepared.publish().map_err(|e| {
                Error::Fatal(format!(
                    "cannot put the state file {} in place after the destination committed: {e}",
                    path.display()
                ))
            })?;
        }
        Ok(committed)
    }

    async fn discard(&self, files: Vec<WrittenFile>) {
        for f in files {
            if let Err(e) = self.dest.store.delete(&f.key).await {
                events::file_delete_failed(&f.key, "uncommitted", &e);
            }
        }
    }

    async fn finish(&self, report: &RunReport) -> Option<String> {
        let manifest = manifest_of(report, self.opts);
        match self
            .store
            .write_manifest(&self.opts.run_id, &manifest)
            .await
        {
            Ok(key) => Some(key),
            Err(e) => {
                events::manifest_failed(&e);
                None
            }
        }
    }
}

/// One unit's converter and rolling file writer.
struct ParquetUnit {
    converter: Converter,
    policy: ColumnPolicy,
    schema: arrow_schema::SchemaRef,
    writer: RollingWriter,
}

#[async_trait]
impl UnitWriter for ParquetUnit {
    async fn write(
        &mut self,
        body: &[u8],
        skip_from_id: Option<i64>,
    ) -> Result<PageOut, WriteError> {
        let converted = self
            .converter
            .convert_page(body)
            .map_err(|e| WriteError::Unreadable(e.to_string()))?;
        let mut batch = converted.batch;
        if let Some(low) = skip_from_id {
            let skip = converted.ids.iter().take_while(|id| **id >= low).count();
            batch = batch.slice(skip, batch.num_rows() - skip);
        }
        let out = PageOut {
            rows: batch.num_rows() as u64,
            extra_fields: converted.extra_fields,
            type_mismatches: converted.type_mismatches,
            null_violations: converted.null_violations,
            ids: converted.ids,
        };
        if batch.num_rows() > 0 {
            let batch = self.policy.apply(&batch, &self.schema).map_err(|e| {
                WriteError::Output(format!("applying the column policy failed: {e}"))
            })?;
            self.writer
                .write(&batch)
                .await
                .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}")))?;
        }
        Ok(out)
    }

    async fn close(self: Box<Self>) -> Result<Vec<WrittenFile>, WriteError> {
        self.writer
            .close()
            .await
            .map_err(|e| WriteError::Output(format!("writing Parquet failed: {e}")))
    }

    async fn abort(self: Box<Self>) {
        self.writer.abort().await;
    }
}

/// The run's manifest: every stream's outcome and the files a loader should pick up.
fn manifest_of(report: &RunReport, opts: &SyncOptions) -> Manifest {
    use crate::state::status;
    let status = match report.exit_code() {
        ExitCode::Success => status::SUCCESS,
        ExitCode::Interrupted => status::INTERRUPTED,
        _ => status::PARTIAL,
    };
    Manifest {
        run_id: opts.run_id.clone(),
        started_at: opts.started_at,
        finished_at: Some(Utc::now()),
        status: status.to_string(),
        streams: report
            .streams
            .iter()
            .map(|r| {
                (
                    r.stream.clone(),
                    ManifestStream {
                        status: r.status.label().to_string(),
                        window_from: r.window.as_ref().and_then(|w| w.from),
                        window_to: r.window.as_ref().and_then(|w| w.to),
                        rows: r.rows,
                        pages: r.pages,
                        slices: r.slices as u64,
                        files: r
                            .files
                            .iter()
                            .map(|f| ManifestFile {
                                key: f.key.to_string(),
                                rows: f.rows,
                                bytes: f.bytes,
                            })
                            .collect(),
                        requests: r.requests,
                        bytes_fetched: r.bytes_fetched,
                        // Defence in depth: a secret quoted by an API error is masked.
                        error: r
                            .status
                            .error()
                            .map(|e| crate::secrets::scrub(e).into_owned()),
                    },
                )
            })
            .collect(),
    }
}
