//! The destination a request names: host and port, normalised once so every comparison (CONNECT
//! target vs SNI vs `Host`) is made on the same form.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

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
    /// Parses a host as written in an authority (`[::1]` brackets allowed). An IP literal is
    /// canonicalised once, here, in every spelling a resolver accepts (`0x08080808`, `134744072`,
    /// `8.8.2056`, `010.0.0.1`, `::ffff:8.8.8.8`), so rules, the network guard and certificates see
    /// the one address it is; a host that ends in a number but is no address is refused.
    pub fn parse(host: &str) -> Result<Host, String> {
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(canonical_ip(ip)));
        }
        let name = bare.trim_end_matches('.').to_ascii_lowercase();
        if ends_in_number(&name) {
            return numeric_ipv4(&name)
                .map(|ip| Host::Ip(IpAddr::V4(ip)))
                .ok_or_else(|| format!("`{host}` is neither a host name nor an IP address"));
        }
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

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is the IPv4 address it maps.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the last label of `name` is a number (decimal, or hex with `0x`): then the name is an
/// IPv4 address or nothing (as the WHATWG URL standard and `inet_aton` read it), never a DNS name.
fn ends_in_number(name: &str) -> bool {
    let last = name.rsplit('.').next().unwrap_or_default();
    if let Some(hex) = last.strip_prefix("0x") {
        return hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit())
}

/// An IPv4 address in any form `inet_aton` accepts: one to four parts, each decimal, octal
/// (leading `0`) or hex (`0x`); the last part fills the bytes the others leave.
fn numeric_ipv4(name: &str) -> Option<Ipv4Addr> {
    let parts: Vec<u64> = name
        .split('.')
        .map(number_part)
        .collect::<Option<Vec<u64>>>()?;
    let (last, leading) = parts.split_last()?;
    if leading.len() > 3 || leading.iter().any(|part| *part > 255) {
        return None;
    }
    let last_bits = 8 * (4 - leading.len() as u32);
    if *last >= 1u64 << last_bits {
        return None;
    }
    let high = leading
        .iter()
        .enumerate()
        .fold(0u64, |acc, (i, part)| acc | (part << (24 - 8 * i as u32)));
    u32::try_from(high | last).ok().map(Ipv4Addr::from)
}

/// One part of a numeric IPv4 address; at most 32 bits (longer numbers are refused, not wrapped).
fn number_part(part: &str) -> Option<u64> {
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x") {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (&part[1..], 8)
    } else {
        (part, 10)
    };
    if part.is_empty() || digits.len() > 32 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, radix)
        .ok()
        .filter(|n| *n <= u64::from(u32::MAX))
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
    fn numeric_hosts_are_canonical_ip_addresses() {
        let table = [
            ("8.8.8.8", Some("8.8.8.8")),
            ("0x08080808", Some("8.8.8.8")),
            ("0X08080808", Some("8.8.8.8")),
            ("134744072", Some("8.8.8.8")),
            ("8.8.2056", Some("8.8.8.8")),
            ("8.526344", Some("8.8.8.8")),
            ("010.010.010.010", Some("8.8.8.8")),
            ("0x8.0x8.0x8.0x8", Some("8.8.8.8")),
            ("127.1", Some("127.0.0.1")),
            ("0177.0.0.1", Some("127.0.0.1")),
            ("0", Some("0.0.0.0")),
            ("8.8.8.8.", Some("8.8.8.8")),
            ("[::ffff:8.8.8.8]", Some("8.8.8.8")),
            ("[::FFFF:808:808]", Some("8.8.8.8")),
            ("[2001:DB8::1]", Some("2001:db8::1")),
            ("[2001:0db8:0000::0001]", Some("2001:db8::1")),
            // Found by the fuzzer once: a trailing dot after a numeric host.
            ("0.10.0.10.", Some("0.10.0.10")),
            ("0x0a.0.0.1..", Some("10.0.0.1")),
            ("[::ffff:0a00:1]", Some("10.0.0.1")),
            // IPv4-compatible and NAT64 forms stay IPv6; the guard refuses both ranges.
            ("[::10.0.0.1]", Some("::a00:1")),
            ("[64:ff9b::10.0.0.1]", Some("64:ff9b::a00:1")),
        ];
        for (host, ip) in table {
            let parsed = Host::parse(host).unwrap_or_else(|e| panic!("{host}: {e}"));
            assert_eq!(parsed, Host::Ip(ip.unwrap().parse().unwrap()), "{host}");
        }
        for refused in [
            "256.0.0.1",
            "1.2.3.4.5",
            "08.8.8.8",
            "4294967296",
            "1.2.65536",
            "1..2",
            "99999999999999999999999999",
            "example.0x10",
            "[fe80::1%25eth0]",
            "0x1.0x2.0x3.0x4.0x5",
        ] {
            assert!(Host::parse(refused).is_err(), "{refused}");
        }
        for name in ["8.8.8.8.nip.io", "1.example", "0x.example", "a1", "0x1g"] {
            assert!(
                matches!(Host::parse(name), Ok(Host::Name(_))),
                "{name} is a name"
            );
        }
        assert_eq!(
            target("0x7f000001:443").unwrap().to_string(),
            "127.0.0.1:443"
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
