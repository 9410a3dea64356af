//! Step 12 when response rules could apply: the upstream's answer is read whole (bounded),
//! decoded, scanned for personal data, and judged by the `http.response` and `llm.response`
//! rules before the agent sees any of it. A refused answer never reaches the agent; obligations
//! redact it. Answers no response rule could judge stream through untouched instead.

use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http_body_util::BodyExt;

use super::pii_step::body_shape;
use super::pii_step::session_of;
use super::{Pipeline, RequestCtx};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::inspect;
use crate::policy::{Facts, PiiFacts, ResponseFacts, Trigger, join_repeated};
use crate::proxy::body::{ProxyBody, full};

impl Pipeline {
    /// The answer to `facts`' request, judged by the response rules (and redacted as they oblige).
    pub(super) async fn judged_response(
        &self,
        ctx: &mut RequestCtx,
        mut facts: Facts,
        response: Response<ProxyBody>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let (mut parts, body) = response.into_parts();
        let limit = usize::try_from(self.max_request_body_bytes).unwrap_or(usize::MAX);
        let unjudged = |why: String| {
            ProxyError::new(
                ErrorKind::BadGateway,
                Side::Upstream,
                format!("{why}; the answer was not passed on unjudged"),
            )
        };
        let raw = read_whole(body, limit).await.map_err(unjudged)?;
        let encoding = parts
            .headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let encoding = Some(encoding.as_str()).filter(|e| !e.is_empty());
        let decoded = inspect::decode(raw, encoding, limit)
            .map_err(|e| unjudged(format!("the upstream's answer cannot be decoded: {e}")))?;
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let json = parse_json(&decoded);
        let mut body = inspect::body_facts(&decoded, content_type.as_deref(), json);
        // A streamed answer is read as the text its events carry, so data split across tokens is
        // found.
        let events = body.content_type == "text/event-stream";
        if events {
            body.text = vec![crate::pii::stream_text(&decoded)];
        }
        let shape = body_shape(&body, &decoded);
        let plain_text = body.json.is_null() && body.form.is_empty() && body.text.is_empty();
        let raw_text =
            (plain_text && !decoded.is_empty()).then(|| String::from_utf8_lossy(&decoded));
        let pii = PiiFacts::from_counts(self.pii.detect_body(&body, raw_text.as_deref()));
        facts.trigger = if facts.llm.is_some() {
            Trigger::LlmResponse
        } else {
            Trigger::HttpResponse
        };
        facts.response = Some(ResponseFacts {
            status: parts.status.as_u16(),
            headers: join_repeated(parts.headers.iter().map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })),
            body,
            pii,
        });
        let (judgement, outcome) = self
            .judge
            .decide(&facts, &ctx.id, format!("{}-resp", ctx.id));
        let obligations = judgement.obligations.clone();
        ctx.judgements.push(judgement);
        outcome?;
        let mut bytes = decoded;
        if events && !obligations.is_empty() {
            let text = facts
                .response
                .as_ref()
                .and_then(|r| r.body.text.first().cloned())
                .unwrap_or_default();
            if self.pii.obliged_in(&obligations, &text) {
                return Err(ProxyError::new(
                    ErrorKind::Forbidden,
                    Side::Upstream,
                    "the policy requires redacting personal data in a streamed answer, where it \
                     can be split across events; the answer was not passed on unredacted",
                ));
            }
        }
        if !obligations.is_empty() && !events {
            let mut json = facts
                .response
                .take()
                .map(|r| r.body.json)
                .unwrap_or_default();
            let session = session_of(&facts.agent.id, facts.agent.execution.as_deref());
            let redacted = self.pii.redact(
                &obligations,
                &session,
                (&bytes, shape.with_json(&mut json)),
                None,
            )?;
            if let Some(body) = redacted.body {
                bytes = body;
            }
        }
        parts.headers.remove(CONTENT_ENCODING);
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
        Ok(Response::from_parts(parts, full(bytes)))
    }
}

/// The whole body, refusing one past `limit` bytes.
async fn read_whole(mut body: ProxyBody, limit: usize) -> Result<Bytes, String> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the upstream's answer broke off: {e}"))?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(format!(
                    "the upstream's answer exceeds {limit} bytes, the most response rules judge"
                ));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

fn parse_json(body: &Bytes) -> Option<serde_json::Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    matches!(first, b'{' | b'[')
        .then(|| serde_json::from_slice(body).ok())
        .flatten()
}
