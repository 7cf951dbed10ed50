//! The syntax rules for names and ids that cross the wire, as plain functions.
//!
//! The server wraps them in validated newtypes (`shared::domain::ids`); the agent applies the
//! same functions before it acknowledges an event, so nothing an installation accepts is refused
//! later by the server for its shape.

/// Whether `raw` is a feature name: 1..=64 characters of `[a-z0-9_]`, starting with a letter.
pub fn is_feature_name(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw.as_bytes()[0].is_ascii_lowercase()
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether `raw` is 1..=128 characters of `[A-Za-z0-9._:-]`: the charset of client-chosen ids
/// (installation ids, usage event ids), which fits UUIDs, host names and k8s pod names.
pub fn is_client_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// The canonical form of a DNS host name (lower case, no trailing dot), or `None` when `raw` is
/// not one. Labels are 1..=63 chars of `[a-z0-9-]` not starting or ending with `-`; at most 253
/// chars in all.
pub fn canonical_hostname(raw: &str) -> Option<String> {
    let name = raw.strip_suffix('.').unwrap_or(raw).to_ascii_lowercase();
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(valid_label);
    ok.then_some(name)
}

fn valid_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether canonical host `host` lies strictly below canonical host `base` on a label boundary:
/// what `*.base` allows (`a.base`, `a.b.base`; not `base` itself, not `evilbase`).
pub fn is_below(host: &str, base: &str) -> bool {
    host.strip_suffix(base)
        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// Whether `domain` is allowed by `patterns` (exact host names or `*.` wildcards; empty: any
/// domain), case-insensitively and ignoring a trailing dot. With restrictions, a request that
/// names no domain is refused.
pub fn domain_allowed<P: AsRef<str>>(patterns: &[P], domain: Option<&str>) -> bool {
    if patterns.is_empty() {
        return true;
    }
    let Some(domain) = domain else { return false };
    let host = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    patterns.iter().any(|pattern| {
        let pattern = pattern.as_ref().to_ascii_lowercase();
        match pattern.strip_prefix("*.") {
            Some(base) => is_below(&host, base),
            None => host == pattern,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_names_are_lower_snake_case_starting_with_a_letter() {
        for ok in ["workflows", "api_access", "a1", &"a".repeat(64)] {
            assert!(is_feature_name(ok), "{ok}");
        }
        for bad in ["", "1a", "_a", "Api", "a-b", &"a".repeat(65)] {
            assert!(!is_feature_name(bad), "{bad}");
        }
    }

    #[test]
    fn wildcards_match_on_label_boundaries_only() {
        assert!(is_below("a.acme.io", "acme.io"));
        assert!(!is_below("acme.io", "acme.io"));
        assert!(!is_below("evilacme.io", "acme.io"));
        assert!(domain_allowed(&["*.acme.io"], Some("App.Acme.io.")));
        assert!(!domain_allowed(&["acme.com"], None));
        assert!(domain_allowed::<&str>(&[], None));
    }
}
