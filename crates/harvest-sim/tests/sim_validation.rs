//! harvest-sim: every 422 rule of the v3 list contract, and 404s.
mod support;
use support::Sim;

async fn expect_422(sim: &Sim, tok: &str, path: &str, needle: &str) {
    let r = sim.get(Some(tok), path).await;
    assert_eq!(r.status, 422, "{path}: {}", r.body);
    assert!(
        r.body.contains(needle),
        "{path}: body {} lacks {needle}",
        r.body
    );
    assert_eq!(r.json()["message"], "Unprocessable Content");
}

#[tokio::test]
async fn unprocessable_requests() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let tok = sim.token().await;
    let first = sim.get(Some(&tok), "/v3/candidates?per_page=2").await;
    let next = first.next_link().expect("next link");
    expect_422(
        &sim,
        &tok,
        &format!("{next}&per_page=5"),
        "When passing a cursor, do not include other query params.",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        &format!("{next}&status=closed"),
        "do not include other query params",
    )
    .await;
    let cursor = next.split("cursor=").nth(1).unwrap();
    let mut tampered = cursor.to_string();
    tampered.replace_range(12..13, if &cursor[12..13] == "A" { "B" } else { "A" });
    expect_422(
        &sim,
        &tok,
        &format!("/v3/candidates?cursor={tampered}"),
        "cursor",
    )
    .await;
    expect_422(&sim, &tok, "/v3/candidates?cursor=%%%garbage", "cursor").await;
    expect_422(
        &sim,
        &tok,
        "/v3/candidates?bogus=1",
        "Invalid query params: bogus",
    )
    .await;
    for v1 in [
        "updated_after=2024-01-01T00:00:00Z",
        "page=2",
        "skip_count=true",
        "created_before=2024-01-01T00:00:00Z",
    ] {
        expect_422(
            &sim,
            &tok,
            &format!("/v3/candidates?{v1}"),
            "Invalid query params",
        )
        .await;
    }
    expect_422(
        &sim,
        &tok,
        "/v3/candidates?per_page=600",
        "`600` number is greater than: 500",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        "/v3/candidates?per_page=501",
        "greater than: 500",
    )
    .await;
    expect_422(&sim, &tok, "/v3/candidates?per_page=0", "less than: 1").await;
    expect_422(&sim, &tok, "/v3/candidates?per_page=ten", "per_page").await;
    let many: Vec<String> = (0..51)
        .map(|i| (4_000_000_000i64 + i).to_string())
        .collect();
    expect_422(
        &sim,
        &tok,
        &format!("/v3/candidates?ids={}", many.join(",")),
        "maximum is 50",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        &format!("/v3/applications?candidate_ids={}", many.join(",")),
        "maximum is 50",
    )
    .await;
    expect_422(&sim, &tok, "/v3/applications?candidate_ids=1,x", "integers").await;
    expect_422(
        &sim,
        &tok,
        "/v3/applications?candidate_id=4000000013",
        "Invalid query params: candidate_id",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        "/v3/candidates?updated_at=after|2024-01-01T00:00:00Z",
        "updated_at",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        "/v3/candidates?updated_at=gte|yesterday",
        "updated_at",
    )
    .await;
    expect_422(&sim, &tok, "/v3/candidates?updated_at=gte", "updated_at").await;
    expect_422(
        &sim,
        &tok,
        "/v3/candidates?updated_at=gte|2024-01-01T00:00:00Z|lt",
        "updated_at",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        "/v3/demographic_questions?created_at=gte|2024-01-01T00:00:00Z",
        "Invalid query params: created_at",
    )
    .await;
    expect_422(
        &sim,
        &tok,
        "/v3/demographic_answer_options?updated_at=gte|2024-01-01T00:00:00Z",
        "Invalid query params: updated_at",
    )
    .await;
    expect_422(&sim, &tok, "/v3/job_posts?active=yes", "boolean").await;
    expect_422(&sim, &tok, "/v3/applications?status=in_process", "status").await;
    expect_422(&sim, &tok, "/v3/offers?status=accepted", "status").await;
    // Accepted spellings.
    for ok in [
        "/v3/candidates?updated_at=gte%7C2024-01-01T00%3A00%3A00.000Z%7Clte%7C2024-02-01T00%3A00%3A00Z",
        "/v3/candidates?updated_at=gt|2024-01-01T00:00:00%2B02:00",
        "/v3/jobs?department_id=4000000024&office_id=4000000073",
        "/v3/applications?status=active&prospect=false",
        "/v3/offers?sent_on=gte|2024-01-01&status=Deprecated",
    ] {
        let r = sim.get(Some(&tok), ok).await;
        assert_eq!(r.status, 200, "{ok}: {}", r.body);
    }
    for nf in [
        "/v3/candidates/4000000013",
        "/v3/nope",
        "/v2/candidates",
        "/v1/candidates",
    ] {
        let r = sim.get(Some(&tok), nf).await;
        assert_eq!(r.status, 404, "{nf}");
        assert_eq!(r.json()["message"], "Resource not found");
    }
}
