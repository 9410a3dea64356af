//! Host patterns as operators write them in config: `api.openai.com` or `*.example.com`.

use std::fmt;

/// One host pattern, compiled once. Matching is ASCII case-insensitive; a trailing dot is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Matches exactly this host.
    Exact(String),
    /// `*.suffix`: matches any host strictly below `suffix`, not `suffix` itself.
    Subdomains(String),
    /// `*`: matches every host.
    Any,
}

impl HostPattern {
    /// Parses a pattern; rejects empty labels, inner wildcards and characters no host can have.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let lowered = normalize(pattern);
        if pattern.trim() == "*" {
            return Ok(HostPattern::Any);
        }
        let (is_wildcard, rest) = match lowered.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, lowered.clone()),
        };
        let valid_label = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let is_ip = rest.parse::<std::net::IpAddr>().is_ok();
        if !is_ip && (rest.is_empty() || !rest.split('.').all(valid_label)) {
            return Err(format!(
                "`{pattern}` is not a host pattern: use `host.example.com`, `*.example.com` or `*`"
            ));
        }
        Ok(if is_wildcard {
            HostPattern::Subdomains(rest)
        } else {
            HostPattern::Exact(rest)
        })
    }

    /// Whether `host` (any case, optional trailing dot) matches.
    pub fn matches(&self, host: &str) -> bool {
        self.matches_normalized(&normalize(host))
    }

    fn matches_normalized(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(exact) => host == exact,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(host) => f.write_str(host),
            HostPattern::Subdomains(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

fn normalize(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// A list of patterns; matches when any does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPatterns(pub Vec<HostPattern>);

impl HostPatterns {
    /// Whether any pattern matches `host`.
    pub fn matches(&self, host: &str) -> bool {
        self.matches_normalized(&normalize(host))
    }

    /// Like [`HostPatterns::matches`] for a host already lower-case and without trailing dot (as
    /// the proxy's targets are), without allocating.
    pub fn matches_normalized(&self, host: &str) -> bool {
        self.0.iter().any(|p| p.matches_normalized(host))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_table() {
        let table = [
            ("api.openai.com", "api.openai.com", true),
            ("api.openai.com", "API.OpenAI.com.", true),
            ("api.openai.com", "x.api.openai.com", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("*.example.com", "badexample.com", false),
            ("*", "anything.at.all", true),
            ("127.0.0.1", "127.0.0.1", true),
        ];
        for (pattern, host, expected) in table {
            let compiled = HostPattern::parse(pattern).expect(pattern);
            assert_eq!(compiled.matches(host), expected, "{pattern} vs {host}");
        }
    }

    #[test]
    fn rejects_malformed_patterns() {
        for bad in ["", "a..b", "*.", "exa*mple.com", "a/b", "*.*.com"] {
            assert!(
                HostPattern::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}
