//! RFC 9209 `Proxy-Status` on every refusal: the registered proxy error type a refusal is, and the
//! header value `gatehouse; error=<type>; details="<why> (decision <id>)"`. Clients that never show
//! a CONNECT refusal's body (curl, browsers, most SDKs) still show its headers, so the reason and
//! the id to look up in the audit trail travel here too.

use http::HeaderValue;

use super::ErrorKind;

/// The name this hop gives itself in `Proxy-Status` (an sf-token).
const PROXY_NAME: &str = "gatehouse";

/// Characters of the reason kept in `details`; a longer one is cut (the body has it whole).
const MAX_REASON_CHARS: usize = 240;

/// What exactly failed, where the error's kind alone does not tell which RFC 9209 error type
/// applies (a 502 may be a DNS error, a refused connection or a bad certificate). Set where the
/// failure is known; a policy or proxy refusal needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The network guard refuses every address of the destination.
    DestinationProhibited,
    /// The destination cannot be named as a next hop at all.
    DestinationNotFound,
    /// The next hop failed in a way no other type names.
    DestinationUnavailable,
    /// No route to the destination's address.
    DestinationUnroutable,
    /// The name did not resolve.
    DnsError,
    /// The name server did not answer in time.
    DnsTimeout,
    /// The destination refused the TCP connection.
    ConnectionRefused,
    /// The TCP connection was not established in time.
    ConnectionTimeout,
    /// The upstream's certificate did not verify.
    TlsCertificate,
    /// The TLS handshake with the upstream failed otherwise.
    TlsProtocol,
    /// The upstream broke HTTP.
    Protocol,
    /// The upstream's answer broke off before it could be judged whole.
    ResponseIncomplete,
    /// The upstream's answer is larger than the proxy can judge whole.
    ResponseBodySize,
    /// The upstream's answer did not start in time.
    ResponseTimeout,
    /// The upstream's answer has a content coding the proxy cannot read where it must.
    ResponseContentCoding,
    /// The proxy's own configuration cannot serve the request (a secret it cannot read).
    Configuration,
}

impl Failure {
    /// The registered error type (RFC 9209 §2.3).
    fn error_type(self) -> &'static str {
        match self {
            Failure::DestinationProhibited => "destination_ip_prohibited",
            Failure::DestinationNotFound => "destination_not_found",
            Failure::DestinationUnavailable => "destination_unavailable",
            Failure::DestinationUnroutable => "destination_ip_unroutable",
            Failure::DnsError => "dns_error",
            Failure::DnsTimeout => "dns_timeout",
            Failure::ConnectionRefused => "connection_refused",
            Failure::ConnectionTimeout => "connection_timeout",
            Failure::TlsCertificate => "tls_certificate_error",
            Failure::TlsProtocol => "tls_protocol_error",
            Failure::Protocol => "http_protocol_error",
            Failure::ResponseIncomplete => "http_response_incomplete",
            Failure::ResponseBodySize => "http_response_body_size",
            Failure::ResponseTimeout => "http_response_timeout",
            Failure::ResponseContentCoding => "http_response_content_coding",
            Failure::Configuration => "proxy_configuration_error",
        }
    }
}

/// Where the audit trail holds a refusal no policy decision made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The proxy's own refusal, recorded as a deny without a rule under this decision id.
    Decision(String),
    /// A request whose outcome record (this request id) says how it ended.
    Request(String),
}

/// The registered error type of a refusal of `kind`, unless `failure` says more precisely.
/// Refusals by policy or by the proxy's configuration (limits, budgets, identity, holds) are
/// `http_request_denied`; requests the proxy cannot read are `http_request_error`.
pub(super) fn error_type(kind: ErrorKind, failure: Option<Failure>) -> &'static str {
    if let Some(failure) = failure {
        return failure.error_type();
    }
    match kind {
        ErrorKind::ApprovalPending
        | ErrorKind::ProxyAuthRequired
        | ErrorKind::Unauthorized
        | ErrorKind::Forbidden
        | ErrorKind::Misdirected
        | ErrorKind::PayloadTooLarge
        | ErrorKind::HeadersTooLarge
        | ErrorKind::BudgetExceeded
        | ErrorKind::RateLimited => "http_request_denied",
        ErrorKind::BadRequest | ErrorKind::RequestTimeout => "http_request_error",
        // A gateway path no route takes: no next hop for it.
        ErrorKind::NotFound => "destination_not_found",
        ErrorKind::BadGateway => "http_protocol_error",
        ErrorKind::GatewayTimeout => "http_response_timeout",
        ErrorKind::Unavailable | ErrorKind::Internal => "proxy_internal_error",
    }
}

/// The `Proxy-Status` value for a refusal of `error_type` because of `reason`, naming `id` (`decision
/// <id>` or `request <id>`) when the audit trail holds it. `details` is an sf-string: printable
/// ASCII, `"` and `\` escaped, the reason cut to a bounded length (the id is always kept whole).
pub(super) fn header_value(
    error_type: &str,
    reason: &str,
    id: Option<(&str, &str)>,
) -> HeaderValue {
    let mut details = String::with_capacity(MAX_REASON_CHARS + 48);
    for (kept, c) in reason.chars().enumerate() {
        if kept == MAX_REASON_CHARS {
            details.push_str("...");
            break;
        }
        push_printable(&mut details, c);
    }
    if let Some((label, id)) = id {
        details.push_str(" (");
        details.push_str(label);
        details.push(' ');
        // Ids are the proxy's own (hex and a suffix); bounded all the same.
        id.chars()
            .take(64)
            .for_each(|c| push_printable(&mut details, c));
        details.push(')');
    }
    let value = format!("{PROXY_NAME}; error={error_type}; details=\"{details}\"");
    // Only printable ASCII went in, so this cannot fail; a bare token if it ever did.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(PROXY_NAME))
}

/// `c` as an sf-string character: `"` and `\` escaped, anything outside printable ASCII as `?`.
fn push_printable(out: &mut String, c: char) {
    match c {
        '"' | '\\' => {
            out.push('\\');
            out.push(c);
        }
        ' '..='~' => out.push(c),
        _ => out.push('?'),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(value: &HeaderValue) -> String {
        let text = value.to_str().unwrap();
        let start = text.find("details=\"").unwrap() + "details=\"".len();
        text[start..text.len() - 1].to_string()
    }

    #[test]
    fn quotes_backslashes_and_non_ascii_cannot_break_out_of_the_string() {
        let value = header_value(
            "http_request_denied",
            "host `a\"; error=none` \\ é\r\n",
            Some(("decision", "abc-r")),
        );
        assert_eq!(
            details(&value),
            "host `a\\\"; error=none` \\\\ ??? (decision abc-r)"
        );
        assert!(
            value
                .to_str()
                .unwrap()
                .starts_with("gatehouse; error=http_request_denied; ")
        );
    }

    #[test]
    fn a_long_reason_is_cut_but_the_id_is_kept() {
        let reason = "x".repeat(10_000);
        let value = header_value("http_request_denied", &reason, Some(("request", "0123")));
        let details = details(&value);
        assert!(details.len() < MAX_REASON_CHARS + 32, "{}", details.len());
        assert!(details.ends_with("... (request 0123)"), "{details}");
    }

    #[test]
    fn a_failure_names_the_type_more_precisely_than_the_kind() {
        assert_eq!(
            error_type(ErrorKind::Forbidden, None),
            "http_request_denied"
        );
        assert_eq!(
            error_type(ErrorKind::Forbidden, Some(Failure::DestinationProhibited)),
            "destination_ip_prohibited"
        );
        assert_eq!(
            error_type(ErrorKind::BadRequest, None),
            "http_request_error"
        );
        assert_eq!(
            error_type(ErrorKind::BadGateway, Some(Failure::TlsCertificate)),
            "tls_certificate_error"
        );
        assert_eq!(
            error_type(ErrorKind::GatewayTimeout, Some(Failure::ConnectionTimeout)),
            "connection_timeout"
        );
        assert_eq!(
            error_type(ErrorKind::Internal, None),
            "proxy_internal_error"
        );
    }
}
