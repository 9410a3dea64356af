//! `identity:` → the declared agents (tokens from the environment or a file), anonymous access,
//! and the limits on executions.

use std::collections::HashSet;

use super::compile::{Compiler, positive};
use super::raw::{RawAgent, RawConfig};
use super::{ANONYMOUS_AGENT, AgentConfig, ConfigError, IdentityConfig, Secret, validate_agent_id};

impl Compiler<'_> {
    pub(super) fn identity(&self, raw: &RawConfig) -> Result<IdentityConfig, ConfigError> {
        let mut seen = HashSet::new();
        let mut agents = Vec::new();
        for (i, agent) in raw.identity.agents.iter().enumerate() {
            let compiled = self.agent(agent, i)?;
            if !seen.insert(compiled.id.clone()) {
                return Err(self.invalid(
                    Some(&agent.id.referenced),
                    &format!("identity.agents[{i}].id"),
                    format!("agent `{}` is declared twice", compiled.id),
                ));
            }
            agents.push(compiled);
        }
        let max_new_executions_per_hour = positive(
            self,
            &raw.identity.max_new_executions_per_hour,
            "identity.max_new_executions_per_hour",
            1000,
        )?;
        let mut signed_executions = std::collections::BTreeSet::new();
        if raw.identity.signed_executions {
            signed_executions.extend(agents.iter().map(|a| a.id.clone()));
            signed_executions.insert(ANONYMOUS_AGENT.to_string());
        }
        Ok(IdentityConfig {
            allow_anonymous: raw.identity.allow_anonymous,
            agents,
            signed_executions,
            max_new_executions_per_hour,
        })
    }

    fn agent(&self, agent: &RawAgent, i: usize) -> Result<AgentConfig, ConfigError> {
        let key = format!("identity.agents[{i}]");
        let id = agent.id.value.trim().to_string();
        if let Err(message) = validate_agent_id(&id) {
            return Err(self.invalid(Some(&agent.id.referenced), &format!("{key}.id"), message));
        }
        let what = format!("token of agent `{id}`");
        let token = self
            .secret(&agent.token_env, &agent.token_file, &key, "token", &what)?
            .ok_or_else(|| {
                self.invalid(
                    Some(&agent.id.referenced),
                    &key,
                    format!(
                        "agent `{id}` needs exactly one of `token_env` or `token_file` \
                         (tokens are never written in the config itself)"
                    ),
                )
            })?;
        let residency = agent
            .residency
            .as_ref()
            .map(|r| {
                super::geo_section::parse_residency(&r.value).ok_or_else(|| {
                    self.invalid(
                        Some(&r.referenced),
                        &format!("{key}.residency"),
                        format!("`{}` is not a residency: use eu, eea or adequate", r.value),
                    )
                })
            })
            .transpose()?;
        Ok(AgentConfig {
            residency,
            id,
            team: agent.team.clone(),
            env: agent.env.clone(),
            labels: agent.labels.clone(),
            token: Secret::new(token),
        })
    }
}
