//! harvest-sim: keyset paging, ordering, date grammar boundaries, hidden-by-default rows,
//! resource-specific filters and determinism.
mod support;
use serde_json::Value;
use support::{Sim, ids};

#[tokio::test]
async fn paging_is_complete_and_ordered() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let tok = sim.token().await;
    for res in ["notes", "applications", "users", "custom_field_options"] {
        let truth = sim.truth(res).await;
        let (rows, pages) = sim.get_all(&tok, &format!("/v3/{res}?per_page=37")).await;
        let got = ids(&rows);
        let mut sorted = got.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        sorted.dedup();
        assert_eq!(
            got, sorted,
            "{res}: ids must be strictly descending without duplicates"
        );
        if res != "users" {
            assert_eq!(
                got,
                ids(&truth),
                "{res}: paging must return exactly the truth"
            );
            assert_eq!(rows, truth, "{res}: same JSON objects as truth");
        }
        assert_eq!(
            pages,
            got.len().div_ceil(37).max(1),
            "{res}: no empty trailing page"
        );
        assert!(got.iter().all(|id| *id > i32::MAX as i64));
    }
    // Every resource serves a JSON array whose records carry id/created_at/updated_at.
    let list = sim.get(None, "/_sim/resources").await.json();
    let names: Vec<String> = list.as_object().unwrap().keys().cloned().collect();
    assert_eq!(names.len(), 67);
    for res in &names {
        let r = sim.get(Some(&tok), &format!("/v3/{res}?per_page=3")).await;
        assert_eq!(r.status, 200, "{res}: {}", r.body);
        for row in r.json().as_array().unwrap() {
            for k in ["id", "created_at", "updated_at"] {
                assert!(row.get(k).is_some(), "{res} lacks {k}");
            }
        }
    }
    // Default page size is 100; `fields=` projects.
    let r = sim.get(Some(&tok), "/v3/notes").await;
    assert_eq!(r.json().as_array().unwrap().len(), 100);
    let r = sim
        .get(Some(&tok), "/v3/candidates?per_page=2&fields=id,first_name")
        .await;
    for row in r.json().as_array().unwrap() {
        assert_eq!(row.as_object().unwrap().len(), 2);
    }
    // Last page: no Link header.
    let all = sim.truth("candidates").await;
    let r = sim
        .get(
            Some(&tok),
            &format!("/v3/candidates?per_page={}", all.len()),
        )
        .await;
    assert!(r.next_link().is_none());
}

fn ts(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

#[tokio::test]
async fn date_window_boundaries() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let tok = sim.token().await;
    let truth = sim.truth("applications").await;
    let row = &truth[truth.len() / 2];
    let id = row["id"].as_i64().unwrap();
    let u = ts(&row["updated_at"]);
    let contains = |rows: &Vec<Value>| ids(rows).contains(&id);
    for (filter, expect) in [
        (format!("gte|{u}"), true),
        (format!("gt|{u}"), false),
        (format!("lte|{u}"), true),
        (format!("lt|{u}"), false),
        (format!("gte|{u}|lte|{u}"), true),
        (format!("gte|{u}|lt|{u}"), false),
    ] {
        let (rows, _) = sim
            .get_all(
                &tok,
                &format!("/v3/applications?per_page=500&updated_at={filter}"),
            )
            .await;
        assert_eq!(contains(&rows), expect, "updated_at={filter}");
        let want: Vec<i64> = ids(&truth
            .iter()
            .filter(|r| {
                let v = ts(&r["updated_at"]);
                filter
                    .split('|')
                    .collect::<Vec<_>>()
                    .chunks(2)
                    .all(|c| match c[0] {
                        "gte" => v.as_str() >= c[1],
                        "gt" => v.as_str() > c[1],
                        "lte" => v.as_str() <= c[1],
                        _ => v.as_str() < c[1],
                    })
            })
            .cloned()
            .collect::<Vec<_>>());
        assert_eq!(ids(&rows), want, "updated_at={filter}");
    }
    // Offsets are honoured: the same instant spelled with +02:00.
    let dt = chrono::DateTime::parse_from_rfc3339(&u)
        .unwrap()
        .with_timezone(&chrono::FixedOffset::east_opt(7200).unwrap());
    let spelled = dt
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
        .replace('+', "%2B");
    let (rows, _) = sim
        .get_all(
            &tok,
            &format!("/v3/applications?per_page=500&updated_at=gte|{spelled}|lte|{spelled}"),
        )
        .await;
    assert!(contains(&rows));
    // Windows keep working across pages (cursor carries the filter).
    let (rows, _) = sim
        .get_all(
            &tok,
            "/v3/notes?per_page=7&created_at=gte|2025-01-01T00:00:00Z",
        )
        .await;
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| ts(&r["created_at"]).as_str() >= "2025-01-01T00:00:00.000Z")
    );
}

#[tokio::test]
async fn hidden_by_default_rows_and_special_filters() {
    let sim = Sim::start(&["--scale", "0.2", "--rate-limit", "0"]);
    let tok = sim.token().await;
    // job_posts: inactive hidden by default; active=false returns only inactive.
    let truth = sim.truth("job_posts").await;
    let (def, _) = sim.get_all(&tok, "/v3/job_posts?per_page=500").await;
    let (inactive, _) = sim
        .get_all(&tok, "/v3/job_posts?per_page=500&active=false")
        .await;
    let (active, _) = sim
        .get_all(&tok, "/v3/job_posts?per_page=500&active=true")
        .await;
    assert!(!inactive.is_empty() && inactive.iter().all(|r| r["active"] == false));
    assert!(def.iter().all(|r| r["active"] == true));
    assert_eq!(ids(&def), ids(&active));
    assert_eq!(def.len() + inactive.len(), truth.len());
    // users: service accounts hidden unless show_service_accounts=true.
    let truth = sim.truth("users").await;
    let (def, _) = sim.get_all(&tok, "/v3/users?per_page=500").await;
    let (all, _) = sim
        .get_all(&tok, "/v3/users?per_page=500&show_service_accounts=true")
        .await;
    assert!(def.iter().all(|r| r["primary_email"] != ""));
    assert!(all.iter().any(|r| r["primary_email"] == ""));
    assert_eq!(ids(&all), ids(&truth));
    assert!(
        truth.iter().any(|r| r["site_admin"] == true)
            && truth.iter().any(|r| r["site_admin"] == false)
    );
    // rejection_reasons: defaults only with include_defaults=true.
    let truth = sim.truth("rejection_reasons").await;
    let (def, _) = sim.get_all(&tok, "/v3/rejection_reasons").await;
    let (all, _) = sim
        .get_all(&tok, "/v3/rejection_reasons?include_defaults=true")
        .await;
    assert!(def.len() < all.len());
    assert_eq!(ids(&all), ids(&truth));
    // custom_field_options by custom_field_key.
    let fields = sim.truth("custom_fields").await;
    for key in ["degree", "discipline", "school_name"] {
        let cf = fields.iter().find(|f| f["name_key"] == key).expect(key);
        let (opts, _) = sim
            .get_all(
                &tok,
                &format!("/v3/custom_field_options?custom_field_key={key}"),
            )
            .await;
        assert!(opts.len() >= 5, "{key}");
        assert!(opts.iter().all(|o| o["custom_field_id"] == cf["id"]));
    }
    // custom_fields include inactive rows by default.
    let (cfs, _) = sim.get_all(&tok, "/v3/custom_fields?per_page=500").await;
    assert!(cfs.iter().any(|f| f["active"] == false));
    // applications?status=active matches in_process.
    let (apps, _) = sim
        .get_all(&tok, "/v3/applications?per_page=500&status=active")
        .await;
    assert!(!apps.is_empty() && apps.iter().all(|a| a["status"] == "in_process"));
    // Parent filters and ids.
    let cands = sim.truth("candidates").await;
    let c = cands[3]["id"].as_i64().unwrap();
    let (apps, _) = sim
        .get_all(&tok, &format!("/v3/applications?candidate_ids={c}"))
        .await;
    assert!(!apps.is_empty() && apps.iter().all(|a| a["candidate_id"] == c));
    let r = sim
        .get(
            Some(&tok),
            &format!("/v3/candidates?ids={c},{}", cands[5]["id"]),
        )
        .await;
    assert_eq!(
        ids(r.json().as_array().unwrap()),
        vec![c, cands[5]["id"].as_i64().unwrap()]
    );
}

#[tokio::test]
async fn deterministic_per_seed() {
    let a = Sim::start(&["--scale", "0.05", "--seed", "7", "--rate-limit", "0"]);
    let b = Sim::start(&["--scale", "0.05", "--seed", "7", "--rate-limit", "0"]);
    let c = Sim::start(&["--scale", "0.05", "--seed", "8", "--rate-limit", "0"]);
    let (ta, tb, tc) = (a.token().await, b.token().await, c.token().await);
    for path in [
        "/v3/candidates?per_page=50",
        "/v3/notes?per_page=200",
        "/v3/job_posts?active=false",
        "/v3/offers",
    ] {
        let (ra, rb, rc) = (
            a.get(Some(&ta), path).await,
            b.get(Some(&tb), path).await,
            c.get(Some(&tc), path).await,
        );
        assert_eq!(ra.body, rb.body, "{path}");
        assert_ne!(ra.body, rc.body, "{path}");
    }
}
