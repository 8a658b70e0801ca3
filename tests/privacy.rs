//! Column exclusion and hashing are applied before anything is written: an excluded column is
//! absent from the Parquet files, a hashed column holds the salted SHA-256 of the simulator's
//! value, and neither appears anywhere in the written bytes.

mod harness;
mod support;

use std::sync::Arc;

use harness::*;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use sha2::{Digest, Sha256};
use support::Sim;

#[tokio::test(flavor = "multi_thread")]
async fn excluded_columns_are_absent_and_hashed_columns_are_digests() {
    let sim = Sim::start(&["--scale", "0.1", "--rate-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = dir.path().join("config.json");
    std::fs::write(
        &cfg,
        r#"{
          "exclude_columns": {"candidates": ["phone_numbers", "addresses"], "users": ["emails"]},
          "hash_columns": {"users": ["primary_email", "employee_id"]}
        }"#,
    )
    .unwrap();
    let mut env = sim_env(&sim.base_url);
    env.push(("GREENHOUSE_HASH_SALT".into(), "pepper-1".into()));
    let out = extract(
        &[
            "sync",
            "--config",
            cfg.to_str().unwrap(),
            "--destination",
            dest.to_str().unwrap(),
            "--streams",
            "candidates,users",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let store: Arc<dyn object_store::ObjectStore> =
        Arc::new(LocalFileSystem::new_with_prefix(&dest).unwrap());
    let candidates = read_stream(&store, &ObjPath::from(""), "candidates").await;
    assert!(!candidates.is_empty());
    for row in &candidates {
        assert!(row.get("phone_numbers").is_none() && row.get("addresses").is_none());
        assert!(row.get("email_addresses").is_some());
    }

    let digest = |v: &str| {
        let mut h = Sha256::new();
        h.update(b"pepper-1");
        h.update([0u8]);
        h.update(v.as_bytes());
        hex::encode(h.finalize())
    };
    let truth = sim.truth("users").await;
    let written = dedup_latest(read_stream(&store, &ObjPath::from(""), "users").await);
    assert_eq!(written.len(), truth.len());
    for t in &truth {
        let w = &written[&t["id"].as_i64().unwrap()];
        assert_eq!(
            w["primary_email"],
            digest(t["primary_email"].as_str().unwrap())
        );
        match t["employee_id"].as_str() {
            Some(e) => assert_eq!(w["employee_id"], digest(e)),
            None => assert!(w["employee_id"].is_null()),
        }
        assert_eq!(w["first_name"], t["first_name"]);
    }

    // The clear values appear nowhere in the written files (`emails` repeats the primary
    // address, which is why the policy above excludes it: hashing one column is not enough).
    let emails: Vec<String> = truth
        .iter()
        .filter_map(|t| t["primary_email"].as_str())
        .filter(|e| e.len() > 3)
        .map(str::to_string)
        .collect();
    let mut stack = vec![dest.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if !p.to_string_lossy().contains("/users/") {
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            for email in &emails {
                assert!(
                    !text.contains(email.as_str()),
                    "{email} found in {}",
                    p.display()
                );
            }
        }
    }
}
