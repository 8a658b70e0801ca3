//! harvest-sim: OAuth token endpoint, 401/403, scopes, Site Admin, rate limits.
mod support;
use support::Sim;

#[tokio::test]
async fn token_endpoint_and_bearer_checks() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--token-ttl",
        "1",
        "--deny-scope",
        "candidates",
    ]);
    let r = sim.token_with("sim-client", "sim-secret", None).await;
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["token_type"], "Bearer");
    assert_eq!(j["expires_in"], 1);
    assert!(j["expires_at"].as_str().unwrap().ends_with('Z'));
    let tok = j["access_token"].as_str().unwrap().to_string();
    let r = sim.token_with("sim-client", "wrong", None).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (401, "invalid_client")
    );
    let r = sim.token_with("other", "sim-secret", None).await;
    assert_eq!(r.status, 401);
    let r = sim
        .client
        .post(format!("{}/token", sim.base_url))
        .basic_auth("sim-client", Some("sim-secret"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
    let r = sim
        .token_with("sim-client", "sim-secret", Some("12345"))
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str().unwrap()),
        (400, "invalid_request")
    );

    // Bearer checks.
    let r = sim.get(None, "/v3/jobs").await;
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (401, "Unauthorized")
    );
    let r = sim.get(Some("not-a-token"), "/v3/jobs").await;
    assert_eq!(r.status, 401);
    assert_eq!(sim.get(Some(&tok), "/v3/jobs").await.status, 200);
    // Scope switch: 403 on candidates only.
    let r = sim.get(Some(&tok), "/v3/candidates").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("harvest:candidates:list"), "{}", r.body);
    // Token expiry (ttl 1 s), on the simulator's clock: advanced, not waited for.
    assert_eq!(sim.post("/_sim/clock?advance_ms=900").await.status, 200);
    assert_eq!(sim.get(Some(&tok), "/v3/jobs").await.status, 200);
    assert_eq!(sim.post("/_sim/clock?advance_ms=400").await.status, 200);
    assert_eq!(sim.get(Some(&tok), "/v3/jobs").await.status, 401);
    assert_eq!(sim.post("/_sim/clock?advance_ms=-1").await.status, 422);

    // A non-admin `sub` gets 403 everywhere; an admin `sub` works.
    let users = sim.truth("users").await;
    let non_admin = users
        .iter()
        .find(|u| u["site_admin"] == false && u["primary_email"] != "")
        .unwrap()["id"]
        .to_string();
    let admin = users.iter().find(|u| u["site_admin"] == true).unwrap()["id"].to_string();
    let t = sim
        .token_with("sim-client", "sim-secret", Some(&non_admin))
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = sim.get(Some(&t), "/v3/jobs").await;
    assert_eq!(
        (r.status, r.json()["message"].as_str().unwrap()),
        (403, "Forbidden")
    );
    let t = sim
        .token_with("sim-client", "sim-secret", Some(&admin))
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sim.get(Some(&t), "/v3/jobs").await.status, 200);
    assert!(sim.stats().await["token_requests"].as_u64().unwrap() >= 7);
}

#[tokio::test]
async fn rate_limit_headers_and_429() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "5",
        "--token-rate-limit",
        "3",
    ]);
    let tok = sim.token().await;
    let mut last_remaining = None;
    let mut saw_429 = false;
    for i in 0..7 {
        // Mix statuses: 200, 422 and 404 all carry the headers and consume the budget.
        let path = match i % 3 {
            0 => "/v3/jobs",
            1 => "/v3/jobs?bogus=1",
            _ => "/v3/nope",
        };
        let r = sim.get(Some(&tok), path).await;
        let limit = r.header("x-ratelimit-limit").expect("limit header");
        let remaining: u32 = r.header("x-ratelimit-remaining").unwrap().parse().unwrap();
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert_eq!(limit, "5");
        assert_eq!(reset % 30, 0);
        if r.status == 429 {
            saw_429 = true;
            assert_eq!(r.json()["message"], "Rate limit exceeded");
            let ra: u64 = r
                .header("retry-after")
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!((1..=30).contains(&ra));
            assert_eq!(remaining, 0);
        } else if let Some(prev) = last_remaining {
            assert_eq!(remaining + 1, prev);
        }
        last_remaining = Some(remaining);
    }
    // The window may roll over mid-loop; in that case the budget would not be exhausted.
    let stats = sim.stats().await;
    assert_eq!(saw_429, stats["rate_limited"].as_u64().unwrap() > 0);
    // 401s carry headers too (anonymous bucket).
    let r = sim.get(None, "/v3/jobs").await;
    assert_eq!(r.status, 401);
    assert!(r.header("x-ratelimit-limit").is_some());
    // Token endpoint: own window.
    let mut statuses = vec![];
    for _ in 0..4 {
        let r = sim.token_with("sim-client", "sim-secret", None).await;
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
        }
        statuses.push(r.status);
    }
    assert!(
        statuses.contains(&429) || statuses.iter().all(|s| *s == 200),
        "{statuses:?}"
    );
}
