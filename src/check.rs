//! `greenhouse-extract check`: validates the configuration (already done by the caller), obtains
//! a token, probes each selected stream with one cheap request (`per_page=1`), and verifies the
//! destination is writable (writes and deletes a probe object) and honours conditional writes
//! (creates a probe object under `_state/` twice: the second create must fail, see
//! [`crate::state`]; a store that ignores it is unusable unless `single_writer` is set).
//!
//! It prints one row per stream with its scope, status and Drivetrain permission group, so a
//! Greenhouse admin knows exactly which boxes to tick. Exit codes: success when everything is
//! accessible, partial when some streams are not, auth when no token could be obtained,
//! destination when the destination is unusable.

use futures::StreamExt;

use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::harvest::{FetchError, Forbidden, HarvestClient, RequestStats};
use crate::registry::{Registry, Stream};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeStatus {
    Ok,
    MissingScope,
    NotSiteAdmin,
    Error(String),
}

impl ProbeStatus {
    pub fn label(&self) -> String {
        match self {
            ProbeStatus::Ok => "ok".into(),
            ProbeStatus::MissingScope => "missing scope".into(),
            ProbeStatus::NotSiteAdmin => "not a Site Admin".into(),
            ProbeStatus::Error(e) => format!("error: {e}"),
        }
    }
}

/// Probes one stream with a single one-record request.
pub async fn probe(client: &HarvestClient, stream: &Stream) -> Result<ProbeStatus, Error> {
    let params = stream.partition_params().swap_remove(0);
    let url = client.first_page_url(&stream.resource, &params, Some(1));
    let stats = RequestStats::default();
    match client.get_page(&url, &stats).await {
        Ok(_) => Ok(ProbeStatus::Ok),
        Err(FetchError::Forbidden { reason, .. }) => Ok(match reason {
            Forbidden::MissingScope => ProbeStatus::MissingScope,
            Forbidden::NotSiteAdmin => ProbeStatus::NotSiteAdmin,
        }),
        Err(FetchError::Auth(m)) => Err(Error::Auth(m)),
        Err(e) => Ok(ProbeStatus::Error(e.to_string())),
    }
}

/// Obtains a token and probes every selected stream, sorted by name. Shared by `check` and the
/// Airbyte `check` (which reports the outcome as a connection status instead of a table).
/// A refused credential is [`Error::Auth`]; a token endpoint that cannot be used is fatal.
pub async fn probe_streams<'r>(
    config: &Config,
    registry: &'r Registry,
) -> Result<Vec<(&'r Stream, ProbeStatus)>, Error> {
    let streams = config.selected(registry)?;
    let client = HarvestClient::new(config).map_err(|e| Error::Fatal(e.to_string()))?;
    match client.authenticate().await {
        Ok(()) => {}
        Err(FetchError::Auth(m)) => return Err(Error::Auth(m)),
        Err(FetchError::TokenUnavailable(m)) => return Err(Error::TokenUnavailable(m)),
        Err(e) => {
            return Err(Error::Fatal(format!(
                "could not obtain a token from {}: {e}",
                config.token_url
            )));
        }
    }
    let mut results: Vec<(&Stream, ProbeStatus)> = futures::stream::iter(streams)
        .map(|s| {
            let client = &client;
            async move { probe(client, s).await.map(|st| (s, st)) }
        })
        .buffer_unordered(config.max_in_flight)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    results.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(results)
}

/// What to do about streams refused for lack of a grant, one sentence per kind of problem
/// (empty when none is). Probe errors are not grants: callers show them as they are.
pub fn advice(results: &[(&Stream, ProbeStatus)]) -> Vec<String> {
    let mut out = Vec::new();
    let missing: Vec<&str> = results
        .iter()
        .filter(|(_, st)| *st == ProbeStatus::MissingScope)
        .map(|(s, _)| s.scope.as_str())
        .collect();
    if !missing.is_empty() {
        out.push(format!(
            "Grant these scopes to the credential (Dev Center → API Credentials): {}",
            missing.join(", ")
        ));
    }
    if results
        .iter()
        .any(|(_, st)| *st == ProbeStatus::NotSiteAdmin)
    {
        out.push(
            "The token's user is not a Site Admin: remove `sub` or make that user a Site Admin."
                .to_string(),
        );
    }
    out
}

pub async fn run(config: &Config, registry: &Registry) -> Result<ExitCode, Error> {
    // Parse the destination before the first request: a malformed URL is a config error.
    let dest = crate::storage::open(&config.destination)?;
    let results = probe_streams(config, registry).await?;
    println!(
        "Authentication: ok (token obtained from {})",
        config.token_url
    );

    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|(s, st)| vec![s.name.clone(), s.scope.clone(), st.label(), s.group.clone()])
        .collect();
    println!();
    print!(
        "{}",
        crate::table::text_table(
            &["stream", "scope", "status", "permission group"],
            &rows,
            &[]
        )
    );
    let bad: Vec<&(&Stream, ProbeStatus)> = results
        .iter()
        .filter(|(_, st)| *st != ProbeStatus::Ok)
        .collect();
    println!();
    println!(
        "Streams: {} ok, {} not accessible",
        results.len() - bad.len(),
        bad.len()
    );
    for line in advice(&results) {
        println!("{line}");
    }

    if let Err(e) = crate::storage::probe_writable(&dest).await {
        println!("Destination: unusable ({e})");
        return Err(Error::Destination(format!(
            "{} is not writable: {e}",
            dest.url
        )));
    }
    let state = crate::state::StateStore::new(dest.store.clone(), dest.prefix.clone());
    match state.probe_conditional_create().await {
        Ok(true) => println!(
            "Destination: ok ({} is writable and honours conditional writes)",
            dest.url
        ),
        Ok(false) if config.single_writer => println!(
            "Destination: ok ({} is writable; it ignores conditional writes, accepted because \
             single_writer is set: never run two syncs on it at once)",
            dest.url
        ),
        Ok(false) => {
            let why = crate::state::ignores_conditional_writes(&dest.prefix);
            println!("Destination: unusable ({why})");
            return Err(Error::Destination(format!("{}: {why}", dest.url)));
        }
        Err(e) => {
            let e = e.into_error();
            println!("Destination: unusable ({e})");
            return Err(e);
        }
    }
    Ok(if bad.is_empty() {
        ExitCode::Success
    } else {
        ExitCode::Partial
    })
}
