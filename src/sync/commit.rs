//! Commits: what a durably written unit of work records in the run's state, serialised through
//! one lock and handed to the output ([`super::output::Output::commit`]).
//!
//! Contract: called only after the unit's writer closed (its output is durable). A completed
//! slice is added to the stream's slice progress; a completed window moves the bookmark to the
//! run's signpost (incremental streams) and clears the slice progress. Commits of concurrent
//! units never interleave, so each new state contains every earlier commit of the run. The
//! output is told which files each commit makes durable (its manifest records them).

use chrono::{DateTime, Utc};

use super::context::RunCtx;
use super::index;
use super::output::CommitUnit;
use super::summary::StreamReport;
use crate::error::Error;
use crate::registry::Stream;
use crate::sink::WrittenFile;
use crate::state::ids::Keys;
use crate::state::{IdsRef, Slice, Slices};

/// What a commit records.
pub(super) enum Commit<'a> {
    /// One slice of a sliced window is durably written.
    Slice {
        plan: &'a Slices,
        done: Slice,
        rows: u64,
        files: &'a [WrittenFile],
        /// The ids the slice read.
        keys: &'a Keys,
    },
    /// The whole window is durably written: the bookmark moves to the signpost.
    Window { report: &'a StreamReport },
    /// Tombstones (or rows read again by id) are durably written, with the stream's new id
    /// index; the bookmark stays.
    Deletes {
        files: &'a [WrittenFile],
        ids: Option<IdsRef>,
        /// Ids re-read because their data changed in place (anonymised), with the instant the
        /// re-read began: older rows of them are what `purge` erases.
        erase_before: Option<(&'a [i64], DateTime<Utc>)>,
    },
}

/// Records progress in a new state (see the module contract).
pub(super) async fn commit(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    what: Commit<'_>,
) -> Result<(), Error> {
    // The output's merge needs no state: it runs before the lock, so that streams overlap.
    let (files, window_complete): (&[WrittenFile], bool) = match &what {
        Commit::Slice { files, .. } | Commit::Deletes { files, .. } => (files, false),
        Commit::Window { report } => (&report.files, true),
    };
    // A first read's slices are merged together when the window completes (into an empty
    // table, in one pass); until then the state keeps their files, so that a stopped run's
    // slices are merged by the run that completes the window.
    let merge_later = ctx.output.merges_current_tables()
        && matches!(&what, Commit::Slice { plan, .. } if plan.window_from.is_none());
    let pending: Vec<String> = match &what {
        Commit::Window { .. } => ctx
            .state
            .lock()
            .await
            .stream(&stream.name)
            .and_then(|e| e.slices.as_ref())
            .map(|s| s.unmerged.clone())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    ctx.output
        .merge(
            stream,
            &CommitUnit {
                files,
                window_complete,
                window_from: None,
                window_to: None,
                merge_later,
                pending: &pending,
            },
        )
        .await?;
    let mut state = ctx.state.lock().await;
    let mut next = state.clone();
    let entry = next.streams.entry(stream.name.clone()).or_default();
    let old_ids = entry.ids.as_ref().map(|r| r.key.clone());
    // Ids the unit read join the stream's index in the same commit as its rows.
    let keys = match &what {
        Commit::Slice { keys, .. } => Some(*keys),
        Commit::Window { report } => Some(&report.keys),
        Commit::Deletes { .. } => None,
    };
    if let Some(keys) = keys.filter(|k| !k.is_empty() && index::indexed(stream)) {
        let fields = index::cascade_fields(stream);
        let mut index = index::load_index(ctx.output, &stream.name, &fields, Some(entry)).await;
        index.upsert(keys);
        let mut reconciled_at = entry.ids.as_ref().and_then(|r| r.reconciled_at);
        // A complete read is a listing of every live id: the deletes phase compares it for free.
        if let Commit::Window { report } = &what
            && report.read_ids.is_some()
        {
            reconciled_at = Some(ctx.signpost);
        }
        entry.ids = Some(index::save_index(ctx.output, stream, &index, reconciled_at).await?);
    }
    let unit = match what {
        Commit::Deletes {
            files,
            ids,
            erase_before,
        } => {
            if ids.is_some() {
                entry.ids = ids;
            }
            if let Some((ids, at)) = erase_before {
                for id in ids {
                    entry.erase_before.insert(*id, at);
                }
            }
            CommitUnit {
                files,
                window_complete: false,
                window_from: None,
                window_to: None,
                merge_later: false,
                pending: &[],
            }
        }
        Commit::Slice {
            plan,
            done,
            rows,
            files,
            ..
        } => {
            let slices = entry.slices.get_or_insert_with(|| plan.clone());
            if slices.window_to != plan.window_to || slices.cuts != plan.cuts {
                // A new plan; files still waiting for their merge wait on.
                let unmerged = std::mem::take(&mut slices.unmerged);
                *slices = plan.clone();
                slices.unmerged = unmerged;
            }
            slices.mark_done(done.from, done.to);
            if merge_later {
                slices
                    .unmerged
                    .extend(files.iter().map(|f| f.key.to_string()));
            }
            entry.rows += rows;
            entry.files += files.len() as u64;
            CommitUnit {
                files,
                window_complete: false,
                window_from: plan.window_from,
                window_to: Some(plan.window_to),
                merge_later,
                pending: &[],
            }
        }
        Commit::Window { report } => {
            if stream.is_incremental() {
                entry.bookmark = Some(ctx.signpost);
            }
            entry.slices = None;
            entry.rows = report.rows;
            entry.files = report.files.len() as u64;
            CommitUnit {
                files: &report.files,
                window_complete: true,
                window_from: report.window.as_ref().and_then(|w| w.from),
                window_to: report.window.as_ref().and_then(|w| w.to),
                merge_later: false,
                pending: &pending,
            }
        }
    };
    entry.run_id = Some(ctx.opts.run_id.clone());
    entry.committed_at = Some(Utc::now());
    next.last_run_id = Some(ctx.opts.run_id.clone());
    next.updated_at = Some(Utc::now());
    let new_ids = next
        .stream(&stream.name)
        .and_then(|e| e.ids.as_ref())
        .map(|r| r.key.clone());
    *state = ctx.output.commit(stream, &unit, next).await?;
    // The index the state named before is named by no state generation this run will write.
    if let Some(old) = old_ids
        && new_ids.as_deref() != Some(old.as_str())
    {
        ctx.output.drop_ids(&old).await;
    }
    Ok(())
}
