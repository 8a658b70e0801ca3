//! `Link` header parsing. Hand-written because Greenhouse only ever sends `rel="next"` and the
//! crates for it pull in regex for what a split on ',' and ';' does.

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
    use super::next_link;

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
