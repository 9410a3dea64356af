//! Bytes → facts: the only module that parses request bodies. Decodes the body, then recognises
//! LLM calls and MCP tool calls from the traffic itself.

mod body;
mod llm;
mod mcp;
mod sql;

use bytes::Bytes;
use serde_json::Value;

pub use body::{BodyError, decode};

use crate::policy::{DataFacts, LlmFacts, ToolFacts, Trigger};

/// What a request body turned out to be.
#[derive(Debug, Clone, Default)]
pub struct Recognised {
    /// A recognised LLM call.
    pub llm: Option<LlmFacts>,
    /// A recognised tool call.
    pub tool: Option<ToolFacts>,
    /// A recognised data access (SQL, PostgREST).
    pub data: Option<DataFacts>,
    /// The JSON-RPC id of an MCP call (for a JSON-RPC refusal).
    pub jsonrpc_id: Option<Value>,
}

impl Recognised {
    /// The most specific trigger this request fires.
    pub fn trigger(&self) -> Trigger {
        if self.tool.is_some() {
            Trigger::ToolCall
        } else if self.data.is_some() {
            Trigger::DataAccess
        } else if self.llm.is_some() {
            Trigger::LlmRequest
        } else {
            Trigger::HttpRequest
        }
    }
}

/// Where a request is going and what it carries, as recognition needs it.
pub struct Request<'a> {
    /// Lower-case host.
    pub host: &'a str,
    /// Method.
    pub method: &'a str,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// The decoded body.
    pub body: &'a Bytes,
}

/// Recognises what a request carries. `sql_fields` names the JSON fields (top-level, or MCP tool
/// arguments) whose string values are SQL.
pub fn recognise(request: &Request<'_>, sql_fields: &[String]) -> Recognised {
    let postgrest = sql::postgrest(request.method, request.path, request.query);
    let looks_like_json = request
        .body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let json = looks_like_json
        .then(|| serde_json::from_slice::<Value>(request.body).ok())
        .flatten();
    let Some(json) = json else {
        return Recognised {
            data: postgrest,
            ..Recognised::default()
        };
    };
    if let Some(call) = mcp::recognise(&json) {
        return Recognised {
            llm: None,
            data: sql_in(&call.tool.arguments, sql_fields),
            tool: Some(call.tool),
            jsonrpc_id: Some(call.id),
        };
    }
    Recognised {
        llm: llm::recognise(request.host, request.path, &json),
        tool: None,
        data: sql_in(&json, sql_fields).or(postgrest),
        jsonrpc_id: None,
    }
}

fn sql_in(object: &Value, sql_fields: &[String]) -> Option<DataFacts> {
    sql_fields
        .iter()
        .filter_map(|field| object.get(field).and_then(Value::as_str))
        .find_map(sql::parse)
}
