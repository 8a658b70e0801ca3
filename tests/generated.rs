//! Generated artefacts must never drift from the stream declarations: `catalog.json` is the
//! committed output of `greenhouse-extract discover`, and the README's stream table is the output
//! of `greenhouse-extract streams --markdown` (regenerate with `make catalog readme`).

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_greenhouse-extract"))
        .args(args)
        .output()
        .expect("run greenhouse-extract");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn catalog_json_matches_discover() {
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/catalog.json"))
        .expect("catalog.json at the repository root");
    let generated = run(&["discover"]);
    assert!(
        committed == generated,
        "catalog.json differs from `greenhouse-extract discover`; run `make catalog` and commit it"
    );
}

#[test]
fn catalog_lists_every_declared_stream_with_its_key() {
    let catalog: serde_json::Value = serde_json::from_str(&run(&["discover"])).unwrap();
    let streams = catalog["streams"].as_array().unwrap();
    assert!(streams.len() >= 70, "only {} streams", streams.len());
    for s in streams {
        assert_eq!(
            s["key_properties"],
            serde_json::json!(["id"]),
            "{}",
            s["stream"]
        );
        assert!(s["schema"]["properties"]["id"].is_object());
    }
    let airbyte: serde_json::Value =
        serde_json::from_str(&run(&["discover", "--format", "airbyte"])).unwrap();
    assert_eq!(airbyte["streams"].as_array().unwrap().len(), streams.len());
}

fn readme_section(name: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let begin = format!("<!-- {name}:begin -->\n");
    let end = format!("<!-- {name}:end -->");
    let a = readme.find(&begin).expect("begin marker") + begin.len();
    let b = readme.find(&end).expect("end marker");
    readme[a..b].to_string()
}

#[test]
fn readme_stream_table_matches_the_registry() {
    assert!(
        readme_section("streams") == run(&["streams", "--markdown"]),
        "the README stream table differs from `greenhouse-extract streams --markdown`; run `make readme`"
    );
}

#[test]
fn readme_config_reference_matches_the_schema() {
    assert!(
        readme_section("config") == run(&["spec", "--markdown"]),
        "the README configuration reference differs from `greenhouse-extract spec --markdown`; run `make readme`"
    );
}

#[test]
fn spec_prints_the_config_schema_with_fixed_keys() {
    let schema: serde_json::Value = serde_json::from_str(&run(&["spec"])).unwrap();
    for key in [
        "client_id",
        "client_secret",
        "api_url",
        "token_url",
        "destination",
    ] {
        assert!(
            schema["properties"][key]["description"].is_string(),
            "config key {key} missing or undocumented"
        );
    }
}

#[test]
fn the_example_config_documents_every_key_and_parses_when_uncommented() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/config.toml"))
            .expect("examples/config.toml");
    assert!(
        committed == run(&["spec", "--example"]),
        "examples/config.toml differs from `greenhouse-extract spec --example`; run `make readme` and commit it"
    );
    let schema: serde_json::Value = serde_json::from_str(&run(&["spec"])).unwrap();
    let keys: Vec<&String> = schema["properties"].as_object().unwrap().keys().collect();
    let uncommented: String = committed
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("# ")?;
            keys.iter()
                .any(|k| l.starts_with(&format!("{k} = ")))
                .then(|| format!("{l}\n"))
        })
        .collect();
    for k in &keys {
        assert!(
            uncommented.contains(&format!("{k} = ")),
            "examples/config.toml has no line for `{k}`"
        );
    }
    // Every example value has the key's type: the real loader (deny_unknown_fields) reads it.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &uncommented).unwrap();
    let file = greenhouse_extract::config::ConfigFile::load(&path)
        .unwrap_or_else(|e| panic!("the uncommented example does not load: {e}\n{uncommented}"));
    assert_eq!(file.per_page, Some(500));
}

#[test]
fn completions_and_the_man_page_are_generated_from_the_command_line() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        assert!(
            script.contains("sync") && script.contains("destination"),
            "{shell} completions miss subcommands or flags"
        );
    }
    let man = run(&["man"]);
    assert!(man.contains(".TH greenhouse-extract 1"), "{man}");
    for sub in ["sync", "check", "state", "airbyte"] {
        assert!(man.contains(sub), "the man page does not mention `{sub}`");
    }
}
