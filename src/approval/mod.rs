//! Step 9, approve: a request a rule (or a tripped budget breaker) holds waits for a person. It is
//! parked as an approval in the store, bound to its fingerprint (agent, method, URL, body hash);
//! reviewers are notified ([`notify`]); the agent's connection waits up to `approvals.wait`.
//! Approved → the request goes on (the approval is used once); denied or expired → 403 with the
//! reason; no decision yet → 408 with the approval id and `Retry-After`, and the retry (same
//! fingerprint) re-attaches to the same approval. Reviewers see the URL and body with every kind
//! of personal data masked.

pub mod notify;
mod settings;

pub use notify::{Notifier, NotifyError};
pub use settings::{ApprovalsConfig, Webhook, WebhookFormat};

use std::sync::Arc;
use std::time::{Duration, Instant};

use ring::digest;
use serde_json::{Value, json};

use crate::audit::ApprovalRecord;
use crate::error::{DecisionRef, ErrorKind, ProxyError, Side};
use crate::metrics::Metrics;
use crate::pii::Redactor;
use crate::policy::Facts;
use crate::store::{Approval, ApprovalStatus, Held, NewHold, Store};

/// How long a client told to retry (408) should wait first.
const RETRY_AFTER_SECONDS: u32 = 2;

/// Most characters of a body shown to reviewers.
const PREVIEW_CHARS: usize = 2000;

/// Held requests, their store and their notifications.
pub struct Approvals {
    config: ApprovalsConfig,
    store: Arc<Store>,
    notifier: Notifier,
    metrics: Arc<Metrics>,
}

/// Why a request is held: the rules (and tripped budget breakers, `budget-breaker:ID`) that hold
/// it, and the decision that did.
#[derive(Debug, Clone)]
pub struct HoldReason {
    /// Rule ids, then breakers.
    pub rules: Vec<String>,
    /// The decision id.
    pub decision: String,
}

impl HoldReason {
    /// The decision as a refusal names it.
    fn decision_ref(&self) -> DecisionRef {
        DecisionRef {
            id: self.decision.clone(),
            rules: self.rules.clone(),
        }
    }
}

/// A held request, as the proxy would forward it.
pub struct HeldRequest<'a> {
    /// The request's facts.
    pub facts: &'a Facts,
    /// `scheme://host:port/path?query`, shown to reviewers (masked).
    pub url: String,
    /// The request's URI as sent upstream, for the fingerprint.
    pub uri: String,
    /// The body as it would be forwarded.
    pub body: &'a [u8],
    /// Why it is held.
    pub reason: &'a HoldReason,
}

/// What reviewers see of a held request: personal data masked.
struct Shown {
    url: String,
    preview: String,
}

impl Approvals {
    /// Held requests of `config`, kept in `store`.
    pub fn new(
        config: ApprovalsConfig,
        store: Arc<Store>,
        notifier: Notifier,
        metrics: Arc<Metrics>,
    ) -> Approvals {
        Approvals {
            config,
            store,
            notifier,
            metrics,
        }
    }

    /// Every second: pending approvals past their expiry count as denied.
    pub async fn housekeeping(&self) -> Result<(), crate::store::StoreError> {
        self.store
            .expire_approvals(crate::store::now())
            .await
            .map(|_| ())
    }

    /// 9. approve: parks `held` (or re-attaches it to its pending approval) and waits for a
    ///    person's decision; `Ok` when approved. Returns, whatever the outcome, what happened for
    ///    the audit trail. A refusal names the decision and rules that held the request.
    pub async fn wait(
        &self,
        held: &HeldRequest<'_>,
        masker: &Redactor,
    ) -> (Result<(), ProxyError>, Option<ApprovalRecord>) {
        let shown = Shown {
            url: masker.preview(&held.url),
            preview: masker.preview(&String::from_utf8_lossy(held.body)),
        };
        let mut record = None;
        let outcome = self.wait_for(held, &shown, &mut record).await;
        let outcome = outcome.map_err(|err| match err.kind {
            ErrorKind::Internal => err,
            _ => err.with_decision(held.reason.decision_ref()),
        });
        (outcome, record)
    }

    async fn wait_for(
        &self,
        held: &HeldRequest<'_>,
        shown: &Shown,
        record: &mut Option<ApprovalRecord>,
    ) -> Result<(), ProxyError> {
        let started = Instant::now();
        let now = crate::store::now();
        let summary = summary(held, shown);
        let agent = &held.facts.agent.id;
        let hold = NewHold {
            id: new_id()?,
            fingerprint: fingerprint(agent, &held.facts.request.method, &held.uri, held.body),
            agent: agent.clone(),
            summary: summary.to_string(),
            now,
            expires_at: now + seconds(self.config.expire_after),
            max_per_agent: i64::from(self.config.max_pending_per_agent),
            max_total: i64::from(self.config.max_pending),
        };
        let (approval, attached) = match self.store.hold(&hold).await.map_err(store_failed)? {
            Held::Full(reason) => {
                return Err(ProxyError::new(
                    ErrorKind::Forbidden,
                    Side::Agent,
                    format!("rule held this request for approval, but {reason}; refused"),
                ));
            }
            Held::Created(approval) => {
                self.notifier.pending(&approval.id, agent, &summary);
                (approval, false)
            }
            Held::Attached(approval) => (approval, true),
        };
        let _waiting = Waiting::start(&self.metrics);
        let id = approval.id.clone();
        let deadline = started + self.config.wait;
        loop {
            // Subscribe before reading, so a decision made in between still wakes us.
            let mut changes = self.store.changes();
            let current = self
                .store
                .approval(&id)
                .await
                .map_err(store_failed)?
                .ok_or_else(|| ProxyError::internal(format!("approval {id} vanished")))?;
            let outcome = self.settled(&current).await;
            *record = Some(ApprovalRecord::of(&current, attached, started.elapsed()));
            match outcome {
                Some(Ok(())) => return Ok(()),
                Some(Err(err)) => return Err(err),
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProxyError::new(
                    ErrorKind::ApprovalPending,
                    Side::Agent,
                    format!(
                        "held for human approval: approval {id} is pending (rules {}); retry \
                         the same request to wait for the decision",
                        held.reason.rules.join(", ")
                    ),
                )
                .with_retry_after(Some(RETRY_AFTER_SECONDS))
                .with_approval(id));
            }
            let nap = left.min(self.config.poll_interval);
            tokio::select! {
                _ = changes.changed() => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// What `approval` means for the waiting request: `None` while pending.
    async fn settled(&self, approval: &Approval) -> Option<Result<(), ProxyError>> {
        let by = |a: &Approval| {
            let reviewer = a.reviewer.as_deref().unwrap_or("a reviewer");
            let reason = a.reason.as_deref().filter(|r| !r.is_empty());
            match reason {
                Some(reason) => format!("{reviewer}: {reason}"),
                None => reviewer.to_string(),
            }
        };
        let refused = |message: String| {
            Some(Err(ProxyError::new(
                ErrorKind::Forbidden,
                Side::Agent,
                message,
            )
            .with_approval(approval.id.clone())))
        };
        match approval.status {
            ApprovalStatus::Pending if approval.expires_at < crate::store::now() => refused(
                format!("approval {} expired without a decision", approval.id),
            ),
            ApprovalStatus::Pending => None,
            ApprovalStatus::Approved => match self.store.consume(&approval.id).await {
                Ok(true) => Some(Ok(())),
                Ok(false) => refused(format!(
                    "approval {} was already used by another request",
                    approval.id
                )),
                Err(e) => Some(Err(store_failed(e))),
            },
            ApprovalStatus::Denied => refused(format!(
                "approval {} denied by {}",
                approval.id,
                by(approval)
            )),
            ApprovalStatus::Expired => refused(format!(
                "approval {} expired without a decision",
                approval.id
            )),
            ApprovalStatus::Used => refused(format!(
                "approval {} was already used by another request",
                approval.id
            )),
        }
    }
}

/// Counts a request as held while it waits.
struct Waiting<'a>(&'a Metrics);

impl<'a> Waiting<'a> {
    fn start(metrics: &'a Metrics) -> Waiting<'a> {
        metrics.held().inc();
        Waiting(metrics)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.held().dec();
    }
}

/// What reviewers see: who, what, why, and a redacted preview. Never a raw personal-data value.
fn summary(held: &HeldRequest<'_>, shown: &Shown) -> Value {
    let facts = held.facts;
    let rules = &held.reason.rules;
    let mut preview: String = shown.preview.chars().take(PREVIEW_CHARS).collect();
    if shown.preview.chars().nth(PREVIEW_CHARS).is_some() {
        preview.push('…');
    }
    json!({
        "agent": facts.agent.id,
        "team": facts.agent.team,
        "trigger": facts.trigger.name(),
        "method": facts.request.method,
        "url": shown.url,
        "rules": rules,
        "decision": held.reason.decision,
        "reason": format!("rule {} holds this request for human approval", rules.join(", ")),
        "model": facts.llm.as_ref().map(|l| l.model.clone()),
        "tool": facts.tool.as_ref().map(|t| t.name.clone()),
        "pii": facts.pii.counts,
        "preview": preview,
    })
}

/// Hex SHA-256 of what makes a request the same request.
fn fingerprint(agent: &str, method: &str, url: &str, body: &[u8]) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [agent.as_bytes(), method.as_bytes(), url.as_bytes()] {
        ctx.update(part);
        ctx.update(&[0]);
    }
    ctx.update(body);
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_id() -> Result<String, ProxyError> {
    crate::random::random_hex(8)
        .map(|hex| format!("apv_{hex}"))
        .map_err(|_| ProxyError::internal("no randomness for an approval id"))
}

fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

fn store_failed(e: crate::store::StoreError) -> ProxyError {
    tracing::error!(error = %e, "approval store failed; the held request is refused");
    ProxyError::internal("the approval store could not be reached; the request was not forwarded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_tells_requests_apart_by_each_part() {
        let base = fingerprint("a", "POST", "https://x/y?q=1", b"{}");
        assert_eq!(base, fingerprint("a", "POST", "https://x/y?q=1", b"{}"));
        for other in [
            fingerprint("b", "POST", "https://x/y?q=1", b"{}"),
            fingerprint("a", "PUT", "https://x/y?q=1", b"{}"),
            fingerprint("a", "POST", "https://x/y?q=2", b"{}"),
            fingerprint("a", "POST", "https://x/y?q=1", b"{ }"),
            fingerprint("aP", "OST", "https://x/y?q=1", b"{}"),
        ] {
            assert_ne!(base, other);
        }
        let id = new_id().unwrap();
        assert!(id.starts_with("apv_") && id.len() == 20);
    }
}
