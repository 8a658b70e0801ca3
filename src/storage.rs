//! The destination: an `Arc<dyn ObjectStore>` plus a key prefix, built from one string.
//!
//! Accepted destinations:
//!
//! | destination | store |
//! |---|---|
//! | `./greenhouse-data`, `/abs/dir`, `dir` (no `scheme://`) | local directory |
//! | `file:///abs/dir`, `file://./rel/dir` (relative to the working directory) | local directory |
//! | `s3://bucket/prefix` (also `s3a://`) | Amazon S3 or an S3-compatible server |
//! | `gs://bucket/prefix` | Google Cloud Storage |
//! | `az://container/prefix`, `abfss://container@account.dfs.core.windows.net/prefix` (also `abfs://`) | Azure Blob Storage / ADLS Gen2 |
//! | `memory://` or `memory:///prefix` | a fresh in-process store (tests) |
//!
//! Contract:
//! - Local directories are created when missing and sandboxed with
//!   `LocalFileSystem::new_with_prefix` (keys cannot escape the directory); the returned prefix is
//!   empty. Deleting the last file of a directory removes the empty directory. [`open_existing`]
//!   never creates one (read-only commands).
//! - Cloud stores are configured from the environment exactly like object_store's `from_env`
//!   builders (every `AWS_*` / `GOOGLE_*` + `SERVICE_ACCOUNT` / `AZURE_*` + `IDENTITY_ENDPOINT`
//!   variable object_store knows), read through an explicit map so tests never touch the process
//!   environment ([`open_with_env`]). For S3 additionally:
//!   - endpoint: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`, else `AWS_ENDPOINT` (S3-compatible
//!     servers such as MinIO, s3s, Ceph, R2);
//!   - region: `AWS_REGION`, else `AWS_DEFAULT_REGION`, else `us-east-1`;
//!   - plain `http://` endpoints need `AWS_ALLOW_HTTP=true`, except loopback endpoints
//!     (`localhost`, `127.0.0.0/8`, `::1`), which are allowed automatically;
//!   - path-style requests unless `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`;
//!   - credentials: static keys (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!     `AWS_SESSION_TOKEN`), web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`), ECS/EKS
//!     container credentials, then EC2 instance metadata — object_store's chain. Profiles in
//!     `~/.aws/config` / `AWS_PROFILE` are **not** read by object_store: export keys instead.
//! - Building a store makes no network request; [`probe_writable`] does.
//! - Credentials never appear in [`Destination::url`] or in error messages: URLs with a password
//!   or a query string (SAS tokens, signed URLs) are refused, and messages quote only the
//!   sanitised form.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;

use crate::error::Error;

/// Which kind of store a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
    Gcs,
    Azure,
    Memory,
}

/// An opened destination: where data files and state go.
#[derive(Debug, Clone)]
pub struct Destination {
    pub store: Arc<dyn ObjectStore>,
    /// Key prefix inside the store (empty for local directories, which are their own root).
    pub prefix: Path,
    /// Display form (`s3://bucket/prefix`, `file:///abs/dir`); never holds credentials.
    pub url: String,
    pub kind: Kind,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The destination string or its environment is wrong; the message says what to fix.
    #[error("destination: {0}")]
    Config(String),
    /// The store was built but a write/delete probe failed.
    #[error("cannot write to {url}: {reason}")]
    NotWritable {
        url: String,
        reason: String,
        #[source]
        source: Option<object_store::Error>,
    },
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Config(m) => Error::Config(format!("destination: {m}")),
            other => Error::Destination(other.to_string()),
        }
    }
}

/// How long [`probe_writable`] waits in total: object_store retries transport errors for up to
/// three minutes, far too long to tell a user their endpoint is wrong.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// Opens a destination, configured from the process environment.
pub fn open(destination: &str) -> Result<Destination, StorageError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    open_with_env(destination, &env)
}

/// Opens a destination, configured from `env` instead of the process environment.
pub fn open_with_env(
    destination: &str,
    env: &HashMap<String, String>,
) -> Result<Destination, StorageError> {
    let destination = destination.trim();
    if destination.is_empty() {
        return Err(config(
            "the destination is empty: give a directory or a URL like s3://bucket/prefix",
        ));
    }
    if let Some(dir) = local_dir(destination)? {
        return open_local(&dir);
    }
    // Not a local directory, so it has a scheme (an unknown one is refused below).
    let scheme = destination
        .split_once("://")
        .map_or("", |(s, _)| s)
        .to_ascii_lowercase();
    // Cloud builders create a reqwest client, and rustls needs a process-wide crypto provider
    // (we build with ring, see Cargo.toml). Installing twice is a harmless no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match scheme.as_str() {
        "memory" => {
            let url = parse_url(destination, &scheme)?;
            let prefix = url_prefix(&url, true, &scheme)?;
            Ok(Destination {
                store: Arc::new(InMemory::new()),
                url: display("memory", "", &prefix),
                prefix,
                kind: Kind::Memory,
            })
        }
        "s3" | "s3a" => {
            let (_, bucket, prefix) = cloud_url(destination, &scheme, "bucket")?;
            let shown = display("s3", &bucket, &prefix);
            let store = s3_builder(&bucket, env)?
                .with_retry(retry_config())
                .build()
                .map_err(|e| config(format!("could not configure S3 for {shown}: {e}")))?;
            Ok(Destination {
                store: Arc::new(store),
                prefix,
                url: shown,
                kind: Kind::S3,
            })
        }
        "gs" => {
            let (_, bucket, prefix) = cloud_url(destination, &scheme, "bucket")?;
            let shown = display("gs", &bucket, &prefix);
            let mut b = GoogleCloudStorageBuilder::new();
            if let Some(sa) = env.get("SERVICE_ACCOUNT") {
                b = b.with_service_account_path(sa);
            }
            for (k, v) in prefixed(env, "GOOGLE_") {
                if let Ok(key) = k.parse::<GoogleConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            let store = b
                .with_url(format!("gs://{bucket}"))
                .with_retry(retry_config())
                .build()
                .map_err(|e| config(format!("could not configure GCS for {shown}: {e}")))?;
            Ok(Destination {
                store: Arc::new(store),
                prefix,
                url: shown,
                kind: Kind::Gcs,
            })
        }
        "az" | "abfs" | "abfss" => {
            let (url, container, prefix) = cloud_url(destination, &scheme, "container")?;
            // abfss://<container>@<account>.dfs.core.windows.net: the user part is the container
            // (not a credential), and the host names the account.
            let location = if url.username().is_empty() {
                container.clone()
            } else {
                format!("{}@{container}", url.username())
            };
            let shown = display(&scheme, &location, &prefix);
            let mut b = MicrosoftAzureBuilder::new();
            for (k, v) in prefixed(env, "AZURE_") {
                if let Ok(key) = k.parse::<AzureConfigKey>() {
                    b = b.with_config(key, v);
                }
            }
            if let Some(endpoint) = env.get("IDENTITY_ENDPOINT") {
                b = b.with_msi_endpoint(endpoint);
            }
            let store = b
                .with_url(format!("{scheme}://{location}"))
                .with_retry(retry_config())
                .build()
                .map_err(|e| config(format!("could not configure Azure for {shown}: {e}")))?;
            Ok(Destination {
                store: Arc::new(store),
                prefix,
                url: shown,
                kind: Kind::Azure,
            })
        }
        other => Err(config(format!(
            "unsupported scheme {other}://: use a directory, file://, s3://, gs://, az://, abfss:// or memory://"
        ))),
    }
}

/// Opens a destination without creating anything: a local directory that does not exist yet is
/// `None` (nothing has been written there), anything else opens as [`open`] does. For commands
/// that only read (`sync --dry-run`).
pub fn open_existing(destination: &str) -> Result<Option<Destination>, StorageError> {
    if let Some(dir) = local_dir(destination.trim())? {
        match std::fs::metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(StorageError::NotWritable {
                    url: dir.display().to_string(),
                    reason: format!(
                        "cannot read the local directory ({e}); check the path and its permissions"
                    ),
                    source: None,
                });
            }
            Ok(m) if !m.is_dir() => {
                return Err(StorageError::NotWritable {
                    url: dir.display().to_string(),
                    reason: "it is a file, not a directory; choose another destination".into(),
                    source: None,
                });
            }
            Ok(_) => {}
        }
    }
    open(destination).map(Some)
}

/// The directory of a local destination (a path, or a `file://` URL); `None` for a store URL.
fn local_dir(destination: &str) -> Result<Option<std::path::PathBuf>, StorageError> {
    match destination.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("file") => {
            file_url_path(destination, rest).map(Some)
        }
        Some(_) => Ok(None),
        None => {
            if let Some((maybe_scheme, _)) = destination.split_once(':')
                && looks_like_scheme(maybe_scheme)
            {
                return Err(config(format!(
                    "{maybe_scheme}:… is neither a directory nor a URL: did you mean {maybe_scheme}://…?"
                )));
            }
            Ok(Some(std::path::PathBuf::from(destination)))
        }
    }
}

/// The folders [`open`] would create for a local `destination` (it and its missing parents,
/// deepest first); empty for a store URL or an existing folder. With
/// [`remove_empty_dirs`], a command that fails before writing anything leaves no empty
/// destination folder behind.
pub fn missing_local_dirs(destination: &str) -> Vec<std::path::PathBuf> {
    let Ok(Some(dir)) = local_dir(destination.trim()) else {
        return Vec::new();
    };
    dir.ancestors()
        .filter(|d| !d.as_os_str().is_empty())
        .take_while(|d| std::fs::symlink_metadata(d).is_err())
        .map(std::path::Path::to_path_buf)
        .collect()
}

/// Removes each of `dirs` (deepest first) that is empty; a folder that holds anything stays.
pub fn remove_empty_dirs(dirs: &[std::path::PathBuf]) {
    for d in dirs {
        // `remove_dir` refuses a folder that is not empty, which is exactly the test wanted.
        if std::fs::remove_dir(d).is_err() {
            return;
        }
    }
}

/// Writes then deletes a small object under `<prefix>/_probe/`, proving the destination exists
/// and the credentials may write and delete. Gives up after [`PROBE_TIMEOUT`].
pub async fn probe_writable(dest: &Destination) -> Result<(), StorageError> {
    probe_writable_within(dest, PROBE_TIMEOUT).await
}

/// [`probe_writable`] with an explicit time limit.
pub async fn probe_writable_within(
    dest: &Destination,
    limit: Duration,
) -> Result<(), StorageError> {
    let key = dest
        .prefix
        .clone()
        .join("_probe")
        .join(uuid::Uuid::now_v7().to_string().as_str());
    let probe = async {
        dest.store
            .put(
                &key,
                PutPayload::from_static(b"greenhouse-extract write probe\n"),
            )
            .await
            .map_err(|e| not_writable(dest, "writing a probe object failed", e))?;
        dest.store
            .delete(&key)
            .await
            .map_err(|e| not_writable(dest, "deleting the probe object failed", e))
    };
    match tokio::time::timeout(limit, probe).await {
        Ok(result) => result,
        Err(_) => Err(StorageError::NotWritable {
            url: dest.url.clone(),
            reason: format!(
                "no answer within {} s: the endpoint is unreachable or very slow (check the URL, \
                 AWS_ENDPOINT/network access, and the credentials chain)",
                limit.as_secs()
            ),
            source: None,
        }),
    }
}

fn not_writable(dest: &Destination, what: &str, e: object_store::Error) -> StorageError {
    let text = e.to_string();
    let hint = match &e {
        object_store::Error::NotFound { .. } => {
            "the bucket or container does not exist (create it, or fix its name)"
        }
        object_store::Error::PermissionDenied { .. } => {
            "permission denied: the credentials may not write or delete under this prefix"
        }
        object_store::Error::Unauthenticated { .. } => {
            "authentication failed: check the credentials (e.g. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
        }
        // Transport failures first: their text carries timings and addresses whose digits must
        // not be mistaken for an HTTP status below.
        _ if text.contains("error sending request")
            || text.contains("Connection refused")
            || text.contains("connect") =>
        {
            "the endpoint is unreachable (check the URL, the endpoint setting and the network)"
        }
        _ if text.contains("NoSuchBucket") => {
            "the bucket does not exist (create it, or fix its name)"
        }
        _ if text.contains("AccessDenied") || text.contains("403 Forbidden") => {
            "permission denied: the credentials may not write or delete under this prefix"
        }
        _ if text.contains("SignatureDoesNotMatch") || text.contains("InvalidAccessKeyId") => {
            "authentication failed: check the credentials"
        }
        _ if text.to_ascii_lowercase().contains("credential") => {
            "no usable credentials were found (set the provider's credential variables)"
        }
        _ => "the store returned an error",
    };
    StorageError::NotWritable {
        url: dest.url.clone(),
        reason: format!("{what}: {hint}"),
        source: Some(e),
    }
}

fn config(message: impl Into<String>) -> StorageError {
    StorageError::Config(message.into())
}

fn looks_like_scheme(s: &str) -> bool {
    s.len() > 1
        && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// How long a cloud store request is retried (transport errors, 5xx, 429) before it fails.
/// object_store's default of 3 minutes turns a wrong endpoint into a long hang; its five retries
/// used to give up after about a second, so a 1.5 s outage of an S3-compatible server failed the
/// streams committing at that moment. [`STORE_RETRY_TIMEOUT`] rides out restarts, failovers and
/// throttling, and still fails a run whose store is gone within a minute.
pub const STORE_RETRY_TIMEOUT: Duration = Duration::from_secs(30);

/// Retries for cloud stores: jittered exponential backoff from 100 ms, capped at 4 s between
/// attempts, until [`STORE_RETRY_TIMEOUT`] has passed (the retry count is not the limit).
/// Requests that may already have reached the store (a timeout mid-upload of a non-idempotent
/// put) are not retried by object_store; refused and closed connections and 5xx answers are.
fn retry_config() -> object_store::RetryConfig {
    object_store::RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(4),
            base: 2.0,
        },
        max_retries: 100,
        retry_timeout: STORE_RETRY_TIMEOUT,
    }
}

fn open_local(dir: &std::path::Path) -> Result<Destination, StorageError> {
    // The path is well-formed; failing to create it is a destination problem (permissions, a
    // file in the way, a read-only mount), not a configuration one.
    std::fs::create_dir_all(dir).map_err(|e| StorageError::NotWritable {
        url: dir.display().to_string(),
        reason: format!(
            "cannot create the local directory ({e}); check the path and its permissions, or choose another destination"
        ),
        source: None,
    })?;
    let root = std::fs::canonicalize(dir).map_err(|e| {
        config(format!(
            "cannot resolve the local directory {}: {e}",
            dir.display()
        ))
    })?;
    let store = LocalFileSystem::new_with_prefix(&root)
        .map_err(|e| {
            config(format!(
                "cannot use {} as a destination: {e}",
                root.display()
            ))
        })?
        .with_automatic_cleanup(true);
    let url = Url::from_directory_path(&root)
        .map(|u| u.to_string().trim_end_matches('/').to_string())
        .unwrap_or_else(|()| format!("file://{}", root.display()));
    Ok(Destination {
        store: Arc::new(store),
        prefix: Path::default(),
        url,
        kind: Kind::Local,
    })
}

/// `file:///abs/dir` → `/abs/dir`; `file://./rel` / `file://../rel` → relative to the working
/// directory (not standard URL syntax, but what people type).
fn file_url_path(destination: &str, rest: &str) -> Result<std::path::PathBuf, StorageError> {
    if rest == "." || rest.starts_with("./") || rest == ".." || rest.starts_with("../") {
        return Ok(std::path::PathBuf::from(rest));
    }
    let bad = || {
        config(
            "file:// URLs need an absolute path (file:///abs/dir) or a relative one starting \
             with ./ (file://./dir)",
        )
    };
    let url = Url::parse(destination).map_err(|_| bad())?;
    if url.query().is_some() || url.password().is_some() {
        return Err(bad());
    }
    // The URL parser resolves plain `..` segments, but a percent-encoded separator survives it
    // and is decoded by `to_file_path`: `file:///data/out/..%2F..%2Fetc` would name `/etc`.
    // Every decoded segment must be one plain path component.
    let escapes = url.path_segments().into_iter().flatten().any(|seg| {
        let decoded = percent_decode(seg);
        decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0'])
    });
    if escapes {
        return Err(config(
            "a file:// URL must not hide a path separator or a `.`/`..` segment in percent-encoding \
             (%2F, %5C, %2E%2E): it would write outside the folder the URL names. Write the \
             folder's path plainly, e.g. file:///abs/dir",
        ));
    }
    url.to_file_path().map_err(|()| bad())
}

/// `%XX` sequences decoded (invalid ones kept as written); lossy for bytes that are not UTF-8.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_url(destination: &str, scheme: &str) -> Result<Url, StorageError> {
    // The error deliberately quotes only the scheme: the text may hold a secret.
    let url = Url::parse(destination)
        .map_err(|e| config(format!("{scheme}:// URL does not parse ({e})")))?;
    if url.password().is_some() || url.query().is_some() || url.fragment().is_some() {
        return Err(config(format!(
            "{scheme}:// URLs take no password, query or fragment: pass credentials through \
             environment variables"
        )));
    }
    Ok(url)
}

/// Parses `scheme://<bucket>/<prefix>` into (url, bucket, prefix).
fn cloud_url(
    destination: &str,
    scheme: &str,
    bucket_word: &str,
) -> Result<(Url, String, Path), StorageError> {
    let url = parse_url(destination, scheme)?;
    let bucket = url.host_str().unwrap_or_default().to_string();
    if bucket.is_empty() {
        return Err(config(format!(
            "{scheme}:// URL has no {bucket_word}: use {scheme}://<{bucket_word}>/<prefix>"
        )));
    }
    let prefix = url_prefix(&url, false, scheme)?;
    Ok((url, bucket, prefix))
}

/// The URL path as an object prefix (percent-decoded, surrounding slashes dropped). With
/// `with_host`, the host is the first segment (`memory://a/b` → `a/b`).
fn url_prefix(url: &Url, with_host: bool, scheme: &str) -> Result<Path, StorageError> {
    let host = if with_host {
        url.host_str().unwrap_or_default()
    } else {
        ""
    };
    let joined = format!("{host}/{}", url.path().trim_matches('/'));
    Path::from_url_path(joined.trim_matches('/'))
        .map_err(|e| config(format!("{scheme}:// URL has an invalid prefix: {e}")))
}

fn display(scheme: &str, location: &str, prefix: &Path) -> String {
    if prefix.as_ref().is_empty() {
        format!("{scheme}://{location}")
    } else {
        format!("{scheme}://{location}/{prefix}")
    }
}

/// `(lower-cased key, value)` for every variable starting with `start`, the way object_store's
/// `from_env` builders read them. Sorted, so the outcome does not depend on map order.
fn prefixed<'a>(env: &'a HashMap<String, String>, start: &str) -> Vec<(String, &'a str)> {
    let mut out: Vec<(String, &str)> = env
        .iter()
        .filter(|(k, _)| k.starts_with(start))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    out.sort();
    out
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "on" | "yes" | "y"
    )
}

/// The S3 builder for `bucket`, configured from `env` (see the module docs for precedence).
fn s3_builder(
    bucket: &str,
    env: &HashMap<String, String>,
) -> Result<AmazonS3Builder, StorageError> {
    let var = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let mut b = AmazonS3Builder::new();
    for (k, v) in prefixed(env, "AWS_") {
        if let Ok(key) = k.parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    let endpoint = var("AWS_ENDPOINT_URL_S3")
        .or_else(|| var("AWS_ENDPOINT_URL"))
        .or_else(|| var("AWS_ENDPOINT"));
    if let Some(endpoint) = endpoint {
        let parsed = Url::parse(endpoint).map_err(|_| {
            config("the S3 endpoint (AWS_ENDPOINT_URL / AWS_ENDPOINT) must be a URL like http://127.0.0.1:9000")
        })?;
        if parsed.password().is_some() || !parsed.username().is_empty() {
            return Err(config(
                "the S3 endpoint URL must not contain credentials: use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
            ));
        }
        let explicit_http = var("AWS_ALLOW_HTTP").map(truthy);
        match parsed.scheme() {
            "https" => {}
            "http" => match explicit_http {
                Some(true) => {}
                Some(false) => {
                    return Err(config(format!(
                        "the S3 endpoint {endpoint} is plain http but AWS_ALLOW_HTTP is false"
                    )));
                }
                None if crate::config::is_loopback(&parsed) => b = b.with_allow_http(true),
                None => {
                    return Err(config(format!(
                        "the S3 endpoint {endpoint} is plain http: set AWS_ALLOW_HTTP=true to allow \
                         unencrypted traffic (allowed automatically only for loopback endpoints)"
                    )));
                }
            },
            other => {
                return Err(config(format!(
                    "the S3 endpoint must be an http:// or https:// URL, not {other}://"
                )));
            }
        }
        b = b.with_endpoint(endpoint);
    }
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .unwrap_or("us-east-1");
    let virtual_hosted = var("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some_and(truthy);
    Ok(b.with_region(region)
        .with_virtual_hosted_style_request(virtual_hosted)
        .with_bucket_name(bucket))
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Static test keys: without them the credential chain would fall back to the EC2 metadata
    /// endpoint (169.254.169.254) at request time.
    fn s3_env(extra: &[(&str, &str)]) -> HashMap<String, String> {
        let mut e = env(&[
            ("AWS_ACCESS_KEY_ID", "AKTEST"),
            ("AWS_SECRET_ACCESS_KEY", "SKTEST-very-secret"),
        ]);
        e.extend(env(extra));
        e
    }

    fn config_err(r: Result<Destination, StorageError>) -> String {
        match r {
            Err(StorageError::Config(m)) => m,
            Err(other) => panic!("not a config error: {other}"),
            Ok(d) => panic!("opened {}", d.url),
        }
    }

    async fn objects(dest: &Destination) -> Vec<String> {
        dest.store
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn local_absolute_directory_is_created_and_writable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/greenhouse-data");
        let dest = open_with_env(dir.to_str().unwrap(), &HashMap::new()).unwrap();
        assert_eq!(dest.kind, Kind::Local);
        assert!(dir.is_dir());
        assert_eq!(dest.prefix, Path::default());
        let canonical = std::fs::canonicalize(&dir).unwrap();
        assert_eq!(dest.url, format!("file://{}", canonical.display()));
        probe_writable(&dest).await.unwrap();
        // The probe leaves nothing behind, not even its directory.
        assert!(objects(&dest).await.is_empty());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        // Keys land inside the directory.
        dest.store
            .put(&Path::from("s/x.txt"), PutPayload::from_static(b"1"))
            .await
            .unwrap();
        assert!(dir.join("s/x.txt").is_file());
    }

    #[tokio::test]
    async fn file_urls_absolute_and_relative() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("with space");
        let url = Url::from_directory_path(&dir).unwrap();
        let dest = open_with_env(url.as_str(), &HashMap::new()).unwrap();
        assert_eq!(dest.kind, Kind::Local);
        assert!(dir.is_dir());
        probe_writable(&dest).await.unwrap();

        // Relative forms resolve against the working directory (not changed here: tests run in
        // parallel). Use a unique name under target/ and remove it afterwards.
        let rel = format!("target/storage-test-{}", uuid::Uuid::now_v7());
        for dest_str in [rel.clone(), format!("./{rel}"), format!("file://./{rel}")] {
            let dest = open_with_env(&dest_str, &HashMap::new()).unwrap();
            assert_eq!(dest.kind, Kind::Local, "{dest_str}");
            let expected = std::fs::canonicalize(&rel).unwrap();
            assert_eq!(dest.url, format!("file://{}", expected.display()));
            probe_writable(&dest).await.unwrap();
        }
        std::fs::remove_dir_all(&rel).unwrap();
    }

    #[test]
    fn file_urls_cannot_escape_the_folder_they_name_through_percent_encoding() {
        let tmp = tempfile::tempdir().unwrap();
        let named = tmp.path().join("named");
        let base = Url::from_directory_path(&named).unwrap().to_string();
        for tail in [
            "..%2Foutside",
            "..%2foutside",
            "%2E%2E%2Foutside",
            "a%2F..%2F..%2Foutside",
            "..%5Coutside",
            "x%00y",
        ] {
            let e = config_err(open_with_env(&format!("{base}{tail}"), &HashMap::new()));
            assert!(e.contains("percent-encoding"), "{tail}: {e}");
        }
        assert!(!tmp.path().join("outside").exists());
        assert!(!named.exists(), "nothing is created for a refused URL");
        // Plain and harmless encodings still work.
        let dest = open_with_env(&format!("{base}with%20space"), &HashMap::new()).unwrap();
        assert!(dest.url.ends_with("named/with%20space"), "{}", dest.url);
    }

    #[tokio::test]
    async fn memory_destinations() {
        let dest = open_with_env("memory://", &HashMap::new()).unwrap();
        assert_eq!(dest.kind, Kind::Memory);
        assert_eq!(dest.prefix, Path::default());
        assert_eq!(dest.url, "memory://");
        probe_writable(&dest).await.unwrap();
        assert!(objects(&dest).await.is_empty());

        let dest = open_with_env("memory:///raw/greenhouse/", &HashMap::new()).unwrap();
        assert_eq!(dest.prefix.as_ref(), "raw/greenhouse");
        assert_eq!(dest.url, "memory:///raw/greenhouse");
        let dest = open_with_env("memory://raw/greenhouse", &HashMap::new()).unwrap();
        assert_eq!(dest.prefix.as_ref(), "raw/greenhouse");
    }

    #[test]
    fn bad_destinations_say_what_to_fix() {
        let none = HashMap::new();
        assert!(config_err(open_with_env("", &none)).contains("empty"));
        assert!(config_err(open_with_env("ftp://host/x", &none)).contains("unsupported scheme"));
        assert!(config_err(open_with_env("s3:///prefix", &s3_env(&[]))).contains("no bucket"));
        assert!(config_err(open_with_env("gs://", &none)).contains("no bucket"));
        assert!(config_err(open_with_env("az:///x", &none)).contains("no container"));
        assert!(config_err(open_with_env("s3:bucket/prefix", &none)).contains("s3://"));
        assert!(config_err(open_with_env("file://relative/x", &none)).contains("absolute"));
        let m = config_err(open_with_env(
            "s3://bucket/p?X-Amz-Signature=topsecret",
            &s3_env(&[]),
        ));
        assert!(!m.contains("topsecret"), "{m}");
        let m = config_err(open_with_env("s3://user:topsecret@bucket/p", &s3_env(&[])));
        assert!(!m.contains("topsecret"), "{m}");
    }

    #[test]
    fn s3_with_an_endpoint_builds_without_network() {
        let e = s3_env(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9014")]);
        let dest = open_with_env("s3://bucket1/raw/greenhouse/", &e).unwrap();
        assert_eq!(dest.kind, Kind::S3);
        assert_eq!(dest.url, "s3://bucket1/raw/greenhouse");
        assert_eq!(dest.prefix.as_ref(), "raw/greenhouse");
        assert!(!format!("{dest:?}").contains("SKTEST"));

        let b = s3_builder("bucket1", &e).unwrap();
        let get = |k| b.get_config_value(&k);
        assert_eq!(
            get(AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("http://127.0.0.1:9014")
        );
        assert_eq!(get(AmazonS3ConfigKey::Region).as_deref(), Some("us-east-1"));
        assert_eq!(get(AmazonS3ConfigKey::Bucket).as_deref(), Some("bucket1"));
        assert_eq!(
            get(AmazonS3ConfigKey::VirtualHostedStyleRequest).as_deref(),
            Some("false")
        );
        assert_eq!(
            get(AmazonS3ConfigKey::Client(
                object_store::ClientConfigKey::AllowHttp
            ))
            .as_deref(),
            Some("true")
        );
    }

    #[test]
    fn s3_environment_precedence() {
        let b = s3_builder(
            "b",
            &s3_env(&[
                ("AWS_ENDPOINT", "https://old.example"),
                ("AWS_ENDPOINT_URL", "https://new.example"),
                ("AWS_DEFAULT_REGION", "eu-west-1"),
                ("AWS_REGION", "eu-central-1"),
                ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Endpoint).as_deref(),
            Some("https://new.example")
        );
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Region).as_deref(),
            Some("eu-central-1")
        );
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::VirtualHostedStyleRequest)
                .as_deref(),
            Some("true")
        );
        let b = s3_builder("b", &s3_env(&[("AWS_DEFAULT_REGION", "ap-south-1")])).unwrap();
        assert_eq!(
            b.get_config_value(&AmazonS3ConfigKey::Region).as_deref(),
            Some("ap-south-1")
        );
    }

    #[test]
    fn plain_http_needs_consent_unless_loopback() {
        let remote = s3_env(&[("AWS_ENDPOINT", "http://minio.internal:9000")]);
        assert!(config_err(open_with_env("s3://b", &remote)).contains("AWS_ALLOW_HTTP=true"));
        let mut allowed = remote.clone();
        allowed.insert("AWS_ALLOW_HTTP".into(), "true".into());
        open_with_env("s3://b", &allowed).unwrap();
        for lo in [
            "http://localhost:9000",
            "http://127.0.0.2:9000",
            "http://[::1]:9000",
        ] {
            open_with_env("s3://b", &s3_env(&[("AWS_ENDPOINT", lo)])).unwrap();
        }
        let denied = s3_env(&[
            ("AWS_ENDPOINT", "http://localhost:9000"),
            ("AWS_ALLOW_HTTP", "false"),
        ]);
        assert!(config_err(open_with_env("s3://b", &denied)).contains("false"));
        let bad = s3_env(&[("AWS_ENDPOINT", "localhost:9000")]);
        assert!(config_err(open_with_env("s3://b", &bad)).contains("must be"));
    }

    #[test]
    fn gcs_and_azure_build_from_the_given_environment() {
        let gs = open_with_env(
            "gs://my-bucket/p",
            &env(&[(
                "GOOGLE_SERVICE_ACCOUNT_KEY",
                r#"{"type":"service_account","private_key":"SECRETVALUE","client_email":"a@b"}"#,
            )]),
        );
        // Building may reject the fake key, but only as a configuration error that names the
        // destination and not the key.
        match gs {
            Ok(d) => {
                assert_eq!(d.kind, Kind::Gcs);
                assert_eq!(d.url, "gs://my-bucket/p");
            }
            Err(StorageError::Config(m)) => {
                assert!(
                    m.contains("gs://my-bucket/p") && !m.contains("SECRETVALUE"),
                    "{m}"
                )
            }
            Err(e) => panic!("{e}"),
        }
        let az = open_with_env(
            "az://container/raw",
            &env(&[
                ("AZURE_STORAGE_ACCOUNT_NAME", "acct"),
                ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
            ]),
        )
        .unwrap();
        assert_eq!(az.kind, Kind::Azure);
        assert_eq!(az.url, "az://container/raw");
        let abfss = open_with_env(
            "abfss://data@acct.dfs.core.windows.net/raw/gh",
            &env(&[("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")]),
        )
        .unwrap();
        assert_eq!(abfss.url, "abfss://data@acct.dfs.core.windows.net/raw/gh");
        assert_eq!(abfss.prefix.as_ref(), "raw/gh");
    }

    #[tokio::test]
    async fn probe_reports_an_unreachable_endpoint() {
        // Port 1 on loopback: connection refused, retried by object_store until the time limit.
        let e = s3_env(&[("AWS_ENDPOINT", "http://127.0.0.1:1")]);
        let dest = open_with_env("s3://bucket/p", &e).unwrap();
        let err = probe_writable_within(&dest, Duration::from_secs(2))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("s3://bucket/p") && text.contains("unreachable"),
            "{text}"
        );
        assert!(!text.contains("SKTEST"));
    }
}
