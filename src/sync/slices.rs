//! Sliced backfills: cutting a large window into `updated_at` slices that are read concurrently —
//! the heuristics, the planning from a probe page, and the range algebra of the persisted
//! [`Slices`] progress (cover, merge, resume), all in one place.
//!
//! Harvest v3 pages one cursor chain at a time, so a stream with thousands of pages read as one
//! chain takes pages × latency however much rate budget is left. Cutting its window into slices
//! (`gte|a|lt|b`, …, `gte|y|lte|signpost`) gives several chains that share the run's budget; each
//! completed slice is committed to the state, so a crashed backfill resumes from the slices that
//! are done.
//!
//! A slice is never decided after its first page: the cursor of a chain covers the whole filter,
//! so a chain cannot be split once started. The engine therefore reads the first page of the
//! whole window (the *probe*) and, only when it says the window is large, abandons that chain
//! and plans slices. The cost of slicing, stated in the bench: the probe page (1 request), the
//! lower-bound search when the window has no lower bound ([`SEARCH_STEPS`] one-row requests),
//! and at most one partly filled last page per slice.
//!
//! When slicing pays: one chain at a page latency `L` spends `1/L` requests per second, so a
//! stream's chain is the run's bottleneck only when it is long compared with everything else, and
//! at the start of a run many streams share the budget anyway. Slicing is therefore reserved for
//! windows estimated at more than two slices of `backfill_slice_pages` pages each (default
//! [`crate::config::DEFAULT_BACKFILL_SLICE_PAGES`]): a first sync of a large account, where one stream can hold
//! thousands of pages. Smaller windows are one chain and cost nothing extra.
//!
//! How large is large: the probe page holds `per_page` rows whose cursor values span
//! `[oldest, newest]`; at that density the window `[lower, newest]` would hold about
//! `per_page × (newest − lower) / (newest − oldest)` rows. The probe page is the newest-created
//! rows, which on a growing account are denser in time than older ones, so this overestimates;
//! the per-slice minimum keeps the slicing overhead near 1 % even so. The estimate only decides how
//! many slices to cut; correctness never depends on it (the slices cover the window exactly).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::window::{Range, Window};
use crate::events;
use crate::harvest::{HarvestClient, RequestStats};
use crate::registry::Stream;
use crate::state::{BEGINNING, Slice, Slices};

/// Slice only windows that reach back at least this far (backfills, long gaps); an hourly
/// incremental window is one chain.
pub const MIN_BACKFILL_SPAN: Duration = Duration::days(7);
/// One-row requests spent searching the oldest record of a window without a lower bound.
pub const SEARCH_STEPS: u32 = 4;

/// The earliest `updated_at` the lower-bound search considers (Greenhouse launched in 2012).
/// Older records are still read: the first slice has no lower bound.
pub fn search_floor() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2012, 1, 1, 0, 0, 0)
        .single()
        .expect("valid constant date")
}

/// The cursor values seen on a probe page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub rows: usize,
    pub newest: DateTime<Utc>,
    pub oldest: DateTime<Utc>,
}

/// Reads the cursor values of a page body; `None` when the page has none (or is not readable:
/// not a JSON array of objects).
///
/// Only the cursor field of each record is looked at; every other value is skipped unparsed,
/// so the probe costs no tree of the page's records.
pub fn sample(body: &[u8], cursor_field: &str) -> Option<Sample> {
    use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::value::RawValue;

    /// A page: counts its records and keeps the range of their cursor timestamps.
    struct Page<'c> {
        cursor: &'c str,
        rows: usize,
        range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    }
    impl<'de> Visitor<'de> for &mut Page<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of records")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while let Some(at) = seq.next_element_seed(Record(self.cursor))? {
                self.rows += 1;
                if let Some(t) = at {
                    self.range = Some(match self.range {
                        Some((lo, hi)) => (lo.min(t), hi.max(t)),
                        None => (t, t),
                    });
                }
            }
            Ok(())
        }
    }
    /// A record: its cursor value when that is an RFC 3339 string (the last, on a repeated key,
    /// as in a parsed JSON object).
    struct Record<'c>(&'c str);
    impl<'de> DeserializeSeed<'de> for Record<'_> {
        type Value = Option<DateTime<Utc>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Record<'_> {
        type Value = Option<DateTime<Utc>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a record (a JSON object)")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut at = None;
            while let Some(crate::convert::BorrowedKey(k)) = map.next_key()? {
                if k == self.0 {
                    let raw: &RawValue = map.next_value()?;
                    at = serde_json::from_str::<std::borrow::Cow<str>>(raw.get())
                        .ok()
                        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                        .map(|t| t.with_timezone(&Utc));
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(at)
        }
    }
    let mut page = Page {
        cursor: cursor_field,
        rows: 0,
        range: None,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    de.deserialize_seq(&mut page).ok()?;
    de.end().ok()?;
    let (oldest, newest) = page.range?;
    Some(Sample {
        rows: page.rows,
        newest,
        oldest,
    })
}

/// Estimated pages of `[lower, sample.newest]` at the probe page's density (see the module docs).
pub fn estimate_pages(sample: &Sample, lower: DateTime<Utc>) -> u64 {
    let page_span = (sample.newest - sample.oldest)
        .num_milliseconds()
        .max(1_000) as f64;
    let span = (sample.newest - lower).num_milliseconds().max(0) as f64;
    (span / page_span).ceil().max(1.0) as u64
}

/// How many slices an estimated `pages` deserves at `per_slice` pages each, at most `max_slices`.
pub fn slice_count(pages: u64, per_slice: u64, max_slices: usize) -> usize {
    ((pages / per_slice.max(1)) as usize).clamp(1, max_slices.max(1))
}

/// `n − 1` cut points splitting `[lower, to]` into `n` equal slices, on whole milliseconds (the
/// filter grammar's precision, so `lt|c` and `gte|c` partition exactly).
pub fn cuts(lower: DateTime<Utc>, to: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    if n < 2 || lower >= to {
        return Vec::new();
    }
    let span = (to - lower).num_milliseconds();
    let mut out: Vec<DateTime<Utc>> = (1..n as i64)
        .filter_map(|i| {
            let ms = lower.timestamp_millis() + span * i / n as i64;
            DateTime::from_timestamp_millis(ms)
        })
        .filter(|c| *c > lower && *c < to)
        .collect();
    out.dedup();
    out
}

/// Is a window from `from` to `to` wide enough to be worth slicing?
pub fn is_backfill(from: Option<DateTime<Utc>>, to: DateTime<Utc>) -> bool {
    from.is_none_or(|f| to - f >= MIN_BACKFILL_SPAN)
}

/// How a window may be sliced (from the configuration).
#[derive(Debug, Clone, Copy)]
pub struct SliceLimits {
    /// At most this many slices per window (`backfill_slices`; 1 = never slice).
    pub max_slices: usize,
    /// Aim for at least this many pages per slice (`backfill_slice_pages`).
    pub pages_per_slice: u64,
}

/// Decides from the probe page `body` (the first page of `window` with the partition's
/// `params`) whether the window deserves slices, and where to cut it. `None`: read it as one
/// chain.
pub async fn plan(
    client: &HarvestClient,
    stream: &Stream,
    params: &BTreeMap<String, String>,
    window: &Window,
    body: &[u8],
    limits: SliceLimits,
    stats: &Arc<RequestStats>,
) -> Option<Slices> {
    let to = window.to?;
    let sample = sample(body, stream.cursor_field()?)?;
    let (max, per_slice) = (limits.max_slices, limits.pages_per_slice);
    let worth_slicing = |lower| slice_count(estimate_pages(&sample, lower), per_slice, max) >= 2;
    // Even from the earliest plausible start the window would not fill two slices: one chain.
    let floor = window.from.unwrap_or_else(search_floor);
    if !worth_slicing(floor) {
        return None;
    }
    let lower = match window.from {
        Some(from) => from,
        None => search_lower_bound(client, stream, params, &sample, &worth_slicing, stats).await?,
    };
    let n = slice_count(estimate_pages(&sample, lower), per_slice, max);
    let cuts = cuts(lower, to, n);
    if cuts.is_empty() {
        return None;
    }
    events::slices_planned(&stream.name, cuts.len() + 1, &lower.to_rfc3339());
    Some(Slices {
        window_from: window.from,
        window_to: to,
        cuts,
        done: Vec::new(),
        unmerged: Vec::new(),
    })
}

/// Finds roughly where the oldest record of a window without a lower bound is, with at most
/// [`SEARCH_STEPS`] one-row requests (`per_page=1&fields=id`), bisecting between the search
/// floor and the probe page's oldest cursor. No record before `lo` means the window is no larger
/// than the estimate from `lo`: once that no longer `qualifies` for slicing, the search stops and
/// returns `None` (read one chain). A failed request ends the search early.
async fn search_lower_bound(
    client: &HarvestClient,
    stream: &Stream,
    params: &BTreeMap<String, String>,
    sample: &Sample,
    qualifies: &dyn Fn(DateTime<Utc>) -> bool,
    stats: &Arc<RequestStats>,
) -> Option<DateTime<Utc>> {
    let filter = stream.window_filter()?;
    let (mut lo, mut hi) = (search_floor(), sample.oldest);
    for _ in 0..SEARCH_STEPS {
        if hi - lo <= Duration::days(1) {
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
        let url = client.first_page_url(&stream.resource, &p, Some(1));
        match client.get_page(&url, stats).await {
            Ok(page) if page.body.contains(&b'{') => hi = mid,
            Ok(_) => {
                lo = mid;
                if !qualifies(lo) {
                    return None;
                }
            }
            Err(e) => {
                events::lower_bound_search_stopped(&stream.name, &e);
                break;
            }
        }
    }
    Some(lo)
}

/// The range algebra of a sliced window's progress (the type is part of the state document).
impl Slices {
    pub fn new(window_to: DateTime<Utc>) -> Self {
        Slices {
            window_from: None,
            window_to,
            cuts: Vec::new(),
            done: Vec::new(),
            unmerged: Vec::new(),
        }
    }

    /// The slices of the window as half-open ranges (the last one ends at `window_to`, which
    /// the reader includes).
    pub fn ranges(&self) -> Vec<Slice> {
        let start = self.window_from.unwrap_or(BEGINNING);
        let mut bounds = vec![start];
        bounds.extend(
            self.cuts
                .iter()
                .copied()
                .filter(|c| *c > start && *c < self.window_to),
        );
        bounds.push(self.window_to);
        bounds.dedup();
        bounds
            .windows(2)
            .map(|w| Slice {
                from: w[0],
                to: w[1],
            })
            .collect()
    }

    /// The slices not completed yet.
    pub fn pending(&self) -> Vec<Slice> {
        self.ranges()
            .into_iter()
            .filter(|s| !self.completed(s.from, s.to))
            .collect()
    }

    /// Is `[from, to)` entirely covered by completed slices? (An empty range is.)
    pub fn completed(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        from >= to || self.first_gap(from) >= to
    }

    /// Records `[from, to)` as done, merging overlapping and adjacent ranges.
    pub fn mark_done(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        if from >= to {
            return;
        }
        self.done.push(Slice { from, to });
        self.done.sort_by_key(|s| s.from);
        let mut merged: Vec<Slice> = Vec::with_capacity(self.done.len());
        for s in self.done.drain(..) {
            match merged.last_mut() {
                Some(last) if s.from <= last.to => last.to = last.to.max(s.to),
                _ => merged.push(s),
            }
        }
        self.done = merged;
    }

    /// The first instant at or after `from` that is not covered (where a resumed run continues).
    pub fn first_gap(&self, from: DateTime<Utc>) -> DateTime<Utc> {
        let mut done = self.done.clone();
        done.sort_by_key(|s| s.from);
        let mut cursor = from;
        for s in done {
            if s.from > cursor {
                break;
            }
            cursor = cursor.max(s.to);
        }
        cursor
    }

    /// The plan of a run that resumes this window with a later signpost `to`: the same slices,
    /// with the last one extended to `to`. When the last slice was already completed, a new one
    /// starts `lookback` before the old end, to catch records committed late near the old
    /// signpost (the same reason every incremental window reaches back by the lookback).
    pub fn resumed(&self, to: DateTime<Utc>, lookback: Duration) -> Slices {
        let mut next = self.clone();
        if to <= self.window_to {
            return next;
        }
        next.window_to = to;
        let ranges = self.ranges();
        if let Some(last) = ranges.last()
            && self.completed(last.from, last.to)
        {
            let tail = (self.window_to - lookback).max(last.from);
            if tail > last.from {
                next.cuts.push(tail);
            }
            // Without a cut the whole last slice is read again; with one, `done` still covers
            // [last.from, old window_to) and the new slice starts at the cut.
            next.done.retain(|d| d.to <= tail || d.from < tail);
            for d in &mut next.done {
                d.to = d.to.min(tail.max(d.from));
            }
            next.done.retain(|d| d.from < d.to);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn cuts_are_uniform_and_inside() {
        let c = cuts(t(1), t(5), 4);
        assert_eq!(c, vec![t(2), t(3), t(4)]);
        assert!(cuts(t(1), t(5), 1).is_empty());
        assert!(cuts(t(5), t(1), 4).is_empty());
    }

    #[test]
    fn the_estimate_scales_with_the_span() {
        let s = Sample {
            rows: 500,
            newest: t(11),
            oldest: t(10),
        };
        assert_eq!(estimate_pages(&s, t(1)), 10);
        assert_eq!(slice_count(10, 50, 8), 1);
        assert_eq!(slice_count(400, 50, 8), 8);
        assert_eq!(slice_count(120, 50, 8), 2);
        assert_eq!(
            slice_count(399, crate::config::DEFAULT_BACKFILL_SLICE_PAGES, 8),
            1
        );
    }

    #[test]
    fn samples_read_the_cursor() {
        let body = br#"[{"id":2,"updated_at":"2026-01-03T00:00:00.000Z"},{"id":1,"updated_at":"2026-01-02T00:00:00Z"},{"id":0,"updated_at":null}]"#;
        let s = sample(body, "updated_at").unwrap();
        assert_eq!((s.rows, s.newest, s.oldest), (3, t(3), t(2)));
        assert!(sample(b"[]", "updated_at").is_none());
        // Other fields of any shape are skipped; a cursor that is not a timestamp string counts
        // the row but not its time; a body that is not an array of objects is no sample.
        let body = br#"[{"a":{"b":[1,{"c":"\"x"}]},"updated_at":"2026-01-05T00:00:00Z"},{"updated_at":7},{"updated_at":"2026-01-04T00:00:00Z","updated_at":"2026-01-02T00:00:00+00:00"}]"#;
        let s = sample(body, "updated_at").unwrap();
        assert_eq!((s.rows, s.newest, s.oldest), (3, t(5), t(2)));
        assert!(
            sample(
                br#"[{"updated_at":"2026-01-05T00:00:00Z"},3]"#,
                "updated_at"
            )
            .is_none()
        );
        assert!(
            sample(
                br#"[{"updated_at":"2026-01-05T00:00:00Z"}] x"#,
                "updated_at"
            )
            .is_none()
        );
        assert!(sample(br#"{"updated_at":"2026-01-05T00:00:00Z"}"#, "updated_at").is_none());
    }

    #[test]
    fn backfills_are_wide_windows() {
        assert!(is_backfill(None, t(2)));
        assert!(is_backfill(Some(t(1)), t(9)));
        assert!(!is_backfill(Some(t(1)), t(3)));
    }

    fn h(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, hour, 0, 0).unwrap()
    }

    #[test]
    fn slices_cover_and_merge() {
        let mut s = Slices::new(h(20));
        assert!(s.completed(h(3), h(3)));
        assert!(!s.completed(h(0), h(1)));
        s.mark_done(h(4), h(6));
        s.mark_done(h(0), h(2));
        s.mark_done(h(2), h(3)); // adjacent: merges with [0,2)
        assert_eq!(
            s.done,
            vec![
                Slice {
                    from: h(0),
                    to: h(3)
                },
                Slice {
                    from: h(4),
                    to: h(6)
                }
            ]
        );
        assert!(s.completed(h(0), h(3)));
        assert!(s.completed(h(1), h(2)));
        assert!(!s.completed(h(0), h(4)));
        assert!(!s.completed(h(2), h(5)));
        assert_eq!(s.first_gap(h(0)), h(3));
        assert_eq!(s.first_gap(h(5)), h(6));
        s.mark_done(h(3), h(4));
        assert!(s.completed(h(0), h(6)));
        assert_eq!(s.done.len(), 1);
        // Unsorted input (hand-edited state) still answers correctly.
        let u = Slices {
            window_from: None,
            window_to: h(20),
            cuts: vec![],
            done: vec![
                Slice {
                    from: h(5),
                    to: h(9),
                },
                Slice {
                    from: h(1),
                    to: h(5),
                },
            ],
            unmerged: vec![],
        };
        assert!(u.completed(h(1), h(9)));
    }

    #[test]
    fn slices_plan_pending_and_resume() {
        let mut s = Slices {
            window_from: None,
            window_to: h(12),
            cuts: vec![h(4), h(8)],
            done: vec![],
            unmerged: vec![],
        };
        let r = s.ranges();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].from, BEGINNING);
        assert_eq!((r[1].from, r[1].to), (h(4), h(8)));
        assert_eq!(r[2].to, h(12));
        s.mark_done(h(4), h(8));
        assert_eq!(s.pending().len(), 2);
        // A resumed run keeps the slices and extends the last (unfinished) one.
        let next = s.resumed(h(20), Duration::hours(1));
        assert_eq!(next.pending().last().unwrap().to, h(20));
        assert_eq!(next.pending().len(), 2);
        // Once the last slice is done, the resumed run re-reads the lookback before the old end.
        s.mark_done(h(8), h(12));
        let next = s.resumed(h(20), Duration::hours(1));
        let pending = next.pending();
        assert_eq!(pending.len(), 2, "{pending:?}");
        assert_eq!((pending[1].from, pending[1].to), (h(11), h(20)));
        assert!(next.completed(h(4), h(11)));
    }
}
