//! The run lifecycle: one client and one rate budget for the run, every selected stream
//! scheduled at once under a pool of unit slots, each stream's outcome turned into its report.
//!
//! Contract: a stream that fails or lacks its scope is reported and skipped; the others still
//! commit. An authentication failure fails the whole run (every stream would fail the same way).
//! Nothing here knows where records go beyond choosing the output for an entry point
//! ([`run`]: Parquet under the destination's lease; [`run_messages`]: protocol messages).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::config::Config;
use crate::error::Error;
use crate::events;
use crate::harvest::{FetchError, HarvestClient};
use crate::registry::Registry;
use crate::state::{State, StateError, StateStore};
use crate::storage::Destination;

/// Runs a sync into Parquet on `dest`, holding the destination's lease for the whole run.
/// `cancel` is set by the caller (the CLI's signal handler) to stop early.
pub async fn run(
    config: &Config,
    registry: &Registry,
    dest: &Destination,
    opts: &SyncOptions,
    cancel: Arc<AtomicBool>,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let streams: Vec<Selected> = config
        .selected(registry)?
        .into_iter()
        .map(Selected::all)
        .collect();
    let store = StateStore::new(dest.store.clone(), dest.prefix.clone())
        .single_writer(config.single_writer);
    let lease = store
        .acquire_lease(&opts.run_id, opts.lease_ttl)
        .await
        .map_err(StateError::into_error)?;
    let heartbeat = lease.spawn_heartbeat(opts.lease_ttl / 4);
    let result = async {
        let mut state = match &opts.state_file {
            Some(path) if path.exists() => crate::state::load_file(path)
                .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?,
            _ => store.load().await.map_err(StateError::into_error)?,
        };
        let output = ParquetOutput::new(dest, &store, &lease, opts, &config.policies);
        output.adopt(&mut state).await;
        events::sync_started(&opts.run_id, streams.len(), &dest.url);
        run_with(config, &streams, state, &output, opts, cancel, started).await
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
    cancel: Arc<AtomicBool>,
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
    cancel: Arc<AtomicBool>,
    started: Instant,
) -> Result<RunReport, Error> {
    let client = HarvestClient::new(config).map_err(|e| Error::Fatal(e.to_string()))?;
    client.set_observer(opts.progress.clone());
    client.authenticate().await.map_err(fetch_to_run_error)?;
    let signpost = opts.signpost();
    events::signpost(&signpost.to_rfc3339());
    // Largest streams first (by what their last run wrote), so the longest chains start early
    // and the end of the run is not one big stream read alone.
    let mut order: Vec<&Selected> = streams.iter().collect();
    order.sort_by_key(|s| std::cmp::Reverse(state.stream(&s.stream.name).map_or(0, |e| e.rows)));
    let ctx = RunCtx {
        config,
        opts,
        client: &client,
        signpost,
        state: Mutex::new(state),
        output,
        cancel: cancel.clone(),
        units: Semaphore::new(config.concurrency),
    };
    let mut reports: Vec<StreamReport> =
        futures::future::join_all(order.into_iter().map(|s| sync_stream(&ctx, s))).await;
    reports.sort_by(|a, b| a.stream.cmp(&b.stream));

    if let Some(auth) = reports.iter().find_map(|r| match &r.status {
        StreamStatus::Failed(m) if r.auth_failure => Some(m.clone()),
        _ => None,
    }) {
        return Err(Error::Auth(auth));
    }
    let mut report = RunReport {
        run_id: opts.run_id.clone(),
        streams: reports,
        manifest_key: None,
        interrupted: cancel.load(Ordering::SeqCst),
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
    };
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

fn fetch_to_run_error(e: FetchError) -> Error {
    match e {
        FetchError::Auth(m) => Error::Auth(m),
        other => Error::Fatal(format!("could not obtain a token: {other}")),
    }
}
