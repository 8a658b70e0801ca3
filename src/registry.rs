//! The stream registry: every Harvest v3 stream greenhouse-extract knows, loaded from the TOML
//! declarations in `streams/` (embedded in the binary at build time, see `build.rs`).
//!
//! Contract:
//! - A declaration is data. The engine never branches on a stream's name; every per-stream fact
//!   (path, scope, key, cursor, static parameters, partitions, sensitivity, schema) lives here.
//! - Loading validates everything before any request is made: unknown keys are rejected, names are
//!   unique, the primary key exists and is a non-null integer, an incremental stream names its record
//!   cursor (a non-null timestamp) and its request filter explicitly. There is no default cursor: a
//!   peer connector once defaulted to `applied_at` and missed every update for years.
//! - The registry is immutable after loading and cheap to share (`Arc`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/streams_embedded.rs"));
}

/// A registry load failure: always a bug in a declaration, reported with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("stream declaration {file}: {message}")]
pub struct RegistryError {
    pub file: String,
    pub message: String,
}

// ---------------------------------------------------------------------------------------------
// Raw declarations (what the TOML says)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamFile {
    name: String,
    resource: String,
    scope: String,
    group: String,
    description: String,
    primary_key: Vec<String>,
    #[serde(default)]
    sensitive: bool,
    replication: ReplicationDecl,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    partitions: Vec<BTreeMap<String, String>>,
    fields: Vec<TypeDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
enum ReplicationDecl {
    Incremental {
        cursor_field: String,
        filter: String,
    },
    FullRefresh {
        reason: String,
    },
}

/// A field (`name` set) or a list's item type (`name` absent). One struct for both because serde's
/// `flatten` would silently disable `deny_unknown_fields`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeDecl {
    #[serde(default)]
    name: Option<String>,
    #[serde(rename = "type")]
    kind: TypeKind,
    #[serde(default)]
    nullable: bool,
    #[serde(default, rename = "enum")]
    enum_values: Option<Vec<String>>,
    #[serde(default)]
    items: Option<Box<TypeDecl>>,
    #[serde(default)]
    fields: Option<Vec<TypeDecl>>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum TypeKind {
    Integer,
    Number,
    Boolean,
    String,
    Timestamp,
    Date,
    List,
    Struct,
    Json,
}

// ---------------------------------------------------------------------------------------------
// Validated model (what the engine uses)
// ---------------------------------------------------------------------------------------------

/// The value type of a field.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldType {
    Integer,
    Number,
    Boolean,
    /// A string; `enum_values` documents the values Greenhouse promises (kept as strings in output:
    /// an unseen enum value must never fail a sync).
    String {
        enum_values: Option<Vec<String>>,
    },
    /// ISO-8601 date-time, stored as UTC microseconds.
    Timestamp,
    /// `YYYY-MM-DD`, stored as days since the epoch.
    Date,
    List(Box<ValueType>),
    Struct(Vec<Field>),
    /// Free-form JSON (e.g. `custom_fields`, whose keys differ per account), stored losslessly as
    /// JSON text.
    Json,
}

/// A type plus nullability (list items have no name).
#[derive(Debug, Clone, PartialEq)]
pub struct ValueType {
    pub ty: FieldType,
    pub nullable: bool,
}

/// A named, typed field of a record or of a nested struct.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub nullable: bool,
    pub description: Option<String>,
}

/// How a stream is read on each run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// A closed `updated_at`-style window on `filter`; records carry the cursor in `cursor_field`.
    Incremental {
        cursor_field: String,
        filter: String,
    },
    /// The resource accepts no date filter: every run re-reads everything.
    FullRefresh { reason: String },
}

/// One declared stream.
#[derive(Debug, Clone)]
pub struct Stream {
    pub name: String,
    /// The v3 resource: requests go to `<api_url>/v3/<resource>`.
    pub resource: String,
    pub scope: String,
    /// The Drivetrain permission group (v1 wording) this stream belongs to, for `check`.
    pub group: String,
    pub description: String,
    pub primary_key: Vec<String>,
    pub sensitive: bool,
    pub replication: Replication,
    /// Static first-page parameters (e.g. `show_service_accounts=true`).
    pub params: BTreeMap<String, String>,
    /// Fixed partitions: each is read as its own cursor chain with these extra first-page
    /// parameters. Empty = one unpartitioned read.
    pub partitions: Vec<BTreeMap<String, String>>,
    pub fields: Vec<Field>,
}

impl Stream {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn cursor_field(&self) -> Option<&str> {
        match &self.replication {
            Replication::Incremental { cursor_field, .. } => Some(cursor_field),
            Replication::FullRefresh { .. } => None,
        }
    }

    pub fn is_incremental(&self) -> bool {
        matches!(self.replication, Replication::Incremental { .. })
    }

    /// The request parameter that carries the window, for incremental streams.
    pub fn window_filter(&self) -> Option<&str> {
        match &self.replication {
            Replication::Incremental { filter, .. } => Some(filter),
            Replication::FullRefresh { .. } => None,
        }
    }

    /// The static first-page parameters of each read: one map per partition (the declared
    /// parameters plus the partition's own), or just the declared parameters when the stream is
    /// not partitioned.
    pub fn partition_params(&self) -> Vec<BTreeMap<String, String>> {
        if self.partitions.is_empty() {
            return vec![self.params.clone()];
        }
        self.partitions
            .iter()
            .map(|p| {
                let mut params = self.params.clone();
                params.extend(p.clone());
                params
            })
            .collect()
    }
}

/// All declared streams, sorted by name.
#[derive(Debug, Clone)]
pub struct Registry {
    streams: Vec<Stream>,
}

impl Registry {
    /// The declarations embedded in this binary.
    pub fn embedded() -> Result<Registry, RegistryError> {
        Self::from_sources(embedded::EMBEDDED.iter().map(|(n, s)| (*n, *s)))
    }

    /// Loads and validates declarations given as `(file name, TOML text)` pairs.
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Registry, RegistryError> {
        let mut streams = Vec::new();
        let mut seen = BTreeSet::new();
        for (file, text) in sources {
            let err = |message: String| RegistryError {
                file: file.to_string(),
                message,
            };
            let raw: StreamFile = toml::from_str(text).map_err(|e| err(e.to_string()))?;
            let stream = validate(raw).map_err(err)?;
            if format!("{}.toml", stream.name) != file {
                return Err(err(format!(
                    "the file must be named after the stream ({}.toml)",
                    stream.name
                )));
            }
            if !seen.insert(stream.name.clone()) {
                return Err(err(format!("duplicate stream name {:?}", stream.name)));
            }
            streams.push(stream);
        }
        if streams.is_empty() {
            return Err(RegistryError {
                file: "streams/".into(),
                message: "no stream declarations found".into(),
            });
        }
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Registry { streams })
    }

    pub fn streams(&self) -> &[Stream] {
        &self.streams
    }

    pub fn get(&self, name: &str) -> Option<&Stream> {
        self.streams.iter().find(|s| s.name == name)
    }
}

fn validate(raw: StreamFile) -> Result<Stream, String> {
    let ident = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    if !ident(&raw.name) {
        return Err(format!("stream name {:?} must be snake_case", raw.name));
    }
    if !ident(&raw.resource) {
        return Err(format!("resource {:?} must be snake_case", raw.resource));
    }
    let expected_scope = format!("harvest:{}:list", raw.resource);
    if raw.scope != expected_scope {
        return Err(format!(
            "scope {:?} does not match the resource (expected {expected_scope:?})",
            raw.scope
        ));
    }
    if raw.group.trim().is_empty() || raw.description.trim().is_empty() {
        return Err("group and description must not be empty".into());
    }
    let fields = raw
        .fields
        .into_iter()
        .map(field_from_decl)
        .collect::<Result<Vec<_>, _>>()?;
    check_unique_names(&fields, "record")?;

    if raw.primary_key.is_empty() {
        return Err("primary_key must name at least one field".into());
    }
    for pk in &raw.primary_key {
        match fields.iter().find(|f| &f.name == pk) {
            None => return Err(format!("primary key field {pk:?} is not declared")),
            Some(f) if f.nullable || f.ty != FieldType::Integer => {
                return Err(format!(
                    "primary key field {pk:?} must be a non-nullable integer"
                ));
            }
            Some(_) => {}
        }
    }
    let replication = match raw.replication {
        ReplicationDecl::Incremental {
            cursor_field,
            filter,
        } => {
            match fields.iter().find(|f| f.name == cursor_field) {
                None => return Err(format!("cursor field {cursor_field:?} is not declared")),
                Some(f) if f.nullable || f.ty != FieldType::Timestamp => {
                    return Err(format!(
                        "cursor field {cursor_field:?} must be a non-nullable timestamp"
                    ));
                }
                Some(_) => {}
            }
            if !ident(&filter) {
                return Err(format!("filter {filter:?} must be a query parameter name"));
            }
            Replication::Incremental {
                cursor_field,
                filter,
            }
        }
        ReplicationDecl::FullRefresh { reason } => {
            if reason.trim().is_empty() {
                return Err("a full-refresh stream must say why (replication.reason)".into());
            }
            Replication::FullRefresh { reason }
        }
    };
    // The engine owns paging and the window; `ids`/`fields` would silently narrow what a stream
    // returns.
    let reserved = ["cursor", "per_page", "ids", "fields"];
    let window_filter = match &replication {
        Replication::Incremental { filter, .. } => Some(filter.as_str()),
        Replication::FullRefresh { .. } => None,
    };
    for key in raw
        .params
        .keys()
        .chain(raw.partitions.iter().flat_map(|p| p.keys()))
    {
        if reserved.contains(&key.as_str()) || Some(key.as_str()) == window_filter {
            return Err(format!(
                "static parameter {key:?} is set by the engine and must not be declared"
            ));
        }
    }
    for p in &raw.partitions {
        if p.is_empty() {
            return Err("a partition must set at least one parameter".into());
        }
        if p.keys().any(|k| raw.params.contains_key(k)) {
            return Err("a partition parameter repeats a static parameter".into());
        }
    }
    Ok(Stream {
        name: raw.name,
        resource: raw.resource,
        scope: raw.scope,
        group: raw.group,
        description: raw.description,
        primary_key: raw.primary_key,
        sensitive: raw.sensitive,
        replication,
        params: raw.params,
        partitions: raw.partitions,
        fields,
    })
}

fn check_unique_names(fields: &[Field], within: &str) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for f in fields {
        if !seen.insert(f.name.as_str()) {
            return Err(format!("field {:?} is declared twice in {within}", f.name));
        }
        if f.name.starts_with('_') {
            return Err(format!(
                "field {:?}: names starting with '_' are reserved for columns the extractor adds",
                f.name
            ));
        }
    }
    Ok(())
}

fn field_from_decl(mut d: TypeDecl) -> Result<Field, String> {
    let name = d
        .name
        .take()
        .ok_or_else(|| format!("a field of type {:?} has no `name`", d.kind))?;
    let vt = value_type(d, &name)?;
    Ok(Field {
        name,
        ty: vt.ty,
        nullable: vt.nullable,
        description: vt.description,
    })
}

struct Typed {
    ty: FieldType,
    nullable: bool,
    description: Option<String>,
}

fn value_type(t: TypeDecl, at: &str) -> Result<Typed, String> {
    let no_extras = |what: &str| -> Result<(), String> {
        if t.items.is_some() || t.fields.is_some() {
            return Err(format!("{at}: a {what} takes neither `items` nor `fields`"));
        }
        Ok(())
    };
    if t.enum_values.is_some() && t.kind != TypeKind::String {
        return Err(format!("{at}: `enum` is only allowed on strings"));
    }
    let ty = match t.kind {
        TypeKind::Integer => {
            no_extras("integer")?;
            FieldType::Integer
        }
        TypeKind::Number => {
            no_extras("number")?;
            FieldType::Number
        }
        TypeKind::Boolean => {
            no_extras("boolean")?;
            FieldType::Boolean
        }
        TypeKind::Timestamp => {
            no_extras("timestamp")?;
            FieldType::Timestamp
        }
        TypeKind::Date => {
            no_extras("date")?;
            FieldType::Date
        }
        TypeKind::Json => {
            no_extras("json value")?;
            FieldType::Json
        }
        TypeKind::String => {
            no_extras("string")?;
            FieldType::String {
                enum_values: t.enum_values,
            }
        }
        TypeKind::List => {
            if t.fields.is_some() {
                return Err(format!("{at}: a list takes `items`, not `fields`"));
            }
            let items = t
                .items
                .ok_or_else(|| format!("{at}: a list must declare `items`"))?;
            if items.name.is_some() || items.description.is_some() {
                return Err(format!(
                    "{at}: list `items` take no `name` or `description` (describe the list field)"
                ));
            }
            let item = value_type(*items, &format!("{at}[]"))?;
            FieldType::List(Box::new(ValueType {
                ty: item.ty,
                nullable: item.nullable,
            }))
        }
        TypeKind::Struct => {
            if t.items.is_some() {
                return Err(format!("{at}: a struct takes `fields`, not `items`"));
            }
            let fields = t
                .fields
                .ok_or_else(|| format!("{at}: a struct must declare `fields`"))?
                .into_iter()
                .map(|f| field_from_decl(f).map_err(|e| format!("{at}: {e}")))
                .collect::<Result<Vec<_>, String>>()?;
            if fields.is_empty() {
                return Err(format!("{at}: a struct must declare at least one field"));
            }
            check_unique_names(&fields, at)?;
            FieldType::Struct(fields)
        }
    };
    Ok(Typed {
        ty,
        nullable: t.nullable,
        description: t.description,
    })
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Integer => f.write_str("integer"),
            FieldType::Number => f.write_str("number"),
            FieldType::Boolean => f.write_str("boolean"),
            FieldType::String { .. } => f.write_str("string"),
            FieldType::Timestamp => f.write_str("timestamp"),
            FieldType::Date => f.write_str("date"),
            FieldType::List(item) => write!(f, "list<{}>", item.ty),
            FieldType::Struct(_) => f.write_str("struct"),
            FieldType::Json => f.write_str("json"),
        }
    }
}

/// A one-stream registry for unit tests elsewhere in the crate: `replication` is the TOML inline
/// table, `fields` the body of the `fields = [ … ]` array.
#[cfg(test)]
pub(crate) fn fixture(name: &str, replication: &str, fields: &str) -> Registry {
    let text = format!(
        "name = \"{name}\"\nresource = \"{name}\"\nscope = \"harvest:{name}:list\"\ngroup = \"Test\"\n\
         description = \"Test.\"\nprimary_key = [\"id\"]\nreplication = {replication}\n\
         fields = [\n{fields}\n]\n"
    );
    Registry::from_sources([(format!("{name}.toml").as_str(), text.as_str())])
        .expect("valid test fixture")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "widgets"
resource = "widgets"
scope = "harvest:widgets:list"
group = "Widgets"
description = "Test widgets."
primary_key = ["id"]
replication = { mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }
fields = [
  { name = "id", type = "integer" },
  { name = "updated_at", type = "timestamp" },
  { name = "tags", type = "list", items = { type = "string" } },
  { name = "kind", type = "struct", nullable = true, fields = [ { name = "id", type = "integer" } ] },
]
"#;

    fn load(text: &str) -> Result<Registry, RegistryError> {
        Registry::from_sources([("widgets.toml", text)])
    }

    #[test]
    fn loads_a_valid_declaration() {
        let r = load(GOOD).unwrap();
        let s = r.get("widgets").unwrap();
        assert_eq!(s.cursor_field(), Some("updated_at"));
        assert!(matches!(s.field("tags").unwrap().ty, FieldType::List(_)));
    }

    #[test]
    fn rejects_unknown_keys() {
        let bad = GOOD.replace("primary_key", "colour = \"red\"\nprimary_key");
        assert!(load(&bad).unwrap_err().message.contains("colour"));
        let bad = GOOD.replace(r#"type = "string" }"#, r#"type = "string", width = 3 }"#);
        assert!(load(&bad).unwrap_err().message.contains("width"));
    }

    #[test]
    fn incremental_without_a_cursor_is_an_error() {
        let bad = GOOD.replace(r#"cursor_field = "updated_at", "#, "");
        assert!(load(&bad).unwrap_err().message.contains("cursor_field"));
    }

    #[test]
    fn cursor_must_be_a_declared_timestamp() {
        let bad = GOOD.replace(r#"cursor_field = "updated_at""#, r#"cursor_field = "id""#);
        assert!(load(&bad).unwrap_err().message.contains("timestamp"));
        let bad = GOOD.replace(
            r#"cursor_field = "updated_at""#,
            r#"cursor_field = "applied_at""#,
        );
        assert!(load(&bad).unwrap_err().message.contains("not declared"));
    }

    #[test]
    fn primary_key_must_be_a_non_null_integer() {
        let bad = GOOD.replace(r#"primary_key = ["id"]"#, r#"primary_key = ["tags"]"#);
        assert!(
            load(&bad)
                .unwrap_err()
                .message
                .contains("non-nullable integer")
        );
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let err =
            Registry::from_sources([("widgets.toml", GOOD), ("widgets.toml", GOOD)]).unwrap_err();
        assert!(err.message.contains("duplicate"));
    }

    #[test]
    fn scope_must_match_resource() {
        let bad = GOOD.replace("harvest:widgets:list", "harvest:gadgets:list");
        assert!(load(&bad).unwrap_err().message.contains("scope"));
    }

    #[test]
    fn engine_parameters_cannot_be_declared() {
        let bad = GOOD.replace(
            "replication =",
            "params = { per_page = \"10\" }\nreplication =",
        );
        assert!(load(&bad).unwrap_err().message.contains("per_page"));
    }
}
