//! Reproducible fault injection for `/v3` requests.
//!
//! Contract: whether request number `seq` (counted from 0 over all `/v3` requests since
//! start or reset) fails, and how, is a pure function of (seed, seq, fail rate, enabled
//! kinds, whether the request carried a cursor).  Faults only replace responses that would
//! otherwise have been 200; they never apply to `/token` or `/_sim`.

use std::str::FromStr;

use super::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// 500 with a JSON body.
    E500,
    /// 502 with a JSON body.
    E502,
    /// 503 with a JSON body.
    E503,
    /// 200 headers and part of a chunked body, then the connection is dropped.
    Reset,
    /// `Content-Length` larger than what is sent, then the connection is closed.
    Truncate,
    /// A normal response after an extra delay (`--slow-ms`).
    Slow,
    /// 422 `Cursor expired` (only drawn for requests carrying a cursor).
    CursorExpired,
    /// The page of the request's cursor, with a next link that repeats that cursor (only drawn
    /// for requests carrying a cursor): a client that follows it blindly never ends.
    RepeatCursor,
}

impl FaultKind {
    pub const ALL: &'static [FaultKind] = &[
        FaultKind::E500,
        FaultKind::E502,
        FaultKind::E503,
        FaultKind::Reset,
        FaultKind::Truncate,
        FaultKind::Slow,
        FaultKind::CursorExpired,
        FaultKind::RepeatCursor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::E500 => "500",
            FaultKind::E502 => "502",
            FaultKind::E503 => "503",
            FaultKind::Reset => "reset",
            FaultKind::Truncate => "truncate",
            FaultKind::Slow => "slow",
            FaultKind::CursorExpired => "cursor_expired",
            FaultKind::RepeatCursor => "repeat_cursor",
        }
    }

    /// Drawn only for requests that carry a cursor.
    fn needs_cursor(self) -> bool {
        matches!(self, FaultKind::CursorExpired | FaultKind::RepeatCursor)
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown fault kind `{s}` (expected 500, 502, 503, reset, truncate, slow, cursor_expired, repeat_cursor)"))
    }
}

/// The fault for request `seq`, if any.
pub fn decide(
    seed: u64,
    seq: u64,
    rate: f64,
    kinds: &[FaultKind],
    has_cursor: bool,
) -> Option<FaultKind> {
    if rate <= 0.0 {
        return None;
    }
    let mut rng = Rng::new(&[seed, seq, 0xFA17]);
    if !rng.chance(rate) {
        return None;
    }
    let usable: Vec<FaultKind> = kinds
        .iter()
        .copied()
        .filter(|k| has_cursor || !k.needs_cursor())
        .collect();
    if usable.is_empty() {
        return None;
    }
    Some(usable[rng.below(usable.len() as u64) as usize])
}
