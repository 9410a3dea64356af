//! Step 2, connect rules: the host-level verdict on a tunnel (and on a plain-HTTP request, which
//! never passed a CONNECT) before any TLS work, with the network guard's check of the destination.

use super::judge::{self, Judgement};
use super::{Pipeline, ctx::new_id, is_own_refusal, record};
use crate::error::ProxyError;
use crate::policy::Trigger;
use crate::proxy::resolve::Pinned;
use crate::proxy::target::Target;
use crate::proxy::{ClientInfo, ConnectPlan};

impl Pipeline {
    /// 2. A CONNECT: judged, recorded once, and planned (refused, relayed or intercepted).
    pub(super) async fn judge_connect(
        &self,
        client: &ClientInfo,
        target: &Target,
    ) -> Result<ConnectPlan, ProxyError> {
        let mut judgement = None;
        let decision = self.connect_rules(client, target, &mut judgement).await;
        if let Err(err) = &decision
            && is_own_refusal(err)
        {
            let facts = judge::facts(
                Trigger::Connect,
                client,
                &judge::connect_line(target),
                &[],
                &self.geo,
            );
            self.judge.record_refusal(&facts, &new_id(), err);
        }
        // 13. record: every CONNECT decision is written once, with its reason and rules.
        record::connect_decision(
            client,
            target,
            &decision,
            judgement.as_ref(),
            &self.judge.policy_version(),
        );
        decision
    }

    /// 2. connect rules: host-level verdict before any TLS work; listed hosts are relayed without
    ///    interception.
    async fn connect_rules(
        &self,
        client: &ClientInfo,
        target: &Target,
        judgement: &mut Option<Judgement>,
    ) -> Result<ConnectPlan, ProxyError> {
        let id = new_id();
        let mut judgements = Vec::with_capacity(1);
        let decided = self
            .host_level(client, target, (id.clone(), id), &mut judgements)
            .await;
        *judgement = judgements.pop();
        let pinned = decided?;
        if self.tunnel_hosts.matches(&target.host.as_string()) {
            Ok(ConnectPlan::Relay(pinned))
        } else {
            Ok(ConnectPlan::Intercept)
        }
    }

    /// The network guard and the `connect` rules. When no `connect` rule reads the destination,
    /// the rules judge first, so a host they refuse is never even looked up in DNS; otherwise the
    /// destination is resolved (and checked) first so they can read it.
    pub(super) async fn host_level(
        &self,
        client: &ClientInfo,
        target: &Target,
        (request_id, decision_id): (String, String),
        judgements: &mut Vec<Judgement>,
    ) -> Result<Pinned, ProxyError> {
        let pinned = if self.judge.reads_destination(Trigger::Connect) {
            Some(self.destination(target).await?)
        } else {
            None
        };
        let addresses = pinned.as_deref().unwrap_or_default();
        let facts = judge::facts(
            Trigger::Connect,
            client,
            &judge::connect_line(target),
            addresses,
            &self.geo,
        );
        let (judgement, outcome) = self.judge.decide(&facts, &request_id, decision_id);
        judgements.push(judgement);
        outcome?;
        match pinned {
            Some(pinned) => Ok(pinned),
            None => self.destination(target).await,
        }
    }
}
