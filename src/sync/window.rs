//! Window planning for one stream: `[bookmark − lookback, signpost]` on the declared filter.
//!
//! Harvest v3 pages by id descending, never by `updated_at`, so a bookmark can only move to a
//! point in time fixed before the first request (the signpost), and only after every page of the
//! window was read and written. Re-reading the lookback is safer than a gap; consumers
//! de-duplicate by primary key.
//!
//! A saved bookmark is checked before the first request ([`check_bookmarks`]): one later than
//! the signpost (an edited state, or a clock that ran ahead) would read an empty window and skip
//! everything up to it for good; one before 1970 makes the API refuse every window with a 422.
//! Both are refused, naming the stream, rather than silently clamped.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::registry::{Replication, Stream};
use crate::state::{BEGINNING, State};

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

/// A saved bookmark that cannot be used (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBookmark {
    pub stream: String,
    pub bookmark: DateTime<Utc>,
    pub signpost: DateTime<Utc>,
}

impl BadBookmark {
    /// The message: the stream, the bookmark, why it is refused, `source` (where the state was
    /// read) and `fix` (what to edit).
    pub fn message(&self, source: &str, fix: &str) -> String {
        let fmt = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let why = if self.bookmark > self.signpost {
            format!(
                "is later than this run's start ({}): a bookmark never passes the run that wrote it, so the state was edited or written by a clock that ran ahead, and reading from it would skip every record up to it for good",
                fmt(&self.signpost)
            )
        } else {
            "is before 1970-01-01, which the Greenhouse API refuses (every run would fail the stream)".to_string()
        };
        format!(
            "stream \"{}\": the bookmark {} in {source} {why}. Nothing was read or changed. {fix}",
            self.stream,
            fmt(&self.bookmark)
        )
    }
}

/// Checks the bookmark of every stream in `streams` that will be read from it (incremental, not
/// a full refresh): none may be later than `signpost` or earlier than 1970.
pub fn check_bookmarks<'s>(
    state: &State,
    streams: impl IntoIterator<Item = &'s Stream>,
    signpost: DateTime<Utc>,
) -> Result<(), BadBookmark> {
    for stream in streams.into_iter().filter(|s| s.is_incremental()) {
        if let Some(bookmark) = state.bookmark(&stream.name)
            && (bookmark > signpost || bookmark < BEGINNING)
        {
            return Err(BadBookmark {
                stream: stream.name.clone(),
                bookmark,
                signpost,
            });
        }
    }
    Ok(())
}

/// What to do about a [`BadBookmark`] in a `--state-file` (`path`).
pub fn state_file_fix(stream: &str, path: &std::path::Path) -> String {
    format!(
        "Correct streams.{stream}.bookmark in {} (or delete it to re-read the stream from start_date), then run again.",
        path.display()
    )
}

/// What to do about a [`BadBookmark`] in the destination's state generation `key`.
pub fn destination_fix(stream: &str, key: &str) -> String {
    format!(
        "Copy `{key}` to a local file, correct streams.{stream}.bookmark there (or delete it to re-read the stream from start_date) and run once with --state-file pointing to that file: the destination's state follows from that commit on."
    )
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
                Some(b) => Some(b.checked_sub_signed(lookback).unwrap_or(BEGINNING)),
                None => start_date,
            };
            // Bookmarks are checked first ([`check_bookmarks`]); this only keeps the window in
            // range whatever the caller passed: never inverted, never before 1970 (the lookback
            // of a bookmark near 1970 reaches there).
            let from = from.map(|f| f.clamp(BEGINNING, signpost));
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
    fn bookmarks_later_than_the_signpost_or_before_1970_are_refused() {
        let s = stream(true);
        let mut state = State::empty();
        state.stream_mut("w").bookmark = Some(t(12));
        assert!(check_bookmarks(&state, [&s], t(12)).is_ok());
        let bad = check_bookmarks(&state, [&s], t(11)).unwrap_err();
        let m = bad.message("the state file s.json", "Fix it.");
        assert!(
            m.starts_with(
                "stream \"w\": the bookmark 2026-11-01T12:00:00Z in the state file s.json is later"
            ),
            "{m}"
        );
        state.stream_mut("w").bookmark = Some(BEGINNING - chrono::Duration::seconds(1));
        let m = check_bookmarks(&state, [&s], t(11))
            .unwrap_err()
            .message("x", "y");
        assert!(m.contains("before 1970"), "{m}");
        // Full-refresh streams never read their bookmark.
        assert!(check_bookmarks(&state, [&stream(false)], t(11)).is_ok());
    }

    #[test]
    fn a_lookback_never_reaches_before_1970() {
        let w = plan(
            &stream(true),
            Some(BEGINNING),
            None,
            Duration::from_secs(3600),
            t(12),
        );
        assert_eq!(w.from, Some(BEGINNING));
    }

    #[test]
    fn a_bookmark_in_the_future_never_inverts_the_window() {
        let w = plan(&stream(true), Some(t(20)), None, Duration::ZERO, t(12));
        assert_eq!(w.from, Some(t(12)));
    }
}
