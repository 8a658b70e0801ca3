//! Executes a validated `Query` against the `Db`: keyset scan in id-descending order,
//! condition evaluation, projection, and the next-page cursor.
//!
//! Contract: a page holds at most `per_page` matching live rows with ids below the cursor's
//! last id; `next` is set only when at least one more matching row exists (so the last page
//! carries no Link header).  Conditions on ids, parents and created/updated timestamps use
//! the compact state; others render the row once and inspect its JSON.

use serde_json::Value;

use super::cf_defs;
use super::data::Db;
use super::gen_jobs::offer_is_current;
use super::json::{JsonOut, Millis};
use super::model::{self, R};
use super::query::{Cond, Op, Query};

pub struct Page {
    /// JSON array body.
    pub body: String,
    pub count: usize,
    /// Last id of this page when another page follows.
    pub next_after: Option<i64>,
}

fn bounds_hold(v: Millis, b: &[(Op, Millis)]) -> bool {
    b.iter().all(|(op, x)| op.holds(v, *x))
}

/// Candidate row indices in descending order (narrowed by `ids` or a parent filter).
/// Unfiltered scans stay lazy so a page costs O(rows inspected), not O(table).
fn candidates<'a>(db: &'a Db, q: &Query) -> Box<dyn Iterator<Item = u32> + 'a> {
    let r = q.r;
    let limit = q
        .before_id
        .map(|id| model::idx_of(r, id).unwrap_or(0))
        .unwrap_or(u32::MAX);
    let mut out: Vec<u32> =
        if let Some(Cond::FastIds(ids)) = q.conds.iter().find(|c| matches!(c, Cond::FastIds(_))) {
            ids.iter().filter_map(|id| model::idx_of(r, *id)).collect()
        } else if let Some(Cond::FastParent(ps)) =
            q.conds.iter().find(|c| matches!(c, Cond::FastParent(_)))
        {
            let p = model::parent(r).unwrap_or(r);
            ps.iter()
                .filter_map(|id| model::idx_of(p, *id))
                .flat_map(|pi| db.children(r, pi))
                .collect()
        } else {
            let n = db.t(r).len().min(limit);
            return Box::new((0..n).rev().filter(move |i| db.is_alive(r, *i)));
        };
    out.retain(|i| *i < limit && db.is_alive(r, *i));
    out.sort_unstable_by(|a, b| b.cmp(a));
    out.dedup();
    Box::new(out.into_iter())
}

fn fast_ok(db: &Db, r: R, idx: u32, c: &Cond) -> Option<bool> {
    let t = db.t(r);
    Some(match c {
        Cond::FastIds(ids) => ids.contains(&model::id_of(r, idx)),
        Cond::FastParent(ps) => {
            let p = model::parent(r)?;
            db.parent_of(r, idx)
                .is_some_and(|pi| ps.contains(&model::id_of(p, pi)))
        }
        Cond::FastCreated(b) => bounds_hold(t.created[idx as usize], b),
        Cond::FastUpdated(b) => bounds_hold(t.updated[idx as usize], b),
        Cond::HideDefaultReasons => !db.rejection_reason_is_default(idx),
        Cond::CurrentOnly(want) => offer_is_current(db, idx) == *want,
        Cond::Never => false,
        Cond::CustomFieldKey(k) => {
            let def = db.parent_of(r, idx).unwrap_or(u32::MAX) as usize;
            match cf_defs::DEFS.get(def) {
                Some(d) => d.key == k,
                None => *k == format!("added_field_{def}"),
            }
        }
        _ => return None,
    })
}

fn value_ids(v: &Value) -> Vec<i64> {
    match v {
        Value::Number(n) => n.as_i64().into_iter().collect(),
        Value::String(s) => s.parse().ok().into_iter().collect(),
        Value::Array(a) => a
            .iter()
            .flat_map(|e| {
                if e.is_object() {
                    value_ids(&e["id"])
                } else {
                    value_ids(e)
                }
            })
            .collect(),
        _ => vec![],
    }
}

fn field_ids(row: &Value, base: &str) -> Vec<i64> {
    for f in [
        format!("{base}_id"),
        format!("{base}_ids"),
        format!("{base}s"),
        base.to_string(),
    ] {
        if let Some(v) = row.get(&f) {
            return value_ids(v);
        }
    }
    vec![]
}

fn value_ms(v: &Value) -> Option<Millis> {
    let s = v.as_str()?;
    if s.len() == 10 {
        let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis());
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn slow_ok(row: &Value, c: &Cond) -> bool {
    match c {
        Cond::Date(f, b) => value_ms(&row[f]).is_some_and(|v| bounds_hold(v, b)),
        Cond::Bool(f, want) => row[f].as_bool() == Some(*want),
        Cond::IdIn(base, set) => field_ids(row, base).iter().any(|i| set.contains(i)),
        Cond::Str(f, v, ci) => match row[f].as_str() {
            Some(s) if *ci => s.to_lowercase() == v.to_lowercase(),
            Some(s) => s == v,
            None => false,
        },
        Cond::Enum(f, v) => row[f].as_str() == Some(v),
        Cond::CustomOption(map, key, name) => {
            let val = &row[*map][key]["value"];
            val.as_str() == Some(name)
                || val
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(name)))
        }
        Cond::HideServiceAccounts => row["primary_email"].as_str() != Some(""),
        Cond::Email(e) => row["email_addresses"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["value"].as_str().is_some_and(|s| s.to_lowercase() == *e))
        }),
        Cond::Tag(t) => row["tags"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(t))),
        _ => true,
    }
}

/// Whether row `idx` matches all conditions; returns its rendered JSON when it had to be
/// rendered anyway (so the caller can reuse it).
fn matches(db: &Db, q: &Query, idx: u32) -> (bool, Option<String>) {
    let mut slow = false;
    for c in &q.conds {
        match fast_ok(db, q.r, idx, c) {
            Some(false) => return (false, None),
            Some(true) => {}
            None => slow = true,
        }
    }
    if !slow {
        return (true, None);
    }
    let s = db.row_json(q.r, idx);
    let row: Value = serde_json::from_str(&s).unwrap_or(Value::Null);
    let ok = q.conds.iter().all(|c| slow_ok(&row, c));
    (ok, Some(s))
}

pub fn run(db: &Db, q: &Query) -> Page {
    let mut body = String::with_capacity(q.per_page * 700 + 2);
    body.push('[');
    let mut count = 0usize;
    let mut last = None;
    let mut more = false;
    for idx in candidates(db, q) {
        let (ok, rendered) = matches(db, q, idx);
        if !ok {
            continue;
        }
        if count == q.per_page {
            more = true;
            break;
        }
        if count > 0 {
            body.push(',');
        }
        match (rendered, &q.fields) {
            (Some(s), None) => body.push_str(&s),
            (_, fields) => {
                let mut w = JsonOut::new(&mut body, fields.as_ref());
                db.render(q.r, idx, &mut w);
            }
        }
        count += 1;
        last = Some(model::id_of(q.r, idx));
    }
    body.push(']');
    Page {
        body,
        count,
        next_after: if more { last } else { None },
    }
}

/// How many rows `run` would return over all pages of `q` (from its cursor position, if any).
pub fn count(db: &Db, q: &Query) -> usize {
    candidates(db, q)
        .filter(|idx| matches(db, q, *idx).0)
        .count()
}

/// Every live row of `r`, id descending, one JSON object per line.
pub fn truth(db: &Db, r: R) -> String {
    let t = db.t(r);
    let mut out = String::with_capacity(t.len() as usize * 600);
    for idx in (0..t.len()).rev() {
        if db.is_alive(r, idx) {
            let mut w = JsonOut::new(&mut out, None);
            db.render(r, idx, &mut w);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query;

    /// Rendering throughput without HTTP (run with `--release -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn render_throughput() {
        let db = Db::new(1, 1.0);
        for r in [
            R::Notes,
            R::Applications,
            R::Candidates,
            R::Scorecards,
            R::ApplicationStages,
        ] {
            let q = query::parse(&db, r, "per_page=500", 1).expect("query");
            let t = std::time::Instant::now();
            let mut n = 0;
            let mut bytes = 0;
            while t.elapsed().as_millis() < 500 {
                let p = run(&db, &q);
                n += p.count;
                bytes += p.body.len();
            }
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "{:>20}: {:>9.0} records/s, {:>6.1} MB/s",
                r.name(),
                n as f64 / secs,
                bytes as f64 / secs / 1e6
            );
        }
    }
}
