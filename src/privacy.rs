//! Column exclusion and hashing, applied to every batch before anything is written.
//!
//! Contract: an excluded column never reaches the destination; a hashed column is replaced by
//! the lowercase hex SHA-256 of `salt || 0x00 || value` (strings and JSON text as UTF-8 bytes,
//! integers as decimal text), null stays null. Values of those columns that the converter kept in
//! `_extra` (type mismatches) are removed from `_extra` too, so nothing leaks around the policy.
//! The primary key and the cursor can be neither excluded nor hashed (config validation).
//!
//! The policy itself, [`ColumnPolicy`], is a validated configuration value and so is defined in
//! `config` (which validates it against the declarations); this module adds what applying it
//! means to Arrow batches and JSON values. Defining the struct here instead would make `config`
//! depend on `privacy` and, through it, on `convert` and Arrow — above the layer it belongs to.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use sha2::{Digest, Sha256};

use crate::convert::EXTRA_COLUMN;

/// Re-exported so that code applying a policy names this module (and the graph of module
/// dependencies shows it does).
pub use crate::config::ColumnPolicy;

/// The schema of `stream`'s raw files under `policies`: its declared schema after its column
/// policy (none: the declared schema).
pub fn raw_schema(
    policies: &std::collections::BTreeMap<String, ColumnPolicy>,
    stream: &crate::registry::Stream,
) -> SchemaRef {
    let declared = crate::convert::arrow_schema(stream);
    match policies.get(&stream.name) {
        Some(policy) => policy.schema(&declared),
        None => declared,
    }
}

/// Field metadata marking a hashed column in the Parquet schema.
pub const HASHED_METADATA_KEY: &str = "greenhouse.hashed";

impl ColumnPolicy {
    pub fn is_noop(&self) -> bool {
        self.exclude.is_empty() && self.hash.is_empty()
    }

    /// The schema of the batches after the policy.
    pub fn schema(&self, input: &SchemaRef) -> SchemaRef {
        if self.is_noop() {
            return input.clone();
        }
        let fields: Vec<Field> = input
            .fields()
            .iter()
            .filter(|f| !self.exclude.contains(f.name()))
            .map(|f| {
                if self.hash.contains(f.name()) {
                    let mut md = f.metadata().clone();
                    md.insert(HASHED_METADATA_KEY.to_string(), "sha256-salted".to_string());
                    Field::new(f.name(), DataType::Utf8, true).with_metadata(md)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()))
    }

    /// Applies the policy to one batch (whose schema is the converter's).
    pub fn apply(
        &self,
        batch: &RecordBatch,
        out_schema: &SchemaRef,
    ) -> Result<RecordBatch, ArrowError> {
        if self.is_noop() {
            return Ok(batch.clone());
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(out_schema.fields().len());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            let name = field.name();
            if self.exclude.contains(name) {
                continue;
            }
            if self.hash.contains(name) {
                columns.push(self.hash_column(name, column)?);
            } else if name == EXTRA_COLUMN {
                columns.push(self.scrub_extra(column)?);
            } else {
                columns.push(column.clone());
            }
        }
        RecordBatch::try_new(out_schema.clone(), columns)
    }

    /// The salted digest of one value (also used for JSON records in the protocol modes).
    pub fn digest(&self, value: &[u8]) -> String {
        let mut h = Sha256::new();
        if let Some(salt) = &self.salt {
            h.update(salt.expose().as_bytes());
        }
        h.update([0u8]);
        h.update(value);
        hex::encode(h.finalize())
    }

    fn hash_column(&self, name: &str, column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
        let out: StringArray = if let Some(s) = column.as_any().downcast_ref::<StringArray>() {
            s.iter()
                .map(|v| v.map(|v| self.digest(v.as_bytes())))
                .collect()
        } else if let Some(i) = column.as_any().downcast_ref::<Int64Array>() {
            i.iter()
                .map(|v| v.map(|v| self.digest(v.to_string().as_bytes())))
                .collect()
        } else {
            return Err(ArrowError::InvalidArgumentError(format!(
                "column {name} cannot be hashed (only string, JSON and integer columns can)"
            )));
        };
        Ok(Arc::new(out))
    }

    /// Drops `_extra` entries that belong to an excluded or hashed column (`col`, `col.x`,
    /// `col[3]`); an object left empty becomes null.
    fn scrub_extra(&self, column: &ArrayRef) -> Result<ArrayRef, ArrowError> {
        let Some(extra) = column.as_any().downcast_ref::<StringArray>() else {
            return Ok(column.clone());
        };
        let covered = |key: &str| {
            self.exclude.iter().chain(&self.hash).any(|c| {
                key == c
                    || key
                        .strip_prefix(c.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
        };
        let out: StringArray = extra
            .iter()
            .map(|v| {
                let text = v?;
                let Ok(serde_json::Value::Object(mut map)) = serde_json::from_str(text) else {
                    return Some(text.to_string());
                };
                map.retain(|k, _| !covered(k));
                (!map.is_empty()).then(|| serde_json::Value::Object(map).to_string())
            })
            .collect();
        Ok(Arc::new(out))
    }
}

/// A record as the protocol outputs carry it: top-level keys sorted, values kept as their exact
/// JSON text.
pub type JsonRecord = std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>;

impl ColumnPolicy {
    /// The policy on one JSON record (protocol outputs), with the same digests as on batches:
    /// string columns as their UTF-8 value, integers as decimal text, JSON columns (`is_json`)
    /// as their compact text as received.
    pub fn apply_json(&self, is_json: impl Fn(&str) -> bool, record: &mut JsonRecord) {
        if self.is_noop() {
            return;
        }
        record.retain(|k, _| !self.exclude.contains(k));
        for col in &self.hash {
            let Some(raw) = record.get_mut(col) else {
                continue;
            };
            let text = raw.get();
            if text == "null" {
                continue;
            }
            let digest = match serde_json::from_str::<String>(text) {
                Ok(s) if !is_json(col) => self.digest(s.as_bytes()),
                _ => self.digest(text.as_bytes()),
            };
            if let Ok(v) = serde_json::value::RawValue::from_string(
                serde_json::Value::String(digest).to_string(),
            ) {
                *raw = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("email", DataType::Utf8, true),
            Field::new("phone", DataType::Utf8, true),
            Field::new(EXTRA_COLUMN, DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a@x.io"), None])),
                Arc::new(StringArray::from(vec![Some("555"), Some("666")])),
                Arc::new(StringArray::from(vec![
                    Some(r#"{"phone[0]":1,"other":2}"#),
                    Some(r#"{"email":3}"#),
                ])),
            ],
        )
        .unwrap()
    }

    fn policy() -> ColumnPolicy {
        ColumnPolicy {
            exclude: ["phone".to_string()].into(),
            hash: ["email".to_string()].into(),
            salt: Some(Secret::new("pepper")),
        }
    }

    #[test]
    fn excludes_hashes_and_scrubs_extra() {
        let p = policy();
        let b = batch();
        let schema = p.schema(&b.schema());
        let out = p.apply(&b, &schema).unwrap();
        assert!(out.schema().field_with_name("phone").is_err());
        let email = out
            .column_by_name("email")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let mut h = Sha256::new();
        h.update(b"pepper");
        h.update([0u8]);
        h.update(b"a@x.io");
        assert_eq!(email.value(0), hex::encode(h.finalize()));
        assert!(email.is_null(1));
        let extra = out
            .column_by_name(EXTRA_COLUMN)
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(extra.value(0), r#"{"other":2}"#);
        assert!(extra.is_null(1));
    }

    #[test]
    fn the_salt_changes_the_digest() {
        let a = policy();
        let mut b = policy();
        b.salt = Some(Secret::new("other"));
        assert_ne!(a.digest(b"x"), b.digest(b"x"));
    }

    #[test]
    fn json_policy_matches_the_batch_digests() {
        let policy = ColumnPolicy {
            exclude: ["phone".to_string()].into(),
            hash: ["email".to_string(), "n".to_string()].into(),
            salt: Some(Secret::new("pepper")),
        };
        let mut r: JsonRecord =
            serde_json::from_str(r#"{"id":1,"email":"a@b.c","n":42,"phone":"555"}"#).unwrap();
        policy.apply_json(|_| false, &mut r);
        assert!(!r.contains_key("phone"));
        assert_eq!(r["email"].get(), format!("\"{}\"", policy.digest(b"a@b.c")));
        assert_eq!(r["n"].get(), format!("\"{}\"", policy.digest(b"42")));
        assert_eq!(r["id"].get(), "1");
    }
}
