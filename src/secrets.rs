//! Secret values and the process-wide scrubber that masks them on every output path.
//!
//! Contract — secrets never reach an output stream, even by mistake:
//! - Secrets are kept out by construction: [`Secret`] never prints its value.
//! - As defence in depth, every secret string the process learns (client secret, its HTTP Basic
//!   encoding, access tokens, the hash salt) is put in a process-wide registry with
//!   [`register`], and every output path — both log formats, the error `main` prints, the panic
//!   hook, the run summary, Airbyte LOG messages — passes through [`scrub`], which replaces each
//!   occurrence with [`MASK`].
//!
//! User-supplied values quoted in a message go through [`quote`] (or a whole message through
//! [`clip`]): scrubbed first, then cut to a readable length and with control characters and
//! bidirectional overrides escaped, so a pasted 64 MB value or a right-to-left override in a
//! stream name can neither flood the terminal nor reorder what it shows. Scrubbing comes first so
//! that a cut can never leave half a secret that [`scrub`] would no longer recognise.
//!
//! A leaf: it imports nothing from the crate, so configuration, logging, the HTTP client and the
//! protocol writers can all use it without depending on one another.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

/// Strings shorter than this are not registered: replacing a 3-letter "secret" everywhere would
/// mangle ordinary log text while protecting nothing (such a value is guessable anyway).
pub const MIN_LEN: usize = 6;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// The registered secrets, longest first (so a secret containing another is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// A secret value that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Adds `secret` to the strings masked on every output path. Very short strings are ignored
/// (see [`MIN_LEN`]); registering the same string twice is harmless.
pub fn register(secret: &str) {
    if secret.chars().count() < MIN_LEN {
        return;
    }
    let mut list = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    if list.iter().any(|s| s == secret) {
        return;
    }
    list.push(secret.to_string());
    list.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    let list = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    scrub_with(text, &list)
}

fn scrub_with<'t>(text: &'t str, secrets: &[String]) -> Cow<'t, str> {
    let mut out = Cow::Borrowed(text);
    for s in secrets {
        if out.contains(s.as_str()) {
            out = Cow::Owned(out.replace(s.as_str(), MASK));
        }
    }
    out
}

/// At most this many characters of a value are quoted in a message ([`quote`]).
pub const QUOTE_MAX: usize = 80;
/// At most this many characters of a whole message are printed ([`clip`] in `main`).
pub const MESSAGE_MAX: usize = 4000;

/// `value` as a message may show it: scrubbed, in double quotes, escaped (see [`clip`]) and cut
/// to [`QUOTE_MAX`] characters, with the length of what was cut said after the quote.
pub fn quote(value: &str) -> String {
    let (shown, cut) = escaped(&scrub(value), QUOTE_MAX, true);
    match cut {
        0 => format!("\"{shown}\""),
        n => format!("\"{shown}…\" ({n} more bytes)"),
    }
}

/// `text` scrubbed, with control characters (other than newlines) and invisible or
/// bidirectional format characters written as `\u{…}`, and cut to `max` characters.
pub fn clip(text: &str, max: usize) -> String {
    let (shown, cut) = escaped(&scrub(text), max, false);
    match cut {
        0 => shown,
        n => format!("{shown}… ({n} more bytes)"),
    }
}

/// Characters that change how the text around them is displayed without being visible
/// themselves: bidirectional marks, embeddings, overrides and isolates, zero-width characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// (the escaped first `max` characters, how many bytes of `text` were left out).
fn escaped(text: &str, max: usize, in_quotes: bool) -> (String, usize) {
    let mut out = String::with_capacity(text.len().min(max * 2));
    for (count, (i, c)) in text.char_indices().enumerate() {
        if count == max {
            return (out, text.len() - i);
        }
        match c {
            '"' | '\\' if in_quotes => {
                out.push('\\');
                out.push(c);
            }
            '\n' if !in_quotes => out.push(c),
            c if c.is_control() || is_invisible_format(c) => {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            }
            c => out.push(c),
        }
    }
    (out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        v
    }

    #[test]
    fn every_occurrence_is_masked_and_other_text_kept() {
        let secrets = list(&["hunter2-secret"]);
        assert_eq!(
            scrub_with("a hunter2-secret b hunter2-secret", &secrets),
            "a *** b ***"
        );
        assert!(matches!(
            scrub_with("nothing here", &secrets),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_secret_containing_another_is_masked_whole() {
        // The Basic encoding case: a longer registered string that contains a shorter one.
        let secrets = list(&["abcdef", "xx-abcdef-yy"]);
        assert_eq!(scrub_with("[xx-abcdef-yy]", &secrets), "[***]");
        assert_eq!(scrub_with("[abcdef]", &secrets), "[***]");
    }

    #[test]
    fn short_strings_are_not_registered() {
        register("abc");
        assert_eq!(scrub("abc abcabc"), "abc abcabc");
        register("registered-in-a-test-0c1d");
        assert_eq!(
            scrub("x registered-in-a-test-0c1d y"),
            format!("x {MASK} y")
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("value-that-must-not-print");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "value-that-must-not-print");
    }

    #[test]
    fn quoted_values_are_cut_escaped_and_scrubbed() {
        assert_eq!(quote("jobs"), "\"jobs\"");
        assert_eq!(
            quote("a\u{202e}b\u{1b}[2J\"c\n"),
            "\"a\\u{202e}b\\u{001b}[2J\\\"c\\u{000a}\""
        );
        let long = "x".repeat(1_000_000);
        let q = quote(&long);
        assert!(q.len() < 120, "{q}");
        assert!(
            q.ends_with(&format!("({} more bytes)", 1_000_000 - QUOTE_MAX)),
            "{q}"
        );
        register("quoted-secret-5e6f7a");
        assert_eq!(quote("quoted-secret-5e6f7a"), "\"***\"");
        assert_eq!(clip("line\none\u{7}", 100), "line\none\\u{0007}");
        assert_eq!(clip("abcdef", 3), "abc… (3 more bytes)");
    }
}
