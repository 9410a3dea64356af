//! The destination a request names: host and port, normalised once so every comparison (CONNECT
//! target vs SNI vs `Host`) is made on the same form.

use std::fmt;
use std::net::IpAddr;

use http::uri::Authority;

/// A host as the agent named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A DNS name, lower-case, without trailing dot.
    Name(String),
    /// An IP literal.
    Ip(IpAddr),
}

impl Host {
    /// Parses a host as written in an authority (`[::1]` brackets allowed).
    pub fn parse(host: &str) -> Result<Host, String> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
        if valid {
            Ok(Host::Name(name))
        } else {
            Err(format!("`{host}` is not a valid host name"))
        }
    }

    /// The host without brackets, as DNS and certificates use it.
    pub fn as_string(&self) -> String {
        match self {
            Host::Name(name) => name.clone(),
            Host::Ip(ip) => ip.to_string(),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Host and port of a destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

impl Target {
    /// Parses an authority; `default_port` applies when it has none (`None`: a port is required,
    /// as in CONNECT).
    pub fn from_authority(
        authority: &Authority,
        default_port: Option<u16>,
    ) -> Result<Target, String> {
        let host = Host::parse(authority.host())?;
        let port = match (authority.port_u16(), default_port) {
            (Some(port), _) => port,
            (None, Some(port)) => port,
            (None, None) => return Err(format!("`{}` has no port", authority.host())),
        };
        if port == 0 {
            return Err(format!("`{}` has port 0", authority.host()));
        }
        Ok(Target { host, port })
    }

    /// Whether `authority` (a `Host` header or `:authority`) names this same destination;
    /// a missing port means `default_port`.
    pub fn same_as(&self, authority: &str, default_port: u16) -> bool {
        match authority.parse::<Authority>() {
            Ok(parsed) => Target::from_authority(&parsed, Some(default_port))
                .is_ok_and(|other| other == *self),
            Err(_) => false,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl Target {
    /// The scheme (`http` or `https`) and destination of an absolute request URI whose path is in
    /// canonical form; the error says what is wrong with it.
    pub fn of_uri(uri: &http::Uri) -> Result<(String, Target), String> {
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let authority = uri.authority().ok_or("request URI has no host")?;
        let target = Target::from_authority(authority, Some(default_port))
            .map_err(|reason| format!("bad request target: {reason}"))?;
        canonical_path(uri.path())
            .map_err(|reason| format!("the request path is not in canonical form: {reason}"))?;
        if scheme != "http" && scheme != "https" {
            return Err(format!("unsupported scheme `{scheme}`"));
        }
        Ok((scheme, target))
    }
}

/// Refuses paths that different servers read differently, so a rule matching `/a/admin/**` cannot
/// be sidestepped by `/a//admin`, `/a/./admin` or `/a/%61dmin`.
pub fn canonical_path(path: &str) -> Result<(), &'static str> {
    if path.contains("//") {
        return Err("empty segment (`//`)");
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("dot segment (`.` or `..`)");
    }
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'%' {
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        let decoded = hex
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or("malformed percent-escape")?;
        if decoded.is_ascii_alphanumeric()
            || matches!(decoded, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\')
        {
            return Err("percent-escape of a character that needs none (or of a separator)");
        }
    }
    Ok(())
}

/// `uri` with its query replaced.
pub fn with_query(uri: &http::Uri, query: &str) -> Result<http::Uri, http::Error> {
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(format!("{}?{query}", uri.path()).parse()?);
    Ok(http::Uri::from_parts(parts)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Result<Target, String> {
        Target::from_authority(&s.parse().unwrap(), None)
    }

    #[test]
    fn parses_names_and_ip_literals() {
        assert_eq!(
            target("API.OpenAI.com.:443").unwrap(),
            Target {
                host: Host::Name("api.openai.com".into()),
                port: 443
            }
        );
        assert_eq!(
            target("[::1]:8443").unwrap().host,
            Host::Ip("::1".parse().unwrap())
        );
        assert_eq!(target("[::1]:8443").unwrap().to_string(), "[::1]:8443");
        assert!(target("example.com").is_err(), "CONNECT needs a port");
        assert!(target("exa!mple.com:443").is_err());
        assert!(target("example.com:0").is_err());
        let err = target("user:hunter2@example.com:0").unwrap_err();
        assert!(
            !err.contains("hunter2"),
            "credentials never echo back: {err}"
        );
    }

    #[test]
    fn same_destination_table() {
        let t = target("api.example.com:443").unwrap();
        let table = [
            ("api.example.com", true),
            ("API.example.com:443", true),
            ("api.example.com.", true),
            ("api.example.com:8443", false),
            ("evil.example.com", false),
            ("", false),
        ];
        for (authority, expected) in table {
            assert_eq!(t.same_as(authority, 443), expected, "{authority:?}");
        }
        let ip = target("[2001:db8::1]:443").unwrap();
        assert!(ip.same_as("[2001:db8::1]", 443));
    }

    #[test]
    fn canonical_path_table() {
        let table = [
            ("/v1/chat/completions", true),
            ("/", true),
            ("/files/a%20b", true),
            ("/q/%E2%9C%93", true),
            ("/echo//admin", false),
            ("/echo/./admin", false),
            ("/echo/../admin", false),
            ("/echo/%61dmin", false),
            ("/echo%2Fadmin", false),
            ("/echo/%zz", false),
            ("/echo/%4", false),
        ];
        for (path, ok) in table {
            assert_eq!(canonical_path(path).is_ok(), ok, "{path}");
        }
    }
}
