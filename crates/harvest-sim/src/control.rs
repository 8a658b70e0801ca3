//! The loopback control API under `/_sim/` (no auth): mutate, reset, stats, resources,
//! truth and deleted ids.
//!
//! Contract: `/_sim/count/<res>?<list params>` answers how many live rows a `/v3/<res>` list
//! with those parameters returns over all its pages (the same validation, 422 bodies and
//! resource defaults as `/v3`; no token, no rate limit, not counted in stats);
//! `/_sim/stats` includes a per-rate-window histogram of `/v3` requests;
//! `/_sim/truth/<res>` serves exactly the JSON objects the API serves, for every
//! live row including rows hidden by default; `/_sim/deleted/<res>` lists hard-deleted ids;
//! `/_sim/mutate` validates its parameters (422 on unknown names or bad numbers), applies
//! `mutate::apply_with_events` under the write lock and queues the events' webhooks;
//! `/_sim/webhooks` lists every webhook event, `/_sim/webhooks/flush` waits for deliveries; `/_sim/reset` rebuilds the seeded state and clears
//! stats, rate windows and the fault sequence.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::{Value, json};

use super::data::Db;
use super::model::R;
use super::mutate::{self, MutateSpec};
use super::page;
use super::query;
use super::shared::{Body, State, Stats, json_resp, not_found, text_resp};

pub(super) async fn control(state: &State, req: Request<Incoming>, rest: &str) -> Response<Body> {
    let params: HashMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let bad = |m: String| {
        json_resp(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"message": "Unprocessable Content", "errors": [m]}),
        )
    };
    let method = req.method().clone();
    match (method, rest) {
        // Where a `redirect` bad-record rule points (on the other origin): a list page that
        // asks for no token, so a client that follows the redirect has data to (wrongly) keep.
        (Method::GET, "elsewhere") => json_resp(
            StatusCode::OK,
            &json!([{"id": 1, "elsewhere": "this page is not from the API's origin"}]),
        ),
        (Method::POST, "clock") => {
            // Moves the simulator's clock forward (tokens expire, rate windows pass, mutations
            // are stamped later) without anyone waiting.
            if let Some(k) = params.keys().find(|k| k.as_str() != "advance_ms") {
                return bad(format!("Invalid query params: {k}"));
            }
            let Some(Ok(ms)) = params.get("advance_ms").map(|v| v.parse::<u32>()) else {
                return bad("advance_ms: give a non-negative number of milliseconds".into());
            };
            let offset = state
                .clock_offset_ms
                .fetch_add(i64::from(ms), std::sync::atomic::Ordering::SeqCst)
                + i64::from(ms);
            json_resp(StatusCode::OK, &json!({ "offset_ms": offset }))
        }
        (Method::POST, "mutate") => {
            let num = |k: &str| -> Result<u64, String> {
                params
                    .get(k)
                    .map(|v| {
                        v.parse::<u64>()
                            .map_err(|_| format!("{k}: `{v}` is not a non-negative integer"))
                    })
                    .unwrap_or(Ok(0))
            };
            let spec = (|| -> Result<MutateSpec, String> {
                for k in params.keys() {
                    if !matches!(
                        k.as_str(),
                        "updates"
                            | "inserts"
                            | "deletes"
                            | "merges"
                            | "anonymizes"
                            | "seed"
                            | "resources"
                    ) {
                        return Err(format!("Invalid query params: {k}"));
                    }
                }
                let resources = match params.get("resources") {
                    None => None,
                    Some(list) => Some(
                        list.split(',')
                            .filter(|s| !s.is_empty())
                            .map(|s| {
                                R::from_name(s).ok_or_else(|| format!("unknown resource `{s}`"))
                            })
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                let cap = |v: u64| v.min(100_000) as u32;
                Ok(MutateSpec {
                    updates: cap(num("updates")?),
                    inserts: cap(num("inserts")?),
                    deletes: cap(num("deletes")?),
                    merges: cap(num("merges")?),
                    anonymizes: cap(num("anonymizes")?),
                    seed: num("seed")?,
                    resources,
                })
            })();
            match spec {
                Ok(spec) => {
                    let mut db = state.db.write().unwrap_or_else(|e| e.into_inner());
                    let (rep, events) = mutate::apply_with_events(&mut db, &spec, state.now_ms());
                    drop(db);
                    state.hooks.enqueue(events);
                    json_resp(StatusCode::OK, &rep)
                }
                Err(m) => bad(m),
            }
        }
        (Method::POST, "reset") => {
            let (seed, scale) = (state.cfg.seed, state.cfg.scale);
            let fresh = tokio::task::spawn_blocking(move || Db::new(seed, scale)).await;
            match fresh {
                Ok(db) => *state.db.write().unwrap_or_else(|e| e.into_inner()) = db,
                Err(e) => {
                    return json_resp(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        &json!({"message": e.to_string()}),
                    );
                }
            }
            *state.stats.lock().unwrap_or_else(|e| e.into_inner()) =
                Stats::new(state.cfg.rate_window);
            state
                .limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            state
                .token_limiter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            state.seq.store(0, Ordering::SeqCst);
            state.peak.store(0, Ordering::SeqCst);
            json_resp(StatusCode::OK, &json!({"reset": true}))
        }
        (Method::GET, "webhooks") => json_resp(StatusCode::OK, &state.hooks.list()),
        (Method::POST, "webhooks/flush") => {
            if let Some(k) = params.keys().find(|k| k.as_str() != "timeout_ms") {
                return bad(format!("Invalid query params: {k}"));
            }
            let ms = match params.get("timeout_ms").map(|v| v.parse::<u64>()) {
                None => 30_000,
                Some(Ok(ms)) => ms.min(600_000),
                Some(Err(_)) => {
                    return bad("timeout_ms: give a non-negative number of milliseconds".into());
                }
            };
            let list = state
                .hooks
                .flush(std::time::Duration::from_millis(ms))
                .await;
            json_resp(StatusCode::OK, &list)
        }
        (Method::GET, "stats") => {
            let st = state.stats.lock().unwrap_or_else(|e| e.into_inner());
            let by: BTreeMap<&String, BTreeMap<String, u64>> = st
                .by_resource
                .iter()
                .map(|(k, v)| (k, v.iter().map(|(s, n)| (s.to_string(), *n)).collect()))
                .collect();
            json_resp(
                StatusCode::OK,
                &json!({
                    "total_requests": st.total,
                    "rate_limited": st.rate_limited,
                    "records_served": st.records,
                    "bytes_served": st.bytes,
                    "peak_concurrency": state.peak.load(Ordering::SeqCst),
                    "token_requests": st.token_requests,
                    "faults": st.faults,
                    "by_resource": by,
                    "rate_limit": state.cfg.rate_limit,
                    "rate_window": state.cfg.rate_window,
                    "windows": st.windows.windows(),
                }),
            )
        }
        (Method::GET, "resources") => {
            let db = state.db.read().unwrap_or_else(|e| e.into_inner());
            let v: BTreeMap<&str, Value> = R::ALL
                .iter()
                .map(|r| {
                    let t = db.t(*r);
                    let live = t.alive.iter().filter(|a| **a).count();
                    (
                        r.name(),
                        json!({"rows": live, "params": query::accepted_params(*r)}),
                    )
                })
                .collect();
            json_resp(StatusCode::OK, &json!(v))
        }
        (Method::GET, p) if p.starts_with("count/") => {
            let Some(r) = R::from_name(p.strip_prefix("count/").unwrap_or_default()) else {
                return not_found();
            };
            let raw = req.uri().query().unwrap_or("");
            let db = state.db.read().unwrap_or_else(|e| e.into_inner());
            match query::parse(&db, r, raw, state.secret) {
                Ok(q) => json_resp(
                    StatusCode::OK,
                    &json!({"resource": r.name(), "count": page::count(&db, &q)}),
                ),
                Err(body) => json_resp(StatusCode::UNPROCESSABLE_ENTITY, &body),
            }
        }
        (Method::GET, p) if p.starts_with("truth/") || p.starts_with("deleted/") => {
            let (kind, name) = p.split_once('/').unwrap_or((p, ""));
            let Some(r) = R::from_name(name) else {
                return not_found();
            };
            let db = state.db.read().unwrap_or_else(|e| e.into_inner());
            let body = if kind == "truth" {
                page::truth(&db, r)
            } else {
                db.t(r)
                    .deleted
                    .iter()
                    .map(|id| format!("{{\"id\":{id}}}\n"))
                    .collect()
            };
            text_resp(StatusCode::OK, "application/x-ndjson", body)
        }
        _ => not_found(),
    }
}
