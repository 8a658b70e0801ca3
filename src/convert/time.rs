//! Hand-written ISO-8601 parsing for the two temporal column types.
//!
//! Written by hand rather than with chrono's `parse_from_rfc3339` because it runs once per
//! timestamp cell (the hot path) and because it must also accept the forms Harvest actually sends
//! that RFC 3339 does not: no offset (read as UTC) and `±HHMM` / `±HH` offsets. Calendar
//! validation (month lengths, leap years) is delegated to chrono.

use chrono::{Datelike, NaiveDate};

/// Days from 0001-01-01 (chrono's "common era" day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

/// What was found in a date column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DateParse {
    /// `YYYY-MM-DD`: days since the epoch.
    Date(i32),
    /// A valid full timestamp: the calendar date as written (before any offset normalisation).
    /// The caller keeps the original text too, since the time of day would otherwise be lost.
    FromTimestamp(i32),
    Invalid,
}

/// A parsed timestamp and what the column cannot carry of its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp {
    /// UTC microseconds since the epoch.
    pub(crate) micros: i64,
    /// Non-zero fraction digits beyond microseconds were cut (the column's precision).
    pub(crate) truncated: bool,
    /// The text had no offset and was read as UTC (an assumption the reader should see).
    pub(crate) no_offset: bool,
}

impl Timestamp {
    /// The cell is the whole truth (otherwise the caller keeps the text in `_extra`).
    pub(crate) fn exact(&self) -> bool {
        !self.truncated && !self.no_offset
    }
}

/// Parses `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM|±HH]` into UTC microseconds since the
/// epoch. No offset means UTC. Fraction digits beyond microseconds are truncated (the column's
/// precision). Both are reported, so the caller can keep the text. Leap seconds (`:60`) and
/// anything else malformed give `None`.
pub(crate) fn parse_timestamp_micros(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let days = parse_date_prefix(b)?;
    if !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let hour = two_digits(b, 11)?;
    let minute = two_digits(b, 14)?;
    let second = two_digits(b, 17)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    let mut truncated = false;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + i64::from(b[i] - b'0');
            } else if b[i] != b'0' {
                truncated = true;
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..6 {
            micros *= 10;
        }
    }
    // No offset (read as UTC) or `Z`.
    let no_offset = i == b.len();
    let utc = no_offset || ((b[i] == b'Z' || b[i] == b'z') && i + 1 == b.len());
    let offset_seconds: i64 = if utc {
        0
    } else if b[i] == b'+' || b[i] == b'-' {
        let sign = if b[i] == b'-' { -1 } else { 1 };
        let rest = &b[i + 1..];
        let (oh, om) = match rest.len() {
            2 => (two_digits(rest, 0)?, 0),
            4 => (two_digits(rest, 0)?, two_digits(rest, 2)?),
            5 if rest[2] == b':' => (two_digits(rest, 0)?, two_digits(rest, 3)?),
            _ => return None,
        };
        if oh > 23 || om > 59 {
            return None;
        }
        sign * (i64::from(oh) * 3600 + i64::from(om) * 60)
    } else {
        return None;
    };
    let seconds = i64::from(days) * 86_400
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset_seconds;
    Some(Timestamp {
        micros: seconds * 1_000_000 + micros,
        truncated,
        no_offset,
    })
}

/// Parses a date column's text: `YYYY-MM-DD`, or a full timestamp (see [`DateParse`]).
pub(crate) fn parse_date(s: &str) -> DateParse {
    let b = s.as_bytes();
    if b.len() == 10 {
        return parse_date_prefix(b).map_or(DateParse::Invalid, DateParse::Date);
    }
    match (parse_date_prefix(b), parse_timestamp_micros(s)) {
        (Some(days), Some(_)) => DateParse::FromTimestamp(days),
        _ => DateParse::Invalid,
    }
}

/// `YYYY-MM-DD` at the start of `b` → days since the epoch.
fn parse_date_prefix(b: &[u8]) -> Option<i32> {
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::from(two_digits(b, 0)?) * 100 + i32::from(two_digits(b, 2)?);
    let month = two_digits(b, 5)?;
    let day = two_digits(b, 8)?;
    let date = NaiveDate::from_ymd_opt(year, u32::from(month), u32::from(day))?;
    i32::try_from(i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE).ok()
}

fn two_digits(b: &[u8], at: usize) -> Option<u8> {
    let (h, l) = (*b.get(at)?, *b.get(at + 1)?);
    if h.is_ascii_digit() && l.is_ascii_digit() {
        Some((h - b'0') * 10 + (l - b'0'))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn micros(rfc3339: &str) -> i64 {
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_micros()
    }

    fn parse_timestamp_micros(s: &str) -> Option<i64> {
        super::parse_timestamp_micros(s).map(|t| t.micros)
    }

    #[test]
    fn reports_what_the_column_cannot_carry() {
        let t = |s| super::parse_timestamp_micros(s).unwrap();
        assert!(t("2024-01-15T10:30:00.123Z").exact());
        assert!(t("2024-01-15T10:30:00.123456000+02:00").exact());
        let nanos = t("2024-01-15T10:30:00.123456789Z");
        assert!(nanos.truncated && !nanos.no_offset && !nanos.exact());
        let local = t("2024-01-15T10:30:00.5");
        assert!(local.no_offset && !local.truncated && !local.exact());
    }

    #[test]
    fn accepts_the_iso_forms_harvest_sends() {
        let base = micros("2024-01-15T10:30:00Z");
        assert_eq!(parse_timestamp_micros("2024-01-15T10:30:00Z"), Some(base));
        assert_eq!(parse_timestamp_micros("2024-01-15T10:30:00"), Some(base));
        assert_eq!(parse_timestamp_micros("2024-01-15 10:30:00"), Some(base));
        assert_eq!(parse_timestamp_micros("2024-01-15t10:30:00z"), Some(base));
        assert_eq!(
            parse_timestamp_micros("2024-01-15T10:30:00.123Z"),
            Some(base + 123_000)
        );
        assert_eq!(
            parse_timestamp_micros("2024-01-15T10:30:00.1Z"),
            Some(base + 100_000)
        );
        assert_eq!(
            parse_timestamp_micros("2024-01-15T10:30:00.123456Z"),
            Some(base + 123_456)
        );
        // Sub-microsecond digits are truncated to the column's precision.
        assert_eq!(
            parse_timestamp_micros("2024-01-15T10:30:00.123456789Z"),
            Some(base + 123_456)
        );
        assert_eq!(
            parse_timestamp_micros("2024-01-15T05:30:00-05:00"),
            Some(base)
        );
        assert_eq!(
            parse_timestamp_micros("2024-01-15T12:30:00+0200"),
            Some(base)
        );
        assert_eq!(parse_timestamp_micros("2024-01-15T12:30:00+02"), Some(base));
        assert_eq!(
            parse_timestamp_micros("2024-01-15T16:00:00.5+05:30"),
            Some(base + 500_000)
        );
        assert_eq!(parse_timestamp_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_timestamp_micros("1969-12-31T23:59:59.5Z"),
            Some(-500_000)
        );
        assert_eq!(
            parse_timestamp_micros("2024-02-29T00:00:00Z"),
            Some(micros("2024-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn rejects_malformed_timestamps() {
        for bad in [
            "",
            "yesterday",
            "2024-01-15",
            "2024-01-15T10:30",
            "2024-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-15T24:00:00Z",
            "2024-01-15T23:59:60Z",
            "2024-01-15T10:30:00.Z",
            "2024-01-15T10:30:00ZZ",
            "2024-01-15T10:30:00+5",
            "2024-01-15T10:30:00+05:0",
            "2024-01-15T10:30:00+25:00",
            "2024-01-15T10:30:00 UTC",
            "2024-01-15X10:30:00Z",
            "２０２４-01-15T10:30:00Z",
        ] {
            assert_eq!(parse_timestamp_micros(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date("1970-01-01"), DateParse::Date(0));
        assert_eq!(parse_date("1970-01-02"), DateParse::Date(1));
        assert_eq!(parse_date("1969-12-31"), DateParse::Date(-1));
        assert_eq!(parse_date("2024-02-29"), DateParse::Date(19_782));
        assert_eq!(parse_date("2023-02-29"), DateParse::Invalid);
        assert_eq!(parse_date("2024-1-5"), DateParse::Invalid);
        assert_eq!(parse_date("soon"), DateParse::Invalid);
        // The date as written, not the UTC date: 23:00-05:00 is already the 2nd in UTC.
        assert_eq!(
            parse_date("1970-01-01T23:00:00-05:00"),
            DateParse::FromTimestamp(0)
        );
        assert_eq!(parse_date("1970-01-01Tnonsense"), DateParse::Invalid);
    }
}
