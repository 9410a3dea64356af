//! Routes: a path prefix names an upstream origin; the rest of the path goes after it verbatim.
//! Built in: `/openai`, `/anthropic`, `/gemini` and Azure OpenAI (`/azure/<resource>`, or `/azure`
//! for one configured resource); a configured route with the same prefix replaces a built-in one.

use super::GatewayError;

/// Where a route's requests go: an `https` origin and an optional base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `host` or `host:port`.
    pub authority: String,
    /// A path put before the rest of the request's (`""` or `/base`, never ending in `/`).
    pub base: String,
}

/// One route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The path prefix (`/openai`), whole segments, no trailing `/`.
    pub prefix: String,
    /// Where it goes.
    pub upstream: Upstream,
}

/// Every route of the gateway, longest prefix first.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// `/azure/<resource>` names the Azure OpenAI resource in the path.
    azure_by_path: bool,
}

/// The built-in routes.
const BUILT_IN: [(&str, &str); 3] = [
    ("/openai", "api.openai.com"),
    ("/anthropic", "api.anthropic.com"),
    ("/gemini", "generativelanguage.googleapis.com"),
];

/// The prefix of Azure OpenAI routes.
const AZURE: &str = "/azure";

impl Upstream {
    /// Parses `https://host[:port][/base]`; only `https`: a brokered key never travels in clear.
    pub fn parse(text: &str) -> Result<Upstream, String> {
        let uri: http::Uri = text
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(format!("`{text}` is not an https:// URL"));
        }
        let authority = uri
            .authority()
            .filter(|a| !a.as_str().contains('@') && !a.host().is_empty())
            .ok_or_else(|| format!("`{text}` needs a host (and no user name)"))?;
        if uri.query().is_some() || text.contains('#') {
            return Err(format!("`{text}` has a query or fragment"));
        }
        let base = uri.path().trim_end_matches('/');
        if !base.is_empty() {
            crate::proxy::target::canonical_path(base)
                .map_err(|reason| format!("`{text}`: path not in canonical form: {reason}"))?;
        }
        Ok(Upstream {
            authority: authority.as_str().to_ascii_lowercase(),
            base: base.to_string(),
        })
    }
}

/// Checks a configured prefix: `/` and whole segments of unreserved characters.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    let segments = prefix.strip_prefix('/').ok_or("a prefix starts with `/`")?;
    for segment in segments.split('/') {
        let plain = segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if segment.is_empty() || segment == "." || segment == ".." || !plain {
            return Err(format!(
                "`{prefix}` is not a prefix like /github (segments of letters, digits, - _ . ~; no trailing /)"
            ));
        }
    }
    Ok(())
}

impl RouteTable {
    /// The built-in routes, with `configured` ones replacing those of the same prefix; with an
    /// `azure_resource`, `/azure` goes to that resource only.
    pub fn new(configured: Vec<Route>, azure_resource: Option<&str>) -> RouteTable {
        let mut routes = configured;
        let built_in = BUILT_IN.iter().map(|(prefix, host)| Route {
            prefix: prefix.to_string(),
            upstream: Upstream {
                authority: host.to_string(),
                base: String::new(),
            },
        });
        let azure = azure_resource.map(|resource| Route {
            prefix: AZURE.to_string(),
            upstream: azure_upstream(resource),
        });
        for route in built_in.chain(azure) {
            if !routes.iter().any(|r| r.prefix == route.prefix) {
                routes.push(route);
            }
        }
        let azure_by_path = !routes.iter().any(|r| r.prefix == AZURE);
        routes.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        RouteTable {
            routes,
            azure_by_path,
        }
    }

    /// Whether `/azure` itself is a route (one resource, configured or by `azure_resource`), so
    /// an Azure OpenAI endpoint without a resource in it reaches it.
    pub fn azure_is_one_route(&self) -> bool {
        !self.azure_by_path
    }

    /// The upstream and path a request path (canonical, checked before) goes to.
    pub fn resolve(&self, path: &str) -> Result<(Upstream, String), GatewayError> {
        for route in &self.routes {
            if let Some(rest) = strip_segments(path, &route.prefix) {
                let path = format!("{}{rest}", route.upstream.base);
                return Ok((route.upstream.clone(), or_root(path)));
            }
        }
        if self.azure_by_path
            && let Some(rest) = strip_segments(path, AZURE)
        {
            let rest = rest.strip_prefix('/').unwrap_or_default();
            let (resource, after) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if is_azure_resource(resource) {
                return Ok((azure_upstream(resource), or_root(after.to_string())));
            }
        }
        Err(GatewayError::NoRoute(self.prefixes()))
    }

    /// The prefixes, for the 404 that names them.
    pub fn prefixes(&self) -> String {
        let mut names: Vec<String> = self.routes.iter().map(|r| r.prefix.clone()).collect();
        if self.azure_by_path {
            names.push(format!("{AZURE}/<resource>"));
        }
        names.sort();
        names.join(", ")
    }
}

/// `path` after `prefix` when the prefix is whole segments of it.
fn strip_segments<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn or_root(path: String) -> String {
    if path.is_empty() {
        "/".to_string()
    } else {
        path
    }
}

/// An Azure OpenAI resource name as it goes into `<resource>.openai.azure.com`: one DNS label.
fn is_azure_resource(name: &str) -> bool {
    (2..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Checks a configured Azure resource name.
pub fn check_azure_resource(name: &str) -> Result<(), String> {
    if is_azure_resource(name) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not an Azure resource name (lower-case letters, digits and -)"
        ))
    }
}

fn azure_upstream(resource: &str) -> Upstream {
    Upstream {
        authority: format!("{resource}.openai.azure.com"),
        base: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let github = Route {
            prefix: "/github".into(),
            upstream: Upstream::parse("https://api.github.com").unwrap(),
        };
        let local = Route {
            prefix: "/openai".into(),
            upstream: Upstream::parse("https://localhost:8443/base/").unwrap(),
        };
        RouteTable::new(vec![github, local], None)
    }

    fn resolved(path: &str) -> Result<(String, String), GatewayError> {
        table()
            .resolve(path)
            .map(|(upstream, path)| (upstream.authority, path))
    }

    #[test]
    fn a_prefix_names_the_upstream_and_the_rest_goes_after_it() {
        let got = |host: &str, path: &str| Ok((host.to_string(), path.to_string()));
        assert_eq!(
            resolved("/anthropic/v1/messages"),
            got("api.anthropic.com", "/v1/messages")
        );
        assert_eq!(
            resolved("/gemini/v1beta/models/g:generateContent"),
            got(
                "generativelanguage.googleapis.com",
                "/v1beta/models/g:generateContent"
            )
        );
        assert_eq!(resolved("/github"), got("api.github.com", "/"));
        assert_eq!(
            resolved("/openai/v1/chat/completions"),
            got("localhost:8443", "/base/v1/chat/completions"),
            "a configured route replaces the built-in one"
        );
        assert_eq!(
            resolved("/azure/my-res/openai/deployments/d/chat/completions"),
            got(
                "my-res.openai.azure.com",
                "/openai/deployments/d/chat/completions"
            )
        );
    }

    #[test]
    fn only_whole_segments_match_and_azure_names_are_one_label() {
        for path in [
            "/openaix/v1",
            "/githubusercontent/x",
            "/azure/evil.com/x",
            "/azure/A/x",
            "/azure/-x/y",
            "/other",
            "/",
        ] {
            assert!(
                matches!(resolved(path), Err(GatewayError::NoRoute(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn a_configured_azure_resource_takes_the_azure_prefix() {
        let table = RouteTable::new(Vec::new(), Some("corp"));
        let (upstream, path) = table.resolve("/azure/openai/models").unwrap();
        assert_eq!(upstream.authority, "corp.openai.azure.com");
        assert_eq!(path, "/openai/models");
    }

    #[test]
    fn upstreams_and_prefixes_are_checked() {
        assert!(Upstream::parse("http://api.github.com").is_err());
        assert!(Upstream::parse("https://user@api.github.com").is_err());
        assert!(Upstream::parse("https://api.github.com/?a=b").is_err());
        assert!(Upstream::parse("https://api.github.com/a/../b").is_err());
        assert!(check_prefix("/github").is_ok());
        assert!(check_prefix("/a/b").is_ok());
        for bad in ["github", "/github/", "/", "/a//b", "/a/../b", "/a%2f"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
