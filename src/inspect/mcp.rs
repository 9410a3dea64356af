//! MCP over HTTP: JSON-RPC `tools/call` (a tool call, with its name and arguments).

use serde_json::Value;

use crate::policy::ToolFacts;

/// A JSON-RPC request recognised as an MCP tool call, and its id (for a JSON-RPC shaped refusal).
pub struct McpCall {
    /// The tool and its arguments.
    pub tool: ToolFacts,
    /// The request id.
    pub id: Value,
}

/// Recognises `{"jsonrpc": "2.0", "method": "tools/call", "params": {"name", "arguments"}}`.
pub fn recognise(body: &Value) -> Option<McpCall> {
    if body.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return None;
    }
    if body.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let params = body.get("params")?;
    Some(McpCall {
        tool: ToolFacts {
            name: params.get("name")?.as_str()?.to_string(),
            arguments: params
                .get("arguments")
                .cloned()
                .unwrap_or(Value::Object(Default::default())),
        },
        id: body.get("id").cloned().unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn recognition_table() {
        let call = recognise(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "run_sql", "arguments": {"query": "select 1"}}}))
        .unwrap();
        assert_eq!(call.tool.name, "run_sql");
        assert_eq!(call.tool.arguments["query"], "select 1");
        assert_eq!(call.id, json!(7));
        for other in [
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}}),
            json!({"method": "tools/call", "params": {"name": "x"}}),
        ] {
            assert!(recognise(&other).is_none(), "{other}");
        }
    }
}
