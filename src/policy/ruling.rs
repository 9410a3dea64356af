//! What a decision means for the thing it judged: the verdict that lets it go on, or the refusal
//! the agent reads, in words that name the deciding rules (or say that none allowed it).

use super::facts::Facts;
use super::resolve::{Decision, Verdict};

/// What is judged. Only a request inspected whole can wait for a person: a hold verdict on a
/// tunnel, an answer or a body that could not be read is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A request whose body was inspected.
    Request,
    /// A request whose body could not be inspected; `too_large` when it exceeds the limit.
    Uninspected {
        /// The body exceeds the limit.
        too_large: bool,
    },
    /// A CONNECT, or a plain-HTTP request's host-level rules.
    Connect,
    /// An upstream's answer.
    Answer,
}

/// A refusal, as the agent is told it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why, naming the deciding rules and their message.
    pub reason: String,
    /// The body was too large to read and no rule refused it: the default deny is a 413.
    pub too_large: bool,
}

impl Decision {
    /// What this decision on `facts` means for `subject`: the verdict it goes on with (never
    /// `Deny`), or the refusal.
    pub fn ruling(&self, facts: &Facts, subject: Subject) -> Result<Verdict, Refusal> {
        let refuse = |reason: String| {
            Err(Refusal {
                too_large: false,
                reason,
            })
        };
        let rules = self
            .deciding
            .iter()
            .map(|r| format!("`{r}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let message = self
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let body = &facts.body;
        match &self.verdict {
            Verdict::Allow { .. } => Ok(self.verdict.clone()),
            Verdict::Hold { .. } if subject == Subject::Request => Ok(self.verdict.clone()),
            Verdict::Deny if self.is_default_deny() && !body.inspected => Err(Refusal {
                too_large: subject == (Subject::Uninspected { too_large: true }),
                reason: format!(
                    "{}; the request was not forwarded uninspected (no allowing rule says \
                     `allow_uninspected: true`)",
                    body.problem
                ),
            }),
            Verdict::Deny if self.is_default_deny() && facts.unmetered.is_some() => {
                refuse(format!(
                    "{} on {} is an LLM provider endpoint the proxy does not meter, and a budget \
                 covers this agent; refused (a rule with `allow_unmetered: true` lets it through \
                 unmetered; a WebSocket to a provider never is)",
                    facts.unmetered.as_deref().unwrap_or_default(),
                    facts.request.host
                ))
            }
            Verdict::Deny if self.is_default_deny() && facts.request.websocket => refuse(format!(
                "a WebSocket to {} is refused unless a rule allows it with `allow_websocket: \
                 true` (its messages are then judged one by one)",
                facts.request.host
            )),
            Verdict::Deny if self.is_default_deny() => refuse(format!(
                "denied by default: no rule allows this {} request",
                facts.trigger
            )),
            Verdict::Deny => refuse(format!("denied by rule {rules}{message}")),
            Verdict::Hold { .. } => refuse(format!(
                "rule {rules} holds this for human approval{message}; only requests can wait \
                 for a person (a tunnel or an answer cannot), so it is refused"
            )),
        }
    }
}
