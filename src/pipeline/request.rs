//! The request as it goes upstream, and the steps that work on its bytes: 4 (inspect), 5 (detect),
//! 10 (redact) and 11 (forward). What is judged is what is forwarded: an inspected body leaves
//! decoded (and redacted), an uninspected one exactly as it came.

use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Request};
use hyper::body::Incoming;

use super::facts;
use super::{Pipeline, RequestCtx};
use crate::error::{ErrorKind, ProxyError, Shape, Side};
use crate::inspect;
use crate::pii::{BodyShape, RedactRule, RequestHead, header_fields, rewrite_headers, session_of};
use crate::policy::{Facts, Obligation, PiiFacts, RequestFacts, Trigger};
use crate::proxy::body::{
    Holding, Prefixed, ReadBody, Reservation, boxed, full, read_request_body,
};
use crate::proxy::headers::{as_forwarded, content_encoding, joined};
use crate::proxy::outgoing::{Answer, Outgoing, RequestBody};
use crate::proxy::target::with_query;
use crate::proxy::upstream::UpstreamPeer;
use crate::proxy::websocket::GateSlot;
use crate::socket::SocketJudge;

impl Pipeline {
    /// 4. inspect: the whole body, bounded and decoded, and what it carries (an LLM call, a tool
    ///    call, SQL); the request's facts without destination and personal data yet.
    pub(super) async fn inspect(
        &self,
        ctx: &mut RequestCtx,
        req: Request<Incoming>,
    ) -> Result<(Outgoing, Facts), ProxyError> {
        let (mut parts, body) = req.into_parts();
        let mut held = self.buffers.reserve(&ctx.client.identity.agent);
        let within = (self.max_request_body_bytes, self.body_timeout);
        let read = read_request_body(&parts.headers, body, within, &mut held).await?;
        // Judged as forwarded: hop-by-hop headers gone, `Host` the destination it goes to.
        as_forwarded(&mut parts.headers, &ctx.target, ctx.scheme == "https");
        let encoding = content_encoding(&parts.headers)
            .map_err(|_| ProxyError::bad_request("Content-Encoding is not ASCII"))?;
        let limit = usize::try_from(self.max_request_body_bytes).unwrap_or(usize::MAX);
        let raw = match read {
            ReadBody::Whole(raw) => raw,
            too_large @ ReadBody::TooLarge { .. } => {
                let problem = format!("the request body exceeds the limit of {limit} bytes");
                return Ok(self.uninspected(ctx, parts, too_large, problem, held));
            }
        };
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let (host, prefer) = (
            ctx.target.host.as_string(),
            joined(&parts.headers, "prefer"),
        );
        let sent = inspect::Request {
            host: &host,
            method: ctx.method.as_str(),
            path: &ctx.path,
            query: parts.uri.query(),
            content_type,
            prefer: prefer.as_deref(),
            body: &raw,
        };
        let encoding = encoding.as_deref();
        let (decoded, recognised) = match inspect::examine(sent, encoding, limit, &self.inspect) {
            Ok(examined) => examined,
            Err(problem) => {
                return Ok(self.uninspected(ctx, parts, ReadBody::Whole(raw), problem, held));
            }
        };
        let transcoded = recognised.content_type.is_some();
        held.add_decoded((encoding.is_some() || transcoded).then_some(decoded.len()))?;
        // Parsed, a JSON body is held once more, in more bytes than it came in.
        held.add_decoded(recognised.json.as_ref().map(inspect::json_footprint))?;
        if let Some(utf8) = &recognised.content_type {
            // Read from another charset: judged and forwarded as UTF-8, and said so.
            crate::proxy::headers::declare_body(&mut parts.headers, utf8, decoded.len())
                .map_err(|e| ProxyError::internal(e.to_string()))?;
        }
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let provider = recognised.llm.as_ref().map(|l| l.provider.as_str());
        if recognised.jsonrpc_id.is_some() || provider.is_some() {
            ctx.shape = Shape::of_call(recognised.jsonrpc_id.as_ref(), provider);
        }
        let mut facts = self.request_facts(ctx, &parts, recognised.trigger());
        facts.body = inspect::body_facts(&decoded, content_type, recognised.json);
        facts.llm = recognised.llm;
        facts.tool = recognised.tool;
        facts.data = recognised.data;
        let body = RequestBody::Inspected {
            decoded,
            encoded: encoding.is_some(),
            restore: None,
        };
        Ok((Outgoing { parts, body, held }, facts))
    }

    fn uninspected(
        &self,
        ctx: &RequestCtx,
        parts: http::request::Parts,
        read: ReadBody,
        problem: String,
        held: Reservation,
    ) -> (Outgoing, Facts) {
        let mut facts = self.request_facts(ctx, &parts, Trigger::HttpRequest);
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        facts.body = inspect::uninspected_body(content_type, problem);
        let body = RequestBody::Uninspected(read);
        (Outgoing { parts, body, held }, facts)
    }

    fn request_facts(
        &self,
        ctx: &RequestCtx,
        parts: &http::request::Parts,
        trigger: Trigger,
    ) -> Facts {
        let line = (ctx.method.as_str(), ctx.scheme.as_str());
        let host = (ctx.target.host.as_string(), ctx.target.port);
        let query = parts.uri.query();
        let request = RequestFacts::new(line, host, &ctx.path, query, Some(&parts.headers));
        facts::facts(trigger, &ctx.client, request)
    }

    /// 5. detect: personal data and secrets in the body, the path, the query and the headers
    ///    (but credentials), as kinds and counts. An uninspected body has none to show; the rest
    ///    of the request still has.
    pub(super) fn detect(&self, ctx: &mut RequestCtx, request: &Outgoing, facts: &mut Facts) {
        let decoded = request.inspected().map(|b| &b[..]).unwrap_or_default();
        let headers = header_fields(&request.parts.headers);
        let head = RequestHead::of(&request.parts.uri, &headers);
        let body = facts.body.scanned(decoded);
        let (found, known) = self.redactor.detect_noting(&body, &head);
        (facts.pii, ctx.known) = (PiiFacts::from_counts(found), Some(known));
    }

    /// 10. redact: what the verdict obliges, in the body, the query and the scanned headers. The
    ///     path and framing headers cannot be rewritten, nor can a body that was not inspected:
    ///     data to redact there refuses the request.
    pub(super) fn redact(
        &self,
        ctx: &mut RequestCtx,
        request: &mut Outgoing,
        facts: &mut Facts,
        obligations: &[Obligation],
    ) -> Result<(), ProxyError> {
        let known = ctx.known.take();
        if obligations.is_empty() {
            return Ok(());
        }
        let RequestBody::Inspected {
            decoded, restore, ..
        } = &mut request.body
        else {
            return Err(ProxyError::new(
                ErrorKind::Forbidden,
                Side::Agent,
                format!(
                    "the policy requires redacting a body the proxy could not read ({}); the \
                     request was not forwarded",
                    facts.body.problem
                ),
            ));
        };
        let rules: Vec<RedactRule> = obligations.iter().map(Obligation::rule).collect();
        let shape = BodyShape::of(&facts.body.scanned(decoded));
        let mut json = std::mem::take(&mut facts.body.json);
        let session = session_of(&facts.agent.id, facts.agent.execution.as_deref());
        let headers = header_fields(&request.parts.headers);
        let head = RequestHead::of(&request.parts.uri, &headers);
        let body = (&facts.body.scanned(decoded), shape, &mut json);
        let redacted =
            self.redactor
                .redact_known(rules, &session, body, Some(&head), known.as_ref())?;
        ctx.redacted = redacted.replaced;
        if !redacted.headers.is_empty() {
            request.parts.headers = rewrite_headers(&request.parts.headers, &redacted.headers)?;
        }
        if redacted.pseudonymized {
            // The answer must come back readable to put the originals back in place.
            request.parts.headers.remove(ACCEPT_ENCODING);
            *restore = self.redactor.pseudonyms(&session);
        }
        if let Some(query) = redacted.query {
            request.parts.uri = with_query(&request.parts.uri, &query)
                .map_err(|e| ProxyError::internal(format!("redacted query: {e}")))?;
        }
        if let Some(body) = redacted.body {
            let length = body.len();
            *decoded = body;
            request.set_length(length);
        }
        Ok(())
    }

    /// 11. forward: pooled, verified, bounded in time. An inspected body leaves decoded, so no
    ///     undecoded remainder can ride along; an OpenAI stream is asked for its usage, so the call
    ///     is metered; an answer response rules may judge must come back readable.
    pub(super) async fn forward(
        &self,
        ctx: &mut RequestCtx,
        mut request: Outgoing,
        facts: &Facts,
    ) -> Result<Answer, ProxyError> {
        let (body, restore, judged) = match request.body {
            RequestBody::Uninspected(ReadBody::Whole(bytes)) => (full(bytes), None, false),
            RequestBody::Uninspected(ReadBody::TooLarge { prefix, rest }) => {
                (boxed(Prefixed::new(prefix, rest)), None, false)
            }
            RequestBody::Inspected {
                mut decoded,
                encoded,
                restore,
            } => {
                let headers = &mut request.parts.headers;
                if encoded {
                    headers.remove(CONTENT_ENCODING);
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(decoded.len()));
                }
                // The extra chunk is taken out of the answer (see `respond`).
                let provider = ctx.llm.as_ref().map(|(provider, _)| provider.as_str());
                let stream = facts.llm.as_ref().is_some_and(|llm| llm.stream);
                if let Some(asked) = inspect::ask_for_usage(provider, stream, &ctx.path, &decoded) {
                    decoded = asked;
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(decoded.len()));
                    ctx.usage_asked = true;
                }
                let judged = self.judge.judges_response_of(facts);
                if judged {
                    headers.remove(ACCEPT_ENCODING);
                }
                (full(decoded), restore, judged)
            }
        };
        ctx.trace.propagate(&mut request.parts.headers);
        // The real key goes on last, just before the request leaves.
        let (parts, host) = (&mut request.parts, ctx.target.host.as_string());
        let (to, sender) = (ctx.brokered_at(&host), ctx.sender());
        let scrub = self
            .broker
            .put_on(to, sender, &mut parts.headers, &mut parts.uri)?;
        if facts.request.websocket {
            // An allowed socket: its messages are judged one by one.
            let judge = SocketJudge::new(facts, self.judge.clone(), self.redactor.clone(), &ctx.id);
            request
                .parts
                .extensions
                .insert(GateSlot::new(Box::new(judge)));
        }
        ctx.forwarded = true;
        // The judged bytes stay counted until they have gone upstream.
        let body = boxed(Holding::new(body, request.held));
        let req = Request::from_parts(request.parts, body);
        let response = self.upstream.forward(req, ctx.started).await?;
        ctx.connected = response
            .extensions()
            .get::<UpstreamPeer>()
            .map(|peer| peer.0);
        let response = match restore {
            Some(names) => crate::stream::restored(response, names),
            None => response,
        };
        let response = match scrub {
            Some(scrub) => crate::stream::scrubbed(response, scrub),
            None => response,
        };
        Ok(Answer { response, judged })
    }

    /// 4. (credentials) refuses a request to a brokered host that brings a key of its own.
    pub(super) fn check_credentials(
        &self,
        ctx: &RequestCtx,
        request: &Outgoing,
    ) -> Result<(), ProxyError> {
        let (parts, host) = (&request.parts, ctx.target.host.as_string());
        let (to, query) = (ctx.brokered_at(&host), parts.uri.query());
        Ok(self.broker.check(to, ctx.sender(), &parts.headers, query)?)
    }
}
