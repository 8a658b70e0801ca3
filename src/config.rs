//! Configuration: a file (JSON, or TOML by extension) + `GREENHOUSE_*` environment variables +
//! command-line flags, merged in that order of increasing precedence, then validated into a
//! [`Config`] before any request is made.
//!
//! Contract: every field of [`ConfigFile`] has a doc comment; `greenhouse-extract spec` prints the
//! JSON Schema generated from them and the README's configuration reference is generated from
//! that schema, so the comments are user documentation. Secrets are wrapped in [`Secret`], whose
//! `Debug`/`Display` never show the value.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::Error;
use crate::registry::{FieldType, Registry, Stream};
use crate::secrets::{Secret, quote};

pub const DEFAULT_API_URL: &str = "https://harvest.greenhouse.io";
pub const DEFAULT_TOKEN_URL: &str = "https://auth.greenhouse.io/token";
pub const DEFAULT_DESTINATION: &str = "./greenhouse-data";
/// At most this many slices per backfill window by default (`backfill_slices`).
pub const DEFAULT_BACKFILL_SLICES: usize = 8;
/// Aim for at least this many pages per slice by default (`backfill_slice_pages`): the last page
/// of each slice is partly filled and a sliced window costs up to 5 more requests, so this keeps
/// the overhead of a sliced window under about 1 %. Owned here, with the other defaults, so the
/// configuration never reaches up into the engine for a value.
pub const DEFAULT_BACKFILL_SLICE_PAGES: u64 = 200;
/// The longest `lookback` accepted. A lookback re-reads late commits near the bookmark; one
/// that reaches back years (or before 1970, which the API refuses with a 422 on every run) is
/// a backfill in disguise: use `start_date` on a fresh state instead.
pub const MAX_LOOKBACK: Duration = Duration::from_secs(365 * 86_400);
/// Greenhouse holds no record updated before this instant, and refuses filters before it.
pub const EARLIEST: DateTime<Utc> = DateTime::UNIX_EPOCH;
/// Default bound on a decompressed response body: a 500-record page of the widest stream is a
/// few MiB, so this leaves ample room while a gzip bomb stops long before memory does.
pub const DEFAULT_MAX_PAGE_BYTES: u64 = 64 << 20;
/// Default `stall_timeout`: above the 15 minutes of `Retry-After` a page may wait in all, and
/// above its transient retries (9 attempts of at most 2 minutes each, plus backoff).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// `max_page_bytes` below this would refuse ordinary pages.
pub const MIN_MAX_PAGE_BYTES: u64 = 1 << 20;

/// Environment variables read by every command (fixed names: scripts rely on them).
pub const ENV_CLIENT_ID: &str = "GREENHOUSE_CLIENT_ID";
pub const ENV_CLIENT_SECRET: &str = "GREENHOUSE_CLIENT_SECRET";
pub const ENV_ACCESS_TOKEN: &str = "GREENHOUSE_ACCESS_TOKEN";
pub const ENV_SUB: &str = "GREENHOUSE_SUB";
pub const ENV_API_URL: &str = "GREENHOUSE_API_URL";
pub const ENV_TOKEN_URL: &str = "GREENHOUSE_TOKEN_URL";
pub const ENV_DESTINATION: &str = "GREENHOUSE_DESTINATION";
pub const ENV_HASH_SALT: &str = "GREENHOUSE_HASH_SALT";
pub const ENV_WEBHOOK_SECRET: &str = "GREENHOUSE_WEBHOOK_SECRET";

/// Where `webhooks serve` listens by default: loopback, behind a reverse proxy that terminates
/// TLS (Greenhouse calls only https:// endpoints).
pub const DEFAULT_WEBHOOK_LISTEN: &str = "127.0.0.1:8080";
/// Default bound on a webhook request body: Greenhouse's delete, merge and anonymize events
/// are a few KiB.
pub const DEFAULT_WEBHOOK_MAX_BODY_BYTES: u64 = 1 << 20;
/// Accepted range of `webhook_max_body_bytes`.
pub const WEBHOOK_BODY_BYTES_RANGE: std::ops::RangeInclusive<u64> = 1024..=64 << 20;
/// Default number of webhook requests handled at once.
pub const DEFAULT_WEBHOOK_MAX_CONCURRENCY: usize = 16;

/// The greenhouse-extract configuration file (JSON, or TOML when the file name ends in `.toml`).
/// Every key is optional here; environment variables and flags fill in or override values.
/// Unknown keys are rejected so that a typo never silently falls back to a default.
#[derive(Debug, Default, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// OAuth client id of a "Harvest V3 (OAuth)" API credential (Dev Center → API Credentials).
    /// Environment: `GREENHOUSE_CLIENT_ID`.
    pub client_id: Option<String>,
    /// OAuth client secret of that credential. Prefer the environment variable
    /// `GREENHOUSE_CLIENT_SECRET` over writing it into a file.
    pub client_secret: Option<String>,
    /// Optional numeric Greenhouse user id to act as (the token's `sub`). It must be a Site Admin.
    /// Omit it to act as the credential's Integration Service User. Environment: `GREENHOUSE_SUB`.
    pub sub: Option<u64>,
    /// A pre-minted bearer access token, used instead of client credentials (it cannot be
    /// refreshed: a run fails with the authentication exit code when it expires).
    /// Environment: `GREENHOUSE_ACCESS_TOKEN`.
    pub access_token: Option<String>,
    /// Harvest API base URL; requests go to `<api_url>/v3/<resource>`. `http://` is accepted only
    /// for loopback addresses (the bundled simulator). Environment: `GREENHOUSE_API_URL`.
    /// Default: `https://harvest.greenhouse.io`.
    pub api_url: Option<String>,
    /// OAuth token endpoint. Environment: `GREENHOUSE_TOKEN_URL`.
    /// Default: `https://auth.greenhouse.io/token`.
    pub token_url: Option<String>,
    /// Where Parquet files and state go: a local folder (`./greenhouse-data`, `file:///abs/dir`),
    /// `s3://bucket/prefix` (AWS or any S3-compatible server via `AWS_ENDPOINT`),
    /// `gs://bucket/prefix`, or `az://container/prefix`. Environment: `GREENHOUSE_DESTINATION`.
    /// Default: `./greenhouse-data`.
    pub destination: Option<String>,
    /// First-run lower bound for incremental streams: `YYYY-MM-DD` or an RFC 3339 timestamp,
    /// between 1970 and now (a date in the future would commit an empty window and move every
    /// bookmark to now, skipping the history for good). Omit it to read everything.
    pub start_date: Option<String>,
    /// How far each incremental window reaches back before the saved bookmark, to catch records
    /// committed late: `<n>s`, `<n>m`, `<n>h` or `<n>d`, at most `365d`. Default: `1h`.
    pub lookback: Option<String>,
    /// Streams to read (names as listed by `greenhouse-extract discover`). Default: every
    /// non-sensitive stream.
    pub streams: Option<Vec<String>>,
    /// Also read the sensitive streams (EEOC and demographics) when no explicit `streams` list
    /// names them. Default: false.
    pub include_sensitive: Option<bool>,
    /// How many streams (or slices of a stream) are read at the same time. All of them share
    /// one rate budget; each reads its pages one after the other, so this many are needed to
    /// keep the budget spent when the API is slow (3 requests/s at 1.5 s a page needs 5).
    /// Default: 6.
    pub concurrency: Option<usize>,
    /// Cut a large backfill window (a first run, or a long gap) into at most this many
    /// `updated_at` slices read concurrently; each finished slice is committed, so an
    /// interrupted backfill resumes from the slices that are done. 1 disables slicing.
    /// Default: 8.
    pub backfill_slices: Option<usize>,
    /// Slice a backfill window only when it is estimated at more than this many pages per slice
    /// (and at least two slices). Smaller windows are read as one chain, which costs no extra
    /// request. Default: 200.
    pub backfill_slice_pages: Option<u64>,
    /// Upper bound on requests in flight at once across all streams (hides API latency).
    /// Default: 8.
    pub max_in_flight: Option<usize>,
    /// Use at most this many requests per rate-limit window, even if Greenhouse
    /// allows more (leave room for other integrations on the same credential). Default: the
    /// limit Greenhouse reports in `X-RateLimit-Limit`.
    pub max_requests_per_window: Option<u32>,
    /// Records per page (1–500). Default: 500, the most the API allows.
    pub per_page: Option<u32>,
    /// Largest response body accepted, in bytes, after decompression (at least 1 MiB). A page
    /// beyond it fails its stream with a clear error instead of being inflated whole (a gzip
    /// bomb, or records far larger than usual: lower `per_page` then). Default: 67108864 (64 MiB).
    pub max_page_bytes: Option<u64>,
    /// Memory the writers of a sync may hold at once, in bytes: the raw Parquet files open at
    /// once (`concurrency` of them; each holds a 5 MiB upload buffer and a row group in
    /// progress) and the current-table merges (two at a time; each holds a round of changed
    /// rows). The open files get up to half (each row group what its upload buffer leaves of
    /// its share, 1 to 8 MiB), the merges the rest. A larger budget makes larger row groups
    /// and fewer merge rounds, not a faster read; a budget too small for `concurrency` is
    /// refused. The pages being read and the runtime come on top. Default: 67108864 (64 MiB),
    /// or what `concurrency` needs when that is more (above 10).
    pub writer_memory_bytes: Option<u64>,
    /// Zstandard level of the raw Parquet files (1–22). Higher levels make somewhat smaller
    /// files for more CPU: on the simulator's candidates, level 3 wrote 3 % fewer bytes than
    /// level 1 for 4 % more instructions of a sync. The current-state tables, rewritten by
    /// every merge, always use level 1. Default: 1.
    pub zstd_level: Option<i32>,
    /// Longest a `sync` may run (`<n>s`, `<n>m`, `<n>h`, e.g. `45m`), so a scheduled run ends
    /// before the next one starts. Shortly before it (a tenth of it, at most a minute) no new
    /// work starts, work in flight is interrupted (rate-limit and `Retry-After` waits too),
    /// what finished is committed and the run exits with the partial code (3); the next run
    /// resumes. `sync --deadline` overrides it. Default: no limit.
    pub max_run_time: Option<String>,
    /// Longest a unit of work (a stream's window, or one slice of it) may go without receiving a
    /// page (`<n>ms`, `<n>s`, `<n>m`, `<n>h`): past it the stream fails with an error naming
    /// this setting, instead of waiting for ever on a server that accepted the request and then
    /// stopped answering (or trickles bytes, which no request timeout catches). Longer than every
    /// bounded wait of a page (15 minutes of `Retry-After` at most, transient retries), so it only
    /// fires on a real stall. Default: `30m`.
    pub stall_timeout: Option<String>,
    /// Columns never written, per stream, e.g. `{"candidates": ["phone_numbers", "addresses"]}`.
    /// Applied before anything is written. The primary key and the cursor cannot be excluded.
    pub exclude_columns: Option<BTreeMap<String, Vec<String>>>,
    /// Columns replaced by the hex SHA-256 of `hash_salt`, a zero byte and the value, per stream,
    /// e.g. `{"users": ["primary_email"]}` (string, JSON and integer columns). Lets analysts join
    /// and count on a column without seeing it.
    pub hash_columns: Option<BTreeMap<String, Vec<String>>>,
    /// Salt for `hash_columns` (required with them). Keep it secret and stable: a new salt changes
    /// every digest. Environment: `GREENHOUSE_HASH_SALT`.
    pub hash_salt: Option<String>,
    /// Run on a destination that ignores conditional writes (`If-None-Match`), e.g. some older
    /// S3-compatible servers. Each run checks that the store refuses to create an object twice;
    /// where it does not, the run is refused (exit 5), because then two runs on one prefix
    /// could both proceed and overwrite each other's state. Set this only if you guarantee that
    /// at most one run ever works on the prefix at a time; the run then goes on with a warning.
    /// Default: false.
    pub single_writer: Option<bool>,
    /// Run `purge` after every sync that ends with the success or partial code: the rows of
    /// deleted and anonymised candidates, and of their cascaded children, are erased from the
    /// raw history files (the files holding them are rewritten), so that no object under the
    /// destination keeps their data. Default: false (run `greenhouse-extract purge` yourself).
    pub purge_after_sync: Option<bool>,
    /// What a sync writes: `current` (the default) writes the raw history and, per stream, a
    /// current-state Delta Lake table under `<destination>/current/<stream>/` (one row per live
    /// record, deletes applied, merged by id after every commit); `raw` writes only the raw
    /// history. `greenhouse-extract rebuild` builds the current tables from the raw history.
    pub tables: Option<String>,
    /// How long a current table keeps the data files a merge replaced, so that time travel and
    /// readers still on an older version work (`<n>s`, `<n>m`, `<n>h`, `<n>d`); older ones are
    /// vacuumed at the end of each sync. `purge` vacuums at once, whatever this says, so that
    /// erased data leaves the tables' history too. Default: `7d`.
    pub vacuum_retention: Option<String>,
    /// Send OpenLineage run events (START, then COMPLETE or FAIL) for each `sync`, whose outputs
    /// are the streams' tables (namespace: the destination): `http(s)://host[:port]` posts each
    /// event to `<url>/api/v1/lineage` (Marquez, or any OpenLineage HTTP endpoint), a
    /// `file:PATH` appends them as JSON lines. A failed delivery is a warning, never a failed
    /// run. The parent run comes from `OPENLINEAGE_PARENT_ID` and `OPENLINEAGE_ROOT_PARENT_ID`
    /// (`namespace/job/run-id`) when set. Default: no events.
    pub openlineage_url: Option<String>,
    /// Find hard-deleted records by comparing the ids the destination holds with a listing of
    /// the live ids (`fields=id`, 500 per request, under the same rate budget), and write a
    /// tombstone for each id that is gone (deletes of children follow through the declared
    /// cascades at no request cost). Turn it off when Greenhouse webhooks deliver the deletes
    /// (`webhooks serve`). `sync --reconcile` forces it for a run. Default: true.
    pub reconcile: Option<bool>,
    /// A stream holding more than `reconcile_every_run_below` ids is reconciled at most this
    /// often (`<n>s`, `<n>m`, `<n>h`, `<n>d`); smaller streams are reconciled on every run.
    /// Default: `24h`.
    pub reconcile_interval: Option<String>,
    /// Streams with at most this many ids (two pages of ids) are reconciled on every run.
    /// Default: 1000.
    pub reconcile_every_run_below: Option<u64>,
    /// Secret key of the Greenhouse web hooks (Configure → Dev Center → Web Hooks, the same key
    /// on every hook), for `webhooks serve`: a request whose `Signature` header is not the
    /// HMAC-SHA256 of its body with this key is refused (401) and nothing is stored. Required by
    /// `webhooks serve`. Prefer the environment variable `GREENHOUSE_WEBHOOK_SECRET` over
    /// writing it into a file.
    pub webhook_secret: Option<String>,
    /// Address `webhooks serve` listens on, `IP:port` (e.g. `0.0.0.0:8080` in a container,
    /// `[::]:8443`); `--listen` overrides. Default: `127.0.0.1:8080`, for a reverse proxy on the
    /// same host that terminates TLS.
    pub webhook_listen: Option<String>,
    /// PEM certificate chain with which `webhooks serve` answers HTTPS itself (together with
    /// `webhook_tls_key`; `--tls-cert` overrides). Greenhouse calls only https:// endpoints:
    /// without a certificate, put a reverse proxy that terminates TLS in front. Default: plain
    /// HTTP.
    pub webhook_tls_cert: Option<String>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of `webhook_tls_cert` (`--tls-key` overrides).
    pub webhook_tls_key: Option<String>,
    /// Largest webhook request body `webhooks serve` accepts, in bytes (1024 to 67108864): a
    /// larger one is refused with 413, without being held in memory. Default: 1048576 (1 MiB).
    pub webhook_max_body_bytes: Option<u64>,
    /// At most this many webhook requests are handled at once by `webhooks serve` (1 to 1024);
    /// further connections wait to be accepted. Default: 16.
    pub webhook_max_concurrency: Option<usize>,
}

/// How requests are authenticated.
#[derive(Debug, Clone)]
pub enum Credentials {
    ClientCredentials {
        client_id: String,
        client_secret: Secret,
        sub: Option<u64>,
    },
    AccessToken(Secret),
}

/// One stream's column policy: columns never written, and columns replaced by a salted digest
/// (what applying it to batches and records means is the `privacy` module's).
#[derive(Debug, Clone, Default)]
pub struct ColumnPolicy {
    pub exclude: BTreeSet<String>,
    pub hash: BTreeSet<String>,
    pub salt: Option<Secret>,
}

/// Values given on the command line; they override the file and the environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub destination: Option<String>,
    pub streams: Option<Vec<String>>,
    /// Streams (names or globs) taken out of the selection (`--exclude-streams`).
    pub exclude_streams: Vec<String>,
    pub include_sensitive: bool,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub credentials: Credentials,
    pub api_url: Url,
    pub token_url: Url,
    pub destination: String,
    pub start_date: Option<DateTime<Utc>>,
    pub lookback: Duration,
    /// Explicitly selected stream names (validated against the registry), or `None` = default set.
    pub streams: Option<Vec<String>>,
    pub include_sensitive: bool,
    pub concurrency: usize,
    pub backfill_slices: usize,
    pub backfill_slice_pages: u64,
    pub max_in_flight: usize,
    pub max_requests_per_window: Option<u32>,
    pub per_page: u32,
    pub max_page_bytes: u64,
    /// The writers' memory budget, split between the raw files and the merges.
    pub writer_memory: crate::memory::WriterMemory,
    /// Zstandard level of the raw Parquet files (see `ConfigFile::zstd_level`).
    pub zstd_level: i32,
    /// Longest a sync may run (see `ConfigFile::max_run_time`).
    pub max_run_time: Option<Duration>,
    /// Longest wait for one page before its stream fails (see `ConfigFile::stall_timeout`).
    pub stall_timeout: Duration,
    /// Column exclusion and hashing per stream (streams without a policy are absent).
    pub policies: BTreeMap<String, ColumnPolicy>,
    /// Go on (with a warning) on a destination that ignores conditional writes.
    pub single_writer: bool,
    /// Run `purge` after each successful or partial sync.
    pub purge_after_sync: bool,
    /// Merge every commit into the streams' current-state tables (`tables = "current"`).
    pub current_tables: bool,
    /// Replaced data files of the current tables older than this are vacuumed.
    pub vacuum_retention: Duration,
    /// Where OpenLineage events go (`None`: nowhere).
    pub openlineage: Option<LineageTarget>,
    /// When ids are reconciled (see `ConfigFile::reconcile`).
    pub reconcile: ReconcilePolicy,
}

/// Values given to `webhooks serve` on the command line; they override the file.
#[derive(Debug, Default, Clone)]
pub struct WebhookOverrides {
    pub destination: Option<String>,
    pub listen: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The validated settings of `webhooks serve`.
#[derive(Debug, Clone)]
pub struct WebhookServer {
    /// Where accepted events are stored (the destination `sync` reads them from).
    pub destination: String,
    pub listen: SocketAddr,
    /// `None`: plain HTTP (behind a reverse proxy that terminates TLS).
    pub tls: Option<TlsFiles>,
    pub secret: Secret,
    pub max_body_bytes: u64,
    pub max_concurrency: usize,
    /// The actions some declaration applies (`deletes.webhooks`/`refresh`); any other signed
    /// event is answered 200 and not stored, so that nothing piles up that no sync would
    /// apply. Empty: store every action.
    pub actions: BTreeSet<String>,
}

/// A PEM certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// When a stream's ids are compared with a listing of the live ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcilePolicy {
    pub enabled: bool,
    /// Streams above `every_run_below` ids: at most this often.
    pub interval: Duration,
    pub every_run_below: u64,
}

impl Default for ReconcilePolicy {
    fn default() -> Self {
        ReconcilePolicy {
            enabled: true,
            interval: Duration::from_secs(24 * 3600),
            every_run_below: 1000,
        }
    }
}

/// Where OpenLineage run events are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineageTarget {
    /// POSTed to `<url>/api/v1/lineage`.
    Http(Url),
    /// Appended to this file, one JSON event per line.
    File(PathBuf),
}

fn lineage_target(raw: &str) -> Result<LineageTarget, Error> {
    let raw = raw.trim();
    let bad = |why: &str| {
        Error::Config(format!(
            "openlineage_url {}: {why}. Give an http(s):// URL (events go to <url>/api/v1/lineage) or file:PATH (JSON lines).",
            crate::secrets::clip(raw, 200)
        ))
    };
    if let Some(path) = raw.strip_prefix("file:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(bad("names no file"));
        }
        return Ok(LineageTarget::File(PathBuf::from(path)));
    }
    let url = Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad("is neither http(s):// with a host nor file:"));
    }
    Ok(LineageTarget::Http(url))
}

impl ConfigFile {
    /// Reads a config file: TOML when the name ends in `.toml`, JSON otherwise.
    pub fn load(path: &Path) -> Result<ConfigFile, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the config file {}: {e}. Check the --config path.",
                path.display()
            ))
        })?;
        let is_toml = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        if is_toml {
            toml::from_str(&text).map_err(|e| {
                Error::Config(format!(
                    "the config file {} is not valid: {}. Fix the file (run `greenhouse-extract spec` for the accepted keys).",
                    path.display(),
                    toml_error(&text, &e)
                ))
            })
        } else {
            serde_json::from_str(&text).map_err(|e| {
                Error::Config(format!(
                    "the config file {} is not valid JSON for greenhouse-extract: {}. Fix the file (run `greenhouse-extract spec` for the accepted keys).",
                    path.display(),
                    name_the_bad_key(&text).unwrap_or_else(|| e.to_string())
                ))
            })
        }
    }

    /// Loads the config file (if any) and applies the process environment: what every command
    /// starts from.
    pub fn load_with_env(path: Option<&Path>) -> Result<ConfigFile, Error> {
        let env = |k: &str| std::env::var(k).ok();
        // Secrets from the environment are registered before the file is even read, so an error
        // about the file (or a variable) can never quote them.
        let mut from_env = ConfigFile::default();
        for (key, slot) in [
            (ENV_CLIENT_ID, &mut from_env.client_id),
            (ENV_CLIENT_SECRET, &mut from_env.client_secret),
            (ENV_ACCESS_TOKEN, &mut from_env.access_token),
            (ENV_HASH_SALT, &mut from_env.hash_salt),
            (ENV_WEBHOOK_SECRET, &mut from_env.webhook_secret),
        ] {
            *slot = env(key);
        }
        from_env.register_secrets();
        let mut file = match path {
            Some(p) => ConfigFile::load(p)?,
            None => ConfigFile::default(),
        };
        file.register_secrets();
        file.apply_env(&env)?;
        file.register_secrets();
        Ok(file)
    }

    /// Fills unset values from `GREENHOUSE_*` environment variables (read through `env`, so tests
    /// need not touch the process environment). An environment variable overrides the file.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<(), Error> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get(ENV_CLIENT_ID) {
            self.client_id = Some(v);
        }
        if let Some(v) = get(ENV_CLIENT_SECRET) {
            self.client_secret = Some(v);
        }
        if let Some(v) = get(ENV_ACCESS_TOKEN) {
            self.access_token = Some(v);
        }
        if let Some(v) = get(ENV_SUB) {
            self.sub = Some(v.trim().parse().map_err(|_| {
                Error::Config(format!(
                    "{ENV_SUB} must be a numeric Greenhouse user id, got {}",
                    quote(&v)
                ))
            })?);
        }
        if let Some(v) = get(ENV_API_URL) {
            self.api_url = Some(v);
        }
        if let Some(v) = get(ENV_TOKEN_URL) {
            self.token_url = Some(v);
        }
        if let Some(v) = get(ENV_DESTINATION) {
            self.destination = Some(v);
        }
        if let Some(v) = get(ENV_HASH_SALT) {
            self.hash_salt = Some(v);
        }
        if let Some(v) = get(ENV_WEBHOOK_SECRET) {
            self.webhook_secret = Some(v);
        }
        Ok(())
    }

    /// Registers every secret this file holds with the output scrubber
    /// ([`crate::secrets::register`]): the client secret, the HTTP Basic encoding it is
    /// sent in, the access token, the hash salt and the webhook secret. Called as soon as values are read, before
    /// anything can fail and print a message that might quote one of them.
    pub fn register_secrets(&self) {
        use base64::Engine;
        for s in [
            &self.client_secret,
            &self.access_token,
            &self.hash_salt,
            &self.webhook_secret,
        ]
        .into_iter()
        .flatten()
        {
            crate::secrets::register(s);
        }
        if let (Some(id), Some(secret)) = (&self.client_id, &self.client_secret) {
            for id in [id.as_str(), id.trim()] {
                crate::secrets::register(
                    &base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")),
                );
            }
        }
    }

    /// Validates everything, resolving stream names against `registry`.
    /// The column policies alone (for commands that need no credentials, e.g. `rebuild`).
    pub fn column_policies(
        &self,
        registry: &Registry,
    ) -> Result<BTreeMap<String, ColumnPolicy>, Error> {
        column_policies(
            self.exclude_columns.clone().unwrap_or_default(),
            self.hash_columns.clone().unwrap_or_default(),
            self.hash_salt.clone(),
            registry,
        )
    }

    pub fn validate(self, overrides: &Overrides, registry: &Registry) -> Result<Config, Error> {
        let credentials = match (self.access_token, self.client_id, self.client_secret) {
            (Some(token), _, _) => Credentials::AccessToken(Secret::new(token)),
            (None, Some(id), Some(secret)) if !id.trim().is_empty() && !secret.is_empty() => {
                Credentials::ClientCredentials {
                    client_id: id.trim().to_string(),
                    client_secret: Secret::new(secret),
                    sub: self.sub,
                }
            }
            (None, id, secret) => {
                let missing = match (id.is_some(), secret.is_some()) {
                    (false, false) => "no client id and no client secret",
                    (false, true) => "no client id",
                    _ => "no client secret",
                };
                return Err(Error::Config(format!(
                    "{missing} given. Set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} (or client_id/client_secret in the config file) to the \"Harvest V3 (OAuth)\" credential from Greenhouse Dev Center → API Credentials, or provide access_token."
                )));
            }
        };
        let api_url = parse_http_url(
            "api_url",
            self.api_url.as_deref().unwrap_or(DEFAULT_API_URL),
        )?;
        let token_url = parse_http_url(
            "token_url",
            self.token_url.as_deref().unwrap_or(DEFAULT_TOKEN_URL),
        )?;
        let destination = resolve_destination(overrides.destination.clone(), self.destination)?;
        let start_date = self
            .start_date
            .as_deref()
            .map(|raw| parse_start_date(raw, Utc::now()))
            .transpose()?;
        let lookback = parse_lookback(self.lookback.as_deref().unwrap_or("1h"))?;
        let include_sensitive =
            overrides.include_sensitive || self.include_sensitive.unwrap_or(false);
        let mut streams = overrides.streams.clone().or(self.streams);
        if let Some(names) = &streams {
            validate_stream_names(names, registry)?;
            streams = Some(expand_stream_names(names, registry, include_sensitive));
        }
        if !overrides.exclude_streams.is_empty() {
            streams = Some(exclude_streams(
                streams,
                &overrides.exclude_streams,
                include_sensitive,
                registry,
            )?);
        }
        let concurrency = self.concurrency.unwrap_or(6);
        if concurrency == 0 || concurrency > 64 {
            return Err(Error::config("concurrency must be between 1 and 64"));
        }
        let backfill_slices = self.backfill_slices.unwrap_or(DEFAULT_BACKFILL_SLICES);
        if backfill_slices == 0 || backfill_slices > 64 {
            return Err(Error::config(
                "backfill_slices must be between 1 and 64 (1 disables slicing)",
            ));
        }
        let backfill_slice_pages = self
            .backfill_slice_pages
            .unwrap_or(DEFAULT_BACKFILL_SLICE_PAGES);
        if backfill_slice_pages == 0 {
            return Err(Error::config(
                "backfill_slice_pages must be at least 1 (use backfill_slices = 1 to turn slicing off)",
            ));
        }
        let max_run_time = self
            .max_run_time
            .as_deref()
            .map(parse_max_run_time)
            .transpose()
            .map_err(|e| Error::Config(format!("max_run_time: {e}")))?;
        let stall_timeout = match self.stall_timeout.as_deref() {
            None => DEFAULT_STALL_TIMEOUT,
            Some(raw) => match parse_duration(raw) {
                Ok(d) if d.is_zero() => {
                    return Err(Error::config(format!(
                        "stall_timeout: {raw:?} is no time at all; omit it for the default (30m)"
                    )));
                }
                Ok(d) => d,
                Err(e) => return Err(Error::Config(format!("stall_timeout: {e}"))),
            },
        };
        let max_in_flight = self.max_in_flight.unwrap_or(8);
        if max_in_flight == 0 || max_in_flight > 256 {
            return Err(Error::config("max_in_flight must be between 1 and 256"));
        }
        if self.max_requests_per_window == Some(0) {
            return Err(Error::config(
                "max_requests_per_window must be at least 1 (omit it to use the limit Greenhouse reports)",
            ));
        }
        let per_page = self.per_page.unwrap_or(500);
        if !(1..=500).contains(&per_page) {
            return Err(Error::config(format!(
                "per_page must be between 1 and 500, got {per_page}"
            )));
        }
        let max_page_bytes = self.max_page_bytes.unwrap_or(DEFAULT_MAX_PAGE_BYTES);
        if max_page_bytes < MIN_MAX_PAGE_BYTES {
            return Err(Error::config(format!(
                "max_page_bytes must be at least {MIN_MAX_PAGE_BYTES} (1 MiB), got {max_page_bytes}"
            )));
        }
        let upload = crate::sink::SinkConfig::default().upload_buffer_bytes;
        let writer_memory = match self.writer_memory_bytes {
            None => crate::memory::WriterMemory::default_for(concurrency, upload),
            Some(total) => crate::memory::WriterMemory::split(total, concurrency, upload)
                .map_err(Error::Config)?,
        };
        let zstd_level = self.zstd_level.unwrap_or(crate::sink::DEFAULT_ZSTD_LEVEL);
        crate::sink::zstd_level(zstd_level).map_err(Error::Config)?;
        let defaults = ReconcilePolicy::default();
        let reconcile = ReconcilePolicy {
            enabled: self.reconcile.unwrap_or(defaults.enabled),
            interval: match self.reconcile_interval.as_deref() {
                None => defaults.interval,
                Some(raw) => parse_duration(raw)
                    .map_err(|e| Error::Config(format!("reconcile_interval: {e}")))?,
            },
            every_run_below: self
                .reconcile_every_run_below
                .unwrap_or(defaults.every_run_below),
        };
        let openlineage = self
            .openlineage_url
            .as_deref()
            .map(lineage_target)
            .transpose()?;
        let policies = column_policies(
            self.exclude_columns.unwrap_or_default(),
            self.hash_columns.unwrap_or_default(),
            self.hash_salt,
            registry,
        )?;
        Ok(Config {
            policies,
            credentials,
            api_url,
            token_url,
            destination,
            start_date,
            lookback,
            streams,
            include_sensitive,
            concurrency,
            backfill_slices,
            backfill_slice_pages,
            max_in_flight,
            max_requests_per_window: self.max_requests_per_window,
            per_page,
            max_page_bytes,
            writer_memory,
            zstd_level,
            max_run_time,
            stall_timeout,
            single_writer: self.single_writer.unwrap_or(false),
            purge_after_sync: self.purge_after_sync.unwrap_or(false),
            vacuum_retention: match self.vacuum_retention.as_deref() {
                None => Duration::from_secs(7 * 24 * 3600),
                Some(raw) => parse_duration(raw)
                    .map_err(|e| Error::Config(format!("vacuum_retention: {e}")))?,
            },
            current_tables: match self.tables.as_deref() {
                None | Some("current") => true,
                Some("raw") => false,
                Some(other) => {
                    return Err(Error::Config(format!(
                        "tables = {other:?}: use \"current\" (raw history and current-state tables, the default) or \"raw\" (raw history only)"
                    )));
                }
            },
            openlineage,
            reconcile,
        })
    }
}

impl ConfigFile {
    /// Validates what `webhooks serve` needs: the destination, the webhook secret and the
    /// `webhook_*` settings (no Greenhouse API credentials: the receiver never calls the API).
    pub fn validate_webhooks(self, overrides: &WebhookOverrides) -> Result<WebhookServer, Error> {
        let destination = resolve_destination(overrides.destination.clone(), self.destination)?;
        let secret = match self.webhook_secret {
            Some(s) if !s.is_empty() => Secret::new(s),
            _ => {
                return Err(Error::Config(format!(
                    "no webhook secret given. Set {ENV_WEBHOOK_SECRET} (or webhook_secret in the config file) to the secret key of your Greenhouse web hooks (Configure → Dev Center → Web Hooks)."
                )));
            }
        };
        let raw_listen = overrides
            .listen
            .clone()
            .or(self.webhook_listen)
            .unwrap_or_else(|| DEFAULT_WEBHOOK_LISTEN.to_string());
        let listen: SocketAddr = raw_listen.trim().parse().map_err(|_| {
            Error::Config(format!(
                "webhook listen address {} is not IP:port. Use e.g. 127.0.0.1:8080 (behind a reverse proxy), 0.0.0.0:8080 (every IPv4 interface) or [::]:8443.",
                quote(&raw_listen)
            ))
        })?;
        let cert = overrides
            .tls_cert
            .clone()
            .or(self.webhook_tls_cert.map(PathBuf::from));
        let key = overrides
            .tls_key
            .clone()
            .or(self.webhook_tls_key.map(PathBuf::from));
        let tls = match (cert, key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(Error::config(
                    "a TLS certificate needs its key and a key its certificate: give both --tls-cert and --tls-key (webhook_tls_cert and webhook_tls_key), or neither for plain HTTP behind a reverse proxy.",
                ));
            }
        };
        let max_body_bytes = self
            .webhook_max_body_bytes
            .unwrap_or(DEFAULT_WEBHOOK_MAX_BODY_BYTES);
        if !WEBHOOK_BODY_BYTES_RANGE.contains(&max_body_bytes) {
            return Err(Error::config(format!(
                "webhook_max_body_bytes must be between {} and {}, got {max_body_bytes}",
                WEBHOOK_BODY_BYTES_RANGE.start(),
                WEBHOOK_BODY_BYTES_RANGE.end()
            )));
        }
        let max_concurrency = self
            .webhook_max_concurrency
            .unwrap_or(DEFAULT_WEBHOOK_MAX_CONCURRENCY);
        if !(1..=1024).contains(&max_concurrency) {
            return Err(Error::config(format!(
                "webhook_max_concurrency must be between 1 and 1024, got {max_concurrency}"
            )));
        }
        Ok(WebhookServer {
            destination,
            listen,
            tls,
            secret,
            max_body_bytes,
            max_concurrency,
            actions: BTreeSet::new(),
        })
    }
}

/// The destination from the command line, else the file or environment, else the default.
fn resolve_destination(
    from_flag: Option<String>,
    from_file: Option<String>,
) -> Result<String, Error> {
    let destination = from_flag
        .or(from_file)
        .unwrap_or_else(|| DEFAULT_DESTINATION.to_string());
    if destination.trim().is_empty() {
        return Err(Error::config(
            "the destination is empty. Give a folder or a URL such as s3://bucket/prefix.",
        ));
    }
    Ok(destination)
}

impl Config {
    /// The streams this run reads, sorted by name. Without an explicit list: every
    /// non-sensitive stream, plus the sensitive ones if opted in. Naming a sensitive stream
    /// explicitly still requires the opt-in, so candidate demographics are never read by
    /// accident (a copied stream list, a typo in a config template).
    pub fn selected<'r>(&self, registry: &'r Registry) -> Result<Vec<&'r Stream>, Error> {
        match &self.streams {
            Some(names) => {
                let mut out: Vec<&Stream> = Vec::new();
                for n in names {
                    let s = registry
                        .get(n)
                        .ok_or_else(|| Error::Config(format!("unknown stream {}", quote(n))))?;
                    if s.sensitive && !self.include_sensitive {
                        return Err(Error::Config(format!(
                            "stream {} holds sensitive candidate data (EEOC/demographics) and is off unless you opt in: add --include-sensitive (or \"include_sensitive\": true in the config file)",
                            quote(n)
                        )));
                    }
                    if !out.iter().any(|o| o.name == s.name) {
                        out.push(s);
                    }
                }
                out.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(out)
            }
            None => Ok(registry
                .streams()
                .iter()
                .filter(|s| self.include_sensitive || !s.sensitive)
                .collect()),
        }
    }
}

/// The JSON Schema of the configuration file, as printed by `greenhouse-extract spec`.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ConfigFile)).expect("schema serialises")
}

/// Validates `exclude_columns`/`hash_columns` against the declarations.
fn column_policies(
    exclude: BTreeMap<String, Vec<String>>,
    hash: BTreeMap<String, Vec<String>>,
    salt: Option<String>,
    registry: &Registry,
) -> Result<BTreeMap<String, ColumnPolicy>, Error> {
    let salt = salt.filter(|s| !s.is_empty()).map(Secret::new);
    if hash.values().any(|c| !c.is_empty()) && salt.is_none() {
        return Err(Error::config(format!(
            "hash_columns needs a salt: set {ENV_HASH_SALT} (or hash_salt in the config file) to a long random secret, and keep it stable"
        )));
    }
    let mut out: BTreeMap<String, ColumnPolicy> = BTreeMap::new();
    for (key, lists, hashing) in [
        ("exclude_columns", &exclude, false),
        ("hash_columns", &hash, true),
    ] {
        for (stream_name, columns) in lists {
            let stream = registry.get(stream_name).ok_or_else(|| {
                Error::Config(format!(
                    "{key}: unknown stream {}. Run `greenhouse-extract discover` to list the streams.",
                    quote(stream_name)
                ))
            })?;
            let policy = out
                .entry(stream_name.clone())
                .or_insert_with(|| ColumnPolicy {
                    salt: salt.clone(),
                    ..ColumnPolicy::default()
                });
            for col in columns {
                let field = stream.field(col).ok_or_else(|| {
                    Error::Config(format!(
                        "{key}: stream {stream_name:?} has no column {}. See its schema with `greenhouse-extract discover`.",
                        quote(col)
                    ))
                })?;
                if stream.primary_key.contains(col) || stream.cursor_field() == Some(col.as_str()) {
                    return Err(Error::Config(format!(
                        "{key}: {stream_name}.{col} is the primary key or the cursor; it is needed to de-duplicate and cannot be excluded or hashed"
                    )));
                }
                if hashing {
                    if !matches!(
                        field.ty,
                        FieldType::String { .. } | FieldType::Json | FieldType::Integer
                    ) {
                        return Err(Error::Config(format!(
                            "hash_columns: {stream_name}.{col} is a {} column; only string, JSON and integer columns can be hashed (exclude it instead)",
                            field.ty
                        )));
                    }
                    policy.hash.insert(col.clone());
                } else {
                    policy.exclude.insert(col.clone());
                }
            }
            if policy.hash.iter().any(|c| policy.exclude.contains(c)) {
                return Err(Error::Config(format!(
                    "stream {stream_name:?}: a column is both excluded and hashed; choose one"
                )));
            }
        }
    }
    Ok(out)
}

/// Stream names given to an operator command (`state show|reset --streams`), checked against
/// the registry (sensitive streams need no opt-in: nothing is read), globs expanded,
/// de-duplicated, in order.
pub fn resolve_stream_names(names: &[String], registry: &Registry) -> Result<Vec<String>, Error> {
    let names: Vec<String> = names
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    validate_stream_names(&names, registry)?;
    Ok(expand_stream_names(&names, registry, true))
}

/// Whether a stream name is a pattern: `*` (any run of characters) or `?` (one character).
fn is_glob(name: &str) -> bool {
    name.contains(['*', '?'])
}

/// `*`/`?` glob matching on whole names (no other metacharacters: stream names are
/// `[a-z0-9_]`).
fn glob_matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The names in `names` (exact names and globs, already validated) as registry names, in
/// order of first mention, each once. A glob takes the sensitive streams only with
/// `include_sensitive` (so `*` never opts in by itself); a sensitive stream named exactly is kept
/// and refused later unless opted in.
fn expand_stream_names(
    names: &[String],
    registry: &Registry,
    include_sensitive: bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if is_glob(n) {
            for s in registry.streams() {
                if glob_matches(n, &s.name)
                    && (include_sensitive || !s.sensitive)
                    && !out.contains(&s.name)
                {
                    out.push(s.name.clone());
                }
            }
        } else if !out.contains(n) {
            out.push(n.clone());
        }
    }
    out
}

/// Edit distance counting a swap of two neighbours as one edit (optimal string alignment):
/// `jbos` is one typo from `jobs`. Names are short, so the plain table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// Up to three stream names close to `name` (a typo, a singular, a missing underscore).
fn similar_streams<'r>(name: &str, registry: &'r Registry) -> Vec<&'r str> {
    let name = name.to_ascii_lowercase();
    let limit = (name.chars().count() / 3).clamp(1, 3);
    let mut near: Vec<(usize, &str)> = registry
        .streams()
        .iter()
        .map(|s| (edit_distance(&name, &s.name), s.name.as_str()))
        .filter(|(d, _)| *d <= limit)
        .collect();
    near.sort();
    near.into_iter().take(3).map(|(_, n)| n).collect()
}

/// `unknown stream(s): "x" (did you mean "y"?), …` for names that are neither a stream nor a
/// glob matching one.
fn unknown_streams(names: &[String], registry: &Registry, what: &str) -> Result<(), Error> {
    let unknown: Vec<String> = names
        .iter()
        .filter(|n| {
            if is_glob(n) {
                !registry.streams().iter().any(|s| glob_matches(n, &s.name))
            } else {
                registry.get(n).is_none()
            }
        })
        .take(10)
        .map(|n| {
            let near = similar_streams(n, registry);
            let shown = if is_glob(n) {
                format!("{} (matches no stream)", quote(n))
            } else {
                quote(n)
            };
            if near.is_empty() {
                shown
            } else {
                let near: Vec<String> = near.iter().map(|s| format!("{s:?}")).collect();
                format!("{shown} (did you mean {}?)", near.join(" or "))
            }
        })
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Config(format!(
            "{what}unknown stream(s): {}. Run `greenhouse-extract discover` to list the available streams (`*` and `?` patterns work, e.g. \"scorecard*\").",
            unknown.join(", ")
        )));
    }
    Ok(())
}

/// The selection without `excluded` (names or globs): from the explicit list, or else from the
/// default set (every non-sensitive stream, plus the sensitive ones if opted in).
fn exclude_streams(
    streams: Option<Vec<String>>,
    excluded: &[String],
    include_sensitive: bool,
    registry: &Registry,
) -> Result<Vec<String>, Error> {
    unknown_streams(excluded, registry, "--exclude-streams: ")?;
    let drop = expand_stream_names(excluded, registry, true);
    let from = streams.unwrap_or_else(|| {
        registry
            .streams()
            .iter()
            .filter(|s| include_sensitive || !s.sensitive)
            .map(|s| s.name.clone())
            .collect()
    });
    let kept: Vec<String> = from.into_iter().filter(|n| !drop.contains(n)).collect();
    if kept.is_empty() {
        return Err(Error::config(
            "--exclude-streams leaves no stream to read. Exclude fewer streams, or name the ones to read with --streams.",
        ));
    }
    Ok(kept)
}

fn validate_stream_names(names: &[String], registry: &Registry) -> Result<(), Error> {
    if names.is_empty() {
        return Err(Error::config(
            "the stream list is empty. Name at least one stream, or omit the list to read every non-sensitive stream.",
        ));
    }
    unknown_streams(names, registry, "")
}

/// A TOML error as `line L, column C: message`. toml's own `Display` quotes the offending source
/// line, which may be the line holding the client secret; the position is enough to find it.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = crate::secrets::clip(e.message().trim_end(), 2 * crate::secrets::QUOTE_MAX);
    match e.span() {
        Some(span) => {
            // `get` rather than slicing: a span that is not on a char boundary must not panic.
            let before = text.get(..span.start).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// serde_json's type errors give a line and column but not the key; find the key by
/// deserialising each top-level entry on its own.
fn name_the_bad_key(text: &str) -> Option<String> {
    let serde_json::Value::Object(map) = serde_json::from_str(text).ok()? else {
        return None;
    };
    map.into_iter().find_map(|(k, v)| {
        let one = serde_json::Value::Object([(k.clone(), v)].into_iter().collect());
        serde_json::from_value::<ConfigFile>(one).err().map(|e| {
            // serde quotes the whole offending value, which may be megabytes long.
            let e = crate::secrets::clip(&e.to_string(), 2 * crate::secrets::QUOTE_MAX);
            let k = crate::secrets::clip(&k, crate::secrets::QUOTE_MAX);
            format!("key `{k}`: {e}")
        })
    })
}

/// Parses an API or token URL: https anywhere, http only for loopback hosts.
fn parse_http_url(key: &str, raw: &str) -> Result<Url, Error> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        Error::Config(format!(
            "{key} {} is not a valid URL ({e}). Use e.g. {DEFAULT_API_URL}.",
            quote(raw)
        ))
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(Error::Config(format!(
                "{key} {} uses plain http:// to a non-loopback host; credentials would travel unencrypted. Use https:// (http:// is only accepted for 127.0.0.1/localhost, e.g. the bundled simulator).",
                quote(raw)
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "{key} {} has scheme {}; use https://",
                quote(raw),
                quote(other)
            )));
        }
    }
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Config(format!(
            "{key} {} must be a plain https://host[/path] URL without credentials",
            quote(raw)
        )));
    }
    Ok(url)
}

/// Whether a URL's host is a loopback address (`localhost`, 127.0.0.0/8, ::1): the only hosts
/// plain `http://` is accepted for.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// Parses `start_date` and checks it lies between [`EARLIEST`] and `now`.
fn parse_start_date(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, Error> {
    let raw = raw.trim();
    let parsed = match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        Ok(d) => d.and_hms_opt(0, 0, 0).expect("midnight").and_utc(),
        Err(_) => DateTime::parse_from_rfc3339(raw)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                Error::Config(format!(
                    "start_date {} is neither YYYY-MM-DD nor an RFC 3339 timestamp (e.g. 2024-01-31T00:00:00Z)",
                    quote(raw)
                ))
            })?,
    };
    if parsed > now {
        // Accepting it would commit an empty window and move every bookmark to now: once
        // corrected, the next run would read only the last lookback, and the history is lost.
        return Err(Error::Config(format!(
            "start_date {} is in the future (now is {}). Use a date in the past, or omit start_date to read everything.",
            quote(raw),
            now.format("%Y-%m-%dT%H:%M:%SZ")
        )));
    }
    if parsed < EARLIEST {
        return Err(Error::Config(format!(
            "start_date {} is before 1970-01-01, which the Greenhouse API refuses. Use a later date, or omit start_date to read everything.",
            quote(raw)
        )));
    }
    Ok(parsed)
}

/// Parses `lookback` and checks it against [`MAX_LOOKBACK`].
fn parse_lookback(raw: &str) -> Result<Duration, Error> {
    let lookback = parse_duration(raw).map_err(|e| Error::Config(format!("lookback: {e}")))?;
    if lookback > MAX_LOOKBACK {
        return Err(Error::Config(format!(
            "lookback {} is longer than the 365d allowed. A lookback only re-reads records committed late (1h is the default); to read older history, set start_date on a fresh state instead.",
            quote(raw)
        )));
    }
    Ok(lookback)
}

/// A run time limit: a duration of at least one second.
pub fn parse_max_run_time(raw: &str) -> Result<Duration, String> {
    let d = parse_duration(raw)?;
    if d.is_zero() {
        return Err(format!("{raw:?} is no time at all; omit it for no limit"));
    }
    Ok(d)
}

/// Parses `<n>ms|s|m|h|d` (a bare number means seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (num, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, "s"),
    };
    let bad = || format!("{} is not a duration like 30m, 1h or 2d", quote(raw));
    let n: u64 = num.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    // A huge number must be an error, not an overflow (a panic in debug builds).
    n.checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{} is too long a duration", quote(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        crate::registry::fixture(
            "widgets",
            r#"{ mode = "incremental", cursor_field = "updated_at", filter = "updated_at" }"#,
            r#"{ name = "id", type = "integer" }, { name = "updated_at", type = "timestamp" }"#,
        )
    }

    fn base() -> ConfigFile {
        ConfigFile {
            client_id: Some("id".into()),
            client_secret: Some("shh".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_apply() {
        let c = base().validate(&Overrides::default(), &registry()).unwrap();
        assert_eq!(c.api_url.as_str(), "https://harvest.greenhouse.io/");
        assert_eq!(c.lookback, Duration::from_secs(3600));
        assert_eq!(c.per_page, 500);
        assert_eq!(c.destination, DEFAULT_DESTINATION);
    }

    #[test]
    fn http_only_for_loopback() {
        let mut f = base();
        f.api_url = Some("http://127.0.0.1:8080".into());
        assert!(
            f.clone()
                .validate(&Overrides::default(), &registry())
                .is_ok()
        );
        f.api_url = Some("http://example.com".into());
        let e = f.validate(&Overrides::default(), &registry()).unwrap_err();
        assert!(e.to_string().contains("non-loopback"), "{e}");
    }

    #[test]
    fn missing_credentials_say_what_to_set() {
        let e = ConfigFile::default()
            .validate(&Overrides::default(), &registry())
            .unwrap_err();
        assert!(e.to_string().contains(ENV_CLIENT_ID));
    }

    fn selected_names(
        streams: Option<&[&str]>,
        exclude: &[&str],
        sensitive: bool,
    ) -> Result<Vec<String>, Error> {
        let reg = Registry::embedded().unwrap();
        let o = Overrides {
            streams: streams.map(|v| v.iter().map(|s| s.to_string()).collect()),
            exclude_streams: exclude.iter().map(|s| s.to_string()).collect(),
            include_sensitive: sensitive,
            ..Overrides::default()
        };
        let c = base().validate(&o, &reg)?;
        Ok(c.selected(&reg)?
            .into_iter()
            .map(|s| s.name.clone())
            .collect())
    }

    #[test]
    fn globs_select_by_pattern_and_never_opt_in_to_sensitive_streams() {
        assert!(glob_matches("scorecard*", "scorecards"));
        assert!(glob_matches("*_tags", "candidate_tags"));
        assert!(glob_matches("job_?osts", "job_posts"));
        assert!(glob_matches("*", "x"));
        assert!(!glob_matches("scorecard*", "job_scorecards"));
        assert!(!glob_matches("jobs?", "jobs"));
        let got = selected_names(Some(&["scorecard*"]), &[], false).unwrap();
        assert_eq!(got.len(), 7, "{got:?}");
        assert!(got.iter().all(|n| n.starts_with("scorecard")), "{got:?}");
        let all = selected_names(Some(&["*"]), &[], false).unwrap();
        let default = selected_names(None, &[], false).unwrap();
        assert_eq!(all, default, "`*` is the default set: no sensitive stream");
        let with = selected_names(Some(&["demographic*"]), &[], true).unwrap();
        assert_eq!(with.len(), 4, "{with:?}");
        let e = selected_names(Some(&["widget*"]), &[], false).unwrap_err();
        assert!(
            e.to_string().contains("\"widget*\" (matches no stream)"),
            "{e}"
        );
    }

    #[test]
    fn excluded_streams_leave_the_selection() {
        let default = selected_names(None, &[], false).unwrap();
        let got = selected_names(None, &["scorecard*", "jobs"], false).unwrap();
        assert_eq!(got.len(), default.len() - 8, "{got:?}");
        assert!(
            !got.iter()
                .any(|n| n.starts_with("scorecard") || n == "jobs")
        );
        let got = selected_names(Some(&["jobs", "offers"]), &["offers"], false).unwrap();
        assert_eq!(got, ["jobs"]);
        let e = selected_names(Some(&["jobs"]), &["jobs"], false).unwrap_err();
        assert!(e.to_string().contains("leaves no stream"), "{e}");
        let e = selected_names(None, &["jbos"], false).unwrap_err();
        assert!(
            e.to_string().contains(
                "--exclude-streams: unknown stream(s): \"jbos\" (did you mean \"jobs\"?)"
            ),
            "{e}"
        );
    }

    #[test]
    fn unknown_names_get_the_nearest_streams() {
        for (typo, near) in [
            ("jbos", "\"jobs\""),
            ("candidate", "\"candidates\""),
            ("scorecard", "\"scorecards\""),
            ("jobposts", "\"job_posts\""),
        ] {
            let e = selected_names(Some(&[typo]), &[], false)
                .unwrap_err()
                .to_string();
            assert!(e.contains(&format!("did you mean {near}")), "{typo}: {e}");
        }
        let e = selected_names(Some(&["zzzzzzzz"]), &[], false)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("did you mean"), "{e}");
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn unknown_streams_are_named() {
        let mut f = base();
        f.streams = Some(vec!["widgets".into(), "gizmos".into()]);
        let e = f.validate(&Overrides::default(), &registry()).unwrap_err();
        assert!(e.to_string().contains("gizmos"));
    }

    #[test]
    fn env_overrides_file() {
        let mut f = base();
        f.apply_env(&|k| (k == ENV_CLIENT_ID).then(|| "from-env".to_string()))
            .unwrap();
        assert_eq!(f.client_id.as_deref(), Some("from-env"));
    }

    #[test]
    fn secrets_do_not_print() {
        let c = base().validate(&Overrides::default(), &registry()).unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("shh"), "{dbg}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    }

    #[test]
    fn start_dates_in_the_future_or_before_1970_are_refused() {
        let now = "2026-03-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        assert!(parse_start_date("2026-03-01", now).is_ok());
        for (raw, says) in [
            ("2099-01-01", "in the future"),
            ("2026-03-01T12:00:01Z", "in the future"),
            ("0000-01-01", "before 1970"),
            ("1969-12-31T23:59:59Z", "before 1970"),
        ] {
            let e = parse_start_date(raw, now).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("omit start_date"),
                "{raw}: {e}"
            );
        }
    }

    #[test]
    fn lookbacks_are_bounded_and_never_overflow() {
        assert_eq!(parse_lookback("365d").unwrap(), MAX_LOOKBACK);
        for raw in [
            "366d",
            "1000000d",
            "99999999999999999d",
            "18446744073709551615h",
        ] {
            let e = parse_lookback(raw).unwrap_err().to_string();
            assert!(e.contains("lookback"), "{raw}: {e}");
        }
    }

    #[test]
    fn echoed_values_are_cut_and_escaped() {
        let mut f = base();
        f.lookback = Some(format!("{}\u{202e}", "9".repeat(1_000_000)));
        let e = f
            .validate(&Overrides::default(), &registry())
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{} bytes", e.len());
        let mut f = base();
        f.streams = Some(vec!["jobs\u{202e}\u{1b}[31m".into()]);
        let e = f
            .validate(&Overrides::default(), &registry())
            .unwrap_err()
            .to_string();
        assert!(e.contains(r"jobs\u{202e}\u{001b}[31m"), "{e}");
        assert!(!e.contains('\u{202e}') && !e.contains('\u{1b}'), "{e}");
        let text = format!(r#"{{"per_page": "{}"}}"#, "x".repeat(1_000_000));
        let e = name_the_bad_key(&text).unwrap();
        assert!(e.len() < 400 && e.contains("per_page"), "{e}");
    }

    #[test]
    fn toml_errors_give_the_position_but_never_quote_the_line() {
        let dir = std::env::temp_dir().join(format!("ge-toml-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "client_id = \"x\"\nclient_secret = unquoted-s3cr3t\n",
        )
        .unwrap();
        let e = ConfigFile::load(&path).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(e.contains("line 2, column 17"), "{e}");
        assert!(!e.contains("unquoted-s3cr3t"), "{e}");
    }

    #[test]
    fn webhook_settings_need_a_secret_and_say_what_to_fix() {
        let e = ConfigFile::default()
            .validate_webhooks(&WebhookOverrides::default())
            .unwrap_err();
        assert_eq!(e.exit_code(), crate::error::ExitCode::Config);
        assert!(e.to_string().contains(ENV_WEBHOOK_SECRET), "{e}");
        let f = ConfigFile {
            webhook_secret: Some("hook-secret-1234".into()),
            ..Default::default()
        };
        let w = f
            .clone()
            .validate_webhooks(&WebhookOverrides::default())
            .unwrap();
        assert_eq!(w.listen.to_string(), DEFAULT_WEBHOOK_LISTEN);
        assert_eq!(w.max_body_bytes, DEFAULT_WEBHOOK_MAX_BODY_BYTES);
        assert_eq!(w.destination, DEFAULT_DESTINATION);
        assert!(w.tls.is_none());
        assert!(!format!("{w:?}").contains("hook-secret-1234"));
        let o = WebhookOverrides {
            listen: Some("[::]:8443".into()),
            destination: Some("s3://b/p".into()),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
        };
        let w = f.clone().validate_webhooks(&o).unwrap();
        assert_eq!(w.listen.port(), 8443);
        assert_eq!(w.destination, "s3://b/p");
        assert_eq!(w.tls.unwrap().key, PathBuf::from("k.pem"));
        for (o, says) in [
            (
                WebhookOverrides {
                    listen: Some("localhost".into()),
                    ..Default::default()
                },
                "is not IP:port",
            ),
            (
                WebhookOverrides {
                    tls_cert: Some("c.pem".into()),
                    ..Default::default()
                },
                "--tls-key",
            ),
        ] {
            let e = f.clone().validate_webhooks(&o).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let mut big = f.clone();
        big.webhook_max_body_bytes = Some(10);
        let e = big
            .validate_webhooks(&WebhookOverrides::default())
            .unwrap_err();
        assert!(e.to_string().contains("webhook_max_body_bytes"), "{e}");
    }

    #[test]
    fn the_webhook_secret_comes_from_the_environment_too() {
        let mut f = ConfigFile::default();
        f.apply_env(&|k| (k == ENV_WEBHOOK_SECRET).then(|| "from-env-hook".to_string()))
            .unwrap();
        assert_eq!(f.webhook_secret.as_deref(), Some("from-env-hook"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = serde_json::from_str::<ConfigFile>(r#"{"client_idd": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("client_idd"));
    }
}
