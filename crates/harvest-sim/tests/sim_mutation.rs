//! harvest-sim: /_sim/mutate (updates, inserts, cascading deletes, merges, offer versions),
//! /_sim/reset, /_sim/stats and reproducible fault injection.
mod support;
use std::collections::HashSet;

use serde_json::Value;
use support::{Sim, ids};

fn id_list(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_i64().unwrap()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn mutations_are_visible_and_consistent() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let tok = sim.token().await;
    let before = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let max_before = ids(&sim.truth("applications").await)[0];
    let apps_before = sim.truth("applications").await;
    let rep = sim.post("/_sim/mutate?updates=3&inserts=2&deletes=2&merges=1&seed=5&resources=candidates,applications,offers,job_posts").await;
    assert_eq!(rep.status, 200, "{}", rep.body);
    let rep = rep.json();
    // Updates and inserts appear in an updated_at window starting before the mutation.
    let (recent, _) = sim
        .get_all(
            &tok,
            &format!("/v3/applications?per_page=500&updated_at=gte|{before}"),
        )
        .await;
    let recent: HashSet<i64> = ids(&recent).into_iter().collect();
    for id in id_list(&rep["updated"]["applications"])
        .iter()
        .chain(id_list(&rep["inserted"]["applications"]).iter())
    {
        let deleted = id_list(&rep["deleted"]["applications"]).contains(id);
        assert!(
            deleted || recent.contains(id),
            "application {id} missing from the recent window"
        );
    }
    // Inserts have higher ids than any existing row.
    for id in id_list(&rep["inserted"]["applications"]) {
        assert!(id > max_before);
    }
    // Updated rows changed a visible field besides updated_at.
    let truth = sim.truth("applications").await;
    let upd = id_list(&rep["updated"]["applications"]);
    let changed = upd.iter().filter(|id| {
        let (a, b) = (
            apps_before.iter().find(|r| r["id"] == **id),
            truth.iter().find(|r| r["id"] == **id),
        );
        match (a, b) {
            (Some(a), Some(b)) => {
                let (mut a, mut b) = (a.clone(), b.clone());
                a["updated_at"] = Value::Null;
                b["updated_at"] = Value::Null;
                a != b
            }
            _ => true,
        }
    });
    assert!(changed.count() >= 1);
    // Deletes cascade: a deleted candidate's applications are gone and listed as deleted.
    let del_cands = id_list(&rep["deleted"]["candidates"]);
    assert!(!del_cands.is_empty());
    let deleted_apps: HashSet<i64> = sim.deleted("applications").await.into_iter().collect();
    assert!(
        sim.deleted("candidates")
            .await
            .iter()
            .all(|id| del_cands.contains(id))
    );
    for app in &truth {
        assert!(
            !del_cands.contains(&app["candidate_id"].as_i64().unwrap()),
            "dangling candidate_id"
        );
        assert!(!deleted_apps.contains(&app["id"].as_i64().unwrap()));
    }
    for res in ["offers", "scorecards", "application_stages", "attachments"] {
        for row in sim.truth(res).await {
            assert!(
                !deleted_apps.contains(&row["application_id"].as_i64().unwrap()),
                "{res} points at a deleted application"
            );
        }
    }
    // Merge: loser gone, its applications now point at the winner.
    let m = &rep["merged"][0];
    let (winner, loser) = (m["winner"].as_i64().unwrap(), m["loser"].as_i64().unwrap());
    let cands: HashSet<i64> = ids(&sim.truth("candidates").await).into_iter().collect();
    assert!(!cands.contains(&loser));
    for moved in id_list(&m["moved"]["applications"]) {
        let row = truth
            .iter()
            .find(|r| r["id"] == moved)
            .expect("moved app present");
        assert_eq!(row["candidate_id"], winner);
        assert!(recent.contains(&moved));
    }
    // The API agrees with truth.
    let (api, _) = sim.get_all(&tok, "/v3/applications?per_page=500").await;
    assert_eq!(api, truth);
    // Offer re-versioning: old Deprecated, new id higher.
    let rep2 = sim
        .post("/_sim/mutate?updates=20&resources=offers&seed=9")
        .await
        .json();
    let offers = sim.truth("offers").await;
    for rv in rep2["reversioned"].as_array().unwrap() {
        let old = offers.iter().find(|o| o["id"] == rv["old"]).unwrap();
        let new = offers.iter().find(|o| o["id"] == rv["new"]).unwrap();
        assert_eq!(old["status"], "Deprecated");
        assert_eq!(old["application_id"], new["application_id"]);
        assert!(new["version"].as_i64() > old["version"].as_i64());
    }
    // Reset restores the seeded state and clears stats.
    assert_eq!(sim.post("/_sim/reset").await.status, 200);
    assert_eq!(sim.truth("applications").await, apps_before);
    assert_eq!(sim.stats().await["total_requests"], 0);
    assert!(sim.deleted("candidates").await.is_empty());
    // Bad mutate parameters → 422.
    assert_eq!(sim.post("/_sim/mutate?resources=nope").await.status, 422);
    assert_eq!(sim.post("/_sim/mutate?updates=-1").await.status, 422);
}

async fn status_sequence(args: &[&str]) -> Vec<String> {
    let sim = Sim::start(args);
    let tok = sim.token().await;
    let mut out = vec![];
    for _ in 0..30 {
        let r = sim
            .client
            .get(format!("{}/v3/departments?per_page=5", sim.base_url))
            .bearer_auth(&tok)
            .send()
            .await;
        let s = match r {
            Ok(r) => {
                let st = r.status().as_u16();
                match r.bytes().await {
                    Ok(b) if serde_json::from_slice::<Value>(&b).is_ok() => st.to_string(),
                    _ => format!("{st}-broken"),
                }
            }
            Err(_) => "error".to_string(),
        };
        out.push(s);
    }
    let stats = sim.stats().await;
    assert_eq!(stats["total_requests"], 30);
    out
}

#[tokio::test]
async fn faults_are_reproducible() {
    let args = [
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--seed",
        "3",
        "--fail-rate",
        "0.5",
        "--fault-kinds",
        "500,502,503,reset,truncate",
    ];
    let a = status_sequence(&args).await;
    let b = status_sequence(&args).await;
    assert_eq!(a, b);
    assert!(a.iter().any(|s| s == "200"));
    assert!(a.iter().any(|s| s.starts_with('5')));
    assert!(
        a.iter().any(|s| s.contains("broken") || s == "error"),
        "{a:?}"
    );
    let c = status_sequence(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--seed",
        "4",
        "--fail-rate",
        "0.5",
        "--fault-kinds",
        "500,502,503,reset,truncate",
    ])
    .await;
    assert_ne!(a, c);
}

#[tokio::test]
async fn cursor_expiry_fault_and_latency() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--fail-rate",
        "1",
        "--fault-kinds",
        "cursor_expired",
        "--latency-ms",
        "150",
    ]);
    let tok = sim.token().await;
    let t0 = std::time::Instant::now();
    let r = sim.get(Some(&tok), "/v3/notes?per_page=2").await;
    assert_eq!(r.status, 200, "first pages are never cursor faults");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(150));
    let r = sim.get(Some(&tok), &r.next_link().unwrap()).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("Cursor expired"));
    // Concurrent requests overlap during the latency sleep and show up as peak concurrency.
    let futs = (0..6).map(|_| sim.get(Some(&tok), "/v3/offices"));
    for r in futures::future::join_all(futs).await {
        assert_eq!(r.status, 200);
    }
    let stats = sim.stats().await;
    assert!(stats["peak_concurrency"].as_u64().unwrap() >= 2, "{stats}");
    assert_eq!(stats["faults"]["cursor_expired"], 1);
}
