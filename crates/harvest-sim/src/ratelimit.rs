//! Fixed-window rate limiting per credential.
//!
//! Contract: windows are aligned to epoch multiples of the window length (30 s for `/v3`,
//! 60 s for `/token` by default).  Each allowed request consumes one unit; a request over
//! the limit is refused with the seconds left in the window (≥ 1) and consumes nothing.
//! A limit of 0 means unlimited (callers then omit the `X-RateLimit-*` headers).
//!
//! [`WindowHistogram`] counts `/v3` requests per window for `/_sim/stats`, so a benchmark can
//! see how much of each window's budget a client used and where it was refused.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Epoch seconds at which the current window ends.
    pub reset: u64,
    /// Seconds until the window ends, at least 1.
    pub retry_after: u64,
}

#[derive(Debug)]
pub struct Limiter {
    limit: u32,
    window_secs: u64,
    buckets: HashMap<String, (u64, u32)>,
}

impl Limiter {
    pub fn new(limit: u32, window_secs: u64) -> Self {
        Limiter {
            limit,
            window_secs: window_secs.max(1),
            buckets: HashMap::new(),
        }
    }

    pub fn clear(&mut self) {
        self.buckets.clear();
    }

    /// Consumes one unit for `key` at `now_ms` if the window allows it.
    pub fn check(&mut self, key: &str, now_ms: i64) -> Decision {
        let now_s = (now_ms.max(0) / 1000) as u64;
        let start = now_s - now_s % self.window_secs;
        let reset = start + self.window_secs;
        let retry_after = (((reset * 1000) as i64 - now_ms + 999) / 1000).max(1) as u64;
        if self.limit == 0 {
            return Decision {
                allowed: true,
                limit: 0,
                remaining: 0,
                reset,
                retry_after,
            };
        }
        let b = self.buckets.entry(key.to_string()).or_insert((start, 0));
        if b.0 != start {
            *b = (start, 0);
        }
        let allowed = b.1 < self.limit;
        if allowed {
            b.1 += 1;
        }
        Decision {
            allowed,
            limit: self.limit,
            remaining: self.limit - b.1,
            reset,
            retry_after,
        }
    }
}

/// Requests seen in one rate window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct WindowCount {
    /// Epoch seconds at which the window starts.
    pub start: u64,
    pub requests: u64,
    /// 200 responses.
    pub ok: u64,
    /// 429 responses.
    pub rate_limited: u64,
}

/// Per-window request counts, keeping only the newest `cap` windows.
///
/// A map rather than a queue because requests are recorded when their response is ready
/// (after the simulated latency), so a slow response can land after a newer window opened.
#[derive(Debug)]
pub struct WindowHistogram {
    window_secs: u64,
    cap: usize,
    windows: BTreeMap<u64, WindowCount>,
}

impl WindowHistogram {
    /// Windows kept by the server: 10 000 × 30 s ≈ 3.5 days, a few hundred KB at most.
    pub const DEFAULT_CAP: usize = 10_000;

    pub fn new(window_secs: u64, cap: usize) -> Self {
        WindowHistogram {
            window_secs: window_secs.max(1),
            cap: cap.max(1),
            windows: BTreeMap::new(),
        }
    }

    /// Counts one request that arrived at `arrived_ms` (the instant the limiter judged it).
    pub fn record(&mut self, arrived_ms: i64, status: u16) {
        let now_s = (arrived_ms.max(0) / 1000) as u64;
        let start = now_s - now_s % self.window_secs;
        if self.windows.len() >= self.cap
            && !self.windows.contains_key(&start)
            && self
                .windows
                .first_key_value()
                .is_some_and(|(k, _)| *k > start)
        {
            // Older than everything kept: it would be evicted at once.
            return;
        }
        let w = self.windows.entry(start).or_insert(WindowCount {
            start,
            ..WindowCount::default()
        });
        w.requests += 1;
        match status {
            200 => w.ok += 1,
            429 => w.rate_limited += 1,
            _ => {}
        }
        while self.windows.len() > self.cap {
            self.windows.pop_first();
        }
    }

    /// The kept windows, oldest first.
    pub fn windows(&self) -> Vec<WindowCount> {
        self.windows.values().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_by_aligned_window() {
        let mut h = WindowHistogram::new(30, 10);
        let base = 1_800_000_000_000i64; // an epoch multiple of 30 s, in ms
        h.record(base + 29_999, 429);
        h.record(base, 200);
        h.record(base + 30_000, 200);
        h.record(base + 1, 500);
        let w = h.windows();
        assert_eq!(
            w,
            vec![
                WindowCount {
                    start: 1_800_000_000,
                    requests: 3,
                    ok: 1,
                    rate_limited: 1
                },
                WindowCount {
                    start: 1_800_000_030,
                    requests: 1,
                    ok: 1,
                    rate_limited: 0
                },
            ]
        );
    }

    #[test]
    fn histogram_keeps_the_newest_windows() {
        let mut h = WindowHistogram::new(30, 3);
        let base = 1_800_000_000_000i64;
        // Out of order on purpose: responses are recorded when they finish.
        for k in [1, 0, 2, 4, 3] {
            h.record(base + k * 30_000, 200);
        }
        h.record(base, 200); // older than every kept window: dropped
        let starts: Vec<u64> = h.windows().iter().map(|w| w.start).collect();
        assert_eq!(starts, vec![1_800_000_060, 1_800_000_090, 1_800_000_120]);
    }

    #[test]
    fn fixed_window() {
        let mut l = Limiter::new(2, 30);
        let t = 1_000_020_000; // 20 s into a window starting at 1_000_000 s... aligned below
        assert!(l.check("a", t).allowed);
        assert!(l.check("a", t).allowed);
        let d = l.check("a", t);
        assert!(!d.allowed);
        assert_eq!(d.reset % 30, 0);
        assert!(d.retry_after >= 1 && d.retry_after <= 30);
        assert!(l.check("b", t).allowed);
        assert!(l.check("a", t + 30_000).allowed);
    }
}
