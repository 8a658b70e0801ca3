//! The webhook receiver (`webhooks serve`): a small HTTP(S) server that verifies each Greenhouse
//! web hook request's signature, stores the event on the destination and answers 200 — nothing
//! else. The next `sync` applies the stored events (tombstones for deletes and merges,
//! re-reads for anonymised candidates) and deletes them once what they said is committed.
//!
//! Contract:
//! - **Authenticated before anything**: the body is read (bounded by `webhook_max_body_bytes`,
//!   never buffered beyond it) and its `Signature: sha256 <hex HMAC-SHA256>` checked in constant
//!   time ([`signature`]) before it is parsed or stored; unsigned, wrongly signed or truncated →
//!   401 and nothing stored.
//! - **Durable before 200**: an accepted event is written with `PutMode::Create`
//!   ([`store::put_event`]) and only then answered 200; a store that fails → 503, so Greenhouse
//!   delivers it again. The same event stored twice (a retry after a lost answer) is read as one
//!   ([`pending_events`] keeps the first per `Greenhouse-Event-ID`).
//! - **Never stored**: the signature, the secret, any header but the event id. Never logged:
//!   the secret (a [`crate::secrets::Secret`]), the signature, anything of a request that failed
//!   its signature check.
//! - The library side ([`pending_events`], [`drop_event`]) is pure storage: it is what the sync's
//!   Parquet output reads, and it changes nothing but the one key it is asked to delete.
//!
//! Layering: uses `storage`, `config`, `secrets` and `events`; the CLI owns the process's
//! signals and hands [`run`] a future that resolves when the server should stop.

pub mod server;
pub mod signature;
pub mod store;

use chrono::{DateTime, Utc};

pub use store::{WebhookStoreError, drop_event, pending_events};

use crate::config::WebhookServer;
use crate::error::Error;

/// One stored Greenhouse webhook event, as [`pending_events`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The object's key in the store (prefix included): what [`drop_event`] takes.
    pub key: String,
    /// The `Greenhouse-Event-ID` header, or `sha256:<digest of the body>` when it was absent.
    pub event_id: String,
    /// The body's `action` (`delete_candidate`, `merge_candidate`, …).
    pub action: String,
    pub received_at: DateTime<Utc>,
    /// The body's `payload`, as Greenhouse sent it.
    pub payload: serde_json::Value,
}

/// Opens the destination, checks that it can be written, and serves until `shutdown` resolves;
/// requests in flight then finish (for a few seconds at most) and it returns `Ok`.
pub async fn run(
    settings: &WebhookServer,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error> {
    let tls = settings
        .tls
        .as_ref()
        .map(server::tls_acceptor)
        .transpose()?;
    let dest = crate::storage::open(&settings.destination)?;
    // A wrong bucket or missing credentials fail here, at start-up, not as a 503 on every
    // delivery until Greenhouse disables the hook.
    crate::storage::probe_writable(&dest).await?;
    server::serve(settings, dest, tls, shutdown).await
}
