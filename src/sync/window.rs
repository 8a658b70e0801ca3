//! Window planning for one stream: `[bookmark − lookback, signpost]` on the declared filter.
//!
//! Harvest v3 pages by id descending, never by `updated_at`, so a bookmark can only move to a
//! point in time fixed before the first request (the signpost), and only after every page of the
//! window was read and written. Re-reading the lookback is safer than a gap; consumers
//! de-duplicate by primary key.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::registry::{Replication, Stream};

/// The closed window a stream reads in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Lower bound (inclusive); `None` = from the beginning.
    pub from: Option<DateTime<Utc>>,
    /// Upper bound (inclusive): the run's signpost. `None` for full-refresh streams.
    pub to: Option<DateTime<Utc>>,
}

impl Window {
    /// The `filter=` value in v3's pipe grammar, e.g. `gte|2024-01-01T00:00:00.000Z|lte|…`.
    pub fn filter_value(&self) -> Option<String> {
        Range::whole(self).filter_value()
    }

    /// A short readable label, e.g. `2024-01-01 00:00:00 → 2024-01-02 00:00:00`.
    pub fn label(&self) -> String {
        Range::whole(self).label()
    }
}

/// What one read asks for: a whole window, or one slice of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Inclusive lower bound; `None` = no lower bound.
    pub from: Option<DateTime<Utc>>,
    /// Upper bound; `None` = no bound (full refresh).
    pub to: Option<DateTime<Utc>>,
    /// Whether `to` itself is included (the window's end is; a slice's end is not, because the
    /// next slice starts there).
    pub to_inclusive: bool,
}

impl Range {
    pub fn whole(w: &Window) -> Range {
        Range {
            from: w.from,
            to: w.to,
            to_inclusive: true,
        }
    }

    /// One slice `[from, to)` of a window ending at `window_to` (the last slice includes it).
    /// A slice starting at [`crate::state::BEGINNING`] has no lower bound.
    pub fn slice(s: &crate::state::Slice, window_to: DateTime<Utc>) -> Range {
        Range {
            from: (s.from > crate::state::BEGINNING).then_some(s.from),
            to: Some(s.to),
            to_inclusive: s.to >= window_to,
        }
    }

    /// The `filter=` value in v3's pipe grammar, e.g. `gte|2024-01-01T00:00:00.000Z|lt|…`.
    pub fn filter_value(&self) -> Option<String> {
        let fmt = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let upper = self.to.map(|t| {
            let op = if self.to_inclusive { "lte" } else { "lt" };
            format!("{op}|{}", fmt(&t))
        });
        match (self.from.map(|f| format!("gte|{}", fmt(&f))), upper) {
            (Some(l), Some(u)) => Some(format!("{l}|{u}")),
            (l, u) => l.or(u),
        }
    }

    pub fn label(&self) -> String {
        let fmt = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
        match self.to {
            None => "full".into(),
            Some(to) => format!(
                "{} → {}{}",
                self.from
                    .as_ref()
                    .map(fmt)
                    .unwrap_or_else(|| "start".into()),
                fmt(&to),
                if self.to_inclusive { "" } else { " (excl.)" }
            ),
        }
    }
}

/// The first-page parameters of each read of `stream` in `range` (a whole window, or one slice):
/// one map per partition, with the range's filter added where the stream declares one.
pub fn first_page_params(stream: &Stream, range: &Range) -> Vec<BTreeMap<String, String>> {
    let mut reads = stream.partition_params();
    if let (Some(filter), Some(value)) = (stream.window_filter(), range.filter_value()) {
        for params in &mut reads {
            params.insert(filter.to_string(), value.clone());
        }
    }
    reads
}

/// Plans the window of `stream` for a run whose signpost is `signpost`.
pub fn plan(
    stream: &Stream,
    bookmark: Option<DateTime<Utc>>,
    start_date: Option<DateTime<Utc>>,
    lookback: Duration,
    signpost: DateTime<Utc>,
) -> Window {
    match &stream.replication {
        Replication::FullRefresh { .. } => Window {
            from: None,
            to: None,
        },
        Replication::Incremental { .. } => {
            let lookback = chrono::Duration::from_std(lookback).unwrap_or(chrono::Duration::zero());
            let from = match bookmark {
                Some(b) => Some(b - lookback),
                None => start_date,
            };
            // A bookmark from a clock ahead of ours must not produce an inverted window.
            let from = from.map(|f| f.min(signpost));
            Window {
                from,
                to: Some(signpost),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn stream(incremental: bool) -> Stream {
        let repl = if incremental {
            r#"{ mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }"#
        } else {
            r#"{ mode = "full_refresh", reason = "no date filter" }"#
        };
        crate::registry::fixture(
            "w",
            repl,
            r#"{ name = "id", type = "integer" }, { name = "updated_at", type = "timestamp" }"#,
        )
        .streams()[0]
            .clone()
    }

    fn t(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, h, 0, 0).unwrap()
    }

    #[test]
    fn first_run_reads_from_start_date_or_the_beginning() {
        let w = plan(&stream(true), None, None, Duration::from_secs(3600), t(12));
        assert_eq!(w.filter_value().unwrap(), "lte|2026-11-01T12:00:00.000Z");
        let w = plan(
            &stream(true),
            None,
            Some(t(1)),
            Duration::from_secs(3600),
            t(12),
        );
        assert_eq!(w.from, Some(t(1)));
    }

    #[test]
    fn later_runs_reach_back_by_the_lookback() {
        let w = plan(
            &stream(true),
            Some(t(10)),
            Some(t(1)),
            Duration::from_secs(3600),
            t(12),
        );
        assert_eq!(
            w.filter_value().unwrap(),
            "gte|2026-11-01T09:00:00.000Z|lte|2026-11-01T12:00:00.000Z"
        );
    }

    #[test]
    fn first_pages_carry_the_window_filter() {
        let w = plan(&stream(true), Some(t(10)), None, Duration::ZERO, t(12));
        let reads = first_page_params(&stream(true), &Range::whole(&w));
        assert_eq!(reads.len(), 1);
        assert_eq!(
            reads[0].get("updated_at").map(String::as_str),
            Some("gte|2026-11-01T10:00:00.000Z|lte|2026-11-01T12:00:00.000Z")
        );
        let full = plan(&stream(false), None, None, Duration::ZERO, t(12));
        assert!(first_page_params(&stream(false), &Range::whole(&full))[0].is_empty());
    }

    #[test]
    fn full_refresh_has_no_window() {
        let w = plan(
            &stream(false),
            Some(t(10)),
            None,
            Duration::from_secs(3600),
            t(12),
        );
        assert_eq!(w.filter_value(), None);
    }

    #[test]
    fn slice_ranges_are_half_open_except_the_last() {
        use crate::state::{BEGINNING, Slice};
        let first = Range::slice(
            &Slice {
                from: BEGINNING,
                to: t(6),
            },
            t(12),
        );
        assert_eq!(first.filter_value().unwrap(), "lt|2026-11-01T06:00:00.000Z");
        let last = Range::slice(
            &Slice {
                from: t(6),
                to: t(12),
            },
            t(12),
        );
        assert_eq!(
            last.filter_value().unwrap(),
            "gte|2026-11-01T06:00:00.000Z|lte|2026-11-01T12:00:00.000Z"
        );
    }

    #[test]
    fn a_bookmark_in_the_future_never_inverts_the_window() {
        let w = plan(&stream(true), Some(t(20)), None, Duration::ZERO, t(12));
        assert_eq!(w.from, Some(t(12)));
    }
}
