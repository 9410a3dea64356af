//! Step 9, approve: a request a rule (or a tripped budget breaker) holds waits for a person. It is
//! parked as an approval in the store, bound to its fingerprint (agent, method, URL, every header
//! but the hop's, traces and brokered credentials, and the body);
//! reviewers are notified ([`notify`]); the agent's connection waits up to `approvals.wait`.
//! Approved → the request goes on (the approval is used once); denied or expired → 403 with the
//! reason; no decision yet → 408 with the approval id and `Retry-After`, and the retry (same
//! fingerprint) re-attaches to the same approval; a retry that adds or changes a header (say
//! `X-HTTP-Method-Override`) is another request. Reviewers see the URL, every header and the whole
//! body, with secrets and every kind of personal data masked.

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

/// Headers an approval does not bind: they describe the connection or the proxy hop, carry a
/// trace id, or count an SDK's retries (a retry must find its approval). Credentials the broker
/// replaces are left out too (see [`HeldRequest::replaced`]). A trace header longer than
/// [`MAX_UNBOUND`] is bound all the same: it could carry data past the reviewer.
const UNBOUND_HEADERS: [&str; 17] = [
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "traceparent",
    "tracestate",
    "sentry-trace",
    "x-request-id",
    "x-amzn-trace-id",
    "x-stainless-retry-count",
    "x-stainless-timeout",
    "x-stainless-read-timeout",
];

/// The longest value of an unbound header.
const MAX_UNBOUND: usize = 256;

/// Headers whose values reviewers never see besides the API key headers
/// ([`crate::credentials::KEY_HEADERS`]): they hold credentials too.
const SECRET_HEADERS: [&str; 2] = ["cookie", "x-auth-token"];

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
    /// Header names the credential broker replaces before forwarding: not bound, not shown.
    pub replaced: Vec<String>,
    /// Why it is held.
    pub reason: &'a HoldReason,
}

/// What reviewers see of a held request: personal data and secrets masked, nothing cut.
struct Shown {
    url: String,
    body: String,
    headers: serde_json::Map<String, Value>,
}

impl HeldRequest<'_> {
    /// The headers an approval binds, by lower-case name (repeated ones joined), in order.
    fn bound_headers(&self) -> impl Iterator<Item = (&String, &String)> {
        self.facts.request.headers.iter().filter(|(name, value)| {
            let unbound = UNBOUND_HEADERS.contains(&name.as_str()) && value.len() <= MAX_UNBOUND;
            !unbound && !self.replaced.contains(name)
        })
    }
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
        // Every header the upstream would see, bound or not (trace ids too).
        let headers = held
            .facts
            .request
            .headers
            .iter()
            .filter(|(name, _)| {
                name.as_str() != "proxy-authorization" && !held.replaced.contains(name)
            })
            .map(|(name, value)| {
                let secret = crate::credentials::KEY_HEADERS
                    .iter()
                    .chain(&SECRET_HEADERS)
                    .any(|h| *h == name.as_str());
                let shown = if secret {
                    // Enough to tell one key from another, never enough to use it.
                    let count = value.chars().count();
                    let tail: String = match count > 16 {
                        true => value.chars().skip(count - 4).collect(),
                        false => String::new(),
                    };
                    format!("[secret: {count} characters, ending …{tail}]")
                } else {
                    masker.preview(value)
                };
                (name.clone(), Value::String(shown))
            })
            .collect();
        let shown = Shown {
            url: masker.preview(&held.url),
            body: masker.preview(&String::from_utf8_lossy(held.body)),
            headers,
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
            fingerprint: fingerprint(held),
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

/// What reviewers see: who, what, why, every header (secrets masked) and the whole body
/// (personal data masked), and the facts rules read. Never a raw personal-data value or secret.
fn summary(held: &HeldRequest<'_>, shown: &Shown) -> Value {
    let facts = held.facts;
    let rules = &held.reason.rules;
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
        "data": facts.data,
        "destination": {"ip": facts.destination.ip, "country": facts.destination.country},
        "headers": shown.headers,
        "preview": shown.body,
    })
}

/// Hex SHA-256 of what makes a request the same request: agent, method, URL, every bound header
/// and the body, each part length-prefixed so no two requests share one.
fn fingerprint(held: &HeldRequest<'_>) -> String {
    let request = &held.facts.request;
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut part = |bytes: &[u8]| {
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(bytes);
    };
    part(held.facts.agent.id.as_bytes());
    part(request.method.as_bytes());
    part(held.uri.as_bytes());
    for (name, value) in held.bound_headers() {
        part(name.as_bytes());
        part(value.as_bytes());
    }
    part(held.body);
    hex::encode(ctx.finish())
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
mod tests;
