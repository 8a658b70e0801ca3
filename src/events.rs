//! Every event the extractor logs, in one place (as Vector keeps its internal events): the
//! event's name (the `event` field that log readers filter and alert on), its level, its wording
//! and its fields. Engine code calls a function here; it never writes an event name or a log
//! sentence inline, so renaming or rewording an event is one edit, and this file is the list a
//! log pipeline can be written against.
//!
//! Contract: a leaf. It imports nothing from the crate (arguments are plain values or
//! `Display`), so every layer can emit events. Names are stable `snake_case` identifiers; the
//! wording is a capitalised sentence. Secrets never reach an event unscrubbed: the log writer
//! masks every registered secret (the `secrets` module), and URLs are passed here redacted.
//!
//! The stream outcome labels of [`status`] are shared by the run summary, the progress lines
//! and the manifest, so the three always say the same word.

use std::fmt::Display;

/// The labels of a stream's outcome (summary table, progress line, manifest `status`).
pub mod status {
    pub const COMMITTED: &str = "committed";
    pub const SKIPPED: &str = "skipped";
    pub const FAILED: &str = "failed";
    pub const INTERRUPTED: &str = "interrupted";
}

// ---- run lifecycle ----------------------------------------------------------------------

pub const SYNC_STARTED: &str = "sync_started";
pub fn sync_started(run_id: &str, streams: usize, destination: &str) {
    tracing::info!(
        event = SYNC_STARTED,
        run_id,
        streams,
        destination,
        "Sync started"
    );
}

pub const RUN_FINISHED: &str = "run_finished";
/// Fields whose value is a JSON document: the JSON log format writes them as nested JSON, not
/// as a string (tracing fields are flat; the log writer embeds these).
pub const JSON_FIELDS: &[&str] = &["summary"];
/// The last line of a `sync`: the whole run summary (`summary`: per stream and in total).
pub fn run_finished(run_id: &str, exit_code: i32, summary: &serde_json::Value) {
    tracing::info!(
        event = RUN_FINISHED,
        run_id,
        exit_code,
        summary = %summary,
        "Run finished"
    );
}

pub const SIGNPOST: &str = "signpost";
pub fn signpost(signpost: &dyn Display) {
    tracing::debug!(event = SIGNPOST, signpost = %signpost, "Windows end at the signpost");
}

pub const SIGNPOST_SKEW_IGNORED: &str = "signpost_skew_ignored";
pub fn signpost_skew_ignored(variable: &str, value: &str) {
    tracing::warn!(
        event = SIGNPOST_SKEW_IGNORED,
        variable,
        value,
        "Ignoring a signpost skew that is not a number of milliseconds"
    );
}

pub const INTERRUPTED: &str = "interrupted";
pub fn interrupted() {
    tracing::warn!(
        event = INTERRUPTED,
        "Interrupted: finishing in-flight requests, aborting open files"
    );
}

pub const FATAL_ERROR: &str = "fatal_error";
/// The error that ends the process, as a log line (`--log-format json`: every line on stderr is
/// JSON, this one included). `message` must already be scrubbed and clipped.
pub fn fatal_error(message: &str, exit_code: i32) {
    tracing::error!(event = FATAL_ERROR, exit_code, "{message}");
}

pub const DEADLINE_REACHED: &str = "deadline_reached";
pub fn deadline_reached(unfinished_streams: usize) {
    tracing::warn!(
        event = DEADLINE_REACHED,
        unfinished_streams,
        "The run's time limit is up: committed what finished; the next run resumes the rest"
    );
}

pub const CONFIG_STREAMS_IGNORED: &str = "config_streams_ignored";
pub fn config_streams_ignored() {
    tracing::warn!(
        event = CONFIG_STREAMS_IGNORED,
        "The config's `streams` list is ignored here: the catalog selects the streams"
    );
}

pub const MANIFEST_FAILED: &str = "manifest_failed";
pub fn manifest_failed(error: &dyn Display) {
    tracing::warn!(event = MANIFEST_FAILED, error = %error, "Could not write the run manifest");
}

pub const MANIFEST_ADOPTED: &str = "manifest_adopted";
/// A run that ended without its manifest got one from its commit records.
pub fn manifest_adopted(run_id: &str, key: &dyn Display, files: usize) {
    tracing::warn!(
        event = MANIFEST_ADOPTED,
        run_id,
        key = %key,
        files,
        "Wrote the manifest of an earlier run that ended without one (status \"crashed\", its committed files)"
    );
}

pub const MANIFEST_ADOPT_FAILED: &str = "manifest_adopt_failed";
pub fn manifest_adopt_failed(run_id: &str, error: &dyn Display) {
    tracing::warn!(event = MANIFEST_ADOPT_FAILED, run_id, error = %error, "Could not write the manifest of an earlier run that ended without one; the next run tries again");
}

// ---- streams ----------------------------------------------------------------------------

pub const STREAM_STARTED: &str = "stream_started";
pub fn stream_started(stream: &str, window: &str, resumed_slices: bool) {
    tracing::info!(
        event = STREAM_STARTED,
        stream,
        window,
        resumed_slices,
        "Stream started"
    );
}

pub const STREAM_SLICED: &str = "stream_sliced";
pub fn stream_sliced(stream: &str, slices: usize, pending: usize) {
    tracing::info!(
        event = STREAM_SLICED,
        stream,
        slices,
        pending,
        "Reading the window as slices"
    );
}

pub const SLICES_PLANNED: &str = "slices_planned";
pub fn slices_planned(stream: &str, slices: usize, lower: &dyn Display) {
    tracing::debug!(event = SLICES_PLANNED, stream, slices, lower = %lower, "Window will be read as slices");
}

pub const LOWER_BOUND_SEARCH_STOPPED: &str = "lower_bound_search_stopped";
pub fn lower_bound_search_stopped(stream: &str, error: &dyn Display) {
    tracing::debug!(event = LOWER_BOUND_SEARCH_STOPPED, stream, error = %error, "Lower-bound search stopped");
}

pub const PAGE_REFETCHED: &str = "page_refetched";
pub fn page_refetched(stream: &str, error: &dyn Display) {
    tracing::warn!(event = PAGE_REFETCHED, stream, error = %error, "Unreadable page, fetching it again");
}

pub const WINDOW_RESTARTED: &str = "window_restarted";
pub fn window_restarted(stream: &str, restarts: u32) {
    tracing::warn!(
        event = WINDOW_RESTARTED,
        stream,
        restarts,
        "Cursor expired, restarting the window"
    );
}

pub const BOOKMARK_ADVANCED: &str = "bookmark_advanced";
pub fn bookmark_advanced(stream: &str, rows: u64, files: usize) {
    tracing::info!(
        event = BOOKMARK_ADVANCED,
        stream,
        rows,
        files,
        "Bookmark advanced"
    );
}

pub const DELETES_APPLIED: &str = "deletes_applied";
pub fn deletes_applied(
    stream: &str,
    by_reconcile: u64,
    by_cascade: u64,
    by_webhook: u64,
    reconcile_requests: u64,
) {
    tracing::info!(
        event = DELETES_APPLIED,
        stream,
        by_reconcile,
        by_cascade,
        by_webhook,
        reconcile_requests,
        "Tombstones written for deleted records"
    );
}

pub const DELETES_FAILED: &str = "deletes_failed";
pub fn deletes_failed(stream: &str, error: &str) {
    tracing::warn!(
        event = DELETES_FAILED,
        stream,
        error,
        "Deletes not applied this run (the rows are committed; the next run tries again)"
    );
}

pub const ID_INDEX_UNREADABLE: &str = "id_index_unreadable";
pub fn id_index_unreadable(stream: &str, key: &str, error: &str) {
    tracing::warn!(
        event = ID_INDEX_UNREADABLE,
        stream,
        key,
        error,
        "The stream's id index is missing or unreadable; a new one is built from this run's reads (run `sync --full-refresh` for the stream to index every id again)"
    );
}

pub const WEBHOOK_EVENTS_APPLIED: &str = "webhook_events_applied";
pub fn webhook_events_applied(events: usize, unusable: usize) {
    tracing::info!(
        event = WEBHOOK_EVENTS_APPLIED,
        events,
        unusable,
        "Stored webhook events applied"
    );
}

pub const WEBHOOK_EVENT_UNUSABLE: &str = "webhook_event_unusable";
pub fn webhook_event_unusable(key: &str, reason: &str) {
    tracing::warn!(
        event = WEBHOOK_EVENT_UNUSABLE,
        key,
        reason,
        "A stored webhook event could not be applied; it is kept for review"
    );
}

pub const WEBHOOK_EVENT_IGNORED: &str = "webhook_event_ignored";
pub fn webhook_event_ignored(action: &str) {
    tracing::info!(
        event = WEBHOOK_EVENT_IGNORED,
        action,
        "A signed webhook event no declaration applies was answered 200 and not stored"
    );
}

pub const UNCOMMITTED_FILES_REMOVED: &str = "uncommitted_files_removed";
pub fn uncommitted_files_removed(run_id: &str, files: u64) {
    tracing::info!(
        event = UNCOMMITTED_FILES_REMOVED,
        run_id,
        files,
        "Removed the data files a crashed run closed but never committed (their rows are read again)"
    );
}

pub const CURRENT_TABLE_MERGED: &str = "current_table_merged";
pub fn current_table_merged(
    stream: &str,
    upserted: u64,
    deleted: u64,
    files_removed: u64,
    files_added: u64,
    bytes_written: u64,
) {
    tracing::debug!(
        event = CURRENT_TABLE_MERGED,
        stream,
        upserted,
        deleted,
        files_removed,
        files_added,
        bytes_written,
        "Merged into the current table"
    );
}

pub const CUSTOM_FIELD_MISFITS: &str = "custom_field_misfits";
pub fn custom_field_misfits(stream: &str, values: u64) {
    tracing::warn!(
        event = CUSTOM_FIELD_MISFITS,
        stream,
        values,
        "Custom-field values that do not fit their typed cf_* column are null there and kept in the current table's _extra"
    );
}

pub const CURRENT_TABLE_VACUUM_FAILED: &str = "current_table_vacuum_failed";
pub fn current_table_vacuum_failed(stream: &str, error: &dyn Display) {
    tracing::warn!(
        event = CURRENT_TABLE_VACUUM_FAILED,
        stream,
        error = %error,
        "Could not vacuum the current table; the next run tries again"
    );
}

pub const DDL_NO_CURRENT_TABLE: &str = "ddl_no_current_table";
pub fn ddl_no_current_table(stream: &str) {
    tracing::warn!(
        event = DDL_NO_CURRENT_TABLE,
        stream,
        "The stream has raw files but no current-state table; `greenhouse-extract rebuild --streams <stream>` builds it"
    );
}

pub const PURGE_FINISHED: &str = "purge_finished";
pub fn purge_finished(purge_id: &str, resumed: bool, rows_removed: u64, files_rewritten: u64) {
    tracing::info!(
        event = PURGE_FINISHED,
        purge_id,
        resumed,
        rows_removed,
        files_rewritten,
        "Purge finished: erased rows are in no data file any more"
    );
}

pub const WEBHOOK_EVENT_DROP_FAILED: &str = "webhook_event_drop_failed";
pub fn webhook_event_drop_failed(key: &str, error: &dyn Display) {
    tracing::warn!(
        event = WEBHOOK_EVENT_DROP_FAILED,
        key,
        error = %error,
        "Could not delete an applied webhook event; the next sync applies it again (harmless)"
    );
}

pub const STREAM_SKIPPED: &str = "stream_skipped";
pub fn stream_skipped(stream: &str, reason: &str) {
    tracing::warn!(event = STREAM_SKIPPED, stream, reason, "Stream skipped");
}

pub const STREAM_FAILED: &str = "stream_failed";
pub fn stream_failed(stream: &str, error: &str) {
    tracing::error!(event = STREAM_FAILED, stream, error, "Stream failed");
}

pub const MESSAGES_FAILED: &str = "messages_failed";
pub fn messages_failed(stream: &str, error: &dyn Display) {
    tracing::warn!(event = MESSAGES_FAILED, stream, error = %error, "Could not write the stream status");
}

pub const RECORDS_NOT_EMITTED: &str = "records_not_emitted";
/// Protocol output: records of one page without a usable primary key were left out (a target
/// cannot de-duplicate or update them); `records` is each as JSON text, after the column policy,
/// clipped — what the target would have received.
pub fn records_not_emitted(stream: &str, count: usize, records: &str) {
    tracing::warn!(
        event = RECORDS_NOT_EMITTED,
        stream,
        count,
        records,
        "Records without a usable primary key were not emitted"
    );
}

pub const RECORDS_NOT_EMITTED_TOTAL: &str = "records_not_emitted_total";
/// Protocol output, at the end of a stream: how many of its records were left out for an
/// unusable primary key (each page's were named by [`records_not_emitted`]).
pub fn records_not_emitted_total(stream: &str, count: u64) {
    tracing::warn!(
        event = RECORDS_NOT_EMITTED_TOTAL,
        stream,
        count,
        "{stream}: {count} records without a usable primary key were not emitted"
    );
}

pub const ERROR_OBJECT_SAVED: &str = "error_object_saved";
/// Something that could not be written as rows (quarantined records, an unreadable page) was
/// filed under `_errors/` for a person to look at.
pub fn error_object_saved(stream: &str, key: &str, reason: &str) {
    tracing::warn!(
        event = ERROR_OBJECT_SAVED,
        stream,
        key,
        reason,
        "Saved what could not be written as rows under _errors/"
    );
}

pub const ERROR_OBJECT_FAILED: &str = "error_object_failed";
pub fn error_object_failed(stream: &str, error: &dyn Display) {
    tracing::warn!(event = ERROR_OBJECT_FAILED, stream, error = %error, "Could not save the unreadable page under _errors/");
}

// ---- HTTP -------------------------------------------------------------------------------

pub const REQUEST_RETRIED: &str = "request_retried";
/// `url` must already be redacted (no query values that could identify people).
pub fn request_retried(url: &dyn Display, error: &dyn Display, delay_ms: u64) {
    tracing::warn!(event = REQUEST_RETRIED, url = %url, error = %error, delay_ms, "Request failed, retrying");
}

pub const RATE_LIMITED: &str = "rate_limited";
/// `url` must already be redacted.
pub fn rate_limited(url: &dyn Display, wait_ms: u64) {
    tracing::info!(event = RATE_LIMITED, url = %url, wait_ms, "Rate limited (429), waiting");
}

pub const RATE_WINDOW_WAIT: &str = "rate_window_wait";
/// The rate budget is spent: requests wait `wait_ms` for the window to reopen. `reported`:
/// whether the server said when (`X-RateLimit-Reset`), or the window is assumed.
pub fn rate_window_wait(wait_ms: u64, limit: u32, reported: bool) {
    tracing::info!(
        event = RATE_WINDOW_WAIT,
        wait_ms,
        limit,
        reset_reported = reported,
        "Rate-limit window spent, waiting for the next one"
    );
}

pub const TOKEN_EXPIRED_IN_TRANSIT: &str = "token_expired_in_transit";
/// A 401 for a token that was at the end of its lifetime: refreshed and retried. `url` redacted.
pub fn token_expired_in_transit(url: &dyn Display, in_a_row: usize) {
    tracing::info!(
        event = TOKEN_EXPIRED_IN_TRANSIT,
        url = %url,
        in_a_row,
        "The access token expired on its way to the API; retrying with a fresh one"
    );
}

// ---- data files -------------------------------------------------------------------------

pub const UPLOAD_ABORT_FAILED: &str = "upload_abort_failed";
pub fn upload_abort_failed(key: &dyn Display, error: &dyn Display) {
    tracing::warn!(event = UPLOAD_ABORT_FAILED, key = %key, error = %error, "Could not abort an upload");
}

pub const FILE_DELETE_FAILED: &str = "file_delete_failed";
/// A data file that no state references could not be deleted (`why`: abandoned, uncommitted).
pub fn file_delete_failed(key: &dyn Display, why: &str, error: &dyn Display) {
    tracing::warn!(event = FILE_DELETE_FAILED, key = %key, why, error = %error, "Could not delete a data file that no state references");
}

pub const STAGING_DELETE_FAILED: &str = "staging_delete_failed";
pub fn staging_delete_failed(key: &dyn Display, error: &dyn Display) {
    tracing::warn!(event = STAGING_DELETE_FAILED, key = %key, error = %error, "Could not delete a staging object");
}

// ---- lineage ----------------------------------------------------------------------------

pub const LINEAGE_FAILED: &str = "lineage_failed";
/// An OpenLineage event (`event_type`: START, COMPLETE, FAIL) could not be delivered.
pub fn lineage_failed(event_type: &str, error: &dyn Display) {
    tracing::warn!(event = LINEAGE_FAILED, event_type, error = %error, "Could not deliver an OpenLineage event; the run goes on");
}

pub const LINEAGE_PARENT_IGNORED: &str = "lineage_parent_ignored";
pub fn lineage_parent_ignored(variable: &str, value: &str) {
    tracing::warn!(
        event = LINEAGE_PARENT_IGNORED,
        variable,
        value,
        "Ignoring an OpenLineage parent that is not namespace/job/run-id (a UUID)"
    );
}

// ---- webhook receiver (`webhooks serve`) -------------------------------------------------

pub const WEBHOOKS_LISTENING: &str = "webhooks_listening";
pub fn webhooks_listening(address: &dyn Display, tls: bool, destination: &str) {
    tracing::info!(
        event = WEBHOOKS_LISTENING,
        address = %address,
        tls,
        destination,
        "Receiving Greenhouse webhooks"
    );
}

pub const WEBHOOK_STORED: &str = "webhook_stored";
pub fn webhook_stored(event_id: &str, action: &str, key: &dyn Display) {
    tracing::info!(event = WEBHOOK_STORED, event_id, action, key = %key, "Webhook event stored");
}

pub const WEBHOOK_DUPLICATE: &str = "webhook_duplicate";
pub fn webhook_duplicate(event_id: &str, key: &str) {
    tracing::info!(
        event = WEBHOOK_DUPLICATE,
        event_id,
        key,
        "Webhook event already stored; answered 200"
    );
}

pub const WEBHOOK_PING: &str = "webhook_ping";
pub fn webhook_ping() {
    tracing::info!(
        event = WEBHOOK_PING,
        "Greenhouse pinged the endpoint with a valid signature; nothing stored"
    );
}

pub const WEBHOOK_REJECTED: &str = "webhook_rejected";
/// A request answered with a 4xx. `reason` never quotes the request (it is not authenticated).
pub fn webhook_rejected(status: u16, reason: &str, remote: &dyn Display) {
    tracing::warn!(
        event = WEBHOOK_REJECTED,
        status,
        reason,
        remote = %remote,
        "Webhook request refused"
    );
}

pub const WEBHOOK_STORE_FAILED: &str = "webhook_store_failed";
pub fn webhook_store_failed(event_id: &str, error: &dyn Display) {
    tracing::error!(
        event = WEBHOOK_STORE_FAILED,
        event_id,
        error = %error,
        "Could not store a webhook event; answered 503 so that Greenhouse retries"
    );
}

pub const WEBHOOK_CONNECTION_FAILED: &str = "webhook_connection_failed";
/// A connection ended badly (TLS handshake refused, timed out, reset) before or between requests.
pub fn webhook_connection_failed(remote: &dyn Display, error: &dyn Display) {
    tracing::debug!(event = WEBHOOK_CONNECTION_FAILED, remote = %remote, error = %error, "Webhook connection failed");
}

pub const WEBHOOKS_STOPPING: &str = "webhooks_stopping";
pub fn webhooks_stopping(in_flight: usize) {
    tracing::info!(
        event = WEBHOOKS_STOPPING,
        in_flight,
        "Stopping: no new connections, finishing the requests in flight"
    );
}

pub const WEBHOOKS_STOPPED: &str = "webhooks_stopped";
pub fn webhooks_stopped(unfinished: usize) {
    tracing::info!(
        event = WEBHOOKS_STOPPED,
        unfinished,
        "Webhook receiver stopped"
    );
}

// ---- state and lease --------------------------------------------------------------------

pub const STATE_COMMITTED: &str = "state_committed";
pub fn state_committed(generation: u64, key: &dyn Display) {
    tracing::debug!(event = STATE_COMMITTED, generation, key = %key, "State committed");
}

pub const STATE_PRUNE_FAILED: &str = "state_prune_failed";
pub fn state_prune_failed(key: &dyn Display, error: &dyn Display) {
    tracing::warn!(event = STATE_PRUNE_FAILED, key = %key, error = %error, "Could not delete an old state generation");
}

pub const CONDITIONAL_WRITES_IGNORED: &str = "conditional_writes_ignored";
pub fn conditional_writes_ignored(prefix: &dyn Display) {
    tracing::warn!(
        event = CONDITIONAL_WRITES_IGNORED,
        prefix = %prefix,
        "The destination ignores conditional writes; going on because single_writer is set: make sure no other run ever works on this prefix at the same time"
    );
}

pub const PROBE_DELETE_FAILED: &str = "probe_delete_failed";
pub fn probe_delete_failed(key: &dyn Display, error: &dyn Display) {
    tracing::debug!(event = PROBE_DELETE_FAILED, key = %key, error = %error, "Could not delete a probe object");
}

pub const LEASE_TAKEN_OVER: &str = "lease_taken_over";
pub fn lease_taken_over(lease: &dyn Display, previous: &str, expired_at: &str) {
    tracing::warn!(
        event = LEASE_TAKEN_OVER,
        lease = %lease,
        previous,
        expired_at,
        "Took over an expired run lease (the previous run crashed or stopped heartbeating)"
    );
}

pub const LEASE_CLAIM_DELETE_FAILED: &str = "lease_claim_delete_failed";
pub fn lease_claim_delete_failed(claim: &dyn Display, error: &dyn Display) {
    tracing::debug!(event = LEASE_CLAIM_DELETE_FAILED, claim = %claim, error = %error, "Could not delete the take-over claim");
}

pub const LEASE_LOST: &str = "lease_lost";
/// `reason` says who holds the lease now, or why it could not be kept.
pub fn lease_lost(lease: &dyn Display, run_id: &str, reason: &str) {
    tracing::error!(event = LEASE_LOST, lease = %lease, run_id, "{reason}");
}

pub const LEASE_RENEW_FAILED: &str = "lease_renew_failed";
pub fn lease_renew_failed(lease: &dyn Display, error: &dyn Display) {
    tracing::warn!(event = LEASE_RENEW_FAILED, lease = %lease, error = %error, "Lease renewal failed; retrying at the next heartbeat");
}

pub const LEASE_RELEASED: &str = "lease_released";
pub fn lease_released(lease: &dyn Display) {
    tracing::debug!(event = LEASE_RELEASED, lease = %lease, "Lease released");
}

pub const LEASE_RELEASE_FAILED: &str = "lease_release_failed";
/// The lease could not be read or deleted on release; it expires on its own.
pub fn lease_release_failed(lease: &dyn Display, error: &dyn Display) {
    tracing::warn!(event = LEASE_RELEASE_FAILED, lease = %lease, error = %error, "Could not release the lease; it will expire");
}

// ---- operator commands (`state reset`, `state unlock`) ------------------------------------

pub const STATE_RESET: &str = "state_reset";
/// `state reset` committed a generation without these streams.
pub fn state_reset(run_id: &str, streams: &str, generation: u64) {
    tracing::warn!(
        event = STATE_RESET,
        run_id,
        streams,
        generation,
        "Reset streams: the next sync reads them from scratch"
    );
}

pub const LEASE_CLEARED: &str = "lease_cleared";
/// `state unlock` deleted a stale (or, with `--force`, another host's) lease.
pub fn lease_cleared(lease: &dyn Display, holder: &str, forced: bool) {
    tracing::warn!(
        event = LEASE_CLEARED,
        lease = %lease,
        holder,
        forced,
        "Removed the run lease"
    );
}

pub const LEASE_NOT_OURS: &str = "lease_not_ours";
pub fn lease_not_ours(lease: &dyn Display, holder: &str) {
    tracing::warn!(event = LEASE_NOT_OURS, lease = %lease, holder, "Not releasing the lease: it belongs to another run");
}

#[cfg(test)]
mod tests {
    /// Every event name is unique and `snake_case` (log pipelines match on them).
    #[test]
    fn names_are_unique_snake_case() {
        let src = include_str!("events.rs");
        let names: Vec<&str> = src
            .lines()
            .filter_map(|l| l.strip_prefix("pub const "))
            .filter_map(|l| l.split_once(": &str = \"").map(|(_, v)| v))
            .filter_map(|v| v.strip_suffix("\";"))
            .collect();
        assert!(names.len() > 25, "{names:?}");
        let mut seen = std::collections::BTreeSet::new();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
            assert!(seen.insert(*n), "duplicate event name {n}");
        }
    }
}
