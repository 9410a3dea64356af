//! `gatehouse exec --mode base-url` and `gatehouse env --mode base-url`: the variables that point
//! the official SDKs at the base-URL gateway, with the agent's gateway key where they read their
//! API key. Read off the SDKs themselves: `openai` (Python) reads `OPENAI_BASE_URL` and
//! `OPENAI_API_KEY`, Azure `AZURE_OPENAI_ENDPOINT` and `AZURE_OPENAI_API_KEY`; `anthropic` reads
//! `ANTHROPIC_BASE_URL` and `ANTHROPIC_API_KEY`; `google-genai` reads `GOOGLE_GEMINI_BASE_URL`
//! and `GOOGLE_API_KEY` or `GEMINI_API_KEY` (and sends the key as `x-goog-api-key`).

use super::{
    ADMIN_TOKEN_VAR, AgentEnv, CA_VARS, LaunchError, PROXY_VARS, client_address, write_bundle,
};
use crate::config::{ANONYMOUS_AGENT, Config};

/// The environment of `agent` (or the only declared agent with a gateway key, or the anonymous
/// agent where the gateway admits it) for the base-URL gateway.
pub fn base_url_env(config: &Config, agent: Option<&str>) -> Result<AgentEnv, LaunchError> {
    let gateway = config.gateway.as_ref().ok_or(LaunchError::NoGateway)?;
    let agent = match agent {
        Some(agent) => agent.to_string(),
        None if gateway.allow_anonymous => ANONYMOUS_AGENT.to_string(),
        None => match config.identity.agents.as_slice() {
            [only] => only.id.clone(),
            _ => return Err(LaunchError::NoAgent("--mode base-url".to_string())),
        },
    };
    let key = gateway.keys.key_of(&agent);
    if key.is_none() && !(agent == ANONYMOUS_AGENT && gateway.allow_anonymous) {
        return Err(LaunchError::NoGatewayKey(agent));
    }
    let base = match &gateway.tls_name {
        Some(name) => format!("https://{}:{}", name, gateway.listen.port()),
        None => format!("http://{}", client_address(gateway.listen)),
    };
    let mut vars: Vec<(String, String)> = vec![
        ("GATEHOUSE_GATEWAY_URL".into(), base.clone()),
        ("GATEHOUSE_AGENT".into(), agent.clone()),
        ("OPENAI_BASE_URL".into(), format!("{base}/openai/v1")),
        ("ANTHROPIC_BASE_URL".into(), format!("{base}/anthropic")),
        ("GOOGLE_GEMINI_BASE_URL".into(), format!("{base}/gemini")),
    ];
    if gateway.routes.azure_is_one_route() {
        vars.push(("AZURE_OPENAI_ENDPOINT".into(), format!("{base}/azure")));
    }
    if let Some(key) = key {
        let names = [
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GEMINI_API_KEY",
            "GOOGLE_API_KEY",
            "AZURE_OPENAI_API_KEY",
        ];
        vars.extend(names.map(|n| (n.to_string(), key.expose().to_string())));
    }
    // The gateway's own leaf (TLS) is minted from the CA: the bundle makes it trusted.
    let bundle = write_bundle(&config.ca.dir)?.display().to_string();
    vars.extend(CA_VARS.iter().map(|k| (k.to_string(), bundle.clone())));
    // A proxy the agent inherited must not carry the gateway's requests (and their key) away.
    let host = match &gateway.tls_name {
        Some(name) => name.to_string(),
        None => client_address(gateway.listen)
            .rsplit_once(':')
            .map(|(host, _)| host.trim_matches(['[', ']']).to_string())
            .unwrap_or_default(),
    };
    let no_proxy = match std::env::var("NO_PROXY").or_else(|_| std::env::var("no_proxy")) {
        Ok(existing) if !existing.trim().is_empty() => format!("{existing},{host}"),
        _ => host,
    };
    vars.push(("NO_PROXY".into(), no_proxy.clone()));
    vars.push(("no_proxy".into(), no_proxy));
    let mut removed: Vec<String> = config.secret_vars.clone();
    removed.push(ADMIN_TOKEN_VAR.to_string());
    // Proxy variables inherited from a shell (another agent's token can be in them) and the
    // proxy mode's own: in this mode the agent reaches only the gateway, with its key.
    removed.extend(PROXY_VARS.iter().map(|v| v.to_string()));
    removed.extend(["GATEHOUSE_EXECUTION_ID", "NODE_USE_ENV_PROXY"].map(String::from));
    removed.retain(|name| !vars.iter().any(|(set, _)| set == name));
    removed.sort();
    removed.dedup();
    Ok(AgentEnv {
        agent,
        execution: String::new(),
        vars,
        removed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> Config {
        let yaml = format!(
            "ca:\n  dir: {}\nidentity:\n  agents:\n    - {{ id: coder, token_file: {tok} }}\n    - {{ id: writer, token_file: {tok} }}\ngateway:\n  listen: 127.0.0.1:8090\n  azure_resource: corp\n  keys:\n    - {{ agent: coder, key_file: {key} }}\n",
            dir.join("certs").display(),
            tok = dir.join("token").display(),
            key = dir.join("key").display(),
        );
        std::fs::write(dir.join("token"), "token-of-an-agent").unwrap();
        std::fs::write(dir.join("key"), "gk-coder-0123456789abcdef").unwrap();
        Config::from_yaml(&yaml, "test.yaml").unwrap()
    }

    #[test]
    fn base_urls_and_keys_point_every_sdk_at_the_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path());
        let env = base_url_env(&config, Some("coder")).unwrap();
        let get = |name: &str| {
            env.vars
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let base = "http://127.0.0.1:8090";
        assert_eq!(get("OPENAI_BASE_URL").unwrap(), format!("{base}/openai/v1"));
        assert_eq!(
            get("ANTHROPIC_BASE_URL").unwrap(),
            format!("{base}/anthropic")
        );
        assert_eq!(
            get("GOOGLE_GEMINI_BASE_URL").unwrap(),
            format!("{base}/gemini")
        );
        assert_eq!(
            get("AZURE_OPENAI_ENDPOINT").unwrap(),
            format!("{base}/azure")
        );
        for name in [
            "OPENAI_API_KEY",
            "ANTHROPIC_API_KEY",
            "GOOGLE_API_KEY",
            "AZURE_OPENAI_API_KEY",
        ] {
            assert_eq!(get(name).unwrap(), "gk-coder-0123456789abcdef", "{name}");
        }
        assert!(get("HTTPS_PROXY").is_none());
        assert!(matches!(
            base_url_env(&config, Some("writer")),
            Err(LaunchError::NoGatewayKey(agent)) if agent == "writer"
        ));
    }
}
