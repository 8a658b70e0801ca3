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

/// Every way a secret could be pasted into the wrong place and quoted back by an error: each
/// run must fail with its usual exit code and show `***` where the secret would have been.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_forced_into_an_error_message_is_masked_everywhere() {
    let sim = Sim::start(&[
        "--scale",
        "0.05",
        "--rate-limit",
        "0",
        "--client-secret",
        SECRET,
    ]);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("sim-client:{SECRET}"));
    let token = {
        let r = sim.token_with("sim-client", SECRET, None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["access_token"].as_str().unwrap().to_string()
    };
    let with_secret = |extra: &[(&str, &str)]| {
        let mut env = sim_env(&sim.base_url);
        env.retain(|(k, _)| k != "GREENHOUSE_CLIENT_SECRET");
        env.push(("GREENHOUSE_CLIENT_SECRET".into(), SECRET.into()));
        for (k, v) in extra {
            env.retain(|(n, _)| n != k);
            env.push((k.to_string(), v.to_string()));
        }
        env
    };
    // (name, config file contents, extra args, environment changes, exit code, expected text)
    type Case<'a> = (
        &'a str,
        Option<String>,
        Vec<String>,
        Vec<(&'a str, &'a str)>,
        i32,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            "secret pasted into GREENHOUSE_SUB",
            None,
            vec![],
            vec![("GREENHOUSE_SUB", SECRET)],
            2,
            "GREENHOUSE_SUB must be a numeric Greenhouse user id, got \"***\"",
        ),
        (
            "secret as the sub of a config file",
            Some(format!(r#"{{"sub": "{SECRET}"}}"#)),
            vec![],
            vec![],
            2,
            "key `sub`: invalid type: string \"***\"",
        ),
        (
            "Basic encoding in a config file",
            Some(format!(r#"{{"sub": "{basic}"}}"#)),
            vec![],
            vec![],
            2,
            "key `sub`: invalid type: string \"***\"",
        ),
        (
            "access token pasted as a stream name",
            None,
            vec!["--streams".into(), token.clone()],
            vec![("GREENHOUSE_ACCESS_TOKEN", token.as_str())],
            2,
            "unknown stream(s): \"***\"",
        ),
        (
            "access token inside the destination path",
            None,
            vec!["--destination".into(), format!("{{dir}}/blocked/{token}")],
            vec![("GREENHOUSE_ACCESS_TOKEN", token.as_str())],
            5,
            "blocked/***",
        ),
    ];
    for (name, config, extra_args, env_changes, code, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("blocked"), "a file in the way").unwrap();
        let dest = dir.path().join("out");
        let mut args: Vec<String> = vec!["sync".into(), "-vv".into()];
        if let Some(c) = &config {
            args.extend(["--config".into(), write_config(dir.path(), c)]);
        }
        args.extend(
            extra_args
                .iter()
                .map(|a| a.replace("{dir}", dir.path().to_str().unwrap())),
        );
        for (flag, default) in [
            ("--destination", dest.to_str().unwrap()),
            ("--streams", "jobs"),
        ] {
            if !args.iter().any(|a| a == flag) {
                args.extend([flag.to_string(), default.to_string()]);
            }
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        // The config file is input and holds the secret on purpose; only what the run writes
        // is searched.
        let inputs = files_under(dir.path());
        for format in ["text", "json"] {
            let mut argv = argv.clone();
            argv.extend(["--log-format", format]);
            let out = extract(&argv, &with_secret(&env_changes));
            assert_eq!(out.status.code(), Some(code), "{name}: {}", text(&out));
            let stderr = String::from_utf8_lossy(&out.stderr);
            // JSON lines escape quotes: look for the message in the decoded lines.
            let shown: String = match format {
                "json" => stderr
                    .lines()
                    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .filter_map(|v| v["message"].as_str().map(str::to_string))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => stderr.to_string(),
            };
            assert!(shown.contains(expected), "{name}: {stderr}");
            let mut blobs = vec![out.stdout.clone(), out.stderr.clone()];
            blobs.extend(
                files_under(dir.path())
                    .into_iter()
                    .filter(|f| !inputs.contains(f)),
            );
            for blob in blobs {
                let s = String::from_utf8_lossy(&blob);
                for needle in [SECRET, basic.as_str(), token.as_str(), "Bearer "] {
                    assert!(!s.contains(needle), "{name} ({format}): found {needle:?}");
                }
            }
        }
    }
}

/// A run with a pre-minted access token writes data, state and a manifest: none of it, nor any
/// log line, holds the token.
#[tokio::test(flavor = "multi_thread")]
async fn a_pre_minted_token_never_reaches_output() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let token = sim.token().await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = sim_env(&sim.base_url);
    env.retain(|(k, _)| !k.starts_with("GREENHOUSE_CLIENT_"));
    env.push(("GREENHOUSE_ACCESS_TOKEN".into(), token.clone()));
    let out = extract(
        &[
            "sync",
            "-vv",
            "--destination",
            dir.path().to_str().unwrap(),
            "--streams",
            "jobs,users",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = files_under(dir.path());
    assert!(files.len() >= 3, "expected data, state and manifest files");
    let mut blobs = vec![out.stdout.clone(), out.stderr.clone()];
    blobs.extend(files);
    for blob in blobs {
        let s = String::from_utf8_lossy(&blob);
        assert!(!s.contains(&token), "found the access token in output");
        assert!(!s.contains("Bearer "), "found a bearer header in output");
    }
}
