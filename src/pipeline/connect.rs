//! Step 2, connect rules: the host-level verdict on a tunnel (and on a plain-HTTP request, which
//! never passed a CONNECT) before any TLS work, with the network guard's check of the destination.

use super::facts::{self, destination_facts};
use super::{Pipeline, RequestCtx};
use crate::audit::Judgement;
use crate::error::ProxyError;
use crate::policy::{RequestFacts, Subject, Trigger};
use crate::proxy::resolve::Pinned;
use crate::proxy::target::Target;
use crate::proxy::{ClientInfo, ConnectPlan};
use crate::random::request_id;

impl Pipeline {
    /// 2. A CONNECT: judged, recorded once, and planned (refused, relayed or intercepted). Listed
    ///    hosts are relayed without interception.
    pub(super) async fn judge_connect(
        &self,
        client: &ClientInfo,
        target: &Target,
    ) -> Result<ConnectPlan, ProxyError> {
        let id = request_id();
        let (judgement, decided) = self.host_level(client, target, (&id, id.clone())).await;
        let plan = decided.map(|pinned| {
            if self.tunnel_hosts.matches(&target.host.as_string()) {
                ConnectPlan::Relay(pinned)
            } else {
                ConnectPlan::Intercept
            }
        });
        // A refusal names its record: its decision, the proxy's own, or the allowing decision.
        let plan = plan.map_err(|err| {
            let allowed = judgement.as_ref().map(|j| j.id.clone());
            let facts = || self.connect_facts(client, target, &[]);
            self.judge
                .own_refusal(facts, &request_id(), err)
                .recorded_decision(allowed)
        });
        // 13. record: every CONNECT decision is written once, with its reason and rules.
        let version = self.judge.policy_version();
        crate::audit::connect_decision(client, target, &plan, judgement.as_ref(), &version);
        self.telemetry
            .connect_decided(client, target, &plan, judgement.as_ref());
        plan
    }

    /// 2. for a plain-HTTP request: it never passed a CONNECT, so the guard and the host-level
    ///    rules judge it first.
    pub(super) async fn plain_http_connect(&self, ctx: &mut RequestCtx) -> Result<(), ProxyError> {
        if ctx.client.tunnel.is_some() {
            return Ok(());
        }
        let client = ctx.client.clone();
        let ids = (ctx.id.as_str(), format!("{}-c", ctx.id));
        let (judgement, decided) = self.host_level(&client, &ctx.target, ids).await;
        ctx.judgements.extend(judgement);
        decided.map(|_| ())
    }

    /// The network guard and the `connect` rules. The rules judge before any DNS look-up unless
    /// one reads the destination and, judged without it, they could still admit the host: a host
    /// they refuse whatever its address is never looked up (a name can carry a secret to the
    /// name server that answers for it). Otherwise the destination is resolved (and checked)
    /// first so they can read it.
    async fn host_level(
        &self,
        client: &ClientInfo,
        target: &Target,
        (request_id, decision_id): (&str, String),
    ) -> (Option<Judgement>, Result<Pinned, ProxyError>) {
        let unlocated = self.connect_facts(client, target, &[]);
        let reads_destination = self.judge.reads_destination(Trigger::Connect);
        let pinned = if reads_destination && self.judge.may_admit_once_located(&unlocated) {
            match self.destination(target).await {
                Ok(pinned) => Some(pinned),
                Err(err) => return (None, Err(err)),
            }
        } else {
            None
        };
        let facts = match &pinned {
            Some(pinned) => self.connect_facts(client, target, pinned),
            None => unlocated,
        };
        let (judgement, verdict) =
            self.judge
                .decide(&facts, (request_id, decision_id), Subject::Connect);
        let decided = match (verdict, pinned) {
            (Err(err), _) => Err(err),
            (Ok(_), Some(pinned)) => Ok(pinned),
            // Rules that read the destination never admit a host judged without it (the
            // policies changed in between): refused, never resolved after the fact.
            (Ok(_), None) if reads_destination => Err(ProxyError::internal(
                "the connect rules changed while the host was judged",
            )),
            (Ok(_), None) => self.destination(target).await,
        };
        (Some(judgement), decided)
    }

    /// The facts of a destination seen as the CONNECT for it, at the checked `addresses`.
    fn connect_facts(
        &self,
        client: &ClientInfo,
        target: &Target,
        addresses: &[std::net::SocketAddr],
    ) -> crate::policy::Facts {
        let host = (target.host.as_string(), target.port);
        let request = RequestFacts::new(("CONNECT", ""), host, "", None, None);
        let mut facts = facts::facts(Trigger::Connect, client, request);
        facts.destination = destination_facts(addresses, &self.geo);
        facts
    }

    /// 6. locate: the checked, pinned addresses the upstream connection will really use, and where
    ///    they are.
    pub(super) async fn locate(
        &self,
        ctx: &mut RequestCtx,
        facts: &mut crate::policy::Facts,
    ) -> Result<(), ProxyError> {
        let pinned = self.destination(&ctx.target).await?;
        facts.destination = destination_facts(&pinned, &self.geo);
        ctx.destination = Some(pinned);
        Ok(())
    }
    /// The network guard's verdict on a destination: its checked addresses, or a refusal.
    pub(super) async fn destination(&self, target: &Target) -> Result<Pinned, ProxyError> {
        Ok(self.resolver.resolve(target).await?)
    }
}
