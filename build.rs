//! Embeds every stream declaration in `streams/` into the binary, so an installed binary needs no
//! files beside it. The generated file is a sorted list of `(file name, contents)` pairs.
use std::{env, fs, path::Path};

fn main() {
    let dir = Path::new("streams");
    println!("cargo:rerun-if-changed=streams");
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("streams/ directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    let mut out = String::from("pub static EMBEDDED: &[(&str, &str)] = &[\n");
    for n in &names {
        println!("cargo:rerun-if-changed=streams/{n}");
        let abs = fs::canonicalize(dir.join(n)).expect("declaration path");
        out.push_str(&format!(
            "    ({n:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
    }
    out.push_str("];\n");
    let dest = Path::new(&env::var("OUT_DIR").unwrap()).join("streams_embedded.rs");
    fs::write(dest, out).expect("write streams_embedded.rs");
}
