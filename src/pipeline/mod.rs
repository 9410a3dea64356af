//! The life of a request, in order. Each step is a call into the module that owns it; this module
//! only orders them and says why each stands where it stands.
//!
//! Step 9 (approve) is still to come: `hold` verdicts and tripped breakers are refused until the
//! approval queue exists.

mod admit;
mod connect;
mod ctx;
mod hold;
mod judge;
mod locate;
mod pii_step;
mod record;
mod recorded_body;
mod reserve;
mod respond;
mod restored_body;
mod rewritten_body;
mod stream_usage;
mod uninspected;

use std::sync::Arc;

use http::header::CONTENT_ENCODING;
use http::{Request, Response};
use hyper::body::Incoming;

pub use ctx::RequestCtx;
pub use hold::HoldStep;
pub use judge::{Judge, Judgement};
pub use locate::{build_geo, destination_facts, destination_in};
pub use pii_step::{PiiStep, hash_key};
pub use record::path_shape;
pub use reserve::BudgetStep;

use crate::budget::{Dialect, Meter, PriceTable, RateLimits};
use crate::config::HostPatterns;
use crate::error::{ErrorKind, ProxyError, Shape, Side};
use crate::geo::Geo;
use crate::inspect;
use crate::policy::{Effect, Facts, PiiFacts, Trigger};
use crate::proxy::body::{ProxyBody, boxed, full};
use crate::proxy::resolve::{Pinned, ResolveError, Resolver};
use crate::proxy::target::Target;
use crate::proxy::upstream::{Upstream, UpstreamPeer};
use crate::proxy::{ClientInfo, ConnectPlan, Handler};
use pii_step::{RawShape, body_shape};
use record::Record;
use recorded_body::RecordedBody;
use restored_body::restored;
use uninspected::{ReadBody, Uninspected, read_body};

/// Everything the steps need, built once from the validated config: one part per step that
/// holds state.
pub struct Pipeline {
    /// Step 6: resolution through the network guard, pinned.
    pub resolver: Arc<Resolver>,
    /// Step 11: the pooled upstream client.
    pub upstream: Arc<Upstream>,
    /// Step 2: hosts relayed without interception.
    pub tunnel_hosts: HostPatterns,
    /// Step 4: the largest body read for inspection.
    pub max_request_body_bytes: u64,
    /// Step 4: what recognition is told (SQL fields, REST tools).
    pub inspect: inspect::InspectConfig,
    /// Step 7: the policies in force and the audit trail.
    pub judge: Judge,
    /// Steps 5 and 10: detection and redaction.
    pub pii: PiiStep,
    /// Step 6: where destinations are.
    pub geo: Arc<Geo>,
    /// Step 12: what LLM tokens cost.
    pub prices: Arc<PriceTable>,
    /// Step 9: held requests and their approvals.
    pub holds: HoldStep,
    /// Counters for Prometheus.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Step 8: budgets, pauses and breakers (shared with each request's record, which settles).
    pub budgets: Arc<BudgetStep>,
    /// Step 8: rate limits.
    pub rate_limits: RateLimits,
}

impl Pipeline {
    /// Every second: reads which agents and teams are paused; forgets the pseudonyms of
    /// executions idle for longer than the vault keeps them, and rate-limit buckets that are full
    /// again.
    pub async fn housekeeping(&self) {
        // Local work first: a store that does not answer must not keep pseudonyms past their
        // retention.
        self.pii.forget_idle();
        self.rate_limits.shrink();
        let store_work = async {
            if let Err(e) = self.budgets.housekeeping().await {
                tracing::error!(error = %e, "the budget store could not be read");
            }
            if let Err(e) = self.holds.housekeeping().await {
                tracing::error!(error = %e, "expired approvals could not be marked");
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(10), store_work)
            .await
            .is_err()
        {
            tracing::error!(
                "the store did not answer within 10 s; housekeeping retries in a second"
            );
        }
    }

    /// The judge, so the policies it applies can be reloaded.
    pub fn judge(&self) -> &Judge {
        &self.judge
    }

    /// One request, from arrival to the response the agent receives.
    pub async fn handle(
        &self,
        client: Arc<ClientInfo>,
        req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        // 1. accept: the proxy authenticated the agent and made the URI absolute; gather the facts.
        let ctx = match RequestCtx::new(client, &req) {
            Ok(ctx) => ctx,
            Err(err) => {
                tracing::warn!(reason = %err.reason, "request refused before it could be recorded");
                return err.to_response();
            }
        };
        // 13. record: a drop guard, so the record is written on success, error, and also when
        //     the agent hangs up and this future is dropped mid-step.
        let mut record = Record::begin(
            ctx,
            self.judge.audit().clone(),
            self.prices.clone(),
            self.budgets.clone(),
            self.metrics.clone(),
        );
        match self.run(&mut record.ctx, req).await {
            Ok(response) => {
                // 12. respond: the record rides along in the body and is written when it ends.
                record.responded(response.status());
                // 12. respond (metering): an LLM answer's usage is read as it streams past.
                if let Some((provider, _)) = &record.ctx.llm
                    && response.status().is_success()
                {
                    let events = response
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|ct| ct.contains("event-stream"));
                    record.meter(Meter::new(Dialect::of(provider), events));
                }
                // Only an event stream carries the extra usage chunk (an error answer is JSON).
                let usage_asked = record.ctx.usage_asked
                    && response
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|ct| ct.contains("event-stream"));
                let response = response.map(|body| boxed(RecordedBody::new(body, record)));
                if usage_asked {
                    let (mut parts, body) = response.into_parts();
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                    let body = boxed(stream_usage::without_usage_chunk(body));
                    Response::from_parts(parts, body)
                } else {
                    response
                }
            }
            Err(err) => {
                let err = err.shaped(record.ctx.shape.clone());
                self.audit_own_refusal(&record.ctx, &err);
                record.failed(&err);
                err.to_response()
            }
        }
    }

    async fn run(
        &self,
        ctx: &mut RequestCtx,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // 2. connect rules: a plain-HTTP request never passed a CONNECT, so the guard and the
        //    host-level rules run here, before anything else touches it.
        if ctx.client.tunnel.is_none() {
            let client = ctx.client.clone();
            let ids = (ctx.id.clone(), format!("{}-c", ctx.id));
            self.host_level(&client, &ctx.target.clone(), ids, &mut ctx.judgements)
                .await?;
        }
        // 4. inspect: the whole body, bounded and decoded, and what it carries (an LLM call, an
        //    MCP tool call). A body that cannot be read whole, decoded or parsed is judged as
        //    uninspected: refused unless a rule says `allow_uninspected`.
        let (mut parts, body) = req.into_parts();
        let read = read_body(&parts.headers, body, self.max_request_body_bytes).await?;
        let encodings = parts
            .headers
            .get_all(CONTENT_ENCODING)
            .iter()
            .map(|v| v.to_str())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ProxyError::bad_request("Content-Encoding is not ASCII"))?;
        let encoding = encodings.join(",");
        let encoding = Some(encoding.as_str()).filter(|e| !e.is_empty());
        let limit = usize::try_from(self.max_request_body_bytes).unwrap_or(usize::MAX);
        let raw = match read {
            ReadBody::Whole(raw) => raw,
            ReadBody::TooLarge { prefix, rest } => {
                let problem = format!("the request body exceeds the limit of {limit} bytes");
                let body = Uninspected::Streaming { prefix, rest };
                return self.uninspected(ctx, parts, body, problem).await;
            }
        };
        let mut decoded = match inspect::decode(raw.clone(), encoding, limit) {
            Ok(decoded) => decoded,
            Err(e) => {
                let body = Uninspected::Whole(raw);
                return self.uninspected(ctx, parts, body, e.to_string()).await;
            }
        };
        let host = ctx.target.host.as_string();
        let request = inspect::Request {
            host: &host,
            method: ctx.method.as_str(),
            path: &ctx.path,
            query: parts.uri.query(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            body: &decoded,
        };
        let recognised = inspect::recognise(&request, &self.inspect);
        if let Some(reason) = recognised.unreadable {
            return self
                .uninspected(ctx, parts, Uninspected::Whole(raw), reason)
                .await;
        }
        ctx.shape = shape_for(&recognised);
        // 6. locate: the checked, pinned address the upstream connection will really use.
        //    Before evaluate, so rules can read where the bytes go.
        // 7. evaluate: the request's facts against the rules of its trigger (and of
        //    http.request); deny by default.
        let mut facts = self
            .located_facts(ctx, &parts, recognised.trigger())
            .await?;
        facts.llm = recognised.llm;
        ctx.llm = facts
            .llm
            .as_ref()
            .map(|l| (l.provider.clone(), l.model.clone()));
        facts.tool = recognised.tool;
        facts.data = recognised.data;
        facts.body = inspect::body_facts(
            &decoded,
            request_content_type(&parts.headers),
            recognised.json,
        );
        // 5. detect: personal data and secrets in what the request carries, as kinds and counts,
        //    so rules can read them and the record can say what was there.
        let shape = body_shape(&facts.body, &decoded);
        // A body that is not valid UTF-8 is still scanned (invalid bytes read as U+FFFD).
        let raw_text = (matches!(shape, RawShape::Text | RawShape::Opaque)
            && facts.body.text.is_empty()
            && !decoded.is_empty())
        .then(|| String::from_utf8_lossy(&decoded));
        facts.pii = PiiFacts::from_counts(self.pii.detect(&facts, raw_text.as_deref()));
        ctx.pii = facts.pii.counts.clone();
        let (judgement, outcome) = self.judge.decide(&facts, &ctx.id, ctx.id.clone());
        let obligations = judgement.obligations.clone();
        let held = (judgement.effect == Effect::Hold)
            .then(|| (judgement.rules.clone(), judgement.id.clone()));
        ctx.judgements.push(judgement);
        if held.is_none() {
            outcome?;
        }
        // 8. reserve: the call's worst-case cost in every budget that covers the agent, before a
        //    byte leaves; settled to the real cost when the answer ends.
        // A held request's retries repeat it by design: the loop breaker does not count them.
        self.pace(&facts, held.is_none().then_some(&decoded[..]))?;
        let mut held = held;
        self.reserve(ctx, &facts, &decoded, &mut held).await?;
        // 9. hold: a request a rule (or a tripped breaker) holds waits here for a person.
        if let Some((rules, decision)) = held {
            self.hold(ctx, &facts, &parts, &decoded, rules, decision)
                .await?;
        }
        // 10. redact: what the verdict obliges, in the body and the query, before anything leaves.
        let mut restore = None;
        if !obligations.is_empty() {
            // Headers (when scanned) and the path cannot be rewritten: data to redact there
            // refuses the request.
            self.pii
                .check_unrewritable(&obligations, &facts, &ctx.path)?;
            let mut json = std::mem::take(&mut facts.body.json);
            let body_shape = shape.with_json(&mut json);
            let session = pii_step::session_of(&facts.agent.id, facts.agent.execution.as_deref());
            let redacted = self.pii.redact(
                &obligations,
                &session,
                (&decoded, body_shape),
                parts.uri.query(),
            )?;
            ctx.redacted = redacted.replaced.clone();
            if let Some(body) = redacted.body {
                decoded = body;
                parts.headers.insert(
                    http::header::CONTENT_LENGTH,
                    http::HeaderValue::from(decoded.len()),
                );
            }
            if let Some(query) = redacted.query {
                parts.uri = with_query(&parts.uri, &query)?;
            }
            if redacted.pseudonymized {
                // The response must come back readable to put the originals back in place.
                parts.headers.remove(http::header::ACCEPT_ENCODING);
                restore = self.pii.pseudonyms(&session);
            }
        }
        // The upstream gets exactly the bytes that were judged: decoded, so no undecoded
        // remainder can ride along.
        if encoding.is_some() {
            parts.headers.remove(CONTENT_ENCODING);
            parts.headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(decoded.len()),
            );
        }
        // 12. respond (prepared): an OpenAI stream reports usage only when asked; ask for it so
        //     the call is metered, and take the extra chunk out of the answer later.
        // Azure's older API versions reject `stream_options`: only OpenAI and compatible APIs.
        let openai = ctx.llm.as_ref().is_some_and(|(provider, _)| {
            Dialect::of(provider) == Dialect::OpenAi && provider != "azure_openai"
        });
        if openai && let Some(body) = stream_usage::ask_for_usage(&ctx.path, &decoded) {
            decoded = body;
            parts.headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(decoded.len()),
            );
            ctx.usage_asked = true;
        }
        // 12. respond (prepared): when a response rule could apply, the answer is judged whole,
        //     so it must come back readable.
        let judge_response = self.judge.judges_response_of(&facts);
        if judge_response {
            parts.headers.remove(http::header::ACCEPT_ENCODING);
        }
        let req = Request::from_parts(parts, full(decoded));
        // 11. forward: pooled, verified, bounded in time.
        ctx.forwarded = true;
        let response = self.upstream.forward(req, ctx.started).await?;
        ctx.connected = response
            .extensions()
            .get::<UpstreamPeer>()
            .map(|peer| peer.0);
        // 12. respond: the body streams back untouched, frame by frame (pseudonyms restored),
        //     unless response rules judge it whole first.
        let response = match restore {
            Some(names) => restored(response, names),
            None => response,
        };
        if judge_response {
            return self.judged_response(ctx, facts, response).await;
        }
        Ok(response)
    }

    /// Step 6, then the facts of the request for `trigger`: the destination is resolved through
    /// the guard and pinned, then located.
    async fn located_facts(
        &self,
        ctx: &mut RequestCtx,
        parts: &http::request::Parts,
        trigger: Trigger,
    ) -> Result<Facts, ProxyError> {
        let pinned = self.destination(&ctx.target).await?;
        ctx.destination = Some(pinned.clone());
        let line = judge::Line {
            method: ctx.method.as_str(),
            scheme: &ctx.scheme,
            target: &ctx.target,
            path: &ctx.path,
            query: parts.uri.query(),
            headers: Some(&parts.headers),
        };
        Ok(judge::facts(
            trigger,
            &ctx.client,
            &line,
            &pinned,
            &self.geo,
        ))
    }

    /// Puts a refusal the proxy made on its own (guard, inspection) in the audit trail; policy
    /// decisions are already there, upstream failures are not decisions.
    fn audit_own_refusal(&self, ctx: &RequestCtx, err: &ProxyError) {
        if !is_own_refusal(err) {
            return;
        }
        let line = judge::Line {
            method: ctx.method.as_str(),
            scheme: &ctx.scheme,
            target: &ctx.target,
            path: &ctx.path,
            query: None,
            headers: None,
        };
        let facts = judge::facts(Trigger::HttpRequest, &ctx.client, &line, &[], &self.geo);
        self.judge.record_refusal(&facts, &ctx.id, err);
    }

    /// The network guard's verdict on a destination: its checked addresses, or a refusal.
    async fn destination(&self, target: &Target) -> Result<Pinned, ProxyError> {
        self.resolver.resolve(target).await.map_err(|e| match e {
            ResolveError::Refused { .. } => {
                ProxyError::new(ErrorKind::Forbidden, Side::Agent, e.to_string())
            }
            ResolveError::Lookup { .. } => {
                ProxyError::new(ErrorKind::BadGateway, Side::Upstream, e.to_string())
            }
        })
    }
}

impl Handler for Pipeline {
    async fn connect(
        &self,
        client: &ClientInfo,
        target: &Target,
    ) -> Result<ConnectPlan, ProxyError> {
        self.judge_connect(client, target).await
    }

    async fn request(
        &self,
        client: Arc<ClientInfo>,
        req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        self.handle(client, req).await
    }
}

/// The error shape the agent's client understands, from what its request turned out to be.
fn shape_for(recognised: &inspect::Recognised) -> Shape {
    if let Some(id) = &recognised.jsonrpc_id {
        return Shape::JsonRpc(id.clone());
    }
    match recognised.llm.as_ref().map(|l| l.provider.as_str()) {
        Some("anthropic") => Shape::Anthropic,
        Some("gemini") => Shape::Gemini,
        Some(_) => Shape::OpenAi,
        None => Shape::Plain,
    }
}

/// `uri` with its query replaced.
fn with_query(uri: &http::Uri, query: &str) -> Result<http::Uri, ProxyError> {
    let mut parts = uri.clone().into_parts();
    let path_and_query = format!("{}?{query}", uri.path());
    parts.path_and_query = Some(
        path_and_query
            .parse()
            .map_err(|e| ProxyError::internal(format!("redacted query: {e}")))?,
    );
    http::Uri::from_parts(parts).map_err(|e| ProxyError::internal(format!("redacted URI: {e}")))
}

fn request_content_type(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// Whether an error is a refusal the proxy made on its own (guard, inspection, malformed request)
/// rather than a policy decision (already recorded) or an upstream failure (not a decision).
fn is_own_refusal(err: &ProxyError) -> bool {
    err.decision.is_none()
        && err.side == Side::Agent
        && matches!(
            err.kind,
            ErrorKind::Forbidden | ErrorKind::BadRequest | ErrorKind::PayloadTooLarge
        )
}
