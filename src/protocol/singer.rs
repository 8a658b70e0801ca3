//! The Singer tap: `--discover`, `--catalog CAT [--state S]` and `--about`, as Meltano and
//! other Singer runners call a tap (no subcommand).
//!
//! Contract: SCHEMA precedes a stream's first RECORD; RECORD carries `time_extracted`; STATE is
//! the whole bookmark document `{"bookmarks": {"<stream>": {"updated_at": …, "slices": …}}}`
//! (streams of the input state that this run does not read are carried along unchanged) and is
//! printed only after the records it covers. Logs go to stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Choice, Out};
use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::privacy::ColumnPolicy;
use crate::registry::{Registry, Stream};
use crate::state::State;
use crate::sync::output::messages::{MessageSink, Record};
use crate::sync::summary::StreamReport;

const CATALOG_FIX: &str = "Give the catalog printed by `greenhouse-extract --discover` (Meltano writes it for you), with streams selected in its metadata.";
const STATE_FIX: &str = "Give the last STATE value a run printed ({\"bookmarks\": {…}}), or no --state to start from the start date.";

/// Prints Singer messages for one run.
pub struct SingerSink {
    out: Out,
    registry: Registry,
    policies: BTreeMap<String, ColumnPolicy>,
}

impl SingerSink {
    pub fn new(out: Out, registry: &Registry, config: &Config) -> Self {
        SingerSink {
            out,
            registry: registry.clone(),
            policies: config.policies.clone(),
        }
    }
}

#[derive(Serialize)]
struct RecordMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    stream: &'a str,
    record: &'a Record,
    time_extracted: &'a str,
}

impl MessageSink for SingerSink {
    fn stream_started(
        &self,
        stream: &Stream,
        fields: Option<&BTreeSet<String>>,
    ) -> std::io::Result<()> {
        let schema = super::emitted_schema(
            stream,
            fields,
            self.policies.get(&stream.name),
            crate::catalog::SINGER_DELETED_AT,
        );
        self.out.line(&json!({
            "type": "SCHEMA",
            "stream": stream.name,
            "schema": schema,
            "key_properties": stream.primary_key,
            "bookmark_properties": stream.cursor_field().into_iter().collect::<Vec<_>>(),
        }))
    }

    fn records(
        &self,
        stream: &Stream,
        records: &[Record],
        extracted_at: DateTime<Utc>,
    ) -> std::io::Result<()> {
        let at = extracted_at.to_rfc3339_opts(SecondsFormat::Millis, true);
        let mut buf = Vec::with_capacity(records.len() * 256);
        for r in records {
            serde_json::to_writer(
                &mut buf,
                &RecordMessage {
                    kind: "RECORD",
                    stream: &stream.name,
                    record: r,
                    time_extracted: &at,
                },
            )?;
            buf.push(b'\n');
        }
        self.out.raw(&buf)
    }

    fn deleted_at_field(&self) -> &'static str {
        crate::catalog::SINGER_DELETED_AT
    }

    fn state(&self, _stream: &Stream, state: &State) -> std::io::Result<()> {
        self.out.line(&json!({
            "type": "STATE",
            "value": singer_state(state, &self.registry),
        }))?;
        self.out.flush()
    }

    fn stream_finished(&self, _stream: &Stream, _report: &StreamReport) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The Singer state value of a state document.
pub fn singer_state(state: &State, registry: &Registry) -> Value {
    crate::state::singer::to_singer(state, registry)
}

/// Reads a Singer state value (`{"bookmarks": {…}}`; an empty object is no state).
pub fn parse_state(value: &Value, registry: &Registry, origin: &str) -> Result<State, Error> {
    crate::state::singer::from_singer(value, registry, origin, STATE_FIX).map_err(Error::Config)
}

/// Reads a Singer catalog's selection (see the module docs of [`crate::protocol`]).
pub fn parse_catalog(
    value: &Value,
    registry: &Registry,
    origin: &str,
) -> Result<Vec<Choice>, Error> {
    let bad = |what: String| Error::Config(format!("{origin}: {what}. {CATALOG_FIX}"));
    let streams = value
        .get("streams")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("it has no \"streams\" array".to_string()))?;
    let mut choices = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, entry) in streams.iter().enumerate() {
        let name = entry
            .get("tap_stream_id")
            .or_else(|| entry.get("stream"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("stream #{i} has no \"tap_stream_id\"")))?;
        let stream = registry.get(name).ok_or_else(|| {
            Error::Config(format!(
                "{origin}: unknown stream {name:?}. Run `greenhouse-extract --discover` for the streams of this version and select among them."
            ))
        })?;
        if !seen.insert(name.to_string()) {
            return Err(bad(format!("stream {name:?} appears twice")));
        }
        let metadata = match entry.get("metadata") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(other) => {
                return Err(bad(format!(
                    "the metadata of {name:?} must be an array, found {}",
                    super::kind(other)
                )));
            }
        };
        let mut top = Map::new();
        let mut by_field: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
        for m in &metadata {
            let crumb = m
                .get("breadcrumb")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(format!("a metadata entry of {name:?} has no breadcrumb")))?;
            let md = m
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .ok_or_else(|| {
                    bad(format!(
                        "a metadata entry of {name:?} has no metadata object"
                    ))
                })?;
            match crumb.as_slice() {
                [] => top.extend(md),
                [Value::String(p), Value::String(f)] if p == "properties" => {
                    by_field.insert(f.clone(), md);
                }
                // Deeper breadcrumbs (nested properties) select inside a value; we select
                // top-level fields only, so they are accepted and do not change the selection.
                [Value::String(p), Value::String(_), ..] if p == "properties" => {}
                _ => {
                    return Err(bad(format!(
                        "{name:?} has a malformed breadcrumb {}",
                        Value::Array(crumb.clone())
                    )));
                }
            }
        }
        let flag = |md: &Map<String, Value>, key: &str| -> Result<Option<bool>, Error> {
            match md.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Bool(b)) => Ok(Some(*b)),
                Some(other) => Err(bad(format!(
                    "\"{key}\" of {name:?} must be true or false, found {}",
                    super::kind(other)
                ))),
            }
        };
        let legacy = entry
            .get("schema")
            .and_then(|s| s.get("selected"))
            .and_then(Value::as_bool);
        let selected = flag(&top, "selected")?
            .or(legacy)
            .or(flag(&top, "selected-by-default")?)
            .unwrap_or(false);
        if !selected {
            continue;
        }
        let full_refresh = match top.get("replication-method").and_then(Value::as_str) {
            None => false,
            Some("FULL_TABLE") => stream.is_incremental(),
            Some("INCREMENTAL") if stream.is_incremental() => false,
            Some("INCREMENTAL") => {
                return Err(bad(format!(
                    "{name:?} is a full-refresh stream (no cursor); remove its replication-method INCREMENTAL"
                )));
            }
            Some(other) => {
                return Err(bad(format!(
                    "{name:?} has replication-method {other:?}; use INCREMENTAL or FULL_TABLE"
                )));
            }
        };
        let automatic = super::automatic_fields(stream);
        let mut fields = BTreeSet::new();
        for f in &stream.fields {
            let keep = match by_field.get(&f.name) {
                None => true,
                Some(md) => {
                    automatic.contains(&f.name)
                        || md.get("inclusion").and_then(Value::as_str) == Some("automatic")
                        || (md.get("inclusion").and_then(Value::as_str) != Some("unsupported")
                            && flag(md, "selected")?
                                .or(flag(md, "selected-by-default")?)
                                .unwrap_or(true))
                }
            };
            if keep {
                fields.insert(f.name.clone());
            }
        }
        // The tombstone fields the schema adds are no column to select (Meltano lists a
        // breadcrumb for every property).
        let unknown: Vec<&str> = by_field
            .keys()
            .map(String::as_str)
            .filter(|f| stream.field(f).is_none() && !crate::catalog::is_delete_field(f))
            .collect();
        if !unknown.is_empty() {
            return Err(bad(format!(
                "stream {name:?} has no field(s) {}",
                unknown.join(", ")
            )));
        }
        choices.push(Choice {
            stream: name.to_string(),
            fields: super::project(stream, fields, origin)?,
            full_refresh,
        });
    }
    if choices.is_empty() {
        return Err(Error::Config(format!(
            "{origin} selects no stream. Mark streams \"selected\": true in their metadata (Meltano: `select` patterns)."
        )));
    }
    choices.sort_by(|a, b| a.stream.cmp(&b.stream));
    Ok(choices)
}

/// `--about`: what this tap is and what it can do, with its settings (the config schema).
pub fn about() -> Value {
    json!({
        "name": "greenhouse-extract",
        "description": "Greenhouse Harvest v3 recruiting data (Singer tap and Airbyte source).",
        "version": env!("CARGO_PKG_VERSION"),
        "capabilities": ["catalog", "discover", "state"],
        "settings": super::airbyte::connection_specification(),
    })
}

/// `--discover`: the catalog of every stream. The config, when given, is only parsed (so a
/// typo is reported now): discovery needs no credentials.
///
/// Printed indented (as the Singer SDK's taps print it), not as one line: Meltano reads
/// discovery output line by line with asyncio's default 64 KiB line limit, and the catalog
/// of every stream is far larger than that on one line ("Separator is not found, and chunk
/// exceed the limit"). Indented, its longest line is a field description.
pub fn discover(config: Option<&std::path::PathBuf>, out: &Out) -> Result<ExitCode, Error> {
    let registry = Registry::embedded().map_err(|e| Error::Fatal(e.to_string()))?;
    if config.is_some() {
        crate::config::ConfigFile::load_with_env(config.map(std::path::PathBuf::as_path))?;
    }
    let catalog = crate::catalog::to_pretty(&crate::catalog::singer_catalog(&registry));
    out.raw(catalog.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Error::Fatal(format!("writing the catalog failed: {e}")))?;
    Ok(ExitCode::Success)
}

/// `--catalog CAT [--state S]`: reads the selected streams and prints messages.
pub async fn sync(
    config_path: Option<&std::path::PathBuf>,
    catalog_path: &Path,
    state_path: Option<&Path>,
    out: Out,
    cancel: crate::cancel::Cancel,
) -> Result<ExitCode, Error> {
    let registry = Registry::embedded().map_err(|e| Error::Fatal(e.to_string()))?;
    let config = super::load_config(config_path, &registry)?;
    let origin = format!("the catalog {}", catalog_path.display());
    let catalog = super::read_json(catalog_path, "catalog", CATALOG_FIX)?;
    let choices = parse_catalog(&catalog, &registry, &origin)?;
    super::check_sensitive(&choices, &registry, &config, &origin)?;
    let state = match state_path {
        Some(p) => {
            let v = super::read_json(p, "state", STATE_FIX)?;
            parse_state(&v, &registry, &format!("the state {}", p.display()))?
        }
        None => State::empty(),
    };
    let sink = Arc::new(SingerSink::new(out.clone(), &registry, &config));
    let report = super::run(&config, &registry, &choices, state, sink, cancel).await;
    out.flush()
        .map_err(|e| Error::Fatal(format!("writing messages failed: {e}")))?;
    let report = report?;
    eprint!(
        "{}",
        crate::sync::summary::render(&report.streams, &report.run_id, report.duration)
    );
    Ok(report.exit_code())
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Buf, registry};
    use super::*;

    fn catalog(metadata: Value) -> Value {
        json!({"streams": [{"tap_stream_id": "widgets", "stream": "widgets", "schema": {}, "metadata": metadata}]})
    }

    #[test]
    fn selection_follows_metadata() {
        let r = registry();
        let c = catalog(json!([
            {"breadcrumb": [], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "email"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "id"], "metadata": {"selected": false, "inclusion": "automatic"}},
            {"breadcrumb": ["properties", "updated_at"], "metadata": {"selected": false}},
        ]));
        let choices = parse_catalog(&c, &r, "catalog").unwrap();
        assert_eq!(
            choices[0].fields,
            Some(["id", "name", "updated_at"].map(String::from).into())
        );
        assert!(!choices[0].full_refresh);
    }

    #[test]
    fn stream_selection_falls_back_to_legacy_and_default() {
        let r = registry();
        let legacy =
            json!({"streams": [{"tap_stream_id": "widgets", "schema": {"selected": true}}]});
        assert_eq!(parse_catalog(&legacy, &r, "c").unwrap()[0].fields, None);
        let by_default =
            catalog(json!([{"breadcrumb": [], "metadata": {"selected-by-default": true}}]));
        assert_eq!(parse_catalog(&by_default, &r, "c").unwrap().len(), 1);
        let off = catalog(
            json!([{"breadcrumb": [], "metadata": {"selected": false, "selected-by-default": true}}]),
        );
        let e = parse_catalog(&off, &r, "c").unwrap_err();
        assert!(e.to_string().contains("selects no stream"), "{e}");
        let full = catalog(
            json!([{"breadcrumb": [], "metadata": {"selected": true, "replication-method": "FULL_TABLE"}}]),
        );
        assert!(parse_catalog(&full, &r, "c").unwrap()[0].full_refresh);
    }

    #[test]
    fn malformed_catalogs_name_the_problem() {
        let r = registry();
        for (c, needle) in [
            (json!([]), "no \"streams\" array"),
            (
                json!({"streams": [{"tap_stream_id": "gizmos"}]}),
                "unknown stream \"gizmos\"",
            ),
            (json!({"streams": [{"schema": {}}]}), "no \"tap_stream_id\""),
            (catalog(json!({"selected": true})), "must be an array"),
            (
                catalog(json!([{"breadcrumb": [], "metadata": {"selected": "yes"}}])),
                "true or false",
            ),
            (
                catalog(
                    json!([{"breadcrumb": [], "metadata": {"selected": true}}, {"breadcrumb": ["properties", "colour"], "metadata": {"selected": true}}]),
                ),
                "colour",
            ),
        ] {
            let e = parse_catalog(&c, &r, "the catalog c.json").unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{e}");
            assert!(e.to_string().contains(needle), "{c}: {e}");
        }
    }

    #[test]
    fn state_round_trips_and_rejects_wrong_shapes() {
        let r = registry();
        let v = json!({"bookmarks": {"widgets": {"updated_at": "2026-01-01T00:00:00Z"}}, "currently_syncing": null});
        let state = parse_state(&v, &r, "state").unwrap();
        assert_eq!(
            singer_state(&state, &r),
            json!({"bookmarks": {"widgets": {"updated_at": "2026-01-01T00:00:00Z"}}})
        );
        assert!(
            parse_state(&json!({}), &r, "state")
                .unwrap()
                .streams
                .is_empty()
        );
        for bad in [json!([1]), json!({"bookmarks": []}), json!({"value": {}})] {
            assert!(
                matches!(parse_state(&bad, &r, "state"), Err(Error::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn messages_come_in_protocol_order() {
        let r = registry();
        let stream = &r.streams()[0];
        let buf = Buf::default();
        let config = crate::config::ConfigFile {
            access_token: Some("t".into()),
            ..Default::default()
        }
        .validate(&Default::default(), &r)
        .unwrap();
        let sink = SingerSink::new(Out::new(Box::new(buf.clone())), &r, &config);
        let fields: BTreeSet<String> = ["id", "updated_at"].map(String::from).into();
        sink.stream_started(stream, Some(&fields)).unwrap();
        let rec: Record =
            serde_json::from_str(r#"{"id":1,"updated_at":"2026-01-01T00:00:00Z"}"#).unwrap();
        sink.records(stream, &[rec], Utc::now()).unwrap();
        let mut state = State::empty();
        state.stream_mut("widgets").bookmark = Some(Utc::now());
        sink.state(stream, &state).unwrap();
        let lines = buf.lines();
        assert_eq!(lines[0]["type"], "SCHEMA");
        assert_eq!(lines[0]["bookmark_properties"], json!(["updated_at"]));
        assert_eq!(
            lines[0]["schema"]["properties"].as_object().unwrap().len(),
            2 + 3 // the selected fields, then _sdc_deleted_at, _deleted_by, _merged_into
        );
        assert_eq!(lines[1]["type"], "RECORD");
        assert_eq!(lines[1]["record"]["id"], 1);
        assert!(DateTime::parse_from_rfc3339(lines[1]["time_extracted"].as_str().unwrap()).is_ok());
        assert_eq!(lines[2]["type"], "STATE");
        assert!(lines[2]["value"]["bookmarks"]["widgets"]["updated_at"].is_string());
    }
}
