//! Deletes: after every stream's window is committed, what disappeared from Greenhouse becomes
//! tombstones in the streams' own files.
//!
//! Harvest v3 lists no deleted records; a delete is seen three ways, all read from the stream
//! declarations (`deletes`), never from a stream's name:
//! - **reconcile**: a complete listing of the live ids (`fields=id`, 500 per page, under the
//!   run's rate budget) compared with the stream's id index; a full-refresh stream's own read is
//!   that listing, at no extra cost. Due on a cadence ([`crate::config::ReconcilePolicy`]) or
//!   forced (`sync --reconcile`).
//! - **webhook**: events the receiver (`webhooks serve`) stored under the destination name ids
//!   (`webhooks` rules); `refresh` rules re-read records by id (anonymised candidates).
//! - **cascade**: a child whose declared reference points at a deleted parent is deleted too, so
//!   big child streams need no listing of their own.
//!
//! Contract:
//! - Runs after every stream's read, in cascade order (parents first), only for streams whose
//!   window committed in this run: their id index holds every id read up to the signpost. A
//!   listing only removes ids it does not contain, so a record created after the signpost is
//!   never tombstoned (it is not in the index yet).
//! - Crash safety: tombstones are written, then one commit records them with the new index;
//!   a run killed before that commit tombstoned nothing the index knows of, and the next run
//!   computes the same deletes again (a duplicate tombstone is harmless: readers keep the
//!   latest row per id). A listing that fails or is interrupted writes nothing.
//! - A child a merge moved to another parent after the signpost may be tombstoned by a cascade
//!   before the next run reads it again with its new parent; it is live again from that read
//!   (readers keep the latest row per id), and its index entry with it.
//! - Stored webhook events are deleted once everything they said is committed; an event that
//!   cannot be applied is kept (and logged) for review.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::commit::{Commit, commit};
use super::context::RunCtx;
pub use super::index::indexed;
use super::index::{cascade_fields, load_index, save_index};
use super::options::Selected;
use super::summary::{StreamReport, StreamStatus};
use crate::events;
use crate::harvest::{FetchError, RequestStats};
use crate::registry::{Stream, WebhookRule};
use crate::state::StreamState;
use crate::state::ids::{Deleted, DeletedBy, IdIndex, IdSet};

/// Ids per request of a reconcile listing (the most the API allows).
pub(super) const LIST_PER_PAGE: u32 = 500;
/// Ids per request when re-reading records by id (the API's limit for `ids`).
const IDS_PER_REQUEST: usize = 50;

/// The committed index of `stream` (from the run's state) and when it was last reconciled.
async fn committed_index(ctx: &RunCtx<'_>, stream: &Stream) -> (IdIndex, Option<DateTime<Utc>>) {
    let entry = ctx.state.lock().await.stream(&stream.name).cloned();
    let index = load_index(
        ctx.output,
        &stream.name,
        &cascade_fields(stream),
        entry.as_ref(),
    )
    .await;
    let reconciled_at = entry
        .as_ref()
        .and_then(|e| e.ids.as_ref())
        .and_then(|r| r.reconciled_at);
    (index, reconciled_at)
}

/// What the stored webhook events say, per stream.
#[derive(Default)]
struct WebhookFacts {
    deletes: BTreeMap<String, Vec<Deleted>>,
    refresh: BTreeMap<String, BTreeSet<i64>>,
    /// Keys of the events that were fully understood (deleted once applied).
    applied: Vec<String>,
}

/// Ids a rule's pointer names in `event`.
fn rule_ids(rule: &WebhookRule, event: &serde_json::Value) -> Option<Vec<i64>> {
    let v = event.pointer(&rule.pointer)?;
    let id = |v: &serde_json::Value| crate::convert::integer_key(v);
    if rule.many {
        v.as_array()?.iter().map(id).collect()
    } else {
        id(v).map(|i| vec![i])
    }
}

/// Runs the deletes phase for `streams` (see the module contract), filling each report's
/// `deletes`.
pub(super) async fn apply(
    ctx: &RunCtx<'_>,
    streams: &[&Selected<'_>],
    reports: &mut [StreamReport],
) {
    let now = Utc::now();
    let committed: BTreeSet<String> = reports
        .iter()
        .filter(|r| r.status == StreamStatus::Committed)
        .map(|r| r.stream.clone())
        .collect();
    let report_of = |reports: &mut [StreamReport], name: &str| -> Option<usize> {
        reports.iter().position(|r| r.stream == name)
    };
    let order = cascade_order(streams);
    if ctx.cancel.is_cancelled() {
        return;
    }

    // Stored webhook events.
    let facts = webhook_facts(ctx, &order, now).await;

    // Reconcile listings, concurrently under the run's unit slots.
    let listings = reconcile_listings(ctx, &order, &committed, reports).await;

    // Parents first: each stream's deleted ids feed its children's cascades.
    let mut deleted_by_stream: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut all_ok = true;
    for sel in &order {
        let stream = sel.stream;
        let Some(ri) = report_of(reports, &stream.name) else {
            continue;
        };
        if !committed.contains(&stream.name) || !indexed(stream) {
            continue;
        }
        if ctx.cancel.is_cancelled() {
            return;
        }
        let (mut index, mut reconciled_at) = committed_index(ctx, stream).await;
        let mut gone: Vec<Deleted> = Vec::new();
        match listings.get(&stream.name) {
            Some(Ok((listed, requests))) => {
                reports[ri].deletes.reconciled = true;
                reports[ri].deletes.reconcile_requests = *requests;
                reports[ri].requests += requests;
                reconciled_at = Some(now);
                gone.extend(index.missing_from(listed).into_iter().map(|id| Deleted {
                    id,
                    at_micros: now.timestamp_micros(),
                    by: DeletedBy::Reconcile,
                    merged_into: None,
                }));
            }
            Some(Err(e)) => {
                events::deletes_failed(&stream.name, e);
                reports[ri].deletes.error = Some(format!("the id listing failed: {e}"));
            }
            None => {}
        }
        if let Some(d) = facts.deletes.get(&stream.name) {
            gone.extend(d.iter().copied());
        }
        for (field, cascade) in stream.deletes.cascade.iter().enumerate() {
            let parents = match deleted_by_stream.get(&cascade.parent) {
                Some(p) => p.clone(),
                None => {
                    // A parent not read in this run: its index as last committed.
                    let parent_entry = ctx.state.lock().await.stream(&cascade.parent).cloned();
                    let ix =
                        load_index(ctx.output, &cascade.parent, &[], parent_entry.as_ref()).await;
                    let ids: Vec<i64> = ix.deleted().iter().map(|d| d.id).collect();
                    deleted_by_stream.insert(cascade.parent.clone(), ids.clone());
                    ids
                }
            };
            gone.extend(
                index
                    .referencing(field, &parents)
                    .into_iter()
                    .map(|id| Deleted {
                        id,
                        at_micros: now.timestamp_micros(),
                        by: DeletedBy::Cascade,
                        merged_into: None,
                    }),
            );
        }
        let fresh = index.delete(gone);
        // A paid listing is recorded even when it found nothing (the cadence counts from it);
        // a complete read recorded its listing in its own commit.
        let paid_listing = reports[ri].deletes.reconcile_requests > 0;
        if !fresh.is_empty() || paid_listing {
            match write_and_commit(ctx, sel, &index, &fresh, reconciled_at).await {
                Ok(files) => {
                    let d = &mut reports[ri].deletes;
                    for t in &fresh {
                        match t.by {
                            DeletedBy::Reconcile => d.by_reconcile += 1,
                            DeletedBy::Cascade => d.by_cascade += 1,
                            DeletedBy::Webhook => d.by_webhook += 1,
                        }
                    }
                    if !fresh.is_empty() {
                        events::deletes_applied(
                            &stream.name,
                            d.by_reconcile,
                            d.by_cascade,
                            d.by_webhook,
                            d.reconcile_requests,
                        );
                    }
                    reports[ri].files.extend(files);
                }
                Err(e) => {
                    all_ok = false;
                    events::deletes_failed(&stream.name, &e);
                    reports[ri].deletes.error = Some(e);
                    // Children must not cascade from deletes that were not committed.
                    let ids = index
                        .deleted()
                        .iter()
                        .map(|d| d.id)
                        .filter(|id| !fresh.iter().any(|f| f.id == *id))
                        .collect();
                    deleted_by_stream.insert(stream.name.clone(), ids);
                    continue;
                }
            }
        }
        // A complete listing also settles what an output keeps as current state.
        if let Some(Ok((listed, _))) = listings.get(&stream.name) {
            // Decoded one stream at a time (ascending, as the output wants them).
            let live: Vec<i64> = listed.iter().collect();
            if let Err(e) = ctx.output.reconciled(stream, &live).await {
                all_ok = false;
                events::deletes_failed(&stream.name, &e.to_string());
                reports[ri].deletes.error = Some(e.to_string());
            }
        }
        deleted_by_stream.insert(
            stream.name.clone(),
            index.deleted().iter().map(|d| d.id).collect(),
        );
    }

    // Records a webhook said changed without a new `updated_at` (anonymised candidates).
    for (name, ids) in &facts.refresh {
        let Some(sel) = order.iter().find(|s| &s.stream.name == name) else {
            continue;
        };
        let Some(ri) = report_of(reports, name) else {
            continue;
        };
        if !committed.contains(name) {
            all_ok = false;
            continue;
        }
        match refresh(ctx, sel, ids).await {
            Ok((rows, files, requests)) => {
                reports[ri].deletes.refreshed += rows;
                reports[ri].requests += requests;
                reports[ri].rows += rows;
                reports[ri].files.extend(files);
            }
            Err(e) => {
                all_ok = false;
                events::deletes_failed(name, &e);
                reports[ri].deletes.error = Some(e);
            }
        }
    }

    // Every stream a webhook event touched committed what it said: the events are done.
    let touched = facts.deletes.keys().chain(facts.refresh.keys());
    let touched_ok = touched.clone().all(|n| committed.contains(n));
    if all_ok && touched_ok && !facts.applied.is_empty() {
        for key in &facts.applied {
            ctx.output.drop_webhook_event(key).await;
        }
    }
}

/// `streams` with parents before children (cascades among the selected streams).
fn cascade_order<'a, 'r>(streams: &[&'a Selected<'r>]) -> Vec<&'a Selected<'r>> {
    let names: BTreeSet<&str> = streams.iter().map(|s| s.stream.name.as_str()).collect();
    let mut done: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(streams.len());
    let mut rest: Vec<&Selected> = streams.to_vec();
    rest.sort_by(|a, b| a.stream.name.cmp(&b.stream.name));
    while !rest.is_empty() {
        let before = rest.len();
        rest.retain(|s| {
            let ready =
                s.stream.deletes.cascade.iter().all(|c| {
                    !names.contains(c.parent.as_str()) || done.contains(c.parent.as_str())
                });
            if ready {
                done.insert(s.stream.name.as_str());
                out.push(*s);
            }
            !ready
        });
        if rest.len() == before {
            // A cycle (the registry refuses them): keep the rest in name order.
            out.append(&mut rest);
        }
    }
    out
}

/// Reads the stored webhook events and maps them onto the selected streams' rules.
async fn webhook_facts(
    ctx: &RunCtx<'_>,
    order: &[&Selected<'_>],
    now: DateTime<Utc>,
) -> WebhookFacts {
    let mut facts = WebhookFacts::default();
    let wants = order
        .iter()
        .any(|s| !s.stream.deletes.webhooks.is_empty() || !s.stream.deletes.refresh.is_empty());
    if !wants {
        return facts;
    }
    let events = match ctx.output.webhook_events(now).await {
        Ok(e) => e,
        Err(e) => {
            events::deletes_failed(
                "*",
                &format!("the stored webhook events could not be read: {e}"),
            );
            return facts;
        }
    };
    let mut unusable = 0;
    for ev in &events {
        let doc = serde_json::json!({ "action": ev.action, "payload": ev.payload });
        let mut understood = true;
        let mut matched = false;
        for sel in order {
            let d = &sel.stream.deletes;
            for rule in d.webhooks.iter().filter(|r| r.action == ev.action) {
                matched = true;
                let Some(ids) = rule_ids(rule, &doc) else {
                    understood = false;
                    events::webhook_event_unusable(&ev.key, &format!("no id at {}", rule.pointer));
                    continue;
                };
                let merged_into = rule
                    .merged_into
                    .as_deref()
                    .and_then(|p| doc.pointer(p))
                    .and_then(crate::convert::integer_key);
                facts
                    .deletes
                    .entry(sel.stream.name.clone())
                    .or_default()
                    .extend(ids.into_iter().map(|id| Deleted {
                        id,
                        at_micros: ev.received_at.timestamp_micros(),
                        by: DeletedBy::Webhook,
                        merged_into,
                    }));
            }
            for rule in d.refresh.iter().filter(|r| r.action == ev.action) {
                matched = true;
                match rule_ids(rule, &doc) {
                    Some(ids) => facts
                        .refresh
                        .entry(sel.stream.name.clone())
                        .or_default()
                        .extend(ids),
                    None => {
                        understood = false;
                        events::webhook_event_unusable(
                            &ev.key,
                            &format!("no id at {}", rule.pointer),
                        );
                    }
                }
            }
        }
        // An event no selected stream has a rule for stays for a run that selects one.
        if understood && matched {
            facts.applied.push(ev.key.clone());
        } else if !understood {
            unusable += 1;
        }
    }
    events::webhook_events_applied(facts.applied.len(), unusable);
    facts
}

/// Whether `stream`'s ids are listed in a run: forced by `forced` (`sync --reconcile`; empty =
/// every stream), else by `policy`'s cadence. Only hard-deleted streams that declare
/// `reconcile` are ever listed.
pub fn reconcile_due(
    policy: &crate::config::ReconcilePolicy,
    forced: Option<&[String]>,
    stream: &Stream,
    entry: Option<&StreamState>,
    now: DateTime<Utc>,
) -> bool {
    if !stream.deletes.reconcile || !indexed(stream) {
        return false;
    }
    if let Some(forced) = forced
        && (forced.is_empty() || forced.iter().any(|n| n == &stream.name))
    {
        return true;
    }
    if !policy.enabled {
        return false;
    }
    let ids = entry.and_then(|e| e.ids.as_ref());
    if ids.map_or(0, |r| r.live) <= policy.every_run_below {
        return true;
    }
    match ids.and_then(|r| r.reconciled_at) {
        None => true,
        Some(at) => now
            .signed_duration_since(at)
            .to_std()
            .is_ok_and(|age| age >= policy.interval),
    }
}

/// Requests a listing of `live` ids over `partitions` partitions costs at least (an empty
/// partition still costs its one request).
pub fn listing_requests(live: u64, partitions: u64) -> u64 {
    live.div_ceil(u64::from(LIST_PER_PAGE)).max(1) + partitions.saturating_sub(1)
}

/// The live ids and the requests the listing cost (0: the stream's own complete read).
type Listing = Result<(IdSet, u64), String>;

/// Lists the live ids of every due stream (a full-refresh stream's own read is its listing).
async fn reconcile_listings(
    ctx: &RunCtx<'_>,
    order: &[&Selected<'_>],
    committed: &BTreeSet<String>,
    reports: &mut [StreamReport],
) -> BTreeMap<String, Listing> {
    let mut out = BTreeMap::new();
    let mut to_list = Vec::new();
    for sel in order {
        let stream = sel.stream;
        if !committed.contains(&stream.name) || !indexed(stream) {
            continue;
        }
        // A complete read (full refresh, or a window from the beginning) is a listing: free.
        if let Some(ids) = reports
            .iter_mut()
            .find(|r| r.stream == stream.name)
            .and_then(|r| r.read_ids.take())
        {
            out.insert(stream.name.clone(), Ok((ids, 0)));
            continue;
        }
        let entry = ctx.state.lock().await.stream(&stream.name).cloned();
        let forced = ctx.opts.reconcile.as_deref();
        if !reconcile_due(
            &ctx.config.reconcile,
            forced,
            stream,
            entry.as_ref(),
            Utc::now(),
        ) {
            continue;
        }
        to_list.push(stream);
    }
    use futures::StreamExt;
    let listed: Vec<(String, Listing)> = futures::stream::iter(to_list)
        .map(|stream| async move {
            let _slot = ctx.units.acquire().await;
            let stats = RequestStats::default();
            let r = list_ids(ctx, stream, &stats)
                .await
                .map(|ids| (IdSet::from_ids(ids), stats.snapshot().0))
                .map_err(|e| e.to_string());
            (stream.name.clone(), r)
        })
        .buffer_unordered(ctx.config.concurrency.max(1))
        .collect()
        .await;
    out.extend(listed);
    out
}

/// Every live id of `stream`, over all its partitions.
async fn list_ids(
    ctx: &RunCtx<'_>,
    stream: &Stream,
    stats: &RequestStats,
) -> Result<Vec<i64>, FetchError> {
    let key = stream.primary_key.first().map_or("id", String::as_str);
    let mut ids = Vec::new();
    for mut params in stream.partition_params() {
        params.insert("fields".to_string(), key.to_string());
        let mut next = Some(ctx.client.first_page_url(
            &stream.resource,
            &params,
            Some(LIST_PER_PAGE),
        ));
        let mut guard = crate::harvest::link::ChainGuard::default();
        while let Some(url) = next {
            let page = ctx.client.get_page(&url, stats).await?;
            guard
                .check(
                    url.as_str(),
                    &page.body,
                    page.next.as_ref().map(url::Url::as_str),
                )
                .map_err(|why| {
                    FetchError::Rejected(format!("id listing of {}: {why}", stream.name))
                })?;
            let rows: Vec<serde_json::Value> = serde_json::from_slice(&page.body).map_err(|e| {
                FetchError::Rejected(format!(
                    "id listing of {}: not a JSON array: {e}",
                    stream.name
                ))
            })?;
            for row in rows {
                match row.get(key).and_then(crate::convert::integer_key) {
                    Some(id) => ids.push(id),
                    // An id listing that cannot be read whole must not tombstone anything.
                    None => {
                        return Err(FetchError::Rejected(format!(
                            "id listing of {}: a row without a usable `{key}`",
                            stream.name
                        )));
                    }
                }
            }
            next = page.next;
        }
    }
    Ok(ids)
}

/// Writes `fresh` tombstones into the stream's files and commits them with `index`.
async fn write_and_commit(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    index: &IdIndex,
    fresh: &[Deleted],
    reconciled_at: Option<DateTime<Utc>>,
) -> Result<Vec<crate::sink::WrittenFile>, String> {
    let mut files = Vec::new();
    if !fresh.is_empty() {
        let mut writer = ctx
            .output
            .open(sel, Some("deletes"), None)
            .map_err(|e| e.to_string())?;
        if let Err(e) = writer.write_tombstones(fresh).await {
            writer.abort().await;
            return Err(e.to_string());
        }
        files = writer.close().await.map_err(|e| e.to_string())?;
    }
    let ids = Some(
        save_index(ctx.output, sel.stream, index, reconciled_at)
            .await
            .map_err(|e| e.to_string())?,
    );
    let result = commit(
        ctx,
        sel.stream,
        Commit::Deletes {
            files: &files,
            ids,
            erase_before: None,
        },
    )
    .await;
    match result {
        Ok(()) => Ok(files),
        Err(e) => {
            ctx.output.discard(files).await;
            Err(format!("commit failed: {e}"))
        }
    }
}

/// Reads `ids` of the stream again (by `ids`, 50 per request) and commits the rows; returns
/// (rows, files, requests).
async fn refresh(
    ctx: &RunCtx<'_>,
    sel: &Selected<'_>,
    ids: &BTreeSet<i64>,
) -> Result<(u64, Vec<crate::sink::WrittenFile>, u64), String> {
    let stream = sel.stream;
    let stats = RequestStats::default();
    // The re-read rows carry this instant as `_extracted_at`: later than anything the run read
    // before, so they are the current version, and every older row of these ids is what
    // `purge` erases (`erase_before`).
    let started = Utc::now();
    let mut writer = ctx
        .output
        .open(sel, Some("refresh"), Some(started))
        .map_err(|e| e.to_string())?;
    let mut keys = crate::state::ids::Keys::new(stream.deletes.cascade.len());
    let mut rows = 0;
    let ids: Vec<i64> = ids.iter().copied().collect();
    let read = async {
        for chunk in ids.chunks(IDS_PER_REQUEST) {
            for mut params in stream.partition_params() {
                let list: Vec<String> = chunk.iter().map(i64::to_string).collect();
                params.insert("ids".to_string(), list.join(","));
                let mut next = Some(ctx.client.first_page_url(&stream.resource, &params, None));
                while let Some(url) = next {
                    let page = ctx
                        .client
                        .get_page(&url, &stats)
                        .await
                        .map_err(|e| e.to_string())?;
                    let out = writer
                        .write(&page.body, None)
                        .await
                        .map_err(|e| e.to_string())?;
                    rows += out.rows;
                    keys.extend(crate::state::ids::Keys {
                        ids: out.ids,
                        refs: out.refs,
                    });
                    next = page.next;
                }
            }
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = read {
        writer.abort().await;
        return Err(e);
    }
    let files = writer.close().await.map_err(|e| e.to_string())?;
    let (mut index, reconciled_at) = committed_index(ctx, stream).await;
    index.upsert(&keys);
    let ids_ref = match indexed(stream) {
        true => Some(
            save_index(ctx.output, stream, &index, reconciled_at)
                .await
                .map_err(|e| e.to_string())?,
        ),
        false => None,
    };
    if let Err(e) = commit(
        ctx,
        stream,
        Commit::Deletes {
            files: &files,
            ids: ids_ref,
            erase_before: Some((ids.as_slice(), started)),
        },
    )
    .await
    {
        ctx.output.discard(files).await;
        return Err(format!("commit failed: {e}"));
    }
    Ok((rows, files, stats.snapshot().0))
}
