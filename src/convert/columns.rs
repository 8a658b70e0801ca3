//! The typed cell rules shared by the page reader: when a JSON value is an integer or a number,
//! and whether the typed cell holds all of it ([`Exact`]).

use super::json::Json;

/// Whether a typed cell holds the whole value (otherwise the original goes to `_extra` too).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Exact {
    Yes,
    No,
}

/// Largest integer a float carries exactly (2^53): beyond it `1e20` and `1e20 + 1` are the same
/// float, so a float-typed value there cannot be trusted as an integer.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

/// The one string-to-number rule, shared by integer and number columns: a JSON string is read
/// as a number when it is *numeric text* — an optional `-`, digits (leading zeros allowed), an
/// optional `.digits` fraction and an optional `e[+-]digits` exponent; no spaces, `+`, `NaN`,
/// `inf` or separators. Its value is stored when the column holds it exactly (integer: whole
/// and within i64, through a float only up to 2^53; number: finite). The text is *also* kept in
/// `_extra` (a mismatch next to a non-null cell) unless it is the stored value's canonical
/// spelling (`"42"`, `"-7"`, `"1.5"`, `"2"`), so nothing about the text is lost: `"0042"`,
/// `"1.0"`, `"2e3"`, `"0.10"` are stored and kept. Anything else is a plain mismatch (null).
fn numeric_text(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |mut i: usize| {
        let from = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i > from).then_some(i)
    };
    let Some(mut i) = digits(usize::from(b.first() == Some(&b'-'))) else {
        return false;
    };
    if b.get(i) == Some(&b'.') {
        let Some(j) = digits(i + 1) else { return false };
        i = j;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let Some(j) = digits(i + 1 + sign) else {
            return false;
        };
        i = j;
    }
    i == b.len()
}

fn canonical(yes: bool) -> Exact {
    if yes { Exact::Yes } else { Exact::No }
}

/// An integer cell: JSON integers within i64; floats only when whole and exactly representable
/// (never truncated); strings by the rule of [`numeric_text`].
pub(super) fn to_i64(v: &Json) -> Option<(i64, Exact)> {
    match v {
        Json::I64(i) => Some((*i, Exact::Yes)),
        Json::U64(u) => i64::try_from(*u).ok().map(|i| (i, Exact::Yes)),
        Json::F64(f) => {
            (f.fract() == 0.0 && f.abs() <= MAX_EXACT_FLOAT_INT).then_some((*f as i64, Exact::Yes))
        }
        Json::Str(s) if numeric_text(s) => {
            let n = if s.bytes().all(|c| c.is_ascii_digit() || c == b'-') {
                s.parse::<i64>().ok()?
            } else {
                let f: f64 = s.parse().ok()?;
                if f.fract() != 0.0 || f.abs() > MAX_EXACT_FLOAT_INT {
                    return None;
                }
                f as i64
            };
            Some((n, canonical(n.to_string() == **s)))
        }
        _ => None,
    }
}

/// A number cell: any JSON number; strings by the rule of [`numeric_text`] (canonical: Rust's
/// shortest round-trip spelling of the float).
pub(super) fn to_f64(v: &Json) -> Option<(f64, Exact)> {
    match v {
        Json::I64(i) => Some((*i as f64, Exact::Yes)),
        Json::U64(u) => Some((*u as f64, Exact::Yes)),
        Json::F64(f) => Some((*f, Exact::Yes)),
        Json::Str(s) if numeric_text(s) => {
            let f = s.parse::<f64>().ok().filter(|f| f.is_finite())?;
            Some((f, canonical(f.to_string() == **s)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `serde_json::json!` output into a [`Json`] (owned strings; fine for tests).
    fn j(v: serde_json::Value) -> Json<'static> {
        let text: &'static str = Box::leak(v.to_string().into_boxed_str());
        serde_json::from_str(text).unwrap()
    }
    macro_rules! json {
        ($($t:tt)*) => { &j(serde_json::json!($($t)*)) };
    }

    fn value<T>(r: Option<(T, Exact)>) -> Option<T> {
        r.map(|(v, _)| v)
    }

    #[test]
    fn integers_are_never_truncated() {
        assert_eq!(to_i64(json!(42)), Some((42, Exact::Yes)));
        assert_eq!(value(to_i64(json!(-42))), Some(-42));
        assert_eq!(value(to_i64(json!(3.0))), Some(3));
        assert_eq!(to_i64(json!(1.5)), None);
        assert_eq!(to_i64(json!(1e20)), None);
        assert_eq!(to_i64(json!(u64::MAX)), None);
        assert_eq!(value(to_i64(json!(i64::MIN))), Some(i64::MIN));
        assert_eq!(to_i64(json!(true)), None);
        assert_eq!(to_i64(json!([1])), None);
    }

    /// The one string-to-number rule (see `numeric_text`), the same for both numeric types.
    #[test]
    fn numeric_text_is_stored_and_kept_unless_canonical() {
        for (text, n) in [
            ("42", 42),
            ("-7", -7),
            ("0", 0),
            ("4000000001", 4_000_000_001),
        ] {
            assert_eq!(to_i64(json!(text)), Some((n, Exact::Yes)), "{text:?}");
        }
        for (text, n) in [
            ("0042", 42),
            ("-0", 0),
            ("1.0", 1),
            ("1e3", 1000),
            ("00", 0),
        ] {
            assert_eq!(to_i64(json!(text)), Some((n, Exact::No)), "{text:?}");
        }
        for bad in [
            "",
            "-",
            "+1",
            "1.5",
            " 1",
            "abc",
            "1.",
            ".5",
            "1e",
            "0x10",
            "99999999999999999999",
            "1e400",
            "NaN",
        ] {
            assert_eq!(to_i64(json!(bad)), None, "{bad:?}");
        }
        for (text, f) in [("2.5", 2.5), ("-7", -7.0), ("0.1", 0.1), ("2", 2.0)] {
            assert_eq!(to_f64(json!(text)), Some((f, Exact::Yes)), "{text:?}");
        }
        for (text, f) in [
            ("0042", 42.0),
            ("2.50", 2.5),
            ("-2e3", -2000.0),
            ("1.0", 1.0),
        ] {
            assert_eq!(to_f64(json!(text)), Some((f, Exact::No)), "{text:?}");
        }
        for bad in ["", "NaN", "inf", "1e999", "1,5", "two", "+1.5", " 2"] {
            assert_eq!(to_f64(json!(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn numbers_accept_any_json_number() {
        assert_eq!(value(to_f64(json!(2))), Some(2.0));
        assert_eq!(value(to_f64(json!(2.5))), Some(2.5));
        assert_eq!(to_f64(json!({"a": 1})), None);
    }
}
