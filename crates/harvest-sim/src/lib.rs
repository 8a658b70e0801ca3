//! `harvest-sim`: a faithful local simulator of the Greenhouse Harvest v3 API.
//!
//! Contract: an independent model of Harvest v3 built from `shared/ref/harvest-v3.md`
//! (§13 "Local simulator contract") and `harvest-v3-fields.txt` — it never reads the extractor's
//! stream declarations and depends on no code of the extractor (it is its own crate, so that it
//! cannot start to).  It serves `POST /token`, `GET /v3/<resource>` for 67
//! list resources, and a loopback control API under `/_sim`; with `--webhook-url` it also
//! sends Greenhouse-style signed webhooks for the deletes, merges and anonymizations of
//! `/_sim/mutate` (`events`, `webhooks`).  Data is deterministic in (seed, scale) and generated
//! on demand, so large scales start in seconds.
//!
//! Embedding: `start(SimConfig) → RunningSim` (bound to 127.0.0.1), `RunningSim::base_url`,
//! `RunningSim::shutdown`; [`Background`] runs one on its own thread and runtime (for callers that
//! are not async, such as tests); [`client::SimClient`] drives one over HTTP (tokens, pages, the
//! control API).  The `harvest-sim` binary is a thin wrapper around [`run`].

mod auth;
mod background;
pub mod bad;
mod cf;
mod cf_defs;
pub mod client;
mod control;
pub mod data;
pub mod events;
mod faults;
mod gen_interviews;
mod gen_jobs;
mod gen_misc;
mod gen_people;
pub mod json;
pub mod model;
pub mod mutate;
mod page;
pub mod query;
mod ratelimit;
mod rng;
mod rows;
mod server;
mod shared;
mod text;
mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;

pub use background::Background;
pub use faults::FaultKind;
pub use model::R as Resource;
pub use server::RunningSim;

/// Simulator configuration; also the `harvest-sim` command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "harvest-sim",
    version,
    about = "Local simulator of the Greenhouse Harvest v3 API"
)]
pub struct SimConfig {
    /// TCP port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Data seed: same seed + scale → byte-identical responses.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Data size multiplier (1 ≈ 2,000 candidates; fractional values allowed).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
    /// Requests per fixed 30 s window per credential on /v3 (0 = unlimited).
    #[arg(long, default_value_t = 75)]
    pub rate_limit: u32,
    /// Length of the /v3 rate-limit window in seconds.
    #[arg(long, default_value_t = 30)]
    pub rate_window: u64,
    /// Token requests per fixed window at /token (0 = unlimited).
    #[arg(long, default_value_t = 60)]
    pub token_rate_limit: u32,
    /// Length of the /token rate-limit window in seconds.
    #[arg(long, default_value_t = 60)]
    pub token_rate_window: u64,
    /// Fixed delay before each /v3 response body, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra delay per record in a /v3 response, in microseconds.
    #[arg(long, default_value_t = 0)]
    pub per_record_us: u64,
    /// OAuth client id accepted at /token.
    #[arg(long, default_value = "sim-client")]
    pub client_id: String,
    /// OAuth client secret accepted at /token.
    #[arg(long, default_value = "sim-secret")]
    pub client_secret: String,
    /// Resource whose `harvest:<resource>:list` scope is missing (403); repeatable.
    #[arg(long = "deny-scope")]
    pub deny_scope: Vec<String>,
    /// Access-token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub token_ttl: u64,
    /// Probability that a /v3 request fails (reproducible per seed and request number).
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fault kinds to draw from (comma list of
    /// 500,502,503,reset,truncate,slow,cursor_expired,repeat_cursor; the default is every kind
    /// but repeat_cursor, which makes a blind client loop).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "500,502,503,reset,truncate,slow,cursor_expired"
    )]
    pub fault_kinds: Vec<FaultKind>,
    /// Extra delay of a `slow` fault, in milliseconds.
    #[arg(long, default_value_t = 4000)]
    pub slow_ms: u64,
    /// Cursor lifetime in seconds (0 = cursors never expire).
    #[arg(long, default_value_t = 0)]
    pub cursor_ttl: u64,
    /// Rate-limit headers left out of `/v3` responses (comma list of limit,remaining,reset),
    /// as a proxy or an API change might; the limit is still enforced with 429s.
    #[arg(long, value_delimiter = ',')]
    pub omit_rate_headers: Vec<RateHeader>,
    /// Bad data injected into a resource's pages: `RES:KIND[:ARG]`, repeatable (kinds in the
    /// README: surrogate, no_id, text_id, garbage, nanos, no_offset, number_text, gzip_bomb,
    /// redirect).
    #[arg(long = "bad-record")]
    pub bad_record: Vec<bad::BadRecord>,
    /// Where `/_sim/mutate` sends Greenhouse-style webhooks for its deletes, merges and
    /// anonymizations (needs `--webhook-secret`).
    #[arg(long, value_name = "URL", requires = "webhook_secret")]
    pub webhook_url: Option<String>,
    /// Secret key for the webhooks' `Signature: sha256 <HMAC-SHA256 hex>` header (needs
    /// `--webhook-url`; never logged).
    #[arg(long, value_name = "SECRET", requires = "webhook_url")]
    pub webhook_secret: Option<WebhookSecret>,
    /// Delays before each retry of a failed webhook delivery, in milliseconds (comma list; one
    /// attempt plus one retry per delay). Greenhouse waits 1, 15, 60, 120, 240 and 480 minutes;
    /// the default is a compressed schedule for tests.
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        default_value = "1000,2000,4000,8000,16000,32000"
    )]
    pub webhook_retry_delays_ms: Vec<u64>,
}

/// A webhook secret: its `Debug` form is redacted, so printing a `SimConfig` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(pub String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(WebhookSecret(s.to_string()))
    }
}

/// One of the `X-RateLimit-*` headers (for `--omit-rate-headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RateHeader {
    Limit,
    Remaining,
    Reset,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig::parse_from(["harvest-sim"])
    }
}

/// Starts a simulator in the current Tokio runtime.
pub async fn start(config: SimConfig) -> std::io::Result<RunningSim> {
    server::start(Arc::new(config)).await
}

/// Binary entry point: start, print the base URL as the first stdout line, serve until
/// SIGINT/SIGTERM, then shut down gracefully.
pub async fn run(config: SimConfig) -> std::io::Result<()> {
    use std::io::Write as _;
    let sim = start(config).await?;
    // Handlers first: a supervisor may send SIGTERM as soon as it has read the URL, and a
    // signal that arrived before they existed would kill the process uncleanly.
    let stop = shutdown_signal();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", sim.base_url())?;
        out.flush()?;
    }
    tracing::info!(base_url = %sim.base_url(), "harvest-sim listening");
    stop.await;
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}

/// Registers the SIGINT/SIGTERM handlers now and returns a future that ends on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let int = signal(SignalKind::interrupt()).ok();
        let term = signal(SignalKind::terminate()).ok();
        async move {
            let int = async {
                match int {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let term = async {
                match term {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = int => {}
                _ = term => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Address helper for embedders.
pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}
