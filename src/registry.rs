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
    deletes: DeletesDecl,
    #[serde(default)]
    custom_fields: Option<CustomFieldsDecl>,
}

/// `custom_fields = { field = "custom_fields", object_type = "candidate", definitions =
/// "custom_fields" }`: the record's map of custom-field values (a `json` field keyed by
/// `name_key`), the `field_type` its definitions carry, and the stream that lists them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomFieldsDecl {
    field: String,
    object_type: String,
    definitions: String,
}

/// `deletes = { mode = "hard" | "soft" | "never", … }`: required, like the cursor — how rows of
/// this stream disappear is a fact to state, never to assume.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeletesDecl {
    mode: DeleteModeDecl,
    #[serde(default)]
    flag: Option<String>,
    #[serde(default)]
    deleted_when: Option<bool>,
    #[serde(default)]
    reconcile: Option<bool>,
    #[serde(default)]
    cascade: Vec<CascadeDecl>,
    #[serde(default)]
    webhooks: Vec<WebhookDecl>,
    #[serde(default)]
    refresh: Vec<WebhookDecl>,
    #[serde(default)]
    erase: bool,
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum DeleteModeDecl {
    Hard,
    Soft,
    Never,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CascadeDecl {
    field: String,
    parent: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookDecl {
    action: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    ids: Option<String>,
    #[serde(default)]
    merged_into: Option<String>,
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

/// How rows of a stream disappear from Greenhouse.
#[derive(Debug, Clone, PartialEq)]
pub enum DeleteMode {
    /// Rows are removed (by their own delete, or with a parent): they need tombstones.
    Hard,
    /// Rows stay; the boolean `flag` turns `deleted_when` when Greenhouse "deletes" them.
    Soft { flag: String, deleted_when: bool },
    /// Rows never disappear.
    Never,
}

/// A row of this stream dies when the `parent` stream's row whose id is in `field` is
/// hard-deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Cascade {
    pub field: String,
    pub parent: String,
}

/// A Greenhouse webhook `action` that names ids of this stream.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRule {
    pub action: String,
    /// JSON pointer (RFC 6901) into the stored event (`{"action", "payload"}`) to one id or to an
    /// array of ids.
    pub pointer: String,
    /// True when declared with `ids` (the pointer names an array of ids).
    pub many: bool,
    /// JSON pointer to the id the row was merged into (`merge_candidate`), if any.
    pub merged_into: Option<String>,
}

/// Every delete fact of a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Deletes {
    pub mode: DeleteMode,
    /// Whether a run lists the stream's ids to find rows deleted on their own (true by default
    /// for hard streams; false for rows that only disappear with a parent, found through
    /// `cascade`).
    pub reconcile: bool,
    pub cascade: Vec<Cascade>,
    /// Actions whose ids are deleted (or merged away).
    pub webhooks: Vec<WebhookRule>,
    /// Actions whose ids changed in place (e.g. anonymised) and must be re-read.
    pub refresh: Vec<WebhookRule>,
    /// A delete (or a refresh) of this stream's record is the erasure of a person's data:
    /// `purge` removes its rows, and its cascaded children's, from the raw history.
    pub erase: bool,
}

impl Deletes {
    pub fn is_hard(&self) -> bool {
        self.mode == DeleteMode::Hard
    }
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
    pub deletes: Deletes,
    /// Where the records keep custom-field values, for the typed `cf_*` columns of the
    /// current-state table.
    pub custom_fields: Option<CustomFields>,
}

/// A stream's custom-field values: the `json` field holding the map (`name_key` →
/// `{name, type, value}`), the object type (the definitions' `field_type`) and the stream whose
/// rows define the fields (with string fields `name_key`, `field_type` and `value_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFields {
    pub field: String,
    pub object_type: String,
    pub definitions: String,
}

/// The fields a custom-field definitions stream must declare (strings): what the engine reads
/// to type a value stream's `cf_*` columns.
pub const DEFINITION_FIELDS: [&str; 3] = ["name_key", "field_type", "value_type"];

/// The current-state table of every stream's custom-field values in long format (its name is
/// reserved: no stream may take it).
pub const CUSTOM_FIELD_VALUES: &str = "custom_field_values";

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
        let mut files = BTreeMap::new();
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
            files.insert(stream.name.clone(), file.to_string());
            streams.push(stream);
        }
        if streams.is_empty() {
            return Err(RegistryError {
                file: "streams/".into(),
                message: "no stream declarations found".into(),
            });
        }
        streams.sort_by(|a, b| a.name.cmp(&b.name));
        for s in &streams {
            for c in &s.deletes.cascade {
                if !seen.contains(&c.parent) {
                    return Err(RegistryError {
                        file: files[&s.name].clone(),
                        message: format!(
                            "deletes.cascade: parent {:?} is not a declared stream",
                            c.parent
                        ),
                    });
                }
            }
        }
        for s in &streams {
            let Some(cf) = &s.custom_fields else { continue };
            let err = |message: String| RegistryError {
                file: files[&s.name].clone(),
                message,
            };
            let Some(defs) = streams.iter().find(|d| d.name == cf.definitions) else {
                return Err(err(format!(
                    "custom_fields.definitions: {:?} is not a declared stream",
                    cf.definitions
                )));
            };
            for name in DEFINITION_FIELDS {
                if !defs
                    .field(name)
                    .is_some_and(|f| matches!(f.ty, FieldType::String { .. }) && !f.nullable)
                {
                    return Err(err(format!(
                        "custom_fields.definitions: stream {:?} must declare {name:?} as a non-null string",
                        cf.definitions
                    )));
                }
            }
        }
        let registry = Registry { streams };
        let ordered = registry.cascade_order();
        if ordered.len() != registry.streams.len() {
            let placed: BTreeSet<&str> = ordered.iter().map(|s| s.name.as_str()).collect();
            let cyclic: Vec<&str> = registry
                .streams
                .iter()
                .map(|s| s.name.as_str())
                .filter(|n| !placed.contains(n))
                .collect();
            return Err(RegistryError {
                file: files[cyclic[0]].clone(),
                message: format!(
                    "deletes.cascade: the cascade graph has a cycle through {}",
                    cyclic.join(", ")
                ),
            });
        }
        Ok(registry)
    }

    /// Streams with a cascade naming `parent`, each with that cascade (a stream cascading
    /// through two fields to the same parent appears twice).
    pub fn children_of(&self, parent: &str) -> Vec<(&Stream, &Cascade)> {
        self.streams
            .iter()
            .flat_map(|s| {
                s.deletes
                    .cascade
                    .iter()
                    .filter(move |c| c.parent == parent)
                    .map(move |c| (s, c))
            })
            .collect()
    }

    /// The streams whose rows `purge` erases, parents before children: every stream declaring
    /// `deletes.erase` and every stream that cascades from one of them, directly or not.
    pub fn erasure_order(&self) -> Vec<&Stream> {
        let mut inside: BTreeSet<&str> = BTreeSet::new();
        self.cascade_order()
            .into_iter()
            .filter(|s| {
                let member = s.deletes.erase
                    || s.deletes
                        .cascade
                        .iter()
                        .any(|c| inside.contains(c.parent.as_str()));
                if member {
                    inside.insert(s.name.as_str());
                }
                member
            })
            .collect()
    }

    /// Every stream, parents before children (a topological order of the cascade graph; ties
    /// by name). On a cyclic graph (rejected at load) the streams on a cycle are left out.
    pub fn cascade_order(&self) -> Vec<&Stream> {
        let mut pending: BTreeMap<&str, BTreeSet<&str>> = self
            .streams
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.deletes
                        .cascade
                        .iter()
                        .map(|c| c.parent.as_str())
                        .filter(|p| self.get(p).is_some())
                        .collect(),
                )
            })
            .collect();
        let mut out = Vec::with_capacity(self.streams.len());
        loop {
            let ready: Vec<&str> = pending
                .iter()
                .filter(|(_, parents)| parents.is_empty())
                .map(|(n, _)| *n)
                .collect();
            if ready.is_empty() {
                break;
            }
            for n in ready {
                pending.remove(n);
                for parents in pending.values_mut() {
                    parents.remove(n);
                }
                out.push(self.get(n).expect("a declared stream"));
            }
        }
        out
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
    let deletes = deletes_from_decl(raw.deletes, &raw.name, &fields)?;
    if raw.name == CUSTOM_FIELD_VALUES {
        return Err(format!(
            "the stream name {CUSTOM_FIELD_VALUES:?} is reserved for the long-format current table of custom-field values"
        ));
    }
    let custom_fields = match raw.custom_fields {
        None => None,
        Some(d) => {
            match fields.iter().find(|f| f.name == d.field) {
                None => return Err(format!("custom_fields.field {:?} is not declared", d.field)),
                Some(f) if f.ty != FieldType::Json => {
                    return Err(format!(
                        "custom_fields.field {:?} must be a json field (a map keyed by name_key)",
                        d.field
                    ));
                }
                Some(_) => {}
            }
            if !ident(&d.object_type) || !ident(&d.definitions) {
                return Err(
                    "custom_fields.object_type and custom_fields.definitions must be snake_case"
                        .into(),
                );
            }
            Some(CustomFields {
                field: d.field,
                object_type: d.object_type,
                definitions: d.definitions,
            })
        }
    };
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
        deletes,
        custom_fields,
    })
}

fn deletes_from_decl(d: DeletesDecl, stream: &str, fields: &[Field]) -> Result<Deletes, String> {
    let mode = match d.mode {
        DeleteModeDecl::Soft => {
            let (Some(flag), Some(deleted_when)) = (d.flag, d.deleted_when) else {
                return Err(
                    "deletes: a soft-deleting stream names its `flag` and `deleted_when`".into(),
                );
            };
            match fields.iter().find(|f| f.name == flag) {
                None => return Err(format!("deletes.flag {flag:?} is not declared")),
                Some(f) if f.ty != FieldType::Boolean => {
                    return Err(format!("deletes.flag {flag:?} must be a boolean field"));
                }
                Some(_) => {}
            }
            DeleteMode::Soft { flag, deleted_when }
        }
        m => {
            if d.flag.is_some() || d.deleted_when.is_some() {
                return Err(
                    "deletes: `flag` and `deleted_when` are only for mode = \"soft\"".into(),
                );
            }
            if m == DeleteModeDecl::Hard {
                DeleteMode::Hard
            } else {
                DeleteMode::Never
            }
        }
    };
    let hard = mode == DeleteMode::Hard;
    let reconcile = d.reconcile.unwrap_or(hard);
    if reconcile && !hard {
        return Err("deletes.reconcile = true is only for mode = \"hard\"".into());
    }
    if matches!(mode, DeleteMode::Soft { .. }) && !d.webhooks.is_empty() {
        // A soft-deleted row stays listed with its flag (read incrementally like any change);
        // a tombstone would hide a row Greenhouse still lists.
        return Err("deletes.webhooks: a soft-deleted stream keeps its rows (the flag says they are deleted), so a webhook must not tombstone them; drop the rule".into());
    }
    if mode == DeleteMode::Never
        && !(d.cascade.is_empty() && d.webhooks.is_empty() && d.refresh.is_empty())
    {
        return Err(
            "deletes: a stream whose rows never disappear takes no cascade, webhooks or refresh"
                .into(),
        );
    }
    let mut cascade: Vec<Cascade> = Vec::new();
    for c in d.cascade {
        if c.parent == stream {
            return Err(format!(
                "deletes.cascade: {:?} cascades to itself ({:?})",
                stream, c.field
            ));
        }
        match fields.iter().find(|f| f.name == c.field) {
            None => {
                return Err(format!(
                    "deletes.cascade field {:?} is not declared",
                    c.field
                ));
            }
            Some(f) if f.ty != FieldType::Integer => {
                return Err(format!(
                    "deletes.cascade field {:?} must be an integer field",
                    c.field
                ));
            }
            Some(_) => {}
        }
        let c = Cascade {
            field: c.field,
            parent: c.parent,
        };
        if cascade.contains(&c) {
            return Err(format!(
                "deletes.cascade {:?} → {:?} is declared twice",
                c.field, c.parent
            ));
        }
        cascade.push(c);
    }
    let rules = |decls: Vec<WebhookDecl>, key: &str| -> Result<Vec<WebhookRule>, String> {
        decls
            .into_iter()
            .map(|w| {
                let action_ok = !w.action.is_empty()
                    && w.action
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !action_ok {
                    return Err(format!(
                        "deletes.{key}: action {:?} must be a snake_case webhook action",
                        w.action
                    ));
                }
                let (pointer, many) = match (w.id, w.ids) {
                    (Some(p), None) => (p, false),
                    (None, Some(p)) => (p, true),
                    _ => {
                        return Err(format!(
                            "deletes.{key} {:?}: give exactly one of `id` and `ids`",
                            w.action
                        ));
                    }
                };
                for p in std::iter::once(&pointer).chain(w.merged_into.as_ref()) {
                    if !p.starts_with("/payload/") {
                        return Err(format!(
                            "deletes.{key} {:?}: pointer {p:?} must start with /payload/",
                            w.action
                        ));
                    }
                }
                if many && w.merged_into.is_some() {
                    return Err(format!(
                        "deletes.{key} {:?}: `merged_into` needs a single `id`",
                        w.action
                    ));
                }
                Ok(WebhookRule {
                    action: w.action,
                    pointer,
                    many,
                    merged_into: w.merged_into,
                })
            })
            .collect()
    };
    let webhooks = rules(d.webhooks, "webhooks")?;
    let refresh = rules(d.refresh, "refresh")?;
    if refresh.iter().any(|r| r.merged_into.is_some()) {
        return Err("deletes.refresh: `merged_into` is only for webhooks".into());
    }
    if d.erase && mode != DeleteMode::Hard {
        return Err("deletes.erase: only a hard-deleted stream's deletes erase a person".into());
    }
    Ok(Deletes {
        mode,
        reconcile,
        cascade,
        webhooks,
        refresh,
        erase: d.erase,
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
         deletes = {{ mode = \"never\" }}\nfields = [\n{fields}\n]\n"
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
deletes = { mode = "hard" }
fields = [
  { name = "id", type = "integer" },
  { name = "updated_at", type = "timestamp" },
  { name = "active", type = "boolean" },
  { name = "gadget_id", type = "integer", nullable = true },
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

    fn with_deletes(deletes: &str) -> String {
        GOOD.replace(
            r#"deletes = { mode = "hard" }"#,
            &format!("deletes = {deletes}"),
        )
    }

    /// The widgets declaration renamed to `name` (e.g. a `gadgets` parent of widgets).
    fn named(name: &str, deletes: &str) -> String {
        GOOD.replace("widgets", name).replace(
            r#"deletes = { mode = "hard" }"#,
            &format!("deletes = {deletes}"),
        )
    }

    fn gadgets(deletes: &str) -> String {
        named("gadgets", deletes)
    }

    fn load_err(text: &str) -> String {
        load(text).unwrap_err().message
    }

    #[test]
    fn deletes_are_required() {
        let bad = GOOD.replace("deletes = { mode = \"hard\" }\n", "");
        assert!(load_err(&bad).contains("deletes"));
    }

    #[test]
    fn deletes_defaults_and_a_full_declaration() {
        let s = load(GOOD).unwrap().streams()[0].clone();
        assert_eq!(
            s.deletes,
            Deletes {
                mode: DeleteMode::Hard,
                reconcile: true,
                cascade: vec![],
                webhooks: vec![],
                refresh: vec![],
                erase: false,
            }
        );
        let text = with_deletes(
            r#"{ mode = "hard", reconcile = false, cascade = [ { field = "gadget_id", parent = "gadgets" } ], webhooks = [ { action = "widget_deleted", id = "/payload/widget/id" }, { action = "gadget_deleted", ids = "/payload/gadget/widget_ids" }, { action = "merge_widget", id = "/payload/widget/id", merged_into = "/payload/widget/new_id" } ], refresh = [ { action = "widget_anonymized", id = "/payload/widget_id" } ] }"#,
        );
        let g = gadgets(r#"{ mode = "never" }"#);
        let r = Registry::from_sources([("widgets.toml", text.as_str()), ("gadgets.toml", &g)])
            .unwrap();
        let d = &r.get("widgets").unwrap().deletes;
        assert!(!d.reconcile);
        assert_eq!(
            d.cascade,
            vec![Cascade {
                field: "gadget_id".into(),
                parent: "gadgets".into()
            }]
        );
        assert_eq!(d.webhooks.len(), 3);
        assert!(!d.webhooks[0].many && d.webhooks[1].many);
        assert_eq!(
            d.webhooks[2].merged_into.as_deref(),
            Some("/payload/widget/new_id")
        );
        assert_eq!(d.refresh[0].pointer, "/payload/widget_id");
        let soft = load(&with_deletes(
            r#"{ mode = "soft", flag = "active", deleted_when = false }"#,
        ))
        .unwrap();
        assert_eq!(
            soft.streams()[0].deletes.mode,
            DeleteMode::Soft {
                flag: "active".into(),
                deleted_when: false
            }
        );
        assert!(!soft.streams()[0].deletes.reconcile);
    }

    #[test]
    fn deletes_unknown_keys_are_rejected() {
        assert!(
            load_err(&with_deletes(r#"{ mode = "hard", tombstone = true }"#)).contains("tombstone")
        );
        assert!(load_err(&with_deletes(r#"{ mode = "erase" }"#)).contains("erase"));
        assert!(
            load_err(&with_deletes(
                r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "gadgets", on = "x" } ] }"#
            ))
            .contains("on")
        );
        assert!(
            load_err(&with_deletes(
                r#"{ mode = "hard", webhooks = [ { action = "a", id = "/payload/id", many = true } ] }"#
            ))
            .contains("many")
        );
    }

    #[test]
    fn soft_flag_must_be_a_declared_boolean() {
        let e = load_err(&with_deletes(
            r#"{ mode = "soft", flag = "gone", deleted_when = true }"#,
        ));
        assert!(e.contains("not declared"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "soft", flag = "gadget_id", deleted_when = true }"#,
        ));
        assert!(e.contains("boolean"), "{e}");
        let e = load_err(&with_deletes(r#"{ mode = "soft", flag = "active" }"#));
        assert!(e.contains("deleted_when"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", flag = "active", deleted_when = false }"#,
        ));
        assert!(e.contains("soft"), "{e}");
    }

    #[test]
    fn cascade_field_must_be_a_declared_integer() {
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", cascade = [ { field = "gizmo_id", parent = "gadgets" } ] }"#,
        ));
        assert!(e.contains("not declared"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", cascade = [ { field = "active", parent = "gadgets" } ] }"#,
        ));
        assert!(e.contains("integer"), "{e}");
    }

    #[test]
    fn cascade_parent_must_exist_and_differ() {
        let err = load(&with_deletes(
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "gadgets" } ] }"#,
        ))
        .unwrap_err();
        assert_eq!(err.file, "widgets.toml");
        assert!(err.message.contains("not a declared stream"), "{err}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "widgets" } ] }"#,
        ));
        assert!(e.contains("itself"), "{e}");
    }

    #[test]
    fn cascade_cycles_are_rejected() {
        let w = with_deletes(
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "gadgets" } ] }"#,
        );
        let g = gadgets(
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "widgets" } ] }"#,
        );
        let err = Registry::from_sources([("widgets.toml", w.as_str()), ("gadgets.toml", &g)])
            .unwrap_err();
        assert!(err.message.contains("cycle"), "{err}");
        assert!(err.file == "gadgets.toml" || err.file == "widgets.toml");
    }

    #[test]
    fn never_takes_no_cascade_webhooks_or_refresh() {
        for extra in [
            r#"cascade = [ { field = "gadget_id", parent = "gadgets" } ]"#,
            r#"webhooks = [ { action = "widget_deleted", id = "/payload/id" } ]"#,
            r#"refresh = [ { action = "widget_anonymized", id = "/payload/id" } ]"#,
        ] {
            let e = load_err(&with_deletes(&format!("{{ mode = \"never\", {extra} }}")));
            assert!(e.contains("never disappear"), "{e}");
        }
    }

    #[test]
    fn webhook_pointers_and_merged_into() {
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", webhooks = [ { action = "widget_deleted", id = "/widget/id" } ] }"#,
        ));
        assert!(e.contains("/payload/"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", webhooks = [ { action = "merge", id = "/payload/id", merged_into = "new_id" } ] }"#,
        ));
        assert!(e.contains("/payload/"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", webhooks = [ { action = "merge", ids = "/payload/ids", merged_into = "/payload/new_id" } ] }"#,
        ));
        assert!(e.contains("single"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", webhooks = [ { action = "both", id = "/payload/id", ids = "/payload/ids" } ] }"#,
        ));
        assert!(e.contains("exactly one"), "{e}");
        let e = load_err(&with_deletes(
            r#"{ mode = "hard", webhooks = [ { action = "neither" } ] }"#,
        ));
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn reconcile_only_for_hard() {
        let e = load_err(&with_deletes(
            r#"{ mode = "soft", flag = "active", deleted_when = false, reconcile = true }"#,
        ));
        assert!(e.contains("reconcile"), "{e}");
        let e = load_err(&with_deletes(r#"{ mode = "never", reconcile = true }"#));
        assert!(e.contains("reconcile"), "{e}");
        assert!(load(&with_deletes(r#"{ mode = "never", reconcile = false }"#)).is_ok());
    }

    #[test]
    fn children_of_and_cascade_order() {
        // widgets → gadgets → (root) sprockets; "aardvarks" sorts first but is a child.
        let w = with_deletes(
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "gadgets" } ] }"#,
        );
        let g = gadgets(
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "sprockets" } ] }"#,
        );
        let sp = named("sprockets", r#"{ mode = "hard" }"#);
        let a = named(
            "aardvarks",
            r#"{ mode = "hard", cascade = [ { field = "gadget_id", parent = "widgets" } ] }"#,
        );
        let r = Registry::from_sources([
            ("widgets.toml", w.as_str()),
            ("gadgets.toml", &g),
            ("sprockets.toml", &sp),
            ("aardvarks.toml", &a),
        ])
        .unwrap();
        let order: Vec<&str> = r.cascade_order().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(order, ["sprockets", "gadgets", "widgets", "aardvarks"]);
        let kids: Vec<(&str, &str)> = r
            .children_of("gadgets")
            .iter()
            .map(|(s, c)| (s.name.as_str(), c.field.as_str()))
            .collect();
        assert_eq!(kids, [("widgets", "gadget_id")]);
        assert!(r.children_of("aardvarks").is_empty());
    }
}
