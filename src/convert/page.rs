//! The single-pass page reader: a list page's JSON text goes straight into the Arrow builders of
//! the stream's declared schema, value by value as the parser reaches it.
//!
//! Contract (the fidelity rules themselves are the converter's, see the parent module):
//! - No tree per record: a declared value is typed and appended to its column's builder as soon
//!   as it is parsed (serde `DeserializeSeed` per column, a visitor per list and struct). Only
//!   values that leave the typed path are materialised, as a borrowed [`Json`]: unknown keys,
//!   mismatches (kept in `_extra`) and nested JSON columns (written back compactly). Top-level
//!   JSON columns are copied as the text received ([`RawValue`]), never parsed into a tree.
//! - Every builder gets exactly one slot per parent slot: a key absent from an object is appended
//!   as null once the object ends; a null, absent or mismatched struct appends null to all of its
//!   children, a list appends no elements.
//! - Keys are matched against the declaration by the position they had in the previous object
//!   of the same level (records of a stream list their keys in one order), then by a scan.
//! - A declared key that repeats in one object: the first value is typed, each later one is kept
//!   in `_extra` under its path and counted as an unknown field — nothing is dropped.
//! - `_extra` paths are a linked list of stack frames ([`Path`]) and are rendered only when a
//!   value is filed, so the happy path builds no strings.
//! - An error from the parser leaves the reader's builders partly filled: a reader is used for
//!   one page and then dropped.

use std::fmt::{self, Write as _};
use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, NullBufferBuilder,
    OffsetBufferBuilder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ListArray, StructArray};
use arrow_schema::{ArrowError, DataType, FieldRef, Fields};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::columns::{Exact, to_f64, to_i64};
use super::json::{Json, JsonVisitor, Key};
use super::repair::Repairs;
use super::schema::UTC_TZ;
use super::time::{DateParse, parse_date, parse_timestamp_micros};
use crate::registry::{Field, FieldType};

/// Where a value sits in its record, for its `_extra` key: `a`, `a.b`, `a[2].b`, `a[1][0]`.
#[derive(Clone, Copy)]
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl Path<'_> {
    fn render(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Key(Path::Root, key) => out.push_str(key),
            Path::Key(parent, key) => {
                parent.render(out);
                out.push('.');
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.render(out);
                // Writing to a String cannot fail.
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

/// What one page leaves besides its typed columns: the rows' `_extra` objects and the counts.
pub(crate) struct Leftovers {
    /// One entry per record read so far; the last is the current record's.
    pub(crate) extra: Vec<Option<Map<String, Value>>>,
    pub(crate) extra_fields: u64,
    pub(crate) type_mismatches: u64,
    pub(crate) null_violations: u64,
    /// Set when the page's lone surrogates were repaired (see `repair`).
    pub(crate) repairs: Option<Repairs>,
    /// Scratch for nested JSON columns' text.
    text: Vec<u8>,
}

impl Leftovers {
    pub(crate) fn new(rows_hint: usize, repairs: Option<Repairs>) -> Self {
        Leftovers {
            extra: Vec::with_capacity(rows_hint),
            extra_fields: 0,
            type_mismatches: 0,
            null_violations: 0,
            repairs,
            text: Vec::new(),
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.extra.len()
    }

    fn keep_with(&mut self, path: &Path, value: impl FnOnce() -> Value) {
        let mut key = String::new();
        path.render(&mut key);
        // First writer wins: a path can only repeat if an unknown key contains a `.` or `[`
        // that mimics a nested path, or a key repeats; the first value is the one to keep.
        if let Some(row) = self.extra.last_mut() {
            row.get_or_insert_with(Map::new)
                .entry(key)
                .or_insert_with(value);
        }
    }

    fn mismatch(&mut self, path: &Path, value: &Json) {
        self.type_mismatches += 1;
        self.keep_with(path, || value.to_value());
    }

    fn unknown(&mut self, parent: &Path, key: &str, value: &Json) {
        self.extra_fields += 1;
        self.keep_with(&Path::Key(parent, key), || value.to_value());
    }

    #[inline]
    fn null_seen(&mut self, nullable: bool) {
        if !nullable {
            self.null_violations += 1;
        }
    }
}

/// One declared column (or list item) and its builder.
struct Col {
    name: Box<str>,
    nullable: bool,
    kind: Kind,
}

enum Kind {
    Scalar(Scalar),
    /// A top-level JSON column: the value's text as received.
    RawJson(StringBuilder),
    List(Box<ListCol>),
    Struct(Box<StructCol>),
}

enum Scalar {
    Int(Int64Builder),
    Float(Float64Builder),
    Bool(BooleanBuilder),
    Str(StringBuilder),
    Ts(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    /// A JSON column inside a struct or list, written back compactly.
    Json(StringBuilder),
}

struct ListCol {
    field: FieldRef,
    offsets: OffsetBufferBuilder<i32>,
    nulls: NullBufferBuilder,
    /// Elements appended to `item` so far (bounds the i32 offsets).
    elements: usize,
    item: Col,
}

struct StructCol {
    fields: Fields,
    nulls: NullBufferBuilder,
    object: Object,
}

impl ListCol {
    /// A null list (no elements).
    fn null(&mut self) {
        self.offsets.push_length(0);
        self.nulls.append_null();
    }
}

impl StructCol {
    /// A null struct: every child gets a null slot too.
    fn null(&mut self) {
        self.nulls.append_null();
        for c in &mut self.object.cols {
            c.null();
        }
    }
}

/// The declared children of one object level, with the per-object bookkeeping.
struct Object {
    cols: Vec<Col>,
    /// Per child: whether the current object had its key.
    seen: Vec<bool>,
    /// Per key position: the child the previous object had there (the lookup's first guess).
    order: Vec<usize>,
}

impl Object {
    fn new(cols: Vec<Col>) -> Self {
        let n = cols.len();
        Object {
            cols,
            seen: vec![false; n],
            order: Vec::with_capacity(n),
        }
    }

    /// The child declared as `key`, trying the one seen at key position `at` last time first.
    #[inline]
    fn position(&mut self, key: &str, at: usize) -> Option<usize> {
        if let Some(&i) = self.order.get(at)
            && *self.cols[i].name == *key
        {
            return Some(i);
        }
        let i = self.cols.iter().position(|c| *c.name == *key)?;
        if at < self.order.len() {
            self.order[at] = i;
        } else if at == self.order.len() {
            self.order.push(i);
        }
        Some(i)
    }

    /// Reads one JSON object's keys into the children; `path` is the object's own path.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        map: &mut A,
        left: &mut Leftovers,
        path: &Path,
    ) -> Result<(), A::Error> {
        self.seen.fill(false);
        let mut at = 0;
        while let Some(Key(key)) = map.next_key()? {
            match self.position(&key, at) {
                Some(i) if !self.seen[i] => {
                    self.seen[i] = true;
                    let Col {
                        name,
                        nullable,
                        kind,
                    } = &mut self.cols[i];
                    let path = Path::Key(path, name);
                    map.next_value_seed(Cell {
                        kind,
                        nullable: *nullable,
                        left: &mut *left,
                        path: &path,
                    })?;
                }
                _ => {
                    let value: Json = map.next_value()?;
                    left.unknown(path, &key, &value);
                }
            }
            at += 1;
        }
        for (col, seen) in self.cols.iter_mut().zip(&self.seen) {
            if !*seen {
                left.null_seen(col.nullable);
                col.null();
            }
        }
        Ok(())
    }
}

impl Col {
    /// `dt` is the Arrow type from the schema, so nested fields (and their metadata) match it
    /// exactly; `cap` is the expected number of slots.
    fn new(
        name: &str,
        ty: &FieldType,
        nullable: bool,
        dt: &DataType,
        top: bool,
        cap: usize,
    ) -> Result<Col, ArrowError> {
        let kind = match ty {
            FieldType::Integer => Kind::Scalar(Scalar::Int(Int64Builder::with_capacity(cap))),
            FieldType::Number => Kind::Scalar(Scalar::Float(Float64Builder::with_capacity(cap))),
            FieldType::Boolean => Kind::Scalar(Scalar::Bool(BooleanBuilder::with_capacity(cap))),
            FieldType::String { .. } => {
                Kind::Scalar(Scalar::Str(StringBuilder::with_capacity(cap, cap * 16)))
            }
            FieldType::Timestamp => Kind::Scalar(Scalar::Ts(
                TimestampMicrosecondBuilder::with_capacity(cap).with_timezone(UTC_TZ),
            )),
            FieldType::Date => Kind::Scalar(Scalar::Date(Date32Builder::with_capacity(cap))),
            FieldType::Json if top => Kind::RawJson(StringBuilder::with_capacity(cap, cap * 64)),
            FieldType::Json => {
                Kind::Scalar(Scalar::Json(StringBuilder::with_capacity(cap, cap * 32)))
            }
            FieldType::List(item) => {
                let DataType::List(field) = dt else {
                    return Err(schema_drift(name, dt));
                };
                Kind::List(Box::new(ListCol {
                    field: field.clone(),
                    offsets: OffsetBufferBuilder::new(cap),
                    nulls: NullBufferBuilder::new(cap),
                    elements: 0,
                    item: Col::new(
                        name,
                        &item.ty,
                        item.nullable,
                        field.data_type(),
                        false,
                        cap * 2,
                    )?,
                }))
            }
            FieldType::Struct(children) => {
                let DataType::Struct(fields) = dt else {
                    return Err(schema_drift(name, dt));
                };
                let cols = children
                    .iter()
                    .zip(fields.iter())
                    .map(|(f, af)| Col::new(&f.name, &f.ty, f.nullable, af.data_type(), false, cap))
                    .collect::<Result<_, _>>()?;
                Kind::Struct(Box::new(StructCol {
                    fields: fields.clone(),
                    nulls: NullBufferBuilder::new(cap),
                    object: Object::new(cols),
                }))
            }
        };
        Ok(Col {
            name: name.into(),
            nullable,
            kind,
        })
    }

    /// A null slot that is not counted (its parent is null, or the caller counted it).
    fn null(&mut self) {
        match &mut self.kind {
            Kind::Scalar(s) => s.null(),
            Kind::RawJson(b) => b.append_null(),
            Kind::List(l) => l.null(),
            Kind::Struct(s) => s.null(),
        }
    }

    fn finish(self) -> Result<ArrayRef, ArrowError> {
        Ok(match self.kind {
            Kind::Scalar(s) => s.finish(),
            Kind::RawJson(mut b) => Arc::new(b.finish()),
            Kind::List(l) => {
                let ListCol {
                    field,
                    offsets,
                    mut nulls,
                    elements,
                    item,
                } = *l;
                // arrow 59's `OffsetBufferBuilder::finish` panics past i32::MAX elements.
                if i32::try_from(elements).is_err() {
                    return Err(ArrowError::ComputeError(format!(
                        "list {} is too long",
                        self.name
                    )));
                }
                Arc::new(ListArray::try_new(
                    field,
                    offsets.finish(),
                    item.finish()?,
                    nulls.finish(),
                )?)
            }
            Kind::Struct(s) => {
                let StructCol {
                    fields,
                    mut nulls,
                    object,
                } = *s;
                let arrays = object
                    .cols
                    .into_iter()
                    .map(Col::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(StructArray::try_new(fields, arrays, nulls.finish())?)
            }
        })
    }
}

impl Scalar {
    fn null(&mut self) {
        match self {
            Scalar::Int(b) => b.append_null(),
            Scalar::Float(b) => b.append_null(),
            Scalar::Bool(b) => b.append_null(),
            Scalar::Str(b) | Scalar::Json(b) => b.append_null(),
            Scalar::Ts(b) => b.append_null(),
            Scalar::Date(b) => b.append_null(),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Scalar::Int(mut b) => Arc::new(b.finish()),
            Scalar::Float(mut b) => Arc::new(b.finish()),
            Scalar::Bool(mut b) => Arc::new(b.finish()),
            Scalar::Str(mut b) | Scalar::Json(mut b) => Arc::new(b.finish()),
            Scalar::Ts(mut b) => Arc::new(b.finish()),
            Scalar::Date(mut b) => Arc::new(b.finish()),
        }
    }

    /// Appends one parsed value: typed when it fits, kept in `_extra` (and counted) when the
    /// column cannot hold all of it.
    fn append(&mut self, nullable: bool, value: &Json, left: &mut Leftovers, path: &Path) {
        if matches!(value, Json::Null) {
            left.null_seen(nullable);
            self.null();
            return;
        }
        match self {
            Scalar::Int(b) => b.append_option(settle(left, path, value, to_i64(value))),
            Scalar::Float(b) => b.append_option(settle(left, path, value, to_f64(value))),
            Scalar::Bool(b) => {
                let typed = value.as_bool().map(|v| (v, Exact::Yes));
                b.append_option(settle(left, path, value, typed))
            }
            Scalar::Str(b) => {
                let typed = value.as_str().map(|s| (s, Exact::Yes));
                let s = settle(left, path, value, typed);
                // A repaired lone surrogate: U+FFFD in the column, the text as sent in `_extra`
                // (a JSON string holding the source text, escapes as written).
                if let Some(original) = s.and_then(|s| {
                    let repairs = left.repairs.as_ref()?;
                    repairs.original_of(s).map(str::to_string)
                }) {
                    left.type_mismatches += 1;
                    left.keep_with(path, || Value::String(original));
                }
                b.append_option(s);
            }
            Scalar::Ts(b) => {
                let typed = value.as_str().and_then(parse_timestamp_micros).map(|t| {
                    let exact = if t.exact() { Exact::Yes } else { Exact::No };
                    (t.micros, exact)
                });
                b.append_option(settle(left, path, value, typed));
            }
            Scalar::Date(b) => {
                let day = match value.as_str().map(parse_date) {
                    Some(DateParse::Date(d)) => Some(d),
                    Some(DateParse::FromTimestamp(d)) => {
                        // The column gets the date; the time of day would be lost, so the
                        // original text is kept and counted too.
                        left.mismatch(path, value);
                        Some(d)
                    }
                    Some(DateParse::Invalid) | None => {
                        left.mismatch(path, value);
                        None
                    }
                };
                b.append_option(day);
            }
            Scalar::Json(b) => {
                left.text.clear();
                // Writing a parsed tree back cannot fail (no NaN or infinity comes out of the
                // parser) and always gives UTF-8; both are checked rather than trusted.
                match serde_json::to_writer(&mut left.text, value)
                    .ok()
                    .and_then(|()| std::str::from_utf8(&left.text).ok())
                {
                    Some(text) => b.append_value(text),
                    None => {
                        b.append_null();
                        left.mismatch(path, value);
                    }
                }
            }
        }
    }
}

/// A typed reading of `value`: stored as is when exact; stored and the original kept when the
/// column holds a faithful reading but not all of the text; null and kept when it does not fit.
#[inline]
fn settle<T>(
    left: &mut Leftovers,
    path: &Path,
    value: &Json,
    typed: Option<(T, Exact)>,
) -> Option<T> {
    match typed {
        Some((out, Exact::Yes)) => Some(out),
        Some((out, Exact::No)) => {
            left.mismatch(path, value);
            Some(out)
        }
        None => {
            left.mismatch(path, value);
            None
        }
    }
}

fn schema_drift(name: &str, dt: &DataType) -> ArrowError {
    // Unreachable while the schema comes from `arrow_schema` for the same stream.
    ArrowError::SchemaError(format!(
        "column {name} has Arrow type {dt} that does not match its declaration"
    ))
}

/// One value of a column, read into its builder.
struct Cell<'a> {
    kind: &'a mut Kind,
    nullable: bool,
    left: &'a mut Leftovers,
    path: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Cell<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.kind {
            Kind::Scalar(s) => {
                let value = Json::deserialize(d)?;
                s.append(self.nullable, &value, self.left, self.path);
            }
            Kind::RawJson(b) => {
                let raw = <&'de RawValue>::deserialize(d)?.get();
                if raw == "null" {
                    self.left.null_seen(self.nullable);
                    b.append_null();
                } else {
                    // As received, also on a page whose lone surrogates were repaired.
                    match &self.left.repairs {
                        Some(r) => b.append_value(r.original_raw(raw)),
                        None => b.append_value(raw),
                    }
                }
            }
            Kind::List(list) => d.deserialize_any(ListVisitor {
                list,
                nullable: self.nullable,
                left: self.left,
                path: self.path,
            })?,
            Kind::Struct(s) => d.deserialize_any(StructVisitor {
                s,
                nullable: self.nullable,
                left: self.left,
                path: self.path,
            })?,
        }
        Ok(())
    }
}

/// The values a list or struct visitor does not expect: each is a mismatch, handed to `other`.
macro_rules! other_values {
    () => {
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
            self.other(&Json::Bool(v));
            Ok(())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
            let v = JsonVisitor.visit_i64::<E>(v)?;
            self.other(&v);
            Ok(())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
            self.other(&Json::U64(v));
            Ok(())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
            self.other(&Json::F64(v));
            Ok(())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
            self.other(&Json::Str(v.into()));
            Ok(())
        }
    };
}

struct ListVisitor<'a> {
    list: &'a mut ListCol,
    nullable: bool,
    left: &'a mut Leftovers,
    path: &'a Path<'a>,
}

impl ListVisitor<'_> {
    fn other(self, value: &Json) {
        self.left.mismatch(self.path, value);
        self.list.null();
    }
}

impl<'de> Visitor<'de> for ListVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ListCol {
            offsets,
            nulls,
            elements,
            item,
            ..
        } = self.list;
        let mut n = 0;
        loop {
            let path = Path::Index(self.path, n);
            let cell = Cell {
                kind: &mut item.kind,
                nullable: item.nullable,
                left: &mut *self.left,
                path: &path,
            };
            if seq.next_element_seed(cell)?.is_none() {
                break;
            }
            n += 1;
        }
        *elements += n;
        offsets.push_length(n);
        nulls.append_non_null();
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.left.null_seen(self.nullable);
        self.list.null();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let value = JsonVisitor.visit_map(map)?;
        self.other(&value);
        Ok(())
    }

    other_values!();
}

struct StructVisitor<'a> {
    s: &'a mut StructCol,
    nullable: bool,
    left: &'a mut Leftovers,
    path: &'a Path<'a>,
}

impl StructVisitor<'_> {
    fn other(self, value: &Json) {
        self.left.mismatch(self.path, value);
        self.s.null();
    }
}

impl<'de> Visitor<'de> for StructVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.s.object.read(&mut map, self.left, self.path)?;
        self.s.nulls.append_non_null();
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.left.null_seen(self.nullable);
        self.s.null();
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        let value = JsonVisitor.visit_seq(seq)?;
        self.other(&value);
        Ok(())
    }

    other_values!();
}

/// A page's reader: the builders of every declared top-level column.
pub(crate) struct Reader {
    top: Object,
}

impl Reader {
    /// `arrow_fields` are the schema's fields (the declared ones come first, in order);
    /// `rows_hint` sizes the builders.
    pub(crate) fn new(
        fields: &[Field],
        arrow_fields: &Fields,
        rows_hint: usize,
    ) -> Result<Self, ArrowError> {
        let cols = fields
            .iter()
            .zip(arrow_fields.iter())
            .map(|(f, af)| Col::new(&f.name, &f.ty, f.nullable, af.data_type(), true, rows_hint))
            .collect::<Result<_, _>>()?;
        Ok(Reader {
            top: Object::new(cols),
        })
    }

    /// Reads a list page (a JSON array of objects) from a borrowing deserializer.
    pub(crate) fn read<'de, D: Deserializer<'de>>(
        &mut self,
        d: D,
        left: &mut Leftovers,
    ) -> Result<(), D::Error> {
        d.deserialize_seq(PageVisitor {
            top: &mut self.top,
            left,
        })
    }

    /// One array per declared column, in declaration order.
    pub(crate) fn finish(self) -> Result<Vec<ArrayRef>, ArrowError> {
        self.top.cols.into_iter().map(Col::finish).collect()
    }
}

struct PageVisitor<'a> {
    top: &'a mut Object,
    left: &'a mut Leftovers,
}

impl<'de> Visitor<'de> for PageVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(RecordSeed {
                top: &mut *self.top,
                left: &mut *self.left,
            })?
            .is_some()
        {}
        Ok(())
    }
}

struct RecordSeed<'a> {
    top: &'a mut Object,
    left: &'a mut Leftovers,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one record)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.left.extra.push(None);
        self.top.read(&mut map, self.left, &Path::Root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_as_the_extra_keys() {
        let mut out = String::new();
        let a = Path::Key(&Path::Root, "emails");
        let e = Path::Index(&a, 2);
        Path::Key(&e, "verified").render(&mut out);
        assert_eq!(out, "emails[2].verified");
        out.clear();
        let m = Path::Index(&Path::Index(&Path::Key(&Path::Root, "matrix"), 1), 0);
        m.render(&mut out);
        assert_eq!(out, "matrix[1][0]");
        out.clear();
        Path::Key(&Path::Key(&Path::Root, "owner"), "team").render(&mut out);
        assert_eq!(out, "owner.team");
    }
}
