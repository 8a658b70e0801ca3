//! The run lifecycle: one client and one rate budget for the run, every selected stream
//! scheduled at once under a pool of unit slots, each stream's outcome turned into its report.
//!
//! Contract: a stream that fails or lacks its scope is reported and skipped; the others still
//! commit. With `max_run_time`, the run's stop signal fires shortly before it: units still
//! running are interrupted, finished ones stay committed, and the run reports itself partial.
//! An authentication failure fails the whole run (every stream would fail the same way), and
//! the credential is tried before anything else: a run that cannot get a token (exit 4 or 7)
//! never touches the destination (no lease, no probe object).
//! Nothing here knows where records go beyond choosing the output for an entry point
//! ([`run`]: Parquet under the destination's lease; [`run_messages`]: protocol messages).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Mutex, Semaphore};

use super::commit;
use super::context::RunCtx;
use super::options::{RunReport, Selected, SyncOptions};
use super::output::Output;
use super::output::messages::{MessageOutput, MessageSink};
use super::output::parquet::ParquetOutput;
use super::read::{MISSING_SCOPE, StreamFailure, StreamIo, StreamRead};
use super::summary::{StreamReport, StreamStatus};
use super::window;
use crate::cancel::{Cancel, Reason};
use crate::config::Config;
use crate::error::Error;
use crate::events;
use crate::harvest::{FetchError, HarvestClient};
use crate::registry::Registry;
use crate::state::{State, StateError, StateStore};
use crate::storage::Destination;

/// How long before `max_run_time` the run stops taking work (at most; a tenth of it if less).
const DEADLINE_MARGIN: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs a sync into Parquet on `dest`, holding the destination's lease for the whole run.
/// `cancel` is set by the caller (the CLI's signal handler) to stop early.
pub async fn run(
    config: &Config,
    registry: &Registry,
    dest: &Destination,
    opts: &SyncOptions,
    cancel: Cancel,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let streams: Vec<Selected> = config
        .selected(registry)?
        .into_iter()
        .map(Selected::all)
        .collect();
    // An unwritable state file would otherwise be found only after the whole read.
    if let Some(path) = &opts.state_file {
        check_state_file(path)?;
    }
    // Authenticate before the lease: a bad credential must leave the destination untouched.
    let client = connect(config, opts, &cancel, started).await?;
    let store = StateStore::new(dest.store.clone(), dest.prefix.clone())
        .single_writer(config.single_writer);
    let lease = store
        .acquire_lease(&opts.run_id, opts.lease_ttl)
        .await
        .map_err(StateError::into_error)?;
    let heartbeat = lease.spawn_heartbeat(opts.lease_ttl / 4);
    let result = async {
        let mut state = match &opts.state_file {
            Some(path) if path.exists() => {
                let state = crate::state::load_file(path)
                    .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?;
                check_bookmarks(&state, &streams, opts.signpost()).map_err(|b| {
                    let source = format!("the state file {}", path.display());
                    Error::Config(b.message(&source, &window::state_file_fix(&b.stream, path)))
                })?;
                state
            }
            _ => {
                let state = store.load().await.map_err(StateError::into_error)?;
                check_bookmarks(&state, &streams, opts.signpost()).map_err(|b| {
                    let key = store.generation_key(state.generation).to_string();
                    let source = format!("the destination's state `{key}`");
                    Error::Destination(
                        b.message(&source, &window::destination_fix(&b.stream, &key)),
                    )
                })?;
                state
            }
        };
        let output = ParquetOutput::new(dest, &store, &lease, opts, &config.policies)
            .with_current_tables(config.current_tables, config.vacuum_retention)
            .with_memory(&config.writer_memory);
        output.adopt(&mut state).await;
        events::sync_started(&opts.run_id, streams.len(), &dest.url);
        run_streams(
            config, &streams, state, &output, opts, &client, cancel, started,
        )
        .await
    }
    .await;
    heartbeat.abort();
    lease.release().await;
    result
}

/// Runs a sync whose records go to `sink` as protocol messages (Singer tap, Airbyte source),
/// starting from `state` (read from the protocol's state input). Same windows, slices, retries
/// and rate budget as [`run`]; nothing is written to a destination.
pub async fn run_messages(
    config: &Config,
    streams: &[Selected<'_>],
    state: State,
    sink: Arc<dyn MessageSink>,
    opts: &SyncOptions,
    cancel: Cancel,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let output = MessageOutput::new(sink, config.policies.clone(), opts.started_at);
    run_with(config, streams, state, &output, opts, cancel, started).await
}

/// Runs `streams` from `state` into `output`; `cancel` stops the run early. `started` is when
/// the caller's run began (the report's duration counts from it).
pub async fn run_with(
    config: &Config,
    streams: &[Selected<'_>],
    state: State,
    output: &dyn Output,
    opts: &SyncOptions,
    cancel: Cancel,
    started: Instant,
) -> Result<RunReport, Error> {
    let client = connect(config, opts, &cancel, started).await?;
    run_streams(
        config, streams, state, output, opts, &client, cancel, started,
    )
    .await
}

/// Starts the run's clock (the deadline of `max_run_time`) and builds the run's client with
/// its first token. Stopped before the first token is not an error: every stream then reports
/// itself interrupted.
async fn connect(
    config: &Config,
    opts: &SyncOptions,
    cancel: &Cancel,
    started: Instant,
) -> Result<HarvestClient, Error> {
    if let Some(max) = config.max_run_time {
        // Stop a little early, so what finished is committed before the time is up.
        let margin = (max / 10).min(DEADLINE_MARGIN);
        cancel.set_deadline(started + max.saturating_sub(margin));
    }
    let client = HarvestClient::new(config)
        .map_err(|e| Error::Fatal(e.to_string()))?
        .with_cancel(cancel.clone());
    client.set_observer(opts.progress.clone());
    match client.authenticate().await {
        Ok(()) | Err(FetchError::Interrupted) => Ok(client),
        Err(e) => Err(fetch_to_run_error(e)),
    }
}

/// [`run_with`] with the run's client already connected.
#[allow(clippy::too_many_arguments)]
async fn run_streams(
    config: &Config,
    streams: &[Selected<'_>],
    state: State,
    output: &dyn Output,
    opts: &SyncOptions,
    client: &HarvestClient,
    cancel: Cancel,
    started: Instant,
) -> Result<RunReport, Error> {
    let signpost = opts.signpost();
    events::signpost(&signpost.to_rfc3339());
    // Largest streams first (by what their last run wrote), so the longest chains start early
    // and the end of the run is not one big stream read alone.
    let mut order: Vec<&Selected> = streams.iter().collect();
    order.sort_by_key(|s| std::cmp::Reverse(state.stream(&s.stream.name).map_or(0, |e| e.rows)));
    let ctx = RunCtx {
        config,
        opts,
        client,
        signpost,
        state: Mutex::new(state),
        output,
        cancel: cancel.clone(),
        units: Semaphore::new(config.concurrency),
    };
    let mut reports: Vec<StreamReport> =
        futures::future::join_all(order.iter().map(|s| sync_stream(&ctx, s))).await;
    // What disappeared from Greenhouse, once every window is committed (see `deletes`).
    super::deletes::apply(&ctx, &order, &mut reports).await;
    reports.sort_by(|a, b| a.stream.cmp(&b.stream));
    if cancel.reason() == Some(Reason::Deadline) {
        let unfinished = reports
            .iter()
            .filter(|r| r.status == StreamStatus::Interrupted)
            .count();
        events::deadline_reached(unfinished);
    }

    if let Some(auth) = reports.iter().find_map(|r| match &r.status {
        StreamStatus::Failed(m) if r.auth_failure => Some(m.clone()),
        _ => None,
    }) {
        return Err(Error::Auth(auth));
    }
    for r in &mut reports {
        r.custom_field_misfits = output.custom_field_misfits(&r.stream);
    }
    let mut report = RunReport {
        run_id: opts.run_id.clone(),
        streams: reports,
        manifest_key: None,
        interrupted: cancel.reason() == Some(Reason::Signal),
        duration: started.elapsed(),
    };
    report.manifest_key = output.finish(&report).await;
    Ok(report)
}

/// Reads, writes and commits one stream. Never returns an error: the outcome is in the report.
async fn sync_stream(ctx: &RunCtx<'_>, sel: &Selected<'_>) -> StreamReport {
    let stream = sel.stream;
    let started = Instant::now();
    let (bookmark, progress) = {
        let state = ctx.state.lock().await;
        let entry = state.stream(&stream.name);
        (
            entry.and_then(|s| s.bookmark),
            entry.and_then(|s| s.slices.clone()),
        )
    };
    let (bookmark, progress) = if sel.full_refresh {
        (None, None)
    } else {
        (bookmark, progress.filter(|_| stream.is_incremental()))
    };
    let window = window::plan(
        stream,
        bookmark,
        ctx.config.start_date,
        ctx.config.lookback,
        ctx.signpost,
    );
    let mut report = StreamReport::new(&stream.name, window.clone());
    let io = StreamIo::new(
        &ctx.opts.progress,
        &stream.name,
        window.label(),
        progress.is_some(),
    );
    if let Err(e) = ctx.output.stream_started(sel) {
        report.status = StreamStatus::Failed(e.to_string());
        return report;
    }
    let read = StreamRead {
        ctx,
        sel,
        window: &window,
        io: &io,
        indexed: super::deletes::indexed(stream),
        // A window resumed from slices an earlier run committed is not read whole by this
        // run: its ids are no listing (taken for one, every record the stopped run read was
        // tombstoned as deleted).
        complete: window.from.is_none() && progress.as_ref().is_none_or(|p| p.done.is_empty()),
    };
    if read.indexed && read.complete {
        report.read_ids = Some(Default::default());
    }
    let outcome = read.read(progress, &mut report).await;
    let (requests, retries, rate_limited, bytes) = io.stats.snapshot();
    report.requests = requests;
    report.retries = retries;
    report.rate_limited = rate_limited;
    report.bytes_fetched = bytes;
    report.status = match outcome {
        Ok(()) => {
            match commit::commit(ctx, stream, commit::Commit::Window { report: &report }).await {
                Ok(()) => {
                    events::bookmark_advanced(&stream.name, report.rows, report.files.len());
                    // Indexed with the window.
                    report.keys = Default::default();
                    StreamStatus::Committed
                }
                Err(e) => StreamStatus::Failed(format!("commit failed: {e}")),
            }
        }
        Err(StreamFailure::Skipped(reason)) => {
            // Name the exact grant, so the admin knows which box to tick.
            let reason = if reason == MISSING_SCOPE {
                format!("{MISSING_SCOPE} {}", stream.scope)
            } else {
                reason
            };
            events::stream_skipped(&stream.name, &reason);
            StreamStatus::Skipped(reason)
        }
        Err(StreamFailure::Failed {
            message,
            auth,
            transient,
        }) => {
            events::stream_failed(&stream.name, &message);
            report.auth_failure = auth;
            report.transient_failure = transient;
            StreamStatus::Failed(message)
        }
        Err(StreamFailure::Interrupted) => StreamStatus::Interrupted,
    };
    report.duration = started.elapsed();
    io.done(report.status.label());
    ctx.output.stream_finished(stream, &report);
    report
}

/// Refuses a `--state-file` that cannot be written (a configuration error: the flag names it).
pub fn check_state_file(path: &std::path::Path) -> Result<(), Error> {
    crate::state::check_file_writable(path).map_err(|e| {
        Error::Config(format!(
            "--state-file: {e}. Choose a path in a writable folder."
        ))
    })
}

/// [`window::check_bookmarks`] for the streams of this run that read from their bookmark.
fn check_bookmarks(
    state: &State,
    streams: &[Selected<'_>],
    signpost: chrono::DateTime<chrono::Utc>,
) -> Result<(), window::BadBookmark> {
    let from_bookmark = streams.iter().filter(|s| !s.full_refresh).map(|s| s.stream);
    window::check_bookmarks(state, from_bookmark, signpost)
}

fn fetch_to_run_error(e: FetchError) -> Error {
    match e {
        FetchError::Auth(m) => Error::Auth(m),
        FetchError::TokenUnavailable(m) => Error::TokenUnavailable(m),
        other => Error::Fatal(format!("could not obtain a token: {other}")),
    }
}
