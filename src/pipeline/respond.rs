//! Step 12, respond. When response rules could apply, the upstream's answer is read whole
//! (bounded), decoded, scanned for personal data, and judged by the `http.response` and
//! `llm.response` rules before the agent sees any of it: a refused answer never reaches the agent;
//! obligations redact it. Every other answer streams through untouched in timing, its usage
//! metered as it passes, pseudonyms restored, and the usage chunk the proxy asked for taken out.

use http::Response;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};

use super::record::Record;
use super::{Pipeline, RequestCtx};
use crate::budget::{Dialect, Meter};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::inspect;
use crate::pii::{BodyShape, RedactRule, session_of};
use crate::policy::{Facts, Obligation, PiiFacts, ResponseFacts, Subject, Trigger, join_repeated};
use crate::proxy::body::{Holding, ProxyBody, WholeError, boxed, full, read_whole};
use crate::proxy::outgoing::Answer;
use crate::stream::{Watched, without_usage_chunk};

impl Pipeline {
    /// 12. respond (judged): the answer of `facts`' request, judged whole by the response rules
    ///     (and redacted as they oblige) when one could apply; otherwise passed on as it streams.
    pub(super) async fn judge_answer(
        &self,
        ctx: &mut RequestCtx,
        mut facts: Facts,
        answer: Answer,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        if !answer.judged {
            return Ok(answer.response);
        }
        let (mut parts, body) = answer.response.into_parts();
        let limit = usize::try_from(self.max_request_body_bytes).unwrap_or(usize::MAX);
        // The answer's bytes are held in the buffer budget until the agent has them.
        let mut held = self.buffers.reserve(&ctx.client.identity.agent);
        let raw = read_whole(body, limit, &mut held).await?;
        let encoding = parts
            .headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        let encoding = Some(encoding.as_str()).filter(|e| !e.is_empty());
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (decoded, body) =
            inspect::answer(raw, encoding, content_type, limit).map_err(WholeError::undecodable)?;
        held.add_decoded(encoding.map(|_| decoded.len()))?;
        let events = body.content_type == "text/event-stream";
        let scanned = body.scanned(&decoded);
        let shape = BodyShape::of(&scanned);
        let pii = PiiFacts::from_counts(self.redactor.detect_answer(&scanned));
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
        let ids = (ctx.id.as_str(), format!("{}-resp", ctx.id));
        let (judgement, verdict) = self.judge.decide(&facts, ids, Subject::Answer);
        ctx.judgements.push(judgement);
        let verdict = verdict?;
        let obligations = verdict.obligations();
        let rules: Vec<RedactRule> = obligations.iter().map(Obligation::rule).collect();
        let mut bytes = decoded;
        let mut body = facts.response.take().map(|r| r.body).unwrap_or_default();
        if events && !rules.is_empty() {
            let text = body.text.first().cloned().unwrap_or_default();
            if self.redactor.obliged_in(&rules, &text) {
                return Err(ProxyError::new(
                    ErrorKind::Forbidden,
                    Side::Upstream,
                    "the policy requires redacting personal data in a streamed answer, where it \
                     can be split across events; the answer was not passed on unredacted",
                ));
            }
        }
        if !rules.is_empty() && !events {
            let session = session_of(&facts.agent.id, facts.agent.execution.as_deref());
            let mut json = std::mem::take(&mut body.json);
            let scanned = body.scanned(&bytes);
            let redacted =
                self.redactor
                    .redact(rules, &session, (&scanned, shape, &mut json), None)?;
            if let Some(body) = redacted.body {
                bytes = body;
            }
        }
        parts.headers.remove(CONTENT_ENCODING);
        parts.headers.remove(TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
        Ok(Response::from_parts(
            parts,
            boxed(Holding::new(full(bytes), held)),
        ))
    }
}

/// 12. respond (streamed): the answer the agent receives, carrying the request's record to the
///     end of the stream. An LLM answer's usage is read as it streams past; the usage chunk the
///     proxy asked for (only an event stream carries it: an error answer is JSON) is taken out.
pub(super) fn streamed(mut record: Record, response: Response<ProxyBody>) -> Response<ProxyBody> {
    record.responded(response.status());
    let events = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("event-stream"));
    if let Some((provider, _)) = &record.ctx.llm
        && response.status().is_success()
    {
        record.meter(Meter::new(Dialect::of(provider), events));
    }
    let usage_asked = record.ctx.usage_asked && events;
    let (mut parts, body) = response.into_parts();
    let body = boxed(Watched::new(body, record));
    if !usage_asked {
        return Response::from_parts(parts, body);
    }
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, boxed(without_usage_chunk(body)))
}
