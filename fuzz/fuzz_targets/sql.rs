//! Any text as SQL in a recognised SQL field, and any PostgREST request line: recognition
//! finishes without panic, and SQL it cannot read is never passed as a readable statement that
//! claims no operation.
#![no_main]

use bytes::Bytes;
use gatehouse::inspect::{InspectConfig, Request, recognise};
use libfuzzer_sys::fuzz_target;

fn config() -> InspectConfig {
    InspectConfig {
        sql_fields: vec!["query".to_string(), "sql".to_string()],
        ..InspectConfig::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let config = config();
    // SQL inside a JSON tool body.
    let body = Bytes::from(serde_json::json!({ "query": text }).to_string());
    let request = Request {
        host: "db.example.com",
        method: "POST",
        path: "/query",
        query: None,
        content_type: Some("application/json"),
        prefer: None,
        body: &body,
    };
    let recognised = recognise(&request, &config);
    if let Some(data) = &recognised.data {
        // What is read and judged names its statement and every kind it contains; what is read
        // but refused (several statements, too many names) says why.
        if recognised.unreadable.is_none() {
            assert!(!data.statement.is_empty(), "a judged statement without a kind");
            assert!(
                data.statements.contains(&data.statement),
                "the principal kind is one of the statements"
            );
        }
        let _ = serde_json::to_string(data);
    }
    // The same text as a PostgREST path and query, under every method.
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    let path = format!("/rest/v1/{path}");
    let empty = Bytes::new();
    for method in ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"] {
        let request = Request {
            host: "project.supabase.co",
            method,
            path: &path,
            query: Some(query),
            content_type: None,
            prefer: Some("resolution=merge-duplicates"),
            body: &empty,
        };
        let _ = recognise(&request, &config);
    }
});
