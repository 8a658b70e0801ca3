//! harvest-sim control API for benchmarks: `/_sim/count/<res>` (rows a list would return over all
//! pages) and the per-rate-window histogram in `/_sim/stats`.
mod support;
use serde_json::Value;
use support::Sim;

async fn count(sim: &Sim, path: &str) -> u64 {
    let r = sim.get(None, &format!("/_sim/count/{path}")).await;
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    r.json()["count"].as_u64().expect("count")
}

#[tokio::test]
async fn count_matches_paging_and_resource_defaults() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let tok = sim.token().await;
    // Plain lists, the hidden-by-default rows and their opt-ins, a filter that renders rows,
    // and a compact-state date filter.
    for list in [
        "notes",
        "candidates?per_page=7",
        "job_posts",
        "job_posts?active=false",
        "users",
        "users?show_service_accounts=true",
        "rejection_reasons",
        "rejection_reasons?include_defaults=true",
        "custom_field_options?custom_field_key=degree",
        "applications?status=active",
        "applications?updated_at=gte|2025-01-01T00:00:00Z",
    ] {
        let (rows, _) = sim.get_all(&tok, &format!("/v3/{list}")).await;
        assert_eq!(
            count(&sim, list).await,
            rows.len() as u64,
            "{list}: count must equal the rows served over all pages"
        );
    }
    // The defaults really hide rows, so the pairs above compare different numbers.
    assert!(count(&sim, "users").await < count(&sim, "users?show_service_accounts=true").await);
    assert!(
        count(&sim, "rejection_reasons").await
            < count(&sim, "rejection_reasons?include_defaults=true").await
    );
    // Deletes are reflected.
    let before = count(&sim, "notes").await;
    let m = sim.post("/_sim/mutate?deletes=3&resources=notes").await;
    assert_eq!(m.status, 200, "{}", m.body);
    assert_eq!(count(&sim, "notes").await, before - 3);
}

#[tokio::test]
async fn count_validates_like_v3_and_is_not_counted() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "1"]);
    let before: Value = sim.stats().await;
    for (path, needle) in [
        (
            "candidates?updated_after=2024-01-01",
            "Invalid query params: updated_after",
        ),
        ("candidates?per_page=600", "greater than: 500"),
        ("applications?status=bogus", "is not one of"),
    ] {
        let r = sim.get(None, &format!("/_sim/count/{path}")).await;
        assert_eq!(r.status, 422, "{path}: {}", r.body);
        assert!(r.body.contains(needle), "{path}: {}", r.body);
    }
    assert_eq!(sim.get(None, "/_sim/count/nope").await.status, 404);
    // No token and a one-request budget: many counts still succeed and leave no trace.
    for _ in 0..5 {
        assert!(count(&sim, "offices").await > 0);
    }
    let after = sim.stats().await;
    assert_eq!(after["total_requests"], before["total_requests"]);
    assert_eq!(after["windows"], before["windows"]);
    assert_eq!(after["total_requests"], 0);
}

#[tokio::test]
async fn stats_histogram_per_rate_window() {
    // A window of 10^9 s (aligned to epoch multiples) keeps every request of this test in one
    // window, so the counts are exact.
    let window = 1_000_000_000u64;
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "3",
        "--rate-window",
        &window.to_string(),
    ]);
    let tok = sim.token().await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(sim.get(Some(&tok), "/v3/offices").await.status);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    let st = sim.stats().await;
    assert_eq!(st["rate_limit"], 3);
    assert_eq!(st["rate_window"], window);
    let w = st["windows"].as_array().expect("windows");
    assert_eq!(w.len(), 1, "{st}");
    let start = w[0]["start"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(start, now - now % window);
    assert_eq!(w[0]["requests"], 5);
    assert_eq!(w[0]["ok"], 3);
    assert_eq!(w[0]["rate_limited"], 2);
    assert!(st["bytes_served"].as_u64().unwrap() > 0);
    assert_eq!(sim.post("/_sim/reset").await.status, 200);
    let st = sim.stats().await;
    assert_eq!(st["windows"], serde_json::json!([]));
    assert_eq!(st["bytes_served"], 0);
}

#[tokio::test]
async fn stats_windows_are_sorted_and_sum_to_the_totals() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-window", "1"]);
    let tok = sim.token().await;
    for _ in 0..6 {
        assert_eq!(sim.get(Some(&tok), "/v3/offices").await.status, 200);
        // 300 ms on the simulator's clock, not the wall's.
        assert_eq!(sim.post("/_sim/clock?advance_ms=300").await.status, 200);
    }
    let st = sim.stats().await;
    let w = st["windows"].as_array().expect("windows");
    let starts: Vec<u64> = w.iter().map(|x| x["start"].as_u64().unwrap()).collect();
    assert!(starts.windows(2).all(|p| p[0] < p[1]), "{starts:?}");
    assert!(starts.len() >= 2, "1 s windows over ~1.8 s: {starts:?}");
    let sum = |k: &str| w.iter().map(|x| x[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("requests"), st["total_requests"].as_u64().unwrap());
    assert_eq!(sum("ok"), 6);
    assert_eq!(sum("rate_limited"), 0);
}
