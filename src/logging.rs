//! Log set-up: human-readable lines on stderr, or one JSON object per line with
//! `--log-format json` (for Airflow and log shippers). Stdout is reserved for command output;
//! where stdout carries protocol messages only (an Airbyte source), the caller hands [`init`] a
//! writer that turns each line into a message ([`LogTarget::Messages`]): this module never knows
//! a protocol.
//!
//! Contract — secrets never reach an output stream, even by mistake:
//! - Every log line and the panic message pass through [`crate::secrets::scrub`], which masks
//!   each secret the process registered (see [`crate::secrets`]).
//! - The log writer buffers one whole event, scrubs it, then writes it in one call, so a secret
//!   can never straddle two writes and slip through half-replaced.
//! - Text lines are logfmt-safe: after the message, each field is `key=value`, the value
//!   quoted (with `"` and `\` escaped, control characters as escapes) when it holds a space, a
//!   `=`, a quote or a control character, or is empty ([`logfmt_value`]).
//! - JSON lines nest the fields named in [`crate::events::JSON_FIELDS`] (the run summary) as
//!   JSON rather than as a string.
//! - While live progress bars are drawn (the `progress` module calls [`draw_above`]), log lines
//!   are written with the bars suspended, so a line never lands in the middle of a bar.

use std::io::{self, Write};
use std::sync::RwLock;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};

use crate::events::JSON_FIELDS;
use crate::secrets::scrub;

/// The format of log lines on stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Progress bars currently drawn on stderr; log events are written with them suspended.
static BARS: RwLock<Option<indicatif::MultiProgress>> = RwLock::new(None);

/// Routes log output around the progress bars while `bars` is set (by the `progress` module).
pub(crate) fn draw_above(bars: Option<indicatif::MultiProgress>) {
    *BARS.write().unwrap_or_else(|p| p.into_inner()) = bars;
}

/// Writes already-scrubbed bytes to stderr, suspending the progress bars if any are drawn.
fn write_stderr(bytes: &[u8]) {
    let bars = BARS.read().unwrap_or_else(|p| p.into_inner()).clone();
    let write = || {
        let mut err = io::stderr().lock();
        let _ = err.write_all(bytes);
        let _ = err.flush();
    };
    match bars {
        Some(b) => b.suspend(write),
        None => write(),
    }
}

/// A [`MakeWriter`] whose writers buffer one event and scrub it before it reaches `sink`.
pub struct ScrubbingMakeWriter<F> {
    sink: F,
}

impl<F: Fn(&[u8]) + Clone> ScrubbingMakeWriter<F> {
    pub fn new(sink: F) -> Self {
        ScrubbingMakeWriter { sink }
    }
}

impl<'a, F: Fn(&[u8]) + Clone + 'a> MakeWriter<'a> for ScrubbingMakeWriter<F> {
    type Writer = EventBuffer<F>;

    fn make_writer(&'a self) -> Self::Writer {
        EventBuffer {
            buf: Vec::with_capacity(256),
            sink: self.sink.clone(),
        }
    }
}

/// One event's bytes; scrubbed and handed to the sink when the formatter drops it.
pub struct EventBuffer<F: Fn(&[u8])> {
    buf: Vec<u8>,
    sink: F,
}

impl<F: Fn(&[u8])> Write for EventBuffer<F> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing early would let half an event out; the whole event is written on drop.
        Ok(())
    }
}

impl<F: Fn(&[u8])> Drop for EventBuffer<F> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        (self.sink)(scrub(&text).as_bytes());
    }
}

/// Where log lines go.
#[derive(Debug)]
pub enum LogTarget {
    Stderr(LogFormat),
    /// Plain message text (no timestamp, level or target: the writer and the platform add
    /// them) handed to a protocol's writer, e.g. Airbyte LOG messages on stdout. The writer
    /// scrubs each message itself: it may need the event's level to build the message.
    Messages(BoxMakeWriter),
}

/// Installs the global subscriber and the scrubbing panic hook. `RUST_LOG` overrides the level
/// chosen by -q/-v.
pub fn init(target: LogTarget, verbose: u8, quiet: bool) {
    install_panic_hook();
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our own crate at the chosen level; dependencies one notch quieter unless tracing.
    let default = if level == "trace" {
        "trace".to_string()
    } else {
        format!("warn,greenhouse_extract={level}")
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let format = match target {
        LogTarget::Stderr(f) => f,
        LogTarget::Messages(writer) => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .with_ansi(false)
                .without_time()
                .with_level(false)
                .with_target(false)
                .try_init();
            return;
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()));
    let _ = match format {
        LogFormat::Json => builder
            .with_writer(ScrubbingMakeWriter::new(|b: &[u8]| {
                write_stderr(&embed_json_fields(b))
            }))
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_writer(ScrubbingMakeWriter::new(write_stderr))
            .fmt_fields(LogfmtFields)
            .with_target(false)
            .try_init(),
    };
}

/// One JSON log line with the fields of [`JSON_FIELDS`] turned from strings back into the JSON
/// they hold. Lines without such a field pass through untouched (and unparsed).
fn embed_json_fields(line: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let has_one = JSON_FIELDS.iter().any(|f| {
        let needle = format!("\"{f}\":\"");
        line.windows(needle.len()).any(|w| w == needle.as_bytes())
    });
    if !has_one {
        return line.into();
    }
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(line) else {
        return line.into();
    };
    for f in JSON_FIELDS {
        let parsed = match object.get(*f) {
            Some(serde_json::Value::String(s)) => serde_json::from_str(s).ok(),
            _ => None,
        };
        if let Some(v) = parsed {
            object.insert(f.to_string(), v);
        }
    }
    let mut out = serde_json::to_vec(&object).unwrap_or_else(|_| line.to_vec());
    out.push(b'\n');
    out.into()
}

/// Text-format fields as logfmt: the message first, then `key=value` pairs quoted where needed.
struct LogfmtFields;

impl<'w> FormatFields<'w> for LogfmtFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = LogfmtVisitor {
            writer: &mut writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct LogfmtVisitor<'a, 'w> {
    writer: &'a mut Writer<'w>,
    result: std::fmt::Result,
    first: bool,
}

impl LogfmtVisitor<'_, '_> {
    fn field(&mut self, field: &Field, value: &str) {
        let name = field.name();
        // tracing-log's metadata fields, as the default formatter leaves them out.
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        let sep = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{sep}{value}")
        } else {
            write!(self.writer, "{sep}{name}={}", logfmt_value(value))
        };
    }
}

impl Visit for LogfmtVisitor<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.field(field, &format!("{value:?}"));
    }
}

/// A logfmt value: as is when it is one plain token, otherwise quoted and escaped.
pub fn logfmt_value(value: &str) -> std::borrow::Cow<'_, str> {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '=' | '"' | '\\'));
    if plain {
        return value.into();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out.into()
}

/// Replaces the default panic message (which prints the payload verbatim) with a scrubbed one.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let message = panic_message(thread.name().unwrap_or("<unnamed>"), &info.to_string());
        write_stderr(message.as_bytes());
    }));
}

fn panic_message(thread: &str, info: &str) -> String {
    format!(
        "thread '{thread}' {}\nThis is a bug in greenhouse-extract; please report it.\n",
        scrub(info)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::register;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_writer_scrubs_a_whole_event_split_across_writes() {
        register("split-secret-9f8e7d");
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = {
            let seen = seen.clone();
            move |b: &[u8]| {
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(b).into_owned())
            }
        };
        let make = ScrubbingMakeWriter::new(sink);
        {
            let mut w = make.make_writer();
            // The formatter may write an event in pieces; a secret cut in two must still be found.
            w.write_all(b"token=split-sec").unwrap();
            w.flush().unwrap();
            w.write_all(b"ret-9f8e7d done\n").unwrap();
            assert!(
                seen.lock().unwrap().is_empty(),
                "nothing before the event ends"
            );
        }
        assert_eq!(*seen.lock().unwrap(), vec!["token=*** done\n".to_string()]);
    }

    #[test]
    fn tracing_events_in_both_formats_are_scrubbed() {
        register("event-secret-77aa");
        for json in [false, true] {
            let seen = Arc::new(Mutex::new(String::new()));
            let sink = {
                let seen = seen.clone();
                move |b: &[u8]| seen.lock().unwrap().push_str(&String::from_utf8_lossy(b))
            };
            let builder = tracing_subscriber::fmt()
                .with_writer(ScrubbingMakeWriter::new(sink))
                .with_ansi(false);
            let dispatch: tracing::Dispatch = if json {
                builder.json().finish().into()
            } else {
                builder.finish().into()
            };
            tracing::dispatcher::with_default(&dispatch, || {
                tracing::info!(value = "event-secret-77aa", "Saw event-secret-77aa");
            });
            let out = seen.lock().unwrap().clone();
            assert!(out.contains("Saw ***"), "{out}");
            assert!(!out.contains("event-secret-77aa"), "{out}");
        }
    }

    /// Issue "fits the tools our users run" (4): a text line whose values hold spaces, `=` or
    /// quotes must still split into fields with a logfmt parser.
    #[test]
    fn text_fields_are_logfmt_quoted_where_needed() {
        let seen = Arc::new(Mutex::new(String::new()));
        let sink = {
            let seen = seen.clone();
            move |b: &[u8]| seen.lock().unwrap().push_str(&String::from_utf8_lossy(b))
        };
        let dispatch: tracing::Dispatch = tracing_subscriber::fmt()
            .with_writer(ScrubbingMakeWriter::new(sink))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(LogfmtFields)
            .finish()
            .into();
        let error = "403 Forbidden: scope \"offers\" missing\nsee=docs";
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::warn!(event = "x", stream = "jobs", error = %error, n = 3, empty = "", "Saw it");
        });
        let out = seen.lock().unwrap().clone();
        assert_eq!(
            out.trim_end(),
            r#" WARN Saw it event=x stream=jobs error="403 Forbidden: scope \"offers\" missing\nsee=docs" n=3 empty="""#,
        );
    }

    #[test]
    fn json_fields_named_as_json_are_nested() {
        let line = br#"{"event":"run_finished","summary":"{\"rows\":3}","message":"Run finished"}
"#;
        let out: serde_json::Value = serde_json::from_slice(&embed_json_fields(line)).unwrap();
        assert_eq!(out["summary"]["rows"], 3, "{out}");
        let other = b"{\"event\":\"x\",\"error\":\"{}\"}\n";
        assert_eq!(&*embed_json_fields(other), other.as_slice());
    }

    #[test]
    fn panic_messages_are_scrubbed() {
        register("panic-secret-1234");
        let m = panic_message("main", "panicked at x.rs:1:1:\nbad panic-secret-1234");
        assert!(m.contains("bad ***"), "{m}");
        assert!(!m.contains("panic-secret-1234"));
    }
}
