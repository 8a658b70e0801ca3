//! Fixed-window rate limiting per credential.
//!
//! Contract: windows are aligned to epoch multiples of the window length (30 s for `/v3`,
//! 60 s for `/token` by default).  Each allowed request consumes one unit; a request over
//! the limit is refused with the seconds left in the window (≥ 1) and consumes nothing.
//! A limit of 0 means unlimited (callers then omit the `X-RateLimit-*` headers).

use std::collections::HashMap;

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

#[cfg(test)]
mod tests {
    use super::*;

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
