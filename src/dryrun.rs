//! `greenhouse-extract sync --dry-run`: what a sync would read, and roughly what it would cost,
//! without changing anything.
//!
//! It validates the configuration, reads the destination's state **read-only** (no lease, no
//! state generation, no manifest, no probe object; a local destination folder that does not exist
//! is not created — with `--state-file`, that file is read as `sync` would), obtains a token,
//! plans every selected stream's window exactly like `sync` ([`crate::sync::window::plan`] with
//! the same signpost rule), then sends **one** request per stream partition: the stream's real
//! first page with the window filter and the configured `per_page`. That tells whether the window
//! fits in one page and what the rate limit is now.
//!
//! Estimated requests per stream: the partitions whose first page had no next link cost exactly
//! one request each; otherwise the previous committed run's rows per unit of window length
//! (state `rows` plus that run's manifest) scale to this window, and when nothing is known the
//! estimate is only "more than one page". Exit codes match `sync`: configuration 2,
//! authentication 4, destination 5; a stream without its scope is shown as skipped and does not
//! fail the dry run.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::config::Config;
use crate::error::{Error, ExitCode};
use crate::harvest::budget::RateLimit;
use crate::harvest::{FetchError, Forbidden, HarvestClient, RequestStats};
use crate::registry::{Registry, Stream};
use crate::state::{State, StateStore};
use crate::sync::window::{self, Window};

/// Greenhouse's fixed rate-limit window.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// How many requests a stream's window is expected to take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Estimate {
    /// Every partition fits in one page: exactly this many requests.
    Exact(u64),
    /// Scaled from the previous committed run.
    About(u64),
    /// More than one page and nothing known about the volume: at least this many requests.
    AtLeast(u64),
    /// The stream cannot be read with this credential; `sync` would skip it.
    Skipped(String),
    /// The probe failed; `sync` would most likely fail this stream.
    Failed(String),
}

impl Estimate {
    /// Requests counted in the total (the lower bound where only that is known).
    fn requests(&self) -> u64 {
        match self {
            Estimate::Exact(n) | Estimate::About(n) | Estimate::AtLeast(n) => *n,
            Estimate::Skipped(_) | Estimate::Failed(_) => 0,
        }
    }

    fn label(&self) -> String {
        match self {
            Estimate::Exact(n) => n.to_string(),
            Estimate::About(n) => format!("~{n}"),
            Estimate::AtLeast(_) => "> 1 (more than per_page rows)".into(),
            Estimate::Skipped(_) | Estimate::Failed(_) => "-".into(),
        }
    }
}

/// One stream's line of the plan.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub stream: String,
    pub window: Window,
    /// Rows on the probed first pages (all partitions).
    pub probe_rows: u64,
    pub estimate: Estimate,
    pub note: String,
    /// Requests of the id listing this run would make to find deletes (`None`: not due).
    pub reconcile: Option<u64>,
}

/// What the previous committed run of a stream read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History {
    pub rows: u64,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Runs the dry run and prints its plan on stdout.
pub async fn run(
    config: &Config,
    registry: &Registry,
    state_file: Option<&Path>,
    reconcile: Option<&[String]>,
) -> Result<ExitCode, Error> {
    let streams = config.selected(registry)?;
    // `sync` would refuse a state file it cannot write; so does its dry run (the probe file it
    // creates beside the state file is removed at once).
    if let Some(path) = state_file {
        crate::sync::run::check_state_file(path)?;
    }
    let dest = crate::storage::open_existing(&config.destination)?;
    let store = dest
        .as_ref()
        .map(|d| StateStore::new(d.store.clone(), d.prefix.clone()));
    let (state, state_source) = match (state_file, &store) {
        (Some(path), _) if path.exists() => (
            crate::state::load_file(path)
                .map_err(|e| Error::Config(format!("state file {}: {e}", path.display())))?,
            format!("state file {}", path.display()),
        ),
        (_, Some(store)) => (
            store
                .load()
                .await
                .map_err(crate::state::StateError::into_error)?,
            dest.as_ref().map(|d| d.url.clone()).unwrap_or_default(),
        ),
        (_, None) => (
            State::empty(),
            format!("{} (does not exist yet)", config.destination),
        ),
    };
    let signpost = crate::sync::signpost(Utc::now(), crate::sync::signpost_skew());
    // Refused exactly as `sync` refuses them, before the first request.
    window::check_bookmarks(&state, streams.iter().copied(), signpost).map_err(|b| {
        match (state_file, &store) {
            (Some(path), _) if path.exists() => Error::Config(b.message(
                &format!("the state file {}", path.display()),
                &window::state_file_fix(&b.stream, path),
            )),
            (_, store) => {
                let key = store
                    .as_ref()
                    .map(|s| s.generation_key(state.generation).to_string())
                    .unwrap_or_default();
                Error::Destination(b.message(
                    &format!("the destination's state `{key}`"),
                    &window::destination_fix(&b.stream, &key),
                ))
            }
        }
    })?;
    let client = HarvestClient::new(config).map_err(|e| Error::Fatal(e.to_string()))?;
    client.authenticate().await.map_err(|e| match e {
        FetchError::Auth(m) => Error::Auth(m),
        FetchError::TokenUnavailable(m) => Error::TokenUnavailable(m),
        other => Error::Fatal(format!("could not obtain a token: {other}")),
    })?;

    let mut plans: Vec<StreamPlan> = futures::stream::iter(streams)
        .map(|stream| {
            let (client, state, store) = (&client, &state, store.as_ref());
            async move {
                let window = window::plan(
                    stream,
                    state.bookmark(&stream.name),
                    config.start_date,
                    config.lookback,
                    signpost,
                );
                plan_stream(client, stream, window, store, state, config.per_page).await
            }
        })
        .buffer_unordered(config.max_in_flight)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    plans.sort_by(|a, b| a.stream.cmp(&b.stream));
    // Id listings the deletes phase would make (their tombstones are known only after them).
    let now = Utc::now();
    for plan in &mut plans {
        let Some(stream) = registry.get(&plan.stream) else {
            continue;
        };
        let entry = state.stream(&stream.name);
        if matches!(plan.estimate, Estimate::Skipped(_) | Estimate::Failed(_)) {
            continue;
        }
        // A read from the beginning lists every live id anyway: it is the reconcile, for free.
        if plan.window.from.is_none() && crate::sync::deletes::indexed(stream) {
            plan.reconcile = Some(0);
            continue;
        }
        if !crate::sync::deletes::reconcile_due(&config.reconcile, reconcile, stream, entry, now) {
            continue;
        }
        plan.reconcile = Some(if stream.is_incremental() {
            let live = entry.and_then(|e| e.ids.as_ref()).map_or(0, |r| r.live);
            crate::sync::deletes::listing_requests(live, stream.partition_params().len() as u64)
        } else {
            0 // its own full read is the listing
        });
    }

    println!("Dry run: nothing is written (no lease, no state, no data files).");
    println!(
        "State: generation {} from {state_source}; signpost {}",
        state.generation,
        signpost.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    println!();
    print!("{}", render(&plans, client.rate_limit()));
    Ok(ExitCode::Success)
}

/// Probes every partition of one stream's window with its real first page.
async fn plan_stream(
    client: &HarvestClient,
    stream: &Stream,
    window: Window,
    store: Option<&StateStore>,
    state: &State,
    per_page: u32,
) -> Result<StreamPlan, Error> {
    let mut probe_rows = 0u64;
    let mut partitions = 0u64;
    let mut with_more = 0u64;
    for params in window::first_page_params(stream, &window::Range::whole(&window)) {
        partitions += 1;
        let url = client.first_page_url(&stream.resource, &params, None);
        match client.get_page(&url, &RequestStats::default()).await {
            Ok(page) => {
                probe_rows += count_rows(&page.body);
                with_more += u64::from(page.next.is_some());
            }
            Err(FetchError::Auth(m)) => return Err(Error::Auth(m)),
            Err(FetchError::Forbidden { reason, .. }) => {
                let why = match reason {
                    Forbidden::MissingScope => format!("missing scope {}", stream.scope),
                    Forbidden::NotSiteAdmin => "not a Site Admin".to_string(),
                };
                return Ok(StreamPlan {
                    stream: stream.name.clone(),
                    window,
                    probe_rows,
                    estimate: Estimate::Skipped(why.clone()),
                    note: format!("skipped: {why}"),
                    reconcile: None,
                });
            }
            Err(e) => {
                let msg = e.to_string();
                return Ok(StreamPlan {
                    stream: stream.name.clone(),
                    window,
                    probe_rows,
                    estimate: Estimate::Failed(msg.clone()),
                    note: format!("probe failed: {msg}"),
                    reconcile: None,
                });
            }
        }
    }
    // The previous run's manifest is read only when the probe could not settle the estimate.
    let history = match store {
        Some(store) if with_more > 0 => history(store, state, &stream.name).await,
        _ => None,
    };
    let (estimate, note) = estimate(&window, partitions, with_more, history, per_page);
    Ok(StreamPlan {
        stream: stream.name.clone(),
        window,
        probe_rows,
        estimate,
        note,
        reconcile: None,
    })
}

/// The previous committed run of `stream`: rows from the state, its window from its manifest.
async fn history(store: &StateStore, state: &State, stream: &str) -> Option<History> {
    let entry = state.stream(stream)?;
    entry.committed_at?;
    let manifest = match &entry.run_id {
        Some(run) => store.read_manifest(run).await.ok().flatten(),
        None => None,
    };
    let window = manifest.as_ref().and_then(|m| m.streams.get(stream));
    Some(History {
        rows: entry.rows,
        from: window.and_then(|w| w.window_from),
        to: window.and_then(|w| w.window_to),
    })
}

/// The estimate for one stream from its probes and its history. Pure, so it is unit-tested.
pub fn estimate(
    window: &Window,
    partitions: u64,
    with_more: u64,
    history: Option<History>,
    per_page: u32,
) -> (Estimate, String) {
    if with_more == 0 {
        return (Estimate::Exact(partitions), "fits in one page".into());
    }
    // A partition with a next link needs at least two requests.
    let floor = partitions + with_more;
    let per_page = u64::from(per_page.max(1));
    let scaled = history.and_then(|h| {
        let rows = match (window.from, window.to, h.from, h.to) {
            // Both windows bounded: scale the previous run's rows by the windows' lengths.
            (Some(f), Some(t), Some(hf), Some(ht)) if ht > hf => {
                let ratio = (t - f).num_seconds().max(0) as f64 / (ht - hf).num_seconds() as f64;
                (h.rows as f64 * ratio).ceil() as u64
            }
            // Both read everything (full refresh, or a re-read from the beginning): same volume.
            (None, _, None, _) => h.rows,
            _ => return None,
        };
        Some((rows, h))
    });
    match scaled {
        Some((rows, h)) => {
            let n = rows.div_ceil(per_page).max(floor);
            let basis = match (h.from, h.to) {
                (Some(f), Some(t)) => format!(
                    "the last run read {} rows in {}",
                    h.rows,
                    span(t.signed_duration_since(f))
                ),
                _ => format!("the last run read {} rows", h.rows),
            };
            (Estimate::About(n), format!("about {rows} rows: {basis}"))
        }
        None => (
            Estimate::AtLeast(floor),
            "no earlier run to estimate from".into(),
        ),
    }
}

/// The plan table and its total lines.
pub fn render(plans: &[StreamPlan], rate: Option<RateLimit>) -> String {
    let rows: Vec<Vec<String>> = plans
        .iter()
        .map(|p| {
            let (from, to) = bounds(&p.window);
            vec![
                p.stream.clone(),
                from,
                to,
                p.probe_rows.to_string(),
                p.estimate.label(),
                p.reconcile
                    .map_or_else(|| "-".to_string(), |n| n.to_string()),
                p.note.clone(),
            ]
        })
        .collect();
    let mut out = crate::table::text_table(
        &[
            "stream",
            "window from",
            "to",
            "probe rows",
            "est. requests",
            "reconcile",
            "note",
        ],
        &rows,
        &[3, 5],
    );
    let listing: u64 = plans.iter().filter_map(|p| p.reconcile).sum();
    let reconciled = plans.iter().filter(|p| p.reconcile.is_some()).count();
    let total: u64 = plans.iter().map(|p| p.estimate.requests()).sum::<u64>() + listing;
    let lower_bound = plans
        .iter()
        .any(|p| matches!(p.estimate, Estimate::AtLeast(_)));
    let skipped = plans
        .iter()
        .filter(|p| matches!(p.estimate, Estimate::Skipped(_)))
        .count();
    out.push('\n');
    out.push_str(&format!(
        "Estimated requests: {}{total} for {} streams{}\n",
        if lower_bound { "at least " } else { "" },
        plans.len() - skipped,
        if skipped > 0 {
            format!(" ({skipped} would be skipped)")
        } else {
            String::new()
        }
    ));
    if reconciled > 0 {
        out.push_str(&format!(
            "Deletes: {reconciled} streams would be reconciled (id listings: {listing} requests, included above); their children follow through cascades at no request cost\n"
        ));
    }
    out.push_str(&time_line(total, rate));
    out
}

/// Time at the advertised limit: `requests / limit × 30 s`, less what still fits in the current
/// window (which then costs only the wait for its reset).
fn time_line(requests: u64, rate: Option<RateLimit>) -> String {
    let Some(rate) = rate else {
        return "Rate limit: not reported by the API; time cannot be estimated\n".into();
    };
    let limit = u64::from(rate.limit.max(1));
    let plain = Duration::from_secs_f64(requests as f64 / limit as f64 * RATE_WINDOW.as_secs_f64());
    let remaining = u64::from(rate.remaining);
    let reset = rate
        .resets_in
        .map(|d| format!(", resets in {} s", d.as_secs_f64().ceil() as u64))
        .unwrap_or_default();
    let expected = if requests <= remaining {
        "within the current window".to_string()
    } else {
        let later = requests - remaining;
        let wait = rate.resets_in.unwrap_or(RATE_WINDOW);
        let windows = (later - 1) / limit;
        format!(
            "about {}",
            span_std(wait + RATE_WINDOW * u32::try_from(windows).unwrap_or(u32::MAX))
        )
    };
    format!(
        "Rate limit: {} requests per 30 s; {remaining} left in the current window{reset}\n\
         Estimated time: {expected} ({requests} / {} × 30 s = {})\n",
        rate.limit,
        rate.limit,
        span_std(plain)
    )
}

fn bounds(w: &Window) -> (String, String) {
    let fmt = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S").to_string();
    match (&w.from, &w.to) {
        (_, None) => ("full refresh".into(), "-".into()),
        (from, Some(to)) => (
            from.as_ref().map(fmt).unwrap_or_else(|| "start".into()),
            fmt(to),
        ),
    }
}

fn count_rows(body: &[u8]) -> u64 {
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(body)
        .map(|v| v.len() as u64)
        .unwrap_or(0)
}

fn span(d: chrono::Duration) -> String {
    span_std(d.to_std().unwrap_or_default())
}

fn span_std(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", s.div_ceil(60)),
        7_200..=172_799 => format!("{:.1} h", s as f64 / 3600.0),
        _ => format!("{:.1} days", s as f64 / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    fn w(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Window {
        Window { from, to }
    }

    #[test]
    fn a_window_that_fits_in_one_page_costs_one_request_per_partition() {
        let (e, _) = estimate(&w(Some(t(1, 0)), Some(t(2, 0))), 2, 0, None, 500);
        assert_eq!(e, Estimate::Exact(2));
    }

    #[test]
    fn history_scales_by_window_length() {
        // Last run: 10,000 rows over 10 days; this window: 2 days → ~2,000 rows → 4 pages.
        let h = History {
            rows: 10_000,
            from: Some(t(1, 0)),
            to: Some(t(11, 0)),
        };
        let (e, note) = estimate(&w(Some(t(11, 0)), Some(t(13, 0))), 1, 1, Some(h), 500);
        assert_eq!(e, Estimate::About(4));
        assert!(note.contains("2000 rows"), "{note}");
        // Never below what the probe proved (a next link means at least two requests).
        let small = History { rows: 10, ..h };
        let (e, _) = estimate(&w(Some(t(11, 0)), Some(t(13, 0))), 1, 1, Some(small), 500);
        assert_eq!(e, Estimate::About(2));
    }

    #[test]
    fn unknown_volume_is_only_a_lower_bound() {
        let (e, _) = estimate(&w(None, Some(t(2, 0))), 1, 1, None, 500);
        assert_eq!(e, Estimate::AtLeast(2));
        assert_eq!(e.label(), "> 1 (more than per_page rows)");
        // A history without a window says nothing about a bounded window.
        let h = History {
            rows: 900,
            from: None,
            to: None,
        };
        let (e, _) = estimate(&w(Some(t(1, 0)), Some(t(2, 0))), 1, 1, Some(h), 500);
        assert_eq!(e, Estimate::AtLeast(2));
        // …but a full refresh reads the same volume again.
        let (e, _) = estimate(&w(None, None), 1, 1, Some(h), 500);
        assert_eq!(e, Estimate::About(2));
    }

    #[test]
    fn time_uses_the_limit_and_what_is_left_of_this_window() {
        let rate = RateLimit {
            limit: 50,
            remaining: 20,
            resets_in: Some(Duration::from_secs(10)),
        };
        let line = time_line(10, Some(rate));
        assert!(line.contains("within the current window"), "{line}");
        // 120 requests: 20 now, then 100 more = 2 windows after the reset at 10 s → 40 s.
        let line = time_line(120, Some(rate));
        assert!(line.contains("about 40 s"), "{line}");
        assert!(line.contains("120 / 50 × 30 s = 72 s"), "{line}");
        assert!(time_line(5, None).contains("not reported"));
    }
}
