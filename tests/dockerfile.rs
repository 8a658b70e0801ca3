//! The Dockerfile against the repository. No container engine (and no registry for base images)
//! is available where these tests run, so the image is never built here; instead this checks
//! what a build would trip over: the builder and the runtime share one Debian release (a binary
//! built on a newer glibc does not start on an older slim image), the toolchain is the crate's
//! `rust-version`, every COPY source exists and is not excluded by .dockerignore, the stream
//! declarations that build.rs embeds are copied before the real build, dependencies (with any
//! patched in the repository) are built in a layer of their own before the sources are copied,
//! and the binary name is the same in
//! the build, the copy, the entrypoint and Cargo.toml, whose entrypoint subcommand exists.

mod harness;
mod support;

use std::path::Path;

use harness::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// One Dockerfile instruction: keyword (upper case) and its arguments, continuations joined.
fn instructions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let (kw, args) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((kw.to_uppercase(), args.trim().to_string()));
                current.clear();
            }
        }
    }
    out
}

fn args_of<'a>(ins: &'a [(String, String)], kw: &str) -> Vec<&'a str> {
    ins.iter()
        .filter(|(k, _)| k == kw)
        .map(|(_, a)| a.as_str())
        .collect()
}

/// Debian release of a base image tag: `rust:1.95-bookworm` and `debian:bookworm-slim` →
/// `bookworm`.
fn debian_release(image: &str) -> Option<&'static str> {
    ["bullseye", "bookworm", "trixie"]
        .into_iter()
        .find(|r| image.contains(r))
}

#[test]
fn builder_and_runtime_share_one_debian_release_and_the_crates_toolchain() {
    let ins = instructions();
    let froms = args_of(&ins, "FROM");
    assert_eq!(froms.len(), 2, "a builder and a runtime stage: {froms:?}");
    let builder = froms[0].split_whitespace().next().unwrap();
    let runtime = froms[1].split_whitespace().next().unwrap();
    assert!(froms[0].ends_with(" AS builder"), "{}", froms[0]);
    let release = debian_release(builder)
        .unwrap_or_else(|| panic!("{builder}: name the Debian release (e.g. rust:1.95-bookworm)"));
    assert_eq!(
        debian_release(runtime),
        Some(release),
        "{builder} and {runtime} must be the same Debian release"
    );
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let rust_version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"');
    assert!(
        builder.starts_with(&format!("rust:{rust_version}-")),
        "{builder}: the toolchain should be the crate's rust-version {rust_version}"
    );
}

#[test]
fn every_copied_path_exists_and_is_not_ignored() {
    let ignored: Vec<String> = std::fs::read_to_string(Path::new(ROOT).join(".dockerignore"))
        .unwrap()
        .lines()
        .map(|l| l.trim().trim_matches('/').to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for copy in args_of(&instructions(), "COPY") {
        if copy.starts_with("--from=") {
            continue;
        }
        let parts: Vec<&str> = copy.split_whitespace().collect();
        let (dest, sources) = parts.split_last().unwrap();
        assert!(!sources.is_empty(), "COPY {copy}");
        for src in sources {
            assert_ne!(
                *src, ".",
                "copy named paths, so a README edit keeps the build cached"
            );
            assert!(
                Path::new(ROOT).join(src).exists(),
                "COPY {src} {dest}: no such path in the repository"
            );
            let first = src.split('/').next().unwrap();
            assert!(
                !ignored.iter().any(|i| i == first || i == src),
                "COPY {src}: excluded by .dockerignore"
            );
        }
    }
}

#[test]
fn dependencies_build_in_their_own_layer_before_the_sources_arrive() {
    let ins = instructions();
    let builds: Vec<usize> = ins
        .iter()
        .enumerate()
        .filter(|(_, (k, a))| k == "RUN" && a.contains("cargo build"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(builds.len(), 2, "a dependency build and the real build");
    let copied_before = |i: usize| -> Vec<&str> {
        ins[..i]
            .iter()
            .filter(|(k, _)| k == "COPY")
            .map(|(_, a)| a.as_str())
            .collect()
    };
    let deps = copied_before(builds[0]);
    // A dependency patched in the repository (`[patch.crates-io]` with a path) is part of the
    // dependencies: its directory must be in that layer, and nothing else of the sources.
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let parsed: toml::Table = manifest.parse().unwrap();
    let patched: Vec<&str> = parsed
        .get("patch")
        .and_then(|p| p.get("crates-io"))
        .and_then(|c| c.as_table())
        .into_iter()
        .flat_map(|c| c.values())
        .filter_map(|dep| dep.get("path")?.as_str()?.split('/').next())
        .collect();
    for dir in &patched {
        assert!(
            deps.iter()
                .any(|c| c.split_whitespace().next() == Some(dir)),
            "the patched dependency in {dir}/ is not copied before the dependency build: {deps:?}"
        );
    }
    assert!(
        deps.iter().all(|c| c.contains("Cargo.toml")
            || c.contains("Cargo.lock")
            || patched.contains(&c.split_whitespace().next().unwrap_or(""))),
        "only manifests and patched dependencies before the dependency build: {deps:?}"
    );
    let all = copied_before(builds[1]);
    for needed in ["src", "streams", "build.rs"] {
        assert!(
            all.iter()
                .any(|c| c.split_whitespace().next() == Some(needed)),
            "{needed} is not copied before the build (build.rs embeds streams/): {all:?}"
        );
    }
    // Every workspace member's manifest is there for the dependency build.
    let members = manifest
        .lines()
        .find_map(|l| l.strip_prefix("members = "))
        .unwrap();
    for m in members.trim_matches(['[', ']']).split(',') {
        let m = m.trim().trim_matches('"');
        if m != "." {
            let want = format!("{m}/Cargo.toml");
            assert!(deps.iter().any(|c| c.contains(&want)), "{want}: {deps:?}");
        }
    }
}

#[test]
fn the_binary_name_agrees_everywhere_and_the_entrypoint_runs() {
    let ins = instructions();
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let bin = manifest
        .split("[[bin]]")
        .nth(1)
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("name = ")))
        .unwrap()
        .trim_matches('"');
    assert_eq!(
        Path::new(EXTRACT).file_name().unwrap().to_str().unwrap(),
        bin
    );
    for run in args_of(&ins, "RUN")
        .iter()
        .filter(|a| a.contains("cargo build"))
    {
        assert!(
            run.contains(&format!("--release --locked --bin {bin}")),
            "{run}"
        );
    }
    let copy = args_of(&ins, "COPY")
        .into_iter()
        .find(|c| c.starts_with("--from=builder"))
        .expect("the binary is copied from the builder");
    let workdir = args_of(&ins, "WORKDIR")[0];
    assert_eq!(
        copy,
        format!("--from=builder {workdir}/target/release/{bin} /usr/local/bin/{bin}")
    );
    let entry: Vec<String> =
        serde_json::from_str(args_of(&ins, "ENTRYPOINT").last().unwrap()).unwrap();
    assert_eq!(
        entry[0], bin,
        "the entrypoint runs the copied binary (on PATH)"
    );
    // `docker run IMAGE spec` becomes `greenhouse-extract airbyte spec`.
    let mut args: Vec<&str> = entry[1..].iter().map(String::as_str).collect();
    args.push("spec");
    let out = extract(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["type"], "SPEC");
}
