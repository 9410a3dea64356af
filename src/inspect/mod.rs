//! Bytes → facts: the only module that parses request bodies. Decodes the body, then recognises
//! LLM calls and MCP tool calls from the traffic itself.

mod body;
mod llm;
mod mcp;

use bytes::Bytes;
use serde_json::Value;

pub use body::{BodyError, decode};

use crate::policy::{LlmFacts, ToolFacts, Trigger};

/// What a request body turned out to be.
#[derive(Debug, Clone, Default)]
pub struct Recognised {
    /// A recognised LLM call.
    pub llm: Option<LlmFacts>,
    /// A recognised tool call.
    pub tool: Option<ToolFacts>,
    /// The JSON-RPC id of an MCP call (for a JSON-RPC refusal).
    pub jsonrpc_id: Option<Value>,
}

impl Recognised {
    /// The most specific trigger this request fires.
    pub fn trigger(&self) -> Trigger {
        if self.tool.is_some() {
            Trigger::ToolCall
        } else if self.llm.is_some() {
            Trigger::LlmRequest
        } else {
            Trigger::HttpRequest
        }
    }
}

/// Recognises what a (decoded) body carries, from the request's host, path and content.
pub fn recognise(host: &str, path: &str, decoded: &Bytes) -> Recognised {
    let looks_like_json = decoded
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let Some(json) = looks_like_json
        .then(|| serde_json::from_slice::<Value>(decoded).ok())
        .flatten()
    else {
        return Recognised::default();
    };
    if let Some(call) = mcp::recognise(&json) {
        return Recognised {
            llm: None,
            tool: Some(call.tool),
            jsonrpc_id: Some(call.id),
        };
    }
    Recognised {
        llm: llm::recognise(host, path, &json),
        tool: None,
        jsonrpc_id: None,
    }
}
