//! The `geo` section (database file, CIDR table), agents' `residency`, compiled into deny rules,
//! and `policies.templates`, the rule sets shipped in `config/templates/` enabled by name.

use std::path::PathBuf;

use ipnet::IpNet;

use super::compile::Compiler;
use super::raw::RawConfig;
use super::{AgentConfig, ConfigError, GeoConfig, Residency};
use crate::geo::is_country_code;

/// The shipped templates (`config/templates/`), by name, built into the binary.
pub const TEMPLATES: [(&str, &str); 4] = [
    ("gdpr", include_str!("../../config/templates/gdpr.yaml")),
    (
        "gdpr_redact",
        include_str!("../../config/templates/gdpr_redact.yaml"),
    ),
    ("soc2", include_str!("../../config/templates/soc2.yaml")),
    (
        "eu_ai_act",
        include_str!("../../config/templates/eu_ai_act.yaml"),
    ),
];

/// The residency of an agent's `residency:` value.
pub fn parse_residency(value: &str) -> Option<Residency> {
    match value.trim() {
        "eu" => Some(Residency::Eu),
        "eea" => Some(Residency::Eea),
        "adequate" => Some(Residency::Adequate),
        _ => None,
    }
}

/// One deny rule per agent with a residency: a destination outside its region (or unknown) is
/// refused at the tunnel, before any byte is sent.
pub fn residency_rules(agents: &[AgentConfig]) -> Option<(String, String)> {
    let mut yaml = String::from("rules:\n");
    let mut any = false;
    for agent in agents {
        let Some(residency) = agent.residency else {
            continue;
        };
        any = true;
        let (outside, region) = match residency {
            Residency::Eu => ("!destination.eu", "the EU"),
            Residency::Eea => ("!destination.eea", "the EEA"),
            Residency::Adequate => (
                "!(destination.eea || destination.adequate)",
                "the EEA or a country with a GDPR adequacy decision",
            ),
        };
        let id = &agent.id;
        yaml.push_str(&format!(
            "  - id: \"residency-{id}\"\n    description: \"identity.agents: `{id}` has residency; \
             destinations outside {region}, and unknown ones, are refused\"\n    scope: {{ agents: \
             [\"{id}\"] }}\n    trigger: connect\n    when: \"{outside}\"\n    effect: deny\n    \
             message: \"agent {id} may only reach destinations in {region} (GDPR Art. 44)\"\n"
        ));
    }
    any.then(|| ("<config>/residency.yaml".to_string(), yaml))
}

impl Compiler<'_> {
    pub(super) fn geo(&self, raw: &RawConfig) -> Result<GeoConfig, ConfigError> {
        let g = &raw.geo;
        let database = match &g.database {
            Some(path) => Some(self.existing_file(path, "geo.database")?),
            None => None,
        };
        let mut networks = Vec::new();
        for (i, entry) in g.networks.iter().enumerate() {
            let key = format!("geo.networks[{i}]");
            let text = entry.cidr.value.trim();
            let net: IpNet = text
                .parse()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    self.invalid(
                        Some(&entry.cidr.referenced),
                        &format!("{key}.cidr"),
                        format!("`{text}` is not a network like 10.0.0.0/8 or an address"),
                    )
                })?;
            let country = entry.country.value.trim().to_ascii_uppercase();
            if !is_country_code(&country) {
                return Err(self.invalid(
                    Some(&entry.country.referenced),
                    &format!("{key}.country"),
                    format!(
                        "`{}` is not an ISO 3166-1 alpha-2 code like DE",
                        entry.country.value
                    ),
                ));
            }
            networks.push((net.trunc(), country));
        }
        Ok(GeoConfig {
            database,
            reload_interval: self.duration(&g.reload_interval, "geo.reload_interval", 60)?,
            networks,
        })
    }

    pub(super) fn templates(&self, raw: &RawConfig) -> Result<Vec<(String, String)>, ConfigError> {
        let mut texts = Vec::new();
        for (i, name) in raw.policies.templates.iter().enumerate() {
            let wanted = name.value.trim();
            let Some((_, text)) = TEMPLATES.iter().find(|(n, _)| *n == wanted) else {
                let known: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
                return Err(self.invalid(
                    Some(&name.referenced),
                    &format!("policies.templates[{i}]"),
                    format!("no template `{wanted}`; shipped: {}", known.join(", ")),
                ));
            };
            let file = PathBuf::from("<template>").join(format!("{wanted}.yaml"));
            texts.push((file.display().to_string(), text.to_string()));
        }
        Ok(texts)
    }
}
