//! Generated documentation: the stream table (README and `greenhouse-extract streams`).
//! The README's table is checked against this output in CI, like `catalog.json`.

use std::fmt::Write;

use crate::registry::{DeleteMode, Deletes, Registry, Replication};

/// One row per stream: name, resource (and static parameters), mode, scope, Drivetrain group,
/// delete facts.
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
            deletes_summary(&s.deletes),
        ]);
    }
    let header = [
        "stream",
        "endpoint",
        "mode",
        "scope",
        "permission group",
        "deletes",
    ];
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

/// A stream's delete facts in one cell, e.g. `hard · reconcile · ← candidates.candidate_id ·
/// webhook` (mode, whether ids are listed, the cascades, whether webhooks/refresh events apply).
pub fn deletes_summary(d: &Deletes) -> String {
    let mut parts = vec![match &d.mode {
        DeleteMode::Hard => "hard".to_string(),
        DeleteMode::Soft { flag, deleted_when } => format!("soft ({flag}={deleted_when})"),
        DeleteMode::Never => "never".to_string(),
    }];
    if d.reconcile {
        parts.push("reconcile".into());
    }
    if !d.cascade.is_empty() {
        let c: Vec<String> = d
            .cascade
            .iter()
            .map(|c| format!("← {}.{}", c.parent, c.field))
            .collect();
        parts.push(c.join(", "));
    }
    if !d.webhooks.is_empty() {
        parts.push("webhook".into());
    }
    if !d.refresh.is_empty() {
        parts.push("refresh".into());
    }
    parts.join(" · ")
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

/// `examples/config.toml`: every configuration key with its documentation as comments and an
/// example value, commented out (`greenhouse-extract spec --example`; checked in CI like the
/// README tables, so the example never drifts from the schema).
pub fn example_config() -> String {
    let schema = crate::config::json_schema();
    let mut out = String::from(
        "# greenhouse-extract configuration (TOML; JSON works too). Every key is optional: the\n\
         # environment (GREENHOUSE_*) and command-line flags fill in or override values.\n\
         # Uncomment what you need. Generated by `greenhouse-extract spec --example`.\n",
    );
    let Some(props) = schema["properties"].as_object() else {
        return out;
    };
    for (key, p) in props {
        out.push('\n');
        let desc = p["description"].as_str().unwrap_or("");
        for line in wrap(desc, 96) {
            writeln!(out, "# {line}").unwrap();
        }
        writeln!(out, "# {key} = {}", example_value(key, &p["type"])).unwrap();
    }
    out
}

/// A value that shows the key's shape (and parses as its type).
fn example_value(key: &str, ty: &serde_json::Value) -> String {
    let known = match key {
        "client_id" => "\"your-client-id\"",
        "client_secret" => "\"prefer GREENHOUSE_CLIENT_SECRET\"",
        "access_token" => "\"prefer GREENHOUSE_ACCESS_TOKEN\"",
        "hash_salt" => "\"prefer GREENHOUSE_HASH_SALT\"",
        "sub" => "12345",
        "api_url" => "\"https://harvest.greenhouse.io\"",
        "token_url" => "\"https://auth.greenhouse.io/token\"",
        "destination" => "\"s3://my-bucket/greenhouse\"",
        "start_date" => "\"2024-01-01\"",
        "lookback" => "\"1h\"",
        "streams" => "[\"candidates\", \"applications\", \"jobs\"]",
        "exclude_columns" => "{ candidates = [\"phone_numbers\", \"addresses\"] }",
        "hash_columns" => "{ users = [\"primary_email\"] }",
        "max_run_time" => "\"45m\"",
        "stall_timeout" => "\"30m\"",
        "openlineage_url" => "\"http://localhost:5000\"",
        "concurrency" => "4",
        "backfill_slices" => "8",
        "backfill_slice_pages" => "200",
        "max_in_flight" => "8",
        "max_requests_per_window" => "60",
        "per_page" => "500",
        "max_page_bytes" => "67108864",
        "writer_memory_bytes" => "67108864",
        "zstd_level" => "1",
        "webhook_secret" => "\"prefer GREENHOUSE_WEBHOOK_SECRET\"",
        "webhook_listen" => "\"127.0.0.1:8080\"",
        "webhook_tls_cert" => "\"/etc/greenhouse-extract/tls/fullchain.pem\"",
        "webhook_tls_key" => "\"/etc/greenhouse-extract/tls/privkey.pem\"",
        "webhook_max_body_bytes" => "1048576",
        "webhook_max_concurrency" => "16",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let types: Vec<&str> = match ty {
        serde_json::Value::Array(t) => t.iter().filter_map(|v| v.as_str()).collect(),
        serde_json::Value::String(t) => vec![t.as_str()],
        _ => vec![],
    };
    match types.into_iter().find(|t| *t != "null") {
        Some("boolean") => "false".into(),
        Some("integer") | Some("number") => "1".into(),
        Some("array") => "[]".into(),
        Some("object") => "{}".into(),
        _ => "\"\"".into(),
    }
}

/// Greedy word wrap for comment lines.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
