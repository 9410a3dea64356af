//! Steps 8 and 9 of a request that passed its rules: money, then a person. An LLM call's worst
//! case is reserved in every budget that covers the agent (a tripped breaker refuses it, or asks a
//! person first); a request a rule or a breaker holds then waits for a human decision.

use super::Pipeline;
use super::ctx::RequestCtx;
use super::hold::HeldRequest;
use super::reserve::Reserved;
use crate::error::{DecisionRef, ErrorKind, ProxyError, Side};
use crate::policy::Facts;

/// The rules that hold a request and the decision id, when it is held.
pub(super) type Held = Option<(Vec<String>, String)>;

impl Pipeline {
    /// Step 8, reserve: an LLM call's worst-case cost in every budget that covers the agent,
    /// before a byte leaves; settled to the real cost when the answer ends. A breaker with
    /// `on_trip: hold` adds to `held` instead of refusing.
    pub(super) async fn reserve(
        &self,
        ctx: &mut RequestCtx,
        facts: &Facts,
        body: &[u8],
        held: &mut Held,
    ) -> Result<(), ProxyError> {
        let Some((_, model)) = &ctx.llm else {
            return Ok(());
        };
        let reserve = |breakers_approved| {
            self.budgets
                .reserve(&ctx.id, facts, model, &self.prices, body, breakers_approved)
        };
        let mut reserved = reserve(false).await?;
        if let Reserved::HoldForBreaker(budget) = reserved {
            held.get_or_insert_with(|| (Vec::new(), ctx.id.clone()))
                .0
                .push(format!("budget-breaker:{budget}"));
            reserved = reserve(true).await?;
        }
        let reservation = match reserved {
            Reserved::Done(reservation) => reservation,
            Reserved::HoldForBreaker(_) => None,
        };
        ctx.worst_case_nano = match &reservation {
            Some(reservation) => Some(reservation.nano),
            None => self
                .budgets
                .rough_worst_case(facts, model, &self.prices, body.len()),
        };
        ctx.reservation = reservation;
        Ok(())
    }

    /// Step 9, hold: waits for a person's decision on a held request; `Ok` once approved.
    /// Reviewers see the URL and body with personal data masked.
    pub(super) async fn hold(
        &self,
        ctx: &mut RequestCtx,
        facts: &Facts,
        parts: &http::request::Parts,
        body: &[u8],
        rules: Vec<String>,
        decision: String,
    ) -> Result<(), ProxyError> {
        let url = match parts.uri.query() {
            Some(query) => format!("{}://{}{}?{query}", ctx.scheme, ctx.target, ctx.path),
            None => format!("{}://{}{}", ctx.scheme, ctx.target, ctx.path),
        };
        let request = HeldRequest {
            facts,
            url: self.pii.preview(&url),
            full_url: parts.uri.to_string(),
            body,
            preview: self.pii.preview(&String::from_utf8_lossy(body)),
            rules: &rules,
            decision: &decision,
        };
        let mut approval = None;
        let waited = self.holds.wait(&request, &mut approval).await;
        ctx.approval = approval;
        waited.map_err(|mut err| {
            // The agent learns which decision and rules held it, as for any refusal.
            if err.kind != ErrorKind::Internal {
                err.decision = Some(Box::new(DecisionRef {
                    id: decision,
                    rules,
                }));
            }
            err
        })
    }

    /// Step 8 for every request: rate limits, agents or teams paused (by hand or by a breaker),
    /// and the loop breaker.
    pub(super) fn pace(&self, facts: &Facts, body: Option<&[u8]>) -> Result<(), ProxyError> {
        if let Err(limited) = self.rate_limits.check(&facts.agent.id, &facts.request.host) {
            let mut err = ProxyError::new(
                ErrorKind::RateLimited,
                Side::Agent,
                format!("rate limit of {} reached", limited.limit),
            );
            err.retry_after = u32::try_from(limited.retry_after.as_secs().max(1)).ok();
            return Err(err);
        }
        self.budgets.check_paused(facts)?;
        match body {
            Some(body) => self.budgets.check_repeats(facts, body),
            None => Ok(()),
        }
    }
}
