//! A borrowed JSON value, for the values that leave the typed path (see `page`): unknown keys
//! and mismatches kept in `_extra`, nested JSON columns, and whole records on the rare page that
//! quarantines one.
//!
//! Why not `serde_json::Value`: every key and string would be copied into its own `String` and
//! every object would be a `BTreeMap`. Here strings and keys without escapes borrow from the
//! response body, objects are vectors of pairs in the order received (duplicate keys kept as
//! sent), and numbers keep serde_json's three kinds. Parsing is still serde_json's.
//!
//! [`PageSeed`] reads a whole page into records, keeping the exact text of the top-level fields
//! declared `json` ([`Json::Raw`]), so that a quarantined record is written back as received.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;

pub(crate) type Object<'a> = Vec<(Cow<'a, str>, Json<'a>)>;

#[derive(Debug, Clone)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    /// Negative integers (serde_json reads non-negative ones as `U64`).
    I64(i64),
    U64(u64),
    /// Floats, and integers beyond the u64 range (serde_json without `arbitrary_precision`).
    F64(f64),
    Str(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
    /// A top-level JSON-typed field, kept as its text (see the module docs).
    Raw(&'a RawValue),
}

impl PartialEq for Json<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Json::Null, Json::Null) => true,
            (Json::Bool(a), Json::Bool(b)) => a == b,
            (Json::I64(a), Json::I64(b)) => a == b,
            (Json::U64(a), Json::U64(b)) => a == b,
            (Json::F64(a), Json::F64(b)) => a == b,
            (Json::Str(a), Json::Str(b)) => a == b,
            (Json::Array(a), Json::Array(b)) => a == b,
            (Json::Object(a), Json::Object(b)) => a == b,
            (Json::Raw(a), Json::Raw(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

impl<'a> Json<'a> {
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The owned `serde_json::Value` (for `_extra`, off the hot path).
    pub(crate) fn to_value(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::I64(i) => Value::from(*i),
            Json::U64(u) => Value::from(*u),
            // `from_f64` is None only for NaN/infinity, which JSON cannot express.
            Json::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Raw(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
            Json::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// One record of a list page: must be a JSON object.
pub(crate) struct Record<'a>(pub(crate) Object<'a>);

impl Record<'_> {
    /// The record as compact JSON text, keys in the order received (off the hot path: for
    /// quarantined records).
    pub(crate) fn to_json_text(&self) -> String {
        serde_json::to_string(&Json::Object(self.0.clone())).unwrap_or_default()
    }
}

impl<'de> Deserialize<'de> for Record<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RecordVisitor;
        impl<'de> Visitor<'de> for RecordVisitor {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object (one record)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Record<'de>, A::Error> {
                // Records are wide (20–40 keys) and serde_json gives no size hint: start big
                // rather than grow through 4, 8, 16, 32.
                object(map, 32).map(Record)
            }
        }
        d.deserialize_map(RecordVisitor)
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

/// Builds a [`Json`] from any JSON value (also used by the page reader for values that leave the
/// typed path).
pub(crate) struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json<'de>, D::Error> {
        Json::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(if v >= 0 {
            Json::U64(v as u64)
        } else {
            Json::I64(v)
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Json<'de>, E> {
        Ok(Json::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::Str(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json<'de>, A::Error> {
        object(map, 4).map(Json::Object)
    }
}

fn object<'de, A: MapAccess<'de>>(map: A, capacity: usize) -> Result<Object<'de>, A::Error> {
    object_with(map, capacity, &[])
}

/// An object whose keys named in `raw` keep their value's text ([`Json::Raw`]).
fn object_with<'de, A: MapAccess<'de>>(
    mut map: A,
    capacity: usize,
    raw: &[String],
) -> Result<Object<'de>, A::Error> {
    let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(capacity).min(64));
    while let Some(Key(k)) = map.next_key()? {
        let v = if raw.iter().any(|r| *r == k) {
            Json::Raw(map.next_value::<&'de RawValue>()?)
        } else {
            map.next_value::<Json<'de>>()?
        };
        pairs.push((k, v));
    }
    Ok(pairs)
}

/// Deserializes a list page (a JSON array of records), keeping the text of the top-level keys
/// in `raw` (the stream's JSON-typed fields). Needs a borrowing reader (`from_str`/`from_slice`).
pub(crate) struct PageSeed<'s> {
    pub(crate) raw: &'s [String],
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = Vec<Record<'de>>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct PageVisitor<'s>(&'s [String]);
        impl<'de> Visitor<'de> for PageVisitor<'_> {
            type Value = Vec<Record<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON array of records")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(500));
                while let Some(r) = seq.next_element_seed(RecordSeed(self.0))? {
                    out.push(r);
                }
                Ok(out)
            }
        }
        d.deserialize_seq(PageVisitor(self.raw))
    }
}

struct RecordSeed<'s>(&'s [String]);

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct RecordVisitor<'s>(&'s [String]);
        impl<'de> Visitor<'de> for RecordVisitor<'_> {
            type Value = Record<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object (one record)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Record<'de>, A::Error> {
                object_with(map, 32, self.0).map(Record)
            }
        }
        d.deserialize_map(RecordVisitor(self.0))
    }
}

/// An object key, borrowed when it has no escapes (serde's `Cow<str>` always copies).
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Null => s.serialize_unit(),
            Json::Bool(b) => s.serialize_bool(*b),
            Json::I64(i) => s.serialize_i64(*i),
            Json::U64(u) => s.serialize_u64(*u),
            Json::F64(f) => s.serialize_f64(*f),
            Json::Str(v) => s.serialize_str(v),
            Json::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Json::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k.as_ref(), v)?;
                }
                map.end()
            }
            Json::Raw(raw) => raw.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrows_plain_strings_and_keys_and_round_trips() {
        let text = r#"{"a":"plain","b\n":"esc\"aped","c":[1,-2,3.5,18446744073709551615,true,null],"d":{}}"#;
        let v: Json = serde_json::from_str(text).unwrap();
        let Json::Object(pairs) = &v else { panic!() };
        assert!(matches!(pairs[0].0, Cow::Borrowed("a")));
        assert!(matches!(&pairs[0].1, Json::Str(Cow::Borrowed("plain"))));
        assert!(matches!(&pairs[1].0, Cow::Owned(k) if k == "b\n"));
        assert_eq!(pairs[1].1.as_str(), Some("esc\"aped"));
        // Serialises back to the same text (key order kept, compact).
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
        let as_value: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v.to_value(), as_value);
    }
}
