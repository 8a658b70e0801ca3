//! Greenhouse webhook events for the changes `/_sim/mutate` makes: which change fires which
//! action, and its payload in the shape of Greenhouse's webhook docs.
//!
//! Contract: a payload is built from the row as the API served it just before the change (so
//! call these before the row dies), never from anything the extractor declares. Only changes
//! Greenhouse has a webhook for produce an event: a row that dies in a cascade, a resource with
//! no delete webhook (user_emails, tracking_links, …) and an offer deprecated by a new version
//! produce none; a merged candidate fires `merge_candidate`, never `delete_candidate`.

use serde_json::{Map, Value, json};

use super::data::Db;
use super::model::{self, R};

/// One webhook event: `{"action": …, "payload": …}` once serialised.
#[derive(Debug, Clone)]
pub struct Event {
    pub action: &'static str,
    pub payload: Value,
}

impl Event {
    pub fn body(&self) -> Value {
        json!({"action": self.action, "payload": self.payload})
    }
}

fn row(db: &Db, r: R, idx: u32) -> Map<String, Value> {
    match serde_json::from_str(&db.row_json(r, idx)) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Copies `keys` of `src` (null when absent) into a new object, renaming `from → to` pairs.
fn pick(src: &Map<String, Value>, keys: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    for (to, from) in keys {
        out.insert(
            (*to).to_string(),
            src.get(*from).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

/// Greenhouse's `person` object of `delete_candidate` / `merge_candidate`.
fn person(db: &Db, idx: u32) -> Value {
    let c = row(db, R::Candidates, idx);
    let mut p = pick(
        &c,
        &[
            ("id", "id"),
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("company", "company"),
            ("title", "title"),
            ("created_at", "created_at"),
            ("headline", "headline"),
            ("is_private", "private"),
            ("recruiter_user_id", "recruiter_user_id"),
            ("coordinator_user_id", "coordinator_user_id"),
            ("can_email", "can_email"),
        ],
    );
    if p["is_private"].is_null() {
        p["is_private"] = Value::Bool(false);
    }
    p
}

/// Former descendants (`parent_id` chains) of department or office `idx`, ascending.
fn descendants(db: &Db, r: R, idx: u32) -> Vec<i64> {
    let t = db.t(r);
    let parents: Vec<(i64, Option<i64>)> = (0..t.len())
        .filter(|i| db.is_alive(r, *i))
        .map(|i| {
            let v = row(db, r, i);
            (
                model::id_of(r, i),
                v.get("parent_id").and_then(Value::as_i64),
            )
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![model::id_of(r, idx)];
    while let Some(p) = frontier.pop() {
        for (id, parent) in &parents {
            if *parent == Some(p) && !out.contains(id) {
                out.push(*id);
                frontier.push(*id);
            }
        }
    }
    out.sort_unstable();
    out
}

/// The event a direct (not cascaded) hard or soft delete of row `idx` of `r` fires, if
/// Greenhouse has one. Call it while the row is still alive.
pub fn deleted(db: &Db, r: R, idx: u32) -> Option<Event> {
    let v = row(db, r, idx);
    let (action, key, payload) = match r {
        R::Candidates => {
            let mut p = person(db, idx);
            let apps: Vec<i64> = db
                .children(R::Applications, idx)
                .into_iter()
                .map(|a| model::id_of(R::Applications, a))
                .collect();
            p["deleted_application_ids"] = json!(apps);
            ("delete_candidate", "person", p)
        }
        R::Applications => (
            "delete_application",
            "application",
            pick(
                &v,
                &[
                    ("id", "id"),
                    ("candidate_id", "candidate_id"),
                    ("job_id", "job_id"),
                    ("created_at", "created_at"),
                    ("source_id", "source_id"),
                    (
                        "candidate_rejection_reason_id",
                        "candidate_rejection_reason_id",
                    ),
                    ("rejection_note_id", "rejection_note_id"),
                    ("rejected_at", "rejected_at"),
                    ("referrer_id", "referrer_id"),
                    ("prospect", "prospect"),
                    ("rejected_by_user_id", "rejected_by_user_id"),
                ],
            ),
        ),
        R::Offers => (
            "offer_deleted",
            "offer",
            pick(
                &v,
                &[
                    ("id", "id"),
                    ("application_id", "application_id"),
                    ("offering_user_id", "offering_user_id"),
                    ("offer_status", "status"),
                    ("version", "version"),
                    ("sent_on", "sent_on"),
                    ("resolved_at", "resolved_at"),
                    ("notes", "notes"),
                    ("job_id", "job_id"),
                ],
            ),
        ),
        R::Interviews => ("interview_deleted", "interview", pick(&v, &[("id", "id")])),
        R::Scorecards => {
            let mut p = pick(
                &v,
                &[
                    ("id", "id"),
                    ("candidate_id", "candidate_id"),
                    ("interviewed_at", "interviewed_at"),
                    ("created_at", "created_at"),
                    ("updated_at", "updated_at"),
                    ("scorecard_status", "status"),
                ],
            );
            let app = db.parent_of(R::Scorecards, idx).unwrap_or(0);
            let cand = db.parent_of(R::Applications, app).unwrap_or(0);
            p["candidate_id"] = json!(model::id_of(R::Candidates, cand));
            ("scorecard_deleted", "scorecard", p)
        }
        R::Jobs => (
            "job_deleted",
            "job",
            pick(&v, &[("id", "id"), ("name", "name")]),
        ),
        R::JobPosts => {
            let mut p = pick(
                &v,
                &[
                    ("id", "id"),
                    ("job_id", "job_id"),
                    ("title", "title"),
                    ("location", "location"),
                    ("content", "content"),
                    ("updated_at", "updated_at"),
                    ("internal_content", "internal_content"),
                    ("questions", "questions"),
                    ("external", "external"),
                    ("internal", "internal"),
                    ("live", "live"),
                ],
            );
            p["external"] = json!(!v.get("internal").and_then(Value::as_bool).unwrap_or(false));
            p["live"] = json!(false);
            ("job_post_deleted", "job_post", p)
        }
        R::JobInterviewStages => {
            let mut p = pick(
                &v,
                &[
                    ("id", "id"),
                    ("job_id", "job_id"),
                    ("created_at", "created_at"),
                    ("updated_at", "updated_at"),
                    ("name", "name"),
                    ("active", "active"),
                ],
            );
            p["active"] = json!(false);
            ("job_interview_stage_deleted", "job_interview_stage", p)
        }
        R::Departments => {
            let mut p = pick(
                &v,
                &[
                    ("id", "id"),
                    ("name", "name"),
                    ("child_ids", "child_ids"),
                    ("parent_id", "parent_id"),
                    ("external_id", "external_id"),
                ],
            );
            p["child_ids"] = json!(descendants(db, r, idx));
            ("department_deleted", "department", p)
        }
        R::Offices => {
            let mut p = pick(
                &v,
                &[
                    ("id", "id"),
                    ("name", "name"),
                    ("location", "location"),
                    ("child_ids", "child_ids"),
                    ("parent_id", "parent_id"),
                    ("external_id", "external_id"),
                ],
            );
            p["location"] = json!({"name": v.get("location").cloned().unwrap_or(Value::Null)});
            p["child_ids"] = json!(descendants(db, r, idx));
            ("office_deleted", "office", p)
        }
        _ => return None,
    };
    Some(Event {
        action,
        payload: json!({ key: payload }),
    })
}

/// `merge_candidate` for `loser` merged into `winner` (call it before the loser dies; its
/// applications have moved, so `deleted_application_ids` is empty, as Greenhouse documents).
pub fn merged(db: &Db, loser: u32, winner: u32) -> Event {
    let mut p = person(db, loser);
    p["deleted_application_ids"] = json!([]);
    p["new_candidate_id"] = json!(model::id_of(R::Candidates, winner));
    Event {
        action: "merge_candidate",
        payload: json!({"person": p}),
    }
}

/// `candidate_anonymized` for candidate `idx`.
pub fn anonymized(idx: u32) -> Event {
    Event {
        action: "candidate_anonymized",
        payload: json!({
            "candidate_id": model::id_of(R::Candidates, idx),
            "anonymized_fields": super::gen_people::ANONYMIZED_FIELDS,
        }),
    }
}
