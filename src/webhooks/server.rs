//! The HTTP side of the receiver: hyper's HTTP/1.1 server over plain TCP or rustls.
//!
//! Why hyper directly rather than axum (which design.md suggests): the receiver has two routes
//! and one body limit, hyper and hyper-util are already built for reqwest and the simulator,
//! and axum would add a router and its macros to every clean build for no behaviour we need.
//!
//! Routes: `GET /health` → 200 `{"status":"ok"}` (no authentication, for load balancers);
//! `POST` to any path → a webhook delivery (the path is not checked, so a reverse proxy may
//! mount the receiver anywhere, e.g. `https://hooks.example.com/greenhouse`); anything else →
//! 405.
//!
//! Answers to a delivery, in the order they are decided:
//! | status | when |
//! |---|---|
//! | 413 | the body is over `webhook_max_body_bytes` (checked while reading) |
//! | 408 | the body did not arrive within [`BODY_TIMEOUT`] |
//! | 401 | no `Signature`, not `sha256 <64 hex>`, or not the HMAC of this body with the secret |
//! | 400 | signed, but not a JSON object with a string `action` |
//! | 200 | `action` is `ping` (Greenhouse's check when a hook is saved): nothing stored |
//! | 200 | stored (or already stored under the same key) |
//! | 503 | the destination refused the write or did not answer within [`STORE_TIMEOUT`] |
//!
//! Connections: one request each (no keep-alive), so `webhook_max_concurrency` bounds the
//! requests handled at once: a connection is accepted only with a free slot, the others wait in
//! the listen queue. Headers must arrive within [`HEADER_TIMEOUT`], a TLS handshake within
//! [`HANDSHAKE_TIMEOUT`], so a slow or idle client cannot hold a slot for long.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::{signature, store};
use crate::config::{TlsFiles, WebhookServer};
use crate::error::Error;
use crate::events;
use crate::secrets::Secret;
use crate::storage::Destination;

/// Request headers must be complete within this long of the connection's start.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole body must arrive within this long.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A TLS handshake must be done within this long.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The store must have the event within this long, or the answer is 503 (Greenhouse waits
/// about as long for an answer before it counts the attempt as failed and retries).
pub const STORE_TIMEOUT: Duration = Duration::from_secs(20);
/// On shutdown, requests in flight get this long to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
/// Event ids longer than this (they are UUIDs) are cut before they are stored or logged.
const MAX_EVENT_ID: usize = 200;

/// The state every request handler shares.
struct Receiver {
    secret: Secret,
    max_body_bytes: u64,
    dest: Destination,
    actions: std::collections::BTreeSet<String>,
}

/// A rustls acceptor for the PEM certificate chain and key in `files` (HTTP/1.1 only).
pub fn tls_acceptor(files: &TlsFiles) -> Result<TlsAcceptor, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, path: &std::path::Path, e: &dyn std::fmt::Display| {
        Error::Config(format!(
            "TLS {what} {}: {e}. Give a PEM file (--tls-cert / webhook_tls_cert, --tls-key / webhook_tls_key).",
            path.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| bad("certificate", &files.cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", &files.cert, &e))?;
    if certs.is_empty() {
        return Err(bad(
            "certificate",
            &files.cert,
            &"it holds no CERTIFICATE block",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad("key", &files.key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Fatal(format!("TLS set-up failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::Config(format!(
                "the TLS certificate {} and key {} do not go together: {e}",
                files.cert.display(),
                files.key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves until `shutdown` resolves (see the module documentation).
pub async fn serve(
    settings: &WebhookServer,
    dest: Destination,
    tls: Option<TlsAcceptor>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), Error> {
    let listener = TcpListener::bind(settings.listen).await.map_err(|e| {
        Error::Config(format!(
            "cannot listen on {}: {e}. Choose another address with --listen (webhook_listen).",
            settings.listen
        ))
    })?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::Fatal(format!("the listening socket has no address: {e}")))?;
    events::webhooks_listening(&address, tls.is_some(), &dest.url);
    let receiver = Arc::new(Receiver {
        secret: settings.secret.clone(),
        max_body_bytes: settings.max_body_bytes,
        dest,
        actions: settings.actions.clone(),
    });
    let slots = Arc::new(Semaphore::new(settings.max_concurrency));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let shutdown = std::pin::pin!(shutdown);
    let mut shutdown = shutdown;
    loop {
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment instead of spinning.
                    events::webhook_connection_failed(&address, &e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        connections.spawn(connection(
            stream,
            remote,
            tls.clone(),
            receiver.clone(),
            stopped.clone(),
            slot,
        ));
    }
    drop(listener);
    while connections.try_join_next().is_some() {}
    events::webhooks_stopping(connections.len());
    let _ = stop.send(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    let unfinished = if drained.is_err() {
        connections.len()
    } else {
        0
    };
    connections.abort_all();
    events::webhooks_stopped(unfinished);
    Ok(())
}

/// One connection: the TLS handshake if any, then one HTTP/1.1 request.
async fn connection(
    stream: TcpStream,
    remote: SocketAddr,
    tls: Option<TlsAcceptor>,
    receiver: Arc<Receiver>,
    mut stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    match tls {
        None => http(TokioIo::new(stream), remote, receiver, stopped).await,
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            let tls_stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => return events::webhook_connection_failed(&remote, &e),
                    Err(_) => {
                        return events::webhook_connection_failed(&remote, &"TLS handshake timed out");
                    }
                },
                _ = stopped.changed() => return,
            };
            http(TokioIo::new(tls_stream), remote, receiver, stopped).await
        }
    }
}

async fn http<I>(
    io: I,
    remote: SocketAddr,
    receiver: Arc<Receiver>,
    mut stopped: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let receiver = receiver.clone();
        async move { Ok::<_, Infallible>(receiver.handle(req, remote).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped.changed() => {
            // Lets a request in flight finish, closes an idle connection.
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(e) = result {
        events::webhook_connection_failed(&remote, &e);
    }
}

/// Why a body was not read whole.
enum BodyError {
    TooLarge,
    TimedOut,
    Broken,
}

impl Receiver {
    async fn handle(&self, req: Request<Incoming>, remote: SocketAddr) -> Response<Full<Bytes>> {
        let method = req.method().clone();
        if req.uri().path() == "/health" && matches!(method, Method::GET | Method::HEAD) {
            return json(StatusCode::OK, r#"{"status":"ok"}"#);
        }
        if method != Method::POST {
            let mut r = self.refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "only POST (deliveries) and GET /health are served",
                remote,
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST, GET"));
            return r;
        }
        let (parts, body) = req.into_parts();
        let body = match read_body(body, self.max_body_bytes).await {
            Ok(b) => b,
            Err(BodyError::TooLarge) => {
                return self.refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the body is larger than webhook_max_body_bytes",
                    remote,
                );
            }
            Err(BodyError::TimedOut) => {
                return self.refuse(
                    StatusCode::REQUEST_TIMEOUT,
                    "the body did not arrive in time",
                    remote,
                );
            }
            Err(BodyError::Broken) => {
                return self.refuse(
                    StatusCode::BAD_REQUEST,
                    "the body could not be read",
                    remote,
                );
            }
        };
        let header = parts.headers.get("signature").map(HeaderValue::as_bytes);
        if let Err(e) = signature::verify(self.secret.expose().as_bytes(), &body, header) {
            return self.refuse(StatusCode::UNAUTHORIZED, &e.to_string(), remote);
        }
        let doc: serde_json::Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return self.refuse(StatusCode::BAD_REQUEST, "the body is not JSON", remote);
            }
        };
        let Some(action) = doc.get("action").and_then(|a| a.as_str()) else {
            return self.refuse(
                StatusCode::BAD_REQUEST,
                "the body is not a JSON object with a string `action`",
                remote,
            );
        };
        if action == "ping" {
            events::webhook_ping();
            return json(StatusCode::OK, r#"{"status":"pong"}"#);
        }
        // An action no declaration applies would sit on the destination for ever: Greenhouse
        // is told it arrived, and nothing is kept.
        if !self.actions.is_empty() && !self.actions.contains(action) {
            events::webhook_event_ignored(action);
            return json(StatusCode::OK, r#"{"status":"ignored"}"#);
        }
        let event_id = match parts.headers.get("greenhouse-event-id") {
            Some(v) if !v.as_bytes().trim_ascii().is_empty() => {
                let id = String::from_utf8_lossy(v.as_bytes().trim_ascii());
                id.chars().take(MAX_EVENT_ID).collect()
            }
            _ => store::body_event_id(&body),
        };
        let payload = doc.get("payload").cloned().unwrap_or_default();
        let put = store::put_event(
            self.dest.store.as_ref(),
            &self.dest.prefix,
            &event_id,
            action,
            Utc::now(),
            payload,
        );
        match tokio::time::timeout(STORE_TIMEOUT, put).await {
            Ok(Ok(key)) => {
                events::webhook_stored(&event_id, action, &key);
                json(StatusCode::OK, r#"{"status":"stored"}"#)
            }
            Ok(Err(store::WebhookStoreError::AlreadyStored(key))) => {
                events::webhook_duplicate(&event_id, &key);
                json(StatusCode::OK, r#"{"status":"stored"}"#)
            }
            Ok(Err(e)) => {
                events::webhook_store_failed(&event_id, &e);
                unavailable()
            }
            Err(_) => {
                events::webhook_store_failed(
                    &event_id,
                    &format!(
                        "the destination did not answer within {} s",
                        STORE_TIMEOUT.as_secs()
                    ),
                );
                unavailable()
            }
        }
    }

    /// A 4xx answer, logged.
    fn refuse(
        &self,
        status: StatusCode,
        reason: &str,
        remote: SocketAddr,
    ) -> Response<Full<Bytes>> {
        events::webhook_rejected(status.as_u16(), reason, &remote);
        let body = serde_json::json!({ "error": reason }).to_string();
        json(status, &body)
    }
}

fn unavailable() -> Response<Full<Bytes>> {
    let mut r = json(
        StatusCode::SERVICE_UNAVAILABLE,
        r#"{"error":"the event could not be stored; deliver it again"}"#,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
    r
}

fn json(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Reads a body of at most `max` bytes. Past `max` the rest is read and thrown away (up to a
/// bound), not kept: closing a socket with unread data makes the kernel send a reset, which
/// can destroy the 413 before the client reads it.
async fn read_body(mut body: Incoming, max: u64) -> Result<Bytes, BodyError> {
    let drain_limit = max.saturating_mul(4).max(16 << 20);
    if body.size_hint().lower() > drain_limit {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut buf = BytesMut::new();
        let mut seen: u64 = 0;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            seen = seen.saturating_add(data.len() as u64);
            if seen > drain_limit {
                break;
            }
            if seen <= max {
                buf.extend_from_slice(&data);
            }
        }
        if seen > max {
            Err(BodyError::TooLarge)
        } else {
            Ok(buf.freeze())
        }
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::TimedOut))
}
