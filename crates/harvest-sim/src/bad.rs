//! Bad data on purpose (`--bad-record RES:KIND[:ARG]`): specific malformed records or responses
//! that a real Greenhouse account can produce, injected into every page of one resource, so a
//! client's handling of each can be tested over a real socket.
//!
//! Contract: a rule only changes 200 list responses of its resource; record rules change the
//! first record of each page, as text (the generators' JSON is left alone), and a page whose
//! first record lacks the targeted field is served unchanged. Rules are applied in the order
//! given. The truth export (`/_sim/truth`) is never changed: it is what the API *meant*.

use std::io::Write as _;
use std::str::FromStr;

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadKind {
    /// `surrogate:FIELD`: the string FIELD starts with a lone UTF-16 high surrogate escape
    /// (`\ud83d`, a truncated emoji).
    Surrogate(String),
    /// `no_id`: the record has no `id` key.
    NoId,
    /// `text_id`: the record's `id` is the string `"abc"`.
    TextId,
    /// `garbage`: the page is not JSON at all, whatever the client does (an unquoted word
    /// after the first record's `{`, quoting the simulator's client secret).
    Garbage,
    /// `nanos:FIELD`: the timestamp FIELD gets nanosecond digits (`.832` → `.832456789`).
    Nanos(String),
    /// `no_offset:FIELD`: the timestamp FIELD loses its `Z`.
    NoOffset(String),
    /// `number_text:FIELD`: the integer FIELD is sent as a zero-padded string (`7` → `"007"`).
    NumberText(String),
    /// `gzip_bomb:MIB`: the body is gzip-encoded with MIB mebibytes of whitespace inside
    /// (a valid JSON array once inflated; about 1/1000 of that on the wire).
    GzipBomb(usize),
    /// `redirect`: a 301 to the same path on another origin (`localhost` instead of
    /// `127.0.0.1`), where `/_sim/elsewhere` answers a JSON array without asking for a token.
    Redirect,
}

/// One `--bad-record` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub resource: String,
    pub kind: BadKind,
}

impl FromStr for BadRecord {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.splitn(3, ':');
        let resource = parts.next().unwrap_or_default().to_string();
        let kind = parts.next().unwrap_or_default();
        let arg = parts.next().map(str::to_string);
        let field = |arg: Option<String>| {
            arg.filter(|a| !a.is_empty())
                .ok_or_else(|| format!("bad record kind `{kind}` needs a field: RES:{kind}:FIELD"))
        };
        let kind = match kind {
            "surrogate" => BadKind::Surrogate(field(arg)?),
            "no_id" => BadKind::NoId,
            "text_id" => BadKind::TextId,
            "garbage" => BadKind::Garbage,
            "nanos" => BadKind::Nanos(field(arg)?),
            "no_offset" => BadKind::NoOffset(field(arg)?),
            "number_text" => BadKind::NumberText(field(arg)?),
            "gzip_bomb" => BadKind::GzipBomb(
                arg.as_deref()
                    .unwrap_or("200")
                    .parse()
                    .map_err(|_| "gzip_bomb takes a size in MiB: RES:gzip_bomb:200".to_string())?,
            ),
            "redirect" => BadKind::Redirect,
            other => {
                return Err(format!(
                    "unknown bad record kind `{other}` (expected surrogate, no_id, text_id, garbage, nanos, no_offset, number_text, gzip_bomb, redirect)"
                ));
            }
        };
        if resource.is_empty() {
            return Err("a bad record rule is RES:KIND[:ARG]".into());
        }
        Ok(BadRecord { resource, kind })
    }
}

/// How a page is served after the rules.
pub(crate) enum Served {
    Body(Vec<u8>),
    /// The body, gzip-encoded (`Content-Encoding: gzip`).
    Gzip(Vec<u8>),
    /// A 301 to this path on the other origin.
    Redirect,
}

/// Applies the rules of `resource` to a page body.
pub(crate) fn apply(
    rules: &[BadRecord],
    resource: &str,
    mut text: String,
    client_secret: &str,
) -> Served {
    let mut gzip = None;
    for rule in rules.iter().filter(|r| r.resource == resource) {
        match &rule.kind {
            BadKind::Redirect => return Served::Redirect,
            BadKind::GzipBomb(mib) => gzip = Some(*mib),
            kind => text = record_rule(kind, text, client_secret),
        }
    }
    match gzip {
        None => Served::Body(text.into_bytes()),
        Some(mib) => {
            // Whitespace before the closing bracket keeps the inflated body a valid array.
            let Some(close) = text.rfind(']') else {
                return Served::Body(text.into_bytes());
            };
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            let spaces = vec![b' '; 1 << 20];
            let _ = enc.write_all(&text.as_bytes()[..close]);
            for _ in 0..mib {
                let _ = enc.write_all(&spaces);
            }
            let _ = enc.write_all(&text.as_bytes()[close..]);
            Served::Gzip(enc.finish().unwrap_or_default())
        }
    }
}

/// The byte range of the first record (`{` … its matching `}`), found by a small scanner that
/// knows JSON strings.
fn first_record(text: &str) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let start = text.find('{')?;
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    for (i, &c) in b.iter().enumerate().skip(start) {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some((start, i + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the value of top-level `field` starts inside the first record `[s, e)`. Generators
/// write nested objects after scalars, and a nested key of the same name is an accepted risk
/// of a test tool.
fn value_at(text: &str, (s, e): (usize, usize), field: &str) -> Option<usize> {
    let key = format!("\"{field}\":");
    text[s..e].find(&key).map(|i| s + i + key.len())
}

fn record_rule(kind: &BadKind, mut text: String, client_secret: &str) -> String {
    let Some(rec) = first_record(&text) else {
        return text;
    };
    match kind {
        BadKind::Surrogate(f) => {
            if let Some(v) = value_at(&text, rec, f)
                && text[v..].starts_with('"')
            {
                text.insert_str(v + 1, "\\ud83d");
            }
        }
        BadKind::NoId | BadKind::TextId => {
            if let Some(v) = value_at(&text, rec, "id") {
                let end = v + text[v..].find([',', '}']).unwrap_or(0);
                if matches!(kind, BadKind::NoId) {
                    // `"id":N,` (or `,"id":N` at the end of the record) goes.
                    let key = v - "\"id\":".len();
                    if text[end..].starts_with(',') {
                        text.replace_range(key..end + 1, "");
                    } else {
                        let comma = text[..key].rfind(',').unwrap_or(key);
                        text.replace_range(comma..end, "");
                    }
                } else {
                    text.replace_range(v..end, "\"abc\"");
                }
            }
        }
        BadKind::Garbage => {
            text.insert_str(rec.0 + 1, &format!("oops {client_secret} "));
        }
        BadKind::Nanos(f) | BadKind::NoOffset(f) => {
            if let Some(v) = value_at(&text, rec, f)
                && text[v..].starts_with('"')
                && let Some(z) = text[v + 1..].find('"').map(|q| v + q)
                && text[..=z].ends_with('Z')
            {
                if matches!(kind, BadKind::Nanos(_)) {
                    text.insert_str(z, "456789");
                } else {
                    text.remove(z);
                }
            }
        }
        BadKind::NumberText(f) => {
            if let Some(v) = value_at(&text, rec, f) {
                let end = v + text[v..].find([',', '}']).unwrap_or(0);
                let n = &text[v..end];
                if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) {
                    let padded = format!("\"00{n}\"");
                    text.replace_range(v..end, &padded);
                }
            }
        }
        BadKind::GzipBomb(_) | BadKind::Redirect => {}
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(s: &str) -> Vec<BadRecord> {
        vec![s.parse().unwrap()]
    }

    fn body(rules: &[BadRecord], page: &str) -> String {
        match apply(rules, "r", page.to_string(), "sekret") {
            Served::Body(b) => String::from_utf8(b).unwrap(),
            _ => panic!("not a body"),
        }
    }

    const PAGE: &str =
        r#"[{"id":7,"name":"a\"}","at":"2024-01-01T00:00:00.123Z","o":{"id":1}},{"id":6}]"#;

    #[test]
    fn record_rules_change_the_first_record_only() {
        assert_eq!(
            body(&rule("r:surrogate:name"), PAGE),
            PAGE.replace(r#""name":""#, r#""name":"\ud83d"#)
        );
        assert_eq!(
            body(&rule("r:no_id"), PAGE),
            PAGE.replacen(r#""id":7,"#, "", 1)
        );
        assert_eq!(
            body(&rule("r:text_id"), PAGE),
            PAGE.replacen(r#""id":7"#, r#""id":"abc""#, 1)
        );
        assert_eq!(
            body(&rule("r:nanos:at"), PAGE),
            PAGE.replace(".123Z", ".123456789Z")
        );
        assert_eq!(
            body(&rule("r:no_offset:at"), PAGE),
            PAGE.replace(".123Z", ".123")
        );
        assert_eq!(
            body(&rule("r:number_text:id"), PAGE),
            PAGE.replacen(r#""id":7"#, r#""id":"007""#, 1)
        );
        let g = body(&rule("r:garbage"), PAGE);
        assert!(g.starts_with("[{oops sekret \"id\":7"), "{g}");
        assert!(serde_json::from_str::<serde_json::Value>(&g).is_err());
        // Other resources are untouched.
        assert_eq!(body(&rule("q:no_id"), PAGE), PAGE);
    }

    #[test]
    fn a_gzip_bomb_inflates_to_a_valid_array() {
        let Served::Gzip(z) = apply(&rule("r:gzip_bomb:2"), "r", PAGE.to_string(), "") else {
            panic!()
        };
        assert!(z.len() < 64 << 10);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&z[..]), &mut out).unwrap();
        assert_eq!(out.len(), PAGE.len() + (2 << 20));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    #[test]
    fn rules_parse_and_explain_mistakes() {
        assert_eq!(
            "jobs:gzip_bomb".parse::<BadRecord>().unwrap().kind,
            BadKind::GzipBomb(200)
        );
        assert!(
            "jobs:surrogate"
                .parse::<BadRecord>()
                .unwrap_err()
                .contains("needs a field")
        );
        assert!(
            "jobs:nope"
                .parse::<BadRecord>()
                .unwrap_err()
                .contains("unknown")
        );
    }
}
