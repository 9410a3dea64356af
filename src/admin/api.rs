//! The JSON API: approvals, decisions, spend, pauses and policies. Each handler returns the JSON
//! answer or a status with a reason.

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::AdminState;
use crate::audit::{AuditStore, Query};
use crate::budget::Window;
use crate::store::{ApprovalStatus, Decision, SpendBy};

type Answer = Result<Value, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

fn failed(e: impl std::fmt::Display) -> (StatusCode, String) {
    tracing::error!(error = %e, "admin API request failed");
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// The query's value of `key`.
fn param(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// A string field of the body.
fn field(body: &Value, key: &str) -> Option<String> {
    body[key]
        .as_str()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(super) async fn handle(
    state: &AdminState,
    method: &Method,
    path: &str,
    query: &str,
    body: &Value,
) -> Answer {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["api", "approvals"]) => approvals(state, query).await,
        (&Method::POST, ["api", "approvals", id, verb @ ("approve" | "deny")]) => {
            decide(state, id, *verb == "approve", body).await
        }
        (&Method::GET, ["api", "decisions"]) => decisions(state, query).await,
        (&Method::GET, ["api", "spend"]) => spend(state, query).await,
        (&Method::POST, ["api", "pause"]) => pause(state, body).await,
        (&Method::POST, ["api", "resume"]) => resume(state, body).await,
        (&Method::GET, ["api", "policies"]) => Ok(policies(state)),
        (&Method::POST, ["api", "policies", "reload"]) => reload(state),
        _ => Err((
            StatusCode::NOT_FOUND,
            format!("no {method} {path} in the admin API"),
        )),
    }
}

async fn approvals(state: &AdminState, query: &str) -> Answer {
    let status = match param(query, "status") {
        None => ApprovalStatus::Pending,
        Some(s) => ApprovalStatus::parse(&s).ok_or_else(|| {
            bad(format!(
                "`{s}` is not a status: pending, approved, denied, expired or used"
            ))
        })?,
    };
    let limit = param(query, "limit")
        .and_then(|l| l.parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let list = state
        .ledger
        .store()
        .approvals(status, limit)
        .await
        .map_err(failed)?;
    let items: Vec<Value> = list
        .iter()
        .map(|a| {
            let mut item = serde_json::to_value(a).unwrap_or(Value::Null);
            // The summary is stored as text; serve it as the object it is.
            item["summary"] = serde_json::from_str(&a.summary).unwrap_or(Value::Null);
            item
        })
        .collect();
    Ok(json!({ "approvals": items }))
}

async fn decide(state: &AdminState, id: &str, approve: bool, body: &Value) -> Answer {
    let reviewer = field(body, "reviewer").ok_or_else(|| bad("`reviewer` is required"))?;
    let reason = field(body, "reason").unwrap_or_default();
    if !approve && reason.is_empty() {
        return Err(bad("a denial needs a `reason`: the agent is told it"));
    }
    let now = crate::store::now();
    let usable = i64::try_from(state.config.approvals.expire_after.as_secs()).unwrap_or(900);
    let decided = state
        .ledger
        .store()
        .decide(&Decision {
            id,
            approve,
            reviewer: &reviewer,
            reason: &reason,
            now,
            usable_until: now + usable,
        })
        .await
        .map_err(failed)?;
    match decided {
        Ok(approval) => {
            tracing::info!(approval = %approval.id, %reviewer, decision = approval.status.name(), "approval decided");
            Ok(json!({ "approval": approval }))
        }
        Err(why) => Err((StatusCode::CONFLICT, why)),
    }
}

async fn decisions(state: &AdminState, query: &str) -> Answer {
    let q = Query {
        agent: param(query, "agent"),
        effect: param(query, "effect"),
        rule: param(query, "rule"),
        trigger: param(query, "trigger"),
        since: param(query, "since"),
        until: param(query, "until"),
        limit: param(query, "limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(100)
            .clamp(1, 1000),
    };
    let path = state.config.audit_store.clone();
    let found = tokio::task::spawn_blocking(move || {
        AuditStore::open(&path).and_then(|store| store.query(&q))
    })
    .await
    .map_err(failed)?
    .map_err(failed)?;
    Ok(json!({ "decisions": found }))
}

async fn spend(state: &AdminState, query: &str) -> Answer {
    let by = match param(query, "by").as_deref() {
        None | Some("agent") => SpendBy::Agent,
        Some("team") => SpendBy::Team,
        Some("model") => SpendBy::Model,
        Some(other) => return Err(bad(format!("`{other}` is not agent, team or model"))),
    };
    let window = match param(query, "window") {
        None => Window::Day,
        Some(w) => Window::parse(&w)
            .filter(|w| *w != Window::Execution)
            .ok_or_else(|| bad(format!("`{w}` is not hour, day, month or total")))?,
    };
    let report =
        crate::budget::spend_report(state.ledger.budgets(), state.ledger.store(), by, window)
            .await
            .map_err(failed)?;
    serde_json::to_value(report).map_err(failed)
}

/// `agent:<id>` or `team:<id>` from the body's `agent` or `team`.
fn scope(body: &Value) -> Result<String, (StatusCode, String)> {
    match (field(body, "agent"), field(body, "team")) {
        (Some(agent), None) => Ok(format!("agent:{agent}")),
        (None, Some(team)) => Ok(format!("team:{team}")),
        _ => Err(bad("name exactly one of `agent` or `team`")),
    }
}

async fn pause(state: &AdminState, body: &Value) -> Answer {
    let scope = scope(body)?;
    let reason = field(body, "reason").unwrap_or_else(|| "paused from the admin API".into());
    let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    state
        .ledger
        .store()
        .pause(&scope, &since, &reason)
        .await
        .map_err(failed)?;
    Ok(json!({ "paused": scope }))
}

async fn resume(state: &AdminState, body: &Value) -> Answer {
    if let Some(budget) = field(body, "budget") {
        crate::budget::reset_breaker(state.ledger.budgets(), state.ledger.store(), &budget)
            .await
            .map_err(|e| bad(e.to_string()))?;
        return Ok(json!({ "breaker_reset": budget }));
    }
    let scope = scope(body)?;
    let was = state.ledger.store().resume(&scope).await.map_err(failed)?;
    Ok(json!({ "resumed": scope, "was_paused": was }))
}

fn policies(state: &AdminState) -> Value {
    json!({
        "version": state.policies.version(),
        "source": state.config.policies.source,
        "reloadable": state.reloadable.is_some(),
    })
}

fn reload(state: &AdminState) -> Answer {
    let Some((folder, inputs)) = &state.reloadable else {
        return Err((
            StatusCode::CONFLICT,
            "the policies are embedded, not read from a folder: nothing to reload".into(),
        ));
    };
    match crate::reload::reload_now(folder, &state.policies, inputs) {
        Ok(changed) => Ok(json!({
            "version": state.policies.version(),
            "changed": changed.is_some(),
        })),
        Err(e) => Err((StatusCode::UNPROCESSABLE_ENTITY, e)),
    }
}
