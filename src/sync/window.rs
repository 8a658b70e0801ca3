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
        let fmt = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        match (&self.from, &self.to) {
            (Some(f), Some(t)) => Some(format!("gte|{}|lte|{}", fmt(f), fmt(t))),
            (None, Some(t)) => Some(format!("lte|{}", fmt(t))),
            (Some(f), None) => Some(format!("gte|{}", fmt(f))),
            (None, None) => None,
        }
    }
}

/// The first-page parameters of each read of `stream` in `window`: one map per partition, with
/// the window filter added where the stream declares one.
pub fn first_page_params(stream: &Stream, window: &Window) -> Vec<BTreeMap<String, String>> {
    let mut reads = stream.partition_params();
    if let (Some(filter), Some(value)) = (stream.window_filter(), window.filter_value()) {
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
        let reads = first_page_params(&stream(true), &w);
        assert_eq!(reads.len(), 1);
        assert_eq!(
            reads[0].get("updated_at").map(String::as_str),
            Some("gte|2026-11-01T10:00:00.000Z|lte|2026-11-01T12:00:00.000Z")
        );
        let full = plan(&stream(false), None, None, Duration::ZERO, t(12));
        assert!(first_page_params(&stream(false), &full)[0].is_empty());
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
    fn a_bookmark_in_the_future_never_inverts_the_window() {
        let w = plan(&stream(true), Some(t(20)), None, Duration::ZERO, t(12));
        assert_eq!(w.from, Some(t(12)));
    }
}
