//! The Singer form of the state: `{"bookmarks": {"<stream>": {"<cursor>": "<RFC 3339>",
//! "slices": {…}}}}`, and back. Pure functions over `serde_json::Value` and the registry (for each
//! stream's cursor name), here rather than in `protocol` so that `sync --state-file`, below the
//! protocols, reads and writes the same form the Singer tap prints and takes.
//!
//! The Singer form carries bookmarks and slice progress only: a document's generation, its run
//! ids and open runs are not in it (a state file in that form does not help a later run write a
//! crashed run's manifest; the destination's own state does). Errors are messages for the user
//! (a configuration problem), ending with what to do.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::{Slices, State, StreamState};
use crate::registry::{Registry, Stream};

/// `value` looks like a Singer STATE (`{"bookmarks": …}` without our `"version"`).
pub fn is_singer(value: &Value) -> bool {
    value
        .as_object()
        .is_some_and(|top| top.contains_key("bookmarks") && !top.contains_key("version"))
}

/// The key that holds slice progress in a stream's bookmark.
pub const SLICES_KEY: &str = "slices";
/// The key that holds the stream's id index (deletes), inline in protocol states.
pub const IDS_KEY: &str = "ids";

/// A stream's bookmark as the protocols carry it: `{"<cursor>": "<RFC 3339>", "slices": {…}}`
/// (each key only when there is something to resume from). `None` when there is nothing.
pub fn bookmark_of(stream: Option<&Stream>, entry: &StreamState) -> Option<Value> {
    let mut m = Map::new();
    if let (Some(b), Some(cursor)) = (entry.bookmark, stream.and_then(Stream::cursor_field)) {
        m.insert(
            cursor.to_string(),
            Value::String(b.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        );
    }
    if let Some(s) = &entry.slices {
        m.insert(
            SLICES_KEY.to_string(),
            serde_json::to_value(s).unwrap_or(Value::Null),
        );
    }
    if let Some(ids) = &entry.ids {
        m.insert(
            IDS_KEY.to_string(),
            serde_json::to_value(ids).unwrap_or(Value::Null),
        );
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Parses one stream's bookmark (the inverse of [`bookmark_of`]).
pub fn parse_bookmark(
    registry: &Registry,
    name: &str,
    value: &Value,
    origin: &str,
) -> Result<StreamState, String> {
    let fix = "Repair it, or remove the stream's entry to re-read the stream from its start date.";
    let stream = registry.get(name).ok_or_else(|| {
        format!(
            "{origin} has a bookmark for {name:?}, which is not a stream of this version. Remove that entry (run `greenhouse-extract --discover` for the stream names)."
        )
    })?;
    let mut entry = StreamState::default();
    let map = match value {
        Value::Null => return Ok(entry),
        Value::Object(m) => m,
        other => {
            return Err(format!(
                "{origin}: the bookmark of {name:?} must be an object like {{\"updated_at\": \"2026-01-31T00:00:00Z\"}}, found {}. {fix}",
                kind(other)
            ));
        }
    };
    for (key, v) in map {
        if Some(key.as_str()) == stream.cursor_field() {
            entry.bookmark = match v {
                Value::Null => None,
                Value::String(s) => Some(parse_time(s).ok_or_else(|| {
                    format!(
                        "{origin}: the bookmark {key:?} of {name:?} is {s:?}, not an RFC 3339 timestamp. {fix}"
                    )
                })?),
                other => {
                    return Err(format!(
                        "{origin}: the bookmark {key:?} of {name:?} must be an RFC 3339 string, found {}. {fix}",
                        kind(other)
                    ));
                }
            };
        } else if key == SLICES_KEY {
            if !v.is_null() {
                let slices: Slices = serde_json::from_value(v.clone()).map_err(|e| {
                    format!(
                        "{origin}: the slice progress of {name:?} is malformed ({e}). Remove the \"{SLICES_KEY}\" key to read the window whole again."
                    )
                })?;
                entry.slices = Some(slices);
            }
        } else if key == IDS_KEY {
            if !v.is_null() {
                entry.ids = Some(serde_json::from_value(v.clone()).map_err(|e| {
                    format!(
                        "{origin}: the id index of {name:?} is malformed ({e}). Remove the \"{IDS_KEY}\" key: the next run builds a new one (deletes of records read before it are then found only after a full refresh)."
                    )
                })?);
            }
        } else {
            let expected = match stream.cursor_field() {
                Some(c) => format!("\"{c}\", \"{SLICES_KEY}\" and \"{IDS_KEY}\""),
                None => {
                    format!("only \"{SLICES_KEY}\" and \"{IDS_KEY}\" (it is a full-refresh stream)")
                }
            };
            return Err(format!(
                "{origin}: the bookmark of {name:?} has an unknown key {key:?}; it takes {expected}. {fix}"
            ));
        }
    }
    Ok(entry)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// A JSON value's kind, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The streams of a state document that the protocols carry, with their bookmarks.
pub fn bookmarks(state: &State, registry: &Registry) -> BTreeMap<String, Value> {
    state
        .streams
        .iter()
        .filter_map(|(name, entry)| Some((name.clone(), bookmark_of(registry.get(name), entry)?)))
        .collect()
}

/// The Singer state value of a state document.
pub fn to_singer(state: &State, registry: &Registry) -> Value {
    json!({ "bookmarks": bookmarks(state, registry) })
}

/// Reads a Singer state value (`{"bookmarks": {…}}`; an empty object is no state).
pub fn from_singer(
    value: &Value,
    registry: &Registry,
    origin: &str,
    fix: &str,
) -> Result<State, String> {
    let mut state = State::empty();
    let Value::Object(top) = value else {
        return Err(format!(
            "{origin} must be a JSON object like {{\"bookmarks\": {{…}}}}, found {}. {fix}",
            kind(value)
        ));
    };
    for (key, v) in top {
        match key.as_str() {
            "bookmarks" => {
                let Value::Object(marks) = v else {
                    return Err(format!(
                        "{origin}: \"bookmarks\" must be an object of streams, found {}. {fix}",
                        kind(v)
                    ));
                };
                for (name, mark) in marks {
                    let entry = parse_bookmark(registry, name, mark, origin)?;
                    state.streams.insert(name.clone(), entry);
                }
            }
            // Written by some Singer runners; a resumed run starts every stream anyway.
            "currently_syncing" => {}
            other => {
                return Err(format!(
                    "{origin} has an unknown key {other:?}; a Singer state holds \"bookmarks\". {fix}"
                ));
            }
        }
    }
    Ok(state)
}
