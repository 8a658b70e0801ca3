//! The engine's own tests: real HTTP to the in-process simulator, records into the in-memory
//! output, so the engine's contract (exact output, commit order, slices, skips, interruption)
//! is checked without a destination.

use std::collections::BTreeMap;
use std::time::Instant;

use harvest_sim::client::SimClient;
use harvest_sim::{Background, SimConfig};
use serde_json::Value;

use super::options::{RunReport, Selected, SyncOptions};
use super::output::memory::MemoryOutput;
use super::run::run_with;
use super::summary::StreamStatus;
use crate::config::{ConfigFile, Overrides};
use crate::registry::Registry;
use crate::state::State;

fn sim(config: SimConfig) -> (Background, SimClient) {
    let server = Background::start(SimConfig {
        rate_limit: 0,
        ..config
    })
    .expect("simulator");
    let client = SimClient::new(server.base_url());
    (server, client)
}

fn small() -> SimConfig {
    SimConfig {
        scale: 0.05,
        ..SimConfig::default()
    }
}

fn config(
    sim: &SimClient,
    streams: &[&str],
    tweak: impl FnOnce(&mut ConfigFile),
) -> crate::config::Config {
    let mut file = ConfigFile {
        client_id: Some("sim-client".into()),
        client_secret: Some("sim-secret".into()),
        api_url: Some(sim.base_url.clone()),
        token_url: Some(format!("{}/token", sim.base_url)),
        streams: Some(streams.iter().map(|s| s.to_string()).collect()),
        per_page: Some(50),
        ..ConfigFile::default()
    };
    tweak(&mut file);
    file.validate(&Overrides::default(), &registry())
        .expect("valid config")
}

fn registry() -> Registry {
    Registry::embedded().expect("registry")
}

async fn run(
    config: &crate::config::Config,
    registry: &Registry,
    state: State,
    output: &MemoryOutput,
    cancel: bool,
) -> RunReport {
    crate::harvest::install_crypto_provider();
    let streams: Vec<Selected> = config
        .selected(registry)
        .unwrap()
        .into_iter()
        .map(Selected::all)
        .collect();
    let opts = SyncOptions::new();
    run_with(
        config,
        &streams,
        state,
        output,
        &opts,
        {
            let c = crate::cancel::Cancel::new();
            if cancel {
                c.cancel(crate::cancel::Reason::Signal);
            }
            c
        },
        Instant::now(),
    )
    .await
    .expect("run")
}

/// Latest version of every record by id.
fn by_id(rows: &[Value]) -> BTreeMap<i64, &Value> {
    rows.iter()
        .map(|r| (r["id"].as_i64().unwrap(), r))
        .collect()
}

#[tokio::test]
async fn a_run_writes_exactly_the_truth_and_commits_each_stream_once() {
    let (_server, sim) = sim(small());
    let names = ["candidates", "jobs", "departments"];
    let config = config(&sim, &names, |_| {});
    let registry = registry();
    let out = MemoryOutput::default();
    let report = run(&config, &registry, State::empty(), &out, false).await;
    assert!(
        report
            .streams
            .iter()
            .all(|s| s.status == StreamStatus::Committed),
        "{:?}",
        report.streams
    );
    let got = out.received();
    for name in names {
        let stream = registry.get(name).unwrap();
        let truth = sim.truth(&stream.resource).await;
        assert!(!truth.is_empty(), "{name}: the simulator has records");
        let rows = &got.rows[name];
        assert_eq!(
            rows.len(),
            truth.len(),
            "{name}: one row per record, none twice"
        );
        assert_eq!(by_id(rows), by_id(&truth), "{name}");
    }
    // One commit per stream, each after its unit closed; every later state holds the earlier.
    assert_eq!(got.commits.len(), names.len());
    assert_eq!((got.opened, got.closed, got.aborted), (3, 3, 0));
    let last = &got.commits.last().unwrap().1;
    for name in names {
        assert!(
            last.stream(name).and_then(|s| s.bookmark).is_some(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn an_incremental_run_reads_only_the_window_after_the_bookmark() {
    let (_server, sim) = sim(small());
    let config = config(&sim, &["candidates"], |f| f.lookback = Some("1s".into()));
    let registry = registry();
    let first = MemoryOutput::default();
    run(&config, &registry, State::empty(), &first, false).await;
    let state = first.received().commits.last().unwrap().1.clone();
    // Nothing changed since: the second run's window holds no record.
    let second = MemoryOutput::default();
    let report = run(&config, &registry, state, &second, false).await;
    assert_eq!(report.streams[0].status, StreamStatus::Committed);
    assert_eq!(report.streams[0].rows, 0);
    assert_eq!(report.streams[0].pages, 1, "one empty page, no paging");
}

#[tokio::test]
async fn a_large_backfill_is_read_as_slices_each_committed() {
    let (_server, sim) = sim(SimConfig {
        scale: 0.2,
        ..SimConfig::default()
    });
    let config = config(&sim, &["candidates"], |f| {
        f.per_page = Some(10);
        f.backfill_slices = Some(4);
        f.backfill_slice_pages = Some(2);
    });
    let registry = registry();
    let out = MemoryOutput::default();
    let report = run(&config, &registry, State::empty(), &out, false).await;
    let s = &report.streams[0];
    assert_eq!(s.status, StreamStatus::Committed);
    assert!(s.slices >= 2, "sliced: {}", s.slices);
    let got = out.received();
    // One commit per slice, then the window's: slice progress first, the bookmark last.
    assert_eq!(got.commits.len(), s.slices + 1);
    for (_, st) in &got.commits[..s.slices] {
        let e = st.stream("candidates").unwrap();
        assert!(e.bookmark.is_none() && e.slices.is_some());
    }
    let done = got.commits.last().unwrap().1.stream("candidates").unwrap();
    assert!(done.bookmark.is_some() && done.slices.is_none());
    // The probe's writer is abandoned unwritten; every slice's is closed.
    assert_eq!(got.aborted, 1);
    assert_eq!(got.closed, s.slices);
    let truth = sim.truth("candidates").await;
    assert_eq!(
        got.rows["candidates"].len(),
        truth.len(),
        "slices partition the window"
    );
    assert_eq!(by_id(&got.rows["candidates"]), by_id(&truth));
}

#[tokio::test]
async fn a_stream_without_its_scope_is_skipped_and_the_others_commit() {
    let (_server, sim) = sim(SimConfig {
        deny_scope: vec!["jobs".into()],
        ..small()
    });
    let config = config(&sim, &["candidates", "jobs"], |_| {});
    let registry = registry();
    let out = MemoryOutput::default();
    let report = run(&config, &registry, State::empty(), &out, false).await;
    let status: BTreeMap<_, _> = report
        .streams
        .iter()
        .map(|s| (s.stream.as_str(), &s.status))
        .collect();
    assert_eq!(status["candidates"], &StreamStatus::Committed);
    assert!(
        matches!(status["jobs"], StreamStatus::Skipped(r) if r.contains("harvest:jobs:list")),
        "{status:?}"
    );
    let got = out.received();
    assert_eq!(got.commits.len(), 1);
    assert!(!got.rows.contains_key("jobs"));
    assert_eq!(got.aborted, 1, "the skipped stream's writer is aborted");
}

#[tokio::test]
async fn an_interrupted_run_writes_and_commits_nothing() {
    let (_server, sim) = sim(small());
    let config = config(&sim, &["candidates", "jobs"], |_| {});
    let registry = registry();
    let out = MemoryOutput::default();
    let report = run(&config, &registry, State::empty(), &out, true).await;
    assert!(report.interrupted);
    assert!(
        report
            .streams
            .iter()
            .all(|s| s.status == StreamStatus::Interrupted)
    );
    let got = out.received();
    assert!(got.commits.is_empty() && got.rows.is_empty());
    assert_eq!(got.opened, 0, "no unit starts once the run is cancelled");
}

/// A state file that cannot be written fails the commit before the destination's state moves,
/// so the two never disagree (the next run reads the file and would otherwise re-read nothing
/// of what the destination already counts as committed, or the reverse); a writable one moves
/// with it.
#[tokio::test]
async fn a_state_file_that_cannot_be_written_leaves_the_destination_state_where_it_was() {
    use super::output::parquet::ParquetOutput;
    use super::output::{CommitUnit, Output};
    use crate::state::StateStore;

    let dir = tempfile::tempdir().unwrap();
    let dest = crate::storage::open("memory://").unwrap();
    let store = StateStore::new(dest.store.clone(), dest.prefix.clone());
    let registry = registry();
    let jobs = registry.get("jobs").unwrap();
    let policies = BTreeMap::new();
    for (path, writable) in [
        (dir.path().join("gone/state.json"), false),
        (dir.path().join("state.json"), true),
    ] {
        let opts = SyncOptions {
            state_file: Some(path.clone()),
            ..SyncOptions::new()
        };
        let lease = store
            .acquire_lease(&opts.run_id, opts.lease_ttl)
            .await
            .unwrap();
        let output = ParquetOutput::new(&dest, &store, &lease, &opts, &policies);
        let mut next = State::empty();
        next.stream_mut("jobs").bookmark = Some(opts.started_at);
        let unit = CommitUnit {
            files: &[],
            window_complete: true,
            window_from: None,
            window_to: Some(opts.started_at),
            merge_later: false,
            pending: &[],
        };
        let result = output.commit(jobs, &unit, next).await;
        let generations = store.generations().await.unwrap();
        if writable {
            let committed = result.expect("a writable state file commits");
            assert_eq!(generations, vec![1]);
            let file = crate::state::load_file(&path).unwrap();
            assert_eq!(file.generation, committed.generation);
            assert_eq!(file.streams, committed.streams);
            assert!(!dir.path().join("state.json.tmp").exists());
        } else {
            let e = result.expect_err("an unwritable state file fails the commit");
            assert!(e.to_string().contains("state file"), "{e}");
            assert!(
                generations.is_empty(),
                "the destination moved: {generations:?}"
            );
        }
        lease.release().await;
    }
}
