//! The repository's `meltano.yml` under real Meltano (4.4, installed into `.venv-meltano` by
//! `make tools`): `meltano install` works without Meltano Hub (any Hub request would fail: its
//! URL points at a closed port), `meltano invoke … --about` works with the flags Meltano
//! appends, and `meltano run tap-greenhouse-extract target-jsonl` delivers the simulator's truth
//! for the selected streams (minus the field the project deselects). After mutations a second
//! `meltano run` resumes from the bookmarks in Meltano's own state store (its system database):
//! one request per stream, exactly the changed rows, and the union of both runs is the new truth.

mod harness;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{DateTime, Utc};
use harness::*;
use serde_json::Value;
use support::Sim;

/// The streams meltano.yml selects; `candidates.phone_numbers` is deselected there.
const STREAMS: [&str; 4] = ["applications", "candidates", "jobs", "users"];
const JOB_STATE_ID: &str = "dev:tap-greenhouse-extract-to-target-jsonl";

fn meltano_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-meltano/bin/meltano");
    assert!(
        p.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install Meltano",
        p.display()
    );
    p
}

fn dropped(stream: &str) -> &'static [&'static str] {
    if stream == "candidates" {
        &["phone_numbers"]
    } else {
        &[]
    }
}

struct Project {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Project {
    /// A temporary Meltano project holding a copy of the repository's meltano.yml, whose tap
    /// is the binary under test (found on PATH, as `cargo install` would put it).
    fn new(sim: &Sim) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("meltano.yml"),
            dir.path().join("meltano.yml"),
        )
        .unwrap();
        let bin_dir = Path::new(EXTRACT).parent().unwrap();
        let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut env = sim_env(&sim.base_url);
        // The test changes the simulator and runs again at once: no signpost skew to wait out.
        env.push(no_signpost_skew());
        env.extend(
            [
                ("PATH", path.to_str().unwrap()),
                ("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false"),
                ("MELTANO_HUB_URL", "http://127.0.0.1:9"),
                // A Meltano setting from the environment: the project's start_date (2024)
                // would leave out the simulator's older rows.
                ("TAP_GREENHOUSE_EXTRACT_START_DATE", "2000-01-01"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Project { dir, env }
    }

    fn meltano(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(meltano_bin());
        cmd.args(args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("GREENHOUSE_") || k.starts_with("MELTANO_") || k.starts_with("TAP_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        let out = cmd.output().expect("run meltano");
        assert_eq!(
            out.status.code(),
            Some(0),
            "meltano {args:?}: {}",
            text(&out)
        );
        out
    }

    /// `meltano run tap-greenhouse-extract target-jsonl`; returns the records per stream that
    /// target-jsonl wrote (it appends, so each run's output folder is moved aside to `name`).
    fn run(&self, name: &str) -> BTreeMap<String, Vec<Value>> {
        self.meltano(&["run", "tap-greenhouse-extract", "target-jsonl"]);
        let out = self.dir.path().join(name);
        std::fs::rename(self.dir.path().join("output"), &out).unwrap();
        STREAMS
            .iter()
            .map(|s| {
                let rows = std::fs::read_to_string(out.join(format!("{s}.jsonl")))
                    .unwrap_or_default()
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
                (s.to_string(), rows)
            })
            .collect()
    }

    /// The bookmarks in Meltano's state store for the `meltano run` job.
    fn bookmarks(&self) -> BTreeMap<String, DateTime<Utc>> {
        let out = self.meltano(&["state", "get", JOB_STATE_ID]);
        let state: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("meltano state get: {e}: {}", text(&out)));
        state["singer_state"]["bookmarks"]
            .as_object()
            .unwrap_or_else(|| panic!("no bookmarks in {state}"))
            .iter()
            .map(|(k, v)| {
                let at = v["updated_at"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{k}: {v}"));
                let at = DateTime::parse_from_rfc3339(at).unwrap();
                (k.clone(), at.with_timezone(&Utc))
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn meltano_installs_the_project_and_runs_it_incrementally() {
    meltano_bin();
    let sim = Sim::start(&["--scale", "0.2", "--rate-limit", "0", "--seed", "33"]);
    let project = Project::new(&sim);
    let registry = registry();

    project.meltano(&["install"]);
    // Meltano appends --config (and --catalog/--state once it has them) to --about.
    let about = project.meltano(&["invoke", "tap-greenhouse-extract", "--about"]);
    let about: Value = serde_json::from_slice(&about.stdout).unwrap();
    assert_eq!(about["name"], "greenhouse-extract");

    // 1. First run: discovery (pretty-printed, read line by line by Meltano), then everything.
    let run1 = project.run("run1");
    for s in STREAMS {
        let truth = expected_rows(&sim, registry.get(s).unwrap()).await;
        assert!(!truth.is_empty(), "{s}: empty truth");
        assert_eq!(
            run1[s].len(),
            truth.len(),
            "{s}: a first run emits each row once"
        );
        let out = dedup_records(run1[s].clone());
        assert_records_equal_truth(s, &truth, &out, dropped(s), &BTreeSet::new());
    }
    let bookmarks1 = project.bookmarks();
    assert_eq!(
        bookmarks1.keys().map(String::as_str).collect::<Vec<_>>(),
        STREAMS
    );
    // Now the catalog is cached, so --about also arrives with --catalog and --state.
    project.meltano(&["invoke", "tap-greenhouse-extract", "--about"]);

    // 2. Greenhouse changes; the second run starts from Meltano's stored bookmarks.
    let changes = sim_mutate(
        &sim,
        &format!(
            "updates=6&inserts=2&deletes=1&seed=9&resources={}",
            STREAMS.join(",")
        ),
    )
    .await;
    let before = requests_by_resource(&sim).await;
    let run2 = project.run("run2");
    let after = requests_by_resource(&sim).await;
    let bookmarks2 = project.bookmarks();
    for s in STREAMS {
        let stream = registry.get(s).unwrap();
        let n = after.get(&stream.resource).copied().unwrap_or(0)
            - before.get(&stream.resource).copied().unwrap_or(0);
        let truth = expected_rows(&sim, stream).await;
        // One page of changes, plus the id listing that finds deletes.
        let listing = every_run_listing(stream, truth.len());
        assert_eq!(
            n,
            1 + listing,
            "{s}: {n} requests for a window of a few changed rows ({listing} of them the id listing)"
        );
        let from = bookmarks1[s] - chrono::Duration::hours(1);
        let changed: BTreeSet<i64> = truth
            .iter()
            .filter(|t| record_updated_at(t) >= from)
            .map(|t| t["id"].as_i64().unwrap())
            .collect();
        // Deletes reach the target as records with `_sdc_deleted_at`: exactly the ids the
        // first run delivered that Greenhouse no longer has.
        let (emitted, tombstoned) = record_ids(&run2[s]);
        assert_eq!(
            emitted, changed,
            "{s}: the second run emitted other rows than the changed ones"
        );
        assert_eq!(
            tombstoned,
            gone_ids(&run1[s], &truth),
            "{s}: the deletes the target received"
        );
        for id in changes["updated"][s]
            .as_array()
            .into_iter()
            .flatten()
            .chain(changes["inserted"][s].as_array().into_iter().flatten())
        {
            // A record changed and then deleted arrives as its tombstone.
            let id = id.as_i64().unwrap();
            assert!(
                emitted.contains(&id) || tombstoned.contains(&id),
                "{s}: changed id {id} not emitted"
            );
        }
        // With the tombstones applied, no deleted id is left.
        let union = dedup_records(run1[s].iter().chain(&run2[s]).cloned());
        assert_records_equal_truth(s, &truth, &union, dropped(s), &BTreeSet::new());
        assert!(
            bookmarks2[s] > bookmarks1[s],
            "{s}: the stored bookmark did not advance"
        );
    }
}
