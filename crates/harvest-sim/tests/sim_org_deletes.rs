//! harvest-sim: jobs, departments and offices are hard-deletable (harvest-v3.md §12). A delete
//! cascades through the job's owned rows; every other row that referenced a dead row renders
//! the reference nulled (or dropped from its list) and carries a new `updated_at`.
mod support;
use std::collections::{BTreeMap, HashSet};

use harvest_sim::Resource as R;
use harvest_sim::data::Db;
use harvest_sim::model;
use harvest_sim::mutate::{MutateSpec, apply};
use serde_json::Value;
use support::{Sim, ids};

/// 2027-01-01T00:00:00Z: later than every seeded timestamp.
const NOW: i64 = 1_798_761_600_000;

fn ints(v: &Value, out: &mut Vec<i64>) {
    match v {
        Value::Number(n) => out.extend(n.as_i64()),
        Value::Array(a) => a.iter().for_each(|x| ints(x, out)),
        Value::Object(o) => o.values().for_each(|x| ints(x, out)),
        _ => {}
    }
}

/// Every integer in a row except its own id.
fn refs(row: &str) -> HashSet<i64> {
    let mut v: Value = serde_json::from_str(row).unwrap();
    let own = v["id"].as_i64();
    v["id"] = Value::Null;
    let mut out = Vec::new();
    ints(&v, &mut out);
    out.into_iter().filter(|i| Some(*i) != own).collect()
}

fn snapshot(db: &Db) -> BTreeMap<(R, u32), String> {
    let mut m = BTreeMap::new();
    for r in R::ALL {
        for i in 0..db.t(*r).len() {
            if db.is_alive(*r, i) {
                m.insert((*r, i), db.row_json(*r, i));
            }
        }
    }
    m
}

fn deleted_ids(rep: &Value) -> HashSet<i64> {
    rep["deleted"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|v| v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()))
        .collect()
}

/// Deletes `n` rows of `r` and checks the invariants shared by all three resources; returns
/// the report.
fn delete_and_check(r: R, n: u32) -> (Db, Value) {
    let mut db = Db::new(3, 0.1);
    let before = snapshot(&db);
    let spec = MutateSpec {
        deletes: n,
        seed: 7,
        resources: Some(vec![r]),
        ..MutateSpec::default()
    };
    let rep = apply(&mut db, &spec, NOW);
    let own = rep["deleted"][r.name()].as_array().unwrap().len();
    assert_eq!(own, n as usize, "{}", rep["deleted"]);
    assert!(rep["skipped"].get(r.name()).is_none(), "{}", rep["skipped"]);
    let dead = deleted_ids(&rep);
    let mut touched = 0;
    for ((res, idx), old) in &before {
        let id = model::id_of(*res, *idx);
        if dead.contains(&id) {
            assert!(!db.is_alive(*res, *idx), "{} {id} still alive", res.name());
            continue;
        }
        let new = db.row_json(*res, *idx);
        let new_refs = refs(&new);
        let hit: Vec<_> = new_refs.intersection(&dead).collect();
        assert!(
            hit.is_empty(),
            "{} {id} still references deleted {hit:?}: {new}",
            res.name()
        );
        if refs(old).iter().any(|i| dead.contains(i)) {
            touched += 1;
            let v: Value = serde_json::from_str(&new).unwrap();
            assert_eq!(
                v["updated_at"].as_str(),
                Some("2027-01-01T00:00:00.000Z"),
                "{} {id} lost a reference without a new updated_at: {new}",
                res.name()
            );
            let listed = rep["touched_by_side_effects"][res.name()]
                .as_array()
                .unwrap();
            assert!(listed.iter().any(|x| x.as_i64() == Some(id)));
        }
    }
    assert!(touched > 0, "no row referenced the deleted {}", r.name());
    (db, rep)
}

#[test]
fn deleting_departments_nulls_references_and_bumps_updated_at() {
    let (db, rep) = delete_and_check(R::Departments, 4);
    // Departments own nothing: only the departments themselves die.
    assert_eq!(rep["deleted"].as_object().unwrap().len(), 1);
    // A sub-department of a deleted parent now has parent_id null.
    let dead: HashSet<i64> = deleted_ids(&rep);
    let orphan = (4..db.t(R::Departments).len())
        .filter(|i| db.is_alive(R::Departments, *i))
        .find(|i| dead.contains(&model::id_of(R::Departments, i % 4)));
    if let Some(i) = orphan {
        let v: Value = serde_json::from_str(&db.row_json(R::Departments, i)).unwrap();
        assert!(v["parent_id"].is_null(), "{v}");
    }
}

#[test]
fn deleting_offices_nulls_references_and_bumps_updated_at() {
    let (_db, rep) = delete_and_check(R::Offices, 3);
    assert_eq!(rep["deleted"].as_object().unwrap().len(), 1);
}

#[test]
fn deleting_jobs_cascades_to_owned_children() {
    let (db, rep) = delete_and_check(R::Jobs, 3);
    let jobs: Vec<u32> = rep["deleted"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| model::idx_of(R::Jobs, v.as_i64().unwrap()).unwrap())
        .collect();
    // Every owned descendant of a deleted job is dead and listed as deleted.
    let dead = deleted_ids(&rep);
    let mut stack: Vec<(R, u32)> = jobs.iter().map(|j| (R::Jobs, *j)).collect();
    let mut seen = 0;
    while let Some((r, i)) = stack.pop() {
        for c in model::children(r) {
            for ch in db.children_initial(c, i) {
                assert!(!db.is_alive(c, ch), "{} {ch} outlived its owner", c.name());
                assert!(dead.contains(&model::id_of(c, ch)));
                stack.push((c, ch));
                seen += 1;
            }
        }
    }
    assert!(seen > 0, "the deleted jobs owned nothing");
    for c in ["job_posts", "job_interview_stages", "openings", "job_notes"] {
        assert!(rep["deleted"].get(c).is_some(), "no {c} cascaded: {rep}");
    }
    // Applications to a deleted job keep existing with job_id null.
    let nulled = (0..db.t(R::Applications).len())
        .filter(|a| db.is_alive(R::Applications, *a))
        .filter(|a| {
            let v: Value = serde_json::from_str(&db.row_json(R::Applications, *a)).unwrap();
            v["job_id"].is_null() && v["updated_at"] == "2027-01-01T00:00:00.000Z"
        })
        .count();
    assert!(nulled > 0);
}

#[tokio::test]
async fn deleted_jobs_departments_offices_leave_lists_and_truth() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let tok = sim.token().await;
    let rep = sim
        .post("/_sim/mutate?deletes=2&seed=3&resources=jobs,departments,offices")
        .await;
    assert_eq!(rep.status, 200, "{}", rep.body);
    let rep = rep.json();
    for res in ["jobs", "departments", "offices", "job_posts"] {
        let gone: HashSet<i64> = rep["deleted"][res]
            .as_array()
            .unwrap_or_else(|| panic!("nothing deleted in {res}: {rep}"))
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert!(!gone.is_empty());
        let listed: HashSet<i64> = sim.deleted(res).await.into_iter().collect();
        assert_eq!(listed, gone, "{res}");
        let truth: HashSet<i64> = ids(&sim.truth(res).await).into_iter().collect();
        assert!(truth.is_disjoint(&gone), "{res} truth serves a deleted row");
        let q = if res == "job_posts" {
            "?per_page=500&active=false"
        } else {
            "?per_page=500"
        };
        let (rows, _) = sim.get_all(&tok, &format!("/v3/{res}{q}")).await;
        let api: HashSet<i64> = ids(&rows).into_iter().collect();
        assert!(api.is_disjoint(&gone), "/v3/{res} lists a deleted row");
    }
}
