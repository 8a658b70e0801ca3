//! The read pipeline of one stream: its window as one cursor chain, or as slices read
//! concurrently; every partition of each; pages flowing from the fetcher to the unit's writer
//! through a bounded channel.
//!
//! Contract:
//! - A unit of work ([`Unit`]: the whole window or one slice) holds one of the run's unit slots
//!   while it runs, writes through its own [`UnitWriter`], and is either closed (durable, then
//!   committed by the caller) or aborted; never both, never neither.
//! - Pages are never held beyond [`PAGE_BUFFER`] per chain: memory is bounded whatever the
//!   stream's size.
//! - A window whose cursor expires is restarted from its first page, skipping the ids already
//!   written (pages are id-descending), at most [`MAX_WINDOW_RESTARTS`] times. A page that
//!   cannot be parsed is fetched again, at most [`MAX_BAD_BODY_REFETCHES`] times.
//! - A slice that is not committed leaves no file behind.
//! - A chain whose next link repeats a cursor of the chain, or whose page repeats the page
//!   before it, ends with an error (the stream fails) instead of being followed for ever.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::commit::{Commit, commit};
use super::context::RunCtx;
use super::options::Selected;
use super::output::{UnitWriter, WriteError};
use super::slices::{self, SliceLimits};
use super::summary::StreamReport;
use super::window::{self, Range, Window};
use crate::events;
use crate::harvest::link::ChainGuard;
use crate::harvest::{FetchError, Forbidden, Page, RequestStats, redact_url};
use crate::progress::{RunProgress, StreamProgress};
use crate::sink::WrittenFile;
use crate::state::Slices;
use crate::state::ids::{IdSet, Keys};

/// Pages buffered between the fetcher and the writer of one chain (bounds memory).
const PAGE_BUFFER: usize = 2;
/// Times a window is restarted after its cursor expired.
const MAX_WINDOW_RESTARTS: u32 = 3;
/// Times a page that fails to parse is fetched again.
const MAX_BAD_BODY_REFETCHES: u32 = 3;
/// The reason of a stream skipped for a missing scope (the report names the scope).
pub(super) const MISSING_SCOPE: &str = "missing scope";

/// Why a stream did not complete.
#[derive(Debug)]
pub(super) enum StreamFailure {
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
    pub(super) fn failed(message: impl Into<String>) -> Self {
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
            FetchError::Interrupted => StreamFailure::Interrupted,
            FetchError::Unavailable(m) | FetchError::TokenUnavailable(m) => StreamFailure::Failed {
                message: m,
                auth: false,
                transient: true,
            },
            e @ FetchError::Stalled { .. } => StreamFailure::Failed {
                message: e.to_string(),
                auth: false,
                transient: true,
            },
            other => StreamFailure::failed(other.to_string()),
        }
    }
}

/// Per-stream counters and progress line, shared by the stream's units.
pub(super) struct StreamIo<'a> {
    pub stats: Arc<RequestStats>,
    /// The progress line, drawn from the moment the stream's first unit gets to run (every
    /// stream is scheduled at once; most wait for a slot).
    line: std::sync::OnceLock<StreamProgress>,
    run: &'a RunProgress,
    name: &'a str,
    window: String,
    resumed: bool,
}

impl<'a> StreamIo<'a> {
    pub(super) fn new(run: &'a RunProgress, name: &'a str, window: String, resumed: bool) -> Self {
        StreamIo {
            stats: Arc::new(RequestStats::default()),
            line: std::sync::OnceLock::new(),
            run,
            name,
            window,
            resumed,
        }
    }

    /// The stream's progress line; the first call also logs that the stream started.
    fn progress(&self) -> &StreamProgress {
        self.line.get_or_init(|| {
            events::stream_started(self.name, &self.window, self.resumed);
            self.run.stream(self.name, &self.window)
        })
    }

    /// Marks the progress line finished (if the stream ever started).
    pub(super) fn done(&self, label: &str) {
        if let Some(line) = self.line.get() {
            line.done(label);
        }
    }
}

/// What one unit of work added to its stream.
#[derive(Debug, Default)]
struct Tally {
    pub rows: u64,
    pub pages: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
    pub quarantined: u64,
    pub error_objects: Vec<String>,
    pub files: Vec<WrittenFile>,
    /// Ids read (with cascade references), for the stream's id index.
    pub keys: Keys,
    /// Ids of `keys` a slice's commit consumed, when the read is complete (see
    /// [`StreamRead::complete`]): a complete read's listing is every id it read, so those of
    /// `keys` join it in [`Tally::add_to`] and these are kept for them. One list, not a
    /// second copy of every id beside `keys` for the whole read.
    pub committed_ids: IdSet,
}

impl Tally {
    fn add_to(self, report: &mut StreamReport) {
        report.rows += self.rows;
        report.pages += self.pages;
        report.extra_fields += self.extra_fields;
        report.type_mismatches += self.type_mismatches;
        report.null_violations += self.null_violations;
        report.quarantined += self.quarantined;
        report.error_objects.extend(self.error_objects);
        report.files.extend(self.files);
        // Kept compact until the deletes phase, so the lists of all streams do not add up.
        // `read_ids` is only there for a complete read, whose ids are all in `keys` or
        // `committed_ids`.
        // This unit's ids are joined first, so the stream's (larger) set is re-encoded once.
        if let Some(ids) = report.read_ids.as_mut() {
            *ids = ids.union_set(&self.committed_ids.union(self.keys.ids.clone()));
        }
        report.keys.extend(self.keys);
    }
}

/// One unit of work: the whole window, or one slice of it.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub range: Range,
    /// Tells apart the files of concurrent slices (`s00`, `s01`, …); `None` for a whole window.
    pub tag: Option<String>,
    /// Read the first page on its own and let it decide whether to slice instead.
    pub probe: bool,
}

/// How a unit ended.
enum UnitEnd {
    /// Every page read and written, the writer closed.
    Complete,
    /// The probe found the window large: read it as these slices instead (nothing was written).
    Split(Slices),
}

/// One stream as this run reads it: what its units share.
pub(super) struct StreamRead<'a> {
    pub ctx: &'a RunCtx<'a>,
    pub sel: &'a Selected<'a>,
    pub window: &'a Window,
    pub io: &'a StreamIo<'a>,
    /// The stream keeps an id index: collect the ids it reads.
    pub indexed: bool,
    /// The read covers every live record (a full refresh, or a window from the beginning).
    pub complete: bool,
}

impl StreamRead<'_> {
    /// Reads the stream's window: as one chain, or — when the probe finds a large backfill, or
    /// an earlier run left slice progress — as slices read concurrently and committed one by one.
    /// The counters of every unit end up in `report`, whatever the outcome.
    pub(super) async fn read(
        &self,
        progress: Option<Slices>,
        report: &mut StreamReport,
    ) -> Result<(), StreamFailure> {
        let (ctx, stream, window) = (self.ctx, self.sel.stream, self.window);
        let lookback = chrono::Duration::from_std(ctx.config.lookback).unwrap_or_default();
        let plan = match progress {
            Some(p) => p.resumed(ctx.signpost, lookback),
            None => {
                let unit = Unit {
                    range: Range::whole(window),
                    tag: None,
                    probe: stream.is_incremental()
                        && ctx.config.backfill_slices > 1
                        && window
                            .to
                            .is_some_and(|to| slices::is_backfill(window.from, to)),
                };
                let mut tally = Tally::default();
                let end = self.read_unit(&unit, &mut tally).await;
                tally.add_to(report);
                match end? {
                    UnitEnd::Complete => return Ok(()),
                    UnitEnd::Split(plan) => plan,
                }
            }
        };
        self.read_slices(plan, report).await
    }

    /// Reads the pending slices of `plan`, committing each as it completes.
    async fn read_slices(
        &self,
        plan: Slices,
        report: &mut StreamReport,
    ) -> Result<(), StreamFailure> {
        let (ctx, stream) = (self.ctx, self.sel.stream);
        let pending = plan.pending();
        report.slices = plan.ranges().len();
        events::stream_sliced(&stream.name, report.slices, pending.len());
        self.io.progress().set_window(&format!(
            "{} ({} slices)",
            self.window.label(),
            report.slices
        ));
        let plan = &plan;
        let results: Vec<(Tally, Result<(), StreamFailure>)> =
            futures::stream::iter(pending.into_iter().enumerate())
                .map(|(i, slice)| async move {
                    let mut tally = Tally::default();
                    let unit = Unit {
                        range: Range::slice(&slice, plan.window_to),
                        tag: Some(format!("s{i:02}")),
                        probe: false,
                    };
                    let result = match self.read_unit(&unit, &mut tally).await {
                        Ok(_) => {
                            let what = Commit::Slice {
                                plan,
                                done: slice,
                                rows: tally.rows,
                                files: &tally.files,
                                keys: &tally.keys,
                            };
                            let r = commit(ctx, stream, what)
                                .await
                                .map_err(|e| StreamFailure::failed(format!("commit failed: {e}")));
                            // Indexed with the slice: the window's commit need not again.
                            // A complete read still lists its ids (the deletes phase).
                            let keys = std::mem::take(&mut tally.keys);
                            if self.complete {
                                tally.committed_ids = tally.committed_ids.union(keys.ids);
                            }
                            r
                        }
                        Err(e) => Err(e),
                    };
                    if result.is_err() {
                        // A slice that is not committed leaves no file behind.
                        ctx.output.discard(std::mem::take(&mut tally.files)).await;
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
                if first_error.is_none() || matches!(first_error, Some(StreamFailure::Interrupted))
                {
                    first_error = Some(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Reads one unit (every partition) into a new writer, holding one of the run's unit slots.
    /// With `unit.probe`, the first page decides whether the window should be sliced instead;
    /// then nothing is written and the plan is returned.
    async fn read_unit(&self, unit: &Unit, tally: &mut Tally) -> Result<UnitEnd, StreamFailure> {
        let ctx = self.ctx;
        // A unit queued for a slot stops waiting as soon as the run stops.
        let slot = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(StreamFailure::Interrupted),
            slot = ctx.units.acquire() => slot,
        };
        let Ok(_slot) = slot else {
            return Err(StreamFailure::failed("the run's work pool closed"));
        };
        if ctx.cancel.is_cancelled() {
            return Err(StreamFailure::Interrupted);
        }
        self.io.progress();
        let mut writer = ctx
            .output
            .open(self.sel, unit.tag.as_deref(), None)
            .map_err(|e| StreamFailure::failed(e.to_string()))?;
        match self.read_partitions(unit, writer.as_mut(), tally).await {
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

    /// The fetch → write loop over every partition of one unit. Returns a slice plan when the
    /// probe decided to split instead.
    async fn read_partitions(
        &self,
        unit: &Unit,
        writer: &mut dyn UnitWriter,
        tally: &mut Tally,
    ) -> Result<Option<Slices>, StreamFailure> {
        let (ctx, stream) = (self.ctx, self.sel.stream);
        for (index, params) in window::first_page_params(stream, &unit.range)
            .into_iter()
            .enumerate()
        {
            let first = ctx.client.first_page_url(&stream.resource, &params, None);
            // The probe's first page is fetched on its own: the pipeline below reads ahead, and
            // a chain that is abandoned for slices must not cost more than this one request.
            let mut head = None;
            if unit.probe && index == 0 {
                let page = ctx.client.get_page(&first, &self.io.stats).await?;
                let limits = SliceLimits {
                    max_slices: ctx.config.backfill_slices,
                    pages_per_slice: ctx.config.backfill_slice_pages,
                };
                if page.next.is_some()
                    && let Some(plan) = slices::plan(
                        ctx.client,
                        stream,
                        &params,
                        self.window,
                        &page.body,
                        limits,
                        &self.io.stats,
                    )
                    .await
                {
                    return Ok(Some(plan));
                }
                head = Some((first.clone(), page));
            }
            self.read_chain(first, head, writer, tally).await?;
        }
        Ok(None)
    }

    /// Reads one cursor chain from `first` (or from an already fetched first page), restarting
    /// the window when its cursor expires.
    async fn read_chain(
        &self,
        first: url::Url,
        mut head: Option<(url::Url, Page)>,
        writer: &mut dyn UnitWriter,
        tally: &mut Tally,
    ) -> Result<(), StreamFailure> {
        let (ctx, stream, io) = (self.ctx, self.sel.stream, self.io);
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
                    // A chain whose next link leads back into it would never end.
                    let mut guard = ChainGuard::default();
                    let mut check = |url: &url::Url, page: &Page| {
                        guard
                            .check(
                                url.as_str(),
                                &page.body,
                                page.next.as_ref().map(url::Url::as_str),
                            )
                            .map_err(|why| {
                                FetchError::Rejected(format!("{}: {why}", redact_url(url)))
                            })
                    };
                    if let Some((url, page)) = head_page {
                        let checked = check(&url, &page);
                        let stop = checked.is_err();
                        if tx.send(checked.map(|()| (url, page))).await.is_err() || stop {
                            return;
                        }
                    }
                    let mut next = start;
                    while let Some(url) = next {
                        if cancel.is_cancelled() {
                            return;
                        }
                        let page = client
                            .get_page(&url, &stats)
                            .await
                            .and_then(|p| check(&url, &p).map(|()| p));
                        next = page.as_ref().ok().and_then(|p| p.next.clone());
                        if tx.send(page.map(|p| (url, p))).await.is_err() {
                            return;
                        }
                    }
                }
            };
            // On an early return the fetcher may be parked on a full channel: closing the
            // channel afterwards wakes it (its next send fails), so `join!` cannot deadlock.
            let consumer = async {
                let outcome = async {
                    while let Some(item) = rx.recv().await {
                        if ctx.cancel.is_cancelled() {
                            return Err(StreamFailure::Interrupted);
                        }
                        let (url, mut page) = match item {
                            Ok(p) => p,
                            Err(FetchError::CursorExpired) => return Ok(false),
                            Err(e) => return Err(e.into()),
                        };
                        let mut refetches = 0;
                        let out = loop {
                            match writer.write(&page.body, lowest_written).await {
                                Ok(out) => break out,
                                Err(WriteError::Unreadable(e))
                                    if refetches < MAX_BAD_BODY_REFETCHES =>
                                {
                                    refetches += 1;
                                    events::page_refetched(&stream.name, &e);
                                    page = ctx.client.get_page(&url, &io.stats).await?;
                                }
                                Err(WriteError::Unreadable(e)) => {
                                    let saved = match writer.save_unreadable(&page.body, &e).await {
                                        Some(key) => format!("; the page was saved as {key}"),
                                        None => String::new(),
                                    };
                                    return Err(StreamFailure::failed(format!(
                                        "unreadable page: {e}{saved}"
                                    )));
                                }
                                Err(WriteError::Output(e)) => {
                                    return Err(StreamFailure::failed(e));
                                }
                            }
                        };
                        if let Some(min) = out.ids.iter().min() {
                            lowest_written = Some(lowest_written.map_or(*min, |l| l.min(*min)));
                        }
                        if self.indexed {
                            tally.keys.extend(Keys {
                                ids: out.ids,
                                refs: out.refs,
                            });
                        }
                        tally.pages += 1;
                        tally.rows += out.rows;
                        io.progress().page(out.rows);
                        tally.extra_fields += out.extra_fields;
                        tally.type_mismatches += out.type_mismatches;
                        tally.null_violations += out.null_violations;
                        tally.quarantined += out.quarantined;
                        tally.error_objects.extend(out.error_objects);
                    }
                    if ctx.cancel.is_cancelled() {
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
            events::window_restarted(&stream.name, restarts);
        }
    }
}
