//! How held requests wait, queue and are announced, as config states it, validated.

use std::time::Duration;

/// How held requests wait for a person.
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    /// How long the agent's connection waits for a decision before a 408.
    pub wait: Duration,
    /// A pending approval then counts as denied; an approval stays usable this long after it is
    /// given.
    pub expire_after: Duration,
    /// Pending approvals one agent may have.
    pub max_pending_per_agent: u32,
    /// Pending approvals in all.
    pub max_pending: u32,
    /// How often a waiting request reads its approval again even without a notification.
    pub poll_interval: Duration,
    /// The dashboard's address, for links in notifications.
    pub dashboard_url: String,
    /// Where new approvals are announced.
    pub webhooks: Vec<Webhook>,
}

/// A notification target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `http://` or `https://` URL.
    pub url: http::Uri,
    /// The message's shape.
    pub format: WebhookFormat,
}

/// Shapes of notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    /// `{"event": "approval.pending", "approval": {...}, "dashboard": "..."}`.
    Json,
    /// A Slack incoming-webhook message (`{"text": ..., "blocks": [...]}`).
    Slack,
}
