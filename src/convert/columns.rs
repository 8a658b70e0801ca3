//! Column building: per-row parsed values ([`Json`]) → one Arrow array per declared field.
//!
//! Each column is built in one typed loop over all of the page's values for that column (gathered
//! column-wise first), so there is no per-cell dispatch on the declared type. Lists gather their
//! elements into one child column plus offsets; structs gather one column per child. Values that
//! cannot be stored are handed to [`Leftovers`], which files them under their path in the row's
//! `_extra` object.
//!
//! Slots: a value slot is `None` when an enclosing struct or list was null (nothing to count), and
//! `Some(&Json::Null)` when the value itself is null or absent (counted as a null violation when
//! the declaration says it is never null).

use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, NullBufferBuilder,
    OffsetBufferBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, StructArray};
use arrow_schema::{ArrowError, DataType, Fields};
use serde_json::{Map, Value};

use super::json::{Json, find};
use super::repair::Repairs;

/// An object's key/value pairs, as parsed.
pub(crate) type Pairs<'a> = [(std::borrow::Cow<'a, str>, Json<'a>)];

use super::schema::UTC_TZ;
use super::time::{DateParse, parse_date, parse_timestamp_micros};

/// Whether a typed cell holds the whole value (otherwise the original goes to `_extra` too).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Exact {
    Yes,
    No,
}
use crate::registry::{Field, FieldType};

/// The value of an absent key: an absent key and an explicit `null` are the same thing here.
pub(crate) static NULL: Json<'static> = Json::Null;

/// Largest integer a float carries exactly (2^53): beyond it `1e20` and `1e20 + 1` are the same
/// float, so a float-typed value there cannot be trusted as an integer.
const MAX_EXACT_FLOAT_INT: f64 = 9_007_199_254_740_992.0;

/// Where a value slot sits: a row (`loc < rows`) or a list element (`rows + index` into `elements`).
type Loc = usize;

#[derive(Clone, Copy)]
struct Element {
    /// The slot holding the list.
    list: Loc,
    /// Index into `suffixes`: the path from `list`'s slot to the list field.
    list_suffix: usize,
    index: usize,
}

/// Counts and `_extra` objects for one page.
pub(crate) struct Leftovers {
    rows: usize,
    elements: Vec<Element>,
    suffixes: Vec<String>,
    pub(crate) extra: Vec<Option<Map<String, Value>>>,
    pub(crate) extra_fields: u64,
    pub(crate) type_mismatches: u64,
    pub(crate) null_violations: u64,
    /// Set when the page's lone surrogates were repaired (see `repair`).
    pub(crate) repairs: Option<Repairs>,
}

impl Leftovers {
    pub(crate) fn new(rows: usize) -> Self {
        Leftovers {
            rows,
            elements: Vec::new(),
            suffixes: Vec::new(),
            extra: vec![None; rows],
            extra_fields: 0,
            type_mismatches: 0,
            null_violations: 0,
            repairs: None,
        }
    }

    /// The row and path of `suffix` under slot `loc`. Suffixes are built as `.a.b`; a leading dot
    /// is dropped at the row level so top-level paths read `a.b`, and list elements add `[i]`.
    fn locate(&self, loc: Loc, suffix: &str) -> (usize, String) {
        if loc < self.rows {
            return (loc, suffix.strip_prefix('.').unwrap_or(suffix).to_string());
        }
        let e = self.elements[loc - self.rows];
        let (row, mut path) = self.locate(e.list, &self.suffixes[e.list_suffix]);
        path.push('[');
        path.push_str(&e.index.to_string());
        path.push(']');
        path.push_str(suffix);
        (row, path)
    }

    fn keep(&mut self, loc: Loc, suffix: &str, value: &Json) {
        self.keep_with(loc, suffix, || value.to_value());
    }

    fn keep_with(&mut self, loc: Loc, suffix: &str, value: impl FnOnce() -> Value) {
        let (row, path) = self.locate(loc, suffix);
        // First writer wins: a path can only repeat if an unknown key contains a `.` or `[`
        // that mimics a nested path, and the typed side's value is the one to keep then.
        self.extra[row]
            .get_or_insert_with(Map::new)
            .entry(path)
            .or_insert_with(value);
    }

    fn mismatch(&mut self, loc: Loc, suffix: &str, value: &Json) {
        self.type_mismatches += 1;
        self.keep(loc, suffix, value);
    }

    fn unknown(&mut self, loc: Loc, suffix: &str, key: &str, value: &Json) {
        self.extra_fields += 1;
        let mut s = String::with_capacity(suffix.len() + 1 + key.len());
        s.push_str(suffix);
        s.push('.');
        s.push_str(key);
        self.keep(loc, &s, value);
    }

    fn new_suffix(&mut self, suffix: &str) -> usize {
        self.suffixes.push(suffix.to_string());
        self.suffixes.len() - 1
    }

    fn element(&mut self, list: Loc, list_suffix: usize, index: usize) -> Loc {
        self.elements.push(Element {
            list,
            list_suffix,
            index,
        });
        self.rows + self.elements.len() - 1
    }

    /// Gathers the declared children of each object slot and files unknown keys. `objects[i]` is
    /// `None` when slot `i` has no object (null, mismatched or under a null parent).
    pub(crate) fn gather_children<'a>(
        &mut self,
        fields: &[Field],
        objects: &[Option<&'a Pairs<'a>>],
        locs: &[Loc],
        suffix: &str,
    ) -> Vec<Vec<Option<&'a Json<'a>>>> {
        let mut found = vec![0usize; objects.len()];
        // Per object: where the next key is expected (see `json::find`).
        let mut hints = vec![0usize; objects.len()];
        let children = fields
            .iter()
            .map(|f| {
                objects
                    .iter()
                    .zip(found.iter_mut().zip(hints.iter_mut()))
                    .map(|(o, (n, hint))| {
                        o.map(|m| match find(m, &f.name, hint) {
                            Some(v) => {
                                *n += 1;
                                v
                            }
                            None => &NULL,
                        })
                    })
                    .collect()
            })
            .collect();
        // Only objects with more keys than declared ones found need their keys scanned.
        for ((o, n), &loc) in objects.iter().zip(&found).zip(locs) {
            if let Some(m) = o
                && m.len() > *n
            {
                for (k, v) in m.iter() {
                    if !fields.iter().any(|f| f.name == *k) {
                        self.unknown(loc, suffix, k, v);
                    }
                }
            }
        }
        children
    }

    /// Builds the array for one declared type from its value slots. `dt` is the Arrow type from
    /// the schema, so nested field metadata matches the schema exactly.
    pub(crate) fn build(
        &mut self,
        ty: &FieldType,
        nullable: bool,
        dt: &DataType,
        vals: &[Option<&Json>],
        locs: &[Loc],
        suffix: &str,
    ) -> Result<ArrayRef, ArrowError> {
        let n = vals.len();
        Ok(match ty {
            FieldType::Integer => {
                let mut b = Int64Builder::with_capacity(n);
                for (v, &loc) in vals.iter().zip(locs) {
                    b.append_option(self.cell(v, loc, suffix, nullable, to_i64));
                }
                Arc::new(b.finish())
            }
            FieldType::Number => {
                let mut b = Float64Builder::with_capacity(n);
                for (v, &loc) in vals.iter().zip(locs) {
                    b.append_option(self.cell(v, loc, suffix, nullable, to_f64));
                }
                Arc::new(b.finish())
            }
            FieldType::Boolean => {
                let mut b = BooleanBuilder::with_capacity(n);
                for (v, &loc) in vals.iter().zip(locs) {
                    b.append_option(self.cell(v, loc, suffix, nullable, |v| {
                        v.as_bool().map(|b| (b, Exact::Yes))
                    }));
                }
                Arc::new(b.finish())
            }
            FieldType::String { .. } => {
                let mut b = StringBuilder::with_capacity(n, n * 16);
                let repairs = self.repairs.take();
                for (v, &loc) in vals.iter().zip(locs) {
                    let s = self.cell(v, loc, suffix, nullable, |v| {
                        v.as_str().map(|s| (s, Exact::Yes))
                    });
                    // A repaired lone surrogate: U+FFFD in the column, the text as sent in
                    // `_extra` (a JSON string holding the source text, escapes as written).
                    if let Some(original) =
                        repairs.as_ref().zip(s).and_then(|(r, s)| r.original_of(s))
                    {
                        self.type_mismatches += 1;
                        self.keep_with(loc, suffix, || Value::String(original.to_string()));
                    }
                    b.append_option(s);
                }
                self.repairs = repairs;
                Arc::new(b.finish())
            }
            FieldType::Timestamp => {
                let mut b = TimestampMicrosecondBuilder::with_capacity(n).with_timezone(UTC_TZ);
                for (v, &loc) in vals.iter().zip(locs) {
                    b.append_option(self.cell(v, loc, suffix, nullable, |v| {
                        v.as_str()
                            .and_then(parse_timestamp_micros)
                            .map(|t| (t.micros, if t.exact() { Exact::Yes } else { Exact::No }))
                    }));
                }
                Arc::new(b.finish())
            }
            FieldType::Date => {
                let mut b = Date32Builder::with_capacity(n);
                for (v, &loc) in vals.iter().zip(locs) {
                    let day = match v {
                        None => None,
                        Some(Json::Null) => {
                            self.null_seen(nullable);
                            None
                        }
                        Some(value) => match value.as_str().map(parse_date) {
                            Some(DateParse::Date(d)) => Some(d),
                            Some(DateParse::FromTimestamp(d)) => {
                                // The column gets the date; the time of day would be lost, so
                                // the original text is kept and counted too.
                                self.mismatch(loc, suffix, value);
                                Some(d)
                            }
                            Some(DateParse::Invalid) | None => {
                                self.mismatch(loc, suffix, value);
                                None
                            }
                        },
                    };
                    b.append_option(day);
                }
                Arc::new(b.finish())
            }
            FieldType::Json => {
                let mut b = StringBuilder::with_capacity(n, n * 32);
                let mut text = Vec::with_capacity(256);
                for v in vals {
                    match v {
                        None => b.append_null(),
                        Some(Json::Null) => {
                            self.null_seen(nullable);
                            b.append_null();
                        }
                        Some(Json::Raw(raw)) if raw.get() == "null" => {
                            self.null_seen(nullable);
                            b.append_null();
                        }
                        // As received, also on a page whose lone surrogates were repaired.
                        Some(Json::Raw(raw)) => match &self.repairs {
                            Some(r) => b.append_value(r.original_raw(raw.get())),
                            None => b.append_value(raw.get()),
                        },
                        Some(value) => {
                            text.clear();
                            serde_json::to_writer(&mut text, value)
                                .map_err(|e| ArrowError::JsonError(e.to_string()))?;
                            // serde_json writes valid UTF-8; the check is cheap insurance.
                            let s = std::str::from_utf8(&text)
                                .map_err(|e| ArrowError::JsonError(e.to_string()))?;
                            b.append_value(s);
                        }
                    }
                }
                Arc::new(b.finish())
            }
            FieldType::List(item) => {
                let DataType::List(item_field) = dt else {
                    return Err(schema_drift(suffix, dt));
                };
                let mut offsets = OffsetBufferBuilder::<i32>::new(n);
                let mut nulls = NullBufferBuilder::new(n);
                let mut child_vals: Vec<Option<&Json>> = Vec::with_capacity(n * 2);
                let mut child_locs: Vec<Loc> = Vec::with_capacity(n * 2);
                let mut list_suffix = None;
                for (v, &loc) in vals.iter().zip(locs) {
                    match v {
                        Some(Json::Array(items)) => {
                            let sid = *list_suffix.get_or_insert_with(|| self.new_suffix(suffix));
                            for (i, item) in items.iter().enumerate() {
                                child_vals.push(Some(item));
                                child_locs.push(self.element(loc, sid, i));
                            }
                            offsets.push_length(items.len());
                            nulls.append_non_null();
                        }
                        other => {
                            match other {
                                None => {}
                                Some(Json::Null) => self.null_seen(nullable),
                                Some(value) => self.mismatch(loc, suffix, value),
                            }
                            offsets.push_length(0);
                            nulls.append_null();
                        }
                    }
                }
                let child = self.build(
                    &item.ty,
                    item.nullable,
                    item_field.data_type(),
                    &child_vals,
                    &child_locs,
                    "",
                )?;
                // arrow 59's `OffsetBufferBuilder::finish` panics past i32::MAX elements (60 has
                // `try_finish`); the last offset is the child count, so check that first.
                if i32::try_from(child_vals.len()).is_err() {
                    return Err(ArrowError::ComputeError(format!(
                        "list {suffix} is too long"
                    )));
                }
                let offsets = offsets.finish();
                Arc::new(ListArray::try_new(
                    item_field.clone(),
                    offsets,
                    child,
                    nulls.finish(),
                )?)
            }
            FieldType::Struct(fields) => {
                let DataType::Struct(arrow_fields) = dt else {
                    return Err(schema_drift(suffix, dt));
                };
                let mut nulls = NullBufferBuilder::new(n);
                let objects: Vec<Option<&Pairs>> = vals
                    .iter()
                    .zip(locs)
                    .map(|(v, &loc)| {
                        let object = match v {
                            Some(Json::Object(m)) => Some(m.as_slice()),
                            None => None,
                            Some(Json::Null) => {
                                self.null_seen(nullable);
                                None
                            }
                            Some(value) => {
                                self.mismatch(loc, suffix, value);
                                None
                            }
                        };
                        nulls.append(object.is_some());
                        object
                    })
                    .collect();
                let children = self.gather_children(fields, &objects, locs, suffix);
                let arrays = self.build_children(fields, arrow_fields, &children, locs, suffix)?;
                Arc::new(StructArray::try_new(
                    arrow_fields.clone(),
                    arrays,
                    nulls.finish(),
                )?)
            }
        })
    }

    /// Builds one array per declared child from gathered slots.
    pub(crate) fn build_children(
        &mut self,
        fields: &[Field],
        arrow_fields: &Fields,
        children: &[Vec<Option<&Json>>],
        locs: &[Loc],
        suffix: &str,
    ) -> Result<Vec<ArrayRef>, ArrowError> {
        fields
            .iter()
            .zip(arrow_fields.iter())
            .zip(children)
            .map(|((f, af), vals)| {
                let child_suffix = format!("{suffix}.{}", f.name);
                self.build(&f.ty, f.nullable, af.data_type(), vals, locs, &child_suffix)
            })
            .collect()
    }

    /// One scalar cell: null handling and mismatch bookkeeping around a typed conversion.
    /// `convert` gives the typed value and whether it is the whole truth; when it is not (a
    /// non-canonical number text, sub-microsecond digits, no offset), the original is kept in
    /// `_extra` too and counted as a mismatch, next to a non-null cell.
    #[inline]
    fn cell<'v, T>(
        &mut self,
        slot: &Option<&'v Json<'v>>,
        loc: Loc,
        suffix: &str,
        nullable: bool,
        convert: impl Fn(&'v Json<'v>) -> Option<(T, Exact)>,
    ) -> Option<T> {
        match slot {
            None => None,
            Some(Json::Null) => {
                self.null_seen(nullable);
                None
            }
            Some(value) => match convert(value) {
                Some((out, Exact::Yes)) => Some(out),
                Some((out, Exact::No)) => {
                    self.mismatch(loc, suffix, value);
                    Some(out)
                }
                None => {
                    self.mismatch(loc, suffix, value);
                    None
                }
            },
        }
    }

    #[inline]
    fn null_seen(&mut self, nullable: bool) {
        if !nullable {
            self.null_violations += 1;
        }
    }
}

fn schema_drift(suffix: &str, dt: &DataType) -> ArrowError {
    // Unreachable while the schema comes from `arrow_schema` for the same stream.
    ArrowError::SchemaError(format!(
        "column {} has Arrow type {dt} that does not match its declaration",
        suffix.trim_start_matches('.')
    ))
}

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
fn to_f64(v: &Json) -> Option<(f64, Exact)> {
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
