//! Secrets never leak: a whole run at the most verbose log level, in both log formats, with a
//! known client secret, leaves no trace of the secret (nor of its HTTP Basic encoding, nor of any
//! bearer token) in stdout, stderr or any file written to the destination.

mod harness;
mod support;

use base64::Engine;
use harness::*;
use support::Sim;

const SECRET: &str = "Canary-s3cr3t-7f1e";

fn files_under(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_verbose_run_never_prints_or_writes_a_secret() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--client-secret",
        SECRET,
        "--token-ttl",
        "1",
    ]);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sim-client:{SECRET}"));
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let mut env = sim_env(&sim.base_url);
        for (k, v) in env.iter_mut() {
            if k == "GREENHOUSE_CLIENT_SECRET" {
                *v = SECRET.into();
            }
        }
        let out = extract(
            &[
                "sync",
                "-vv",
                "--log-format",
                format,
                "--destination",
                dir.path().to_str().unwrap(),
                "--streams",
                "candidates,users,jobs",
            ],
            &env,
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(out.stderr.len() > 1000, "expected verbose logs");
        let mut blobs = vec![out.stdout.clone(), out.stderr.clone()];
        blobs.extend(files_under(dir.path()));
        for blob in blobs {
            let s = String::from_utf8_lossy(&blob);
            for needle in [SECRET, basic.as_str(), "Bearer ", "access_token"] {
                assert!(!s.contains(needle), "{format}: found {needle:?} in output");
            }
        }
    }
}
