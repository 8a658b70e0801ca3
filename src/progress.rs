//! Live progress of a `sync` on a terminal: one line per running stream (rows, pages, window,
//! elapsed) and a run line (streams done, requests sent, and rate-limit waits named as such).
//!
//! Contract:
//! - The engine only touches cheap shared counters ([`RunProgress::request`],
//!   [`StreamProgress::page`], …: atomics and a short lock). Drawing happens on indicatif's own
//!   schedule and on a background ticker that re-renders the lines twice a second, never on the
//!   engine's tasks.
//! - Disabled progress ([`RunProgress::disabled`], or stderr not a terminal, `--log-format json`,
//!   `-q`) draws nothing and writes nothing: the counters still count, logs are exactly as
//!   without progress.
//! - While bars are drawn, log events are written with the bars suspended
//!   ([`crate::logging`]), so a log line never corrupts a bar; [`RunProgress::finish`] clears
//!   the bars and hands stderr back to plain logging.
//! - The text of a line is a pure function ([`render_line`], [`render_run_line`]), so what the
//!   user sees is testable without a terminal.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the ticker re-renders the lines (elapsed time and wait countdowns move on their own).
const TICK: Duration = Duration::from_millis(500);

/// Progress of one run, shared by every stream task as `Arc<RunProgress>`.
pub struct RunProgress {
    started: Instant,
    requests: AtomicU64,
    streams_started: AtomicU64,
    streams_done: AtomicU64,
    /// When the rate-limit window reopens, while some request is waiting for it.
    wait_until: Mutex<Option<Instant>>,
    draw: Option<Draw>,
    /// This progress itself, so a stream handle can report its end without the engine
    /// passing the `Arc` around.
    me: Weak<RunProgress>,
}

/// The drawing half, present only when progress is shown.
struct Draw {
    multi: MultiProgress,
    run_bar: ProgressBar,
    /// Lines of streams still running (a finished stream's line is removed).
    lines: Mutex<Vec<StreamProgress>>,
    finished: AtomicBool,
}

impl RunProgress {
    /// Progress for a run; `enabled` decides whether anything is drawn (see [`should_draw`]).
    pub fn new(enabled: bool) -> Arc<RunProgress> {
        let draw = enabled.then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let run_bar = multi.add(ProgressBar::new_spinner().with_style(line_style()));
            Draw {
                multi,
                run_bar,
                lines: Mutex::new(Vec::new()),
                finished: AtomicBool::new(false),
            }
        });
        let progress = Arc::new_cyclic(|me| RunProgress {
            started: Instant::now(),
            requests: AtomicU64::new(0),
            streams_started: AtomicU64::new(0),
            streams_done: AtomicU64::new(0),
            wait_until: Mutex::new(None),
            draw,
            me: me.clone(),
        });
        if let Some(d) = &progress.draw {
            crate::logging::draw_above(Some(d.multi.clone()));
            progress.redraw();
            spawn_ticker(Arc::downgrade(&progress));
        }
        progress
    }

    /// Progress that counts but never draws (tests, non-terminal runs, other commands).
    pub fn disabled() -> Arc<RunProgress> {
        RunProgress::new(false)
    }

    /// Registers a running stream and returns its handle (a line on the terminal, if drawn).
    pub fn stream(&self, name: &str, window: &str) -> StreamProgress {
        self.streams_started.fetch_add(1, Ordering::Relaxed);
        let bar = self.draw.as_ref().map(|d| {
            // Insert before the run line, so the run line stays at the bottom.
            d.multi.insert_before(
                &d.run_bar,
                ProgressBar::new_spinner().with_style(line_style()),
            )
        });
        let handle = StreamProgress {
            inner: Arc::new(StreamInner {
                name: name.to_string(),
                started: Instant::now(),
                rows: AtomicU64::new(0),
                pages: AtomicU64::new(0),
                window: Mutex::new(window.to_string()),
                status: Mutex::new(None),
                bar,
                run: self.me.clone(),
            }),
        };
        if let Some(d) = &self.draw {
            lock(&d.lines).push(handle.clone());
            handle.redraw();
        }
        handle
    }

    /// Some request is waiting for the rate-limit window to reopen at `until` (`None`: no
    /// longer waiting).
    pub fn rate_wait(&self, until: Option<Instant>) {
        *lock(&self.wait_until) = until;
        self.redraw_run_line();
    }

    /// One HTTP request was sent.
    pub fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Clears the bars and gives stderr back to plain logging. Idempotent.
    pub fn finish(&self) {
        if let Some(d) = &self.draw
            && !d.finished.swap(true, Ordering::SeqCst)
        {
            for line in lock(&d.lines).drain(..) {
                if let Some(b) = &line.inner.bar {
                    b.finish_and_clear();
                }
            }
            d.run_bar.finish_and_clear();
            let _ = d.multi.clear();
            crate::logging::draw_above(None);
        }
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Whether bars are drawn.
    pub fn is_drawn(&self) -> bool {
        self.draw.is_some()
    }

    /// The run line as it would be drawn now.
    pub fn run_line(&self) -> String {
        let wait = lock(&self.wait_until).map(|u| u.saturating_duration_since(Instant::now()));
        render_run_line(
            self.streams_done.load(Ordering::Relaxed),
            self.streams_started.load(Ordering::Relaxed),
            self.requests(),
            wait,
            self.started.elapsed(),
        )
    }

    fn redraw_run_line(&self) {
        if let Some(d) = &self.draw
            && !d.finished.load(Ordering::Relaxed)
        {
            d.run_bar.set_message(self.run_line());
        }
    }

    fn redraw(&self) {
        if let Some(d) = &self.draw {
            for line in lock(&d.lines).iter() {
                line.redraw();
            }
        }
        self.redraw_run_line();
    }

    fn stream_done(&self, line: &StreamProgress) {
        self.streams_done.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = &self.draw {
            lock(&d.lines).retain(|l| !Arc::ptr_eq(&l.inner, &line.inner));
        }
        self.redraw_run_line();
    }
}

/// The HTTP client's requests and rate-limit waits, as the run line shows them.
impl crate::harvest::Observer for RunProgress {
    fn request_started(&self) {
        self.request();
    }
    fn rate_wait_began(&self, until: Instant) {
        self.rate_wait(Some(until));
    }
    fn rate_wait_ended(&self) {
        self.rate_wait(None);
    }
}

impl std::fmt::Debug for RunProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunProgress")
            .field("drawn", &self.is_drawn())
            .field("requests", &self.requests())
            .finish()
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.finish();
    }
}

fn spawn_ticker(weak: Weak<RunProgress>) {
    let spawned = std::thread::Builder::new()
        .name("progress".into())
        .spawn(move || {
            loop {
                std::thread::sleep(TICK);
                let Some(p) = weak.upgrade() else { return };
                match &p.draw {
                    Some(d) if !d.finished.load(Ordering::Relaxed) => p.redraw(),
                    _ => return,
                }
            }
        });
    // Without a ticker the lines still update on every page; only elapsed time would stall.
    drop(spawned);
}

/// One stream's progress handle; cheap to clone and to update.
#[derive(Clone)]
pub struct StreamProgress {
    inner: Arc<StreamInner>,
}

struct StreamInner {
    name: String,
    started: Instant,
    rows: AtomicU64,
    pages: AtomicU64,
    window: Mutex<String>,
    status: Mutex<Option<String>>,
    bar: Option<ProgressBar>,
    run: Weak<RunProgress>,
}

impl StreamProgress {
    /// One page with `rows` rows was read.
    pub fn page(&self, rows: u64) {
        self.inner.pages.fetch_add(1, Ordering::Relaxed);
        self.inner.rows.fetch_add(rows, Ordering::Relaxed);
        self.redraw();
    }

    /// The stream moved on to another window (e.g. the next slice of a backfill).
    pub fn set_window(&self, label: &str) {
        *lock(&self.inner.window) = label.to_string();
        self.redraw();
    }

    /// The stream finished with `status` ("committed", "skipped", "failed", "interrupted");
    /// its line is removed from the terminal.
    pub fn done(&self, status: &str) {
        {
            let mut s = lock(&self.inner.status);
            if s.is_some() {
                return;
            }
            *s = Some(status.to_string());
        }
        if let Some(b) = &self.inner.bar {
            b.finish_and_clear();
        }
        if let Some(run) = self.inner.run.upgrade() {
            run.stream_done(self);
        }
    }

    pub fn rows(&self) -> u64 {
        self.inner.rows.load(Ordering::Relaxed)
    }

    pub fn pages(&self) -> u64 {
        self.inner.pages.load(Ordering::Relaxed)
    }

    /// The status given to [`StreamProgress::done`], if it was called.
    pub fn status(&self) -> Option<String> {
        lock(&self.inner.status).clone()
    }

    /// The line as it would be drawn now.
    pub fn line(&self) -> String {
        let status = lock(&self.inner.status).clone();
        render_line(
            &self.inner.name,
            &lock(&self.inner.window),
            self.rows(),
            self.pages(),
            self.inner.started.elapsed(),
            status.as_deref(),
        )
    }

    fn redraw(&self) {
        if let Some(b) = &self.inner.bar
            && lock(&self.inner.status).is_none()
        {
            b.set_message(self.line());
        }
    }
}

/// One stream's line: `jobs  12,345 rows  25 pages  2026-11-01 09:00:00 → … 0:42`.
pub fn render_line(
    name: &str,
    window: &str,
    rows: u64,
    pages: u64,
    elapsed: Duration,
    status: Option<&str>,
) -> String {
    let tail = match status {
        Some(s) => s.to_string(),
        None => clock(elapsed),
    };
    format!(
        "{name:<28} {:>11} rows {:>6} {}  {window}  {tail}",
        thousands(rows),
        thousands(pages),
        if pages == 1 { "page " } else { "pages" },
    )
}

/// The run line: streams done, requests sent, elapsed, and a rate-limit wait when there is one.
pub fn render_run_line(
    done: u64,
    started: u64,
    requests: u64,
    wait: Option<Duration>,
    elapsed: Duration,
) -> String {
    let mut s = format!(
        "{done} {} done, {} running, {} requests, {}",
        if done == 1 { "stream" } else { "streams" },
        started.saturating_sub(done),
        thousands(requests),
        clock(elapsed)
    );
    if let Some(w) = wait {
        s.push_str(&format!(
            "  waiting for the rate-limit window: {} s",
            w.as_secs_f64().ceil() as u64
        ));
    }
    s
}

/// Whether a `sync` should draw progress: stderr is a terminal, logs are text, not `-q`.
pub fn should_draw(stderr_is_terminal: bool, text_logs: bool, quiet: bool) -> bool {
    stderr_is_terminal && text_logs && !quiet
}

fn line_style() -> ProgressStyle {
    ProgressStyle::with_template("{msg}").expect("static template")
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A poisoned lock only means another thread panicked mid-update of a counter label; the value
/// is still usable for display.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_without_drawing() {
        let run = RunProgress::disabled();
        assert!(!run.is_drawn());
        let jobs = run.stream("jobs", "start → 2026-11-01 12:00:00");
        let users = run.stream("users", "full");
        jobs.page(500);
        jobs.clone().page(120);
        users.page(0);
        run.request();
        run.request();
        run.request();
        assert_eq!((jobs.rows(), jobs.pages()), (620, 2));
        assert_eq!((users.rows(), users.pages()), (0, 1));
        assert_eq!(run.requests(), 3);
        assert!(
            run.run_line()
                .starts_with("0 streams done, 2 running, 3 requests")
        );
        jobs.done("committed");
        jobs.done("failed"); // a second report does not count twice
        assert_eq!(jobs.status().as_deref(), Some("committed"));
        assert!(
            run.run_line().starts_with("1 stream done, 1 running"),
            "{}",
            run.run_line()
        );
        users.set_window("2026-11-01 00:00:00 → 2026-11-02 00:00:00");
        assert!(
            users.line().contains("2026-11-02 00:00:00"),
            "{}",
            users.line()
        );
        run.finish();
    }

    #[test]
    fn rate_limit_waits_show_as_such() {
        let run = RunProgress::disabled();
        run.rate_wait(Some(Instant::now() + Duration::from_millis(11_500)));
        let line = run.run_line();
        assert!(
            line.contains("waiting for the rate-limit window: 12 s"),
            "{line}"
        );
        run.rate_wait(None);
        assert!(!run.run_line().contains("waiting"), "{}", run.run_line());
    }

    #[tokio::test]
    async fn progress_sees_requests_and_waits() {
        use crate::harvest::budget::RateBudget;
        use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
        let headers = |limit: u32, remaining: u32, reset: u64| {
            let mut h = HeaderMap::new();
            for (k, v) in [
                ("x-ratelimit-limit", limit.to_string()),
                ("x-ratelimit-remaining", remaining.to_string()),
                ("x-ratelimit-reset", reset.to_string()),
            ] {
                h.insert(
                    HeaderName::from_static(k),
                    HeaderValue::from_str(&v).unwrap(),
                );
            }
            h
        };
        let b = RateBudget::new(None);
        let p = RunProgress::disabled();
        b.set_observer(p.clone());
        let t = b.acquire().await;
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
            + 1.0;
        b.observe(t, &headers(2, 1, reset as u64));
        let t = b.acquire().await;
        b.observe(t, &headers(2, 0, reset as u64));
        let watcher = {
            let p = p.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    if p.run_line().contains("waiting for the rate-limit window") {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            })
        };
        assert!(b.acquire().await.waited > Duration::ZERO);
        assert!(watcher.await.unwrap(), "the wait was never shown");
        assert!(!p.run_line().contains("waiting"), "{}", p.run_line());
        assert_eq!(p.requests(), 3);
    }

    #[test]
    fn lines_render_counts_window_and_elapsed_or_status() {
        let l = render_line(
            "applications",
            "2026-11-01 09:00:00 → 2026-11-01 12:00:00",
            1_234_567,
            2_470,
            Duration::from_secs(83),
            None,
        );
        assert!(l.starts_with("applications "), "{l}");
        assert!(l.contains("1,234,567 rows"), "{l}");
        assert!(l.contains("2,470 pages"), "{l}");
        assert!(
            l.contains("2026-11-01 09:00:00 → 2026-11-01 12:00:00"),
            "{l}"
        );
        assert!(l.ends_with("1:23"), "{l}");
        let done = render_line("jobs", "full", 1, 1, Duration::ZERO, Some("skipped"));
        assert!(done.contains("1 page "), "{done}");
        assert!(done.ends_with("skipped"), "{done}");
        assert_eq!(
            render_run_line(3, 70, 1_000, None, Duration::from_secs(3_725)),
            "3 streams done, 67 running, 1,000 requests, 1:02:05"
        );
    }

    #[test]
    fn progress_is_drawn_only_for_text_logs_on_a_terminal_without_quiet() {
        assert!(should_draw(true, true, false));
        assert!(!should_draw(false, true, false));
        assert!(!should_draw(true, false, false));
        assert!(!should_draw(true, true, true));
    }
}
