//! W3C trace context on the way in and out. The agent's `traceparent` is untrusted input: it may
//! choose the trace the proxy's span joins and the span it hangs under, nothing else. Exactly one
//! well-formed `traceparent` is continued; a malformed, repeated or all-zero one is ignored (the
//! span starts a trace of its own) and never fails the request. Its sampled flag decides nothing
//! (every request is recorded, see [`super::Telemetry`]), and its `tracestate` is neither exported
//! nor passed on: vendor state the agent wrote is the agent's text, not the proxy's context.
//! Upstream, the agent's `traceparent` and `tracestate` are replaced by the proxy's span.

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// The headers' one `traceparent`, and nothing else, as the propagator reads them.
struct OnlyTraceparent<'a>(Option<&'a str>);

impl Extractor for OnlyTraceparent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            self.0
        } else {
            None
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.0.map(|_| vec![TRACEPARENT]).unwrap_or_default()
    }
}

/// The context the agent's request continues: its remote parent, or none.
pub fn parent_of(headers: &HeaderMap) -> Context {
    let mut values = headers.get_all(TRACEPARENT).iter();
    let only = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    };
    let Some(value) = only.filter(|v| well_formed(v)) else {
        return Context::new();
    };
    let extracted = TraceContextPropagator::new().extract(&OnlyTraceparent(Some(value)));
    if extracted.span().span_context().is_valid() {
        extracted
    } else {
        Context::new()
    }
}

/// Whether `value` is a `traceparent` as W3C Trace Context writes it: `version-trace-parent-flags`
/// in lower-case hex of 2, 32, 16 and 2 digits, version `ff` invalid, nothing after the flags in
/// version `00` (a later version may append fields after a `-`). The SDK's parser alone takes
/// shorter ids.
fn well_formed(value: &str) -> bool {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let (head, rest) = value.split_at_checked(55).unwrap_or((value, "\0"));
    let mut fields = head.split('-');
    let shaped = [2, 32, 16, 2]
        .iter()
        .all(|n| fields.next().is_some_and(|f| hex(f, *n)))
        && fields.next().is_none();
    let version = &value[..2.min(value.len())];
    let tail_ok = match version {
        "00" => rest.is_empty(),
        _ => rest.is_empty() || rest.starts_with('-'),
    };
    shaped && version != "ff" && tail_ok && value.len() <= 512
}

/// Writes into header names and values, skipping what is not a valid header.
struct Headers<'a>(&'a mut HeaderMap);

impl Injector for Headers<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Replaces the agent's trace headers on a request going upstream with `span`'s.
pub fn propagate(span: &Context, headers: &mut HeaderMap) {
    headers.remove(TRACEPARENT);
    headers.remove(TRACESTATE);
    TraceContextPropagator::new().inject_context(span, &mut Headers(headers));
    headers.remove(TRACESTATE);
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceId;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn one_good_traceparent_is_continued() {
        let cx = parent_of(&headers(&[(TRACEPARENT, GOOD), (TRACESTATE, "k=v")]));
        let span = cx.span();
        let parent = span.span_context();
        assert!(parent.is_remote());
        assert_eq!(
            parent.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            parent.trace_state().header(),
            "",
            "tracestate is not continued"
        );
    }

    #[test]
    fn what_is_malformed_or_repeated_is_ignored() {
        for bad in [
            "",
            "garbage",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
        ] {
            let cx = parent_of(&headers(&[(TRACEPARENT, bad)]));
            assert!(!cx.span().span_context().is_valid(), "{bad:?} continued");
        }
        let twice = headers(&[(TRACEPARENT, GOOD), (TRACEPARENT, GOOD)]);
        assert!(!parent_of(&twice).span().span_context().is_valid());
        let mut invalid_utf8 = HeaderMap::new();
        invalid_utf8.insert(
            TRACEPARENT,
            http::HeaderValue::from_bytes(b"00-\xff").unwrap(),
        );
        assert!(!parent_of(&invalid_utf8).span().span_context().is_valid());
    }

    #[test]
    fn the_agents_trace_headers_are_replaced_upstream() {
        let parent = parent_of(&headers(&[(TRACEPARENT, GOOD)]));
        let mut out = headers(&[(TRACEPARENT, GOOD), (TRACESTATE, "secret=1")]);
        propagate(&parent, &mut out);
        assert_eq!(out.get_all(TRACEPARENT).iter().count(), 1);
        assert!(out.get(TRACESTATE).is_none());
        let mut none = headers(&[(TRACEPARENT, "junk")]);
        propagate(&Context::new(), &mut none);
        assert!(
            none.get(TRACEPARENT).is_none(),
            "no span: nothing to pass on"
        );
    }
}
