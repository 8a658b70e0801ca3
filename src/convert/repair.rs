//! Lenient decoding of lone UTF-16 surrogate escapes (`"\ud83d"`: half of an emoji, cut by a
//! truncating client upstream of Greenhouse), which serde_json refuses in strings.
//!
//! Contract: only a page that failed to parse is scanned (the happy path pays nothing). Each
//! lone surrogate escape is overwritten in place by `\ufffd` — the same six bytes — so the
//! repaired text has the original's length and every byte offset still points at the same
//! value: a JSON column's text can be taken back from the original body by offset, and each
//! repaired string literal is known by its span. Escaped pairs (`\ud83d\ude00`) are left alone.

use std::collections::HashMap;

/// A page text with its lone surrogate escapes replaced.
pub(crate) struct Repaired {
    pub(crate) text: String,
    /// String literals (quotes included) that held at least one lone surrogate.
    pub(crate) spans: Vec<(usize, usize)>,
}

/// What the converter needs to keep the original of each repaired value.
pub(crate) struct Repairs {
    /// A repaired string's decoded value → its source text as sent (between the quotes,
    /// escapes as written). Two originals repairing to one value keep the first: both hold
    /// U+FFFD at the same places and differ only in which half of a pair was sent.
    strings: HashMap<String, String>,
    spans: Vec<(usize, usize)>,
    original: String,
    /// Address of the repaired text the records borrow from (for offsets of raw values).
    base: usize,
}

impl Repairs {
    pub(crate) fn new(original: &str, repaired: &Repaired) -> Repairs {
        let strings = repaired
            .spans
            .iter()
            .filter_map(|&(s, e)| {
                let decoded: String = serde_json::from_str(&repaired.text[s..e]).ok()?;
                Some((decoded, original[s + 1..e - 1].to_string()))
            })
            .collect();
        Repairs {
            strings,
            spans: repaired.spans.clone(),
            original: original.to_string(),
            base: repaired.text.as_ptr() as usize,
        }
    }

    /// The source text of `s` as sent, when `s` is a repaired string.
    pub(crate) fn original_of(&self, s: &str) -> Option<&str> {
        if !s.contains('\u{FFFD}') {
            return None;
        }
        self.strings.get(s).map(String::as_str)
    }

    /// The original text of a raw value borrowed from the repaired text (same offsets).
    pub(crate) fn original_raw<'t>(&'t self, raw: &'t str) -> &'t str {
        let start = (raw.as_ptr() as usize).wrapping_sub(self.base);
        let end = start.wrapping_add(raw.len());
        let touched = self.spans.iter().any(|&(s, e)| s < end && start < e);
        match self.original.get(start..end) {
            Some(original) if touched => original,
            _ => raw,
        }
    }
}

/// Replaces every lone surrogate escape in `text`; `None` when there is none.
pub(crate) fn lone_surrogates(text: &str) -> Option<Repaired> {
    let b = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut spans = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let start = i;
        let mut touched = false;
        i += 1;
        while i < b.len() && b[i] != b'"' {
            if b[i] != b'\\' {
                i += 1;
                continue;
            }
            match escape_u(b, i) {
                Some(0xD800..=0xDBFF) if matches!(escape_u(b, i + 6), Some(0xDC00..=0xDFFF)) => {
                    i += 12;
                }
                Some(0xD800..=0xDFFF) => {
                    out.get_or_insert_with(|| b.to_vec())[i..i + 6].copy_from_slice(b"\\ufffd");
                    touched = true;
                    i += 6;
                }
                _ => i += 2,
            }
        }
        i += 1;
        if touched {
            spans.push((start, i.min(b.len())));
        }
    }
    let out = out?;
    // Only ASCII was overwritten with ASCII: still UTF-8.
    let text = String::from_utf8(out).ok()?;
    Some(Repaired { text, spans })
}

/// The code unit of a `\uXXXX` escape at `i`.
fn escape_u(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i) != Some(&b'\\') || b.get(i + 1) != Some(&b'u') {
        return None;
    }
    let hex = std::str::from_utf8(b.get(i + 2..i + 6)?).ok()?;
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_lone_surrogates_and_keeps_pairs_and_offsets() {
        let text = r#"[{"a":"\ud83dZo\u00eb","b":"\ud83d\ude00","c":"x\\ud800","d":"\udc00"}]"#;
        let r = lone_surrogates(text).unwrap();
        assert_eq!(r.text.len(), text.len());
        assert_eq!(
            r.text,
            r#"[{"a":"\ufffdZo\u00eb","b":"\ud83d\ude00","c":"x\\ud800","d":"\ufffd"}]"#
        );
        assert_eq!(r.spans.len(), 2);
        let rep = Repairs::new(text, &r);
        assert_eq!(rep.original_of("\u{FFFD}Zoë"), Some(r"\ud83dZo\u00eb"));
        assert_eq!(rep.original_of("\u{FFFD}"), Some(r"\udc00"));
        assert_eq!(rep.original_of("Zoë"), None);
        assert!(lone_surrogates(r#"[{"b":"\ud83d\ude00"}]"#).is_none());
    }
}
