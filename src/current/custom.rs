//! Typed custom-field columns of a current-state table: one `cf_<name_key>` column (or a few)
//! per custom field of the stream's object type, typed from the definition's `value_type`.
//!
//! Contract:
//! - A [`Plan`] is the table's custom-field columns: which field (`name_key`), value type and
//!   part (value, unit, min, max) each column holds. It is stored in the columns' own field
//!   metadata (`greenhouse.custom_field`, `greenhouse.value_type`, `greenhouse.part`), so the
//!   table itself says what its columns are: a field deleted in Greenhouse keeps its column
//!   (nulls from then on), and a later run never retypes a column.
//! - Fields come from the definitions (the definitions stream's current table) and from the
//!   values themselves (each map entry names its `type`), so a field created since the last
//!   run gets its column as soon as either shows it.
//! - Types: currency → `Decimal128(18, 4)` amount + `_unit`; currency_range → `_min`, `_max`
//!   (decimal) + `_unit`; number → `Float64` (the API sends JSON numbers, i.e. binary floating
//!   point, and a double holds every one of them as sent); number_range → `_min`, `_max`
//!   (double); date (and date_of_birth) → `Date32`; yes_no → `Boolean`; multi_select →
//!   `List<Utf8>`; user → the user id (`Int64`); single_select, text, url → `Utf8` (the API
//!   gives the option's name, not its id); any other type → the value's JSON text.
//! - [`widen`] adds the columns to a raw batch. A value that does not fit its column (an amount
//!   with more than 4 decimals, a date that is not `YYYY-MM-DD`, …) is null there and kept in
//!   `_extra` under the column's name, and counted; the raw JSON column is untouched.
//! - [`long_rows`] turns a table's rows into the long-format rows of `custom_field_values`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{
    BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder, ListBuilder,
    StringBuilder,
};
use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::convert::BorrowedKey;
use crate::registry::CustomFields;

/// One custom-field definition: `name_key`, `field_type` (the object type), `value_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub key: String,
    pub object_type: String,
    pub value_type: String,
}

/// A stream's custom fields as one merge uses them: the declaration and the definitions.
pub type Custom<'a> = Option<(&'a CustomFields, Arc<Vec<Definition>>)>;

/// Column name prefix.
pub const PREFIX: &str = "cf_";
const META_KEY: &str = "greenhouse.custom_field";
const META_TYPE: &str = "greenhouse.value_type";
const META_PART: &str = "greenhouse.part";
/// Decimal columns: 18 digits (fits 64 bits in every engine), 4 after the point (every ISO 4217
/// currency has at most 4 minor digits).
pub const DECIMAL_PRECISION: u8 = 18;
pub const DECIMAL_SCALE: i8 = 4;

/// How a value type is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Currency,
    CurrencyRange,
    Number,
    NumberRange,
    Date,
    YesNo,
    MultiSelect,
    User,
    Text,
    /// A value type without a typed column: its value's JSON text.
    Json,
}

impl Kind {
    pub fn of(value_type: &str) -> Kind {
        match value_type {
            "currency" => Kind::Currency,
            "currency_range" => Kind::CurrencyRange,
            "number" => Kind::Number,
            "number_range" => Kind::NumberRange,
            "date" | "date_of_birth" => Kind::Date,
            "yes_no" => Kind::YesNo,
            "multi_select" => Kind::MultiSelect,
            "user" => Kind::User,
            "short_text" | "long_text" | "url" | "single_select" | "rich_text" => Kind::Text,
            _ => Kind::Json,
        }
    }

    /// The columns (suffix after `cf_<key>`, part) of this kind.
    fn parts(self) -> &'static [(&'static str, Part)] {
        match self {
            Kind::Currency => &[("", Part::Value), ("_unit", Part::Unit)],
            Kind::NumberRange => &[("_min", Part::Min), ("_max", Part::Max)],
            Kind::CurrencyRange => &[
                ("_min", Part::Min),
                ("_max", Part::Max),
                ("_unit", Part::Unit),
            ],
            _ => &[("", Part::Value)],
        }
    }

    fn data_type(self, part: Part) -> DataType {
        match (self, part) {
            (_, Part::Unit) => DataType::Utf8,
            (Kind::Currency | Kind::CurrencyRange, _) => {
                DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)
            }
            (Kind::Number | Kind::NumberRange, _) => DataType::Float64,
            (Kind::Date, _) => DataType::Date32,
            (Kind::YesNo, _) => DataType::Boolean,
            (Kind::MultiSelect, _) => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            }
            (Kind::User, _) => DataType::Int64,
            (Kind::Text | Kind::Json, _) => DataType::Utf8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Value,
    Unit,
    Min,
    Max,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Value => "value",
            Part::Unit => "unit",
            Part::Min => "min",
            Part::Max => "max",
        }
    }
    fn parse(s: &str) -> Option<Part> {
        Some(match s {
            "value" => Part::Value,
            "unit" => Part::Unit,
            "min" => Part::Min,
            "max" => Part::Max,
            _ => return None,
        })
    }
}

/// One custom field of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value_type: String,
    pub kind: Kind,
    /// (column name, part), in the kind's order.
    pub columns: Vec<(String, Part)>,
}

/// The custom-field columns of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    entries: BTreeMap<String, Entry>,
}

/// A column name from a `name_key`: lower case, anything but `[a-z0-9_]` as `_` (Delta and most
/// warehouses take such names unquoted).
fn column_base(key: &str) -> String {
    let clean: String = key
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_') => c,
            _ => '_',
        })
        .collect();
    format!("{PREFIX}{clean}")
}

impl Plan {
    /// The plan the table's columns carry in their metadata.
    pub fn from_schema(schema: &Schema) -> Plan {
        let mut plan = Plan::default();
        for f in schema.fields() {
            let meta = f.metadata();
            let (Some(key), Some(vt), Some(part)) = (
                meta.get(META_KEY),
                meta.get(META_TYPE),
                meta.get(META_PART).and_then(|p| Part::parse(p)),
            ) else {
                continue;
            };
            let e = plan.entries.entry(key.clone()).or_insert_with(|| Entry {
                key: key.clone(),
                value_type: vt.clone(),
                kind: Kind::of(vt),
                columns: Vec::new(),
            });
            e.columns.push((f.name().clone(), part));
        }
        plan
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Adds the field `key` of `value_type` unless the plan has it; `taken`: the table's other
    /// column names. A field whose columns would take a name already used (two keys that clean
    /// to the same name, or a declared field) gets none; its values stay in the raw JSON.
    /// Returns whether columns were added.
    pub fn add(&mut self, key: &str, value_type: &str, taken: &BTreeSet<String>) -> bool {
        if self.entries.contains_key(key) {
            return false;
        }
        let kind = Kind::of(value_type);
        let base = column_base(key);
        let columns: Vec<(String, Part)> = kind
            .parts()
            .iter()
            .map(|(suffix, part)| (format!("{base}{suffix}"), *part))
            .collect();
        let used: BTreeSet<&str> = self
            .entries
            .values()
            .flat_map(|e| e.columns.iter().map(|(n, _)| n.as_str()))
            .collect();
        if columns
            .iter()
            .any(|(n, _)| taken.contains(n) || used.contains(n.as_str()))
        {
            return false;
        }
        self.entries.insert(
            key.to_string(),
            Entry {
                key: key.to_string(),
                value_type: value_type.to_string(),
                kind,
                columns,
            },
        );
        true
    }

    /// The wide table's columns [`long_rows`] reads: `id` and every planned column.
    pub fn long_inputs(&self) -> BTreeSet<&str> {
        std::iter::once("id")
            .chain(
                self.entries
                    .values()
                    .flat_map(|e| e.columns.iter().map(|(n, _)| n.as_str())),
            )
            .collect()
    }

    /// The plan's Arrow fields (nullable, with their metadata), by key then part.
    pub fn fields(&self) -> Vec<Field> {
        let mut out = Vec::new();
        for e in self.entries.values() {
            for (name, part) in &e.columns {
                let meta = HashMap::from([
                    (META_KEY.to_string(), e.key.clone()),
                    (META_TYPE.to_string(), e.value_type.clone()),
                    (META_PART.to_string(), part.name().to_string()),
                ]);
                out.push(Field::new(name, e.kind.data_type(*part), true).with_metadata(meta));
            }
        }
        out
    }

    /// `base` (the table's declared columns) followed by the plan's columns.
    pub fn schema(&self, base: &SchemaRef) -> SchemaRef {
        if self.is_empty() {
            return base.clone();
        }
        let mut fields: Vec<Field> = base.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.extend(self.fields());
        Arc::new(Schema::new(fields))
    }
}

/// One custom-field map entry, borrowed from the map's JSON text: only its `type` and `value`
/// (each the exact text received); other keys (`name`, …) are skipped unparsed. An entry that
/// is not a JSON object has neither.
#[derive(Default, Clone, Copy)]
struct RawEntry<'a> {
    ty: Option<&'a RawValue>,
    value: Option<&'a RawValue>,
}

/// A custom-field map's entries in the order received (a repeated key: every copy), borrowed
/// from its JSON text. Why not `serde_json::Value`: it copies every key and string into a
/// `BTreeMap`, which made the maps' parsing the largest cost of a candidates table's merge.
struct RawMap<'a>(Vec<(Cow<'a, str>, RawEntry<'a>)>);

impl<'de> Deserialize<'de> for RawMap<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = RawMap<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a custom-field map (a JSON object)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawMap<'de>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
                while let Some(BorrowedKey(k)) = map.next_key()? {
                    pairs.push((k, map.next_value()?));
                }
                Ok(RawMap(pairs))
            }
        }
        d.deserialize_map(MapVisitor)
    }
}

impl<'de> Deserialize<'de> for RawEntry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = RawEntry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEntry<'de>, A::Error> {
                let mut e = RawEntry::default();
                while let Some(BorrowedKey(k)) = map.next_key()? {
                    // A repeated key: the last one wins, as in a parsed JSON object.
                    match k.as_ref() {
                        "type" => e.ty = Some(map.next_value()?),
                        "value" => e.value = Some(map.next_value()?),
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(e)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawEntry<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(RawEntry::default())
            }
            fn visit_bool<E>(self, _: bool) -> Result<RawEntry<'de>, E> {
                Ok(RawEntry::default())
            }
            fn visit_i64<E>(self, _: i64) -> Result<RawEntry<'de>, E> {
                Ok(RawEntry::default())
            }
            fn visit_u64<E>(self, _: u64) -> Result<RawEntry<'de>, E> {
                Ok(RawEntry::default())
            }
            fn visit_f64<E>(self, _: f64) -> Result<RawEntry<'de>, E> {
                Ok(RawEntry::default())
            }
            fn visit_str<E>(self, _: &str) -> Result<RawEntry<'de>, E> {
                Ok(RawEntry::default())
            }
            fn visit_unit<E>(self) -> Result<RawEntry<'de>, E> {
                Ok(RawEntry::default())
            }
        }
        d.deserialize_any(EntryVisitor)
    }
}

/// The custom-field maps of a raw batch's JSON-text column, parsed once and borrowed from it:
/// one per row (`None`: null, not a JSON object, or no such column). Both [`unseen`] and
/// [`widen`] read these, so each cell is parsed once.
pub struct Maps<'b>(Vec<Option<RawMap<'b>>>);

/// The maps of `batch`'s column `field`.
pub fn maps<'b>(batch: &'b RecordBatch, field: &str) -> Maps<'b> {
    let col = batch
        .column_by_name(field)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>());
    Maps(match col {
        Some(col) => col
            .iter()
            .map(|text| serde_json::from_str(text?).ok())
            .collect(),
        None => (0..batch.num_rows()).map(|_| None).collect(),
    })
}

/// The fields `maps` hold that `plan` lacks, with the value type each entry names (`type`; an
/// entry without one is skipped: nothing says how to type it).
pub fn unseen(maps: &Maps, plan: &Plan) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for map in maps.0.iter().flatten() {
        for (k, e) in &map.0 {
            if plan.contains(k) || out.contains_key(k.as_ref()) {
                continue;
            }
            if let Some(t) =
                e.ty.and_then(|t| serde_json::from_str::<String>(t.get()).ok())
            {
                out.insert(k.to_string(), t);
            }
        }
    }
    out
}

/// An exact decimal with [`DECIMAL_SCALE`] digits after the point, from a string or a JSON
/// number's text; `None` when it has more digits than the column holds (after dropping
/// trailing zeros) or is not a plain decimal.
pub fn parse_decimal(s: &str) -> Option<i128> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac = frac.trim_end_matches('0');
    let scale = DECIMAL_SCALE as usize;
    if frac.len() > scale {
        return None;
    }
    let int = int.trim_start_matches('0');
    if int.len() + scale > DECIMAL_PRECISION as usize {
        return None;
    }
    let mut v: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        v = v * 10 + (b - b'0') as i128;
    }
    for _ in frac.len()..scale {
        v *= 10;
    }
    Some(if neg { -v } else { v })
}

fn decimal_of(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_decimal(s),
        Value::Number(n) => parse_decimal(&n.to_string()),
        _ => None,
    }
}

/// Appends a single-column value straight from its raw JSON text when it has its kind's
/// commonest form — a string for text (borrowed unless escaped), a JSON number, `true` or
/// `false`, a `"YYYY-MM-DD"` date — exactly what [`append`] appends from the parsed value, and
/// returns `true`; appends nothing and returns `false` for any other text (the general path
/// then decides: another form, null or a misfit).
fn append_raw(kind: Kind, b: &mut Builder, raw: &str) -> bool {
    match (kind, b) {
        (Kind::Text, Builder::Text(b)) if raw.starts_with('"') => {
            match serde_json::from_str::<Cow<str>>(raw) {
                Ok(s) => b.append_value(&*s),
                Err(_) => return false,
            }
        }
        (Kind::Number, Builder::Float(b))
            if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) =>
        {
            match serde_json::from_str::<f64>(raw) {
                Ok(f) => b.append_value(f),
                Err(_) => return false,
            }
        }
        (Kind::YesNo, Builder::Bool(b)) => match raw {
            "true" => b.append_value(true),
            "false" => b.append_value(false),
            _ => return false,
        },
        (Kind::Date, Builder::Date(b)) => match plain_date(raw) {
            Some(d) => b.append_value(d),
            None => return false,
        },
        _ => return false,
    }
    true
}

/// Days since 1970-01-01 of a JSON string `"YYYY-MM-DD"` (four, two and two digits, a valid
/// date), as [`date_of`] reads it; `None` for anything else, which [`date_of`] then judges.
fn plain_date(raw: &str) -> Option<i32> {
    let b = raw.as_bytes();
    if b.len() != 12 || b[0] != b'"' || b[11] != b'"' || b[5] != b'-' || b[8] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    let d = chrono::NaiveDate::from_ymd_opt(num(1..5)? as i32, num(6..8)?, num(9..11)?)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

fn date_of(v: &Value) -> Option<i32> {
    let s = v.as_str()?;
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

fn user_of(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::Object(o) => o
            .get("user_id")
            .or_else(|| o.get("id"))
            .and_then(Value::as_i64),
        _ => None,
    }
}

/// One column being built.
enum Builder {
    Decimal(Decimal128Builder),
    Float(Float64Builder),
    Date(Date32Builder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Text(StringBuilder),
    List(ListBuilder<StringBuilder>),
}

impl Builder {
    fn new(dt: &DataType, rows: usize) -> Builder {
        match dt {
            DataType::Decimal128(p, s) => Builder::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(*p, *s)
                    .expect("a valid decimal type"),
            ),
            DataType::Float64 => Builder::Float(Float64Builder::with_capacity(rows)),
            DataType::Date32 => Builder::Date(Date32Builder::with_capacity(rows)),
            DataType::Boolean => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            DataType::Int64 => Builder::Int(Int64Builder::with_capacity(rows)),
            DataType::List(_) => Builder::List(ListBuilder::new(StringBuilder::new())),
            _ => Builder::Text(StringBuilder::with_capacity(rows, rows * 8)),
        }
    }

    fn null(&mut self) {
        match self {
            Builder::Decimal(b) => b.append_null(),
            Builder::Float(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Int(b) => b.append_null(),
            Builder::Text(b) => b.append_null(),
            Builder::List(b) => b.append_null(),
        }
    }

    fn finish(self, field: &Field) -> ArrayRef {
        let a: ArrayRef = match self {
            Builder::Decimal(mut b) => Arc::new(b.finish()),
            Builder::Float(mut b) => Arc::new(b.finish()),
            Builder::Date(mut b) => Arc::new(b.finish()),
            Builder::Bool(mut b) => Arc::new(b.finish()),
            Builder::Int(mut b) => Arc::new(b.finish()),
            Builder::Text(mut b) => Arc::new(b.finish()),
            Builder::List(mut b) => {
                let list = b.finish();
                // The item field as the schema names it.
                let data = list
                    .to_data()
                    .into_builder()
                    .data_type(field.data_type().clone())
                    .build()
                    .expect("the same layout");
                arrow_array::make_array(data)
            }
        };
        a
    }
}

/// Appends one entry's value to its columns; `false` when it does not fit (all its columns are
/// then null).
fn append(kind: Kind, parts: &mut [(Part, &mut Builder)], value: &Value) -> bool {
    // Typed first, appended only when every part fits.
    enum V {
        Dec(Option<i128>),
        Float(Option<f64>),
        Date(i32),
        Bool(bool),
        Int(i64),
        Text(Option<String>),
        List(Vec<String>),
    }
    let obj = value.as_object();
    let field = |name: &str| obj.and_then(|o| o.get(name)).unwrap_or(&Value::Null);
    let opt_dec = |v: &Value| match v {
        Value::Null => Some(None),
        v => decimal_of(v).map(Some),
    };
    let opt_float = |v: &Value| match v {
        Value::Null => Some(None),
        v => v.as_f64().map(Some),
    };
    let opt_text = |v: &Value| match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    };
    let got: Option<Vec<V>> = match kind {
        Kind::Currency => obj.and_then(|_| {
            Some(vec![
                V::Dec(opt_dec(field("amount"))?),
                V::Text(opt_text(field("unit"))?),
            ])
        }),
        Kind::CurrencyRange => obj.and_then(|_| {
            Some(vec![
                V::Dec(opt_dec(field("min_value"))?),
                V::Dec(opt_dec(field("max_value"))?),
                V::Text(opt_text(field("unit"))?),
            ])
        }),
        Kind::NumberRange => obj.and_then(|_| {
            Some(vec![
                V::Float(opt_float(field("min_value"))?),
                V::Float(opt_float(field("max_value"))?),
            ])
        }),
        Kind::Number => value.as_f64().map(|f| vec![V::Float(Some(f))]),
        Kind::Date => date_of(value).map(|d| vec![V::Date(d)]),
        Kind::YesNo => value.as_bool().map(|b| vec![V::Bool(b)]),
        Kind::User => user_of(value).map(|u| vec![V::Int(u)]),
        Kind::Text => value.as_str().map(|s| vec![V::Text(Some(s.to_string()))]),
        Kind::Json => Some(vec![V::Text(Some(match value {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }))]),
        Kind::MultiSelect => value.as_array().and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(|l| vec![V::List(l)])
        }),
    };
    let Some(values) = got.filter(|v| v.len() == parts.len()) else {
        for (_, b) in parts.iter_mut() {
            b.null();
        }
        return false;
    };
    for ((_, b), v) in parts.iter_mut().zip(values) {
        match (&mut **b, v) {
            (Builder::Decimal(b), V::Dec(d)) => b.append_option(d),
            (Builder::Float(b), V::Float(f)) => b.append_option(f),
            (Builder::Date(b), V::Date(d)) => b.append_value(d),
            (Builder::Bool(b), V::Bool(x)) => b.append_value(x),
            (Builder::Int(b), V::Int(x)) => b.append_value(x),
            (Builder::Text(b), V::Text(t)) => b.append_option(t),
            (Builder::List(b), V::List(items)) => {
                for i in items {
                    b.values().append_value(i);
                }
                b.append(true);
            }
            (b, _) => b.null(),
        }
    }
    true
}

/// `batch` (a raw batch whose custom-field `maps` these are) with the plan's columns appended,
/// its `_extra` holding the values that did not fit under their column's name; returns the
/// batch and the number of such values.
pub fn widen(
    batch: &RecordBatch,
    maps: &Maps,
    plan: &Plan,
    extra_column: &str,
) -> Result<(RecordBatch, u64), arrow_schema::ArrowError> {
    if plan.is_empty() {
        return Ok((batch.clone(), 0));
    }
    let rows = batch.num_rows();
    let fields = plan.fields();
    let mut builders: Vec<Builder> = fields
        .iter()
        .map(|f| Builder::new(f.data_type(), rows))
        .collect();
    // Per entry of the plan (in `entries()` order): its position, to find a row's values by key.
    let index: HashMap<&str, usize> = plan
        .entries()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), i))
        .collect();
    let mut values: Vec<Option<&RawValue>> = vec![None; index.len()];
    // Per row with misfits: (column name, value) to add to its `_extra`.
    let mut kept: Vec<(usize, Vec<(String, Value)>)> = Vec::new();
    let mut misfits = 0u64;
    for (row, map) in maps.0.iter().enumerate() {
        values.fill(None);
        if let Some(map) = map {
            // A repeated key: the last copy wins, as in a parsed JSON object.
            for (k, e) in &map.0 {
                if let Some(&i) = index.get(k.as_ref()) {
                    values[i] = e.value;
                }
            }
        }
        let mut at = 0;
        let mut row_kept: Vec<(String, Value)> = Vec::new();
        for (e, raw) in plan.entries().zip(&values) {
            let n = e.columns.len();
            let slice = &mut builders[at..at + n];
            at += n;
            // The commonest values (a text field's string, a number, a yes/no, a date) are
            // appended from their raw text without building a `Value`.
            if let (Some(r), [b]) = (raw, &mut *slice)
                && append_raw(e.kind, b, r.get())
            {
                continue;
            }
            // The raw text was validated by the map's parse, so reading it again cannot fail.
            let value = raw
                .and_then(|r| serde_json::from_str::<Value>(r.get()).ok())
                .unwrap_or(Value::Null);
            if value.is_null() {
                slice.iter_mut().for_each(Builder::null);
                continue;
            }
            let mut parts: Vec<(Part, &mut Builder)> = e
                .columns
                .iter()
                .map(|(_, p)| *p)
                .zip(slice.iter_mut())
                .collect();
            if !append(e.kind, &mut parts, &value) {
                misfits += 1;
                row_kept.push((e.columns[0].0.clone(), value));
            }
        }
        if !row_kept.is_empty() {
            kept.push((row, row_kept));
        }
    }
    // Only rows with misfits get a new `_extra`; the others keep theirs as it is.
    let extra_out: Option<StringArray> = (!kept.is_empty()).then(|| {
        let extra_in = batch
            .column_by_name(extra_column)
            .and_then(|c| c.as_any().downcast_ref::<StringArray>());
        let mut out: Vec<Option<String>> = match extra_in {
            Some(c) => c.iter().map(|v| v.map(str::to_string)).collect(),
            None => vec![None; rows],
        };
        for (row, values) in kept {
            let mut obj = out[row]
                .as_deref()
                .and_then(|t| serde_json::from_str::<serde_json::Map<String, Value>>(t).ok())
                .unwrap_or_default();
            for (k, v) in values {
                obj.insert(k, v);
            }
            out[row] = Some(Value::Object(obj).to_string());
        }
        StringArray::from(out)
    });
    let mut out_fields: Vec<Field> = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        out_fields.push(f.as_ref().clone());
        if f.name() == extra_column
            && let Some(extra) = &extra_out
        {
            columns.push(Arc::new(extra.clone()));
        } else {
            columns.push(c.clone());
        }
    }
    for (f, b) in fields.iter().zip(builders) {
        columns.push(b.finish(f));
        out_fields.push(f.clone());
    }
    let out = RecordBatch::try_new(Arc::new(Schema::new(out_fields)), columns)?;
    Ok((out, misfits))
}

/// The long-format table's schema: one row per record and custom field with a value.
pub fn long_schema() -> SchemaRef {
    let dec = DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE);
    Arc::new(Schema::new(vec![
        Field::new("object_type", DataType::Utf8, true),
        Field::new("record_id", DataType::Int64, true),
        Field::new("name_key", DataType::Utf8, true),
        Field::new("value_type", DataType::Utf8, true),
        Field::new("value_text", DataType::Utf8, true),
        Field::new("value_number", DataType::Float64, true),
        Field::new("value_number_min", DataType::Float64, true),
        Field::new("value_number_max", DataType::Float64, true),
        Field::new("value_decimal", dec.clone(), true),
        Field::new("value_decimal_min", dec.clone(), true),
        Field::new("value_decimal_max", dec, true),
        Field::new("value_unit", DataType::Utf8, true),
        Field::new("value_date", DataType::Date32, true),
        Field::new("value_bool", DataType::Boolean, true),
        Field::new(
            "value_list",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("value_user_id", DataType::Int64, true),
    ]))
}

/// The long column a (kind, part) goes to.
fn long_column(kind: Kind, part: Part) -> &'static str {
    match (kind, part) {
        (_, Part::Unit) => "value_unit",
        (Kind::Currency, _) => "value_decimal",
        (Kind::CurrencyRange, Part::Min) => "value_decimal_min",
        (Kind::CurrencyRange, _) => "value_decimal_max",
        (Kind::NumberRange, Part::Min) => "value_number_min",
        (Kind::NumberRange, _) => "value_number_max",
        (Kind::Number, _) => "value_number",
        (Kind::Date, _) => "value_date",
        (Kind::YesNo, _) => "value_bool",
        (Kind::MultiSelect, _) => "value_list",
        (Kind::User, _) => "value_user_id",
        (Kind::Text | Kind::Json, _) => "value_text",
    }
}

/// An entry's wide columns (absent ones: `None`).
type Sources = Vec<(Part, Option<ArrayRef>)>;

/// The long-format rows of a current table's `batch` (its rows sorted by id): for each row and
/// each field of `plan` whose columns are not all null, one row, ordered by (id, name_key).
pub fn long_rows(
    batch: &RecordBatch,
    plan: &Plan,
    object_type: &str,
) -> Result<RecordBatch, arrow_schema::ArrowError> {
    let schema = long_schema();
    let ids = batch
        .column_by_name("id")
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
        .ok_or_else(|| arrow_schema::ArrowError::SchemaError("no int64 id column".into()))?;
    // Per entry: its columns' arrays (absent columns count as null).
    let entries: Vec<(&Entry, Sources)> = plan
        .entries()
        .map(|e| {
            let cols = e
                .columns
                .iter()
                .map(|(n, p)| (*p, batch.column_by_name(n).cloned()))
                .collect();
            (e, cols)
        })
        .collect();
    // (row, entry) pairs with a value.
    let mut picks: Vec<(usize, usize)> = Vec::new();
    for row in 0..batch.num_rows() {
        if !ids.is_valid(row) {
            continue;
        }
        for (i, (_, cols)) in entries.iter().enumerate() {
            if cols
                .iter()
                .any(|(_, c)| c.as_ref().is_some_and(|c| c.is_valid(row)))
            {
                picks.push((row, i));
            }
        }
    }
    let n = picks.len();
    let take_rows = Int64Array::from_iter_values(picks.iter().map(|(r, _)| *r as i64));
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    let object = StringArray::from(vec![object_type; n]);
    let record = arrow_select::take::take(ids, &take_rows, None)?;
    let keys = StringArray::from_iter_values(picks.iter().map(|(_, i)| entries[*i].0.key.as_str()));
    let types =
        StringArray::from_iter_values(picks.iter().map(|(_, i)| entries[*i].0.value_type.as_str()));
    columns.push(Arc::new(object));
    columns.push(record);
    columns.push(Arc::new(keys));
    columns.push(Arc::new(types));
    for f in schema.fields().iter().skip(4) {
        // Each picked row takes this column's value from the one wide column that feeds it,
        // or null. Built by interleaving: per source column, the rows it feeds. Which column
        // of an entry feeds this one is looked up once per entry, not once per row.
        let mut sources: Vec<ArrayRef> = vec![arrow_array::new_null_array(f.data_type(), 1)];
        let source_of: Vec<usize> = entries
            .iter()
            .map(|(e, cols)| {
                let fed = cols.iter().find_map(|(p, c)| {
                    (long_column(e.kind, *p) == f.name())
                        .then_some(c.as_ref())
                        .flatten()
                });
                match fed {
                    Some(c) => {
                        sources.push(relabel(c, f.data_type()));
                        sources.len() - 1
                    }
                    None => 0,
                }
            })
            .collect();
        let index: Vec<(usize, usize)> = picks
            .iter()
            .map(|&(row, i)| match source_of[i] {
                0 => (0, 0),
                s => (s, row),
            })
            .collect();
        let refs: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
        columns.push(arrow_select::interleave::interleave(&refs, &index)?);
    }
    RecordBatch::try_new(schema, columns)
}

/// `a` under `dt` when the two differ only in names inside (a list's item field).
fn relabel(a: &ArrayRef, dt: &DataType) -> ArrayRef {
    if a.data_type() == dt {
        return a.clone();
    }
    match a.to_data().into_builder().data_type(dt.clone()).build() {
        Ok(d) => arrow_array::make_array(d),
        Err(_) => arrow_array::new_null_array(dt, a.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Date32Type, Decimal128Type, Float64Type, Int64Type};

    fn raw(maps: &[Option<&str>]) -> RecordBatch {
        let ids = Int64Array::from_iter_values(1..=maps.len() as i64);
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("custom_fields", DataType::Utf8, true),
                Field::new("_extra", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(ids),
                Arc::new(StringArray::from(maps.to_vec())),
                Arc::new(StringArray::from(vec![None::<&str>; maps.len()])),
            ],
        )
        .unwrap()
    }

    fn plan(fields: &[(&str, &str)]) -> Plan {
        let mut p = Plan::default();
        for (k, t) in fields {
            assert!(p.add(k, t, &BTreeSet::from(["id".to_string()])));
        }
        p
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(parse_decimal("120000.00"), Some(1_200_000_000));
        assert_eq!(parse_decimal("-0.5"), Some(-5_000));
        assert_eq!(parse_decimal("7"), Some(70_000));
        assert_eq!(parse_decimal("1.23450"), Some(12_345));
        assert_eq!(parse_decimal("1.23456"), None);
        assert_eq!(parse_decimal("1e5"), None);
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(
            parse_decimal("99999999999999.9999"),
            Some(999_999_999_999_999_999)
        );
        assert_eq!(parse_decimal("100000000000000"), None);
    }

    #[test]
    fn every_kind_gets_its_type_and_misfits_go_to_extra() {
        let p = plan(&[
            ("budget", "currency"),
            ("band", "currency_range"),
            ("headcount", "number"),
            ("start", "date"),
            ("remote", "yes_no"),
            ("langs", "multi_select"),
            ("sponsor", "user"),
            ("level", "single_select"),
            ("odd", "linked"),
        ]);
        let good = r#"{"budget":{"type":"currency","value":{"unit":"USD","amount":"120000.50"}},
            "band":{"type":"currency_range","value":{"unit":"EUR","min_value":"10","max_value":"20"}},
            "headcount":{"type":"number","value":3},
            "start":{"type":"date","value":"2024-03-01"},
            "remote":{"type":"yes_no","value":true},
            "langs":{"type":"multi_select","value":["English","日本語"]},
            "sponsor":{"type":"user","value":{"name":"A B","email":"a@b","user_id":42}},
            "level":{"type":"single_select","value":"L3"},
            "odd":{"type":"linked","value":{"x":1}}}"#;
        let bad = r#"{"budget":{"type":"currency","value":{"unit":"USD","amount":"lots"}},
            "start":{"type":"date","value":"March"},"headcount":{"type":"number","value":null}}"#;
        let input = raw(&[Some(good), Some(bad), None]);
        let (b, misfits) = widen(&input, &maps(&input, "custom_fields"), &p, "_extra").unwrap();
        assert_eq!(misfits, 2);
        let dec = |n: &str| {
            b.column_by_name(n)
                .unwrap()
                .as_primitive::<Decimal128Type>()
                .clone()
        };
        assert_eq!(
            b.column_by_name("cf_budget").unwrap().data_type(),
            &DataType::Decimal128(18, 4)
        );
        assert_eq!(dec("cf_budget").value(0), 1_200_005_000);
        assert!(dec("cf_budget").is_null(1));
        assert_eq!(dec("cf_band_min").value(0), 100_000);
        assert_eq!(dec("cf_band_max").value(0), 200_000);
        let text = |n: &str, r: usize| {
            let c = b.column_by_name(n).unwrap().as_string::<i32>();
            c.is_valid(r).then(|| c.value(r).to_string())
        };
        assert_eq!(text("cf_budget_unit", 0).as_deref(), Some("USD"));
        assert_eq!(text("cf_budget_unit", 1), None);
        assert_eq!(text("cf_band_unit", 0).as_deref(), Some("EUR"));
        assert_eq!(text("cf_level", 0).as_deref(), Some("L3"));
        assert_eq!(text("cf_odd", 0).as_deref(), Some(r#"{"x":1}"#));
        let num = b
            .column_by_name("cf_headcount")
            .unwrap()
            .as_primitive::<Float64Type>();
        assert_eq!((num.value(0), num.is_null(1)), (3.0, true));
        let date = b
            .column_by_name("cf_start")
            .unwrap()
            .as_primitive::<Date32Type>();
        assert_eq!(date.value(0), 19783);
        assert!(date.is_null(1));
        assert!(b.column_by_name("cf_remote").unwrap().as_boolean().value(0));
        let user = b
            .column_by_name("cf_sponsor")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(user.value(0), 42);
        let langs = b.column_by_name("cf_langs").unwrap().as_list::<i32>();
        assert_eq!(langs.value(0).as_string::<i32>().value(1), "日本語");
        assert!(langs.is_null(2));
        // The misfits, as sent, under their columns' names; the other rows' _extra untouched.
        let extra: Value = serde_json::from_str(&text("_extra", 1).unwrap()).unwrap();
        assert_eq!(
            extra,
            serde_json::json!({"cf_budget": {"unit":"USD","amount":"lots"}, "cf_start": "March"})
        );
        assert_eq!(text("_extra", 0), None);
        assert_eq!(text("_extra", 2), None);
        // The raw map is untouched.
        assert_eq!(text("custom_fields", 0).as_deref(), Some(good));
    }

    #[test]
    fn text_values_are_unescaped_and_other_kinds_in_a_text_field_are_misfits() {
        let p = plan(&[("team", "short_text")]);
        let input = raw(&[
            Some(r#"{"team":{"type":"short_text","value":"Platform"}}"#),
            Some(r#"{"team":{"type":"short_text","value":"R\"&\u00e9D \ud83d\ude00"}}"#),
            Some(r#"{"team":{"type":"short_text","value":7}}"#),
            Some(r#"{"team":{"type":"short_text","value":null}}"#),
        ]);
        let (b, misfits) = widen(&input, &maps(&input, "custom_fields"), &p, "_extra").unwrap();
        let c = b.column_by_name("cf_team").unwrap().as_string::<i32>();
        assert_eq!(c.value(0), "Platform");
        assert_eq!(c.value(1), "R\"&éD 😀");
        assert!(c.is_null(2) && c.is_null(3));
        assert_eq!(misfits, 1);
        let extra = b.column_by_name("_extra").unwrap().as_string::<i32>();
        assert_eq!(extra.value(2), r#"{"cf_team":7}"#);
        assert!(extra.is_null(0) && extra.is_null(1) && extra.is_null(3));
    }

    /// The raw-text fast path appends exactly what the general path appends from the parsed
    /// value, or leaves the value to it.
    #[test]
    fn raw_values_append_what_parsed_values_do() {
        let cases: &[(Kind, &[&str])] = &[
            (Kind::Text, &[r#""a""#, r#""R\"\u00e9""#, "7", "null", "[]"]),
            (
                Kind::Number,
                &[
                    "0",
                    "-1.5",
                    "12345678901234567890",
                    "1e3",
                    "-0",
                    r#""5""#,
                    "true",
                    "1e400",
                ],
            ),
            (Kind::YesNo, &["true", "false", "null", r#""true""#, "1"]),
            (
                Kind::Date,
                &[
                    r#""2024-02-29""#,
                    r#""1969-12-31""#,
                    r#""2023-02-29""#,
                    r#""2024-1-05""#,
                    r#""20240105""#,
                    r#""+2024-01-05""#,
                    "20240105",
                ],
            ),
        ];
        for (kind, raws) in cases {
            let dt = kind.data_type(Part::Value);
            let field = Field::new("c", dt.clone(), true);
            for raw in *raws {
                let mut fast = Builder::new(&dt, 1);
                let took = append_raw(*kind, &mut fast, raw);
                let mut general = Builder::new(&dt, 1);
                let value: Value = serde_json::from_str(raw).unwrap_or(Value::Null);
                let fits =
                    value.is_null() || append(*kind, &mut [(Part::Value, &mut general)], &value);
                if value.is_null() {
                    general.null();
                }
                if took {
                    assert!(fits, "{kind:?} {raw}: the fast path took a misfit");
                    assert_eq!(
                        fast.finish(&field).to_data(),
                        general.finish(&field).to_data(),
                        "{kind:?} {raw}"
                    );
                } else {
                    assert_eq!(fast.finish(&field).len(), 0, "{kind:?} {raw}: appended");
                }
            }
        }
        // The commonest forms do take the fast path.
        let took = |kind: Kind, raw: &str| {
            append_raw(
                kind,
                &mut Builder::new(&kind.data_type(Part::Value), 1),
                raw,
            )
        };
        assert!(took(Kind::Number, "-1.5") && took(Kind::YesNo, "false"));
        assert!(took(Kind::Date, r#""2024-02-29""#) && took(Kind::Text, r#""a""#));
        assert!(!took(Kind::Date, r#""2023-02-29""#) && !took(Kind::Number, r#""5""#));
    }

    #[test]
    fn the_plan_survives_in_the_columns_metadata_and_collisions_get_no_column() {
        let mut p = plan(&[("budget", "currency"), ("Team Name", "short_text")]);
        // `budget_unit` would take `cf_budget_unit`: refused.
        assert!(!p.add("budget_unit", "short_text", &BTreeSet::new()));
        assert!(!p.add("x", "short_text", &BTreeSet::from(["cf_x".to_string()])));
        let schema = p.schema(&Arc::new(Schema::new(vec![Field::new(
            "id",
            DataType::Int64,
            true,
        )])));
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "cf_team_name", "cf_budget", "cf_budget_unit"]);
        assert_eq!(Plan::from_schema(&schema), p);
    }

    #[test]
    fn new_keys_are_found_with_their_type() {
        let p = plan(&[("budget", "currency")]);
        let b = raw(&[
            Some(
                r#"{"budget":{"type":"currency","value":null},"fresh":{"type":"date","value":null}}"#,
            ),
            Some(r#"{"untyped":{"value":1}}"#),
            Some("not json"),
        ]);
        let found = unseen(&maps(&b, "custom_fields"), &p);
        assert_eq!(
            found,
            BTreeMap::from([("fresh".to_string(), "date".to_string())])
        );
    }

    #[test]
    fn long_rows_hold_one_row_per_value() {
        let p = plan(&[("budget", "currency"), ("langs", "multi_select")]);
        let input = raw(&[
            Some(
                r#"{"budget":{"type":"currency","value":{"unit":"USD","amount":"5"}},"langs":{"type":"multi_select","value":["a"]}}"#,
            ),
            Some(r#"{"budget":{"type":"currency","value":null}}"#),
        ]);
        let (wide, _) = widen(&input, &maps(&input, "custom_fields"), &p, "_extra").unwrap();
        let long = long_rows(&wide, &p, "job").unwrap();
        assert_eq!(long.num_rows(), 2);
        let keys = long.column_by_name("name_key").unwrap().as_string::<i32>();
        assert_eq!((keys.value(0), keys.value(1)), ("budget", "langs"));
        let dec = long
            .column_by_name("value_decimal")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        assert_eq!(dec.value(0), 50_000);
        assert!(dec.is_null(1));
        let unit = long
            .column_by_name("value_unit")
            .unwrap()
            .as_string::<i32>();
        assert_eq!(unit.value(0), "USD");
        let list = long.column_by_name("value_list").unwrap().as_list::<i32>();
        assert!(list.is_null(0));
        assert_eq!(list.value(1).as_string::<i32>().value(0), "a");
        let ids = long
            .column_by_name("record_id")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!((ids.value(0), ids.value(1)), (1, 1));
    }
}
