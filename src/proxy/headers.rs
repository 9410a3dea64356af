//! Hop-by-hop headers: they describe one connection and never travel past the proxy.

use http::HeaderMap;
use http::header::{self, HeaderName};

use super::target::Target;

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Header fields a request may carry once. Two values disagree on what the request is (`Host`:
/// which server, `Content-Length`: where the body ends, `Authorization`: who asks), the proxy
/// judges one and the next hop may act on the other; RFC 9112 answers two `Host` fields with 400,
/// and the proxy answers every field here the same way.
const SINGLETONS: [&str; 13] = [
    "host",
    "content-length",
    "content-type",
    "content-location",
    "authorization",
    "proxy-authorization",
    "transfer-encoding",
    "max-forwards",
    "range",
    "if-range",
    "if-modified-since",
    "if-unmodified-since",
    "referer",
];

/// Header fields that ask a server (Google APIs, Rails, Express, ASP.NET) to take a request for
/// another method: a `POST` carrying `X-HTTP-Method-Override: DELETE` is a delete there.
const METHOD_OVERRIDES: [&str; 3] = [
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
];

/// Why a request head cannot be judged as sent: a method that is not upper-case (rules scoped to
/// `POST` must see every spelling of it, and servers disagree on whether `post` is `POST`), a
/// method-override field naming another method (rules judge the method the request line names),
/// or a singleton header field given more than once. Names are compared as CGI and WSGI servers
/// read them, `_` as `-`: `X_HTTP_Method_Override` reaches a Flask app as the override, and
/// `Content_Type` beside `Content-Type` is a second content type there.
pub fn check_head(method: &http::Method, headers: &HeaderMap) -> Result<(), String> {
    if method.as_str().bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(format!(
            "the method `{}` is not upper-case; methods are sent as `{}`",
            method.as_str().escape_debug(),
            method.as_str().to_ascii_uppercase().escape_debug()
        ));
    }
    // Seen counts per singleton (by its index in SINGLETONS): no allocation per header field.
    let mut counts = [0usize; SINGLETONS.len()];
    for name in headers.keys() {
        let name = name.as_str();
        let values = headers.get_all(name);
        if let Some(spelled) = METHOD_OVERRIDES.iter().find(|o| spelled_as(name, o)) {
            let other = values.iter().any(|value| {
                !value
                    .as_bytes()
                    .trim_ascii()
                    .eq_ignore_ascii_case(method.as_str().as_bytes())
            });
            if other {
                return Err(format!(
                    "the `{spelled}` header field asks for another method than `{method}`"
                ));
            }
        }
        if let Some(i) = SINGLETONS.iter().position(|s| spelled_as(name, s)) {
            counts[i] += values.iter().count();
        }
    }
    if let Some(i) = counts.iter().position(|total| *total > 1) {
        return Err(format!(
            "the `{}` header field is sent more than once",
            SINGLETONS[i]
        ));
    }
    Ok(())
}

/// Whether the (lower-case) header name `name` reads as `canonical` when `_` is taken for `-`.
fn spelled_as(name: &str, canonical: &str) -> bool {
    name.len() == canonical.len()
        && name
            .bytes()
            .zip(canonical.bytes())
            .all(|(a, b)| a == b || (a == b'_' && b == b'-'))
}

/// The headers as the upstream client will send them to `target`: hop-by-hop headers and those
/// `Connection` names removed (a WebSocket upgrade keeps its upgrade headers), `Host` naming the
/// destination. Applied before a request is judged, so a rule cannot be satisfied by a header
/// that forwarding then drops or replaces.
pub fn as_forwarded(headers: &mut HeaderMap, target: &Target, https: bool) {
    let upgrade = is_websocket_upgrade(headers);
    strip_hop_by_hop(headers, upgrade);
    let default_port = if https { 443 } else { 80 };
    let host = if target.port == default_port {
        target.host.to_string()
    } else {
        target.to_string()
    };
    if let Ok(host) = http::HeaderValue::from_str(&host) {
        headers.insert(header::HOST, host);
    }
}

/// Every field named `name`, joined with `, ` as one list (bytes that are not text replaced), or
/// `None` when there is none: a reader must see all of a repeated list field, not its first.
pub fn joined(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Whether `headers` ask for a WebSocket (`Connection: upgrade`, `Upgrade: websocket`, a key).
/// Other upgrades (h2c, made-up protocols) are not honoured: they would turn the connection into
/// an uninspected pipe, so their headers are stripped like any hop-by-hop header.
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    upgrade_is_websocket(headers)
        && headers.contains_key(header::SEC_WEBSOCKET_KEY)
        && connection_tokens(headers).any(|t| t == "upgrade")
}

/// Whether the `Upgrade` header names exactly WebSocket (requests and 101 answers alike).
pub fn upgrade_is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers and every header that `Connection` names. With `keep_upgrade`,
/// `Connection: upgrade` and `Upgrade` survive so a WebSocket handshake can pass.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<String> = connection_tokens(headers).collect();
    for name in named {
        if keep_upgrade && name == "upgrade" {
            continue;
        }
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(name);
        }
    }
    let te_trailers = headers.get_all(header::TE).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("trailers"))
        })
    });
    // The names present, found in one pass over the map: a removal by a name the map lacks
    // still parses and hashes that name, nine times a message. They are removed in the list's
    // order, as before (a removal moves the map's last field into the gap).
    let present: Vec<HeaderName> = headers
        .keys()
        .filter(|name| HOP_BY_HOP.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in HOP_BY_HOP {
        if keep_upgrade && (name == "upgrade" || name == "connection") {
            continue;
        }
        if let Some(name) = present.iter().find(|p| *p == name) {
            headers.remove(name);
        }
    }
    if te_trailers {
        // `TE: trailers` is the one TE value HTTP/2 allows end to end; gRPC depends on it.
        headers.insert(header::TE, http::HeaderValue::from_static("trailers"));
    }
    if keep_upgrade {
        headers.insert(
            header::CONNECTION,
            http::HeaderValue::from_static("upgrade"),
        );
    }
}

/// Declares a body rewritten by the proxy: its `Content-Type` and `Content-Length`.
pub fn declare_body(
    headers: &mut HeaderMap,
    content_type: &str,
    length: usize,
) -> Result<(), http::header::InvalidHeaderValue> {
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_str(content_type)?,
    );
    headers.insert(
        http::header::CONTENT_LENGTH,
        http::HeaderValue::from(length),
    );
    Ok(())
}

/// The `Content-Encoding` values of `headers` joined (`gzip` and `br` → `gzip,br`); `None` when
/// there are none, an error when one is not ASCII.
pub fn content_encoding(headers: &HeaderMap) -> Result<Option<String>, http::header::ToStrError> {
    let values = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .map(|v| v.to_str())
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(values.join(",")).filter(|e| !e.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_fields_left_keep_the_order_they_had() {
        let mut h = headers(&[
            ("trailer", "a"),
            ("keep-alive", "b"),
            ("x-a", "1"),
            ("x-b", "2"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-a", "x-b"]);
    }

    #[test]
    fn strips_standard_and_connection_named_headers() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-secret-hop"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic abc"),
            ("transfer-encoding", "chunked"),
            ("te", "gzip"),
            ("content-type", "application/json"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn check_head_table() {
        let post = http::Method::POST;
        let lower = http::Method::from_bytes(b"post").unwrap();
        let mixed = http::Method::from_bytes(b"Delete").unwrap();
        let custom = http::Method::from_bytes(b"PROPFIND").unwrap();
        assert!(check_head(&post, &HeaderMap::new()).is_ok());
        assert!(check_head(&custom, &HeaderMap::new()).is_ok());
        assert!(check_head(&lower, &HeaderMap::new()).is_err());
        assert!(check_head(&mixed, &HeaderMap::new()).is_err());
        for name in SINGLETONS {
            let twice = headers(&[(name, "a"), (name, "a")]);
            assert!(check_head(&post, &twice).is_err(), "{name}");
            let once = headers(&[(name, "a")]);
            assert!(check_head(&post, &once).is_ok(), "{name}");
        }
        let lists = headers(&[
            ("accept", "a"),
            ("accept", "b"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ]);
        assert!(check_head(&post, &lists).is_ok(), "list fields may repeat");
    }

    #[test]
    fn method_overrides_are_refused_unless_they_name_the_method() {
        let post = http::Method::POST;
        for name in [
            "x-http-method-override",
            "X-HTTP-Method",
            "x-method-override",
        ] {
            let other = headers(&[(name, "DELETE")]);
            assert!(check_head(&post, &other).is_err(), "{name}: DELETE");
            let lower = headers(&[(name, "delete")]);
            assert!(check_head(&post, &lower).is_err(), "{name}: delete");
            let same = headers(&[(name, "post")]);
            assert!(
                check_head(&post, &same).is_ok(),
                "{name}: the method itself"
            );
        }
        // CGI and WSGI servers read `_` as `-`.
        let underscored = headers(&[("x_http_method_override", "DELETE")]);
        assert!(check_head(&post, &underscored).is_err());
        let twice = headers(&[("content-type", "a/b"), ("content_type", "c/d")]);
        assert!(check_head(&post, &twice).is_err());
    }

    #[test]
    fn as_forwarded_strips_and_names_the_destination() {
        let mut h = headers(&[
            ("connection", "x-approved"),
            ("x-approved", "yes"),
            ("host", "elsewhere.example"),
        ]);
        let host = crate::proxy::target::Host::Name("api.example.com".into());
        let target = Target {
            host: host.clone(),
            port: 443,
        };
        as_forwarded(&mut h, &target, true);
        assert!(!h.contains_key("x-approved"));
        assert_eq!(h["host"], "api.example.com");
        as_forwarded(&mut h, &Target { host, port: 8443 }, true);
        assert_eq!(h["host"], "api.example.com:8443");
    }

    #[test]
    fn te_trailers_survives_for_grpc() {
        let mut h = headers(&[
            ("te", "trailers, gzip"),
            ("content-type", "application/grpc"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn upgrade_headers_survive_when_asked() {
        let mut h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic abc"),
            ("sec-websocket-key", "k"),
        ]);
        let mut h2c = h.clone();
        h2c.insert(header::UPGRADE, "h2c".parse().unwrap());
        assert!(
            !is_websocket_upgrade(&h2c),
            "only WebSocket upgrades are honoured"
        );
        assert!(is_websocket_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert!(!h.contains_key("proxy-authorization"));
        assert!(h.contains_key("sec-websocket-key"));
    }
}
