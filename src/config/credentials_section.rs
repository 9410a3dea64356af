//! `credentials:` → the credential broker's [`Credential`]s. A credential names its host, where
//! the key goes (a header or a query parameter; the provider's usual place when the host is a
//! known provider) and where the secret is (`secret_env` or `secret_file`, never the config text).

use http::header::HeaderName;

use super::compile::Compiler;
use super::raw::{RawConfig, RawCredential};
use super::{ConfigError, HostPattern, HostPatterns};
use crate::credentials::{
    Broker, Credential, DEFAULT_PLACEHOLDER, SecretSource, Slot, default_prefix,
};
use crate::secret::Secret;

/// Where the built-in providers take their key.
const PROVIDER_SLOTS: [(&str, &str); 5] = [
    ("api.openai.com", "authorization"),
    ("api.anthropic.com", "x-api-key"),
    ("generativelanguage.googleapis.com", "x-goog-api-key"),
    ("*.openai.azure.com", "api-key"),
    ("*.cognitiveservices.azure.com", "api-key"),
];

impl Compiler<'_> {
    /// The brokered credentials; none may be for a host relayed without interception (`tunnel`).
    pub(super) fn credentials(
        &self,
        raw: &RawConfig,
        tunnel: &HostPatterns,
    ) -> Result<Broker, ConfigError> {
        let mut credentials = Vec::new();
        for (i, entry) in raw.credentials.iter().enumerate() {
            let key = format!("credentials[{i}]");
            let credential = self.credential(entry, &key)?;
            if let HostPattern::Exact(exact) = &credential.host
                && tunnel.matches(exact)
            {
                return Err(self.invalid(
                    Some(&entry.host.referenced),
                    &format!("{key}.host"),
                    format!(
                        "`{exact}` is also in tunnel.hosts: a relayed host is never intercepted, \
                         so no credential could be put on its requests"
                    ),
                ));
            }
            credentials.push(credential);
        }
        Ok(Broker::new(credentials, !raw.identity.agents.is_empty()))
    }

    fn credential(&self, raw: &RawCredential, key: &str) -> Result<Credential, ConfigError> {
        let host = HostPattern::parse(&raw.host.value)
            .map_err(|e| self.invalid(Some(&raw.host.referenced), &format!("{key}.host"), e))?;
        let path = raw
            .path
            .as_ref()
            .map(|p| {
                globset::GlobBuilder::new(p.value.trim())
                    .literal_separator(true)
                    .build()
                    .map(|g| g.compile_matcher())
                    .map_err(|e| {
                        self.invalid(Some(&p.referenced), &format!("{key}.path"), e.to_string())
                    })
            })
            .transpose()?;
        let slot = self.slot(raw, &host, key)?;
        let source = self.secret_source(raw, key)?;
        let require_placeholder = match &raw.require {
            None => false,
            Some(r) => match r.value.trim() {
                "placeholder" => true,
                "none" => false,
                other => {
                    return Err(self.invalid(
                        Some(&r.referenced),
                        &format!("{key}.require"),
                        format!("`{other}` is not a requirement: use `placeholder` or `none`"),
                    ));
                }
            },
        };
        let placeholder = match &raw.placeholder {
            None => DEFAULT_PLACEHOLDER.to_string(),
            Some(p) => {
                let value = p.value.trim();
                let ok = (8..=128).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if !ok {
                    return Err(self.invalid(
                        Some(&p.referenced),
                        &format!("{key}.placeholder"),
                        "a placeholder is 8 to 128 characters of A-Z a-z 0-9 - _ .",
                    ));
                }
                value.to_string()
            }
        };
        let named = raw.agent.as_ref();
        if let Some(agent) = named.filter(|a| a.value.trim() != super::ANONYMOUS_AGENT) {
            super::validate_agent_id(agent.value.trim())
                .map_err(|e| self.invalid(Some(&agent.referenced), &format!("{key}.agent"), e))?;
        }
        Ok(Credential {
            host,
            port: raw.port.unwrap_or(443),
            path,
            agent: raw.agent.as_ref().map(|a| a.value.trim().to_string()),
            team: raw.team.as_ref().map(|t| t.trim().to_string()),
            slot,
            source,
            placeholder,
            require_placeholder,
            agent_env: raw.agent_env.clone(),
        })
    }

    fn slot(
        &self,
        raw: &RawCredential,
        host: &HostPattern,
        key: &str,
    ) -> Result<Slot, ConfigError> {
        let at = Some(&raw.host.referenced);
        match (&raw.header, &raw.query) {
            (Some(_), Some(q)) => Err(self.invalid(
                Some(&q.referenced),
                key,
                "give `header` or `query`, not both",
            )),
            (None, Some(q)) if !q.value.trim().is_empty() => {
                Ok(Slot::Query(q.value.trim().to_string()))
            }
            (None, Some(q)) => {
                Err(self.invalid(Some(&q.referenced), &format!("{key}.query"), "is empty"))
            }
            (Some(h), None) => {
                self.header_slot(&h.value, raw, Some(&h.referenced), &format!("{key}.header"))
            }
            (None, None) => {
                let known = PROVIDER_SLOTS
                    .iter()
                    .find(|(pattern, _)| HostPattern::parse(pattern).is_ok_and(|p| p == *host));
                match known {
                    Some((_, header)) => {
                        self.header_slot(header, raw, at, &format!("{key}.header"))
                    }
                    None => Err(self.invalid(
                        at,
                        key,
                        "name where the key goes: `header: NAME` or `query: NAME` (only the \
                         built-in providers have a default)",
                    )),
                }
            }
        }
    }

    fn header_slot(
        &self,
        name: &str,
        raw: &RawCredential,
        at: Option<&serde_saphyr::Location>,
        key: &str,
    ) -> Result<Slot, ConfigError> {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| self.invalid(at, key, format!("`{name}` is not a header name")))?;
        let forbidden = [
            "host",
            "content-length",
            "transfer-encoding",
            "proxy-authorization",
        ];
        if forbidden.contains(&name.as_str()) {
            return Err(self.invalid(at, key, format!("`{name}` cannot carry a credential")));
        }
        let prefix = raw
            .prefix
            .clone()
            .unwrap_or_else(|| default_prefix(&name).to_string());
        Ok(Slot::Header { name, prefix })
    }

    fn secret_source(&self, raw: &RawCredential, key: &str) -> Result<SecretSource, ConfigError> {
        match (&raw.secret_env, &raw.secret_file) {
            (Some(_), None) => {
                let what = "credential secret";
                let value = self
                    .secret(&raw.secret_env, &None, key, "secret", what)?
                    .unwrap_or_default();
                Ok(SecretSource::Env {
                    value: Secret::new(value),
                })
            }
            (None, Some(file)) => {
                let field = format!("{key}.secret_file");
                let path = self.existing_file(file, &field)?;
                SecretSource::file(path)
                    .map_err(|e| self.invalid(Some(&file.referenced), &field, e.to_string()))
            }
            (Some(var), Some(_)) => Err(self.invalid(
                Some(&var.referenced),
                key,
                "give only one of `secret_env` or `secret_file`",
            )),
            (None, None) => Err(self.invalid(
                Some(&raw.host.referenced),
                key,
                "a credential needs `secret_env` or `secret_file` (secrets are never written \
                 in the config itself)",
            )),
        }
    }
}
