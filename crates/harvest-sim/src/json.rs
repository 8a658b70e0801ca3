//! A minimal, allocation-light JSON writer used to render rows straight into a page buffer.
//!
//! Contract: the writer produces compact JSON identical for identical call sequences (no map
//! ordering surprises), escapes strings per RFC 8259, and can project top-level keys (the
//! `fields=` selector) without the generators knowing about it.  Timestamps are written as
//! ISO-8601 UTC with milliseconds (`2024-12-15T03:55:00.123Z`), dates as `YYYY-MM-DD`.

use std::collections::HashSet;
use std::fmt::Write as _;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil_from_days).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Appends `v` zero-padded to `width` digits (hot path: avoids `fmt` machinery).
fn push_padded(out: &mut String, v: i64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    while n > 0 {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let start = (buf.len() - width).min(i);
    if v < 0 {
        out.push('-');
    }
    // The slice holds ASCII digits only.
    out.push_str(std::str::from_utf8(&buf[start..]).unwrap_or("0"));
}

/// Appends `2024-12-15T03:55:00.123Z`.
pub fn push_ts(out: &mut String, ms: Millis) {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    push_padded(out, y, 4);
    out.push('-');
    push_padded(out, mo as i64, 2);
    out.push('-');
    push_padded(out, d as i64, 2);
    out.push('T');
    push_padded(out, rem / 3_600_000, 2);
    out.push(':');
    push_padded(out, rem / 60_000 % 60, 2);
    out.push(':');
    push_padded(out, rem / 1000 % 60, 2);
    out.push('.');
    push_padded(out, rem % 1000, 3);
    out.push('Z');
}

/// Appends `YYYY-MM-DD` for a day number.
pub fn push_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

pub fn ts_string(ms: Millis) -> String {
    let mut s = String::with_capacity(24);
    push_ts(&mut s, ms);
    s
}

/// Appends `s` as a JSON string literal.
pub fn push_str_lit(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Streaming JSON writer over a `String`.
pub struct JsonOut<'a> {
    pub buf: &'a mut String,
    first: bool,
    depth: u32,
    /// When set, top-level keys outside the set are skipped (`fields=` projection).
    fields: Option<&'a HashSet<String>>,
    /// Nesting depth at which output is currently suppressed by projection (0 = not skipping).
    skip_depth: u32,
}

impl<'a> JsonOut<'a> {
    pub fn new(buf: &'a mut String, fields: Option<&'a HashSet<String>>) -> Self {
        JsonOut {
            buf,
            first: true,
            depth: 0,
            fields,
            skip_depth: 0,
        }
    }

    fn skipping(&self) -> bool {
        self.skip_depth != 0
    }

    /// Writes `"k":` (with a leading comma when needed).  Returns false if the key is
    /// projected away, in which case the caller writes nothing.
    fn key(&mut self, k: &str) -> bool {
        if self.skipping() {
            return false;
        }
        if self.depth == 1
            && let Some(f) = self.fields
            && !f.contains(k)
        {
            return false;
        }
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        push_str_lit(self.buf, k);
        self.buf.push(':');
        true
    }

    fn elem(&mut self) -> bool {
        if self.skipping() {
            return false;
        }
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        true
    }

    pub fn begin_obj(&mut self) {
        self.buf.push('{');
        self.first = true;
        self.depth += 1;
    }

    pub fn end_obj(&mut self) {
        self.buf.push('}');
        self.first = false;
        self.depth -= 1;
    }

    pub fn null(&mut self, k: &str) {
        if self.key(k) {
            self.buf.push_str("null");
        }
    }
    pub fn int(&mut self, k: &str, v: i64) {
        if self.key(k) {
            push_padded(self.buf, v, 1);
        }
    }
    pub fn oint(&mut self, k: &str, v: Option<i64>) {
        match v {
            Some(v) => self.int(k, v),
            None => self.null(k),
        }
    }
    pub fn float(&mut self, k: &str, v: f64) {
        if self.key(k) {
            push_float(self.buf, v);
        }
    }
    pub fn bool(&mut self, k: &str, v: bool) {
        if self.key(k) {
            self.buf.push_str(if v { "true" } else { "false" });
        }
    }
    pub fn obool(&mut self, k: &str, v: Option<bool>) {
        match v {
            Some(v) => self.bool(k, v),
            None => self.null(k),
        }
    }
    pub fn str(&mut self, k: &str, v: &str) {
        if self.key(k) {
            push_str_lit(self.buf, v);
        }
    }
    pub fn ostr(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }
    pub fn ts(&mut self, k: &str, ms: Millis) {
        if self.key(k) {
            self.buf.push('"');
            push_ts(self.buf, ms);
            self.buf.push('"');
        }
    }
    pub fn ots(&mut self, k: &str, v: Option<Millis>) {
        match v {
            Some(v) => self.ts(k, v),
            None => self.null(k),
        }
    }
    pub fn date(&mut self, k: &str, days: i64) {
        if self.key(k) {
            self.buf.push('"');
            push_date(self.buf, days);
            self.buf.push('"');
        }
    }
    pub fn odate(&mut self, k: &str, v: Option<i64>) {
        match v {
            Some(v) => self.date(k, v),
            None => self.null(k),
        }
    }
    pub fn ints(&mut self, k: &str, v: &[i64]) {
        if self.key(k) {
            self.buf.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    self.buf.push(',');
                }
                push_padded(self.buf, *x, 1);
            }
            self.buf.push(']');
        }
    }
    pub fn strs<S: AsRef<str>>(&mut self, k: &str, v: &[S]) {
        if self.key(k) {
            self.buf.push('[');
            for (i, x) in v.iter().enumerate() {
                if i > 0 {
                    self.buf.push(',');
                }
                push_str_lit(self.buf, x.as_ref());
            }
            self.buf.push(']');
        }
    }

    /// A nested object under key `k`, filled by `f`.
    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Self)) {
        if self.key(k) {
            self.begin_obj();
            f(self);
            self.end_obj();
        } else {
            self.skip(f);
        }
    }

    /// A nested array under key `k`; `f` adds elements with `item_*`.
    pub fn arr(&mut self, k: &str, f: impl FnOnce(&mut Self)) {
        if self.key(k) {
            self.buf.push('[');
            self.first = true;
            self.depth += 1;
            f(self);
            self.depth -= 1;
            self.buf.push(']');
            self.first = false;
        } else {
            self.skip(f);
        }
    }

    /// Runs a nested writer closure without emitting anything (projected-away key).
    fn skip(&mut self, f: impl FnOnce(&mut Self)) {
        let saved = self.first;
        self.skip_depth += 1;
        f(self);
        self.skip_depth -= 1;
        self.first = saved;
    }

    /// An object element inside `arr`.
    pub fn item_obj(&mut self, f: impl FnOnce(&mut Self)) {
        if self.elem() {
            self.begin_obj();
            f(self);
            self.end_obj();
        }
    }
    pub fn item_str(&mut self, v: &str) {
        if self.elem() {
            push_str_lit(self.buf, v);
        }
    }
    pub fn item_int(&mut self, v: i64) {
        if self.elem() {
            let _ = write!(self.buf, "{v}");
        }
    }
}

/// Floats always carry a fractional part so JSON readers see a number, not an integer.
pub fn push_float(out: &mut String, v: f64) {
    if v.is_finite() {
        if v.fract() == 0.0 {
            let _ = write!(out, "{v:.1}");
        } else {
            let _ = write!(out, "{v}");
        }
    } else {
        out.push_str("null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut s = String::new();
        push_ts(&mut s, 1_734_234_900_123);
        assert_eq!(s, "2024-12-15T03:55:00.123Z");
        let mut s = String::new();
        push_ts(&mut s, 0);
        push_padded(&mut s, -42, 1);
        push_padded(&mut s, 0, 1);
        push_padded(&mut s, 4_000_000_123, 1);
        assert_eq!(s, "1970-01-01T00:00:00.000Z-4204000000123");
        assert_eq!(
            days_from_civil(2024, 12, 15),
            1_734_234_900_123 / 86_400_000
        );
        let mut s = String::new();
        push_str_lit(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn projection() {
        let mut s = String::new();
        let f: HashSet<String> = ["id".to_string()].into_iter().collect();
        let mut w = JsonOut::new(&mut s, Some(&f));
        w.begin_obj();
        w.int("id", 1);
        w.obj("x", |w| w.int("y", 2));
        w.str("z", "q");
        w.end_obj();
        assert_eq!(s, "{\"id\":1}");
    }
}
