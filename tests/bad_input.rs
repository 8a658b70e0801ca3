//! Bad input gets a clear error and loses nothing: each malformed config, credential, flag, state
//! file or destination ends with a message naming the problem and the fix, the documented exit
//! code, and no change to the destination (no data file, no new state generation). The same
//! inputs given to `sync --dry-run` end with the same exit codes and change nothing either.

mod harness;
mod support;

use std::path::{Path, PathBuf};

use harness::*;
use support::Sim;

/// One malformed input.
struct Case {
    name: &'static str,
    /// Config file name and contents (written into the case's folder), if any.
    config: Option<(&'static str, &'static str)>,
    /// Extra arguments after `sync --destination <dest>`.
    args: &'static [&'static str],
    /// Environment changes: (name, Some(value)) sets, (name, None) removes.
    env: &'static [(&'static str, Option<&'static str>)],
    /// Replaces `--destination <dest>` when set (`{dir}` = the case's folder).
    destination: Option<&'static str>,
    /// Files to create before the run: (path relative to the case folder, contents).
    files: &'static [(&'static str, &'static str)],
    code: i32,
    /// Substrings the error output must contain (the problem, and where possible the fix).
    expect: &'static [&'static str],
}

const fn case(name: &'static str, code: i32, expect: &'static [&'static str]) -> Case {
    Case {
        name,
        config: None,
        args: &[],
        env: &[],
        destination: None,
        files: &[],
        code,
        expect,
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            args: &["--config", "{dir}/missing.json"],
            ..case(
                "config file missing",
                2,
                &["cannot read the config file", "--config"],
            )
        },
        Case {
            config: Some(("c.json", "{ not json")),
            ..case(
                "config not JSON",
                2,
                &["not valid JSON", "greenhouse-extract spec"],
            )
        },
        Case {
            config: Some(("c.toml", "client_id = ")),
            ..case(
                "config not TOML",
                2,
                &["is not valid", "greenhouse-extract spec"],
            )
        },
        Case {
            config: Some(("c.json", r#"{"client_idd": "x"}"#)),
            ..case("unknown config key", 2, &["client_idd"])
        },
        Case {
            config: Some(("c.json", r#"{"per_page": "many"}"#)),
            ..case("wrong type", 2, &["per_page"])
        },
        Case {
            config: Some(("c.json", r#"{"per_page": 600}"#)),
            ..case(
                "per_page out of range",
                2,
                &["per_page must be between 1 and 500"],
            )
        },
        Case {
            config: Some(("c.json", r#"{"zstd_level": 23}"#)),
            ..case(
                "zstd_level out of range",
                2,
                &["zstd_level must be between 1 and 22, got 23"],
            )
        },
        Case {
            config: Some(("c.json", r#"{"concurrency": 0}"#)),
            ..case("concurrency zero", 2, &["concurrency must be between"])
        },
        Case {
            config: Some(("c.json", r#"{"max_in_flight": 0}"#)),
            ..case("max_in_flight zero", 2, &["max_in_flight must be between"])
        },
        Case {
            config: Some(("c.json", r#"{"lookback": "soon"}"#)),
            ..case("bad lookback", 2, &["lookback", "30m, 1h or 2d"])
        },
        Case {
            config: Some(("c.json", r#"{"start_date": "last tuesday"}"#)),
            ..case("bad start date", 2, &["start_date", "YYYY-MM-DD"])
        },
        Case {
            config: Some(("c.json", r#"{"start_date": "2099-01-01"}"#)),
            ..case(
                "start date in the future",
                2,
                &[
                    "start_date \"2099-01-01\" is in the future",
                    "omit start_date",
                ],
            )
        },
        Case {
            config: Some(("c.json", r#"{"start_date": "0000-01-01"}"#)),
            ..case("start date before 1970", 2, &["before 1970", "start_date"])
        },
        Case {
            config: Some(("c.json", r#"{"lookback": "1000000d"}"#)),
            ..case("lookback too long", 2, &["lookback", "365d", "start_date"])
        },
        Case {
            config: Some(("c.json", r#"{"lookback": "999999999999999999d"}"#)),
            ..case("lookback overflowing", 2, &["lookback"])
        },
        Case {
            env: &[("GREENHOUSE_API_URL", Some("http://harvest.example.com"))],
            ..case(
                "plain http to a remote host",
                2,
                &["non-loopback", "https://"],
            )
        },
        Case {
            env: &[("GREENHOUSE_TOKEN_URL", Some("ftp://127.0.0.1/token"))],
            ..case("token url scheme", 2, &["token_url", "https://"])
        },
        Case {
            env: &[("GREENHOUSE_API_URL", Some("not a url"))],
            ..case("api url not a URL", 2, &["api_url", "not a valid URL"])
        },
        Case {
            env: &[(
                "GREENHOUSE_API_URL",
                Some("https://user:pw@harvest.greenhouse.io"),
            )],
            ..case("credentials in the api url", 2, &["without credentials"])
        },
        Case {
            env: &[
                ("GREENHOUSE_CLIENT_ID", None),
                ("GREENHOUSE_CLIENT_SECRET", None),
            ],
            ..case(
                "no credentials",
                2,
                &["GREENHOUSE_CLIENT_ID", "GREENHOUSE_CLIENT_SECRET"],
            )
        },
        Case {
            env: &[("GREENHOUSE_CLIENT_SECRET", None)],
            ..case(
                "no client secret",
                2,
                &["no client secret", "GREENHOUSE_CLIENT_SECRET"],
            )
        },
        Case {
            env: &[("GREENHOUSE_SUB", Some("admin"))],
            ..case("sub not numeric", 2, &["GREENHOUSE_SUB", "numeric"])
        },
        Case {
            config: Some((
                "c.json",
                r#"{"hash_columns": {"users": ["primary_email"]}}"#,
            )),
            ..case("hashing without a salt", 2, &["GREENHOUSE_HASH_SALT"])
        },
        Case {
            config: Some(("c.json", r#"{"exclude_columns": {"users": ["shoe_size"]}}"#)),
            ..case("excluding an unknown column", 2, &["shoe_size", "discover"])
        },
        Case {
            config: Some(("c.json", r#"{"exclude_columns": {"users": ["id"]}}"#)),
            ..case("excluding the primary key", 2, &["primary key"])
        },
        Case {
            args: &["--streams", "candidates,candidatez"],
            ..case("unknown stream", 2, &["candidatez", "discover"])
        },
        Case {
            args: &["--streams", ","],
            ..case("empty stream list", 2, &["stream list is empty"])
        },
        Case {
            args: &["--streams", "eeoc"],
            ..case(
                "sensitive stream without opt-in",
                2,
                &["--include-sensitive"],
            )
        },
        Case {
            args: &["--quiet", "--verbose"],
            ..case("conflicting flags", 2, &["cannot be used with"])
        },
        Case {
            destination: Some("ftp://bucket/x"),
            ..case("unknown destination scheme", 2, &["destination", "ftp"])
        },
        Case {
            destination: Some("s3://"),
            ..case("bucket missing", 2, &["destination"])
        },
        Case {
            destination: Some("file://{dir}/named/..%2F..%2Fescaped"),
            ..case(
                "percent-encoded ../ in a file:// URL",
                2,
                &["file://", "percent-encoding", "outside the folder"],
            )
        },
        Case {
            destination: Some("{dir}/a-file/out"),
            files: &[("a-file", "not a directory")],
            ..case(
                "destination blocked by a file",
                5,
                &["cannot create the local directory"],
            )
        },
        Case {
            args: &["--state-file", "{dir}/no-such-folder/state.json"],
            ..case(
                "state file in a missing folder",
                2,
                &["--state-file", "no-such-folder/state.json", "writable"],
            )
        },
        Case {
            args: &["--state-file", "{dir}/state.json"],
            files: &[(
                "state.json",
                r#"{"bookmarks": {"jobs": {"updated_at": "last week"}}}"#,
            )],
            ..case(
                "malformed Singer STATE as the state file",
                2,
                &["state file", "not an RFC 3339 timestamp", "jobs"],
            )
        },
        Case {
            args: &["--state-file", "{dir}/state.json"],
            files: &[("state.json", "{ garbage")],
            ..case("malformed state file", 2, &["state file", "delete it"])
        },
        Case {
            args: &["--state-file", "{dir}/state.json"],
            files: &[(
                "state.json",
                r#"{"version": 99, "generation": 1, "streams": {}}"#,
            )],
            ..case("state file from a newer version", 2, &["version"])
        },
        Case {
            args: &["--state-file", "{dir}/state.json"],
            files: &[(
                "state.json",
                r#"{"version": 1, "generation": 3, "streams": {"jobs": {"bookmark": "2099-01-01T00:00:00Z"}}}"#,
            )],
            ..case(
                "state file bookmark in the future",
                2,
                &[
                    "stream \"jobs\": the bookmark 2099-01-01T00:00:00Z",
                    "later than this run's start",
                    "Correct streams.jobs.bookmark in",
                ],
            )
        },
        Case {
            args: &["--state-file", "{dir}/state.json"],
            files: &[(
                "state.json",
                r#"{"version": 1, "generation": 3, "streams": {"jobs": {"bookmark": "0000-01-01T00:00:00Z"}}}"#,
            )],
            ..case(
                "state file bookmark at year 0",
                2,
                &["stream \"jobs\"", "before 1970", "streams.jobs.bookmark"],
            )
        },
        Case {
            files: &[(
                "out/_state/state-0000000001.json",
                r#"{"version": 1, "generation": 1, "streams": {"jobs": {"bookmark": "2099-01-01T00:00:00Z"}}}"#,
            )],
            ..case(
                "destination bookmark in the future",
                5,
                &[
                    "stream \"jobs\"",
                    "state-0000000001.json",
                    "later than this run's start",
                    "--state-file",
                ],
            )
        },
        Case {
            files: &[("out/_state/state-0000000001.json", "{ torn write")],
            ..case(
                "corrupt state generation at the destination",
                5,
                &["state-0000000001.json"],
            )
        },
        Case {
            destination: Some("s3://bucket/raw"),
            env: &[
                ("AWS_ENDPOINT", Some("http://127.0.0.1:1")),
                ("AWS_ACCESS_KEY_ID", Some("AK")),
                ("AWS_SECRET_ACCESS_KEY", Some("SK")),
                ("AWS_REGION", Some("us-east-1")),
            ],
            ..case(
                "unreachable S3 endpoint",
                5,
                &["destination", "127.0.0.1:1"],
            )
        },
        Case {
            env: &[("GREENHOUSE_CLIENT_SECRET", Some("wrong-secret-0815"))],
            ..case("refused credentials", 4, &["GREENHOUSE_CLIENT_SECRET"])
        },
    ]
}

fn fill(s: &str, dir: &Path) -> String {
    s.replace("{dir}", dir.to_str().unwrap())
}

/// Every file and folder under `dir`, with the files' contents, to prove a failed run changed
/// nothing (not even an empty destination folder).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.push((p.clone(), b"<folder>".to_vec()));
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap_or_default()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_bad_input_fails_clearly_and_changes_nothing() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "the matrix has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for (c, dry_run) in cases.iter().flat_map(|c| [(c, false), (c, true)]) {
        let dir = tempfile::tempdir().unwrap();
        for (path, contents) in c.files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
        }
        let mut args: Vec<String> = vec!["sync".into(), "--destination".into()];
        args.push(match c.destination {
            Some(d) => fill(d, dir.path()),
            None => dir.path().join("out").to_str().unwrap().to_string(),
        });
        if let Some((name, contents)) = c.config {
            let p = dir.path().join(name);
            std::fs::write(&p, contents).unwrap();
            args.push("--config".into());
            args.push(p.to_str().unwrap().into());
        }
        args.extend(c.args.iter().map(|a| fill(a, dir.path())));
        if dry_run {
            args.push("--dry-run".into());
        }
        let name = if dry_run {
            format!("{} (--dry-run)", c.name)
        } else {
            c.name.to_string()
        };
        let mut env = sim_env(&sim.base_url);
        for (k, v) in c.env {
            env.retain(|(name, _)| name != k);
            if let Some(v) = v {
                env.push((k.to_string(), v.to_string()));
            }
        }
        let before = snapshot(dir.path());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = extract(&argv, &env);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() != Some(c.code) {
            failures.push(format!(
                "{name}: exit {:?}, expected {}\n{}",
                out.status.code(),
                c.code,
                text(&out)
            ));
            continue;
        }
        // A dry run never tries to create a local folder, so it words a blocked one differently
        // ("cannot read"); the exit code and "nothing changed" are what must match.
        for e in c
            .expect
            .iter()
            .filter(|e| !(dry_run && e.contains("cannot create")))
        {
            if !stderr.contains(e) {
                failures.push(format!("{name}: message lacks {e:?}: {stderr}"));
            }
        }
        if stderr.contains("wrong-secret-0815") || stderr.contains("sim-secret") {
            failures.push(format!("{name}: a secret leaked: {stderr}"));
        }
        // Nothing written: no destination folder is created, no file added, and pre-existing
        // files are unchanged.
        let after = snapshot(dir.path());
        if after != before {
            let new: Vec<_> = after
                .iter()
                .filter(|f| !before.contains(f))
                .map(|(p, _)| p.display().to_string())
                .collect();
            failures.push(format!("{name}: files changed or added: {new:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        cases.len() * 2,
        failures.join("\n\n")
    );
}

/// A malformed catalog or state file for the protocol modes.
struct ProtocolCase {
    name: &'static str,
    /// `singer` or `airbyte`.
    mode: &'static str,
    catalog: &'static str,
    state: Option<&'static str>,
    expect: &'static [&'static str],
}

const SINGER_OK: &str = r#"{"streams": [{"tap_stream_id": "jobs", "metadata": [{"breadcrumb": [], "metadata": {"selected": true}}]}]}"#;
const AIRBYTE_OK: &str = r#"{"streams": [{"stream": {"name": "jobs"}, "sync_mode": "incremental", "destination_sync_mode": "append"}]}"#;

fn protocol_cases() -> Vec<ProtocolCase> {
    let c = |name, mode, catalog, state, expect| ProtocolCase {
        name,
        mode,
        catalog,
        state,
        expect,
    };
    vec![
        c(
            "singer catalog not JSON",
            "singer",
            "{ streams",
            None,
            &["catalog file", "not valid JSON", "--discover"],
        ),
        c(
            "singer catalog without streams",
            "singer",
            r#"{"stream": []}"#,
            None,
            &["no \"streams\" array", "--discover"],
        ),
        c(
            "singer catalog unknown stream",
            "singer",
            r#"{"streams": [{"tap_stream_id": "widgets", "metadata": [{"breadcrumb": [], "metadata": {"selected": true}}]}]}"#,
            None,
            &["unknown stream \"widgets\"", "--discover"],
        ),
        c(
            "singer catalog selects nothing",
            "singer",
            r#"{"streams": [{"tap_stream_id": "jobs", "metadata": []}]}"#,
            None,
            &["selects no stream", "selected"],
        ),
        c(
            "singer catalog bad selected flag",
            "singer",
            r#"{"streams": [{"tap_stream_id": "jobs", "metadata": [{"breadcrumb": [], "metadata": {"selected": "yes"}}]}]}"#,
            None,
            &["true or false"],
        ),
        c(
            "singer catalog unknown field",
            "singer",
            r#"{"streams": [{"tap_stream_id": "jobs", "metadata": [{"breadcrumb": [], "metadata": {"selected": true}}, {"breadcrumb": ["properties", "colour"], "metadata": {"selected": false}}]}]}"#,
            None,
            &["colour"],
        ),
        c(
            "singer state not JSON",
            "singer",
            SINGER_OK,
            Some("{ bookmarks"),
            &["state file", "not valid JSON", "STATE"],
        ),
        c(
            "singer state wrong shape",
            "singer",
            SINGER_OK,
            Some(r#"{"bookmarks": ["jobs"]}"#),
            &["\"bookmarks\" must be an object"],
        ),
        c(
            "singer state bad timestamp",
            "singer",
            SINGER_OK,
            Some(r#"{"bookmarks": {"jobs": {"updated_at": "last week"}}}"#),
            &["RFC 3339", "remove the stream's entry"],
        ),
        c(
            "singer state unknown stream",
            "singer",
            SINGER_OK,
            Some(r#"{"bookmarks": {"widgets": {"updated_at": "2026-01-01T00:00:00Z"}}}"#),
            &["\"widgets\"", "Remove that entry"],
        ),
        c(
            "airbyte catalog not JSON",
            "airbyte",
            "[",
            None,
            &["catalog file", "not valid JSON", "airbyte discover"],
        ),
        c(
            "airbyte catalog wrong shape",
            "airbyte",
            r#"{"streams": [{"name": "jobs"}]}"#,
            None,
            &["no \"stream\"", "airbyte discover"],
        ),
        c(
            "airbyte catalog unknown stream",
            "airbyte",
            r#"{"streams": [{"stream": {"name": "widgets"}, "sync_mode": "incremental", "destination_sync_mode": "append"}]}"#,
            None,
            &["unknown stream \"widgets\""],
        ),
        c(
            "airbyte catalog bad sync mode",
            "airbyte",
            r#"{"streams": [{"stream": {"name": "jobs"}, "sync_mode": "cdc", "destination_sync_mode": "append"}]}"#,
            None,
            &["sync_mode \"cdc\"", "full_refresh or incremental"],
        ),
        c(
            "airbyte state not JSON",
            "airbyte",
            AIRBYTE_OK,
            Some("[{"),
            &["state file", "not valid JSON"],
        ),
        c(
            "airbyte state wrong shape",
            "airbyte",
            AIRBYTE_OK,
            Some(r#"[{"type": "STREAM", "stream": {"name": "jobs"}}]"#),
            &["stream_descriptor.name", "per-stream state"],
        ),
        c(
            "airbyte state global",
            "airbyte",
            AIRBYTE_OK,
            Some(r#"[{"type": "GLOBAL", "global": {"stream_states": []}}]"#),
            &["GLOBAL", "per-stream"],
        ),
        c(
            "airbyte state unknown stream",
            "airbyte",
            AIRBYTE_OK,
            Some(
                r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "widgets"}, "stream_state": {}}}]"#,
            ),
            &["\"widgets\"", "Remove that entry"],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_catalogs_and_states_fail_clearly_in_both_protocol_modes() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let before = requests_by_resource(&sim).await;
    let mut failures = Vec::new();
    for c in protocol_cases() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = dir.path().join("catalog.json");
        std::fs::write(&catalog, c.catalog).unwrap();
        let config = write_config(dir.path(), "{}");
        let mut args: Vec<String> = Vec::new();
        if c.mode == "airbyte" {
            args.extend(["airbyte".into(), "read".into()]);
        }
        args.extend(["--config".into(), config, "--catalog".into()]);
        args.push(catalog.to_str().unwrap().into());
        if let Some(s) = c.state {
            let p = dir.path().join("state.json");
            std::fs::write(&p, s).unwrap();
            args.extend(["--state".into(), p.to_str().unwrap().into()]);
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = extract(&argv, &sim_env(&sim.base_url));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        // Singer: the message is on stderr. Airbyte: in a TRACE error on stdout (and on stderr).
        let message = String::from_utf8_lossy(&out.stderr).to_string();
        if out.status.code() != Some(2) {
            failures.push(format!(
                "{}: exit {:?}, expected 2\n{}",
                c.name,
                out.status.code(),
                text(&out)
            ));
            continue;
        }
        for e in c.expect {
            if !message.contains(e) {
                failures.push(format!("{}: message lacks {e:?}: {message}", c.name));
            }
        }
        if message.trim().lines().count() != 1 {
            failures.push(format!(
                "{}: not a one-paragraph message: {message}",
                c.name
            ));
        }
        if stdout.contains("\"RECORD\"") || stdout.contains("\"STATE\"") {
            failures.push(format!(
                "{}: records or state were printed: {stdout}",
                c.name
            ));
        }
        match c.mode {
            "singer" if !stdout.is_empty() => {
                failures.push(format!("{}: Singer stdout not empty: {stdout}", c.name))
            }
            "airbyte" => {
                let trace: Option<serde_json::Value> = stdout
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .find(|v: &serde_json::Value| v["trace"]["type"] == "ERROR");
                match trace {
                    Some(t) if t["trace"]["error"]["failure_type"] == "config_error" => {}
                    other => failures.push(format!("{}: no config_error TRACE: {other:?}", c.name)),
                }
            }
            _ => {}
        }
    }
    // Nothing was fetched: every input is checked before the first request.
    let after = requests_by_resource(&sim).await;
    let v3: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    if v3 != 0 {
        failures.push(format!("{v3} API requests were made for bad input"));
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn singer_flags_with_a_subcommand_are_a_usage_error_but_global_options_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "{}");
    // Global options may come before the subcommand, as they always could.
    let out = extract(&["--config", &cfg, "--log-format", "json", "streams"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for args in [
        &["--discover", "streams"][..],
        &["--catalog", "cat.json", "sync"][..],
        &["--about", "check"][..],
    ] {
        let out = extract(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("take no subcommand"), "{args:?}: {err}");
    }
}

/// A value echoed in an error is cut to a readable length and its control characters and
/// bidirectional overrides are escaped: a pasted 8 MB value or a stream name carrying a
/// right-to-left override can neither flood the terminal nor disguise what the message says.
#[test]
fn values_echoed_in_errors_are_cut_and_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "7".repeat(8 << 20);
    for (what, config, args) in [
        ("lookback", format!(r#"{{"lookback": "{huge}x"}}"#), vec![]),
        ("per_page", format!(r#"{{"per_page": "{huge}"}}"#), vec![]),
        (
            "start_date",
            format!(r#"{{"start_date": "{huge}"}}"#),
            vec![],
        ),
        (
            "stream",
            "{}".to_string(),
            vec!["--streams", "jobs\u{202e}sboj,\u{1b}[2Jcandidates\u{7}"],
        ),
    ] {
        let cfg = write_config(dir.path(), &config);
        let dest = dir.path().join("out");
        let mut argv = vec![
            "sync",
            "--config",
            &cfg,
            "--destination",
            dest.to_str().unwrap(),
        ];
        argv.extend(args);
        let out = extract(&argv, &sim_env("http://127.0.0.1:9"));
        let head: String = text(&out).chars().take(1_000).collect();
        assert_eq!(out.status.code(), Some(2), "{what}: {head}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.len() < 2_000,
            "{what}: {} bytes of error: {head}",
            err.len()
        );
        assert!(
            err.contains("more bytes") || what == "stream",
            "{what}: {err}"
        );
        for raw in ['\u{202e}', '\u{1b}', '\u{7}'] {
            assert!(!err.contains(raw), "{what}: raw {raw:?} in {err:?}");
        }
        if what == "stream" {
            assert!(err.contains(r"jobs\u{202e}sboj"), "{err}");
            assert!(err.contains(r"\u{001b}[2Jcandidates\u{0007}"), "{err}");
        }
    }
}

/// With `--log-format json` every line on stderr is JSON, the error that ends the run included:
/// one `fatal_error` line with the message and the exit code, whatever the failure.
#[tokio::test(flavor = "multi_thread")]
async fn with_json_logs_fatal_errors_are_json_lines_too() {
    let sim = Sim::start(&["--scale", "0.05", "--rate-limit", "0"]);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let dest = dest.to_str().unwrap();
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let good = sim_env(&sim.base_url);
    let mut refused = good.clone();
    refused.retain(|(k, _)| k != "GREENHOUSE_CLIENT_SECRET");
    refused.push((
        "GREENHOUSE_CLIENT_SECRET".into(),
        "wrong-secret-0815".into(),
    ));
    type JsonCase<'a> = (&'a str, Vec<&'a str>, &'a [(String, String)], i32, &'a str);
    let cases: Vec<JsonCase> = vec![
        (
            "config file missing",
            vec!["sync", "--destination", dest, "--config", missing],
            &good,
            2,
            "cannot read the config file",
        ),
        (
            "usage error",
            vec!["sync", "--destination", dest, "--no-such-flag"],
            &good,
            2,
            "--no-such-flag",
        ),
        (
            "refused credentials",
            vec!["sync", "--destination", dest, "--streams", "jobs"],
            &refused,
            4,
            "authentication failed",
        ),
        (
            "unknown scheme",
            vec!["sync", "--destination", "ftp://x/y"],
            &good,
            2,
            "ftp",
        ),
    ];
    for (name, mut argv, env, code, says) in cases {
        argv.extend(["--log-format", "json"]);
        let out = extract(&argv, env);
        assert_eq!(out.status.code(), Some(code), "{name}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<serde_json::Value> = stderr
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {l}"))
            })
            .collect();
        let fatal: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|l| l["event"] == "fatal_error")
            .collect();
        assert_eq!(fatal.len(), 1, "{name}: {stderr}");
        assert_eq!(fatal[0]["level"], "ERROR", "{name}");
        assert_eq!(fatal[0]["exit_code"], code, "{name}");
        let message = fatal[0]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{name}: {message}");
        assert!(!stderr.contains("wrong-secret-0815"), "{name}: {stderr}");
    }
}
