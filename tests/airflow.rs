//! The DAGs in examples/airflow under real Airflow (3.3, installed into `.venv-airflow` by
//! `make tools`), run with `airflow dags test` (no scheduler or API server) against simulators:
//! the single-tenant DAG takes its credentials and endpoint from an Airflow connection and its
//! destination from a variable; the multi-tenant DAG maps one `sync` instance per entry of a
//! tenants file, two tenants on two simulators, and each tenant's prefix ends up holding exactly
//! its own account's data and its own state.

mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::*;
use serde_json::json;
use support::Sim;

const STREAMS: [&str; 4] = ["applications", "candidates", "jobs", "users"];

fn airflow_bin() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-airflow/bin/airflow");
    assert!(
        p.exists(),
        "{} not found: run `make tools` (CI's .ci/run does) to install Airflow",
        p.display()
    );
    p
}

/// An Airflow connection in the JSON form of `AIRFLOW_CONN_<ID>`, pointing at a simulator.
fn connection(sim: &Sim) -> String {
    json!({
        "conn_type": "generic",
        "login": "sim-client",
        "password": "sim-secret",
        "extra": {"api_url": sim.base_url, "token_url": format!("{}/token", sim.base_url)},
    })
    .to_string()
}

struct Airflow {
    home: tempfile::TempDir,
}

impl Airflow {
    /// An AIRFLOW_HOME with the example DAGs copied into its dags folder and a migrated
    /// SQLite database.
    fn new() -> Airflow {
        let home = tempfile::tempdir().unwrap();
        let dags = home.path().join("dags");
        std::fs::create_dir(&dags).unwrap();
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/airflow");
        for f in ["greenhouse_sync.py", "greenhouse_tenants.py"] {
            std::fs::copy(examples.join(f), dags.join(f)).unwrap();
        }
        let a = Airflow { home };
        a.airflow(&["db", "migrate"], &[]);
        a
    }

    /// Runs `airflow ARGS` with `env` added; returns its combined output.
    fn airflow(&self, args: &[&str], env: &[(String, String)]) -> String {
        let bin_dir = Path::new(EXTRACT).parent().unwrap();
        let path = std::env::join_paths(std::iter::once(bin_dir.to_path_buf()).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut cmd = Command::new(airflow_bin());
        cmd.args(args).current_dir(self.home.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("GREENHOUSE_") || k.starts_with("AIRFLOW") || k.starts_with("AWS_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("AIRFLOW_HOME", self.home.path())
            .env("AIRFLOW__CORE__DAGS_FOLDER", self.home.path().join("dags"))
            .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
            // The DAGs find greenhouse-extract on PATH, as on a worker.
            .env("PATH", path)
            .envs(env.iter().map(|(k, v)| (k, v)));
        let out = cmd.output().expect("run airflow");
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "airflow {args:?}: {}\n{all}",
            out.status
        );
        all
    }

    /// `airflow dags test DAG`, which must end with the run (and so every task) successful.
    fn dags_test(&self, dag: &str, env: &[(String, String)]) -> String {
        let log = self.airflow(&["dags", "test", dag], env);
        let finished = log
            .lines()
            .find(|l| l.contains("DagRun Finished"))
            .unwrap_or_else(|| panic!("{dag}: no DagRun Finished line:\n{log}"));
        assert!(
            finished.contains("state=success"),
            "{dag}: {finished}\n{log}"
        );
        // The tool's JSON log lines reach the task log.
        assert!(
            log.contains(r#""event":"sync_started""#),
            "{dag}: no JSON log line in the task log:\n{log}"
        );
        log
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_dags_sync_one_tenant_and_two_tenants() {
    airflow_bin();
    let acme = Sim::start(&["--scale", "0.1", "--rate-limit", "0", "--seed", "41"]);
    let globex = Sim::start(&["--scale", "0.05", "--rate-limit", "0", "--seed", "42"]);
    let airflow = Airflow::new();
    let out = tempfile::tempdir().unwrap();

    // (a) One tenant: connection `greenhouse`, variable `greenhouse_destination`.
    let single = out.path().join("single");
    airflow.dags_test(
        "greenhouse_sync",
        &env(&[
            ("AIRFLOW_CONN_GREENHOUSE", &connection(&acme)),
            (
                "AIRFLOW_VAR_GREENHOUSE_DESTINATION",
                single.to_str().unwrap(),
            ),
        ]),
    );
    assert_local_matches(&acme, &single, &STREAMS).await;

    // (b) Two tenants from a tenants file, each with its own connection and prefix.
    let prefix = |t: &str| out.path().join("lake").join(t);
    let tenants = out.path().join("tenants.json");
    std::fs::write(
        &tenants,
        json!([
            {"id": "acme", "connection_id": "greenhouse_acme", "destination": prefix("acme")},
            {"id": "globex", "connection_id": "greenhouse_globex", "destination": prefix("globex")},
        ])
        .to_string(),
    )
    .unwrap();
    let log = airflow.dags_test(
        "greenhouse_tenants",
        &env(&[
            ("GREENHOUSE_TENANTS_FILE", tenants.to_str().unwrap()),
            ("AIRFLOW_CONN_GREENHOUSE_ACME", &connection(&acme)),
            ("AIRFLOW_CONN_GREENHOUSE_GLOBEX", &connection(&globex)),
        ]),
    );
    for t in ["acme", "globex"] {
        assert!(
            log.contains(&format!("rendered_map_index='{t}'")),
            "the mapped instance is not named {t}:\n{log}"
        );
        assert!(
            prefix(t).join("_state").is_dir(),
            "{t}: no state of its own"
        );
    }
    // Different seeds and scales: each prefix equals its own simulator's truth only.
    assert_local_matches(&acme, &prefix("acme"), &STREAMS).await;
    assert_local_matches(&globex, &prefix("globex"), &STREAMS).await;
}

/// The README shows the example files whole, not fragments that drift from them.
#[test]
fn the_readme_shows_the_example_files_verbatim() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    for f in [
        "greenhouse_sync.py",
        "greenhouse_tenants.py",
        "tenants.json",
    ] {
        let body = std::fs::read_to_string(root.join("examples/airflow").join(f)).unwrap();
        let lang = if f.ends_with(".py") { "python" } else { "json" };
        assert!(
            readme.contains(&format!("```{lang}\n{body}```")),
            "README.md does not show examples/airflow/{f} as it is; paste it again"
        );
    }
}
