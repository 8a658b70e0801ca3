//! The Airbyte source: `airbyte spec | check | discover | read`, as the Airbyte platform runs a
//! connector image (`ENTRYPOINT ["greenhouse-extract", "airbyte"]`).
//!
//! Contract: stdout carries Airbyte messages only — our log lines become LOG messages
//! ([`LogLines`]), errors become TRACE `ERROR` messages with a `failure_type` saying who must act
//! (`config_error`: the user's config or grants; `transient_error`: retry; `system_error`:
//! report it). STATE is per stream (`{"type": "STREAM", …}`) and printed only after the records it
//! covers, with `sourceStats.recordCount` the records of that stream since its previous STATE.
//! `check` follows the protocol: it always prints one CONNECTION_STATUS and exits 0 when it
//! could report one (the status says what to fix).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Choice, Out};
use crate::check::ProbeStatus;
use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::registry::{Registry, Stream};
use crate::state::State;
use crate::sync::output::messages::{MessageSink, Record};
use crate::sync::summary::{StreamReport, StreamStatus};

const CATALOG_FIX: &str = "Give a ConfiguredAirbyteCatalog built from `greenhouse-extract airbyte discover` (the Airbyte platform writes it for you).";
const STATE_FIX: &str = "Give the per-stream state list the platform saved ([{\"type\": \"STREAM\", …}]), or no --state to start from the start date.";

/// Config keys that hold secrets (masked by the Airbyte UI, never logged by the platform).
const SECRET_KEYS: [&str; 3] = ["client_secret", "access_token", "hash_salt"];
/// Config keys that mean nothing to an Airbyte source: records go to stdout, the catalog
/// selects, and the webhook receiver (`webhooks serve`) is a service of its own.
const UNUSED_KEYS: [&str; 7] = [
    "destination",
    "webhook_secret",
    "webhook_listen",
    "webhook_tls_cert",
    "webhook_tls_key",
    "webhook_max_body_bytes",
    "webhook_max_concurrency",
];

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// The config JSON Schema as an Airbyte `connectionSpecification`: secrets marked
/// `airbyte_secret`, keys an Airbyte source does not use left out.
pub fn connection_specification() -> Value {
    let mut schema = crate::config::json_schema();
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for k in UNUSED_KEYS {
            props.remove(k);
        }
        for k in SECRET_KEYS {
            if let Some(Value::Object(p)) = props.get_mut(k) {
                p.insert("airbyte_secret".into(), Value::Bool(true));
            }
        }
    }
    schema
}

pub fn spec_message() -> Value {
    json!({
        "type": "SPEC",
        "spec": {
            "connectionSpecification": connection_specification(),
            "supportsIncremental": true,
        }
    })
}

/// The discovered catalog; with a config, stream schemas show its column policy.
pub fn catalog_message(registry: &Registry, config: Option<&Config>) -> Value {
    let mut catalog = crate::catalog::airbyte_catalog(registry);
    if let (Some(config), Some(Value::Array(streams))) = (config, catalog.get_mut("streams")) {
        for s in streams {
            let name = s["name"].as_str().unwrap_or_default().to_string();
            if let (Some(stream), Some(policy)) = (registry.get(&name), config.policies.get(&name))
            {
                s["json_schema"] = super::emitted_schema(
                    stream,
                    None,
                    Some(policy),
                    crate::catalog::AIRBYTE_DELETED_AT,
                );
            }
        }
    }
    json!({ "type": "CATALOG", "catalog": catalog })
}

/// Who must act on an error.
pub fn failure_type(e: &Error) -> &'static str {
    match e {
        Error::Config(_) | Error::Auth(_) => "config_error",
        Error::Interrupted | Error::TokenUnavailable(_) => "transient_error",
        Error::Destination(_) | Error::Conflict(_) | Error::Fatal(_) => "system_error",
    }
}

fn error_trace(message: &str, failure_type: &str, stream: Option<&str>) -> Value {
    let mut error = json!({ "message": message, "failure_type": failure_type });
    if let Some(s) = stream {
        error["stream_descriptor"] = json!({ "name": s });
    }
    json!({
        "type": "TRACE",
        "trace": { "type": "ERROR", "emitted_at": now_ms() as f64, "error": error }
    })
}

/// The TRACE message for an error that ends the command.
pub fn error_message(e: &Error) -> Value {
    error_trace(&e.to_string(), failure_type(e), None)
}

fn status_trace(stream: &str, status: &str) -> Value {
    json!({
        "type": "TRACE",
        "trace": {
            "type": "STREAM_STATUS",
            "emitted_at": now_ms() as f64,
            "stream_status": { "stream_descriptor": { "name": stream }, "status": status }
        }
    })
}

/// Prints Airbyte messages for one run.
pub struct AirbyteSink {
    out: Out,
    /// Records per stream since its last STATE; a stream is RUNNING once it has an entry.
    counts: Mutex<BTreeMap<String, u64>>,
}

impl AirbyteSink {
    pub fn new(out: Out) -> Self {
        AirbyteSink {
            out,
            counts: Mutex::new(BTreeMap::new()),
        }
    }
}

#[derive(Serialize)]
struct RecordMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    record: RecordBody<'a>,
}

#[derive(Serialize)]
struct RecordBody<'a> {
    stream: &'a str,
    data: &'a Record,
    emitted_at: i64,
}

impl MessageSink for AirbyteSink {
    fn stream_started(&self, stream: &Stream, _: Option<&BTreeSet<String>>) -> std::io::Result<()> {
        self.out.line(&status_trace(&stream.name, "STARTED"))
    }

    fn records(
        &self,
        stream: &Stream,
        records: &[Record],
        _extracted_at: DateTime<Utc>,
    ) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 256 + 200);
        {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(stream.name.clone()).or_insert_with(|| {
                buf.extend(status_trace(&stream.name, "RUNNING").to_string().bytes());
                buf.push(b'\n');
                0
            });
            *count += records.len() as u64;
        }
        let emitted_at = now_ms();
        for r in records {
            serde_json::to_writer(
                &mut buf,
                &RecordMessage {
                    kind: "RECORD",
                    record: RecordBody {
                        stream: &stream.name,
                        data: r,
                        emitted_at,
                    },
                },
            )?;
            buf.push(b'\n');
        }
        // Counted and written under different locks: a STATE of this stream can only follow
        // a commit, which waits for this page's write to return.
        self.out.raw(&buf)
    }

    fn deleted_at_field(&self) -> &'static str {
        crate::catalog::AIRBYTE_DELETED_AT
    }

    fn state(&self, stream: &Stream, state: &State) -> std::io::Result<()> {
        let entry = state.stream(&stream.name).cloned().unwrap_or_default();
        let blob = super::bookmark_of(Some(stream), &entry).unwrap_or_else(|| json!({}));
        let count = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&stream.name)
            .map(std::mem::take)
            .unwrap_or(0);
        self.out.line(&json!({
            "type": "STATE",
            "state": {
                "type": "STREAM",
                "stream": {
                    "stream_descriptor": { "name": stream.name },
                    "stream_state": blob,
                },
                "sourceStats": { "recordCount": count as f64 },
            }
        }))?;
        self.out.flush()
    }

    fn stream_finished(&self, stream: &Stream, report: &StreamReport) -> std::io::Result<()> {
        let mut lines = Vec::new();
        match &report.status {
            StreamStatus::Committed => {}
            StreamStatus::Skipped(reason) => lines.push(error_trace(
                &format!(
                    "Stream {} was skipped: {reason}. Grant the credential what it lacks in Greenhouse (Dev Center → API Credentials: the scope {}; list endpoints also need a Site Admin user), or deselect the stream.",
                    stream.name, stream.scope
                ),
                "config_error",
                Some(&stream.name),
            )),
            StreamStatus::Failed(m) => {
                let kind = if report.auth_failure {
                    "config_error"
                } else if report.transient_failure {
                    "transient_error"
                } else {
                    "system_error"
                };
                lines.push(error_trace(
                    &format!("Stream {} failed: {m}", stream.name),
                    kind,
                    Some(&stream.name),
                ));
            }
            StreamStatus::Interrupted => {}
        }
        let status = if report.status == StreamStatus::Committed {
            "COMPLETE"
        } else {
            "INCOMPLETE"
        };
        lines.push(status_trace(&stream.name, status));
        self.out.lines(&lines)?;
        self.out.flush()
    }
}

/// Reads a ConfiguredAirbyteCatalog's selection.
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
    let mut choices: Vec<Choice> = Vec::new();
    for (i, configured) in streams.iter().enumerate() {
        let name = configured
            .get("stream")
            .and_then(|s| s.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("streams[{i}] has no \"stream\": {{\"name\": …}}")))?;
        let stream = registry.get(name).ok_or_else(|| {
            Error::Config(format!(
                "{origin}: unknown stream {name:?}. Run `greenhouse-extract airbyte discover` for the streams of this version and configure among them."
            ))
        })?;
        if choices.iter().any(|c| c.stream == name) {
            return Err(bad(format!("stream {name:?} appears twice")));
        }
        let full_refresh = match configured.get("sync_mode").and_then(Value::as_str) {
            Some("full_refresh") => true,
            Some("incremental") if stream.is_incremental() => false,
            Some("incremental") => {
                return Err(bad(format!(
                    "{name:?} supports only full_refresh (it has no cursor)"
                )));
            }
            Some(other) => {
                return Err(bad(format!(
                    "{name:?} has sync_mode {other:?}; use full_refresh or incremental"
                )));
            }
            None => return Err(bad(format!("{name:?} has no \"sync_mode\""))),
        };
        match configured
            .get("destination_sync_mode")
            .and_then(Value::as_str)
        {
            Some("append" | "overwrite" | "append_dedup" | "update" | "soft_delete") => {}
            Some(other) => {
                return Err(bad(format!(
                    "{name:?} has an unknown destination_sync_mode {other:?}"
                )));
            }
            None => return Err(bad(format!("{name:?} has no \"destination_sync_mode\""))),
        }
        // Column selection: the platform narrows the configured stream's json_schema.
        let fields = match configured
            .get("stream")
            .and_then(|s| s.get("json_schema"))
            .and_then(|s| s.get("properties"))
        {
            None | Some(Value::Null) => None,
            Some(Value::Object(props)) => super::project(
                stream,
                props
                    .keys()
                    .filter(|k| !crate::catalog::is_delete_field(k))
                    .cloned()
                    .collect(),
                origin,
            )?,
            Some(other) => {
                return Err(bad(format!(
                    "the json_schema properties of {name:?} must be an object, found {}",
                    super::kind(other)
                )));
            }
        };
        choices.push(Choice {
            stream: name.to_string(),
            fields,
            full_refresh,
        });
    }
    if choices.is_empty() {
        return Err(bad("it configures no stream".to_string()));
    }
    choices.sort_by(|a, b| a.stream.cmp(&b.stream));
    Ok(choices)
}

/// Reads Airbyte state: the per-stream list, or a legacy `{"type": "LEGACY", "data": {…}}` / plain
/// `{"<stream>": {…}}` document. `null`, `[]` and `{}` are no state.
pub fn parse_state(value: &Value, registry: &Registry, origin: &str) -> Result<State, Error> {
    let bad = |what: String| Error::Config(format!("{origin}: {what}. {STATE_FIX}"));
    let mut state = State::empty();
    let legacy = |data: &Map<String, Value>, state: &mut State| -> Result<(), Error> {
        for (name, blob) in data {
            let entry = super::parse_bookmark(registry, name, blob, origin)?;
            state.streams.insert(name.clone(), entry);
        }
        Ok(())
    };
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                match item.get("type").and_then(Value::as_str) {
                    Some("STREAM") => {
                        let s = item.get("stream");
                        let name = s
                            .and_then(|s| s.get("stream_descriptor"))
                            .and_then(|d| d.get("name"))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                bad(format!("state[{i}] has no stream.stream_descriptor.name"))
                            })?;
                        let blob = s
                            .and_then(|s| s.get("stream_state"))
                            .unwrap_or(&Value::Null);
                        let entry = super::parse_bookmark(registry, name, blob, origin)?;
                        state.streams.insert(name.to_string(), entry);
                    }
                    Some("LEGACY") => match item.get("data") {
                        Some(Value::Object(d)) => legacy(d, &mut state)?,
                        _ => {
                            return Err(bad(format!("state[{i}] is LEGACY without a data object")));
                        }
                    },
                    Some("GLOBAL") => {
                        return Err(bad(format!(
                            "state[{i}] is GLOBAL state; this source keeps per-stream state"
                        )));
                    }
                    _ => {
                        return Err(bad(format!(
                            "state[{i}] is not a state message with \"type\": \"STREAM\""
                        )));
                    }
                }
            }
        }
        Value::Object(m) if m.get("type").and_then(Value::as_str) == Some("LEGACY") => {
            match m.get("data") {
                Some(Value::Object(d)) => legacy(d, &mut state)?,
                _ => return Err(bad("a LEGACY state without a data object".to_string())),
            }
        }
        Value::Object(m) if m.contains_key("type") => {
            return Err(bad(
                "a single state message; give the list of per-stream states".to_string(),
            ));
        }
        Value::Object(m) => legacy(m, &mut state)?,
        other => {
            return Err(bad(format!(
                "the state must be a list of per-stream states, found {}",
                super::kind(other)
            )));
        }
    }
    Ok(state)
}

/// The CONNECTION_STATUS of a check: which streams the credential can read, and what to fix.
pub async fn check_status(config: &Config, registry: &Registry) -> Value {
    let failed = |message: String| json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": message}});
    let results = match crate::check::probe_streams(config, registry).await {
        Ok(r) => r,
        Err(e) => return failed(e.to_string()),
    };
    let bad: Vec<String> = results
        .iter()
        .filter(|(_, st)| *st != ProbeStatus::Ok)
        .map(|(s, st)| format!("{} ({})", s.name, st.label()))
        .collect();
    if bad.is_empty() {
        return json!({"type": "CONNECTION_STATUS", "connectionStatus": {
            "status": "SUCCEEDED",
            "message": format!("Authenticated; all {} streams are readable.", results.len()),
        }});
    }
    let mut message = format!(
        "{} of {} streams are not readable: {}.",
        bad.len(),
        results.len(),
        bad.join(", ")
    );
    for line in crate::check::advice(&results) {
        message.push(' ');
        message.push_str(&line);
    }
    failed(message)
}

/// The `airbyte` subcommands.
#[derive(Debug, Clone)]
pub enum Action {
    Spec,
    Check,
    Discover,
    Read {
        catalog: PathBuf,
        state: Option<PathBuf>,
    },
}

/// Runs one Airbyte command, printing every outcome (errors included) as messages; `cancel`
/// (the CLI's signal flag) stops a `read` early.
pub async fn run(
    action: &Action,
    config_path: Option<&PathBuf>,
    out: Out,
    cancel: crate::cancel::Cancel,
) -> Result<ExitCode, Error> {
    let result = dispatch(action, config_path, &out, cancel).await;
    if let Err(e) = &result {
        let _ = out.line(&error_message(e));
    }
    let _ = out.flush();
    result
}

async fn dispatch(
    action: &Action,
    config_path: Option<&PathBuf>,
    out: &Out,
    cancel: crate::cancel::Cancel,
) -> Result<ExitCode, Error> {
    let registry = Registry::embedded().map_err(|e| Error::Fatal(e.to_string()))?;
    let write = |v: &Value| {
        out.line(v)
            .map_err(|e| Error::Fatal(format!("writing messages failed: {e}")))
    };
    let require_config = || -> Result<&PathBuf, Error> {
        config_path.ok_or_else(|| {
            Error::config("give the connector's config with --config FILE (see `greenhouse-extract airbyte spec`)")
        })
    };
    match action {
        Action::Spec => {
            write(&spec_message())?;
            Ok(ExitCode::Success)
        }
        Action::Check => {
            let status = match super::load_config(Some(require_config()?), &registry) {
                Ok(config) => check_status(&config, &registry).await,
                Err(e) => {
                    json!({"type": "CONNECTION_STATUS", "connectionStatus": {"status": "FAILED", "message": e.to_string()}})
                }
            };
            write(&status)?;
            Ok(ExitCode::Success)
        }
        Action::Discover => {
            let config = super::load_config(Some(require_config()?), &registry)?;
            write(&catalog_message(&registry, Some(&config)))?;
            Ok(ExitCode::Success)
        }
        Action::Read { catalog, state } => {
            let config_path = require_config()?;
            read(
                &registry,
                config_path,
                catalog,
                state.as_deref(),
                out,
                cancel,
            )
            .await
        }
    }
}

async fn read(
    registry: &Registry,
    config_path: &PathBuf,
    catalog_path: &Path,
    state_path: Option<&Path>,
    out: &Out,
    cancel: crate::cancel::Cancel,
) -> Result<ExitCode, Error> {
    let config = super::load_config(Some(config_path), registry)?;
    let origin = format!("the catalog {}", catalog_path.display());
    let catalog = super::read_json(catalog_path, "catalog", CATALOG_FIX)?;
    let choices = parse_catalog(&catalog, registry, &origin)?;
    super::check_sensitive(&choices, registry, &config, &origin)?;
    let state = match state_path {
        Some(p) => {
            let v = super::read_json(p, "state", STATE_FIX)?;
            parse_state(&v, registry, &format!("the state {}", p.display()))?
        }
        None => State::empty(),
    };
    let sink = Arc::new(AirbyteSink::new(out.clone()));
    let report = super::run(&config, registry, &choices, state, sink, cancel).await?;
    Ok(report.exit_code())
}

/// Turns formatted log lines into Airbyte LOG messages on the shared stdout (the `airbyte`
/// command hands it to [`crate::logging::init`] as [`crate::logging::LogTarget::Messages`]): one
/// event is one `make_writer_for` call, scrubbed and written whole on drop.
pub struct LogLines;

pub struct LogLine {
    level: &'static str,
    buf: Vec<u8>,
}

impl std::io::Write for LogLine {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        let text = crate::secrets::scrub(&text);
        let message = text.trim_end();
        if message.is_empty() {
            return;
        }
        let out = Out::stdout();
        let _ = out.line(&json!({"type": "LOG", "log": {"level": self.level, "message": message}}));
        if matches!(self.level, "WARN" | "ERROR") {
            let _ = out.flush();
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogLines {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine {
            level: "INFO",
            buf: Vec::new(),
        }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LogLine {
        let level = match *meta.level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARN",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        LogLine {
            level,
            buf: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Buf, registry};
    use super::*;

    fn configured(sync_mode: &str, props: Option<Value>) -> Value {
        let mut stream =
            json!({"name": "widgets", "supported_sync_modes": ["full_refresh", "incremental"]});
        if let Some(p) = props {
            stream["json_schema"] = json!({"type": "object", "properties": p});
        }
        json!({"streams": [{"stream": stream, "sync_mode": sync_mode, "destination_sync_mode": "append_dedup"}]})
    }

    #[test]
    fn configured_catalog_selects_modes_and_columns() {
        let r = registry();
        let c = parse_catalog(&configured("incremental", None), &r, "c").unwrap();
        assert_eq!(
            c[0],
            Choice {
                stream: "widgets".into(),
                fields: None,
                full_refresh: false
            }
        );
        let c = parse_catalog(
            &configured("full_refresh", Some(json!({"name": {}}))),
            &r,
            "c",
        )
        .unwrap();
        assert!(c[0].full_refresh);
        assert_eq!(
            c[0].fields,
            Some(["id", "name", "updated_at"].map(String::from).into())
        );
        for (cat, needle) in [
            (json!({"streams": {}}), "no \"streams\" array"),
            (configured("sometimes", None), "sync_mode \"sometimes\""),
            (
                json!({"streams": [{"stream": {"name": "gizmos"}, "sync_mode": "incremental", "destination_sync_mode": "append"}]}),
                "unknown stream \"gizmos\"",
            ),
            (
                json!({"streams": [{"stream": {"name": "widgets"}, "sync_mode": "incremental"}]}),
                "destination_sync_mode",
            ),
            (
                configured("incremental", Some(json!({"colour": {}}))),
                "colour",
            ),
        ] {
            let e = parse_catalog(&cat, &r, "the catalog c.json").unwrap_err();
            assert!(matches!(e, Error::Config(_)));
            assert!(e.to_string().contains(needle), "{cat}: {e}");
        }
    }

    #[test]
    fn state_forms() {
        let r = registry();
        let blob = json!({"updated_at": "2026-01-01T00:00:00Z"});
        let list = json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "widgets"}, "stream_state": blob}}]);
        let legacy = json!({"type": "LEGACY", "data": {"widgets": blob}});
        let plain = json!({"widgets": blob});
        for v in [list, legacy, plain] {
            let s = parse_state(&v, &r, "state").unwrap();
            assert!(s.bookmark("widgets").is_some(), "{v}");
        }
        assert!(
            parse_state(&json!([]), &r, "state")
                .unwrap()
                .streams
                .is_empty()
        );
        for v in [
            json!("x"),
            json!([{"type": "GLOBAL", "global": {}}]),
            json!([{"type": "STREAM", "stream": {}}]),
            json!({"type": "STREAM", "stream": {}}),
            json!([{"type": "STREAM", "stream": {"stream_descriptor": {"name": "gizmos"}}}]),
        ] {
            assert!(
                matches!(parse_state(&v, &r, "state"), Err(Error::Config(_))),
                "{v}"
            );
        }
    }

    #[test]
    fn spec_marks_secrets_and_drops_the_destination() {
        let spec = spec_message();
        let props = &spec["spec"]["connectionSpecification"]["properties"];
        assert_eq!(props["client_secret"]["airbyte_secret"], true);
        assert_eq!(props["access_token"]["airbyte_secret"], true);
        assert!(props.get("destination").is_none());
        assert!(props.get("webhook_secret").is_none());
        assert!(props["client_id"].get("airbyte_secret").is_none());
    }

    #[test]
    fn sink_orders_status_records_and_state() {
        let r = registry();
        let stream = &r.streams()[0];
        let buf = Buf::default();
        let sink = AirbyteSink::new(Out::new(Box::new(buf.clone())));
        sink.stream_started(stream, None).unwrap();
        let rec: Record =
            serde_json::from_str(r#"{"id":1,"updated_at":"2026-01-01T00:00:00Z"}"#).unwrap();
        sink.records(stream, &[rec.clone(), rec], Utc::now())
            .unwrap();
        let mut state = State::empty();
        state.stream_mut("widgets").bookmark = Some(Utc::now());
        sink.state(stream, &state).unwrap();
        let mut report = StreamReport::new(
            "widgets",
            crate::sync::window::Window {
                from: None,
                to: None,
            },
        );
        report.status = StreamStatus::Failed("boom".into());
        report.transient_failure = true;
        sink.stream_finished(stream, &report).unwrap();
        let lines = buf.lines();
        let kinds: Vec<String> = lines
            .iter()
            .map(|l| match l["type"].as_str().unwrap() {
                "TRACE" => l["trace"]["stream_status"]["status"]
                    .as_str()
                    .or(l["trace"]["error"]["failure_type"].as_str())
                    .unwrap()
                    .to_string(),
                t => t.to_string(),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "STARTED",
                "RUNNING",
                "RECORD",
                "RECORD",
                "STATE",
                "transient_error",
                "INCOMPLETE"
            ]
        );
        assert_eq!(lines[4]["state"]["sourceStats"]["recordCount"], 2.0);
        assert!(lines[4]["state"]["stream"]["stream_state"]["updated_at"].is_string());
        assert!(lines[2]["record"]["emitted_at"].is_i64());
    }

    #[test]
    fn failure_types_follow_who_must_act() {
        assert_eq!(failure_type(&Error::Auth("x".into())), "config_error");
        assert_eq!(failure_type(&Error::Config("x".into())), "config_error");
        assert_eq!(failure_type(&Error::Fatal("x".into())), "system_error");
        assert_eq!(failure_type(&Error::Interrupted), "transient_error");
    }
}
