//! Stream selection from the command line: globs, `--exclude-streams`, and "did you mean" for a
//! name that is no stream — refused before any request, with nothing created.

mod harness;
mod support;

use harness::*;

#[test]
fn a_mistyped_stream_is_refused_with_the_nearest_names_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let env = sim_env("http://127.0.0.1:9");
    for (args, expected) in [
        (
            vec!["--streams", "jbos"],
            r#""jbos" (did you mean "jobs"?)"#,
        ),
        (
            vec!["--streams", "scorecard"],
            r#""scorecard" (did you mean "scorecards"?)"#,
        ),
        (
            vec!["--streams", "widget*"],
            r#""widget*" (matches no stream)"#,
        ),
        (
            vec!["--exclude-streams", "ofers"],
            r#"--exclude-streams: unknown stream(s): "ofers" (did you mean "offers"?)"#,
        ),
        (
            vec!["--streams", "jobs", "--exclude-streams", "job*"],
            "leaves no stream",
        ),
    ] {
        let mut all = vec!["sync", "--destination", dest.to_str().unwrap()];
        all.extend(args);
        let out = extract(&all, &env);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{all:?}: {err}");
        assert!(!dest.exists(), "{all:?} created the destination");
    }
}

#[test]
fn state_show_takes_globs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let d = dir.path().join("out");
    let out = extract(
        &[
            "state",
            "show",
            "--destination",
            d.to_str().unwrap(),
            "--streams",
            "scorecard*,jobs",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("reads from scratch"))
        .collect();
    assert_eq!(rows.len(), 8, "{stdout}");
    assert!(
        rows.iter().any(|l| l.starts_with("scorecard_questions ")),
        "{stdout}"
    );
}
