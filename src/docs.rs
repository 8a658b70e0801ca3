//! Generated documentation: the stream table (README and `greenhouse-extract streams`).
//! The README's table is checked against this output in CI, like `catalog.json`.

use std::fmt::Write;

use crate::registry::{Registry, Replication};

/// One row per stream: name, resource (and static parameters), mode, scope, Drivetrain group.
pub fn stream_table(registry: &Registry, markdown: bool) -> String {
    let mut rows = Vec::new();
    for s in registry.streams() {
        let mut params: Vec<String> = s.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !s.partitions.is_empty() {
            let parts: Vec<String> = s
                .partitions
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&")
                })
                .collect();
            params.push(format!("partitions: {}", parts.join(" | ")));
        }
        let resource = if params.is_empty() {
            format!("/v3/{}", s.resource)
        } else {
            format!("/v3/{} ({})", s.resource, params.join(", "))
        };
        let mode = match &s.replication {
            Replication::Incremental { cursor_field, .. } => {
                format!("incremental ({cursor_field})")
            }
            Replication::FullRefresh { .. } => "full refresh".to_string(),
        };
        let mode = if s.sensitive {
            format!("{mode}, sensitive (opt-in)")
        } else {
            mode
        };
        rows.push([
            s.name.clone(),
            resource,
            mode,
            s.scope.clone(),
            s.group.clone(),
        ]);
    }
    let header = ["stream", "endpoint", "mode", "scope", "permission group"];
    let mut out = String::new();
    if markdown {
        writeln!(out, "| {} |", header.join(" | ")).unwrap();
        writeln!(out, "|{}", "---|".repeat(header.len())).unwrap();
        for r in &rows {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i < 2 || i == 3 {
                        format!("`{c}`")
                    } else {
                        c.clone()
                    }
                })
                .collect();
            writeln!(out, "| {} |", cells.join(" | ")).unwrap();
        }
    } else {
        let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
        out = crate::table::text_table(&header, &rows, &[]);
    }
    out
}

/// The configuration reference (README), generated from the config file's JSON Schema, i.e. from
/// the doc comments on `config::ConfigFile`.
pub fn config_table() -> String {
    let schema = crate::config::json_schema();
    let mut out = String::from("| key | type | description |\n|---|---|---|\n");
    if let Some(props) = schema["properties"].as_object() {
        for (key, p) in props {
            let ty = match &p["type"] {
                serde_json::Value::Array(types) => types
                    .iter()
                    .filter_map(|t| t.as_str())
                    .filter(|t| *t != "null")
                    .collect::<Vec<_>>()
                    .join(" | "),
                serde_json::Value::String(t) => t.clone(),
                _ => "any".to_string(),
            };
            let desc = p["description"]
                .as_str()
                .unwrap_or("")
                .replace('\n', " ")
                .replace('|', "\\|");
            writeln!(out, "| `{key}` | {ty} | {desc} |").unwrap();
        }
    }
    out
}
