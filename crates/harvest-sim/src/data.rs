//! The simulated account: compact per-row state; rows are rendered from it on demand (`rows`).
//!
//! Contract: rows are never materialised.  A row's JSON is a pure function of
//! (seed, resource, index, revision) and of the compact state kept here: per-row
//! `created_at`/`updated_at` (ms), a liveness flag, and small overlays written by mutations
//! (revision counters, parent re-pointing after merges/inserts, soft-delete flags, offer
//! versions).  Owned children of a parent row are contiguous index ranges (`first`), so
//! cascades and derived fields (e.g. an offer's `candidate_id`) need no reverse indexes.
//! Initial timestamps lie in a fixed historic range so a seed's data never depends on the
//! wall clock; created_at is non-decreasing with the index, hence with the id.

use std::collections::{HashMap, HashSet};

use super::json::{Millis, days_from_civil};
use super::model::{self, R, Size};
use super::rng::{Rng, hash};

/// 2023-01-01T00:00:00Z and 2026-06-30T00:00:00Z: the fixed range of initial timestamps.
pub const T0: Millis = 1_672_531_200_000;
pub const T1: Millis = 1_782_777_600_000;

#[derive(Default, Clone)]
pub struct Table {
    /// Rows present at startup (indices `0..initial`); inserted rows follow.
    pub initial: u32,
    pub created: Vec<Millis>,
    pub updated: Vec<Millis>,
    pub alive: Vec<bool>,
    /// For owned resources: children of initial parent `p` are `first[p]..first[p + 1]`.
    pub first: Vec<u32>,
    /// Parent index for inserted or re-pointed (merged) rows; write through `set_parent`.
    pub parent_ovr: HashMap<u32, u32>,
    /// Reverse of `parent_ovr` (parent → rows), so child lookups stay O(children).
    pub ovr_children: HashMap<u32, Vec<u32>>,
    /// Revision of rows touched by updates (0 when absent): changes the cosmetic fields.
    pub rev: HashMap<u32, u32>,
    /// Soft-deleted rows (`active=false`, `deactivated=true`, offers `Deprecated`).
    pub soft: HashSet<u32>,
    /// Offer version numbers of inserted offer versions.
    pub version: HashMap<u32, u32>,
    /// Anonymized rows (candidates only): personal fields render blank, `updated_at` stays.
    pub anon: HashSet<u32>,
    /// Hard-deleted ids, in deletion order.
    pub deleted: Vec<i64>,
}

impl Table {
    /// Points row `idx` at parent `p` (inserts and merges).
    pub fn set_parent(&mut self, idx: u32, p: u32) {
        if let Some(old) = self.parent_ovr.insert(idx, p)
            && let Some(v) = self.ovr_children.get_mut(&old)
        {
            v.retain(|i| *i != idx);
        }
        self.ovr_children.entry(p).or_default().push(idx);
    }

    /// Number of row indices ever allocated (live and deleted).
    pub fn len(&self) -> u32 {
        self.alive.len() as u32
    }
    pub fn is_empty(&self) -> bool {
        self.alive.is_empty()
    }
}

pub struct Db {
    pub seed: u64,
    pub scale: f64,
    pub tables: Vec<Table>,
}

/// Chooses a count from a weight table (`weights[k]` ∝ probability of `k`).
fn weighted(weights: &[u8], h: u64) -> u32 {
    let total: u64 = weights.iter().map(|w| *w as u64).sum();
    let mut x = h % total.max(1);
    for (k, w) in weights.iter().enumerate() {
        if x < *w as u64 {
            return k as u32;
        }
        x -= *w as u64;
    }
    0
}

impl Db {
    pub fn new(seed: u64, scale: f64) -> Db {
        let mut db = Db {
            seed,
            scale,
            tables: vec![Table::default(); R::ALL.len()],
        };
        let mut built = vec![false; R::ALL.len()];
        for r in R::ALL {
            db.build(*r, &mut built);
        }
        db
    }

    fn build(&mut self, r: R, built: &mut [bool]) {
        if built[r as usize] {
            return;
        }
        let seed = self.seed;
        let mut first = Vec::new();
        let n = match model::def(r).size {
            Size::Fixed(n) => n,
            Size::Scaled(n, min) => ((n as f64 * self.scale).round() as u32).max(min),
            Size::Per(p, weights) => {
                self.build(p, built);
                let np = self.tables[p as usize].initial;
                first.reserve(np as usize + 1);
                let mut acc = 0u32;
                for pi in 0..np {
                    first.push(acc);
                    acc += weighted(weights, hash(&[seed, r as u64, pi as u64, 0xC0]));
                }
                first.push(acc);
                acc
            }
            Size::PerFn(p, f) => {
                self.build(p, built);
                let np = self.tables[p as usize].initial;
                let mut acc = 0u32;
                for pi in 0..np {
                    first.push(acc);
                    acc += f(pi);
                }
                first.push(acc);
                acc
            }
        };
        let span = (T1 - T0) as f64;
        let mut created = Vec::with_capacity(n as usize);
        let mut updated = Vec::with_capacity(n as usize);
        for i in 0..n {
            let mut rng = Rng::new(&[seed, r as u64, i as u64, 0x7]);
            let c = T0 + ((i as f64 + rng.unit()) / n as f64 * span) as i64;
            let u = if rng.chance(0.35) {
                c
            } else {
                let f = rng.unit();
                c + ((T1 - c) as f64 * f * f) as i64
            };
            created.push(c);
            updated.push(u);
        }
        self.tables[r as usize] = Table {
            initial: n,
            created,
            updated,
            alive: vec![true; n as usize],
            first,
            ..Table::default()
        };
        built[r as usize] = true;
    }

    pub fn t(&self, r: R) -> &Table {
        &self.tables[r as usize]
    }

    pub fn is_alive(&self, r: R, idx: u32) -> bool {
        self.t(r).alive.get(idx as usize).copied().unwrap_or(false)
    }

    /// The id of row `idx` of `r` if it is alive.
    pub fn live_id(&self, r: R, idx: u32) -> Option<i64> {
        self.is_alive(r, idx).then(|| model::id_of(r, idx))
    }

    /// Owning parent's index (None for roots).
    pub fn parent_of(&self, r: R, idx: u32) -> Option<u32> {
        model::parent(r)?;
        let t = self.t(r);
        if let Some(p) = t.parent_ovr.get(&idx) {
            return Some(*p);
        }
        if idx >= t.initial || t.first.len() < 2 {
            return None;
        }
        Some(t.first.partition_point(|f| *f <= idx) as u32 - 1)
    }

    /// Live children of parent `p` in resource `child`, ascending.
    /// The children a row was generated with (the seeded topology, ignoring later deletes,
    /// inserts and merges). Generators derive sibling-dependent values (an application's current
    /// stage, a kit's questions, …) from this, so that a row's content changes only when its own
    /// revision (and with it `updated_at`) changes: a mutation elsewhere must never alter a row
    /// silently, or no incremental reader could ever see the change.
    pub fn children_initial(&self, child: R, p: u32) -> Vec<u32> {
        let t = self.t(child);
        if (p as usize) + 1 < t.first.len() {
            (t.first[p as usize]..t.first[p as usize + 1]).collect()
        } else {
            Vec::new()
        }
    }

    pub fn children(&self, child: R, p: u32) -> Vec<u32> {
        let t = self.t(child);
        let mut out = Vec::new();
        if (p as usize) + 1 < t.first.len() {
            for i in t.first[p as usize]..t.first[p as usize + 1] {
                if t.alive[i as usize] && !t.parent_ovr.contains_key(&i) {
                    out.push(i);
                }
            }
        }
        if let Some(v) = t.ovr_children.get(&p) {
            out.extend(v.iter().copied().filter(|i| t.alive[*i as usize]));
        }
        out.sort_unstable();
        out
    }

    pub fn rev(&self, r: R, idx: u32) -> u32 {
        self.t(r).rev.get(&idx).copied().unwrap_or(0)
    }

    /// Users acting as tokens' `sub`: structural flags shared with the users generator.
    pub fn user_is_service(&self, idx: u32) -> bool {
        idx == 2 || (idx > 2 && hash(&[self.seed, 0x5E, idx as u64]).is_multiple_of(29))
    }
    pub fn user_is_site_admin(&self, idx: u32) -> bool {
        idx == 0
            || self.user_is_service(idx)
            || (idx != 1 && hash(&[self.seed, 0xAD, idx as u64]).is_multiple_of(4))
    }

    /// Default rejection reasons (hidden unless `include_defaults=true`).
    pub fn rejection_reason_is_default(&self, idx: u32) -> bool {
        idx < 8
    }
}

/// Per-row rendering context handed to the generators.
pub struct Ctx<'a> {
    pub db: &'a Db,
    pub r: R,
    pub idx: u32,
    /// Structural randomness: stable across updates (foreign keys, flags, enum states).
    pub s: Rng,
    /// Cosmetic randomness: re-seeded by each update so visible text/values change.
    pub c: Rng,
}

impl<'a> Ctx<'a> {
    pub fn new(db: &'a Db, r: R, idx: u32) -> Self {
        let rev = db.rev(r, idx) as u64;
        Ctx {
            db,
            r,
            idx,
            s: Rng::new(&[db.seed, r as u64, idx as u64, 0x5]),
            c: Rng::new(&[db.seed, r as u64, idx as u64, 0xC05 + rev]),
        }
    }

    pub fn created(&self) -> Millis {
        self.db.t(self.r).created[self.idx as usize]
    }
    pub fn updated(&self) -> Millis {
        self.db.t(self.r).updated[self.idx as usize]
    }
    pub fn soft(&self) -> bool {
        self.db.t(self.r).soft.contains(&self.idx)
    }
    pub fn null_timestamps(&self) -> bool {
        matches!(
            self.r,
            R::DemographicQuestions | R::DemographicAnswerOptions
        ) && self.idx < self.db.t(self.r).initial
            && self.idx % 5 == 3
    }

    /// Owning parent's index; generators call this only for owned resources.
    pub fn parent(&self) -> u32 {
        self.db.parent_of(self.r, self.idx).unwrap_or(0)
    }
    pub fn parent_id(&self) -> i64 {
        let p = model::parent(self.r).unwrap_or(self.r);
        model::id_of(p, self.parent())
    }

    /// A structural reference to a random initial row of `r` (for never-deleted targets).
    pub fn pick(&mut self, r: R) -> u32 {
        self.s.below(self.db.t(r).initial.max(1) as u64) as u32
    }
    pub fn ref_id(&mut self, r: R) -> i64 {
        let i = self.pick(r);
        model::id_of(r, i)
    }
    /// A reference to an initial row of `r` that a hard delete may have removed since (jobs,
    /// departments, offices and a job's owned rows): None then, so the referring row renders the
    /// reference nulled or drops it from its list. It draws exactly what `ref_id` draws, so a
    /// target's death changes no other field of the row.
    pub fn ref_opt(&mut self, r: R) -> Option<i64> {
        let i = self.pick(r);
        self.db.live_id(r, i)
    }
    /// A nullable reference: null when the drawn row was deleted (or with probability `p_null`).
    pub fn ref_live(&mut self, r: R, p_null: f64) -> Option<i64> {
        let null = self.s.chance(p_null);
        let i = self.pick(r);
        (!null && self.db.is_alive(r, i) && self.db.t(r).initial > 0).then(|| model::id_of(r, i))
    }
    /// A timestamp between created_at and updated_at (structural).
    pub fn between(&mut self) -> Millis {
        let (c, u) = (self.created(), self.updated());
        c + self.s.below((u - c).max(0) as u64 + 1) as i64
    }
    /// Date (days since epoch) near created_at, shifted by `lo..=hi` days.
    pub fn day_near(&mut self, lo: i64, hi: i64) -> i64 {
        self.created().div_euclid(86_400_000) + self.s.range(lo, hi)
    }
    pub fn id(&self) -> i64 {
        model::id_of(self.r, self.idx)
    }
    /// Candidate index owning application `app`.
    pub fn app_candidate(&self, app: u32) -> u32 {
        self.db.parent_of(R::Applications, app).unwrap_or(0)
    }
}

/// Days → epoch days helper re-exported for generators.
pub fn day(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d)
}
