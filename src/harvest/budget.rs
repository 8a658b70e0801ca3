//! The rate budget shared by every request of a run (all streams, all tasks).
//!
//! Greenhouse counts requests per credential in fixed 30-second windows and reports the count on
//! every response (`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` = epoch
//! seconds of the window end). The budget spends exactly what the server advertises, then sleeps
//! to the window reset instead of provoking 429s.
//!
//! Hand-written rather than `governor`: a GCRA limiter paces requests evenly against a quota we
//! would have to guess, whereas this budget must follow the server's own window boundaries and
//! remaining count (which other integrations on the same credential also consume), and learn the
//! limit from the first response (it differs per account).
//!
//! Contract: `acquire` never lets more requests start in a window than the server said remain
//! (minus requests of ours still in flight that the server cannot have counted yet), and before
//! the first response it lets exactly one probe request through. It never waits longer than one
//! window for a window it was not told the end of: a missing `X-RateLimit-Reset` means "one
//! window from now" (the window length learnt from earlier resets, else 30 s); a reset that is
//! not believable (more than 5 minutes ahead) is treated the same, a small one as seconds from
//! now; a missing `Remaining` means the budget counts its own requests against the limit.
//! Each wait for a window is logged once (`rate_window_wait`).
//!
//! Which in-flight requests the server has counted: each request carries the sequence number of
//! its start ([`Ticket`]). A response's `Remaining` counts every request that reached the server
//! before it; requests of ours started *earlier* and still in flight (a bigger page, a slower
//! answer) were sent first and so were counted already, while those started *later* may not have
//! been. Subtracting only the later ones spends the whole window; subtracting every in-flight
//! request would leave a few requests of each window unused.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::sync::Notify;

use super::Observer;

/// The window length Greenhouse documents; used to predict the next window's end.
const WINDOW: f64 = 30.0;
/// Slack after a reported reset before spending the new window (clock skew, second rounding).
const RESET_MARGIN: f64 = 0.25;
/// A reported reset further ahead than this is not believed (a unit mix-up, a broken proxy):
/// the budget assumes one window from now instead, and a 429's `Retry-After` corrects it.
const MAX_RESET_AHEAD: f64 = 300.0;
/// A reset below this is a number of seconds from now, not an epoch time (some proxies and
/// APIs send it that way).
const EPOCH_FLOOR: f64 = 1_000_000_000.0;

#[derive(Debug)]
struct State {
    /// Effective limit (server limit, capped by configuration), once known.
    limit: Option<u32>,
    /// Requests we may still start in the current window.
    remaining: u32,
    /// End of the current window, epoch seconds.
    window_end: Option<f64>,
    /// Requests started and not yet answered, by start sequence number.
    in_flight: BTreeSet<u64>,
    /// The next start sequence number.
    next_seq: u64,
    /// A probe request is out to learn the limit.
    probing: bool,
    /// The window length learnt from consecutive resets (the smallest step seen), if any.
    learnt_window: Option<f64>,
    /// The window end last logged as a wait, so a wait is logged once per window.
    announced: Option<f64>,
}

/// One request let through by [`RateBudget::acquire`]; hand it back to `observe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    seq: u64,
    /// How long the request waited for the rate limit (zero when it did not).
    pub waited: Duration,
}

/// What a task should do after asking the budget.
enum Decision {
    Go(u64),
    SleepUntil(f64),
    WaitForProbe,
}

pub struct RateBudget {
    state: Mutex<State>,
    cap: Option<u32>,
    probe_done: Notify,
    /// Told about every request started and every wait for the window (live progress).
    observer: OnceLock<Arc<dyn Observer>>,
}

/// What the budget knows about the current rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per 30-second window (the server's, capped by configuration).
    pub limit: u32,
    /// Requests that may still start in the current window.
    pub remaining: u32,
    /// Time until the current window ends, when the server reported it.
    pub resets_in: Option<Duration>,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl RateBudget {
    /// `cap`: never use more than this many requests per window, even if the server allows more.
    pub fn new(cap: Option<u32>) -> Self {
        RateBudget {
            state: Mutex::new(State {
                limit: None,
                remaining: 0,
                window_end: None,
                in_flight: BTreeSet::new(),
                next_seq: 0,
                probing: false,
                learnt_window: None,
                announced: None,
            }),
            cap,
            probe_done: Notify::new(),
            observer: OnceLock::new(),
        }
    }

    /// Reports requests and rate-limit waits to `observer` from now on (set once per run).
    pub fn set_observer(&self, observer: Arc<dyn Observer>) {
        let _ = self.observer.set(observer);
    }

    /// The current window as far as responses have told (`None` before the first response).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let s = self.state.lock().expect("budget lock");
        let limit = s.limit?;
        let now = now_epoch();
        let (remaining, resets_in) = match s.window_end {
            // The reported window has ended: a fresh one is available.
            Some(end) if now >= end + RESET_MARGIN => (limit, None),
            Some(end) => (s.remaining, Some(Duration::from_secs_f64(end - now))),
            None => (s.remaining, None),
        };
        Some(RateLimit {
            limit,
            remaining,
            resets_in,
        })
    }

    /// The effective per-window limit, once a response has reported it.
    pub fn limit(&self) -> Option<u32> {
        self.state.lock().expect("budget lock").limit
    }

    /// Waits until one more request may start, and counts it as started.
    pub async fn acquire(&self) -> Ticket {
        let mut waited = Duration::ZERO;
        loop {
            let decision = self.decide();
            match decision {
                Decision::Go(seq) => {
                    if let Some(o) = self.observer.get() {
                        o.request_started();
                    }
                    return Ticket { seq, waited };
                }
                Decision::SleepUntil(t) => {
                    let d = Duration::from_secs_f64((t - now_epoch()).max(0.0));
                    waited += d;
                    self.announce(t, d);
                    // Shown as a wait for the window, so a quiet terminal does not look stuck.
                    let observer = self.observer.get();
                    if let Some(o) = observer {
                        o.rate_wait_began(Instant::now() + d);
                    }
                    tokio::time::sleep(d).await;
                    if let Some(o) = observer {
                        o.rate_wait_ended();
                    }
                }
                Decision::WaitForProbe => {
                    // The probe's answer (or failure) wakes us; re-check after a short bound so a
                    // lost wake-up can never stall the run.
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), self.probe_done.notified())
                            .await;
                }
            }
        }
    }

    /// Logs a wait for the window once per window (every waiting task asks; one line is enough).
    fn announce(&self, until: f64, wait: Duration) {
        let mut s = self.state.lock().expect("budget lock");
        if s.announced.is_some_and(|a| (a - until).abs() < 0.5) {
            return;
        }
        s.announced = Some(until);
        let limit = s.limit.unwrap_or(0);
        let known = s.window_end.is_some();
        drop(s);
        if wait >= Duration::from_millis(500) {
            crate::events::rate_window_wait(wait.as_millis() as u64, limit, known);
        }
    }

    /// The window length the budget assumes: learnt from the server's resets, else the
    /// documented 30 s.
    fn window_len(&self) -> f64 {
        self.state
            .lock()
            .expect("budget lock")
            .learnt_window
            .unwrap_or(WINDOW)
    }

    /// Counts a request as started and returns its sequence number.
    fn start(s: &mut State) -> u64 {
        let seq = s.next_seq;
        s.next_seq += 1;
        s.in_flight.insert(seq);
        seq
    }

    fn decide(&self) -> Decision {
        let mut s = self.state.lock().expect("budget lock");
        let now = now_epoch();
        let Some(limit) = s.limit else {
            if s.probing {
                return Decision::WaitForProbe;
            }
            s.probing = true;
            return Decision::Go(Self::start(&mut s));
        };
        let window = s.learnt_window.unwrap_or(WINDOW);
        if let Some(end) = s.window_end
            && now >= end + RESET_MARGIN
        {
            // A new fixed window began; its end is one window later. The next response
            // confirms or corrects both numbers.
            let windows_passed = ((now - end) / window).floor() + 1.0;
            s.window_end = Some(end + windows_passed * window);
            s.remaining = limit;
        }
        if s.remaining > 0 {
            s.remaining -= 1;
            Decision::Go(Self::start(&mut s))
        } else {
            // Without a reported end, one window from now is assumed (and remembered, so the
            // window reopens after it: sleeping "one window" again and again never would).
            let end = *s.window_end.get_or_insert(now + window);
            Decision::SleepUntil(end + RESET_MARGIN)
        }
    }

    /// Records the answer to the request of `ticket` (any status, or none on a transport error:
    /// pass an empty header map).
    pub fn observe(&self, ticket: Ticket, headers: &HeaderMap) {
        let num = |name: &str| -> Option<f64> {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let limit = num("x-ratelimit-limit");
        let remaining = num("x-ratelimit-remaining");
        let now = now_epoch();
        let reset = num("x-ratelimit-reset").map(|r| {
            let at = if r < EPOCH_FLOOR { now + r } else { r };
            if at > now + MAX_RESET_AHEAD {
                // Not believable: assume one window from now (a 429 will say better).
                now + self.window_len()
            } else {
                at
            }
        });
        let mut s = self.state.lock().expect("budget lock");
        s.in_flight.remove(&ticket.seq);
        // Requests started after this one may have reached the server after it: not counted.
        let not_counted = s.in_flight.range(ticket.seq + 1..).count() as u32;
        let was_probing = s.probing;
        s.probing = false;
        // A limit without Remaining: count for ourselves from the limit. Remaining without a
        // limit: keep the limit learnt so far, else assume Remaining is all there is.
        let limit = if limit.is_some() || remaining.is_some() {
            limit
                .map(|l| l.max(1.0) as u32)
                .or(s.limit)
                .or(remaining.map(|r| r.max(0.0) as u32 + 1))
        } else {
            None
        };
        if let Some(limit) = limit {
            let limit = limit.min(self.cap.unwrap_or(u32::MAX));
            let first = s.limit.is_none();
            let reported = match remaining {
                Some(r) => r.max(0.0) as u32,
                // No Remaining: what we have not spent ourselves (this request, the probe, and
                // those still out).
                None if first => limit.saturating_sub(1 + s.in_flight.len() as u32),
                None => s.remaining,
            };
            let usable = reported.saturating_sub(not_counted).min(limit);
            s.limit = Some(limit);
            match (reset, s.window_end) {
                (Some(reset), Some(end)) if reset > end + 1.0 => {
                    // The server has moved on to a later window than we thought; the smallest
                    // step between windows is their length.
                    let step = reset - end;
                    if (1.0..=MAX_RESET_AHEAD).contains(&step) {
                        s.learnt_window = Some(s.learnt_window.map_or(step, |w| w.min(step)));
                    }
                    s.window_end = Some(reset);
                    s.remaining = usable;
                }
                (Some(reset), Some(end)) if reset < end - 1.0 && reset <= now => {
                    // A late answer from an earlier window: it says nothing about this one.
                    // (A reset still ahead but sooner than predicted corrects the prediction:
                    // the server's windows are shorter than assumed.)
                }
                (Some(reset), _) => {
                    s.window_end = Some(reset);
                    s.remaining = if first {
                        usable
                    } else {
                        s.remaining.min(usable)
                    };
                }
                (None, end) => {
                    // No reset reported: assume the window began now (the safe side: ours ends
                    // no earlier than the server's), or keep the one learnt so far.
                    if end.is_none() {
                        s.window_end = Some(now + s.learnt_window.unwrap_or(WINDOW));
                    }
                    s.remaining = if first {
                        usable
                    } else {
                        s.remaining.min(usable)
                    };
                }
            }
            if let Some(cap) = self.cap {
                s.remaining = s.remaining.min(cap);
            }
        } else if was_probing && s.limit.is_none() {
            // No rate-limit headers (e.g. a transport error or an unlimited server): keep probing
            // one request at a time until a response says what the limit is, unless the server
            // never sends them, in which case the cap (or a generous default) applies.
            if reset.is_none() && !headers.is_empty() {
                let l = self.cap.unwrap_or(10_000);
                s.limit = Some(l);
                s.remaining = l.saturating_sub(s.in_flight.len() as u32);
                s.window_end = Some(now + WINDOW);
            }
        }
        drop(s);
        if was_probing {
            self.probe_done.notify_waiters();
        }
    }

    /// Test hook: moves every time the budget keeps `secs` into the past, as if that much time
    /// had passed.
    #[cfg(test)]
    fn pretend_elapsed(&self, secs: f64) {
        let mut s = self.state.lock().expect("budget lock");
        if let Some(end) = s.window_end.as_mut() {
            *end -= secs;
        }
    }

    /// Gives back the unit of a request that was never sent.
    pub fn unspend(&self, ticket: Ticket) {
        let mut s = self.state.lock().expect("budget lock");
        s.in_flight.remove(&ticket.seq);
        if s.probing {
            s.probing = false;
            drop(s);
            self.probe_done.notify_waiters();
        } else if s.limit.is_some() {
            s.remaining += 1;
        }
    }

    /// A 429: nothing more may start until `retry_after` has passed.
    pub fn observe_429(&self, retry_after: Duration) {
        let mut s = self.state.lock().expect("budget lock");
        s.remaining = 0;
        // Retry-After is the server's own word on when the window reopens.
        s.window_end = Some(now_epoch() + retry_after.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(limit: u32, remaining: u32, reset: f64) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("x-ratelimit-limit", limit.to_string()),
            ("x-ratelimit-remaining", remaining.to_string()),
            ("x-ratelimit-reset", format!("{}", reset as u64)),
        ] {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_str(&v).unwrap(),
            );
        }
        h
    }

    #[tokio::test]
    async fn spends_what_the_server_reports_then_waits() {
        let b = RateBudget::new(None);
        let t = b.acquire().await;
        assert!(t.waited.is_zero());
        let reset = now_epoch() + 1.0;
        b.observe(t, &headers(3, 2, reset));
        let t = b.acquire().await;
        assert!(t.waited.is_zero());
        b.observe(t, &headers(3, 1, reset));
        let t = b.acquire().await;
        assert!(t.waited.is_zero());
        b.observe(t, &headers(3, 0, reset));
        // The window is spent: the next acquire sleeps to the reset.
        let waited = b.acquire().await.waited;
        assert!(waited > Duration::ZERO);
    }

    fn headers_without(
        limit: Option<u32>,
        remaining: Option<u32>,
        reset: Option<f64>,
    ) -> HeaderMap {
        let mut h = HeaderMap::new();
        let pairs = [
            ("x-ratelimit-limit", limit.map(|v| v.to_string())),
            ("x-ratelimit-remaining", remaining.map(|v| v.to_string())),
            ("x-ratelimit-reset", reset.map(|v| format!("{}", v as u64))),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                h.insert(
                    HeaderName::from_static(k),
                    HeaderValue::from_str(&v).unwrap(),
                );
            }
        }
        h.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        );
        h
    }

    /// Regression: without `X-RateLimit-Reset` the budget slept one window, found no window end
    /// and slept again, for ever, after `X-RateLimit-Limit` requests.
    #[tokio::test]
    async fn without_a_reset_header_a_spent_window_reopens() {
        let b = RateBudget::new(None);
        for remaining in [1, 0] {
            let t = b.acquire().await;
            b.observe(t, &headers_without(Some(2), Some(remaining), None));
        }
        match b.decide() {
            Decision::SleepUntil(t) => assert!(t - now_epoch() <= WINDOW + 1.0),
            _ => panic!("the window is spent: the budget must wait"),
        }
        b.pretend_elapsed(WINDOW + 1.0);
        assert!(
            matches!(b.decide(), Decision::Go(_)),
            "the assumed window ended: requests must go again"
        );
    }

    /// Odd headers (a reset far in the future, a reset given as seconds rather than an epoch,
    /// a missing `Remaining`) never make the budget wait longer than a window.
    #[tokio::test]
    async fn odd_rate_headers_fall_back_to_a_window() {
        for h in [
            headers_without(Some(2), Some(0), Some(now_epoch() + 86_400.0)),
            headers_without(Some(2), Some(0), Some(20.0)),
        ] {
            let b = RateBudget::new(None);
            let t = b.acquire().await;
            b.observe(t, &h);
            match b.decide() {
                Decision::SleepUntil(t) => {
                    assert!(
                        t - now_epoch() <= WINDOW + 1.0,
                        "waits {}s",
                        t - now_epoch()
                    )
                }
                _ => panic!("the window is spent: the budget must wait"),
            }
        }
        // Limit but no Remaining: the budget counts for itself, and the window reopens.
        let b = RateBudget::new(None);
        for _ in 0..2 {
            let t = b.acquire().await;
            b.observe(t, &headers_without(Some(2), None, None));
        }
        assert!(matches!(b.decide(), Decision::SleepUntil(_)));
        b.pretend_elapsed(WINDOW + 1.0);
        assert!(matches!(b.decide(), Decision::Go(_)));
    }

    /// The window length is learnt from consecutive resets, and used when they stop coming.
    #[tokio::test]
    async fn the_window_length_is_learnt() {
        let b = RateBudget::new(None);
        let start = now_epoch().floor();
        let t = b.acquire().await;
        b.observe(t, &headers_without(Some(5), Some(4), Some(start + 2.0)));
        let t = b.acquire().await;
        b.observe(t, &headers_without(Some(5), Some(4), Some(start + 4.0)));
        assert_eq!(b.window_len(), 2.0);
    }

    #[tokio::test]
    async fn cap_limits_below_the_server_limit() {
        let b = RateBudget::new(Some(2));
        let t = b.acquire().await;
        b.observe(t, &headers(75, 74, now_epoch() + 30.0));
        assert_eq!(b.limit(), Some(2));
        let s = b.state.lock().unwrap();
        assert!(s.remaining <= 2);
    }

    #[tokio::test]
    async fn a_429_blocks_until_retry_after() {
        let b = RateBudget::new(None);
        let t = b.acquire().await;
        b.observe(t, &headers(5, 4, now_epoch() + 30.0));
        b.observe_429(Duration::from_millis(300));
        let waited = b.acquire().await.waited;
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
    }

    #[tokio::test]
    async fn only_requests_started_later_are_held_back_from_the_window() {
        let b = RateBudget::new(None);
        let probe = b.acquire().await;
        let reset = now_epoch() + 30.0;
        b.observe(probe, &headers(10, 9, reset));
        // Three requests out; the first one's answer counted the first only, the last one's all.
        let t1 = b.acquire().await;
        let t2 = b.acquire().await;
        let t3 = b.acquire().await;
        b.observe(t3, &headers(10, 6, reset));
        // t1 and t2 were sent before t3, so the server's 6 already counts them: 6 remain.
        assert_eq!(b.state.lock().unwrap().remaining, 6);
        b.observe(t1, &headers(10, 8, reset));
        // An earlier answer says more remain, but the budget never grows inside a window.
        assert_eq!(b.state.lock().unwrap().remaining, 6);
        b.observe(t2, &headers(10, 7, reset));
        assert_eq!(b.state.lock().unwrap().remaining, 6);
        assert!(b.state.lock().unwrap().in_flight.is_empty());
    }

    /// Records what the budget reports, as live progress would show it.
    #[derive(Default)]
    struct Recorder {
        requests: std::sync::atomic::AtomicU64,
        waiting: Mutex<Option<Instant>>,
        waits: std::sync::atomic::AtomicU64,
    }

    impl Observer for Recorder {
        fn request_started(&self) {
            self.requests
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn rate_wait_began(&self, until: Instant) {
            self.waits
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *self.waiting.lock().unwrap() = Some(until);
        }
        fn rate_wait_ended(&self) {
            *self.waiting.lock().unwrap() = None;
        }
    }

    #[tokio::test]
    async fn the_observer_sees_requests_and_waits() {
        let b = RateBudget::new(None);
        let o = Arc::new(Recorder::default());
        b.set_observer(o.clone());
        assert_eq!(b.rate_limit(), None);
        let t = b.acquire().await;
        let reset = now_epoch() + 1.0;
        b.observe(t, &headers(2, 1, reset));
        let known = b.rate_limit().unwrap();
        assert_eq!((known.limit, known.remaining), (2, 1));
        assert!(known.resets_in.is_some());
        let t = b.acquire().await;
        b.observe(t, &headers(2, 0, reset));
        let watcher = {
            let o = o.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    if o.waiting.lock().unwrap().is_some() {
                        return true;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                false
            })
        };
        assert!(b.acquire().await.waited > Duration::ZERO);
        assert!(watcher.await.unwrap(), "the wait was never reported");
        assert!(o.waiting.lock().unwrap().is_none(), "the wait never ended");
        assert_eq!(o.waits.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(o.requests.load(std::sync::atomic::Ordering::Relaxed), 3);
    }
}
