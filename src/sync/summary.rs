//! Per-stream outcome of a run, the run summary table printed at the end, and the same summary
//! as one JSON object ([`to_json`]: the `run_finished` event and `sync --summary json`).

use std::fmt::Write;
use std::time::Duration;

use super::window::Window;
use crate::events::status;
use crate::sink::WrittenFile;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamStatus {
    /// Every page read, files closed, bookmark advanced.
    Committed,
    /// Not readable with this credential (missing scope, not a Site Admin); nothing written.
    Skipped(String),
    /// Failed; nothing of this run is referenced for the stream and its bookmark did not move.
    Failed(String),
    /// Stopped by a signal before it could commit.
    Interrupted,
}

impl StreamStatus {
    pub fn label(&self) -> &'static str {
        match self {
            StreamStatus::Committed => status::COMMITTED,
            StreamStatus::Skipped(_) => status::SKIPPED,
            StreamStatus::Failed(_) => status::FAILED,
            StreamStatus::Interrupted => status::INTERRUPTED,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            StreamStatus::Skipped(m) | StreamStatus::Failed(m) => Some(m),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamReport {
    pub stream: String,
    pub status: StreamStatus,
    pub window: Option<Window>,
    pub rows: u64,
    pub pages: u64,
    pub files: Vec<WrittenFile>,
    pub requests: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub bytes_fetched: u64,
    pub extra_fields: u64,
    pub type_mismatches: u64,
    pub null_violations: u64,
    /// Custom-field values that did not fit their typed column of the current table (kept in
    /// its `_extra`).
    pub custom_field_misfits: u64,
    /// Records not written because their primary key was unusable (filed under `_errors/`).
    pub quarantined: u64,
    /// Keys of the `_errors/` documents this stream's run left (quarantined records).
    pub error_objects: Vec<String>,
    pub duration: Duration,
    /// Slices the window was read as (0: one chain).
    pub slices: usize,
    /// The failure was an authentication failure (stops the whole run).
    pub auth_failure: bool,
    /// The failure was the API staying unavailable through every retry (protocol modes report
    /// it as retryable).
    pub transient_failure: bool,
    /// What this run learned about deleted records of the stream.
    pub deletes: DeleteReport,
    /// The ids (and cascade references) read by a window not yet committed: they join the
    /// stream's id index in the window's commit.
    pub(crate) keys: crate::state::ids::Keys,
    /// Every id a complete read of the stream returned (a full refresh, or a window from the
    /// beginning): that read is a listing of the live ids, so reconciling costs no request.
    pub(crate) read_ids: Option<crate::state::ids::IdSet>,
}

/// Deletes of one stream in one run: the id listing's cost and the tombstones written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteReport {
    /// The stream's ids were compared with a complete listing (or a full-refresh read).
    pub reconciled: bool,
    /// Requests of the id listing (`fields=id`, 500 per page); also counted in `requests`.
    pub reconcile_requests: u64,
    /// Tombstones written, by how the delete was learned.
    pub by_reconcile: u64,
    pub by_cascade: u64,
    pub by_webhook: u64,
    /// Records read again by id because a webhook said they changed (anonymised candidates).
    pub refreshed: u64,
    /// Why the deletes of this stream could not be completed (the rows are still committed;
    /// the next run tries again).
    pub error: Option<String>,
}

impl DeleteReport {
    pub fn tombstones(&self) -> u64 {
        self.by_reconcile + self.by_cascade + self.by_webhook
    }
}

impl StreamReport {
    pub fn new(stream: &str, window: Window) -> Self {
        StreamReport {
            stream: stream.to_string(),
            status: StreamStatus::Interrupted,
            window: Some(window),
            rows: 0,
            pages: 0,
            files: Vec::new(),
            requests: 0,
            retries: 0,
            rate_limited: 0,
            bytes_fetched: 0,
            extra_fields: 0,
            type_mismatches: 0,
            null_violations: 0,
            custom_field_misfits: 0,
            quarantined: 0,
            error_objects: Vec::new(),
            duration: Duration::ZERO,
            slices: 0,
            auth_failure: false,
            transient_failure: false,
            deletes: DeleteReport::default(),
            keys: Default::default(),
            read_ids: None,
        }
    }

    pub fn bytes_written(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A window as people read it: `2026-11-01 09:00:00 → 2026-11-01 12:00:00`, `start → …`, `full`.
pub fn window_label(w: &Option<Window>) -> String {
    w.as_ref().map_or_else(|| "full".into(), Window::label)
}

/// The summary table printed at the end of `sync`.
pub fn render(reports: &[StreamReport], run_id: &str, duration: Duration) -> String {
    let header = [
        "stream", "status", "rows", "deleted", "files", "bytes", "requests", "retries", "429s",
        "window", "time",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            vec![
                r.stream.clone(),
                match &r.status {
                    StreamStatus::Skipped(m) => format!("{} ({m})", status::SKIPPED),
                    s => s.label().to_string(),
                },
                r.rows.to_string(),
                r.deletes.tombstones().to_string(),
                r.files.len().to_string(),
                human_bytes(r.bytes_written()),
                r.requests.to_string(),
                r.retries.to_string(),
                r.rate_limited.to_string(),
                window_label(&r.window),
                format!("{:.1}s", r.duration.as_secs_f64()),
            ]
        })
        .collect();
    let mut out = crate::table::text_table(&header, &rows, &[2, 3, 4, 5, 6, 7, 8]);
    let committed = reports
        .iter()
        .filter(|r| r.status == StreamStatus::Committed)
        .count();
    let total_rows: u64 = reports.iter().map(|r| r.rows).sum();
    let total_files: usize = reports.iter().map(|r| r.files.len()).sum();
    let total_requests: u64 = reports.iter().map(|r| r.requests).sum();
    let extras: u64 = reports.iter().map(|r| r.extra_fields).sum();
    let mismatches: u64 = reports.iter().map(|r| r.type_mismatches).sum();
    let misfits: u64 = reports.iter().map(|r| r.custom_field_misfits).sum();
    let tombstones: u64 = reports.iter().map(|r| r.deletes.tombstones()).sum();
    let reconciled: Vec<&StreamReport> = reports.iter().filter(|r| r.deletes.reconciled).collect();
    writeln!(
        out,
        "\nRun {run_id}: {committed}/{} streams committed, {total_rows} rows, {total_files} files, {total_requests} requests, {:.1}s",
        reports.len(),
        duration.as_secs_f64()
    )
    .unwrap();
    if extras + mismatches > 0 {
        writeln!(
            out,
            "Kept in _extra: {extras} unknown fields, {mismatches} values whose type disagreed with the declaration"
        )
        .unwrap();
    }
    if misfits > 0 {
        writeln!(
            out,
            "Kept in the current tables' _extra: {misfits} custom-field values that did not fit their typed cf_* column"
        )
        .unwrap();
    }
    if tombstones > 0 || !reconciled.is_empty() {
        let sum = |f: fn(&DeleteReport) -> u64| reports.iter().map(|r| f(&r.deletes)).sum::<u64>();
        writeln!(
            out,
            "Deletes: {tombstones} tombstones ({} by reconcile, {} by cascade, {} by webhook); {} streams reconciled with {} id-listing requests",
            sum(|d| d.by_reconcile),
            sum(|d| d.by_cascade),
            sum(|d| d.by_webhook),
            reconciled.len(),
            sum(|d| d.reconcile_requests),
        )
        .unwrap();
    }
    for r in reports {
        if let Some(e) = r.status.error() {
            writeln!(out, "  {}: {e}", r.stream).unwrap();
        }
        if let Some(e) = &r.deletes.error {
            writeln!(out, "  {}: deletes not applied: {e}", r.stream).unwrap();
        }
        if r.quarantined > 0 && r.error_objects.is_empty() {
            // Protocol output: nowhere to file them; each page's were named in the log.
            writeln!(
                out,
                "  {}: {} records without a usable primary key were not emitted; named in the log",
                r.stream, r.quarantined
            )
            .unwrap();
        } else if r.quarantined > 0 {
            writeln!(
                out,
                "  {}: {} records without a usable primary key were not written; saved in {}",
                r.stream,
                r.quarantined,
                r.error_objects.join(", ")
            )
            .unwrap();
        }
    }
    out
}

/// A window's bounds as RFC 3339 strings (`null`: unbounded, or a full-refresh stream).
fn window_json(w: &Option<Window>) -> serde_json::Value {
    let bound = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    match w {
        Some(w) => serde_json::json!({ "from": bound(w.from), "to": bound(w.to) }),
        None => serde_json::Value::Null,
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The whole run summary as one JSON object: what the table says, per stream and in total, with
/// the exit code and the manifest key.
pub fn to_json(
    reports: &[StreamReport],
    run_id: &str,
    duration: Duration,
    manifest_key: Option<&str>,
    exit_code: i32,
) -> serde_json::Value {
    let streams: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "stream": r.stream,
                "status": r.status.label(),
                "error": r.status.error(),
                "rows": r.rows,
                "pages": r.pages,
                "files": r.files.len(),
                "bytes": r.bytes_written(),
                "bytes_fetched": r.bytes_fetched,
                "requests": r.requests,
                "retries": r.retries,
                "rate_limited": r.rate_limited,
                "window": window_json(&r.window),
                "duration_ms": millis(r.duration),
                "slices": r.slices,
                "extra_fields": r.extra_fields,
                "type_mismatches": r.type_mismatches,
                "null_violations": r.null_violations,
                "custom_field_misfits": r.custom_field_misfits,
                "quarantined": r.quarantined,
                "error_objects": r.error_objects,
                "deletes": deletes_json(&r.deletes),
            })
        })
        .collect();
    let sum = |f: fn(&StreamReport) -> u64| reports.iter().map(f).sum::<u64>();
    serde_json::json!({
        "run_id": run_id,
        "exit_code": exit_code,
        "duration_ms": millis(duration),
        "manifest": manifest_key,
        "streams_total": reports.len(),
        "streams_committed": reports.iter().filter(|r| r.status == StreamStatus::Committed).count(),
        "totals": {
            "rows": sum(|r| r.rows),
            "files": sum(|r| r.files.len() as u64),
            "bytes": sum(StreamReport::bytes_written),
            "requests": sum(|r| r.requests),
            "retries": sum(|r| r.retries),
            "rate_limited": sum(|r| r.rate_limited),
            "tombstones": sum(|r| r.deletes.tombstones()),
            "reconcile_requests": sum(|r| r.deletes.reconcile_requests),
        },
        "streams": streams,
    })
}

/// One stream's [`DeleteReport`] as JSON (the summary and the manifest).
pub fn deletes_json(d: &DeleteReport) -> serde_json::Value {
    serde_json::json!({
        "reconciled": d.reconciled,
        "reconcile_requests": d.reconcile_requests,
        "tombstones": d.tombstones(),
        "by_reconcile": d.by_reconcile,
        "by_cascade": d.by_cascade,
        "by_webhook": d.by_webhook,
        "refreshed": d.refreshed,
        "error": d.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_field_misfits_are_counted_in_text_and_json() {
        let mut r = StreamReport::new(
            "jobs",
            Window {
                from: None,
                to: None,
            },
        );
        r.status = StreamStatus::Committed;
        let text = render(std::slice::from_ref(&r), "run-1", Duration::ZERO);
        assert!(!text.contains("custom-field values"), "{text}");
        r.custom_field_misfits = 3;
        let text = render(std::slice::from_ref(&r), "run-1", Duration::ZERO);
        assert!(
            text.contains("3 custom-field values that did not fit their typed cf_* column"),
            "{text}"
        );
        let json = to_json(std::slice::from_ref(&r), "run-1", Duration::ZERO, None, 0);
        assert_eq!(json["streams"][0]["custom_field_misfits"], 3);
    }
}
