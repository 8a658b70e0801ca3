//! Commits: what a durably written unit of work records in the run's state, serialised through
//! one lock and handed to the output ([`super::output::Output::commit`]).
//!
//! Contract: called only after the unit's writer closed (its output is durable). A completed
//! slice is added to the stream's slice progress; a completed window moves the bookmark to the
//! run's signpost (incremental streams) and clears the slice progress. Commits of concurrent
//! units never interleave, so each new state contains every earlier commit of the run. The
//! output is told which files each commit makes durable (its manifest records them).

use chrono::Utc;

use super::context::RunCtx;
use super::output::CommitUnit;
use super::summary::StreamReport;
use crate::error::Error;
use crate::registry::Stream;
use crate::sink::WrittenFile;
use crate::state::{Slice, Slices};

/// What a commit records.
pub(super) enum Commit<'a> {
    /// One slice of a sliced window is durably written.
    Slice {
        plan: &'a Slices,
        done: Slice,
        rows: u64,
        files: &'a [WrittenFile],
    },
    /// The whole window is durably written: the bookmark moves to the signpost.
    Window { report: &'a StreamReport },
}

/// Records progress in a new state (see the module contract).
pub(super) async fn commit(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    what: Commit<'_>,
) -> Result<(), Error> {
    let mut state = ctx.state.lock().await;
    let mut next = state.clone();
    let entry = next.streams.entry(stream.name.clone()).or_default();
    let unit = match what {
        Commit::Slice {
            plan,
            done,
            rows,
            files,
        } => {
            let slices = entry.slices.get_or_insert_with(|| plan.clone());
            if slices.window_to != plan.window_to || slices.cuts != plan.cuts {
                *slices = plan.clone();
            }
            slices.mark_done(done.from, done.to);
            entry.rows += rows;
            entry.files += files.len() as u64;
            CommitUnit {
                files,
                window_complete: false,
                window_from: plan.window_from,
                window_to: Some(plan.window_to),
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
            }
        }
    };
    entry.run_id = Some(ctx.opts.run_id.clone());
    entry.committed_at = Some(Utc::now());
    next.last_run_id = Some(ctx.opts.run_id.clone());
    next.updated_at = Some(Utc::now());
    *state = ctx.output.commit(stream, &unit, next).await?;
    Ok(())
}
