//! `gatehouse replay`: judge the decisions of an audit file again under other policies and say what
//! would change, so a policy change can be reviewed before it ships.
//!
//! The audit trail keeps no headers, query strings or bodies, and only the shape of each path (they
//! may hold personal data), so a replayed request has those facts empty: rules that read them are
//! judged on what was recorded, and the report says so.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

use serde_json::Value;

use super::ToolError;
use crate::policy::Policies;
use crate::policy::{
    AgentFacts, BodyFacts, DataFacts, DestinationFacts, Facts, LlmFacts, RequestFacts, ToolFacts,
    Trigger,
};
use crate::proxy::guard::non_global_category;

/// Replays every policy decision of `audit` under `policies` and renders the report.
pub fn replay(audit: &Path, policies: &Policies) -> Result<String, ToolError> {
    let text = std::fs::read_to_string(audit).map_err(|source| ToolError::Read {
        path: audit.to_path_buf(),
        source,
    })?;
    let mut replayed = 0usize;
    let mut changes: Vec<String> = Vec::new();
    let mut moved: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let record: Value = serde_json::from_str(line).map_err(|e| {
            ToolError::Request(format!(
                "{}:{}: not an audit record: {e}",
                audit.display(),
                index + 1
            ))
        })?;
        let Some(facts) = facts_of(&record) else {
            continue;
        };
        replayed += 1;
        let before = record["effect"].as_str().unwrap_or_default().to_string();
        let verdict = policies.set.evaluate(&facts);
        let after = verdict.effect().name().to_string();
        if before == after {
            continue;
        }
        *moved.entry((before.clone(), after.clone())).or_default() += 1;
        let deciding = if verdict.deciding.is_empty() {
            "default deny".to_string()
        } else {
            verdict.deciding.join(", ")
        };
        for rule in &verdict.deciding {
            *by_rule.entry(rule.clone()).or_default() += 1;
        }
        if changes.len() < 20 {
            changes.push(format!(
                "  {} {} {} {}{} as `{}`: {before} → {after} ({deciding})",
                record["decision"].as_str().unwrap_or_default(),
                facts.trigger,
                facts.request.method,
                facts.request.host,
                facts.request.path,
                facts.agent.id,
            ));
        }
    }
    let mut out = String::new();
    let changed: usize = moved.values().sum();
    let _ = writeln!(
        out,
        "{replayed} decisions replayed under policy version {}: {} unchanged, {changed} would change",
        policies.version,
        replayed - changed
    );
    for ((before, after), count) in &moved {
        let _ = writeln!(out, "  {before} → {after}: {count}");
    }
    if !by_rule.is_empty() {
        let _ = writeln!(out, "rules deciding the changed decisions:");
        for (rule, count) in &by_rule {
            let _ = writeln!(out, "  {rule}: {count}");
        }
    }
    if !changes.is_empty() {
        let _ = writeln!(out, "changes (first {}):", changes.len());
        for change in changes {
            let _ = writeln!(out, "{change}");
        }
    }
    let _ = writeln!(
        out,
        "note: headers, query strings, bodies and exact paths are not in the audit trail; rules reading them see them empty"
    );
    Ok(out)
}

/// The facts a recorded policy decision can give back; `None` for the proxy's own refusals.
fn facts_of(record: &Value) -> Option<Facts> {
    let text = |key: &str| record[key].as_str().unwrap_or_default().to_string();
    let optional = |key: &str| record[key].as_str().map(str::to_string);
    if text("decision").ends_with("-r") || record.get("record").is_some() {
        return None;
    }
    let trigger = Trigger::parse(&text("trigger"))?;
    let ip = text("destination");
    let private = ip
        .parse::<IpAddr>()
        .ok()
        .is_some_and(|ip| non_global_category(ip).is_some());
    Some(Facts {
        trigger,
        agent: AgentFacts {
            id: text("agent"),
            team: optional("team"),
            env: optional("env"),
            execution: optional("execution"),
            labels: BTreeMap::new(),
        },
        request: RequestFacts {
            method: text("method"),
            scheme: String::new(),
            host: text("host"),
            host_is_ip: crate::policy::is_ip_literal(&text("host")),
            port: u16::try_from(record["port"].as_u64().unwrap_or(0)).unwrap_or(0),
            path: text("path"),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            websocket: false,
        },
        destination: DestinationFacts {
            private,
            ..DestinationFacts::in_country(ip, &text("country"))
        },
        llm: record.get("llm").map(|l| LlmFacts {
            provider: l["provider"].as_str().unwrap_or_default().to_string(),
            model: l["model"].as_str().unwrap_or_default().to_string(),
            stream: l["stream"].as_bool().unwrap_or_default(),
            max_tokens: l["max_tokens"].as_u64(),
            ..LlmFacts::default()
        }),
        tool: record["tool"].as_str().map(|name| ToolFacts {
            name: name.to_string(),
            arguments: serde_json::Value::Object(serde_json::Map::new()),
        }),
        data: record.get("data").map(|d| DataFacts {
            statement: d["statement"].as_str().unwrap_or_default().to_string(),
            statements: vec![d["statement"].as_str().unwrap_or_default().to_string()],
            tables: strings(&d["tables"]),
            columns: strings(&d["columns"]),
            has_where: d["has_where"].as_bool().unwrap_or_default(),
            limit: d["limit"].as_u64(),
        }),
        body: BodyFacts::default(),
        pii: crate::policy::PiiFacts::from_counts(
            record["pii"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        response: None,
        unmetered: None,
    })
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}
