//! Protocol modes: greenhouse-extract as a Singer tap ([`singer`]) and as an Airbyte source
//! ([`airbyte`]). Both run the same engine as `sync` ([`crate::sync::run_messages`]: windows,
//! slices, retries, one rate budget) and differ only in how they read a catalog and a state and
//! how they print messages.
//!
//! Contract:
//! - Stdout carries protocol messages only, one JSON object per line, each written whole under
//!   one lock ([`Out`]), so concurrent stream tasks and log lines never interleave mid-line.
//! - A state message is printed only after the records it covers (the engine calls the sink's
//!   `state` after the records of a commit; [`Out`] keeps the order).
//! - Malformed catalogs and state inputs are configuration errors (exit code 2) whose message
//!   names the file, the problem and the fix; nothing is fetched before they are parsed.
//! - Selection is data-driven: what a catalog selects is checked against the registry (unknown
//!   streams and fields are errors; primary key and cursor are always kept; sensitive streams
//!   still need `include_sensitive`). No stream is treated specially by name.
//! - Messages never contain a secret: records pass through the column policy first, and errors
//!   and logs are the same redacted texts the other commands print.

pub mod airbyte;
pub mod singer;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::config::Config;
use crate::error::Error;
use crate::privacy::ColumnPolicy;
use crate::registry::{Registry, Stream};
use crate::state::{State, StreamState};
use crate::sync::{RunReport, Selected, SyncOptions};

/// Where protocol messages go: a line writer shared by the sinks and (Airbyte) the log layer.
/// Lines are buffered (a page of records is one write) and flushed after every state message,
/// after every stream and at the end of the command, so a target sees state promptly.
#[derive(Clone)]
pub struct Out(Arc<Mutex<Box<dyn Write + Send>>>);

impl Out {
    /// The process's stdout (one shared buffer for the whole process).
    pub fn stdout() -> Out {
        static STDOUT: OnceLock<Out> = OnceLock::new();
        STDOUT
            .get_or_init(|| Out::new(Box::new(std::io::BufWriter::new(std::io::stdout()))))
            .clone()
    }

    pub fn new(w: Box<dyn Write + Send>) -> Out {
        Out(Arc::new(Mutex::new(w)))
    }

    /// Writes each value as one line, all under one lock.
    pub fn lines<'a>(&self, values: impl IntoIterator<Item = &'a Value>) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for v in values {
            serde_json::to_writer(&mut buf, v)?;
            buf.push(b'\n');
        }
        self.raw(&buf)
    }

    pub fn line(&self, value: &Value) -> std::io::Result<()> {
        self.lines([value])
    }

    /// Writes already serialised lines (each ending in a newline) under one lock.
    pub fn raw(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(bytes)
    }

    pub fn flush(&self) -> std::io::Result<()> {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.flush()
    }
}

/// A stream as a catalog selects it, before it is bound to the registry for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub stream: String,
    /// Selected fields (always including key and cursor); `None` = every field.
    pub fields: Option<BTreeSet<String>>,
    pub full_refresh: bool,
}

/// The fields that are always read: the primary key and the cursor (de-duplication and
/// bookmarks need them, so no catalog can deselect them).
pub fn automatic_fields(stream: &Stream) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = stream.primary_key.iter().cloned().collect();
    if let Some(c) = stream.cursor_field() {
        out.insert(c.to_string());
    }
    out
}

/// Validates a requested field set against the declaration and adds the automatic fields.
/// `None` when it covers every declared field, so records keep keys Greenhouse added later
/// (the schemas allow additional properties).
pub fn project(
    stream: &Stream,
    requested: BTreeSet<String>,
    origin: &str,
) -> Result<Option<BTreeSet<String>>, Error> {
    let unknown: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|f| stream.field(f).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Config(format!(
            "{origin}: stream {:?} has no field(s) {}. Rediscover the catalog (`discover`) and select among its fields.",
            stream.name,
            unknown.join(", ")
        )));
    }
    let mut fields = requested;
    fields.extend(automatic_fields(stream));
    if stream.fields.iter().all(|f| fields.contains(&f.name)) {
        Ok(None)
    } else {
        Ok(Some(fields))
    }
}

/// The JSON Schema of the records a run emits for `stream`: the selected fields, excluded
/// columns removed and hashed columns typed as the hex strings they become.
pub fn emitted_schema(
    stream: &Stream,
    fields: Option<&BTreeSet<String>>,
    policy: Option<&ColumnPolicy>,
    deleted_at: &str,
) -> Value {
    let mut schema = crate::catalog::record_schema(stream, deleted_at);
    let delete_fields = [deleted_at, "_deleted_by", "_merged_into"];
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        props.retain(|name, _| {
            fields.is_none_or(|f| f.contains(name)) || delete_fields.contains(&name.as_str())
        });
        if let Some(p) = policy {
            props.retain(|name, _| !p.exclude.contains(name));
            for name in &p.hash {
                if let Some(v) = props.get_mut(name) {
                    *v = serde_json::json!({
                        "type": ["null", "string"],
                        "description": "Hex SHA-256 of the salted value (hash_columns).",
                    });
                }
            }
        }
    }
    schema
}

/// Refuses a selection of sensitive streams without the opt-in, naming the streams and the fix.
pub fn check_sensitive(
    choices: &[Choice],
    registry: &Registry,
    config: &Config,
    origin: &str,
) -> Result<(), Error> {
    if config.include_sensitive {
        return Ok(());
    }
    let sensitive: Vec<&str> = choices
        .iter()
        .filter(|c| registry.get(&c.stream).is_some_and(|s| s.sensitive))
        .map(|c| c.stream.as_str())
        .collect();
    if sensitive.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "{origin} selects {}, which hold sensitive candidate data (EEOC/demographics) and stay off unless you opt in: set \"include_sensitive\": true in the config file, or deselect them in the catalog.",
        sensitive.join(", ")
    )))
}

/// Reads a JSON input file (catalog or state) as a config error on failure.
pub fn read_json(path: &Path, what: &str, fix: &str) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the {what} file {}: {e}. Check the path.",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Config(format!(
            "the {what} file {} is not valid JSON ({e}). {fix}",
            path.display()
        ))
    })
}

/// Loads the configuration for a protocol run. The catalog selects the streams, so a
/// `streams` list in the file is only validated, and the destination is not used.
pub fn load_config(path: Option<&PathBuf>, registry: &Registry) -> Result<Config, Error> {
    let file = crate::config::ConfigFile::load_with_env(path.map(PathBuf::as_path))?;
    let config = file.validate(&crate::config::Overrides::default(), registry)?;
    if config.streams.is_some() {
        crate::events::config_streams_ignored();
    }
    Ok(config)
}

// ---------------------------------------------------------------------------------------------
// State: one stream's position as a protocol bookmark, and back
// ---------------------------------------------------------------------------------------------

pub use crate::state::singer::{SLICES_KEY, bookmark_of, bookmarks, kind};

/// Parses one stream's bookmark (see [`crate::state::singer::parse_bookmark`]).
pub fn parse_bookmark(
    registry: &Registry,
    name: &str,
    value: &Value,
    origin: &str,
) -> Result<StreamState, Error> {
    crate::state::singer::parse_bookmark(registry, name, value, origin).map_err(Error::Config)
}

/// Binds choices to the registry and runs the engine with `sink`; `cancel` (the CLI's signal
/// flag) stops it early.
pub async fn run(
    config: &Config,
    registry: &Registry,
    choices: &[Choice],
    state: State,
    sink: Arc<dyn crate::sync::output::messages::MessageSink>,
    cancel: crate::cancel::Cancel,
) -> Result<RunReport, Error> {
    let selected: Vec<Selected> = choices
        .iter()
        .map(|c| {
            let stream = registry
                .get(&c.stream)
                .ok_or_else(|| Error::Fatal(format!("stream {:?} vanished", c.stream)))?;
            Ok(Selected {
                stream,
                fields: c.fields.clone(),
                full_refresh: c.full_refresh,
            })
        })
        .collect::<Result<_, Error>>()?;
    let opts = SyncOptions::new();
    crate::sync::run_messages(config, &selected, state, sink, &opts, cancel).await
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn registry() -> Registry {
        crate::registry::fixture(
            "widgets",
            r#"{ mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }"#,
            r#"{ name = "id", type = "integer" }, { name = "updated_at", type = "timestamp" },
  { name = "name", type = "string" }, { name = "email", type = "string", nullable = true }"#,
        )
    }

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    pub struct Buf(pub Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        pub fn lines(&self) -> Vec<Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    #[test]
    fn projection_keeps_key_and_cursor_and_rejects_unknown_fields() {
        let r = registry();
        let s = &r.streams()[0];
        let f = project(s, ["name".to_string()].into(), "catalog").unwrap();
        assert_eq!(
            f,
            Some(["id", "name", "updated_at"].map(String::from).into())
        );
        let all = project(s, ["name".into(), "email".into()].into(), "catalog").unwrap();
        assert_eq!(all, None, "every field selected: no projection");
        let e = project(s, ["nmae".to_string()].into(), "catalog").unwrap_err();
        assert!(e.to_string().contains("nmae"), "{e}");
    }

    #[test]
    fn emitted_schema_follows_selection_and_policy() {
        let r = registry();
        let s = &r.streams()[0];
        let policy = ColumnPolicy {
            exclude: ["email".to_string()].into(),
            hash: ["name".to_string()].into(),
            salt: None,
        };
        let schema = emitted_schema(s, None, Some(&policy), crate::catalog::SINGER_DELETED_AT);
        let props = schema["properties"].as_object().unwrap();
        assert!(!props.contains_key("email"));
        assert_eq!(props["name"]["type"], serde_json::json!(["null", "string"]));
        let fields: BTreeSet<String> = ["id", "updated_at"].map(String::from).into();
        let schema = emitted_schema(s, Some(&fields), None, crate::catalog::SINGER_DELETED_AT);
        // The selected fields, plus the three fields a deleted record carries.
        let props = schema["properties"].as_object().unwrap();
        assert_eq!(props.len(), 2 + 3);
        assert!(props.contains_key(crate::catalog::SINGER_DELETED_AT));
    }

    #[test]
    fn bookmarks_round_trip_with_slice_progress() {
        let r = registry();
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let mut slices = crate::state::Slices::new(t("2026-02-01T00:00:00Z"));
        slices.cuts = vec![t("2025-06-01T00:00:00Z")];
        slices.mark_done(t("1970-01-01T00:00:00Z"), t("2025-06-01T00:00:00Z"));
        let entry = StreamState {
            bookmark: Some(t("2026-01-01T10:00:00.123456Z")),
            slices: Some(slices),
            ..Default::default()
        };
        let v = bookmark_of(r.get("widgets"), &entry).unwrap();
        assert_eq!(v["updated_at"], "2026-01-01T10:00:00.123456Z");
        let back = parse_bookmark(&r, "widgets", &v, "state").unwrap();
        assert_eq!(back.bookmark, entry.bookmark);
        assert_eq!(back.slices, entry.slices);
        assert!(bookmark_of(r.get("widgets"), &StreamState::default()).is_none());
    }

    #[test]
    fn malformed_bookmarks_are_config_errors() {
        let r = registry();
        for (v, needle) in [
            (serde_json::json!("2026-01-01"), "must be an object"),
            (serde_json::json!({"updated_at": "yesterday"}), "RFC 3339"),
            (serde_json::json!({"updated_at": 5}), "RFC 3339 string"),
            (serde_json::json!({"cursor": "x"}), "unknown key"),
            (serde_json::json!({"slices": {"cuts": 1}}), "slice progress"),
        ] {
            let e = parse_bookmark(&r, "widgets", &v, "state").unwrap_err();
            assert!(matches!(e, Error::Config(_)));
            assert!(e.to_string().contains(needle), "{v}: {e}");
        }
        let e = parse_bookmark(&r, "gizmos", &serde_json::json!({}), "state").unwrap_err();
        assert!(e.to_string().contains("gizmos"), "{e}");
    }
}
