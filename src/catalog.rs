//! Singer and Airbyte catalogs generated from the registry.
//!
//! Contract: output is deterministic (keys sorted, streams sorted by name), so the committed
//! `catalog.json` can be compared byte for byte with `greenhouse-extract discover` in CI.
//! String enums are documented in descriptions, never enforced in the JSON Schema: a value
//! Greenhouse adds later must not make a downstream target reject records.

use serde_json::{Map, Value, json};

use crate::registry::{
    DeleteMode, Deletes, Field, FieldType, Registry, Replication, Stream, ValueType, WebhookRule,
};

/// The JSON Schema of one value.
fn value_schema(ty: &FieldType, nullable: bool, description: Option<&str>) -> Value {
    let with_null = |t: &str| -> Value {
        if nullable {
            json!(["null", t])
        } else {
            json!([t])
        }
    };
    let mut schema = match ty {
        FieldType::Integer => json!({ "type": with_null("integer") }),
        FieldType::Number => json!({ "type": with_null("number") }),
        FieldType::Boolean => json!({ "type": with_null("boolean") }),
        FieldType::String { .. } => json!({ "type": with_null("string") }),
        FieldType::Timestamp => json!({ "type": with_null("string"), "format": "date-time" }),
        FieldType::Date => json!({ "type": with_null("string"), "format": "date" }),
        FieldType::List(item) => {
            let ValueType { ty, nullable } = item.as_ref();
            json!({ "type": with_null("array"), "items": value_schema(ty, *nullable, None) })
        }
        FieldType::Struct(fields) => json!({
            "type": with_null("object"),
            "properties": properties(fields),
        }),
        FieldType::Json => json!({ "type": with_null("object") }),
    };
    let mut desc = description.map(str::to_string);
    if let FieldType::String {
        enum_values: Some(values),
    } = ty
    {
        let known = format!("Known values: {}.", values.join(", "));
        desc = Some(match desc {
            Some(d) => format!("{d} {known}"),
            None => known,
        });
    }
    if let (Some(d), Value::Object(m)) = (desc, &mut schema) {
        m.insert("description".into(), Value::String(d));
    }
    schema
}

fn properties(fields: &[Field]) -> Value {
    let mut props = Map::new();
    for f in fields {
        props.insert(
            f.name.clone(),
            value_schema(&f.ty, f.nullable, f.description.as_deref()),
        );
    }
    Value::Object(props)
}

/// The field of a Singer record that marks a delete (the convention Singer targets such as
/// pipelinewise's honour with `hard_delete`).
pub const SINGER_DELETED_AT: &str = "_sdc_deleted_at";
/// The field of an Airbyte record that marks a delete (Airbyte's CDC convention, which its
/// destinations apply in deduplicated mode).
pub const AIRBYTE_DELETED_AT: &str = "_ab_cdc_deleted_at";

/// Whether `name` is one of the fields [`record_schema`] adds for tombstones (in either
/// protocol): a catalog that lists them selects nothing by them.
pub fn is_delete_field(name: &str) -> bool {
    [
        SINGER_DELETED_AT,
        AIRBYTE_DELETED_AT,
        "_deleted_by",
        "_merged_into",
    ]
    .contains(&name)
}

/// The JSON Schema of one stream's records. `deleted_at` names the field that marks a
/// tombstone in this protocol: a deleted record is `{<key>, <deleted_at>, _deleted_by,
/// _merged_into}` and nothing else.
pub fn record_schema(stream: &Stream, deleted_at: &str) -> Value {
    let mut props = properties(&stream.fields);
    if let Value::Object(m) = &mut props {
        m.insert(
            deleted_at.to_string(),
            json!({
                "type": ["null", "string"],
                "format": "date-time",
                "description": "Set on a deleted record (all other fields but the key absent): when the extractor learned of the delete.",
            }),
        );
        m.insert(
            "_deleted_by".to_string(),
            json!({
                "type": ["null", "string"],
                "description": "How the delete was learned: reconcile, cascade or webhook.",
            }),
        );
        m.insert(
            "_merged_into".to_string(),
            json!({
                "type": ["null", "integer"],
                "description": "The record a deleted record was merged into, when known.",
            }),
        );
    }
    json!({
        "type": "object",
        "additionalProperties": true,
        "properties": props,
    })
}

fn webhook_rules(rules: &[WebhookRule]) -> Value {
    rules
        .iter()
        .map(|r| {
            let mut m = Map::new();
            m.insert("action".into(), json!(r.action));
            m.insert(if r.many { "ids" } else { "id" }.into(), json!(r.pointer));
            if let Some(p) = &r.merged_into {
                m.insert("merged_into".into(), json!(p));
            }
            Value::Object(m)
        })
        .collect()
}

/// A stream's delete facts (`x-deletes` in the stream's Singer metadata), in the declarations'
/// shape: how rows disappear, whether ids are reconciled, the cascades and the webhook actions.
pub fn deletes_json(d: &Deletes) -> Value {
    let mut v = match &d.mode {
        DeleteMode::Hard => json!({ "mode": "hard" }),
        DeleteMode::Soft { flag, deleted_when } => {
            json!({ "mode": "soft", "flag": flag, "deleted_when": deleted_when })
        }
        DeleteMode::Never => json!({ "mode": "never" }),
    };
    v["reconcile"] = json!(d.reconcile);
    v["cascade"] = d
        .cascade
        .iter()
        .map(|c| json!({ "field": c.field, "parent": c.parent }))
        .collect();
    v["webhooks"] = webhook_rules(&d.webhooks);
    v["refresh"] = webhook_rules(&d.refresh);
    v["erase"] = json!(d.erase);
    v
}

fn singer_stream(stream: &Stream) -> Value {
    let (method, keys) = match &stream.replication {
        Replication::Incremental { cursor_field, .. } => {
            ("INCREMENTAL", vec![Value::String(cursor_field.clone())])
        }
        Replication::FullRefresh { .. } => ("FULL_TABLE", vec![]),
    };
    let mut top = json!({
        "inclusion": "available",
        "selected-by-default": !stream.sensitive,
        "table-key-properties": stream.primary_key,
        "forced-replication-method": method,
        "schema-name": stream.name,
        "x-deletes": deletes_json(&stream.deletes),
    });
    if !keys.is_empty() {
        top["valid-replication-keys"] = Value::Array(keys.clone());
    }
    let mut metadata = vec![json!({ "breadcrumb": [], "metadata": top })];
    for f in &stream.fields {
        let automatic =
            stream.primary_key.contains(&f.name) || stream.cursor_field() == Some(f.name.as_str());
        metadata.push(json!({
            "breadcrumb": ["properties", f.name],
            "metadata": {
                "inclusion": if automatic { "automatic" } else { "available" },
                "selected-by-default": true,
            }
        }));
    }
    let mut s = json!({
        "tap_stream_id": stream.name,
        "stream": stream.name,
        "schema": record_schema(stream, SINGER_DELETED_AT),
        "key_properties": stream.primary_key,
        "replication_method": method,
        "metadata": metadata,
    });
    if let Some(c) = stream.cursor_field() {
        s["replication_key"] = Value::String(c.to_string());
    }
    s
}

/// The Singer catalog (`discover`), every declared stream.
pub fn singer_catalog(registry: &Registry) -> Value {
    json!({ "streams": registry.streams().iter().map(singer_stream).collect::<Vec<_>>() })
}

/// One Airbyte `AirbyteStream`.
pub fn airbyte_stream(stream: &Stream) -> Value {
    let mut s = json!({
        "name": stream.name,
        "json_schema": record_schema(stream, AIRBYTE_DELETED_AT),
        "source_defined_primary_key": stream.primary_key.iter().map(|k| vec![k]).collect::<Vec<_>>(),
        "is_resumable": true,
    });
    match stream.cursor_field() {
        Some(c) => {
            s["supported_sync_modes"] = json!(["full_refresh", "incremental"]);
            s["source_defined_cursor"] = json!(true);
            s["default_cursor_field"] = json!([c]);
        }
        None => {
            s["supported_sync_modes"] = json!(["full_refresh"]);
        }
    }
    s
}

/// The Airbyte catalog (`discover --format airbyte`).
pub fn airbyte_catalog(registry: &Registry) -> Value {
    json!({ "streams": registry.streams().iter().map(airbyte_stream).collect::<Vec<_>>() })
}

/// Pretty JSON with a trailing newline, as written to `catalog.json`.
pub fn to_pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("catalog serialises");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        crate::registry::fixture(
            "widgets",
            r#"{ mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }"#,
            r#"{ name = "id", type = "integer" },
  { name = "updated_at", type = "timestamp" },
  { name = "status", type = "string", nullable = true, enum = ["a", "b"] },
  { name = "tags", type = "list", items = { type = "struct", fields = [ { name = "x", type = "date" } ] } },"#,
        )
    }

    #[test]
    fn singer_metadata_marks_key_and_cursor_automatic() {
        let c = singer_catalog(&registry());
        let md = c["streams"][0]["metadata"].as_array().unwrap();
        let inclusion = |name: &str| {
            md.iter()
                .find(|m| m["breadcrumb"] == json!(["properties", name]))
                .unwrap()["metadata"]["inclusion"]
                .clone()
        };
        assert_eq!(inclusion("id"), "automatic");
        assert_eq!(inclusion("updated_at"), "automatic");
        assert_eq!(inclusion("status"), "available");
        assert_eq!(c["streams"][0]["replication_key"], "updated_at");
    }

    #[test]
    fn singer_metadata_carries_the_delete_facts() {
        let c = singer_catalog(&registry());
        let top = &c["streams"][0]["metadata"][0];
        assert_eq!(top["breadcrumb"], json!([]));
        assert_eq!(
            top["metadata"]["x-deletes"],
            json!({ "mode": "never", "reconcile": false, "cascade": [], "webhooks": [], "refresh": [], "erase": false })
        );
    }

    #[test]
    fn schemas_are_typed_and_enums_not_enforced() {
        let s = record_schema(&registry().streams()[0], SINGER_DELETED_AT);
        assert_eq!(s["properties"]["status"]["type"], json!(["null", "string"]));
        assert!(s["properties"]["status"].get("enum").is_none());
        assert_eq!(
            s["properties"]["tags"]["items"]["properties"]["x"]["format"],
            "date"
        );
        assert_eq!(s["properties"]["updated_at"]["format"], "date-time");
    }

    #[test]
    fn airbyte_streams_declare_cursor_and_key() {
        let c = airbyte_catalog(&registry());
        assert_eq!(
            c["streams"][0]["default_cursor_field"],
            json!(["updated_at"])
        );
        assert_eq!(
            c["streams"][0]["source_defined_primary_key"],
            json!([["id"]])
        );
    }
}
