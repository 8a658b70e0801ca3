//! The `harvest-sim` binary: `--version`, and plain (uncoloured) logs when stderr is not a
//! terminal.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

const SIM: &str = env!("CARGO_BIN_EXE_harvest-sim");

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(SIM).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("harvest-sim {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn logs_to_a_pipe_carry_no_escape_codes() {
    let mut child = Command::new(SIM)
        .args(["--port", "0", "--scale", "1"])
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("http://127.0.0.1:"), "{first}");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(err.contains("harvest-sim listening"), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes in piped logs: {err:?}"
    );
}
