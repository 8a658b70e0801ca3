//! The id index of a stream as the engine uses it: which streams keep one, and loading and
//! storing it through the output (beside the state, or inline in a protocol state). Shared by
//! the commits (ids a unit read join the index in its commit) and the deletes phase.

use chrono::{DateTime, Utc};

use super::output::Output;
use crate::error::Error;
use crate::events;
use crate::registry::Stream;
use crate::state::ids::IdIndex;
use crate::state::{IdsRef, StreamState};

/// Whether a stream keeps an id index: its rows can be hard-deleted, or die with a parent.
pub fn indexed(stream: &Stream) -> bool {
    stream.deletes.is_hard() || !stream.deletes.cascade.is_empty()
}

/// The stream's cascade fields, in declaration order (the index's reference columns).
pub fn cascade_fields(stream: &Stream) -> Vec<String> {
    stream
        .deletes
        .cascade
        .iter()
        .map(|c| c.field.clone())
        .collect()
}

/// Loads the index `entry` names (a fresh one when there is none, or it is unreadable: that
/// can miss a delete until the stream is read in full again, never invent one).
pub(super) async fn load_index(
    output: &dyn Output,
    stream_name: &str,
    fields: &[String],
    entry: Option<&StreamState>,
) -> IdIndex {
    let Some(r) = entry.and_then(|e| e.ids.as_ref()) else {
        return IdIndex::new(fields);
    };
    let why = match output.load_ids(&r.key).await {
        Ok(Some(bytes)) => match IdIndex::decode(&bytes, fields) {
            Ok(ix) => return ix,
            Err(e) => e.to_string(),
        },
        Ok(None) => "it is missing".to_string(),
        Err(e) => e.to_string(),
    };
    events::id_index_unreadable(stream_name, &r.key, &why);
    IdIndex::new(fields)
}

/// Stores `index` and returns the state's reference to it (`reconciled_at` carried over).
pub(super) async fn save_index(
    output: &dyn Output,
    stream: &Stream,
    index: &IdIndex,
    reconciled_at: Option<DateTime<Utc>>,
) -> Result<IdsRef, Error> {
    let key = output.save_ids(stream, index.encode()).await?;
    Ok(IdsRef {
        key,
        live: index.live_len() as u64,
        deleted: index.deleted_len() as u64,
        reconciled_at,
    })
}
