//! OpenLineage run events for a `sync` (optional: `openlineage_url`): one START before the
//! first request, then COMPLETE (every stream committed) or FAIL (a stream skipped or failed, an
//! interrupted run, or an error that ended the run), in the OpenLineage 2-0-2 spec.
//!
//! - Job: namespace `OPENLINEAGE_NAMESPACE` (the variable OpenLineage clients read) or
//!   `greenhouse-extract`; name `greenhouse_extract.sync`. Run id: the run's own id (a UUIDv7, the
//!   manifest's `run_id`), so lineage and manifest point at each other.
//! - Outputs: one dataset per stream, namespace = the destination (a local folder as a
//!   `file://` URL), name = the stream (its folder under the destination). START lists every
//!   selected stream; the end event lists the streams that committed, with an
//!   `outputStatistics` facet (rows, bytes, files of this run).
//! - Parent: `OPENLINEAGE_PARENT_ID` / `OPENLINEAGE_ROOT_PARENT_ID`, each `namespace/job/run-id`
//!   as Airflow's `macros.OpenLineageProviderPlugin.lineage_parent_id(task_instance)` and
//!   `lineage_root_parent_id(...)` render them, become the `parent` run facet.
//!
//! Contract: lineage never changes a run's outcome. A delivery that fails (the endpoint down,
//! a refused event, a file that cannot be written) is one warning; the run goes on.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::LineageTarget;

/// The spec version every event and core object names (the official client's generated models).
const SPEC: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";
const PARENT_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const OUTPUT_STATISTICS_FACET: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const ERROR_MESSAGE_FACET: &str = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const PRODUCER: &str = concat!(
    "https://github.com/greenhouse-extract/greenhouse-extract/tree/v",
    env!("CARGO_PKG_VERSION")
);
const JOB_NAME: &str = "greenhouse_extract.sync";
const DEFAULT_NAMESPACE: &str = "greenhouse-extract";
/// How long one delivery may take: lineage must not hold a finished run up.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variables (Airflow renders the macros into them; see examples/airflow/).
pub const ENV_PARENT_ID: &str = "OPENLINEAGE_PARENT_ID";
pub const ENV_ROOT_PARENT_ID: &str = "OPENLINEAGE_ROOT_PARENT_ID";
pub const ENV_NAMESPACE: &str = "OPENLINEAGE_NAMESPACE";

/// What the end event says about one stream.
#[derive(Debug, Clone)]
pub struct StreamOutput {
    pub stream: String,
    pub committed: bool,
    pub rows: u64,
    pub bytes: u64,
    pub files: u64,
}

/// How a run ended, for the end event.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The run returned a report; `success`: exit code 0.
    Finished {
        success: bool,
        streams: Vec<StreamOutput>,
    },
    /// An error ended the run (message already scrubbed).
    Failed(String),
}

/// One run's lineage emitter.
pub struct Lineage {
    target: LineageTarget,
    client: Option<reqwest::Client>,
    run_id: String,
    job_namespace: String,
    /// The destination as a dataset namespace.
    namespace: String,
    parent: Option<Value>,
}

impl Lineage {
    /// An emitter for the run `run_id` writing to `destination`, reading the parent and the job
    /// namespace from the environment.
    pub fn new(target: &LineageTarget, run_id: &str, destination: &str) -> Lineage {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let client = match target {
            LineageTarget::Http(_) => crate::harvest::http_client().ok(),
            LineageTarget::File(_) => None,
        };
        Lineage {
            target: target.clone(),
            client,
            run_id: run_id.to_string(),
            job_namespace: env(ENV_NAMESPACE).unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            namespace: dataset_namespace(destination),
            parent: parent_facet(
                env(ENV_PARENT_ID).as_deref(),
                env(ENV_ROOT_PARENT_ID).as_deref(),
            ),
        }
    }

    /// The START event, listing every selected stream as an output.
    pub async fn start(&self, streams: &[String]) {
        let outputs = streams
            .iter()
            .map(|s| json!({ "namespace": self.namespace, "name": s }))
            .collect();
        self.send(self.event("START", outputs, None)).await;
    }

    /// The COMPLETE or FAIL event.
    pub async fn finish(&self, outcome: &Outcome) {
        let event = match outcome {
            Outcome::Finished { success, streams } => {
                let outputs = streams
                    .iter()
                    .filter(|s| s.committed)
                    .map(|s| {
                        json!({
                            "namespace": self.namespace,
                            "name": s.stream,
                            "outputFacets": { "outputStatistics": {
                                "_producer": PRODUCER,
                                "_schemaURL": OUTPUT_STATISTICS_FACET,
                                "rowCount": s.rows,
                                "size": s.bytes,
                                "fileCount": s.files,
                            }},
                        })
                    })
                    .collect();
                let not_committed: Vec<&str> = streams
                    .iter()
                    .filter(|s| !s.committed)
                    .map(|s| s.stream.as_str())
                    .collect();
                if *success {
                    self.event("COMPLETE", outputs, None)
                } else {
                    let message = format!(
                        "streams not committed: {} (see the run summary)",
                        not_committed.join(", ")
                    );
                    self.event("FAIL", outputs, Some(&message))
                }
            }
            Outcome::Failed(message) => self.event("FAIL", Vec::new(), Some(message)),
        };
        self.send(event).await;
    }

    fn event(&self, kind: &str, outputs: Vec<Value>, error: Option<&str>) -> Value {
        let mut facets = serde_json::Map::new();
        if let Some(p) = &self.parent {
            facets.insert("parent".into(), p.clone());
        }
        if let Some(message) = error {
            facets.insert(
                "errorMessage".into(),
                json!({
                    "_producer": PRODUCER,
                    "_schemaURL": ERROR_MESSAGE_FACET,
                    "message": message,
                    "programmingLanguage": "Rust",
                }),
            );
        }
        json!({
            "eventType": kind,
            "eventTime": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "producer": PRODUCER,
            "schemaURL": format!("{SPEC}#/$defs/RunEvent"),
            "run": { "runId": self.run_id, "facets": facets },
            "job": { "namespace": self.job_namespace, "name": JOB_NAME },
            "inputs": [],
            "outputs": outputs,
        })
    }

    async fn send(&self, event: Value) {
        let kind = event["eventType"].as_str().unwrap_or("").to_string();
        let body = crate::secrets::scrub(&event.to_string()).into_owned();
        let result = match &self.target {
            LineageTarget::File(path) => append_line(path, &body),
            LineageTarget::Http(url) => self.post(url, body).await,
        };
        if let Err(e) = result {
            crate::events::lineage_failed(&kind, &e);
        }
    }

    async fn post(&self, url: &url::Url, body: String) -> Result<(), String> {
        let client = self.client.as_ref().ok_or("cannot build the HTTP client")?;
        let endpoint = format!("{}/api/v1/lineage", url.as_str().trim_end_matches('/'));
        let response = client
            .post(&endpoint)
            .timeout(TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{endpoint} answered {status}"))
        }
    }
}

fn append_line(path: &PathBuf, line: &str) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // One write per event, so concurrent runs appending to one file do not interleave lines.
    f.write_all(format!("{line}\n").as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// A destination as a dataset namespace: URLs as they are, a local folder as `file://<abs>`.
fn dataset_namespace(destination: &str) -> String {
    if destination.contains("://") {
        return destination.trim_end_matches('/').to_string();
    }
    let abs = std::path::absolute(destination)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| destination.to_string());
    format!("file://{}", abs.trim_end_matches('/'))
}

/// `namespace/job/run-id` (the job name may itself hold `/`).
fn split_parent_id(raw: &str) -> Option<(&str, &str, &str)> {
    let (namespace, rest) = raw.trim().split_once('/')?;
    let (job, run_id) = rest.rsplit_once('/')?;
    let valid = !namespace.is_empty() && !job.is_empty() && uuid::Uuid::parse_str(run_id).is_ok();
    valid.then_some((namespace, job, run_id))
}

fn parse_parent<'a>(variable: &str, raw: Option<&'a str>) -> Option<(&'a str, &'a str, &'a str)> {
    let raw = raw?;
    let parsed = split_parent_id(raw);
    if parsed.is_none() {
        crate::events::lineage_parent_ignored(variable, raw);
    }
    parsed
}

/// The `parent` run facet from the two variables; a malformed value is ignored with a warning.
fn parent_facet(parent: Option<&str>, root: Option<&str>) -> Option<Value> {
    let (namespace, job, run_id) = parse_parent(ENV_PARENT_ID, parent)?;
    let mut facet = json!({
        "_producer": PRODUCER,
        "_schemaURL": PARENT_FACET,
        "run": { "runId": run_id },
        "job": { "namespace": namespace, "name": job },
    });
    if let Some((namespace, job, run_id)) = parse_parent(ENV_ROOT_PARENT_ID, root) {
        facet["root"] = json!({
            "run": { "runId": run_id },
            "job": { "namespace": namespace, "name": job },
        });
    }
    Some(facet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_ids_split_as_airflow_renders_them() {
        let run = "01931c2e-5a5b-7c3d-8e9f-0a1b2c3d4e5f";
        assert_eq!(
            split_parent_id(&format!("default/greenhouse_sync.sync/{run}")),
            Some(("default", "greenhouse_sync.sync", run))
        );
        assert_eq!(
            split_parent_id(&format!("ns/a/b/{run}")),
            Some(("ns", "a/b", run))
        );
        assert_eq!(split_parent_id("ns/job/not-a-uuid"), None);
        assert_eq!(split_parent_id(&format!("/job/{run}")), None);
        let facet = parent_facet(
            Some(&format!("p/dag.task/{run}")),
            Some(&format!("r/dag/{run}")),
        )
        .unwrap();
        assert_eq!(facet["job"]["name"], "dag.task");
        assert_eq!(facet["root"]["job"]["namespace"], "r");
    }

    #[test]
    fn local_destinations_are_file_urls() {
        assert_eq!(dataset_namespace("s3://b/prefix/"), "s3://b/prefix");
        let ns = dataset_namespace("./data");
        assert!(ns.starts_with("file:///") && ns.ends_with("/data"), "{ns}");
    }
}
