//! `state show|reset|unlock`: what an operator needs to look at and repair a destination's
//! state without editing objects by hand.
//!
//! Contract: `show` only reads (it never creates a folder, takes no lease, writes nothing);
//! `reset` checks every name before touching anything and then commits through
//! [`crate::state::StateStore::reset_streams`] (under the lease, a new generation, recorded in a
//! manifest); `unlock` removes only a stale lease (see
//! [`crate::state::StateStore::clear_lease`]). None of them needs Greenhouse credentials.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use crate::config::{ConfigFile, DEFAULT_DESTINATION};
use crate::error::{Error, ExitCode};
use crate::registry::Registry;
use crate::state::{LeaseClear, State, StateError, StateStore};
use crate::storage::Destination;

/// How long a reset holds the lease at most (it takes a few requests).
const RESET_LEASE_TTL: Duration = Duration::from_secs(120);

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Print the bookmarks, slice progress, last run and lease of the destination's state.
    Show {
        #[command(flatten)]
        target: Target,
        /// Only these streams (comma-separated; a stream without state is shown as such).
        #[arg(long, value_delimiter = ',', value_name = "a,b,c")]
        streams: Option<Vec<String>>,
        /// The state document, lease and last manifest as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget the bookmarks of chosen streams, so the next sync re-reads them from scratch
    /// (from start_date). Takes the run lease, writes a new state generation and records the
    /// reset in `_runs/<run_id>/manifest.json`; data files are kept.
    Reset {
        #[command(flatten)]
        target: Target,
        /// The streams to reset (comma-separated).
        #[arg(long, value_delimiter = ',', value_name = "a,b,c", required = true)]
        streams: Vec<String>,
        /// Also drop them from this local state file (as given to `sync --state-file`).
        #[arg(long, value_name = "FILE")]
        state_file: Option<PathBuf>,
    },
    /// Remove a stale run lease (its run crashed). Refuses a lease whose holder still runs on
    /// this host; a live lease of another host needs --force.
    Unlock {
        #[command(flatten)]
        target: Target,
        /// Also remove a live lease held from another host (only when you know that run is gone).
        #[arg(long)]
        force: bool,
    },
}

/// Which destination the command works on.
#[derive(Debug, Args, Clone, Default)]
pub struct Target {
    /// Destination URL or folder (overrides GREENHOUSE_DESTINATION and the config file).
    #[arg(long, value_name = "URL")]
    pub destination: Option<String>,
}

pub async fn run(
    command: &StateCommand,
    config: Option<&Path>,
    registry: &Registry,
) -> Result<ExitCode, Error> {
    let file = ConfigFile::load_with_env(config)?;
    let single_writer = file.single_writer.unwrap_or(false);
    let destination = |t: &Target| {
        t.destination
            .clone()
            .or_else(|| file.destination.clone())
            .unwrap_or_else(|| DEFAULT_DESTINATION.to_string())
    };
    match command {
        StateCommand::Show {
            target,
            streams,
            json,
        } => {
            let names = match streams {
                Some(n) => Some(crate::config::resolve_stream_names(n, registry)?),
                None => None,
            };
            show(&destination(target), names.as_deref(), *json).await
        }
        StateCommand::Reset {
            target,
            streams,
            state_file,
        } => {
            let names = crate::config::resolve_stream_names(streams, registry)?;
            reset(
                &destination(target),
                &names,
                state_file.as_deref(),
                single_writer,
            )
            .await
        }
        StateCommand::Unlock { target, force } => {
            unlock(&destination(target), *force, single_writer).await
        }
    }
}

fn open(destination: &str) -> Result<Option<(Destination, StateStore)>, Error> {
    Ok(crate::storage::open_existing(destination)?.map(|d| {
        let store = StateStore::new(d.store.clone(), d.prefix.clone());
        (d, store)
    }))
}

fn ts(t: Option<DateTime<Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}

async fn show(destination: &str, only: Option<&[String]>, json: bool) -> Result<ExitCode, Error> {
    let Some((dest, store)) = open(destination)? else {
        println!(
            "No state at {destination}: the folder does not exist (every stream starts from scratch)."
        );
        return Ok(ExitCode::Success);
    };
    let state = store.load().await.map_err(StateError::into_error)?;
    let lease = store.read_lease().await.map_err(StateError::into_error)?;
    let last = match &state.last_run_id {
        Some(id) => store.read_manifest(id).await.ok().flatten(),
        None => None,
    };
    let shown: Vec<String> = match only {
        Some(n) => n.to_vec(),
        None => state.streams.keys().cloned().collect(),
    };
    if json {
        let mut doc = state.clone();
        doc.streams.retain(|k, _| shown.contains(k));
        let out = serde_json::json!({
            "destination": dest.url,
            "state_key": (state.generation > 0).then(|| store.generation_key(state.generation).to_string()),
            "state": doc,
            "lease": lease,
            "last_run": last,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&out).expect("state serialises")
        );
        return Ok(ExitCode::Success);
    }
    print!("{}", render(&dest.url, &store, &state, &shown));
    match &last {
        Some(m) => println!(
            "Last run: {} {} (started {}, finished {})",
            m.run_id,
            m.status,
            ts(Some(m.started_at)),
            ts(m.finished_at)
        ),
        None => {
            if let Some(id) = &state.last_run_id {
                println!("Last run: {id} (no manifest)");
            }
        }
    }
    let now = Utc::now();
    match &lease {
        None => println!("Lease: none (no run is working on this destination)"),
        Some(l) => println!(
            "Lease: {} until {} ({})",
            l.describe(),
            ts(Some(l.expires_at)),
            if l.is_live(now) && !l.holder_is_gone() {
                "live"
            } else {
                "stale: the next run takes it over; `state unlock` removes it"
            }
        ),
    }
    Ok(ExitCode::Success)
}

/// The header and the per-stream table of `state show`.
fn render(url: &str, store: &StateStore, state: &State, shown: &[String]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "Destination: {url}");
    if state.generation == 0 {
        let _ = writeln!(out, "State: none yet (every stream starts from scratch)");
    } else {
        let _ = writeln!(
            out,
            "State: generation {} (`{}`), committed {} by run {}",
            state.generation,
            store.generation_key(state.generation),
            ts(state.updated_at),
            state.last_run_id.as_deref().unwrap_or("-")
        );
    }
    if !state.open_runs.is_empty() {
        let ids: Vec<&str> = state.open_runs.keys().map(String::as_str).collect();
        let _ = writeln!(
            out,
            "Open runs (manifest not final yet): {}",
            ids.join(", ")
        );
    }
    if shown.is_empty() {
        return out;
    }
    let rows: Vec<[String; 6]> = shown
        .iter()
        .map(|name| match state.stream(name) {
            None => [
                name.clone(),
                "- (reads from scratch)".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
            Some(s) => [
                name.clone(),
                ts(s.bookmark),
                ts(s.committed_at),
                format!("{}/{}", s.rows, s.files),
                s.slices
                    .as_ref()
                    .map(|sl| {
                        format!(
                            "{}/{} done, window to {}",
                            sl.done.len(),
                            sl.cuts.len() + 1,
                            ts(Some(sl.window_to))
                        )
                    })
                    .unwrap_or_else(|| "-".into()),
                s.run_id.clone().unwrap_or_else(|| "-".into()),
            ],
        })
        .collect();
    let header = [
        "stream",
        "bookmark",
        "committed",
        "rows/files",
        "slices",
        "run",
    ];
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let _ = write!(l, "{c:<w$}  ", w = widths[i]);
        }
        l.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header));
    for r in &rows {
        let cells: Vec<&str> = r.iter().map(String::as_str).collect();
        let _ = writeln!(out, "{}", line(&cells));
    }
    out
}

async fn reset(
    destination: &str,
    names: &[String],
    state_file: Option<&Path>,
    single_writer: bool,
) -> Result<ExitCode, Error> {
    // The local file is checked first: a bad one stops the reset before the destination changes.
    let local = match state_file {
        Some(p) if p.exists() => Some(
            crate::state::load_file(p)
                .map_err(|e| Error::Config(format!("state file {}: {e}", p.display())))?,
        ),
        _ => None,
    };
    match open(destination)? {
        None => println!("No state at {destination}: nothing to reset there."),
        Some((_, store)) => {
            let store = store.single_writer(single_writer);
            let run_id = uuid::Uuid::now_v7().to_string();
            let out = store
                .reset_streams(&run_id, names, RESET_LEASE_TTL)
                .await
                .map_err(StateError::into_error)?;
            if out.reset.is_empty() {
                println!(
                    "Nothing to reset: {} had no state (they already start from scratch). Nothing was written.",
                    names.join(", ")
                );
            } else {
                println!(
                    "Reset {}: the next sync reads them from scratch (from start_date, or everything).",
                    out.reset.join(", ")
                );
                println!(
                    "State generation {} written by run {}; recorded in {}.",
                    out.state.generation,
                    out.run_id.as_deref().unwrap_or("-"),
                    out.manifest_key.as_deref().unwrap_or("-")
                );
                if !out.absent.is_empty() {
                    println!("Had no state (unchanged): {}.", out.absent.join(", "));
                }
            }
        }
    }
    if let (Some(path), Some(mut local)) = (state_file, local) {
        let before = local.streams.len();
        local.streams.retain(|k, _| !names.contains(k));
        if local.streams.len() != before {
            crate::state::save_file(path, &local)
                .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?;
            println!("Dropped them from the state file {} too.", path.display());
        }
    }
    Ok(ExitCode::Success)
}

async fn unlock(destination: &str, force: bool, single_writer: bool) -> Result<ExitCode, Error> {
    let Some((_, store)) = open(destination)? else {
        println!("No lease at {destination}: the folder does not exist.");
        return Ok(ExitCode::Success);
    };
    match store
        .single_writer(single_writer)
        .clear_lease(force)
        .await
        .map_err(StateError::into_error)?
    {
        LeaseClear::NoLease => println!("No lease on {destination}: nothing to remove."),
        LeaseClear::Cleared(rec) => println!("Removed the lease of {}.", rec.describe()),
    }
    Ok(ExitCode::Success)
}
