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

pub mod summary;
pub mod window;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use tokio::sync::{Mutex, mpsc};

use crate::config::Config;
use crate::convert::Converter;
use crate::error::{Error, ExitCode};
use crate::harvest::{FetchError, Forbidden, HarvestClient, Page, RequestStats};
use crate::privacy::ColumnPolicy;
use crate::progress::{RunProgress, StreamProgress};
use crate::registry::{Registry, Stream};
use crate::sink::{RollingWriter, SinkConfig, WrittenFile};
use crate::state::{Lease, Manifest, ManifestFile, ManifestStream, State, StateStore};
use crate::storage::Destination;
use arrow_schema::SchemaRef;
use summary::{StreamReport, StreamStatus};
use window::Window;

/// How far behind "now" the signpost sits: records committed by Greenhouse in the last moments
/// before the run started may not be visible yet.
const SIGNPOST_SKEW: Duration = Duration::from_secs(5);
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

/// Shared by every stream task of one run.
struct RunCtx<'a> {
    config: &'a Config,
    opts: &'a SyncOptions,
    client: &'a HarvestClient,
    dest: &'a Destination,
    signpost: DateTime<Utc>,
    /// The committed state; commits are serialised through this lock.
    state: Mutex<State>,
    store: &'a StateStore,
    lease: &'a Lease,
    cancel: Arc<AtomicBool>,
}

/// The run's signpost: the upper bound of every incremental window, fixed once at run start.
pub fn signpost(started_at: DateTime<Utc>) -> DateTime<Utc> {
    started_at - chrono::Duration::from_std(SIGNPOST_SKEW).expect("small constant duration")
}

/// Runs a sync. `cancel` is set by the signal handler to stop early.
pub async fn run(
    config: &Config,
    registry: &Registry,
    dest: &Destination,
    opts: &SyncOptions,
    cancel: Arc<AtomicBool>,
) -> Result<RunReport, Error> {
    let started = Instant::now();
    let streams = config.selected(registry)?;
    let store = StateStore::new(dest.store.clone(), dest.prefix.clone());
    let lease = store
        .acquire_lease(&opts.run_id, opts.lease_ttl)
        .await
        .map_err(state_error)?;
    let heartbeat = lease.spawn_heartbeat(opts.lease_ttl / 4);
    let result = run_locked(
        config, &streams, dest, opts, &store, &lease, cancel, started,
    )
    .await;
    heartbeat.abort();
    lease.release().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_locked(
    config: &Config,
    streams: &[&Stream],
    dest: &Destination,
    opts: &SyncOptions,
    store: &StateStore,
    lease: &Lease,
    cancel: Arc<AtomicBool>,
    started: Instant,
) -> Result<RunReport, Error> {
    let state = match &opts.state_file {
        Some(path) if path.exists() => crate::state::load_file(path)
            .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?,
        _ => store.load().await.map_err(state_error)?,
    };
    let client = HarvestClient::new(config).map_err(|e| Error::Fatal(e.to_string()))?;
    client.set_progress(opts.progress.clone());
    client.authenticate().await.map_err(fetch_to_run_error)?;
    let signpost = signpost(opts.started_at);
    tracing::info!(
        event = "sync_started",
        run_id = %opts.run_id,
        streams = streams.len(),
        destination = %dest.url,
        signpost = %signpost.to_rfc3339(),
        "Sync started"
    );
    let ctx = RunCtx {
        config,
        opts,
        client: &client,
        dest,
        signpost,
        state: Mutex::new(state),
        store,
        lease,
        cancel: cancel.clone(),
    };
    let mut reports: Vec<StreamReport> = futures::stream::iter(streams.iter().copied())
        .map(|s| sync_stream(&ctx, s))
        .buffer_unordered(config.concurrency)
        .collect()
        .await;
    reports.sort_by(|a, b| a.stream.cmp(&b.stream));

    if let Some(auth) = reports.iter().find_map(|r| match &r.status {
        StreamStatus::Failed(m) if r.auth_failure => Some(m.clone()),
        _ => None,
    }) {
        return Err(Error::Auth(auth));
    }
    let interrupted = cancel.load(Ordering::SeqCst);
    let mut report = RunReport {
        run_id: opts.run_id.clone(),
        streams: reports,
        manifest_key: None,
        interrupted,
        duration: started.elapsed(),
    };
    let manifest = manifest_of(&report, opts);
    match store.write_manifest(&opts.run_id, &manifest).await {
        Ok(key) => report.manifest_key = Some(key),
        Err(e) => {
            tracing::warn!(event = "manifest_failed", error = %e, "Could not write the run manifest")
        }
    }
    Ok(report)
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
async fn sync_stream(ctx: &RunCtx<'_>, stream: &Stream) -> StreamReport {
    let started = Instant::now();
    let stats = Arc::new(RequestStats::default());
    let bookmark = {
        let state = ctx.state.lock().await;
        state.streams.get(&stream.name).and_then(|s| s.bookmark)
    };
    let window = window::plan(
        stream,
        bookmark,
        ctx.config.start_date,
        ctx.config.lookback,
        ctx.signpost,
    );
    let mut report = StreamReport::new(&stream.name, window.clone());
    let bound = |t: Option<DateTime<Utc>>, none: &str| {
        t.map(|t| t.to_rfc3339())
            .unwrap_or_else(|| none.to_string())
    };
    tracing::info!(
        event = "stream_started",
        stream = %stream.name,
        from = %bound(window.from, "start"),
        to = %bound(window.to, "none (full refresh)"),
        "Stream started"
    );
    let progress = ctx
        .opts
        .progress
        .stream(&stream.name, &summary::window_label(&report.window));
    let outcome = read_and_write(ctx, stream, &window, stats.clone(), &progress, &mut report).await;
    let (requests, retries, rate_limited, bytes) = stats.snapshot();
    report.requests = requests;
    report.retries = retries;
    report.rate_limited = rate_limited;
    report.bytes_fetched = bytes;
    match outcome {
        Ok(files) => {
            report.files = files;
            match commit(ctx, stream, &report).await {
                Ok(()) => {
                    report.status = StreamStatus::Committed;
                    tracing::info!(event = "bookmark_advanced", stream = %stream.name, rows = report.rows, files = report.files.len(), "Bookmark advanced");
                }
                Err(e) => {
                    report.status = StreamStatus::Failed(format!("commit failed: {e}"));
                }
            }
        }
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
        Err(StreamFailure::Failed { message, auth }) => {
            tracing::error!(event = "stream_failed", stream = %stream.name, error = %message, "Stream failed");
            report.auth_failure = auth;
            report.status = StreamStatus::Failed(message);
        }
        Err(StreamFailure::Interrupted) => {
            report.status = StreamStatus::Interrupted;
        }
    }
    report.duration = started.elapsed();
    progress.done(report.status.label());
    report
}

const MISSING_SCOPE: &str = "missing scope";

enum StreamFailure {
    Skipped(String),
    Failed { message: String, auth: bool },
    Interrupted,
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
            },
            other => StreamFailure::Failed {
                message: other.to_string(),
                auth: false,
            },
        }
    }
}

/// Fetches every page of every partition of the window and writes them; returns the closed files.
async fn read_and_write(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    window: &Window,
    stats: Arc<RequestStats>,
    progress: &StreamProgress,
    report: &mut StreamReport,
) -> Result<Vec<WrittenFile>, StreamFailure> {
    let mut converter = Converter::new(stream, &ctx.opts.run_id, ctx.opts.started_at);
    let policy = ctx
        .config
        .policies
        .get(&stream.name)
        .cloned()
        .unwrap_or_default();
    let schema = policy.schema(&converter.schema());
    let mut writer = RollingWriter::new(
        ctx.dest.store.clone(),
        &ctx.dest.prefix,
        stream,
        &ctx.opts.run_id,
        ctx.opts.started_at,
        schema.clone(),
        ctx.opts.sink.clone(),
    )
    .map_err(|e| StreamFailure::Failed {
        message: e.to_string(),
        auth: false,
    })?;
    let result = pump(
        ctx,
        stream,
        window,
        stats,
        &mut converter,
        &mut writer,
        &policy,
        &schema,
        progress,
        report,
    )
    .await;
    match result {
        Ok(()) => writer.close().await.map_err(|e| StreamFailure::Failed {
            message: format!("writing Parquet failed: {e}"),
            auth: false,
        }),
        Err(e) => {
            writer.abort().await;
            Err(e)
        }
    }
}

/// The fetch → convert → (column policy) → write loop of one stream.
#[allow(clippy::too_many_arguments)]
async fn pump(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    window: &Window,
    stats: Arc<RequestStats>,
    converter: &mut Converter,
    writer: &mut RollingWriter,
    policy: &ColumnPolicy,
    schema: &SchemaRef,
    progress: &StreamProgress,
    report: &mut StreamReport,
) -> Result<(), StreamFailure> {
    for mut params in stream.partition_params() {
        if let (Some(filter), Some(value)) = (stream.window_filter(), window.filter_value()) {
            params.insert(filter.to_string(), value);
        }
        let first = ctx.client.first_page_url(&stream.resource, &params, None);
        let mut restarts = 0u32;
        // Ids at or above this were written before a window restart (pages are id-descending).
        let mut lowest_written: Option<i64> = None;
        'window: loop {
            let (tx, mut rx) = mpsc::channel::<Result<(url::Url, Page), FetchError>>(PAGE_BUFFER);
            let fetcher = {
                let client = ctx.client;
                let stats = stats.clone();
                let first = first.clone();
                let cancel = ctx.cancel.clone();
                async move {
                    let mut url = first;
                    loop {
                        if cancel.load(Ordering::SeqCst) {
                            return;
                        }
                        let page = client.get_page(&url, &stats).await;
                        let next = page.as_ref().ok().and_then(|p| p.next.clone());
                        if tx.send(page.map(|p| (url.clone(), p))).await.is_err() {
                            return;
                        }
                        match next {
                            Some(n) => url = n,
                            None => return,
                        }
                    }
                }
            };
            // On an early return the fetcher may be parked on a full channel: closing the
            // channel afterwards wakes it (its next send fails), so `join!` cannot deadlock.
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
                    let converted = loop {
                        match converter.convert_page(&page.body) {
                            Ok(c) => break c,
                            Err(e) if refetches < MAX_BAD_BODY_REFETCHES => {
                                refetches += 1;
                                tracing::warn!(event = "page_refetched", stream = %stream.name, error = %e, "Unreadable page, fetching it again");
                                page = ctx
                                    .client
                                    .get_page(&url, &stats)
                                    .await
                                    .map_err(StreamFailure::from)?;
                            }
                            Err(e) => {
                                return Err(StreamFailure::Failed {
                                    message: format!("unreadable page: {e}"),
                                    auth: false,
                                });
                            }
                        }
                    };
                    report.pages += 1;
                    let mut batch = converted.batch;
                    if let Some(low) = lowest_written {
                        // After a restart, skip the prefix of rows already written.
                        let skip = converted.ids.iter().take_while(|id| **id >= low).count();
                        batch = batch.slice(skip, batch.num_rows() - skip);
                    }
                    if let Some(min) = converted.ids.iter().min() {
                        lowest_written = Some(lowest_written.map_or(*min, |l| l.min(*min)));
                    }
                    report.rows += batch.num_rows() as u64;
                    progress.page(batch.num_rows() as u64);
                    report.extra_fields += converted.extra_fields;
                    report.type_mismatches += converted.type_mismatches;
                    report.null_violations += converted.null_violations;
                    if batch.num_rows() > 0 {
                        let batch = policy.apply(&batch, schema).map_err(|e| {
                            StreamFailure::Failed {
                                message: format!("applying the column policy failed: {e}"),
                                auth: false,
                            }
                        })?;
                        writer
                            .write(&batch)
                            .await
                            .map_err(|e| StreamFailure::Failed {
                                message: format!("writing Parquet failed: {e}"),
                                auth: false,
                            })?;
                    }
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
            match finished? {
                true => break 'window,
                false => {
                    restarts += 1;
                    if restarts > MAX_WINDOW_RESTARTS {
                        return Err(StreamFailure::Failed {
                            message: format!(
                                "the pagination cursor expired {restarts} times; the window could not be read"
                            ),
                            auth: false,
                        });
                    }
                    tracing::warn!(event = "window_restarted", stream = %stream.name, restarts, "Cursor expired, restarting the window");
                }
            }
        }
    }
    Ok(())
}

/// Advances the stream's bookmark to the signpost in a new state generation.
async fn commit(ctx: &RunCtx<'_>, stream: &Stream, report: &StreamReport) -> Result<(), Error> {
    let mut state = ctx.state.lock().await;
    if ctx.lease.lost() {
        return Err(Error::Conflict(format!(
            "this run lost its lease on the destination ({}); another run took over",
            ctx.lease.lost_reason().unwrap_or_default()
        )));
    }
    let mut next = state.clone();
    if ctx.opts.state_file.is_some() {
        // Bookmarks come from the state file; generations are numbered by the destination.
        next.generation = ctx
            .store
            .generations()
            .await
            .map_err(state_error)?
            .last()
            .copied()
            .unwrap_or(0);
    }
    next.last_run_id = Some(ctx.opts.run_id.clone());
    next.updated_at = Some(Utc::now());
    let entry = next.streams.entry(stream.name.clone()).or_default();
    if stream.is_incremental() {
        entry.bookmark = Some(ctx.signpost);
    }
    entry.run_id = Some(ctx.opts.run_id.clone());
    entry.committed_at = Some(Utc::now());
    entry.rows = report.rows;
    entry.files = report.files.len() as u64;
    let committed = ctx
        .store
        .commit(ctx.lease, next)
        .await
        .map_err(state_error)?;
    if let Some(path) = &ctx.opts.state_file {
        crate::state::save_file(path, &committed).map_err(|e| {
            Error::Fatal(format!(
                "cannot write the state file {}: {e}",
                path.display()
            ))
        })?;
    }
    *state = committed;
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
