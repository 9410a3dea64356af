//! Announcing held requests: a generic JSON webhook and a Slack-compatible incoming-webhook
//! message, each with the request's summary (never a raw body: the preview is already redacted)
//! and a link to the dashboard. Sent in the background with a short timeout; a failed delivery is
//! logged and never holds up the request.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use super::{Webhook, WebhookFormat};

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

/// Why notifications cannot be sent.
#[derive(Debug, thiserror::Error)]
#[error("webhook client: {0}")]
pub struct NotifyError(String);

/// Sends notifications to the configured webhooks.
#[derive(Clone)]
pub struct Notifier {
    hooks: Vec<Webhook>,
    dashboard: String,
    /// Built only when there is a webhook to send to (it loads the system roots).
    client: Option<Client<Https, Full<Bytes>>>,
}

impl Notifier {
    /// A notifier for `hooks`, linking to `dashboard`, trusting the system roots and
    /// `extra_ca_files`.
    pub fn new(
        hooks: Vec<Webhook>,
        dashboard: String,
        extra_ca_files: &[std::path::PathBuf],
    ) -> Result<Notifier, NotifyError> {
        let client = if hooks.is_empty() {
            None
        } else {
            let tls = crate::proxy::tls::client_config(extra_ca_files)
                .map_err(|e| NotifyError(e.to_string()))?;
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .build();
            Some(Client::builder(TokioExecutor::new()).build(connector))
        };
        Ok(Notifier {
            hooks,
            dashboard,
            client,
        })
    }

    /// Announces a new pending approval (`summary` is what reviewers see) to every webhook.
    pub fn pending(&self, id: &str, agent: &str, summary: &Value) {
        let Some(client) = &self.client else {
            return;
        };
        for hook in &self.hooks {
            let body = message(hook.format, id, agent, summary, &self.dashboard);
            let request = http::Request::post(hook.url.clone())
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(Bytes::from(body.to_string())));
            let Ok(request) = request else {
                continue;
            };
            let client = client.clone();
            let target = format!(
                "{}://{}",
                hook.url.scheme_str().unwrap_or("http"),
                hook.url.authority().map_or("", |a| a.as_str())
            );
            tokio::spawn(async move {
                let sent = tokio::time::timeout(Duration::from_secs(10), client.request(request));
                match sent.await {
                    Ok(Ok(response)) if response.status().is_success() => {}
                    Ok(Ok(response)) => {
                        tracing::warn!(%target, status = %response.status(), "webhook refused the approval notification");
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(%target, error = %e, "approval notification not delivered");
                    }
                    Err(_) => tracing::warn!(%target, "approval notification timed out"),
                }
            });
        }
    }
}

/// The message for one webhook.
pub fn message(
    format: WebhookFormat,
    id: &str,
    agent: &str,
    summary: &Value,
    dashboard: &str,
) -> Value {
    let link = if dashboard.is_empty() {
        String::new()
    } else {
        format!("{}#approval={id}", dashboard.trim_end_matches('#'))
    };
    match format {
        WebhookFormat::Json => json!({
            "event": "approval.pending",
            "approval": id,
            "agent": agent,
            "summary": summary,
            "dashboard": link,
        }),
        WebhookFormat::Slack => {
            let what = format!(
                "{} {}",
                summary["method"].as_str().unwrap_or(""),
                summary["url"].as_str().unwrap_or("")
            );
            let why = summary["reason"].as_str().unwrap_or("");
            let mut text = format!(
                "Gatehouse is holding a request of agent `{agent}` for approval `{id}`: {what}\n{why}"
            );
            if !link.is_empty() {
                text.push_str(&format!("\n<{link}|Review it on the dashboard>"));
            }
            json!({
                "text": text,
                "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_carry_the_summary_and_the_link() {
        let summary = json!({"method": "POST", "url": "https://pay.example/refunds",
                             "reason": "rule big-refund holds this request"});
        let generic = message(
            WebhookFormat::Json,
            "apv_1",
            "a1",
            &summary,
            "http://127.0.0.1:8081/",
        );
        assert_eq!(generic["event"], "approval.pending");
        assert_eq!(generic["summary"]["url"], "https://pay.example/refunds");
        assert_eq!(
            generic["dashboard"],
            "http://127.0.0.1:8081/#approval=apv_1"
        );
        let slack = message(WebhookFormat::Slack, "apv_1", "a1", &summary, "http://d/");
        let text = slack["text"].as_str().unwrap();
        assert!(text.contains("POST https://pay.example/refunds"), "{text}");
        assert!(
            text.contains("<http://d/#approval=apv_1|Review it"),
            "{text}"
        );
        assert_eq!(slack["blocks"][0]["text"]["text"], slack["text"]);
    }
}
