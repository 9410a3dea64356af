//! The life of a request, in order. Each step is a call into the module that owns it; this module
//! only orders them and says why each stands where it stands. [`Pipeline::run`] reads as the step
//! table of the crate docs: every step returns `Result<_, ProxyError>`, so an error ends the
//! request there, and what a step hands on (the body as inspection left it, the admitted verdict,
//! the upstream's answer) is a type of its own.

mod admit;
mod connect;
mod ctx;
mod facts;
mod record;
mod request;
mod respond;

use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;

pub use ctx::RequestCtx;
pub use facts::destination_facts;

use crate::approval::Approvals;
use crate::audit::Judge;
use crate::budget::{Ledger, RateLimits};
use crate::error::{ProxyError, Recorded};
use crate::geo::Geo;
use crate::inspect::InspectConfig;
use crate::pii::Redactor;
use crate::policy::{HostPatterns, RequestFacts, Trigger};
use crate::proxy::body::ProxyBody;
use crate::proxy::resolve::Resolver;
use crate::proxy::target::Target;
use crate::proxy::upstream::Upstream;
use crate::proxy::{ClientInfo, ConnectPlan, Handler, Refusal, TunnelEnd};
use record::Record;

/// What the steps need, built once from the validated config; each domain's part is its own.
pub struct Pipeline {
    /// Steps 2 and 6: resolution through the network guard, pinned.
    pub resolver: Arc<Resolver>,
    /// Step 2: hosts relayed without interception.
    pub tunnel_hosts: HostPatterns,
    /// Step 4: the largest body read for inspection (and answer judged whole).
    pub max_request_body_bytes: u64,
    /// Step 4: how long an agent has to send the body read for inspection.
    pub body_timeout: std::time::Duration,
    /// Steps 4 and 12: the budget of bytes bodies read whole may hold, for all and per agent.
    pub buffers: Arc<crate::proxy::buffers::Buffers>,
    /// Step 4: what recognition is told (SQL fields, REST tools).
    pub inspect: InspectConfig,
    /// Steps 5 and 10: detection and redaction.
    pub redactor: Arc<Redactor>,
    /// Step 6: where destinations are.
    pub geo: Arc<Geo>,
    /// Steps 2, 7 and 12: the policies in force, and the audit trail of their decisions.
    pub judge: Judge,
    /// Steps 4 and 11: the keys the proxy, not the agent, puts on requests.
    pub broker: Arc<crate::credentials::Broker>,
    /// Step 8: rate limits.
    pub rate_limits: RateLimits,
    /// Steps 8 and 12: budgets, pauses and breakers; reservations and their settlement.
    pub ledger: Arc<Ledger>,
    /// Step 9: held requests and their approvals.
    pub approvals: Approvals,
    /// Step 11: the pooled upstream client.
    pub upstream: Arc<Upstream>,
    /// Counters for Prometheus.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Spans and GenAI metrics (OpenTelemetry), fed by the record.
    pub telemetry: crate::telemetry::Telemetry,
}

impl Pipeline {
    /// One request, from arrival to the response the agent receives.
    pub async fn handle(
        &self,
        client: Arc<ClientInfo>,
        req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        // 1. accept: the proxy authenticated the agent and made the URI absolute; gather the facts.
        let ctx = match RequestCtx::new(client.clone(), &req) {
            Ok(ctx) => ctx,
            Err(err) => {
                tracing::warn!(reason = %err.reason, "request refused before its steps");
                let refusal = Refusal::of_request(&client, &req, &err);
                let recorded = err.is_own_refusal().then(|| self.refused(&refusal));
                return err.recorded_decision(recorded.flatten()).to_response();
            }
        };
        // 13. record: a drop guard, so the record is written on success, error, and also when
        //     the agent hangs up and this future is dropped mid-step.
        let audit = self.judge.audit().clone();
        let mut record = Record::begin(ctx, audit, self.ledger.clone(), self.metrics.clone());
        record.ctx.trace = self.telemetry.request(req.headers());
        match self.run(&mut record.ctx, req).await {
            // 12. respond: the record rides along in the body and is written when it ends.
            Ok(response) => respond::streamed(record, response),
            Err(err) => {
                let err = self.audit_own_refusal(&record.ctx, err);
                record.failed(&err);
                err.to_response_shaped(&record.ctx.shape)
            }
        }
    }

    /// Steps 2 to 12 of a request; an error ends it where it happens.
    async fn run(
        &self,
        ctx: &mut RequestCtx,
        req: Request<Incoming>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // 2. connect rules: a plain-HTTP request never passed a CONNECT, so the guard and the
        //    host-level rules judge it before anything else touches it.
        self.plain_http_connect(ctx).await?;
        // 4. inspect: the whole body, bounded and decoded, and what it carries. A body that
        //    cannot be read whole, decoded or parsed goes on as uninspected: refused unless a
        //    rule says `allow_uninspected`, and then forwarded exactly as it came.
        let (mut request, mut facts) = self.inspect(ctx, req).await?;
        // 4. (credentials) a request to a brokered host carries the placeholder, never a key
        //    of the agent's own (which would pick the account that pays and receives the data).
        self.check_credentials(ctx, &request)?;
        // 5. detect: personal data and secrets, as kinds and counts, so rules can read them and
        //    the record can say what was there.
        self.detect(ctx, &request, &mut facts);
        // 6. locate: the checked, pinned address the upstream connection will really use, before
        //    evaluate, so rules can read where the bytes go.
        self.locate(ctx, &mut facts).await?;
        // 6. (metering) a provider endpoint the proxy cannot meter must not spend past a budget.
        facts.unmetered = self.ledger.unmetered(&facts);
        // 7. evaluate: every rule of the request's triggers; deny by default, recorded first.
        let admitted = self.evaluate(ctx, &request, &facts)?;
        // 8. reserve: pace, then the call's worst case in every budget, before a person is asked
        //    (a budget that cannot pay must not wait for one) and before a byte leaves.
        let admitted = self
            .reserve(ctx, &mut request, &mut facts, admitted)
            .await?;
        // 9. approve: a request a rule or a tripped breaker holds waits here for a person.
        self.approve(ctx, &request, &facts, admitted.hold.as_ref())
            .await?;
        // 10. redact: what the verdict obliges, in the body and the query, after a reviewer saw
        //     the request (masked) and before anything leaves.
        self.redact(ctx, &mut request, &mut facts, &admitted.obligations)?;
        // 11. forward: pooled, verified, bounded in time; exactly the bytes that were judged.
        let answer = self.forward(ctx, request, &facts).await?;
        // 12. respond: response rules judge the answer whole when one could apply; otherwise it
        //     streams back untouched (metered, pseudonyms restored) from `handle`.
        self.judge_answer(ctx, facts, answer).await
    }

    /// Puts a refusal the proxy made on its own (guard, inspection) in the audit trail; policy
    /// decisions are already there, upstream failures are not decisions. The error names where
    /// the trail holds it: the decision, the proxy's own refusal, else the outcome record.
    fn audit_own_refusal(&self, ctx: &RequestCtx, err: ProxyError) -> ProxyError {
        let facts = || {
            let line = (ctx.method.as_str(), ctx.scheme.as_str());
            let host = (ctx.target.host.as_string(), ctx.target.port);
            let request = RequestFacts::new(line, host, &ctx.path, None, None);
            facts::facts(Trigger::HttpRequest, &ctx.client, request)
        };
        let err = self.judge.own_refusal(facts, &ctx.id, err);
        err.recorded_as(Recorded::Request(ctx.id.clone()))
    }
}

impl Handler for Pipeline {
    fn refused(&self, refusal: &Refusal<'_>) -> Option<String> {
        self.telemetry.refused(refusal);
        self.judge.record_proxy_refusal(refusal)
    }

    fn tunnel_closed(&self, client: &ClientInfo, target: &Target, end: &TunnelEnd) {
        self.judge.record_tunnel_end(client, target, end);
        self.telemetry.tunnel_closed(client, target, end);
    }

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
        // Boxed: the request's future is some kilobytes, and hyper moves what it is given.
        Box::pin(self.handle(client, req)).await
    }
}
