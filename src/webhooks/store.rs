//! Stored webhook events: one JSON object per accepted event under
//! `<prefix>/_webhooks/events/<YYYY-MM-DD>/<received_at µs, 20 digits>-<event id>.json`,
//! holding `{"event_id", "action", "received_at", "payload"}` and nothing else (never the
//! signature, never a header).
//!
//! Contract:
//! - [`put_event`] writes with `PutMode::Create`, so a stored event is never overwritten; it
//!   returns only once the store has the object (the receiver answers 200 after that).
//! - [`scan`] / [`pending_events`] never change anything: events received before `until`,
//!   oldest first, one per event id (the first received; Greenhouse sends the same
//!   `Greenhouse-Event-ID` on every retry). An object that is not such a document is reported
//!   as unreadable, never deleted.
//! - [`drop_event`] deletes only keys under the events folder.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::StoredEvent;

/// The folder of the stored events, under the destination prefix.
pub const EVENTS_DIR: &str = "_webhooks/events";

/// Event ids longer than this, or with other characters than `[A-Za-z0-9_-]`, are named by a
/// digest in the key (the id itself is kept in the document).
const MAX_ID_IN_KEY: usize = 64;

/// Stored events read at once by [`scan`].
const READS_AT_ONCE: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum WebhookStoreError {
    /// The events could not be listed, read or deleted (the store is unreachable, refuses the
    /// credentials, …): nothing was changed; try again.
    #[error("the webhook events under {dir} could not be {what}: {source}")]
    Store {
        dir: String,
        what: &'static str,
        #[source]
        source: object_store::Error,
    },
    /// The event is already stored under this key (`PutMode::Create` refused the write).
    #[error("webhook event {0} is already stored")]
    AlreadyStored(String),
    /// A key outside the events folder was given to [`drop_event`].
    #[error("{0} is not a stored webhook event")]
    NotAnEvent(String),
}

/// The document stored for an event.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    event_id: String,
    action: String,
    received_at: DateTime<Utc>,
    payload: serde_json::Value,
}

/// `<prefix>/_webhooks/events`.
pub fn events_dir(prefix: &Path) -> Path {
    EVENTS_DIR
        .split('/')
        .fold(prefix.clone(), |p, part| p.join(part))
}

/// The event id as it appears in a key: itself when short and made of `[A-Za-z0-9_-]` (UUIDs
/// are), else `h` and a digest of it, so no id can reach outside its folder or collide with
/// another id once cleaned.
pub fn key_id(event_id: &str) -> String {
    let plain = !event_id.is_empty()
        && event_id.len() <= MAX_ID_IN_KEY
        && event_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if plain {
        event_id.to_string()
    } else {
        format!(
            "h{}",
            &hex::encode(sha2::Sha256::digest(event_id.as_bytes()))[..32]
        )
    }
}

/// The id of an event delivered without a `Greenhouse-Event-ID`: a digest of its body (the same
/// body delivered twice is one event).
pub fn body_event_id(body: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(body)))
}

/// Where an event received at `received_at` with `event_id` is stored.
pub fn event_key(prefix: &Path, received_at: DateTime<Utc>, event_id: &str) -> Path {
    let micros = received_at.timestamp_micros().max(0);
    events_dir(prefix)
        .join(received_at.format("%Y-%m-%d").to_string())
        .join(format!("{micros:020}-{}.json", key_id(event_id)))
}

/// Stores one event (see the module contract); returns its key.
pub async fn put_event(
    store: &dyn ObjectStore,
    prefix: &Path,
    event_id: &str,
    action: &str,
    received_at: DateTime<Utc>,
    payload: serde_json::Value,
) -> Result<Path, WebhookStoreError> {
    // Whole microseconds, as in the key, so the name and the document say the same instant.
    let received_at =
        DateTime::from_timestamp_micros(received_at.timestamp_micros()).unwrap_or(received_at);
    let key = event_key(prefix, received_at, event_id);
    let doc = Document {
        event_id: event_id.to_string(),
        action: action.to_string(),
        received_at,
        payload,
    };
    let bytes = serde_json::to_vec(&doc).unwrap_or_default();
    match store
        .put_opts(&key, PutPayload::from(bytes), PutMode::Create.into())
        .await
    {
        Ok(_) => Ok(key),
        Err(object_store::Error::AlreadyExists { .. }) => {
            Err(WebhookStoreError::AlreadyStored(key.to_string()))
        }
        Err(source) => Err(WebhookStoreError::Store {
            dir: events_dir(prefix).to_string(),
            what: "written",
            source,
        }),
    }
}

/// An object under the events folder that is not a stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub key: String,
    pub reason: String,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Oldest first, one per event id.
    pub events: Vec<StoredEvent>,
    pub unreadable: Vec<Unreadable>,
    /// Keys of later copies of an event, by the key of the copy in `events` (done when it is).
    pub duplicates: BTreeMap<String, Vec<String>>,
}

/// The stored events received before `until` (see the module contract).
pub async fn scan(
    store: &dyn ObjectStore,
    prefix: &Path,
    until: DateTime<Utc>,
) -> Result<Scan, WebhookStoreError> {
    let dir = events_dir(prefix);
    let store_error = |what, source| WebhookStoreError::Store {
        dir: dir.to_string(),
        what,
        source,
    };
    let metas: Vec<object_store::ObjectMeta> = match store.list(Some(&dir)).try_collect().await {
        Ok(m) => m,
        Err(object_store::Error::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(store_error("listed", e)),
    };
    let until_micros = until.timestamp_micros();
    let mut scan = Scan::default();
    let mut wanted: Vec<(i64, Path)> = Vec::new();
    for meta in metas {
        match key_micros(&meta.location) {
            // The name says when the event came: later ones are not even read.
            Some(micros) if micros >= until_micros => {}
            Some(micros) => wanted.push((micros, meta.location)),
            None => scan.unreadable.push(Unreadable {
                key: meta.location.to_string(),
                reason: "not named <received_at µs>-<event id>.json".into(),
            }),
        }
    }
    // A few reads at a time: a cloud store answers each in tens of milliseconds.
    let bodies: Vec<(i64, Path, Option<bytes::Bytes>)> = futures::stream::iter(wanted)
        .map(|(micros, path)| async move {
            match store.get(&path).await {
                Ok(r) => r.bytes().await.map(|b| (micros, path, Some(b))),
                // Deleted since the listing (applied by another run): nothing to do.
                Err(object_store::Error::NotFound { .. }) => Ok((micros, path, None)),
                Err(e) => Err(e),
            }
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
        .map_err(|e| store_error("read", e))?;
    let mut found: Vec<(i64, String, StoredEvent)> = Vec::new();
    for (micros, path, bytes) in bodies {
        let Some(bytes) = bytes else { continue };
        let key = path.to_string();
        match serde_json::from_slice::<Document>(&bytes) {
            Ok(doc) if doc.received_at < until => found.push((
                micros,
                key.clone(),
                StoredEvent {
                    key,
                    event_id: doc.event_id,
                    action: doc.action,
                    received_at: doc.received_at,
                    payload: doc.payload,
                },
            )),
            Ok(_) => {}
            Err(e) => scan.unreadable.push(Unreadable {
                key,
                reason: format!("not a stored webhook event: {e}"),
            }),
        }
    }
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    let mut first_of: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (_, key, ev) in found {
        if seen.insert(ev.event_id.clone()) {
            first_of.insert(ev.event_id.clone(), key);
            scan.events.push(ev);
        } else if let Some(first) = first_of.get(&ev.event_id) {
            scan.duplicates.entry(first.clone()).or_default().push(key);
        }
    }
    Ok(scan)
}

/// The received-at microseconds an event key starts with.
fn key_micros(key: &Path) -> Option<i64> {
    let name = key.filename()?;
    let stem = name.strip_suffix(".json")?;
    let (micros, id) = stem.split_once('-')?;
    if micros.len() != 20 || id.is_empty() || !micros.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    micros.parse().ok()
}

/// The stored events received before `until`, oldest first, one per event id (the first
/// received), and the keys of objects under the events folder that are not stored events.
pub async fn pending_events(
    store: &dyn ObjectStore,
    prefix: &Path,
    until: DateTime<Utc>,
) -> Result<(Vec<StoredEvent>, Vec<String>), WebhookStoreError> {
    let scan = scan(store, prefix, until).await?;
    Ok((
        scan.events,
        scan.unreadable.into_iter().map(|u| u.key).collect(),
    ))
}

/// Deletes a stored event (one already gone is fine).
pub async fn drop_event(store: &dyn ObjectStore, key: &str) -> Result<(), WebhookStoreError> {
    let path = Path::from(key);
    let parts: Vec<String> = path.parts().map(|p| p.as_ref().to_string()).collect();
    let n = parts.len();
    let in_events = n >= 4 && parts[n - 4] == "_webhooks" && parts[n - 3] == "events";
    if !in_events || key_micros(&path).is_none() {
        return Err(WebhookStoreError::NotAnEvent(key.to_string()));
    }
    match store.delete(&path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => Err(WebhookStoreError::Store {
            dir: key.to_string(),
            what: "deleted",
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use serde_json::json;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn pending_events_are_oldest_first_before_until_and_once_per_event_id() {
        let store = InMemory::new();
        let prefix = Path::from("raw/gh");
        let put = |id: &'static str, action: &'static str, when: &'static str| {
            let store = &store;
            let prefix = &prefix;
            async move {
                put_event(store, prefix, id, action, at(when), json!({"n": id}))
                    .await
                    .unwrap()
            }
        };
        // Written out of order, across two days.
        put("c", "delete_application", "2026-03-02T00:00:01Z").await;
        let a = put("a", "delete_candidate", "2026-03-01T23:59:59Z").await;
        put("b", "merge_candidate", "2026-03-02T00:00:00.5Z").await;
        // Greenhouse's retry of `a`: a second copy, later.
        let a2 = put("a", "delete_candidate", "2026-03-02T00:00:00.7Z").await;
        // Received after `until`.
        put("d", "offer_deleted", "2026-03-02T00:00:02Z").await;
        // Something else in the folder.
        store
            .put(
                &events_dir(&prefix).join("2026-03-02").join("junk.json"),
                PutPayload::from_static(b"{}"),
            )
            .await
            .unwrap();
        let bad = events_dir(&prefix)
            .join("2026-03-02")
            .join(format!("{:020}-x.json", 1));
        store
            .put(&bad, PutPayload::from_static(b"not json"))
            .await
            .unwrap();

        let until = at("2026-03-02T00:00:02Z");
        let (events, unreadable) = pending_events(&store, &prefix, until).await.unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(events[0].key, a.to_string());
        assert_eq!(events[0].action, "delete_candidate");
        assert_eq!(events[0].received_at, at("2026-03-01T23:59:59Z"));
        assert_eq!(events[0].payload, json!({"n": "a"}));
        assert!(
            events[0]
                .key
                .starts_with("raw/gh/_webhooks/events/2026-03-01/")
        );
        assert_eq!(unreadable.len(), 2, "{unreadable:?}");
        assert!(unreadable.contains(&bad.to_string()));

        let s = scan(&store, &prefix, until).await.unwrap();
        assert_eq!(
            s.duplicates.get(&a.to_string()),
            Some(&vec![a2.to_string()])
        );

        // Nothing was changed by reading; dropping removes the one event.
        drop_event(&store, &events[0].key).await.unwrap();
        drop_event(&store, &events[0].key).await.unwrap();
        let (events, _) = pending_events(&store, &prefix, until).await.unwrap();
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(
            ids,
            ["b", "a", "c"],
            "the retry of `a` is what is left of it"
        );
        assert!(matches!(
            drop_event(&store, "raw/gh/state/current.json").await,
            Err(WebhookStoreError::NotAnEvent(_))
        ));
    }

    #[tokio::test]
    async fn an_event_is_never_overwritten() {
        let store = InMemory::new();
        let prefix = Path::from("");
        let when = at("2026-03-01T10:00:00Z");
        let key = put_event(&store, &prefix, "e1", "x", when, json!(1))
            .await
            .unwrap();
        assert_eq!(
            key.as_ref(),
            "_webhooks/events/2026-03-01/00001772359200000000-e1.json"
        );
        let again = put_event(&store, &prefix, "e1", "y", when, json!(2)).await;
        assert!(matches!(again, Err(WebhookStoreError::AlreadyStored(_))));
        let (events, _) = pending_events(&store, &prefix, at("2027-01-01T00:00:00Z"))
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].action, "x");
    }

    #[test]
    fn event_ids_cannot_escape_their_folder() {
        assert_eq!(
            key_id("0c8f3a2e-1b4d-4e5f-8a9b-0c1d2e3f4a5b"),
            "0c8f3a2e-1b4d-4e5f-8a9b-0c1d2e3f4a5b"
        );
        for evil in [
            "../../state",
            "a/b",
            "",
            "x".repeat(65).as_str(),
            "a b",
            "é",
        ] {
            let k = key_id(evil);
            assert!(k.starts_with('h') && k.len() == 33, "{evil:?} → {k}");
        }
        assert_ne!(key_id("a/b"), key_id("ab"));
        assert!(body_event_id(b"{}").starts_with("sha256:"));
    }
}
