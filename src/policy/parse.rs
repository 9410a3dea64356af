//! Policy files (YAML) → compiled rules. Pure: the caller reads the files. Every error names the
//! file, the line and the rule id.

use globset::{GlobBuilder, GlobSetBuilder};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::condition::Condition;
use super::host_pattern::{HostPattern, HostPatterns};
use super::model::{Effect, Matcher, Mode, Obligation, Origin, RedactStyle, Rule, Scope, Trigger};
use crate::yaml::yaml_error_parts;

/// A policy file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}: rule `{rule}`: {message}", line.map_or("?".to_string(), |l| l.to_string()))]
pub struct PolicyError {
    pub file: String,
    /// The line, when known.
    pub line: Option<u64>,
    /// The rule id (or the YAML key when the rule has no id yet).
    pub rule: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scope: RawScope,
    trigger: Spanned<String>,
    #[serde(default, rename = "match")]
    matcher: RawMatch,
    #[serde(default)]
    when: Option<Spanned<String>>,
    effect: Spanned<String>,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    redact: Option<Spanned<RawRedact>>,
    #[serde(default)]
    mode: Option<Spanned<String>>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    allow_uninspected: Option<Spanned<bool>>,
    #[serde(default)]
    allow_unmetered: Option<Spanned<bool>>,
    #[serde(default)]
    allow_websocket: Option<Spanned<bool>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScope {
    #[serde(default)]
    agents: Vec<String>,
    #[serde(default)]
    teams: Vec<String>,
    #[serde(default)]
    environments: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedact {
    kinds: Vec<String>,
    #[serde(default)]
    style: Option<String>,
}

/// A YAML error in a policy or policy-test file, named by file, line and key.
pub(super) fn yaml_error(err: &serde_saphyr::Error, text: &str, file: &str) -> PolicyError {
    let (line, key, message) = yaml_error_parts(err, text);
    PolicyError {
        file: file.to_string(),
        line,
        rule: key,
        message,
    }
}

/// Parses one policy file's text; `file` names it in errors and in each rule's origin.
pub fn parse_policy_file(text: &str, file: &str) -> Result<Vec<Rule>, PolicyError> {
    let raw: RawFile = serde_saphyr::from_str(text).map_err(|err| yaml_error(&err, text, file))?;
    raw.rules
        .into_iter()
        .map(|rule| compile_rule(rule, file))
        .collect()
}

fn compile_rule(raw: RawRule, file: &str) -> Result<Rule, PolicyError> {
    let id = raw.id.value.trim().to_string();
    let fail = |line: u64, message: String| PolicyError {
        file: file.to_string(),
        line: Some(line),
        rule: id.clone(),
        message,
    };
    let id_line = raw.id.referenced.line();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(fail(
            id_line,
            "rule ids use A-Z a-z 0-9 - _ . and are not empty".into(),
        ));
    }
    let trigger = Trigger::parse(raw.trigger.value.trim()).ok_or_else(|| {
        let names: Vec<&str> = Trigger::ALL.iter().map(|t| t.name()).collect();
        fail(
            raw.trigger.referenced.line(),
            format!(
                "unknown trigger `{}` (one of: {})",
                raw.trigger.value,
                names.join(", ")
            ),
        )
    })?;
    let effect = match raw.effect.value.trim() {
        "allow" => Effect::Allow,
        "deny" => Effect::Deny,
        "hold" => Effect::Hold,
        "redact" => Effect::Redact,
        other => {
            return Err(fail(
                raw.effect.referenced.line(),
                format!("unknown effect `{other}` (allow, deny, hold or redact)"),
            ));
        }
    };
    let allow_uninspected = match &raw.allow_uninspected {
        Some(flag)
            if flag.value && (effect != Effect::Allow || trigger != Trigger::HttpRequest) =>
        {
            return Err(fail(
                flag.referenced.line(),
                "allow_uninspected only fits an `allow` rule on `http.request`: a body the proxy \
                 cannot read has no LLM, tool or data facts"
                    .into(),
            ));
        }
        Some(flag) => flag.value,
        None => false,
    };
    let allow_unmetered = match &raw.allow_unmetered {
        Some(flag)
            if flag.value && (effect != Effect::Allow || trigger != Trigger::HttpRequest) =>
        {
            return Err(fail(
                flag.referenced.line(),
                "allow_unmetered only fits an `allow` rule on `http.request`: an endpoint the \
                 proxy does not meter is not an LLM call"
                    .into(),
            ));
        }
        Some(flag) => flag.value,
        None => false,
    };
    let allow_websocket = match &raw.allow_websocket {
        Some(flag)
            if flag.value && (effect != Effect::Allow || trigger != Trigger::HttpRequest) =>
        {
            return Err(fail(
                flag.referenced.line(),
                "allow_websocket only fits an `allow` rule on `http.request` (the upgrade); \
                 its messages are judged by `websocket.message` rules"
                    .into(),
            ));
        }
        Some(flag) => flag.value,
        None => false,
    };
    if effect == Effect::Redact && raw.redact.is_none() {
        return Err(fail(
            raw.effect.referenced.line(),
            "a `redact` rule names what to redact: add `redact: {kinds: [...]}`".into(),
        ));
    }
    let mode = match raw
        .mode
        .as_ref()
        .map(|m| (m.value.trim(), m.referenced.line()))
    {
        None | Some(("enforce", _)) => Mode::Enforce,
        Some(("monitor", _)) => Mode::Monitor,
        Some((other, line)) => {
            return Err(fail(
                line,
                format!("unknown mode `{other}` (enforce or monitor)"),
            ));
        }
    };
    let condition = match &raw.when {
        None => None,
        Some(when) => Some(
            Condition::compile(&when.value, trigger)
                .map_err(|e| fail(when.referenced.line(), format!("when: {e}")))?,
        ),
    };
    let matcher = compile_matcher(&raw.matcher).map_err(|(line, message)| fail(line, message))?;
    let obligations = match &raw.redact {
        None => Vec::new(),
        Some(redact) => {
            let name = redact.value.style.as_deref().unwrap_or("mask");
            let Some(style) = RedactStyle::parse(name) else {
                return Err(fail(
                    redact.referenced.line(),
                    format!("unknown redact style `{name}` (mask, hash, pseudonymize)"),
                ));
            };
            let bad_kind = redact.value.kinds.iter().find(|k| {
                k.is_empty()
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            });
            if let Some(kind) = bad_kind {
                return Err(fail(
                    redact.referenced.line(),
                    format!("`{kind}` is not a PII kind name (lower-case letters, digits, `_`)"),
                ));
            }
            if redact.value.kinds.is_empty() {
                return Err(fail(
                    redact.referenced.line(),
                    "redact needs at least one kind".into(),
                ));
            }
            vec![Obligation::Redact {
                kinds: redact.value.kinds.clone(),
                style,
            }]
        }
    };
    Ok(Rule {
        id: id.clone(),
        description: raw.description,
        scope: Scope {
            agents: raw.scope.agents,
            teams: raw.scope.teams,
            environments: raw.scope.environments,
        },
        trigger,
        matcher,
        condition,
        effect,
        priority: raw.priority,
        obligations,
        mode,
        message: raw.message,
        allow_uninspected,
        allow_unmetered,
        allow_websocket,
        origin: Origin {
            file: file.to_string(),
            line: id_line,
        },
    })
}

fn compile_matcher(raw: &RawMatch) -> Result<Matcher, (u64, String)> {
    let hosts = raw
        .hosts
        .iter()
        .map(|h| {
            HostPattern::parse(&h.value)
                .map_err(|e| (h.referenced.line(), format!("match.hosts: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let paths = if raw.paths.is_empty() {
        None
    } else {
        let mut builder = GlobSetBuilder::new();
        for path in &raw.paths {
            let glob = GlobBuilder::new(&path.value)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    (
                        path.referenced.line(),
                        format!("match.paths: `{}`: {e}", path.value),
                    )
                })?;
            builder.add(glob);
        }
        Some(
            builder
                .build()
                .map_err(|e| (0, format!("match.paths: {e}")))?,
        )
    };
    Ok(Matcher {
        hosts: HostPatterns(hosts),
        methods: raw
            .methods
            .iter()
            .map(|m| m.trim().to_ascii_uppercase())
            .collect(),
        paths,
    })
}
