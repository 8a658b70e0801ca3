//! Sliced backfills: cutting a large window into `updated_at` slices that are read concurrently.
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

use chrono::{DateTime, Duration, TimeZone, Utc};

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

/// Reads the cursor values of a page body; `None` when the page has none (or is not readable).
pub fn sample(body: &[u8], cursor_field: &str) -> Option<Sample> {
    let rows: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(body).ok()?;
    let times: Vec<DateTime<Utc>> = rows
        .iter()
        .filter_map(|r| r.get(cursor_field)?.as_str())
        .filter_map(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .collect();
    Some(Sample {
        rows: rows.len(),
        newest: *times.iter().max()?,
        oldest: *times.iter().min()?,
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
    }

    #[test]
    fn backfills_are_wide_windows() {
        assert!(is_backfill(None, t(2)));
        assert!(is_backfill(Some(t(1)), t(9)));
        assert!(!is_backfill(Some(t(1)), t(3)));
    }
}
