//! Raw YAML structs → validated runtime [`Config`]. Every check reports the file, line and key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use crate::yaml::yaml_error_parts;

use super::raw::RawConfig;
use super::{
    ANONYMOUS_AGENT, CaConfig, Config, ConfigError, HostPattern, HostPatterns, LogConfig,
    LogFormat, NetworkConfig, Place, UpstreamConfig,
};

/// Longest duration any setting accepts; keeps deadline arithmetic far from overflow.
const MAX_DURATION: Duration = Duration::from_secs(365 * 86400);

/// Parses and validates `text`, naming `file` in errors.
pub fn compile(text: &str, file: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig =
        serde_saphyr::from_str(text).map_err(|err| syntax_error(err, text, file))?;
    let compiler = Compiler {
        file,
        secret_vars: Default::default(),
    };
    let mut config = compiler.config(raw)?;
    config.secret_vars = compiler.secret_vars.take();
    Ok(config)
}

fn syntax_error(err: serde_saphyr::Error, text: &str, file: &str) -> ConfigError {
    let (line, key, message) = yaml_error_parts(&err, text);
    ConfigError::Syntax {
        place: Place {
            file: file.to_string(),
            line,
            key,
        },
        message,
    }
}

pub(super) struct Compiler<'a> {
    pub(super) file: &'a str,
    /// Environment variables the config reads secrets from, as they are read.
    pub(super) secret_vars: std::cell::RefCell<Vec<String>>,
}

impl Compiler<'_> {
    pub(super) fn invalid(
        &self,
        at: Option<&Location>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError::Invalid {
            place: Place {
                file: self.file.to_string(),
                line: at.map(|l| l.line()).filter(|l| *l > 0),
                key: key.to_string(),
            },
            message: message.into(),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = match &raw.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(s) => s.value.trim().parse().map_err(|_| {
                self.invalid(
                    Some(&s.referenced),
                    "listen",
                    format!("`{}` is not an address like 127.0.0.1:8080", s.value),
                )
            })?,
        };
        let pii = self.pii(&raw)?;
        let identity = self.identity(&raw)?;
        let gateway = self.gateway(raw.gateway.as_ref(), &identity)?;
        let mut policy_extras = self.templates(&raw)?;
        policy_extras.extend(super::geo_section::residency_rules(&identity.agents));
        let policies = super::policies::load(
            raw.policies.dir.as_ref(),
            self.file,
            self.file == "<embedded>",
            &policy_extras,
        )?;
        super::policies::check_redact_kinds(&policies, &pii.custom_kinds())?;
        let tunnel_hosts = self.tunnel_hosts(&raw)?;
        let transparent = self.transparent(&raw, &identity)?;
        let mut config = Config {
            source: self.file.to_string(),
            listen,
            ca: self.ca(&raw)?,
            upstream: self.upstream(&raw)?,
            network: self.network(&raw)?,
            credentials: std::sync::Arc::new(self.credentials(&raw, &tunnel_hosts)?),
            tunnel_hosts,
            identity,
            limits: self.limits(&raw)?,
            log: self.log(&raw)?,
            policies,
            policy_reload_interval: self.duration(
                &raw.policies.reload_interval,
                "policies.reload_interval",
                2,
            )?,
            inspect: self.inspect(&raw)?,
            pii,
            geo: self.geo(&raw)?,
            prices: std::sync::Arc::new(self.prices(&raw)?),
            budget: self.budget(&raw)?,
            approvals: self.approvals(&raw)?,
            admin: self.admin(&raw)?,
            gateway,
            transparent,
            secret_vars: Vec::new(),
            policy_extras,
            audit_file: PathBuf::from(
                raw.audit
                    .file
                    .clone()
                    .unwrap_or_else(|| "audit/decisions.jsonl".to_string()),
            ),
            audit_store: PathBuf::from(
                raw.audit
                    .store
                    .clone()
                    .unwrap_or_else(|| "audit/decisions.sqlite".to_string()),
            ),
            audit_checkpoints: crate::audit::CheckpointSchedule {
                every: self.duration(
                    &raw.audit.checkpoint_interval,
                    "audit.checkpoint_interval",
                    60,
                )?,
                records: positive(
                    self,
                    &raw.audit.checkpoint_records,
                    "audit.checkpoint_records",
                    10_000,
                )? as u64,
            },
        };
        self.reservation_ttl(&raw, &mut config)?;
        let counted = self.counting_executions(&config.identity, &config.budget.budgets)?;
        config.identity.signed_executions.extend(counted);
        Ok(config)
    }

    fn ca(&self, raw: &RawConfig) -> Result<CaConfig, ConfigError> {
        let ca = &raw.ca;
        let leaf_cache_size = positive(self, &ca.leaf_cache_size, "ca.leaf_cache_size", 1000)?;
        let leaf_cache_ttl = self.duration(&ca.leaf_cache_ttl, "ca.leaf_cache_ttl", 3600)?;
        let leaf_validity = self.duration(&ca.leaf_validity, "ca.leaf_validity", 7 * 86400)?;
        if leaf_validity <= leaf_cache_ttl {
            return Err(self.invalid(
                ca.leaf_validity.as_ref().map(|v| &v.referenced),
                "ca.leaf_validity",
                "must be longer than ca.leaf_cache_ttl, or cached leaves would expire in use",
            ));
        }
        Ok(CaConfig {
            dir: PathBuf::from(ca.dir.clone().unwrap_or_else(|| "certs".to_string())),
            leaf_cache_size,
            leaf_cache_ttl,
            leaf_validity,
        })
    }

    fn upstream(&self, raw: &RawConfig) -> Result<UpstreamConfig, ConfigError> {
        let up = &raw.upstream;
        Ok(UpstreamConfig {
            connect_timeout: self.duration(&up.connect_timeout, "upstream.connect_timeout", 10)?,
            response_timeout: self.duration(
                &up.response_timeout,
                "upstream.response_timeout",
                300,
            )?,
            idle_timeout: self.duration(&up.idle_timeout, "upstream.idle_timeout", 120)?,
            total_timeout: self.duration(&up.total_timeout, "upstream.total_timeout", 1800)?,
            pool_idle_timeout: self.duration(
                &up.pool_idle_timeout,
                "upstream.pool_idle_timeout",
                90,
            )?,
            pool_max_idle_per_host: up.pool_max_idle_per_host.unwrap_or(32),
            socket_idle_timeout: self.tunnel_idle_timeout(raw)?,
            extra_ca_files: up
                .extra_ca_files
                .iter()
                .enumerate()
                .map(|(i, f)| self.existing_file(f, &format!("upstream.extra_ca_files[{i}]")))
                .collect::<Result<_, _>>()?,
        })
    }

    fn network(&self, raw: &RawConfig) -> Result<NetworkConfig, ConfigError> {
        let net = &raw.network;
        let mut allow_cidrs = Vec::new();
        for (i, cidr) in net.allow_cidrs.iter().enumerate() {
            let text = cidr.value.trim();
            let parsed = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    self.invalid(
                        Some(&cidr.referenced),
                        &format!("network.allow_cidrs[{i}]"),
                        format!("`{text}` is not a CIDR like 10.0.0.0/8 or fd00::/8"),
                    )
                })?;
            allow_cidrs.push(parsed.trunc());
        }
        Ok(NetworkConfig {
            allow_cidrs,
            dns_cache_ttl: self.duration(&net.dns_cache_ttl, "network.dns_cache_ttl", 30)?,
        })
    }

    fn tunnel_hosts(&self, raw: &RawConfig) -> Result<HostPatterns, ConfigError> {
        let patterns = raw
            .tunnel
            .hosts
            .iter()
            .enumerate()
            .map(|(i, host)| {
                HostPattern::parse(&host.value).map_err(|message| {
                    self.invalid(
                        Some(&host.referenced),
                        &format!("tunnel.hosts[{i}]"),
                        message,
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(HostPatterns(patterns))
    }

    /// A secret named by `<name>_env` or `<name>_file` (never written in the config itself); `None`
    /// when neither is given, an error when both are.
    pub(super) fn secret(
        &self,
        env: &Option<Spanned<String>>,
        file: &Option<Spanned<String>>,
        key: &str,
        name: &str,
        what: &str,
    ) -> Result<Option<String>, ConfigError> {
        match (env, file) {
            (None, None) => Ok(None),
            (Some(var), None) => {
                let variable = var.value.trim();
                self.secret_vars.borrow_mut().push(variable.to_string());
                match std::env::var(variable) {
                    Ok(value) if !value.trim().is_empty() => Ok(Some(value.trim().to_string())),
                    _ => Err(self.invalid(
                        Some(&var.referenced),
                        &format!("{key}.{name}_env"),
                        format!(
                            "environment variable `{}` ({what}) is not set or empty",
                            var.value.trim()
                        ),
                    )),
                }
            }
            (None, Some(file)) => {
                let field = format!("{key}.{name}_file");
                let path = self.existing_file(file, &field)?;
                let value = std::fs::read_to_string(&path)
                    .map_err(|e| self.invalid(Some(&file.referenced), &field, e.to_string()))?;
                let value = value.trim().to_string();
                if value.is_empty() {
                    return Err(self.invalid(
                        Some(&file.referenced),
                        &field,
                        format!("the file of the {what} is empty"),
                    ));
                }
                Ok(Some(value))
            }
            (Some(var), Some(_)) => Err(self.invalid(
                Some(&var.referenced),
                key,
                format!("give only one of `{name}_env` or `{name}_file`"),
            )),
        }
    }

    fn inspect(&self, raw: &RawConfig) -> Result<crate::inspect::InspectConfig, ConfigError> {
        let sql_fields = raw
            .inspect
            .sql_fields
            .clone()
            .unwrap_or_else(|| ["sql", "query", "statement"].map(String::from).to_vec());
        let prose_fields = raw.inspect.prose_fields.clone().unwrap_or_default();
        let mut rest_tools = Vec::new();
        for (i, tool) in raw.inspect.tools.iter().enumerate() {
            let key = format!("inspect.tools[{i}]");
            let host = HostPattern::parse(&tool.host.value).map_err(|e| {
                self.invalid(Some(&tool.host.referenced), &format!("{key}.host"), e)
            })?;
            let path = globset::GlobBuilder::new(&tool.path.value)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    self.invalid(
                        Some(&tool.path.referenced),
                        &format!("{key}.path"),
                        e.to_string(),
                    )
                })?
                .compile_matcher();
            rest_tools.push(crate::inspect::RestTool {
                name: tool.name.value.trim().to_string(),
                host,
                method: tool
                    .method
                    .clone()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_uppercase(),
                path,
            });
        }
        Ok(crate::inspect::InspectConfig {
            sql_fields,
            prose_fields,
            rest_tools,
        })
    }

    fn log(&self, raw: &RawConfig) -> Result<LogConfig, ConfigError> {
        let format = match &raw.log.format {
            None => LogFormat::Human,
            Some(f) => match f.value.trim() {
                "human" => LogFormat::Human,
                "json" => LogFormat::Json,
                other => {
                    return Err(self.invalid(
                        Some(&f.referenced),
                        "log.format",
                        format!("`{other}` is not a log format: use `human` or `json`"),
                    ));
                }
            },
        };
        Ok(LogConfig {
            format,
            level: raw.log.level.clone().unwrap_or_else(|| "info".to_string()),
        })
    }

    pub(super) fn duration(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        default_secs: u64,
    ) -> Result<Duration, ConfigError> {
        let Some(value) = value else {
            return Ok(Duration::from_secs(default_secs));
        };
        match humantime::parse_duration(value.value.trim()) {
            Ok(d) if !d.is_zero() && d <= MAX_DURATION => Ok(d),
            _ => Err(self.invalid(
                Some(&value.referenced),
                key,
                format!(
                    "`{}` is not a duration between 1ms and 365d, written like 500ms, 10s or 5m",
                    value.value
                ),
            )),
        }
    }

    pub(super) fn existing_file(
        &self,
        value: &Spanned<String>,
        key: &str,
    ) -> Result<PathBuf, ConfigError> {
        let path = PathBuf::from(value.value.trim());
        if path.is_file() {
            Ok(path)
        } else {
            Err(self.invalid(
                Some(&value.referenced),
                key,
                format!("file `{}` does not exist", path.display()),
            ))
        }
    }
}

pub(super) fn positive(
    compiler: &Compiler<'_>,
    value: &Option<Spanned<usize>>,
    key: &str,
    default: usize,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.value == 0 => {
            Err(compiler.invalid(Some(&v.referenced), key, "must be greater than 0"))
        }
        Some(v) => Ok(v.value),
    }
}

/// Agent ids travel in `Proxy-Authorization` user names and in logs: keep them to a safe alphabet.
pub fn validate_agent_id(id: &str) -> Result<(), String> {
    if id == ANONYMOUS_AGENT {
        return Err(format!(
            "`{ANONYMOUS_AGENT}` is reserved for unauthenticated requests"
        ));
    }
    let ok_len = (1..=64).contains(&id.len());
    let ok_chars = id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a valid agent id: 1 to 64 characters of A-Z, a-z, 0-9, `-`, `_`, `.`"
        ))
    }
}
