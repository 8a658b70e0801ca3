//! The extractor's top-level modules form no import cycle; neither do the files of the engine
//! (`src/sync/`); and no module but `events` writes a log event inline.
//!
//! Reads every `crate::…` path in `src/**/*.rs` (the simulator in `src/sim` and the binaries are
//! not the extractor and are left out), builds the graph "module A names module B" between
//! top-level modules, and fails with the cycle — each edge with a line that causes it — if the
//! graph has one. Submodules of one top-level module may refer to each other freely.
//!
//! Paths in comments count too: an intra-doc link to a module above is a dependency as well
//! (rustdoc resolves it), so a module's docs name only what it may import. Text, not syntax, is
//! read on purpose: std only, and a mention in any form is enough to be suspicious of.
//!
//! The intended layers, bottom → top (see each module's `//!` for why it sits where it does):
//! allocator, secrets, error, table, events → logging, registry → config → storage, state, convert, harvest →
//! sink, privacy, progress → sync, dryrun, check, catalog, docs, ddl → protocol → cli.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level directories and files of `src/` that are not part of the extractor.
const NOT_THE_EXTRACTOR: &[&str] = &["sim", "bin", "lib.rs", "main.rs"];

/// Modules documented as leaves: they import nothing from the crate.
const LEAVES: &[&str] = &["secrets", "error", "table", "events", "cancel", "allocator"];

/// Where an edge comes from: `file:line: text`.
type Evidence = String;

/// `from → to → first line that names `to` in `from``.
type Graph = BTreeMap<String, BTreeMap<String, Evidence>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules of the extractor: `src/x.rs` and `src/x/mod.rs`.
fn modules(src: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir(src).expect("src/ is readable").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if NOT_THE_EXTRACTOR.contains(&name.as_str()) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() && path.join("mod.rs").exists() {
            out.insert(name);
        } else if let Some(stem) = name.strip_suffix(".rs") {
            out.insert(stem.to_string());
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable directory")
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The first segments of every `crate::` path in `text`, with the byte offset of each path:
/// `crate::a::b` gives `a`; `crate::{a::x, b, c::{d, e}}` gives `a`, `b` and `c`.
/// `$crate::` (macros) and `pub(crate)` are not paths into this crate's modules.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("crate::").map(|i| i + from) {
        from = i + "crate::".len();
        let before = text[..i].chars().next_back();
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue;
        }
        let rest = text[from..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // The items at the group's top level, each up to a comma at depth 0.
            let mut depth = 0usize;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && is_ident(c) => {
                        let name: String =
                            group[k..].chars().take_while(|&c| is_ident(c)).collect();
                        out.push((i, name));
                        item_start = false;
                    }
                    c if c.is_whitespace() => {}
                    _ => item_start = false,
                }
            }
        } else {
            let name: String = rest.chars().take_while(|&c| is_ident(c)).collect();
            if !name.is_empty() {
                out.push((i, name));
            }
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let modules = modules(src);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).expect("under src/");
        let first = rel
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy();
        let from = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("readable source");
        for (at, to) in crate_paths(&text) {
            if to == from || !modules.contains(&to) {
                continue;
            }
            let line = text[..at].matches('\n').count() + 1;
            let quote = text.lines().nth(line - 1).unwrap_or_default().trim();
            graph
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert_with(|| format!("src/{}:{line}: {quote}", rel.display()));
        }
    }
    graph
}

/// One cycle of `graph` as a closed list of nodes (`[a, b, a]`), if there is any.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        node: &str,
        graph: &Graph,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        marks.insert(node.to_string(), Mark::Open);
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|e| e.keys()) {
            match marks.get(next.as_str()) {
                Some(Mark::Open) => {
                    let start = path.iter().position(|n| n == next).expect("on the path");
                    let mut cycle = path[start..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(next, graph, marks, path) {
                        return Some(c);
                    }
                }
            }
        }
        path.pop();
        marks.insert(node.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for node in graph.keys() {
        if !marks.contains_key(node.as_str())
            && let Some(c) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn describe(cycle: &[String], graph: &Graph) -> String {
    let mut out = format!("import cycle: {}\n", cycle.join(" → "));
    for pair in cycle.windows(2) {
        let evidence = &graph[&pair[0]][&pair[1]];
        out.push_str(&format!("  {} → {}: {evidence}\n", pair[0], pair[1]));
    }
    out
}

#[test]
fn the_top_level_modules_form_no_import_cycle() {
    let graph = graph(&src());
    // A parser that sees nothing would pass trivially: the command line knows everyone.
    assert!(
        graph.get("cli").is_some_and(|e| e.contains_key("config")),
        "the graph misses cli → config; is the parser broken? {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "{}Break it by moving the shared item down to the lower module (or into a leaf), or by \
             having the caller hand the higher one in (a trait, a callback).",
            describe(&cycle, &graph)
        );
    }
}

#[test]
fn leaves_import_nothing_and_nothing_imports_the_command_line() {
    let graph = graph(&src());
    for leaf in LEAVES {
        if let Some(edges) = graph.get(*leaf) {
            let lines: Vec<&String> = edges.values().collect();
            panic!("{leaf} is documented as a leaf but imports: {lines:#?}");
        }
    }
    for (from, edges) in &graph {
        if let Some(evidence) = edges.get("cli") {
            panic!("only main may use cli, but {from} does: {evidence}");
        }
    }
}

#[test]
fn paths_are_read_in_every_form() {
    let names =
        |text: &str| -> Vec<String> { crate_paths(text).into_iter().map(|(_, n)| n).collect() };
    assert_eq!(names("use crate::config::Config;"), ["config"]);
    assert_eq!(
        names("use crate::{config::{Config, Overrides}, error, sync::run};"),
        ["config", "error", "sync"]
    );
    assert_eq!(names("use crate::{\n    a::b,\n    c,\n};"), ["a", "c"]);
    assert_eq!(names("/// See [`crate::progress`]."), ["progress"]);
    assert_eq!(
        names("let x = crate::sink::SinkConfig::default();"),
        ["sink"]
    );
    assert!(names("pub(crate) fn f() {} $crate::x::y notcrate::z").is_empty());
}

#[test]
fn a_cycle_is_found_and_shown_with_its_lines() {
    let mut g = Graph::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), format!("src/{a}.rs:1: use crate::{b};"));
    }
    let cycle = find_cycle(&g).expect("a → b → c → a");
    assert_eq!(cycle.first(), cycle.last());
    assert_eq!(cycle.len(), 4);
    let text = describe(&cycle, &g);
    assert!(text.contains("src/c.rs:1: use crate::a;"), "{text}");
    g.get_mut("c").unwrap().remove("a");
    assert_eq!(find_cycle(&g), None);
}

/// The engine's files as module paths relative to `src/sync` (`read`, `output/parquet`;
/// `output` for `output/mod.rs`), each with its source up to its unit tests.
fn engine_files() -> BTreeMap<String, String> {
    let root = src().join("sync");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().with_extension("");
        let mut name = rel.to_string_lossy().into_owned();
        if name == "mod" || name == "tests" || name.ends_with("/tests") {
            continue;
        }
        if let Some(dir) = name.strip_suffix("/mod") {
            name = dir.to_string();
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap()
            .to_string();
        out.insert(name, code);
    }
    out
}

/// Every `crate::sync::…` and `super::…` path of one engine file, resolved to the engine file it
/// names (the longest module prefix of the path), with the line it is on.
fn engine_edges(from: &str, text: &str, files: &BTreeMap<String, String>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let parent: Vec<&str> = from.split('/').collect();
    for (prefix, base) in [
        ("crate::sync::", vec![]),
        ("super::", parent[..parent.len() - 1].to_vec()),
    ] {
        let mut at = 0;
        while let Some(i) = text[at..].find(prefix).map(|i| i + at) {
            at = i + prefix.len();
            if text[..i]
                .chars()
                .next_back()
                .is_some_and(|c| is_ident(c) || c == ':')
            {
                continue;
            }
            let rest = &text[at..];
            // Segments up to the first non-path character; a group `{a, b::c}` names each item.
            let path: String = rest
                .chars()
                .take_while(|c| is_ident(*c) || *c == ':')
                .collect();
            let mut candidates = vec![path.clone()];
            if let Some(group) = rest[path.len()..].strip_prefix('{') {
                let inner = &group[..group.find('}').unwrap_or(group.len())];
                candidates = inner
                    .split(',')
                    .map(|it| format!("{path}{}", it.trim()))
                    .collect();
            }
            for c in candidates {
                let mut segs: Vec<&str> = base.clone();
                segs.extend(c.split("::").filter(|s| !s.is_empty() && *s != "self"));
                for n in (1..=segs.len()).rev() {
                    let name = segs[..n].join("/");
                    if files.contains_key(&name) {
                        if name != from {
                            out.push((name, text[..i].matches('\n').count() + 1));
                        }
                        break;
                    }
                }
            }
        }
    }
    out
}

#[test]
fn the_engine_files_form_no_import_cycle() {
    let files = engine_files();
    let mut graph = Graph::new();
    for (from, text) in &files {
        for (to, line) in engine_edges(from, text, &files) {
            let quote = text
                .lines()
                .nth(line - 1)
                .unwrap_or_default()
                .trim()
                .to_string();
            graph
                .entry(from.clone())
                .or_default()
                .entry(to)
                .or_insert_with(|| format!("src/sync/{from}.rs:{line}: {quote}"));
        }
    }
    assert!(
        graph
            .get("run")
            .is_some_and(|e| e.contains_key("read") && e.contains_key("commit")),
        "the graph misses run → read/commit; is the parser broken? {graph:?}"
    );
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "{}The engine's rooms must not import each other in a circle: move the shared item \
             into the lower one (options, context, output).",
            describe(&cycle, &graph)
        );
    }
}

#[test]
fn log_events_are_written_only_in_the_events_module() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut inline = Vec::new();
    for f in files {
        if f.ends_with("events.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            let macros = ["info!(", "warn!(", "error!(", "debug!(", "trace!("];
            if line.contains("event = \"")
                || macros
                    .iter()
                    .any(|m| line.contains(&format!("tracing::{m}")))
            {
                inline.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        inline.is_empty(),
        "log events belong in src/events.rs (name, level, wording, fields), not inline:\n{}",
        inline.join("\n")
    );
}
