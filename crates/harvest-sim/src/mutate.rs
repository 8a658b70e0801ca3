//! `/_sim/mutate`: deterministic data dynamics between page requests.
//!
//! Contract: for each selected resource, update K live rows (updated_at = now, revision + 1
//! so cosmetic fields change; offers may be re-versioned: old row `Deprecated`, a new
//! version row with a higher id; job posts may be soft-deleted), insert I rows with ids above
//! every existing id (created_at = updated_at = now, parents chosen among live rows), delete
//! D rows (hard deletes cascade through owned children and are listed in `/_sim/deleted`;
//! soft-delete resources flip their active/deactivated flag; others are skipped; jobs,
//! departments and offices are hard-deleted as in Greenhouse, and rows that merely reference
//! them render the reference nulled or dropped from its list), and merge
//! M candidate pairs (the loser's owned rows move to the winner with updated_at = now, the
//! loser is hard-deleted), and anonymize N candidates (personal fields blanked in place, as
//! Greenhouse's anonymize does, with `updated_at` left alone: Greenhouse does not document that
//! it moves, so this is the worst case an extractor must survive).  Row choice is a pure
//! function of (seed, mutate seed, resource).  [`apply_with_events`] also returns the webhook
//! events Greenhouse would fire for these changes (see `events`), in the order they happened.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::data::Db;
use super::events::{self, Event};
use super::json::Millis;
use super::model::{self, Del, R};
use super::rng::Rng;

#[derive(Debug, Clone, Default)]
pub struct MutateSpec {
    pub updates: u32,
    pub inserts: u32,
    pub deletes: u32,
    pub merges: u32,
    /// Candidates to anonymize (only when candidates are among the selected resources).
    pub anonymizes: u32,
    pub seed: u64,
    /// None = every resource.
    pub resources: Option<Vec<R>>,
}

#[derive(Default)]
struct Report {
    updated: BTreeMap<&'static str, Vec<i64>>,
    inserted: BTreeMap<&'static str, Vec<i64>>,
    deleted: BTreeMap<&'static str, Vec<i64>>,
    soft_deleted: BTreeMap<&'static str, Vec<i64>>,
    reversioned: Vec<Value>,
    merged: Vec<Value>,
    anonymized: BTreeMap<&'static str, Vec<i64>>,
    events: Vec<Event>,
    skipped: BTreeMap<&'static str, &'static str>,
}

fn live(db: &Db, r: R) -> Vec<u32> {
    let t = db.t(r);
    (0..t.len()).filter(|i| t.alive[*i as usize]).collect()
}

/// Up to `k` distinct live rows, chosen by `rng`.
fn choose(db: &Db, r: R, k: u32, rng: &mut Rng) -> Vec<u32> {
    let mut pool = live(db, r);
    let mut out = Vec::new();
    for _ in 0..k.min(pool.len() as u32) {
        let i = rng.below(pool.len() as u64) as usize;
        out.push(pool.swap_remove(i));
    }
    out
}

/// A hash of every row's JSON per resource (0 for a deleted row). Linear in the data size; only
/// taken when a mutation deletes or merges.
fn fingerprints(db: &Db) -> Vec<Vec<u64>> {
    use std::hash::{Hash, Hasher};
    R::ALL
        .iter()
        .map(|r| {
            let t = db.t(*r);
            (0..t.alive.len() as u32)
                .map(|i| {
                    if !t.alive[i as usize] {
                        return 0;
                    }
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    db.row_json(*r, i).hash(&mut h);
                    h.finish() | 1
                })
                .collect()
        })
        .collect()
}

fn touch(db: &mut Db, r: R, idx: u32, now: Millis) {
    let t = &mut db.tables[r as usize];
    let c = t.created[idx as usize];
    t.updated[idx as usize] = now.max(c);
}

fn insert(db: &mut Db, r: R, parent: Option<u32>, now: Millis) -> u32 {
    let t = &mut db.tables[r as usize];
    let idx = t.len();
    t.created.push(now);
    t.updated.push(now);
    t.alive.push(true);
    if let Some(p) = parent {
        t.set_parent(idx, p);
    }
    idx
}

fn cascade(db: &mut Db, r: R, idx: u32, rep: &mut Report) {
    if !db.is_alive(r, idx) {
        return;
    }
    for c in model::children(r) {
        for ch in db.children(c, idx) {
            cascade(db, c, ch, rep);
        }
    }
    let t = &mut db.tables[r as usize];
    t.alive[idx as usize] = false;
    let id = model::id_of(r, idx);
    t.deleted.push(id);
    rep.deleted.entry(r.name()).or_default().push(id);
}

fn offer_version(db: &Db, idx: u32) -> u32 {
    let t = db.t(R::Offers);
    if let Some(v) = t.version.get(&idx) {
        return *v;
    }
    let p = db.parent_of(R::Offers, idx).unwrap_or(0) as usize;
    t.first
        .get(p)
        .map(|f| idx.saturating_sub(*f) + 1)
        .unwrap_or(1)
}

/// Applies `spec` and returns the report (the `/_sim/mutate` response body).
pub fn apply(db: &mut Db, spec: &MutateSpec, now: Millis) -> Value {
    apply_with_events(db, spec, now).0
}

/// Applies `spec`; returns the report and the webhook events of its deletes, merges and
/// anonymizations.
pub fn apply_with_events(db: &mut Db, spec: &MutateSpec, now: Millis) -> (Value, Vec<Event>) {
    let mut rep = Report::default();
    // Deletes and merges can change rows they do not own (a reference to a deleted row becomes
    // null). Like Greenhouse, such a row must then carry a new `updated_at`, or an incremental
    // reader could never learn of the change: fingerprint every row first, touch what changed.
    let before = (spec.deletes > 0 || spec.merges > 0).then(|| fingerprints(db));
    let selected: Vec<R> = spec.resources.clone().unwrap_or_else(|| R::ALL.to_vec());
    for r in &selected {
        let r = *r;
        let mut rng = Rng::new(&[db.seed, spec.seed, r as u64, 0x3u64]);
        // Updates.
        for idx in choose(db, r, spec.updates, &mut rng) {
            *db.tables[r as usize].rev.entry(idx).or_default() += 1;
            touch(db, r, idx, now);
            rep.updated
                .entry(r.name())
                .or_default()
                .push(model::id_of(r, idx));
            if r == R::Offers && rng.chance(0.5) {
                let app = db.parent_of(r, idx).unwrap_or(0);
                let v = offer_version(db, idx);
                db.tables[r as usize].soft.insert(idx);
                let new = insert(db, r, Some(app), now);
                db.tables[r as usize].version.insert(new, v + 1);
                rep.reversioned
                    .push(json!({"old": model::id_of(r, idx), "new": model::id_of(r, new)}));
            } else if r == R::JobPosts && rng.chance(0.3) {
                // v3 hides inactive posts, so this is the post's deletion for a reader.
                if !db.t(r).soft.contains(&idx) {
                    rep.events.extend(events::deleted(db, r, idx));
                }
                db.tables[r as usize].soft.insert(idx);
                rep.soft_deleted
                    .entry(r.name())
                    .or_default()
                    .push(model::id_of(r, idx));
            }
        }
        // Inserts.
        for _ in 0..spec.inserts {
            let parent = match model::parent(r) {
                Some(p) => match choose(db, p, 1, &mut rng).first() {
                    Some(pi) => Some(*pi),
                    None => {
                        rep.skipped
                            .insert(r.name(), "no live parent to insert under");
                        break;
                    }
                },
                None => None,
            };
            let idx = insert(db, r, parent, now);
            if r == R::Offers {
                let n = db.children(r, parent.unwrap_or(0)).len() as u32;
                db.tables[r as usize].version.insert(idx, n);
            }
            rep.inserted
                .entry(r.name())
                .or_default()
                .push(model::id_of(r, idx));
        }
        // Deletes.
        if spec.deletes > 0 {
            match model::def(r).delete {
                Del::Hard => {
                    for idx in choose(db, r, spec.deletes, &mut rng) {
                        if db.is_alive(r, idx) {
                            rep.events.extend(events::deleted(db, r, idx));
                        }
                        cascade(db, r, idx, &mut rep);
                    }
                }
                Del::Soft => {
                    for idx in choose(db, r, spec.deletes, &mut rng) {
                        if !db.t(r).soft.contains(&idx) {
                            rep.events.extend(events::deleted(db, r, idx));
                        }
                        db.tables[r as usize].soft.insert(idx);
                        *db.tables[r as usize].rev.entry(idx).or_default() += 1;
                        touch(db, r, idx, now);
                        rep.soft_deleted
                            .entry(r.name())
                            .or_default()
                            .push(model::id_of(r, idx));
                    }
                }
                Del::Never => {
                    rep.skipped.insert(
                        r.name(),
                        "rows of this resource are never deleted (non-nullable references)",
                    );
                }
            }
        }
        // Merges.
        if r == R::Candidates {
            for _ in 0..spec.merges {
                let pair = choose(db, r, 2, &mut rng);
                let [winner, loser] = pair[..] else { break };
                let mut moved = BTreeMap::new();
                for c in model::children(r) {
                    for ch in db.children(c, loser) {
                        db.tables[c as usize].set_parent(ch, winner);
                        touch(db, c, ch, now);
                        moved
                            .entry(c.name())
                            .or_insert_with(Vec::new)
                            .push(model::id_of(c, ch));
                    }
                }
                touch(db, r, winner, now);
                rep.events.push(events::merged(db, loser, winner));
                cascade(db, r, loser, &mut rep);
                rep.merged.push(json!({"winner": model::id_of(r, winner), "loser": model::id_of(r, loser), "moved": moved}));
            }
        }
    }
    let mut side_effects: BTreeMap<&'static str, Vec<i64>> = BTreeMap::new();
    if let Some(mut before) = before {
        // Touching a row can change rows derived from it (an application's `updated_at` bounds
        // its rejection's `rejected_at`): repeat until nothing else changes.
        let mut touched: std::collections::HashSet<(R, u32)> = std::collections::HashSet::new();
        for _round in 0..8 {
            let after = fingerprints(db);
            let mut changed = Vec::new();
            // `fingerprints` lists resources in `R::ALL` order.
            for ((r, b), a) in R::ALL.iter().copied().zip(&before).zip(&after) {
                for (idx, (hb, ha)) in b.iter().zip(a).enumerate() {
                    if *hb != 0 && *ha != 0 && hb != ha && touched.insert((r, idx as u32)) {
                        changed.push((r, idx as u32));
                    }
                }
            }
            if changed.is_empty() {
                break;
            }
            for (r, idx) in changed {
                touch(db, r, idx, now);
                side_effects
                    .entry(r.name())
                    .or_default()
                    .push(model::id_of(r, idx));
            }
            before = after;
        }
    }
    // Anonymize last, after the side-effect pass: it must not move `updated_at`.
    if spec.anonymizes > 0 && selected.contains(&R::Candidates) {
        let r = R::Candidates;
        let mut rng = Rng::new(&[db.seed, spec.seed, r as u64, 0xA404]);
        let mut pool: Vec<u32> = live(db, r)
            .into_iter()
            .filter(|i| !db.t(r).anon.contains(i))
            .collect();
        for _ in 0..spec.anonymizes.min(pool.len() as u32) {
            let idx = pool.swap_remove(rng.below(pool.len() as u64) as usize);
            db.tables[r as usize].anon.insert(idx);
            rep.anonymized
                .entry(r.name())
                .or_default()
                .push(model::id_of(r, idx));
            rep.events.push(events::anonymized(idx));
        }
    }
    let report = json!({
        "now": super::json::ts_string(now),
        "touched_by_side_effects": side_effects,
        "updated": rep.updated,
        "inserted": rep.inserted,
        "deleted": rep.deleted,
        "soft_deleted": rep.soft_deleted,
        "reversioned": rep.reversioned,
        "merged": rep.merged,
        "anonymized": rep.anonymized,
        "skipped": rep.skipped,
    });
    (report, rep.events)
}
