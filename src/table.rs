//! Plain-text tables for terminal output (`streams`, `check`, `sync --dry-run`, the run summary).
//!
//! A leaf: it imports nothing from the crate, so the engine's run summary can render a table
//! without depending on the documentation generator (`docs`).

use std::fmt::Write;

/// A plain-text table: columns separated by two spaces, padded to the widest cell; the columns
/// listed in `right` are right-aligned (numbers).
pub fn text_table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                let pad = " ".repeat(w.saturating_sub(c.chars().count()));
                if right.contains(&i) {
                    format!("{pad}{c}")
                } else {
                    format!("{c}{pad}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = String::new();
    writeln!(out, "{}", line(&mut header.iter().copied())).unwrap();
    for r in rows {
        writeln!(out, "{}", line(&mut r.iter().map(String::as_str))).unwrap();
    }
    out
}
