//! harvest-sim: scale 100 starts quickly and stays within a modest memory budget; the process
//! exits 0 on SIGTERM.
mod support;
use std::time::{Duration, Instant};

use support::Sim;

fn rss_mb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

#[tokio::test]
async fn scale_100_starts_fast_and_small() {
    let t0 = Instant::now();
    let sim = Sim::start(&["--scale", "100", "--rate-limit", "0"]);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "startup took {:?}",
        t0.elapsed()
    );
    let tok = sim.token().await;
    let r = sim
        .get(
            Some(&tok),
            "/v3/notes?per_page=500&updated_at=gte|2026-01-01T00:00:00Z",
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().unwrap().len(), 500);
    let r = sim.get(Some(&tok), &r.next_link().unwrap()).await;
    assert_eq!(r.status, 200);
    let mb = rss_mb(sim.pid());
    assert!(mb > 0 && mb < 600, "RSS {mb} MB");
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let mut sim = Sim::start(&["--scale", "0.05"]);
    let tok = sim.token().await;
    assert_eq!(sim.get(Some(&tok), "/v3/offices").await.status, 200);
    assert_eq!(sim.terminate(), Some(0));
}
