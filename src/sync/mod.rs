//! The sync engine: for each selected stream, plan a window, fetch its pages, convert them to
//! Arrow, write Parquet, and commit the stream's bookmark once its files are durably written.
//!
//! Contract:
//! - The signpost (upper bound of every incremental window) is fixed once, at run start, a small
//!   skew before now. A bookmark only ever moves to a signpost, and only after every page of that
//!   stream's window was read and its files closed (object store put/multipart complete).
//! - Streams run concurrently (`concurrency`) under the one shared rate budget of the client.
//! - A stream that fails or lacks its scope is reported and skipped; the others still commit.
//!   An authentication failure stops the run (every stream would fail the same way).
//! - One run per destination at a time: the run holds the state lease for its whole life; a second
//!   run fails fast with the conflict exit code and changes nothing.
//! - Interruption (SIGINT/SIGTERM) stops fetching, aborts in-flight files (no partial object stays
//!   behind; complete files of an uncommitted stream are deleted) and leaves committed streams
//!   committed. Nothing here holds a whole stream in memory: pages flow through a bounded channel.

pub mod output;
pub mod slicing;
pub mod summary;
pub mod window;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use tokio::sync::{Mutex, Semaphore, mpsc};

use crate::config::Config;
use crate::convert::Converter;
use crate::error::{Error, ExitCode};
use crate::harvest::{FetchError, Forbidden, HarvestClient, Page, RequestStats};
use crate::progress::{RunProgress, StreamProgress};
use crate::registry::{Registry, Stream};
use crate::sink::{RollingWriter, SinkConfig, WrittenFile};
use crate::state::{
    Lease, Manifest, ManifestFile, ManifestStream, Slice, Slices, State, StateStore,
};
use crate::storage::Destination;
use output::{MessageSink, UnitWriter, WriteError};
use summary::{StreamReport, StreamStatus};
use window::{Range, Window};

/// How far behind "now" the signpost sits: records committed by Greenhouse in the last moments
/// before the run started may not be visible yet.
const SIGNPOST_SKEW: Duration = Duration::from_secs(5);
/// Test hook, not for production: overrides [`SIGNPOST_SKEW`] (milliseconds), so end-to-end
/// tests that change the simulator and sync again need not wait five seconds. An environment
/// variable rather than a CLI flag because the Singer and Airbyte invocations have fixed
/// command lines; a skew smaller than Greenhouse's commit lag can miss records for good.
pub const ENV_SIGNPOST_SKEW_MS: &str = "GREENHOUSE_SIGNPOST_SKEW_MS";
/// Pages buffered between the fetcher and the writer of one stream (bounds memory).
const PAGE_BUFFER: usize = 2;
/// Times a window is restarted after its cursor expired.
const MAX_WINDOW_RESTARTS: u32 = 3;
/// Times a page that fails to parse is fetched again.
const MAX_BAD_BODY_REFETCHES: u32 = 3;

/// Run-level options that are not part of the user's configuration file.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub lease_ttl: Duration,
    /// How far before `started_at` the signpost sits ([`signpost_skew`]).
    pub signpost_skew: Duration,
    pub sink: SinkConfig,
    /// Singer-style state file: read instead of the destination's state, rewritten after every
    /// commit (the destination's state generations are still written).
    pub state_file: Option<std::path::PathBuf>,
    /// Live progress (drawn only on a terminal; see [`crate::progress`]).
    pub progress: Arc<RunProgress>,
}

impl SyncOptions {
    pub fn new() -> Self {
        let started_at = Utc::now();
        SyncOptions {
            run_id: uuid::Uuid::now_v7().to_string(),
            started_at,
            lease_ttl: Duration::from_secs(120),
            signpost_skew: signpost_skew(),
            sink: SinkConfig::default(),
            state_file: None,
            progress: RunProgress::disabled(),
        }
    }
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// What a finished run reports.
#[derive(Debug)]
pub struct RunReport {
    pub run_id: String,
    pub streams: Vec<StreamReport>,
    pub manifest_key: Option<String>,
    pub interrupted: bool,
    pub duration: Duration,
}

impl RunReport {
    pub fn exit_code(&self) -> ExitCode {
        if self.interrupted {
            ExitCode::Interrupted
        } else if self
            .streams
            .iter()
            .all(|s| s.status == StreamStatus::Committed)
        {
            ExitCode::Success
        } else {
            ExitCode::Partial
        }
    }
}

/// A flag set by the first SIGINT or SIGTERM: the run stops reading, aborts in-flight files and
/// exits with the interrupted code. A second signal exits at once.
pub fn cancel_on_signals() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        for _ in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(ExitCode::Interrupted.code());
            }
            tracing::warn!(
                event = "interrupted",
                "Interrupted: finishing in-flight requests, aborting open files"
            );
        }
    });
    flag
}

/// One stream as a run reads it.
#[derive(Debug, Clone)]
pub struct Selected<'r> {
    pub stream: &'r Stream,
    /// The selected fields (protocol modes); `None` = every field.
    pub fields: Option<BTreeSet<String>>,
    /// Ignore the saved bookmark and read the whole history (a full-refresh sync of an
    /// incremental stream, as an Airbyte catalog may ask).
    pub full_refresh: bool,
}

impl<'r> Selected<'r> {
    pub fn all(stream: &'r Stream) -> Self {
        Selected {
            stream,
            fields: None,
            full_refresh: false,
        }
    }
}

/// Where the records of a run go.
enum Output<'a> {
    /// Typed Parquet on the destination; state generations beside the data, under the lease.
    Parquet {
        dest: &'a Destination,
        store: &'a StateStore,
        lease: &'a Lease,
    },
    /// Protocol messages; state is emitted through the sink after the records it covers.
    Messages(Arc<dyn MessageSink>),
}

/// Shared by every stream task of one run.
struct RunCtx<'a> {
    config: &'a Config,
    opts: &'a SyncOptions,
    client: &'a HarvestClient,
    signpost: DateTime<Utc>,
    /// The committed state; commits are serialised through this lock.
    state: Mutex<State>,
    output: Output<'a>,
    cancel: Arc<AtomicBool>,
    /// Units of work (a whole window, or one slice) running at once, across all streams.
    units: Semaphore,
}

/// The run's signpost: the upper bound of every incremental window, fixed once at run start.
pub fn signpost(started_at: DateTime<Utc>, skew: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(skew)
        .ok()
        .and_then(|d| started_at.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The signpost skew: [`SIGNPOST_SKEW`], unless the test hook [`ENV_SIGNPOST_SKEW_MS`] is set.
pub fn signpost_skew() -> Duration {
    match std::env::var(ENV_SIGNPOST_SKEW_MS) {
        Err(_) => SIGNPOST_SKEW,
        Ok(v) => v.trim().parse().map(Duration::from_millis).unwrap_or_else(|_| {
            tracing::warn!(variable = ENV_SIGNPOST_SKEW_MS, value = %v, "Ignoring a signpost skew that is not a number of milliseconds");
            SIGNPOST_SKEW
        }),
    }
}

/// Runs a sync into Parquet on `dest`. `cancel` is set by the signal handler to stop early.
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
    let store = StateStore::new(dest.store.clone(), dest.prefix.clone());
    let lease = store
        .acquire_lease(&opts.run_id, opts.lease_ttl)
        .await
        .map_err(state_error)?;
    let heartbeat = lease.spawn_heartbeat(opts.lease_ttl / 4);
    let result = async {
        let state = match &opts.state_file {
            Some(path) if path.exists() => crate::state::load_file(path)
                .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?,
            _ => store.load().await.map_err(state_error)?,
        };
        let output = Output::Parquet {
            dest,
            store: &store,
            lease: &lease,
        };
        tracing::info!(event = "sync_started", run_id = %opts.run_id, streams = streams.len(), destination = %dest.url, "Sync started");
        let mut report = run_streams(config, &streams, state, output, opts, cancel, started).await?;
        let manifest = manifest_of(&report, opts);
        match store.write_manifest(&opts.run_id, &manifest).await {
            Ok(key) => report.manifest_key = Some(key),
            Err(e) => {
                tracing::warn!(event = "manifest_failed", error = %e, "Could not write the run manifest")
            }
        }
        Ok(report)
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
    run_streams(
        config,
        streams,
        state,
        Output::Messages(sink),
        opts,
        cancel,
        started,
    )
    .await
}

async fn run_streams(
    config: &Config,
    streams: &[Selected<'_>],
    state: State,
    output: Output<'_>,
    opts: &SyncOptions,
    cancel: Arc<AtomicBool>,
    started: Instant,
) -> Result<RunReport, Error> {
    let client = HarvestClient::new(config).map_err(|e| Error::Fatal(e.to_string()))?;
    client.set_progress(opts.progress.clone());
    client.authenticate().await.map_err(fetch_to_run_error)?;
    let signpost = signpost(opts.started_at, opts.signpost_skew);
    tracing::debug!(event = "signpost", signpost = %signpost.to_rfc3339(), "Windows end at the signpost");
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
    Ok(RunReport {
        run_id: opts.run_id.clone(),
        streams: reports,
        manifest_key: None,
        interrupted: cancel.load(Ordering::SeqCst),
        duration: started.elapsed(),
    })
}

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
                            .map(|e| crate::logging::scrub(e).into_owned()),
                    },
                )
            })
            .collect(),
    }
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
    let io = StreamIo {
        stats: Arc::new(RequestStats::default()),
        line: std::sync::OnceLock::new(),
        run: &ctx.opts.progress,
        name: &stream.name,
        window: window.label(),
        resumed: progress.is_some(),
    };
    if let Output::Messages(sink) = &ctx.output
        && let Err(e) = sink.stream_started(stream, sel.fields.as_ref())
    {
        report.status = StreamStatus::Failed(format!("writing messages failed: {e}"));
        return report;
    }
    let outcome = read_stream(ctx, sel, &window, progress, &io, &mut report).await;
    let (requests, retries, rate_limited, bytes) = io.stats.snapshot();
    report.requests = requests;
    report.retries = retries;
    report.rate_limited = rate_limited;
    report.bytes_fetched = bytes;
    match outcome {
        Ok(()) => match commit(ctx, stream, Commit::Window { report: &report }).await {
            Ok(()) => {
                report.status = StreamStatus::Committed;
                tracing::info!(event = "bookmark_advanced", stream = %stream.name, rows = report.rows, files = report.files.len(), "Bookmark advanced");
            }
            Err(e) => {
                report.status = StreamStatus::Failed(format!("commit failed: {e}"));
            }
        },
        Err(StreamFailure::Skipped(reason)) => {
            // Name the exact grant, so the admin knows which box to tick.
            let reason = if reason == MISSING_SCOPE {
                format!("{MISSING_SCOPE} {}", stream.scope)
            } else {
                reason
            };
            tracing::warn!(event = "stream_skipped", stream = %stream.name, reason = %reason, "Stream skipped");
            report.status = StreamStatus::Skipped(reason);
        }
        Err(StreamFailure::Failed {
            message,
            auth,
            transient,
        }) => {
            tracing::error!(event = "stream_failed", stream = %stream.name, error = %message, "Stream failed");
            report.auth_failure = auth;
            report.transient_failure = transient;
            report.status = StreamStatus::Failed(message);
        }
        Err(StreamFailure::Interrupted) => {
            report.status = StreamStatus::Interrupted;
        }
    }
    report.duration = started.elapsed();
    if let Some(line) = io.line.get() {
        line.done(report.status.label());
    }
    if let Output::Messages(sink) = &ctx.output
        && let Err(e) = sink.stream_finished(stream, &report)
    {
        tracing::warn!(event = "messages_failed", stream = %stream.name, error = %e, "Could not write the stream status");
    }
    report
}

const MISSING_SCOPE: &str = "missing scope";

enum StreamFailure {
    Skipped(String),
    /// `transient`: the API stayed unavailable through every retry; a later run may succeed.
    Failed {
        message: String,
        auth: bool,
        transient: bool,
    },
    Interrupted,
}

impl StreamFailure {
    fn failed(message: impl Into<String>) -> Self {
        StreamFailure::Failed {
            message: message.into(),
            auth: false,
            transient: false,
        }
    }
}

impl From<FetchError> for StreamFailure {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::Forbidden { reason, .. } => StreamFailure::Skipped(match reason {
                Forbidden::MissingScope => MISSING_SCOPE.to_string(),
                Forbidden::NotSiteAdmin => "not a Site Admin".to_string(),
            }),
            FetchError::Auth(m) => StreamFailure::Failed {
                message: m,
                auth: true,
                transient: false,
            },
            FetchError::Unavailable(m) => StreamFailure::Failed {
                message: m,
                auth: false,
                transient: true,
            },
            other => StreamFailure::failed(other.to_string()),
        }
    }
}

/// Per-stream counters and progress line, shared by the stream's units.
struct StreamIo<'a> {
    stats: Arc<RequestStats>,
    /// The progress line, drawn from the moment the stream's first unit gets to run (every
    /// stream is scheduled at once; most wait for a slot).
    line: std::sync::OnceLock<StreamProgress>,
    run: &'a RunProgress,
    name: &'a str,
    window: String,
    resumed: bool,
}

impl StreamIo<'_> {
    /// The stream's progress line; the first call also logs that the stream started.
    fn progress(&self) -> &StreamProgress {
        self.line.get_or_init(|| {
            tracing::info!(
                event = "stream_started",
                stream = %self.name,
                window = %self.window,
                resumed_slices = self.resumed,
                "Stream started"
            );
            self.run.stream(self.name, &self.window)
        })
    }
}

/// What one unit of work added to its stream.
#[derive(Debug, Default)]
struct Tally {
    rows: u64,
    pages: u64,
    extra_fields: u64,
    type_mismatches: u64,
    null_violations: u64,
    files: Vec<WrittenFile>,
}

impl Tally {
    fn add_to(self, report: &mut StreamReport) {
        report.rows += self.rows;
        report.pages += self.pages;
        report.extra_fields += self.extra_fields;
        report.type_mismatches += self.type_mismatches;
        report.null_violations += self.null_violations;
        report.files.extend(self.files);
    }
}

/// How a unit ended.
enum UnitEnd {
    /// Every page read and written, the writer closed.
    Complete,
    /// The probe found the window large: read it as these slices instead (nothing was written).
    Split(Slices),
}

/// Reads the stream's window: as one chain, or — when the probe finds a large backfill, or an
/// earlier run left slice progress — as slices read concurrently and committed one by one.
async fn read_stream(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    window: &Window,
    progress: Option<Slices>,
    io: &StreamIo<'_>,
    report: &mut StreamReport,
) -> Result<(), StreamFailure> {
    let stream = sel.stream;
    let lookback = chrono::Duration::from_std(ctx.config.lookback).unwrap_or_default();
    let plan = match progress {
        Some(p) => p.resumed(ctx.signpost, lookback),
        None => {
            let probe = stream.is_incremental()
                && ctx.config.backfill_slices > 1
                && window
                    .to
                    .is_some_and(|to| slicing::is_backfill(window.from, to));
            let mut tally = Tally::default();
            let end = read_unit(
                ctx,
                sel,
                Range::whole(window),
                window,
                None,
                probe,
                io,
                &mut tally,
            )
            .await;
            tally.add_to(report);
            match end? {
                UnitEnd::Complete => return Ok(()),
                UnitEnd::Split(plan) => plan,
            }
        }
    };
    let pending = plan.pending();
    report.slices = plan.ranges().len();
    tracing::info!(
        event = "stream_sliced",
        stream = %stream.name,
        slices = report.slices,
        pending = pending.len(),
        "Reading the window as slices"
    );
    io.progress()
        .set_window(&format!("{} ({} slices)", window.label(), report.slices));
    let plan = &plan;
    let results: Vec<(Tally, Result<(), StreamFailure>)> =
        futures::stream::iter(pending.into_iter().enumerate())
            .map(|(i, slice)| async move {
                let mut tally = Tally::default();
                let tag = format!("s{i:02}");
                let range = Range::slice(&slice, plan.window_to);
                let end =
                    read_unit(ctx, sel, range, window, Some(&tag), false, io, &mut tally).await;
                let result = match end {
                    Ok(_) => commit(
                        ctx,
                        stream,
                        Commit::Slice {
                            plan,
                            done: slice,
                            tally: &tally,
                        },
                    )
                    .await
                    .map_err(|e| StreamFailure::failed(format!("commit failed: {e}"))),
                    Err(e) => Err(e),
                };
                if result.is_err() {
                    // A slice that is not committed leaves no file behind.
                    delete_files(ctx, std::mem::take(&mut tally.files)).await;
                }
                (tally, result)
            })
            .buffer_unordered(ctx.config.backfill_slices.max(1))
            .collect()
            .await;
    let mut first_error = None;
    for (tally, result) in results {
        tally.add_to(report);
        if let Err(e) = result {
            // Prefer a real failure over the interruption it may have caused elsewhere.
            if first_error.is_none() || matches!(first_error, Some(StreamFailure::Interrupted)) {
                first_error = Some(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

async fn delete_files(ctx: &RunCtx<'_>, files: Vec<WrittenFile>) {
    if let Output::Parquet { dest, .. } = &ctx.output {
        for f in files {
            if let Err(e) = dest.store.delete(&f.key).await {
                tracing::warn!(key = %f.key, error = %e, "Could not delete an uncommitted data file");
            }
        }
    }
}

/// A new writer for one unit of `sel`'s stream.
fn unit_writer(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    tag: Option<&str>,
) -> Result<UnitWriter, StreamFailure> {
    let stream = sel.stream;
    let policy = ctx
        .config
        .policies
        .get(&stream.name)
        .cloned()
        .unwrap_or_default();
    match &ctx.output {
        Output::Parquet { dest, .. } => {
            let converter = Converter::new(stream, &ctx.opts.run_id, ctx.opts.started_at);
            let schema = policy.schema(&converter.schema());
            let mut writer = RollingWriter::new(
                dest.store.clone(),
                &dest.prefix,
                stream,
                &ctx.opts.run_id,
                ctx.opts.started_at,
                schema.clone(),
                ctx.opts.sink.clone(),
            )
            .map_err(|e| StreamFailure::failed(e.to_string()))?;
            if let Some(tag) = tag {
                writer = writer.with_file_tag(tag);
            }
            Ok(UnitWriter::Parquet {
                converter: Box::new(converter),
                policy,
                schema,
                writer: Box::new(writer),
            })
        }
        Output::Messages(sink) => Ok(UnitWriter::Messages {
            sink: sink.clone(),
            stream: Box::new(stream.clone()),
            fields: sel.fields.clone(),
            policy,
            extracted_at: ctx.opts.started_at,
        }),
    }
}

/// Reads one range of the stream (every partition) into a new writer, holding one of the run's
/// unit slots. With `probe`, the first page decides whether the window should be sliced
/// instead; then nothing is written and the plan is returned.
#[allow(clippy::too_many_arguments)]
async fn read_unit(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    range: Range,
    window: &Window,
    tag: Option<&str>,
    probe: bool,
    io: &StreamIo<'_>,
    tally: &mut Tally,
) -> Result<UnitEnd, StreamFailure> {
    let Ok(_slot) = ctx.units.acquire().await else {
        return Err(StreamFailure::failed("the run's work pool closed"));
    };
    if ctx.cancel.load(Ordering::SeqCst) {
        return Err(StreamFailure::Interrupted);
    }
    io.progress();
    let mut writer = unit_writer(ctx, sel, tag)?;
    let result = read_partitions(ctx, sel, range, window, probe, io, &mut writer, tally).await;
    match result {
        Ok(None) => {
            tally.files = writer
                .close()
                .await
                .map_err(|e| StreamFailure::failed(e.to_string()))?;
            Ok(UnitEnd::Complete)
        }
        Ok(Some(plan)) => {
            writer.abort().await;
            Ok(UnitEnd::Split(plan))
        }
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    }
}

/// The fetch → write loop over every partition of one range. Returns a slice plan when the
/// probe decided to split instead.
#[allow(clippy::too_many_arguments)]
async fn read_partitions(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    range: Range,
    window: &Window,
    probe: bool,
    io: &StreamIo<'_>,
    writer: &mut UnitWriter,
    tally: &mut Tally,
) -> Result<Option<Slices>, StreamFailure> {
    let stream = sel.stream;
    for (index, params) in window::first_page_params(stream, &range)
        .into_iter()
        .enumerate()
    {
        let first = ctx.client.first_page_url(&stream.resource, &params, None);
        // The probe's first page is fetched on its own: the pipeline below reads ahead, and a
        // chain that is abandoned for slices must not cost more than this one request.
        let mut head = None;
        if probe && index == 0 {
            let page = ctx.client.get_page(&first, &io.stats).await?;
            if page.next.is_some()
                && let Some(plan) =
                    plan_slices(ctx, sel, &params, window, &page.body, &io.stats).await
            {
                return Ok(Some(plan));
            }
            head = Some((first.clone(), page));
        }
        read_chain(ctx, stream, first, head, io, writer, tally).await?;
    }
    Ok(None)
}

/// Reads one cursor chain from `first` (or from an already fetched first page), restarting the
/// window when its cursor expires.
async fn read_chain(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    first: url::Url,
    mut head: Option<(url::Url, Page)>,
    io: &StreamIo<'_>,
    writer: &mut UnitWriter,
    tally: &mut Tally,
) -> Result<(), StreamFailure> {
    let mut restarts = 0u32;
    // Ids at or above this were written before a window restart (pages are id-descending).
    let mut lowest_written: Option<i64> = None;
    loop {
        let (tx, mut rx) = mpsc::channel::<Result<(url::Url, Page), FetchError>>(PAGE_BUFFER);
        let head_page = head.take();
        let start = match &head_page {
            Some((_, page)) => page.next.clone(),
            None => Some(first.clone()),
        };
        let fetcher = {
            let client = ctx.client;
            let stats = io.stats.clone();
            let cancel = ctx.cancel.clone();
            async move {
                if let Some(h) = head_page
                    && tx.send(Ok(h)).await.is_err()
                {
                    return;
                }
                let mut next = start;
                while let Some(url) = next {
                    if cancel.load(Ordering::SeqCst) {
                        return;
                    }
                    let page = client.get_page(&url, &stats).await;
                    next = page.as_ref().ok().and_then(|p| p.next.clone());
                    if tx.send(page.map(|p| (url, p))).await.is_err() {
                        return;
                    }
                }
            }
        };
        // On an early return the fetcher may be parked on a full channel: closing the channel
        // afterwards wakes it (its next send fails), so `join!` cannot deadlock.
        let consumer = async {
            let outcome = async {
                while let Some(item) = rx.recv().await {
                    if ctx.cancel.load(Ordering::SeqCst) {
                        return Err(StreamFailure::Interrupted);
                    }
                    let (url, mut page) = match item {
                        Ok(p) => p,
                        Err(FetchError::CursorExpired) => return Ok(false),
                        Err(e) => return Err(e.into()),
                    };
                    let mut refetches = 0;
                    let (out, ids) = loop {
                        match writer.write_page(&page.body, lowest_written).await {
                            Ok(done) => break done,
                            Err(WriteError::Unreadable(e)) if refetches < MAX_BAD_BODY_REFETCHES => {
                                refetches += 1;
                                tracing::warn!(event = "page_refetched", stream = %stream.name, error = %e, "Unreadable page, fetching it again");
                                page = ctx.client.get_page(&url, &io.stats).await?;
                            }
                            Err(WriteError::Unreadable(e)) => {
                                return Err(StreamFailure::failed(format!("unreadable page: {e}")));
                            }
                            Err(WriteError::Output(e)) => return Err(StreamFailure::failed(e)),
                        }
                    };
                    if let Some(min) = ids.iter().min() {
                        lowest_written = Some(lowest_written.map_or(*min, |l| l.min(*min)));
                    }
                    tally.pages += 1;
                    tally.rows += out.rows;
                    io.progress().page(out.rows);
                    tally.extra_fields += out.extra_fields;
                    tally.type_mismatches += out.type_mismatches;
                    tally.null_violations += out.null_violations;
                }
                if ctx.cancel.load(Ordering::SeqCst) {
                    return Err(StreamFailure::Interrupted);
                }
                Ok(true)
            }
            .await;
            rx.close();
            outcome
        };
        let ((), finished) = tokio::join!(fetcher, consumer);
        if finished? {
            return Ok(());
        }
        restarts += 1;
        if restarts > MAX_WINDOW_RESTARTS {
            return Err(StreamFailure::failed(format!(
                "the pagination cursor expired {restarts} times; the window could not be read"
            )));
        }
        tracing::warn!(event = "window_restarted", stream = %stream.name, restarts, "Cursor expired, restarting the window");
    }
}

/// Decides from the probe page whether the window deserves slices, and where to cut it (see
/// [`slicing`]). `None`: read it as one chain.
async fn plan_slices(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    params: &BTreeMap<String, String>,
    window: &Window,
    body: &[u8],
    stats: &Arc<RequestStats>,
) -> Option<Slices> {
    let stream = sel.stream;
    let to = window.to?;
    let sample = slicing::sample(body, stream.cursor_field()?)?;
    let (max, per_slice) = (ctx.config.backfill_slices, ctx.config.backfill_slice_pages);
    let worth_slicing =
        |lower| slicing::slice_count(slicing::estimate_pages(&sample, lower), per_slice, max) >= 2;
    // Even from the earliest plausible start the window would not fill two slices: one chain.
    let floor = window.from.unwrap_or_else(slicing::search_floor);
    if !worth_slicing(floor) {
        return None;
    }
    let lower = match window.from {
        Some(from) => from,
        None => search_lower_bound(ctx, stream, params, &sample, &worth_slicing, stats).await?,
    };
    let n = slicing::slice_count(slicing::estimate_pages(&sample, lower), per_slice, max);
    let cuts = slicing::cuts(lower, to, n);
    if cuts.is_empty() {
        return None;
    }
    tracing::debug!(event = "slices_planned", stream = %stream.name, slices = cuts.len() + 1, lower = %lower.to_rfc3339(), "Window will be read as slices");
    Some(Slices {
        window_from: window.from,
        window_to: to,
        cuts,
        done: Vec::new(),
    })
}

/// Finds roughly where the oldest record of a window without a lower bound is, with at most
/// [`slicing::SEARCH_STEPS`] one-row requests (`per_page=1&fields=id`), bisecting between the
/// search floor and the probe page's oldest cursor. No record before `lo` means the window is no
/// larger than the estimate from `lo`: once that no longer `qualifies` for slicing, the search
/// stops and returns `None` (read one chain). A failed request ends the search early.
async fn search_lower_bound(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    params: &BTreeMap<String, String>,
    sample: &slicing::Sample,
    qualifies: &dyn Fn(DateTime<Utc>) -> bool,
    stats: &Arc<RequestStats>,
) -> Option<DateTime<Utc>> {
    let filter = stream.window_filter()?;
    let (mut lo, mut hi) = (slicing::search_floor(), sample.oldest);
    for _ in 0..slicing::SEARCH_STEPS {
        if hi - lo <= chrono::Duration::days(1) {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        let mut p = params.clone();
        let range = Range {
            from: None,
            to: Some(mid),
            to_inclusive: false,
        };
        p.insert(filter.to_string(), range.filter_value().unwrap_or_default());
        p.insert("fields".to_string(), "id".to_string());
        let url = ctx.client.first_page_url(&stream.resource, &p, Some(1));
        match ctx.client.get_page(&url, stats).await {
            Ok(page) if page.body.contains(&b'{') => hi = mid,
            Ok(_) => {
                lo = mid;
                if !qualifies(lo) {
                    return None;
                }
            }
            Err(e) => {
                tracing::debug!(stream = %stream.name, error = %e, "Lower-bound search stopped");
                break;
            }
        }
    }
    Some(lo)
}

/// What a commit records.
enum Commit<'a> {
    /// One slice of a sliced window is durably written.
    Slice {
        plan: &'a Slices,
        done: Slice,
        tally: &'a Tally,
    },
    /// The whole window is durably written: the bookmark moves to the signpost.
    Window { report: &'a StreamReport },
}

/// Records progress in a new state generation (Parquet) or a STATE message (protocol modes).
async fn commit(ctx: &RunCtx<'_>, stream: &Stream, what: Commit<'_>) -> Result<(), Error> {
    let mut state = ctx.state.lock().await;
    let mut next = state.clone();
    let entry = next.streams.entry(stream.name.clone()).or_default();
    match what {
        Commit::Slice { plan, done, tally } => {
            let slices = entry.slices.get_or_insert_with(|| plan.clone());
            if slices.window_to != plan.window_to || slices.cuts != plan.cuts {
                *slices = plan.clone();
            }
            slices.mark_done(done.from, done.to);
            entry.rows += tally.rows;
            entry.files += tally.files.len() as u64;
        }
        Commit::Window { report } => {
            if stream.is_incremental() {
                entry.bookmark = Some(ctx.signpost);
            }
            entry.slices = None;
            entry.rows = report.rows;
            entry.files = report.files.len() as u64;
        }
    }
    entry.run_id = Some(ctx.opts.run_id.clone());
    entry.committed_at = Some(Utc::now());
    next.last_run_id = Some(ctx.opts.run_id.clone());
    next.updated_at = Some(Utc::now());
    match &ctx.output {
        Output::Parquet { store, lease, .. } => {
            if lease.lost() {
                return Err(Error::Conflict(format!(
                    "this run lost its lease on the destination ({}); another run took over",
                    lease.lost_reason().unwrap_or_default()
                )));
            }
            if ctx.opts.state_file.is_some() {
                // Bookmarks come from the state file; generations are numbered by the destination.
                next.generation = store
                    .generations()
                    .await
                    .map_err(state_error)?
                    .last()
                    .copied()
                    .unwrap_or(0);
            }
            let committed = store.commit(lease, next).await.map_err(state_error)?;
            if let Some(path) = &ctx.opts.state_file {
                crate::state::save_file(path, &committed).map_err(|e| {
                    Error::Fatal(format!(
                        "cannot write the state file {}: {e}",
                        path.display()
                    ))
                })?;
            }
            *state = committed;
        }
        Output::Messages(sink) => {
            next.generation += 1;
            sink.state(stream, &next)
                .map_err(|e| Error::Fatal(format!("writing the state message failed: {e}")))?;
            *state = next;
        }
    }
    Ok(())
}

pub(crate) fn state_error(e: crate::state::StateError) -> Error {
    match e {
        crate::state::StateError::Store(m) => Error::Destination(format!(
            "{m}. Check that the destination is reachable and writable with these credentials (URL, AWS_ENDPOINT and region, network, permissions); `greenhouse-extract check` probes it"
        )),
        other => other.into_error(),
    }
}

fn fetch_to_run_error(e: FetchError) -> Error {
    match e {
        FetchError::Auth(m) => Error::Auth(m),
        other => Error::Fatal(format!("could not obtain a token: {other}")),
    }
}
