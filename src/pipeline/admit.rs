//! Steps 7, 8 and 9 of a request: the rules, then money and pace, then a person. The verdict
//! either refuses the request or admits it with its obligations, perhaps only once a person
//! approves; a budget breaker with `on_trip: hold` can add that condition.

use super::{Pipeline, RequestCtx};
use crate::approval::{HeldRequest, HoldReason};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::policy::Subject;
use crate::policy::{Facts, Obligation, Verdict};
use crate::proxy::outgoing::Outgoing;

/// A request the rules let through: with these redactions, and only after a person approves
/// when it is held.
pub(super) struct Admitted {
    /// The redactions the verdict obliges.
    pub obligations: Vec<Obligation>,
    /// Why a person must approve it first, when one must.
    pub hold: Option<HoldReason>,
}

impl Pipeline {
    /// 7. evaluate: the facts against the rules of the request's triggers (and of
    ///    `http.request`); deny by default. The decision is in the audit trail before anything
    ///    else happens.
    pub(super) fn evaluate(
        &self,
        ctx: &mut RequestCtx,
        request: &Outgoing,
        facts: &Facts,
    ) -> Result<Admitted, ProxyError> {
        ctx.llm = facts
            .llm
            .as_ref()
            .map(|l| (l.provider.clone(), l.model.clone()));
        ctx.pii = facts.pii.counts.clone();
        let (judgement, verdict) =
            self.judge
                .decide(facts, (&ctx.id, ctx.id.clone()), subject(request));
        let hold = matches!(verdict, Ok(Verdict::Hold { .. })).then(|| HoldReason {
            rules: judgement.rules.clone(),
            decision: judgement.id.clone(),
        });
        ctx.judgements.push(judgement);
        let obligations = verdict?.obligations().to_vec();
        Ok(Admitted { obligations, hold })
    }

    /// 8. reserve: rate limits, paused agents and teams, the loop breaker; then an LLM call's
    ///    worst-case cost in every budget that covers the agent, before a person is asked or a
    ///    byte leaves. A held request's retries repeat it by design: the loop breaker does not
    ///    count them.
    pub(super) async fn reserve(
        &self,
        ctx: &mut RequestCtx,
        request: &mut Outgoing,
        facts: &mut Facts,
        mut admitted: Admitted,
    ) -> Result<Admitted, ProxyError> {
        let fingerprinted = request.inspected().filter(|_| admitted.hold.is_none());
        self.pace(facts, fingerprinted.map(|b| &b[..]))?;
        // A call a budget covers that sets no output limit gets one, so its reservation bounds
        // what the provider can bill.
        let limited = request
            .inspected()
            .and_then(|b| self.ledger.limit_output(facts, &ctx.path, b));
        if let Some(body) = limited {
            request.replace_body(body);
        }
        let (Some((_, model)), Some(body)) = (&ctx.llm, request.inspected()) else {
            return Ok(admitted);
        };
        let reserved = self.ledger.reserve_call(facts, model, body).await?;
        if let Some(budget) = &reserved.breaker_hold {
            let hold = admitted.hold.get_or_insert_with(|| HoldReason {
                rules: Vec::new(),
                decision: ctx.id.clone(),
            });
            hold.rules.push(format!("budget-breaker:{budget}"));
        }
        ctx.reserved = reserved;
        Ok(admitted)
    }

    /// 9. approve: a held request waits here for a person (approved, denied, or 408 to retry).
    pub(super) async fn approve(
        &self,
        ctx: &mut RequestCtx,
        request: &Outgoing,
        facts: &Facts,
        hold: Option<&HoldReason>,
    ) -> Result<(), ProxyError> {
        let Some(reason) = hold else {
            return Ok(());
        };
        // Only a body read whole can be shown and fingerprinted; the rules refuse holds on any
        // other, so this is a bug of ours if it happens: refuse rather than forward unapproved.
        let body = request.inspected().ok_or_else(|| {
            ProxyError::internal("a request whose body was not inspected cannot be held")
        })?;
        let host = ctx.target.host.as_string();
        let held = HeldRequest {
            facts,
            url: ctx.url(request.uri().query()),
            uri: request.uri().to_string(),
            body,
            reason,
            replaced: self.broker.replaced(ctx.brokered_at(&host), ctx.sender()),
        };
        let (outcome, record) = self.approvals.wait(&held, &self.redactor).await;
        ctx.approval = record;
        outcome
    }

    /// Rate limits, paused agents or teams (by hand or by a breaker), and the loop breaker over
    /// `body` when it is given.
    fn pace(&self, facts: &Facts, body: Option<&[u8]>) -> Result<(), ProxyError> {
        if let Err(limited) = self.rate_limits.check(&facts.agent.id, &facts.request.host) {
            return Err(ProxyError::new(
                ErrorKind::RateLimited,
                Side::Agent,
                format!("rate limit of {} reached", limited.limit),
            )
            .with_retry_after(u32::try_from(limited.retry_after.as_secs().max(1)).ok()));
        }
        self.ledger.check_paused(facts)?;
        match body {
            Some(body) => self.ledger.check_repeats(facts, body),
            None => Ok(()),
        }
    }
}

/// What the rules judge: a request that can wait for a person, or one whose body could not be
/// inspected.
fn subject(request: &Outgoing) -> Subject {
    match request.uninspected_too_large() {
        None => Subject::Request,
        Some(too_large) => Subject::Uninspected { too_large },
    }
}
