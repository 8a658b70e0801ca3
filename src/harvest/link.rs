//! `Link` header parsing, and the guard that ends a cursor chain which goes round in circles.
//! Hand-written because Greenhouse only ever sends `rel="next"` and the crates for it pull in
//! regex for what a split on ',' and ';' does.

use std::collections::HashSet;

/// Watches one cursor chain: a next link seen before in the chain, or a page identical to the
/// one before it, means the chain would never end (a server bug seen in the wild: 301 requests
/// in 75 s for one page). Keeps a hash per page, so memory stays small for long chains.
#[derive(Debug, Default)]
pub struct ChainGuard {
    seen: HashSet<u64>,
    last_body: Option<u64>,
}

impl ChainGuard {
    /// Checks the page fetched from `url` with its `body` and `next` link; `Err` says why the
    /// chain must end.
    pub fn check(&mut self, url: &str, body: &[u8], next: Option<&str>) -> Result<(), String> {
        self.seen.insert(hash(url.as_bytes()));
        // An empty page repeats harmlessly; two identical pages of records do not.
        if body.trim_ascii().len() > 2 {
            let h = hash(body);
            if self.last_body == Some(h) {
                return Err(
                    "the API repeated the previous page under a new cursor; ending the chain"
                        .into(),
                );
            }
            self.last_body = Some(h);
        }
        if let Some(next) = next
            && self.seen.contains(&hash(next.as_bytes()))
        {
            return Err(
                "the API repeated a cursor it had already sent (its next link points back into the chain); ending the chain"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Not a keyed hash: the guard compares the API's own pages and links, nothing an attacker
/// could craft collisions for to any effect but ending a chain early.
fn hash(bytes: &[u8]) -> u64 {
    twox_hash::XxHash64::oneshot(0, bytes)
}

/// Returns the target of the `rel="next"` link, if any, exactly as sent.
pub fn next_link(header: &str) -> Option<&str> {
    header.split(',').find_map(|part| {
        let part = part.trim();
        let start = part.find('<')?;
        let end = part[start..].find('>')? + start;
        let target = &part[start + 1..end];
        let is_next = part[end + 1..].split(';').any(|p| {
            let p = p.trim();
            let Some(v) = p.strip_prefix("rel=") else {
                return false;
            };
            v.trim_matches('"').split_whitespace().any(|r| r == "next")
        });
        (is_next && !target.is_empty()).then_some(target)
    })
}

#[cfg(test)]
mod tests {
    use super::{ChainGuard, next_link};

    #[test]
    fn a_chain_that_loops_is_ended() {
        let mut g = ChainGuard::default();
        assert!(g.check("u?p=1", b"[1]", Some("u?c=a")).is_ok());
        assert!(g.check("u?c=a", b"[2]", Some("u?c=b")).is_ok());
        // Back to a cursor of the chain.
        assert!(g.check("u?c=b", b"[3]", Some("u?c=a")).is_err());
        // The same page under a new cursor.
        let mut g = ChainGuard::default();
        assert!(g.check("u?p=1", b"[1]", Some("u?c=a")).is_ok());
        assert!(g.check("u?c=a", b"[1]", Some("u?c=b")).is_err());
        // Empty pages may repeat.
        let mut g = ChainGuard::default();
        assert!(g.check("u?c=a", b"[]", Some("u?c=b")).is_ok());
        assert!(g.check("u?c=b", b"[]", None).is_ok());
    }

    #[test]
    fn finds_next() {
        let h = r#"<https://harvest.greenhouse.io/v3/jobs?cursor=abc_-=>; rel="next""#;
        assert_eq!(
            next_link(h),
            Some("https://harvest.greenhouse.io/v3/jobs?cursor=abc_-=")
        );
    }

    #[test]
    fn ignores_other_relations() {
        let h =
            r#"<https://x/v3/jobs?cursor=p>; rel="prev", <https://x/v3/jobs?cursor=n>; rel=next"#;
        assert_eq!(next_link(h), Some("https://x/v3/jobs?cursor=n"));
        assert_eq!(next_link(r#"<https://x/a>; rel="last""#), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage"), None);
    }
}
