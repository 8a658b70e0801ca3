//! The rate budget shared by every request of a run (all streams, all tasks).
//!
//! Greenhouse counts requests per credential in fixed windows (documented as 30 s) and reports
//! the count on every response (`X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//! = epoch seconds of the window end). The budget spends exactly what the server advertises, then
//! sleeps to the window reset instead of provoking 429s.
//!
//! The window's length is never taken for granted: 30 s is only the first guess, and the budget
//! follows what the server reports. Each window end the server states (a reset that moves on, a
//! 429's `Retry-After`) is compared with the last one; the step, divided by the number of windows
//! the budget saw pass in between, is the window length (so a window that changes mid-run is
//! followed from the next window on). Without a reset header, a refill of `Remaining` shows that
//! a new window began, and a spent window whose end the budget can only guess is not slept
//! through on the guess: one request goes out as a probe, and its 429's `Retry-After` says when
//! the window ends (only while the length is unknown: once learnt, the ends are predicted).
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
//! window from now" (the window length learnt so far, else 30 s, and a probe when spent); a reset
//! that is not believable (more than 5 minutes ahead) is treated the same, a small one as seconds
//! from now, an epoch in milliseconds as such; a missing `Remaining` means the budget counts its
//! own requests against the limit.
//! Each wait for a window is logged once (`rate_window_wait`).
//!
//! Which of our requests a response's `Remaining` had counted: the server counts a request when
//! it arrives, and requests do not arrive (or get answered) in the order they started. Any of
//! ours that was out at the same time as the answered one may have reached the server after
//! it: those in flight when it started, and those started since. `Remaining` less that many is
//! what is surely left, and the budget takes that when it learns of a window from the server.
//! Inside a window whose start the budget predicted itself, its own count of what it started is
//! exact, and an answer only lowers it when it shows more requests counted than all of ours
//! (`Remaining` below what our own count leaves): then someone else is using the credential,
//! and the sure estimate applies. (Taking the sure estimate every time would lose a request or
//! two to reordering in every window, as a window's count never grows back.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use tokio::sync::Notify;

use super::Observer;

/// The window length Greenhouse documents: the first guess, until the server's answers say better.
const WINDOW: f64 = 30.0;
/// Slack after a reported reset before spending the new window (clock skew, second rounding).
const RESET_MARGIN: f64 = 0.25;
/// A reported reset further ahead than this is not believed (a unit mix-up, a broken proxy):
/// the budget assumes one window from now instead, and a 429's `Retry-After` corrects it.
const MAX_RESET_AHEAD: f64 = 300.0;
/// A reset below this is a number of seconds from now, not an epoch time (some proxies and
/// APIs send it that way).
const EPOCH_FLOOR: f64 = 1_000_000_000.0;
/// A reset above this is an epoch in milliseconds (year 5138 in seconds).
const EPOCH_MS_FLOOR: f64 = 100_000_000_000.0;

/// Where the budget's idea of the current window's end comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndFrom {
    /// The server said so (a reset header, a 429's `Retry-After`).
    Server,
    /// Predicted from an earlier end and the window length the server's answers showed.
    Learnt,
    /// Nothing better than the documented 30 s: not worth sleeping through when spent.
    Guess,
}

/// Learns the window length from the window ends the server states.
#[derive(Debug, Default)]
struct Learner {
    /// The last window end the server stated.
    last_end: Option<f64>,
    /// Windows the budget saw pass (by its own prediction) since `last_end` was stated.
    passed: u32,
    /// The window length, once two stated ends showed it.
    window: Option<f64>,
}

impl Learner {
    /// The window length to predict with, and what such a prediction rests on.
    fn assumed(&self) -> (f64, EndFrom) {
        match self.window {
            Some(w) => (w, EndFrom::Learnt),
            None => (WINDOW, EndFrom::Guess),
        }
    }

    /// The server stated `end` as the end of the window it counted a request in.
    fn stated(&mut self, end: f64) {
        match self.last_end {
            Some(prev) if end > prev + 0.5 => {
                // The windows the budget saw pass in between split the step; none seen means
                // the server moved on sooner than predicted: one window.
                let step = (end - prev) / f64::from(self.passed.max(1));
                if (1.0 - 0.05..=MAX_RESET_AHEAD).contains(&step) {
                    // Windows are whole seconds on every server we know of; rounding absorbs
                    // the jitter of ends derived from a `Retry-After`.
                    let rounded = step.round();
                    self.window = Some(if (step - rounded).abs() < 0.1 {
                        rounded.max(1.0)
                    } else {
                        step
                    });
                }
                self.last_end = Some(end);
                self.passed = 0;
            }
            // The same window again, or a late answer from an earlier one.
            Some(_) => {}
            None => {
                self.last_end = Some(end);
                self.passed = 0;
            }
        }
    }
}

#[derive(Debug)]
struct State {
    /// Effective limit (server limit, capped by configuration), once known.
    limit: Option<u32>,
    /// Requests we may still start in the current window.
    remaining: u32,
    /// End of the current window, epoch seconds.
    window_end: Option<f64>,
    /// What `window_end` rests on.
    end_from: EndFrom,
    /// Requests started and not yet answered, by start sequence number, with how many other
    /// requests were in flight when each started.
    in_flight: BTreeMap<u64, u32>,
    /// The latest-started answered request and the `Remaining` it reported: a later-started
    /// request reporting more means a new window began in between (a refill).
    last_seen: Option<(u64, u32)>,
    /// The start sequence number of the first request after the budget last moved on to a new
    /// window by its own prediction.
    rolled_at: u64,
    /// The next start sequence number.
    next_seq: u64,
    /// A probe request is out to learn the limit, or the end of a spent window.
    probing: bool,
    /// The window length, learnt from the ends the server stated.
    learner: Learner,
    /// The window end last logged as a wait, so a wait is logged once per window.
    announced: Option<f64>,
}

impl State {
    /// What is left of a window the budget has been counting down after an answer reporting
    /// `reported` left (`usable` once our requests it may not have counted are taken off).
    fn remaining_after(&self, reported: u32, usable: u32) -> u32 {
        if reported >= self.remaining {
            // Consistent with our requests alone: our own count is exact (the server's number
            // is blurred by which of ours it had counted yet).
            self.remaining
        } else {
            // More counted than all of ours: another integration is spending the window.
            self.remaining.min(usable)
        }
    }
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
    /// Seconds added to the system clock: zero, except where a unit test lets time pass
    /// without waiting for it (`pretend_elapsed`).
    skew: Mutex<f64>,
}

/// What the budget knows about the current rate-limit window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Requests per window (the server's, capped by configuration).
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
                end_from: EndFrom::Guess,
                in_flight: BTreeMap::new(),
                last_seen: None,
                rolled_at: 0,
                next_seq: 0,
                probing: false,
                learner: Learner::default(),
                announced: None,
            }),
            cap,
            probe_done: Notify::new(),
            observer: OnceLock::new(),
            skew: Mutex::new(0.0),
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
        let now = self.now();
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
                    let d = Duration::from_secs_f64((t - self.now()).max(0.0));
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

    /// The budget's clock, epoch seconds.
    fn now(&self) -> f64 {
        now_epoch() + *self.skew.lock().expect("budget clock")
    }

    /// Counts a request as started and returns its sequence number.
    fn start(s: &mut State) -> u64 {
        let seq = s.next_seq;
        s.next_seq += 1;
        let out = s.in_flight.len() as u32;
        s.in_flight.insert(seq, out);
        seq
    }

    fn decide(&self) -> Decision {
        let mut s = self.state.lock().expect("budget lock");
        let now = self.now();
        let Some(limit) = s.limit else {
            if s.probing {
                return Decision::WaitForProbe;
            }
            s.probing = true;
            return Decision::Go(Self::start(&mut s));
        };
        if let Some(end) = s.window_end
            && now >= end + RESET_MARGIN
        {
            // A new fixed window began; its end is one window later. The next response
            // confirms or corrects both numbers.
            match (s.learner.window, s.learner.last_end) {
                (Some(w), Some(anchor)) if anchor <= end + 0.5 => {
                    // Counted from the last end the server stated, not from our own (possibly
                    // rounded-up) idea of it, so a prediction never drifts late.
                    let n = ((now - anchor) / w).floor() + 1.0;
                    s.window_end = Some(anchor + n * w);
                    s.end_from = EndFrom::Learnt;
                    s.learner.passed = n as u32;
                }
                _ => {
                    let (w, from) = s.learner.assumed();
                    let n = ((now - end) / w).floor() + 1.0;
                    s.window_end = Some(end + n * w);
                    s.end_from = from;
                    s.learner.passed = s.learner.passed.saturating_add(n as u32);
                }
            }
            s.rolled_at = s.next_seq;
            s.remaining = limit;
        }
        if s.remaining > 0 {
            s.remaining -= 1;
            Decision::Go(Self::start(&mut s))
        } else if s.end_from == EndFrom::Guess {
            // Spent, and the end is only the documented 30 s: sleeping on it could waste most
            // of a shorter window. One request asks instead; its 429 says when the window ends
            // (or its answer shows the window has already refilled).
            if s.probing {
                return Decision::WaitForProbe;
            }
            s.probing = true;
            Decision::Go(Self::start(&mut s))
        } else {
            // Without a reported end, one window from now is assumed (and remembered, so the
            // window reopens after it: sleeping "one window" again and again never would).
            let window = s.learner.window.unwrap_or(WINDOW);
            let end = *s.window_end.get_or_insert(now + window);
            Decision::SleepUntil(end + RESET_MARGIN)
        }
    }

    /// Records the answer to the request of `ticket` (any status, or none on a transport error:
    /// pass an empty header map). For a 429, call [`RateBudget::observe_429`] first.
    pub fn observe(&self, ticket: Ticket, headers: &HeaderMap) {
        let num = |name: &str| -> Option<f64> {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let limit = num("x-ratelimit-limit");
        let remaining = num("x-ratelimit-remaining");
        let now = self.now();
        // A reset that is not believable counts as none: the window is then predicted (or
        // probed), and a 429's `Retry-After` says better.
        let reset = num("x-ratelimit-reset")
            .map(|r| {
                if r >= EPOCH_MS_FLOOR {
                    r / 1000.0
                } else if r < EPOCH_FLOOR {
                    now + r
                } else {
                    r
                }
            })
            .filter(|at| *at <= now + MAX_RESET_AHEAD);
        let mut s = self.state.lock().expect("budget lock");
        let out_at_start = s.in_flight.remove(&ticket.seq).unwrap_or(0);
        // Ours that may have reached the server after this one: those out when it started and
        // every one started since.
        let started_since = s.next_seq.saturating_sub(ticket.seq + 1);
        let not_counted =
            u32::try_from(u64::from(out_at_start) + started_since).unwrap_or(u32::MAX);
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
            // A refill: a request started later than the last one answered reports more left
            // than that one did, by more than the requests started between them could explain
            // (they may have overtaken it). A new window began in between.
            // `Some(expected)`: expected when the budget had itself moved on to a new window
            // between the two requests' starts.
            let refill = match (remaining, s.last_seen) {
                (Some(_), Some((seq, prev)))
                    if ticket.seq > seq
                        && u64::from(reported) > u64::from(prev) + (ticket.seq - seq) =>
                {
                    Some(seq < s.rolled_at && s.rolled_at <= ticket.seq)
                }
                _ => None,
            };
            if remaining.is_some() && s.last_seen.is_none_or(|(seq, _)| ticket.seq > seq) {
                s.last_seen = Some((ticket.seq, reported));
            }
            s.limit = Some(limit);
            if let Some(reset) = reset {
                s.learner.stated(reset);
            }
            match (reset, s.window_end) {
                (Some(reset), Some(end)) if reset > end + 1.0 => {
                    // The server has moved on to a later window than we thought.
                    s.window_end = Some(reset);
                    s.end_from = EndFrom::Server;
                    s.remaining = usable;
                }
                (Some(reset), Some(end)) if reset < end - 1.0 && reset <= now => {
                    // A late answer from an earlier window: it says nothing about this one.
                    // (A reset still ahead but sooner than predicted corrects the prediction:
                    // the server's windows are shorter than assumed.)
                }
                (Some(reset), _) => {
                    s.window_end = Some(reset);
                    s.end_from = EndFrom::Server;
                    s.remaining = if first {
                        usable
                    } else {
                        s.remaining_after(reported, usable)
                    };
                }
                (None, end) => {
                    if refill == Some(false) && s.end_from == EndFrom::Guess {
                        // A new window began that the budget could not predict: spend what it
                        // holds; it ends one window from now at the latest. (Only while the end
                        // is a guess: with many requests out, answers overtake each other by
                        // more than the refill test can tell apart, and a predicted window
                        // needs no such hint.)
                        s.remaining = usable;
                        let (w, from) = s.learner.assumed();
                        s.window_end = Some(now + w);
                        s.end_from = from;
                    } else if s.end_from == EndFrom::Learnt && ticket.seq < s.rolled_at {
                        // Started before the budget moved on to the window it predicted: without
                        // a reset to tell, its `Remaining` (0, often: the window it was counted
                        // in was spent) describes the earlier window, not this one.
                    } else {
                        // No reset reported: assume the window began now (the safe side: ours
                        // ends no earlier than the server's), or keep the one learnt so far.
                        if end.is_none() {
                            let (w, from) = s.learner.assumed();
                            s.window_end = Some(now + w);
                            s.end_from = from;
                        }
                        s.remaining = if first {
                            usable
                        } else {
                            s.remaining_after(reported, usable)
                        };
                    }
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
                s.end_from = EndFrom::Learnt;
            }
        }
        drop(s);
        if was_probing {
            self.probe_done.notify_waiters();
        }
    }

    /// Test hook: lets `secs` pass on the budget's clock without waiting for them.
    #[cfg(test)]
    fn pretend_elapsed(&self, secs: f64) {
        *self.skew.lock().expect("budget clock") += secs;
    }

    /// Test hook: the window length the budget has learnt, if any.
    #[cfg(test)]
    fn learnt_window(&self) -> Option<f64> {
        self.state.lock().expect("budget lock").learner.window
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

    /// A 429: nothing more may start until `retry_after` has passed. Call it before
    /// [`RateBudget::observe`] for the same answer, so a task woken by that answer already sees
    /// the window's end.
    pub fn observe_429(&self, retry_after: Duration) {
        let mut s = self.state.lock().expect("budget lock");
        s.remaining = 0;
        let now = self.now();
        // Retry-After is the server's own word on when the window reopens.
        let end = now + retry_after.as_secs_f64();
        let predicted = s.end_from == EndFrom::Learnt;
        s.window_end = Some(end);
        s.end_from = EndFrom::Server;
        // Retry-After is whole seconds rounded up, and windows end on whole seconds: the end is
        // the whole second the rounding came from (the wait itself keeps the safe side; a
        // window predicted to end later than it does would let its last requests land in the
        // next window).
        let whole = end.floor();
        let stated = if whole > now { whole } else { end };
        s.learner.stated(stated);
        if predicted {
            // The learnt window did not end where predicted (it changed, or requests of another
            // integration spent it): the next ends are counted from this one.
            s.learner.last_end = Some(stated);
        }
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
        // Spent, and the end only guessed: one probe asks the server instead of sleeping 30 s.
        let Decision::Go(seq) = b.decide() else {
            panic!("a spent window with a guessed end is probed");
        };
        assert!(matches!(b.decide(), Decision::WaitForProbe));
        b.observe_429(Duration::from_secs(2));
        b.observe(
            Ticket {
                seq,
                waited: Duration::ZERO,
            },
            &headers_without(Some(2), Some(0), None),
        );
        match b.decide() {
            Decision::SleepUntil(t) => assert!(t - b.now() <= 2.0 + RESET_MARGIN + 0.01),
            _ => panic!("the window is spent: the budget must wait"),
        }
        b.pretend_elapsed(3.0);
        assert!(
            matches!(b.decide(), Decision::Go(_)),
            "the stated window ended: requests must go again"
        );
    }

    /// Odd headers (a reset far in the future, a reset given as seconds rather than an epoch
    /// or in milliseconds, a missing `Remaining`) never make the budget wait longer than a
    /// window.
    #[tokio::test]
    async fn odd_rate_headers_fall_back_to_a_window() {
        let now = now_epoch();
        for (h, wait) in [
            (headers_without(Some(2), Some(0), Some(20.0)), 20.0),
            (
                headers_without(Some(2), Some(0), Some((now + 3.0) * 1000.0)),
                3.0,
            ),
        ] {
            let b = RateBudget::new(None);
            let t = b.acquire().await;
            b.observe(t, &h);
            match b.decide() {
                Decision::SleepUntil(t) => {
                    let w = t - b.now();
                    assert!(w > wait - 1.5 && w <= wait + 1.0, "waits {w}s, not {wait}s");
                }
                _ => panic!("the window is spent: the budget must wait"),
            }
        }
        // A reset a day ahead is not believed: the end is a guess, so a probe asks.
        let b = RateBudget::new(None);
        let t = b.acquire().await;
        b.observe(t, &headers_without(Some(2), Some(0), Some(now + 86_400.0)));
        assert!(matches!(b.decide(), Decision::Go(_)));
        assert!(matches!(b.decide(), Decision::WaitForProbe));
        // Limit but no Remaining: the budget counts for itself, and the window reopens.
        let b = RateBudget::new(None);
        for _ in 0..2 {
            let t = b.acquire().await;
            b.observe(t, &headers_without(Some(2), None, None));
        }
        assert!(matches!(b.decide(), Decision::Go(_)), "probe");
        b.pretend_elapsed(WINDOW + 1.0);
        assert!(matches!(b.decide(), Decision::Go(_)));
    }

    /// A server with fixed windows aligned to multiples of their length (as Greenhouse's and
    /// the simulator's are), counting requests on arrival.
    struct Server {
        window: f64,
        limit: u32,
        /// Whether answers carry `X-RateLimit-Reset`.
        reset: bool,
        /// Requests another integration spends at the start of every window.
        others: u32,
        end: f64,
        used: u32,
    }

    impl Server {
        fn new(window: f64, limit: u32, reset: bool) -> Self {
            Server {
                window,
                limit,
                reset,
                others: 0,
                end: 0.0,
                used: 0,
            }
        }

        /// The answer to a request arriving at `now`: headers and, for a 429, its Retry-After.
        fn answer(&mut self, now: f64) -> (HeaderMap, Option<Duration>) {
            if now >= self.end {
                self.end = ((now / self.window).floor() + 1.0) * self.window;
                self.used = self.others;
            }
            let reset = self.reset.then_some(self.end);
            if self.used >= self.limit {
                let wait = (self.end - now).ceil().max(1.0);
                let h = headers_without(Some(self.limit), Some(0), reset);
                return (h, Some(Duration::from_secs_f64(wait)));
            }
            self.used += 1;
            let h = headers_without(Some(self.limit), Some(self.limit - self.used), reset);
            (h, None)
        }
    }

    /// What driving `requests` pages through a budget against `server` showed.
    #[derive(Debug)]
    struct Run {
        /// 429s by the server's window they fell in (counted from the first request's).
        rejected_in: Vec<u64>,
        /// Budget-clock seconds from the first request to the last answer.
        elapsed: f64,
    }

    /// Sends `requests` successful requests one at a time (each answered `latency` seconds
    /// after it starts), sleeping on the budget's clock whenever it says so; `change` switches
    /// the server's window length after that many successes.
    fn drive(
        b: &RateBudget,
        server: &mut Server,
        requests: u32,
        latency: f64,
        change: Option<(u32, f64)>,
    ) -> Run {
        let start = b.now();
        let first_window = (start / server.window).floor();
        let mut run = Run {
            rejected_in: Vec::new(),
            elapsed: 0.0,
        };
        let mut done = 0;
        let mut steps = 0;
        while done < requests {
            steps += 1;
            assert!(steps < 100_000, "the budget never let the run finish");
            if let Some((after, w)) = change
                && done == after
            {
                server.window = w;
            }
            match b.decide() {
                Decision::Go(seq) => {
                    let (h, rejected) = server.answer(b.now());
                    b.pretend_elapsed(latency);
                    if let Some(wait) = rejected {
                        let window = (b.now() / server.window).floor() - first_window;
                        run.rejected_in.push(window as u64);
                        b.observe_429(wait);
                    } else {
                        done += 1;
                    }
                    let ticket = Ticket {
                        seq,
                        waited: Duration::ZERO,
                    };
                    b.observe(ticket, &h);
                    if let Some(wait) = rejected {
                        // What the client does with a 429: wait Retry-After.
                        b.pretend_elapsed(wait.as_secs_f64());
                    }
                }
                Decision::SleepUntil(t) => b.pretend_elapsed((t - b.now()).max(0.0) + 0.001),
                Decision::WaitForProbe => panic!("one request at a time never waits for a probe"),
            }
        }
        run.elapsed = b.now() - start;
        run
    }

    /// Starts `n` requests the budget lets through at once (the window must have room).
    fn start(b: &RateBudget, n: usize) -> Vec<Ticket> {
        (0..n)
            .map(|_| match b.decide() {
                Decision::Go(seq) => Ticket {
                    seq,
                    waited: Duration::ZERO,
                },
                _ => panic!("the window has room"),
            })
            .collect()
    }

    /// Starts the budget's clock `into` seconds into one of `window`'s windows.
    fn budget_at(window: f64, into: f64) -> RateBudget {
        let b = RateBudget::new(None);
        let now = b.now();
        let next = ((now / window).floor() + 1.0) * window;
        b.pretend_elapsed(next - now + into);
        b
    }

    /// The window length is learnt from the reset moving on, for short and long windows, and
    /// the run then spends every window without a single 429 and without idling.
    #[tokio::test]
    async fn the_window_length_is_learnt_from_the_reset() {
        for (window, limit) in [(1.0, 3), (5.0, 15), (10.0, 30), (60.0, 50)] {
            let b = budget_at(window, window * 0.4);
            let mut server = Server::new(window, limit, true);
            let requests = limit * 6;
            let run = drive(&b, &mut server, requests, 0.01, None);
            assert_eq!(b.learnt_window(), Some(window), "{window}s windows");
            assert!(run.rejected_in.is_empty(), "{window}s: 429s {run:?}");
            // Six windows' worth starting 40 % into one: done by the end of the sixth.
            assert!(
                run.elapsed <= 6.0 * window - 0.4 * window + 1.0,
                "{window}s windows: {run:?}"
            );
        }
    }

    /// Without a reset header, the window's end comes from probing a spent window: the 429's
    /// Retry-After states it, two such ends show the length, and from then on the windows are
    /// predicted — no 429 after the second window, and no window slept through.
    #[tokio::test]
    async fn without_a_reset_the_window_is_learnt_from_retry_after() {
        for (window, limit) in [(5.0, 15), (10.0, 30), (2.0, 4)] {
            let b = budget_at(window, window * 0.3);
            let mut server = Server::new(window, limit, false);
            let requests = limit * 8;
            let run = drive(&b, &mut server, requests, 0.01, None);
            assert_eq!(b.learnt_window(), Some(window), "{window}s windows");
            assert!(
                run.rejected_in.len() <= 2 && run.rejected_in.iter().all(|w| *w < 2),
                "{window}s: 429s after learning {run:?}"
            );
            assert!(
                run.elapsed <= 8.0 * window - 0.3 * window + 1.5,
                "{window}s windows: {run:?}"
            );
        }
    }

    /// A window that changes length mid-run is followed from the next window on.
    #[tokio::test]
    async fn a_window_that_changes_mid_run_is_followed() {
        for (from, to) in [(5.0, 10.0), (10.0, 5.0)] {
            let b = budget_at(10.0, 1.0);
            let mut server = Server::new(from, 10, true);
            let run = drive(&b, &mut server, 100, 0.01, Some((40, to)));
            assert_eq!(b.learnt_window(), Some(to), "{from}s → {to}s");
            assert!(run.rejected_in.is_empty(), "{from}s → {to}s: {run:?}");
        }
    }

    /// Another integration spending part of every window leaves the rest to us, without 429s.
    #[tokio::test]
    async fn other_integrations_usage_is_respected() {
        for reset in [true, false] {
            let b = budget_at(5.0, 1.0);
            let mut server = Server::new(5.0, 15, reset);
            server.others = 6;
            let run = drive(&b, &mut server, 90, 0.01, None);
            let after_learning = run.rejected_in.iter().filter(|w| **w >= 2).count();
            assert_eq!(after_learning, 0, "reset {reset}: {run:?}");
            // 9 of ours per window: ten windows, the first one started 1 s in.
            assert!(run.elapsed <= 10.0 * 5.0, "reset {reset}: {run:?}");
        }
    }

    /// Requests started together and counted out of order leave no unit of the window unused.
    #[tokio::test]
    async fn answers_out_of_order_do_not_shrink_the_window() {
        let b = RateBudget::new(None);
        let reset = b.now() + 4.0;
        let t = b.acquire().await;
        b.observe(t, &headers(15, 14, reset));
        let tickets: Vec<Ticket> = start(&b, 8);
        // The server counted the second before the first, and so on; answers come back in the
        // order they were counted.
        let arrival = [1, 0, 3, 2, 5, 4, 7, 6];
        for (i, k) in arrival.iter().enumerate() {
            b.observe(tickets[*k], &headers(15, 13 - i as u32, reset));
        }
        assert_eq!(b.state.lock().unwrap().remaining, 6, "15 - 1 - 8");
    }

    /// A window the server reports before the budget predicted it: an answer that overtook
    /// requests started before it never makes the budget spend more than is left.
    #[tokio::test]
    async fn a_window_learnt_from_an_overtaking_answer_is_not_overspent() {
        let b = RateBudget::new(None);
        let (r1, r2) = (b.now() + 2.0, b.now() + 7.0);
        let t = b.acquire().await;
        b.observe(t, &headers(15, 14, r1));
        let tickets: Vec<Ticket> = start(&b, 5);
        // All five reach the server in its next window, the first one last; the third's answer
        // (13 left: only the second and itself counted) comes back first.
        b.observe(tickets[2], &headers(15, 13, r2));
        let left = b.state.lock().unwrap().remaining;
        assert!(
            left <= 10,
            "15 - 5 are left at most, the budget would spend {left}"
        );
        for (k, r) in [(1, 14), (3, 12), (4, 11), (0, 10)] {
            b.observe(tickets[k], &headers(15, r, r2));
        }
        assert!(b.state.lock().unwrap().remaining <= 10);
    }

    /// Without a reset header, an answer from the window before, arriving after the budget moved
    /// on to the next one it predicted, does not empty the new window.
    #[tokio::test]
    async fn a_late_answer_from_the_last_window_leaves_the_new_one_alone() {
        let b = budget_at(5.0, 1.0);
        let mut server = Server::new(5.0, 15, false);
        drive(&b, &mut server, 60, 0.01, None);
        assert_eq!(b.learnt_window(), Some(5.0));
        // Spend the rest of the window, keeping the last request's answer back.
        let mut last: Option<(u64, HeaderMap)> = None;
        loop {
            match b.decide() {
                Decision::Go(seq) => {
                    let (h, rejected) = server.answer(b.now());
                    assert!(rejected.is_none(), "the learnt window is not overspent");
                    if let Some((prev, ph)) = last.replace((seq, h)) {
                        let ticket = Ticket {
                            seq: prev,
                            waited: Duration::ZERO,
                        };
                        b.observe(ticket, &ph);
                    }
                }
                Decision::SleepUntil(t) if last.is_some() => {
                    b.pretend_elapsed(t - b.now() + 0.001);
                    break;
                }
                Decision::SleepUntil(t) => b.pretend_elapsed(t - b.now() + 0.001),
                Decision::WaitForProbe => panic!("no probe once the window is learnt"),
            }
        }
        // The budget moves on to the next window and starts a request in it …
        assert!(matches!(b.decide(), Decision::Go(_)));
        // … and only then the old window's last answer (nothing left, it says) comes back.
        let (seq, h) = last.unwrap();
        b.observe(
            Ticket {
                seq,
                waited: Duration::ZERO,
            },
            &h,
        );
        assert_eq!(b.state.lock().unwrap().remaining, 14);
    }

    /// Without a reset header, a `Remaining` that refills shows a new window began early.
    #[tokio::test]
    async fn a_refill_without_a_reset_opens_the_new_window() {
        let b = RateBudget::new(None);
        for remaining in [4, 3, 2] {
            let t = b.acquire().await;
            b.observe(t, &headers_without(Some(5), Some(remaining), None));
        }
        let t = b.acquire().await;
        b.observe(t, &headers_without(Some(5), Some(4), None));
        assert_eq!(b.state.lock().unwrap().remaining, 4);
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
