//! `rebuild`: a stream's current table built again from the raw history, which is how a user
//! adopts current tables on an existing destination, recovers from a table an outside tool
//! broke, or takes a declared type change (which a merge refuses).
//!
//! Contract: under the run lease (no sync runs meanwhile), for each chosen stream: every object
//! under `current/<stream>/` is deleted, then every committed raw file of the stream (the union
//! of the manifests) is merged into a new table. Merges commute ([`super::merge`]), so the
//! order of the raw files does not matter, and the result is what the syncs would have built.
//! Readers see no table for the stream while it is rebuilt. An interrupted rebuild is simply
//! run again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::Applied;
use super::table::CURRENT_DIR;
use crate::config::ColumnPolicy;
use crate::error::Error;
use crate::registry::Registry;
use crate::state::{StateError, StateStore};
use crate::storage::Destination;

const LEASE_TTL: Duration = Duration::from_secs(120);

/// One run's raw files of a stream, with when the run started.
type RunFiles = (chrono::DateTime<chrono::Utc>, BTreeSet<String>);

/// Rebuilds the tables of `streams` (`None`: every stream with raw files); returns what each
/// got.
pub async fn run(
    dest: &Destination,
    registry: &Registry,
    policies: &BTreeMap<String, ColumnPolicy>,
    streams: Option<&[String]>,
    single_writer: bool,
) -> Result<Vec<(String, Applied)>, Error> {
    let store =
        StateStore::new(dest.store.clone(), dest.prefix.clone()).single_writer(single_writer);
    let run_id = uuid::Uuid::now_v7().to_string();
    let lease = store
        .acquire_lease(&run_id, LEASE_TTL)
        .await
        .map_err(StateError::into_error)?;
    let heartbeat = lease.spawn_heartbeat(LEASE_TTL / 4);
    let result = async {
        let tables = super::Tables::default();
        let state = store.load().await.map_err(StateError::into_error)?;
        // A crashed run's files join the manifests first.
        store.adopt_open_runs(&state, &run_id).await;
        // Per stream, the files of each run, oldest run first.
        let mut files: BTreeMap<String, Vec<RunFiles>> = BTreeMap::new();
        for (_, m) in store.manifests().await.map_err(StateError::into_error)? {
            for (name, s) in m.streams {
                if s.files.is_empty() {
                    continue;
                }
                files
                    .entry(name)
                    .or_default()
                    .push((m.started_at, s.files.into_iter().map(|f| f.key).collect()));
            }
        }
        for runs in files.values_mut() {
            runs.sort_by_key(|r| r.0);
        }
        let chosen: Vec<String> = match streams {
            Some(s) => s.to_vec(),
            None => files.keys().cloned().collect(),
        };
        let mut out = Vec::new();
        for name in chosen {
            let Some(stream) = registry.get(&name) else {
                continue;
            };
            let dir = dest.prefix.clone().join(CURRENT_DIR).join(name.as_str());
            let old: Vec<Path> = dest
                .store
                .list(Some(&dir))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(|e| Error::Destination(format!("rebuild: cannot list {dir}: {e}")))?;
            for key in old {
                match dest.store.delete(&key).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => {
                        return Err(Error::Destination(format!(
                            "rebuild: cannot delete {key}: {e}"
                        )));
                    }
                }
            }
            // A full-refresh stream's table is its last read (the history of a dictionary
            // holds entries that are gone since); an incremental stream's, its whole history.
            let runs = files.get(&name).map(Vec::as_slice).unwrap_or_default();
            let full_refresh = !stream.is_incremental();
            let chosen_runs = match (full_refresh, runs.last()) {
                (true, Some(last)) => std::slice::from_ref(last),
                _ => runs,
            };
            let keys: Vec<Path> = chosen_runs
                .iter()
                .flat_map(|(_, keys)| keys)
                .map(|k| Path::parse(k).unwrap_or_else(|_| Path::from(k.as_str())))
                .collect();
            let raw_schema = crate::privacy::raw_schema(policies, stream);
            let applied = tables
                .apply(dest, stream, &raw_schema, &keys, full_refresh, &run_id, 0)
                .await
                .map_err(|e| Error::Destination(e.to_string()))?;
            out.push((name, applied));
        }
        Ok(out)
    }
    .await;
    heartbeat.abort();
    lease.release().await;
    result
}
