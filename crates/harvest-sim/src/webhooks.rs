//! Signed webhook deliveries of the events `/_sim/mutate` produces, the way Greenhouse sends
//! them: `POST` with `Content-Type: application/json`, `Greenhouse-Event-ID` (one per event,
//! the same on every retry), `Signature: sha256 <hex HMAC-SHA256 of the exact body>` and
//! `User-Agent: Greenhouse-Webhooks-Sim`; the body escapes non-ASCII and `<>&` as `\uXXXX`,
//! as Greenhouse's does (its signature covers the escaped text).
//!
//! Contract: deliveries are asynchronous (one background task, `run`); first attempts go out
//! in event order, one request at a time; a non-2xx answer, a 10 s timeout or a connection
//! error is retried after each delay of `--webhook-retry-delays-ms` in turn, then given up.
//! The log of every event (`list`) is kept for the life of the process (`/_sim/reset` keeps
//! it). The secret is never logged, printed or served.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, watch};

use super::events::Event;
use super::rng::hash;

/// Greenhouse gives up on a request after this long (and counts it as failed).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to deliver.
pub struct Target {
    pub url: String,
    pub secret: String,
    pub retry_delays: Vec<Duration>,
}

struct Delivery {
    event_id: String,
    action: &'static str,
    body: String,
    attempts: u32,
    delivered: bool,
    last_status: Option<u16>,
    last_error: Option<String>,
    /// When the next attempt is due; None once delivered or given up.
    due: Option<Instant>,
    in_flight: bool,
}

/// The webhook queue and log of one simulator.
pub struct Hooks {
    target: Option<Target>,
    seed: u64,
    log: Mutex<Vec<Delivery>>,
    seq: AtomicU64,
    wake: Notify,
}

/// HMAC-SHA256 of `body` with `secret`, lowercase hex (the `Signature` header's value after
/// `sha256 `).
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compact JSON with every non-ASCII character and `<`, `>`, `&` written as `\uXXXX`
/// (UTF-16 units), like Greenhouse's bodies. Those characters occur only inside strings, so
/// escaping the serialised text is safe.
pub fn greenhouse_json(v: &Value) -> String {
    let raw = v.to_string();
    let mut out = String::with_capacity(raw.len() + 16);
    for ch in raw.chars() {
        if ch.is_ascii() && !matches!(ch, '<' | '>' | '&') {
            out.push(ch);
        } else {
            let mut units = [0u16; 2];
            for u in ch.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

impl Hooks {
    pub fn new(target: Option<Target>, seed: u64) -> Hooks {
        Hooks {
            target,
            seed,
            log: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Delivery>> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A UUID-shaped id, deterministic in (seed, event number).
    fn event_id(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::SeqCst);
        let (a, b) = (hash(&[self.seed, 0xE7E, n]), hash(&[self.seed, 0xE7F, n]));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xFFFF,
            a & 0xFFF,
            0x8000 | (b >> 48) & 0x3FFF,
            b & 0xFFFF_FFFF_FFFF
        )
    }

    /// Queues `events` for delivery (nothing happens without a webhook URL).
    pub fn enqueue(&self, events: Vec<Event>) {
        if self.target.is_none() || events.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut log = self.lock();
        for e in events {
            log.push(Delivery {
                event_id: self.event_id(),
                action: e.action,
                body: greenhouse_json(&e.body()),
                attempts: 0,
                delivered: false,
                last_status: None,
                last_error: None,
                due: Some(now),
                in_flight: false,
            });
        }
        drop(log);
        self.wake.notify_one();
    }

    /// Every event so far, oldest first.
    pub fn list(&self) -> Value {
        let log = self.lock();
        Value::Array(
            log.iter()
                .map(|d| {
                    json!({
                        "event_id": d.event_id,
                        "action": d.action,
                        "attempts": d.attempts,
                        "delivered": d.delivered,
                        "last_status": d.last_status,
                        "last_error": d.last_error,
                        "pending": d.due.is_some(),
                        "body": d.body,
                    })
                })
                .collect(),
        )
    }

    /// Waits until no delivery is in flight or due before `timeout` from now (or until the
    /// timeout passes), then answers `list`.
    pub async fn flush(&self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let busy = self
                .lock()
                .iter()
                .any(|d| d.in_flight || d.due.is_some_and(|t| t <= deadline));
            if !busy || Instant::now() >= deadline {
                return self.list();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The delivery worker: runs until `stop` fires.
    pub async fn run(self: std::sync::Arc<Self>, mut stop: watch::Receiver<bool>) {
        let Some(target) = self.target.as_ref() else {
            return;
        };
        // A TLS feature unified in from the workspace makes reqwest ask for a process-wide
        // rustls provider even for plain http://.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).build() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "Webhook client could not be built");
                return;
            }
        };
        loop {
            // The pending delivery due first (event order among equal due times).
            let next = {
                let log = self.lock();
                log.iter()
                    .enumerate()
                    .filter(|(_, d)| !d.in_flight)
                    .filter_map(|(i, d)| d.due.map(|t| (t, i)))
                    .min()
            };
            match next {
                Some((due, i)) if due <= Instant::now() => {
                    let (id, body) = {
                        let mut log = self.lock();
                        let d = &mut log[i];
                        d.in_flight = true;
                        (d.event_id.clone(), d.body.clone())
                    };
                    let send = client
                        .post(&target.url)
                        .header("Content-Type", "application/json")
                        .header("Greenhouse-Event-ID", &id)
                        .header(
                            "Signature",
                            format!(
                                "sha256 {}",
                                signature(target.secret.as_bytes(), body.as_bytes())
                            ),
                        )
                        .header("User-Agent", "Greenhouse-Webhooks-Sim")
                        .body(body)
                        .send();
                    let outcome = tokio::select! {
                        r = send => r,
                        _ = stop.changed() => return,
                    };
                    self.record(i, outcome, &target.retry_delays);
                }
                Some((due, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(due.into()) => {}
                        _ = self.wake.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
                None => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    fn record(
        &self,
        i: usize,
        outcome: Result<reqwest::Response, reqwest::Error>,
        delays: &[Duration],
    ) {
        let mut log = self.lock();
        let d = &mut log[i];
        d.in_flight = false;
        d.attempts += 1;
        let ok = match &outcome {
            Ok(r) => {
                d.last_status = Some(r.status().as_u16());
                d.last_error = None;
                r.status().is_success()
            }
            Err(e) => {
                d.last_status = None;
                d.last_error = Some(if e.is_timeout() {
                    "timeout".to_string()
                } else {
                    "connection error".to_string()
                });
                false
            }
        };
        if ok {
            d.delivered = true;
            d.due = None;
            tracing::info!(event_id = %d.event_id, action = d.action, attempts = d.attempts, "Webhook delivered");
        } else if let Some(delay) = delays.get(d.attempts as usize - 1) {
            d.due = Some(Instant::now() + *delay);
            tracing::warn!(event_id = %d.event_id, action = d.action, attempts = d.attempts, status = ?d.last_status, retry_in_ms = delay.as_millis() as u64, "Webhook delivery failed; will retry");
        } else {
            d.due = None;
            tracing::warn!(event_id = %d.event_id, action = d.action, attempts = d.attempts, status = ?d.last_status, "Webhook delivery failed; giving up");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_escape_like_greenhouse() {
        let v = json!({"content": "<p>héllo & 🤔</p>"});
        assert_eq!(
            greenhouse_json(&v),
            r#"{"content":"\u003cp\u003eh\u00e9llo \u0026 \ud83e\udd14\u003c/p\u003e"}"#
        );
        let back: Value = serde_json::from_str(&greenhouse_json(&v)).unwrap();
        assert_eq!(back, v);
    }
}
