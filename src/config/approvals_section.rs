//! The `approvals` section (how held requests wait, queue and notify) and the `admin` section
//! (the admin API's listener and token).

use std::net::SocketAddr;

use super::compile::Compiler;
use super::raw::RawConfig;
use super::{ConfigError, Secret};
use crate::approval::{ApprovalsConfig, Webhook, WebhookFormat};

/// The admin listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The bearer token (`GATEHOUSE_ADMIN_TOKEN`, else `admin.token_file`); `None`: one is
    /// generated at start into the CA's folder (loopback only).
    pub token: Option<Secret>,
    /// The file the token was read from, when it was (`gatehouse run` refuses one others can read).
    pub token_file: Option<std::path::PathBuf>,
    /// Concurrent admin connections; more are closed at once.
    pub max_connections: usize,
}

impl Compiler<'_> {
    pub(super) fn approvals(&self, raw: &RawConfig) -> Result<ApprovalsConfig, ConfigError> {
        let a = &raw.approvals;
        let count = |v: &Option<serde_saphyr::Spanned<u32>>, key: &str, default: u32| match v {
            None => Ok(default),
            Some(n) if n.value > 0 => Ok(n.value),
            Some(n) => Err(self.invalid(Some(&n.referenced), key, "must be greater than 0")),
        };
        let mut webhooks = Vec::new();
        for (i, hook) in a.webhooks.iter().enumerate() {
            let key = format!("approvals.webhooks[{i}]");
            let url: http::Uri = hook
                .url
                .value
                .trim()
                .parse()
                .ok()
                .filter(|u: &http::Uri| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                })
                .ok_or_else(|| {
                    self.invalid(
                        Some(&hook.url.referenced),
                        &format!("{key}.url"),
                        format!("`{}` is not an http:// or https:// URL", hook.url.value),
                    )
                })?;
            let format = match hook.format.as_ref().map(|f| f.value.trim()) {
                None | Some("json") => WebhookFormat::Json,
                Some("slack") => WebhookFormat::Slack,
                Some(other) => {
                    return Err(self.invalid(
                        hook.format.as_ref().map(|f| &f.referenced),
                        &format!("{key}.format"),
                        format!("`{other}` is not a webhook format: json or slack"),
                    ));
                }
            };
            webhooks.push(Webhook { url, format });
        }
        Ok(ApprovalsConfig {
            wait: self.duration(&a.wait, "approvals.wait", 60)?,
            expire_after: self.duration(&a.expire_after, "approvals.expire_after", 15 * 60)?,
            max_pending_per_agent: count(
                &a.max_pending_per_agent,
                "approvals.max_pending_per_agent",
                20,
            )?,
            max_pending: count(&a.max_pending, "approvals.max_pending", 500)?,
            poll_interval: self.duration(&a.poll_interval, "approvals.poll_interval", 1)?,
            dashboard_url: a
                .dashboard_url
                .as_ref()
                .map(|u| u.value.trim().to_string())
                .unwrap_or_default(),
            webhooks,
        })
    }

    /// `admin`: `None` when `admin.listen` is `off`.
    pub(super) fn admin(&self, raw: &RawConfig) -> Result<Option<AdminConfig>, ConfigError> {
        let a = &raw.admin;
        let listen = match &a.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8081)),
            Some(s) if s.value.trim() == "off" => return Ok(None),
            Some(s) => s.value.trim().parse().map_err(|_| {
                self.invalid(
                    Some(&s.referenced),
                    "admin.listen",
                    format!(
                        "`{}` is not an address like 127.0.0.1:8081, or off",
                        s.value
                    ),
                )
            })?,
        };
        let from_env = std::env::var("GATEHOUSE_ADMIN_TOKEN")
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty());
        let token = match from_env {
            Some(token) => Some(token),
            None => self.secret(
                &None,
                &a.token_file,
                "admin",
                "token",
                "the admin API token",
            )?,
        };
        if token.is_none() && !listen.ip().is_loopback() {
            return Err(self.invalid(
                a.listen.as_ref().map(|l| &l.referenced),
                "admin.listen",
                format!(
                    "the admin API would listen on {listen} without a token: set \
                     GATEHOUSE_ADMIN_TOKEN or admin.token_file, or listen on loopback"
                ),
            ));
        }
        Ok(Some(AdminConfig {
            token_file: a
                .token_file
                .as_ref()
                .filter(|_| std::env::var_os("GATEHOUSE_ADMIN_TOKEN").is_none())
                .map(|f| std::path::PathBuf::from(f.value.trim())),
            listen,
            token: token.map(Secret::new),
            max_connections: super::compile::positive(
                self,
                &a.max_connections,
                "admin.max_connections",
                64,
            )?,
        }))
    }
}
