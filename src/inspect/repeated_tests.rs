//! Bodies that repeat a field, quote prose or arrive in another charset are judged whole and within the limits.

use super::*;

fn sql_config() -> InspectConfig {
    InspectConfig {
        sql_fields: vec!["sql".into(), "query".into()],
        prose_fields: vec!["query".into()],
        rest_tools: vec![RestTool {
            name: "run".into(),
            host: HostPattern::parse("db.example").unwrap(),
            method: "POST".into(),
            path: globset::Glob::new("/run").unwrap().compile_matcher(),
        }],
    }
}

fn examined(content_type: &str, body: &str) -> Result<Recognised, String> {
    let body = Bytes::from(body.to_string());
    let request = Request {
        host: "db.example",
        method: "POST",
        path: "/run",
        query: None,
        content_type: Some(content_type),
        prefer: None,
        body: &body,
    };
    examine(request, None, 1 << 20, &sql_config()).map(|(_, r)| r)
}

#[test]
fn a_repeated_field_cannot_hide_sql() {
    let json = r#"{"sql": "DELETE FROM users", "sql": "SELECT id FROM users WHERE id = 1"}"#;
    assert!(
        examined("application/json", json).is_err(),
        "repeated JSON key"
    );
    let form = "sql=DELETE+FROM+users&sql=SELECT+id+FROM+users+WHERE+id+%3D+1";
    if let Ok(r) = examined("application/x-www-form-urlencoded", form) {
        let data = r.data.expect("SQL in a form field is data access");
        assert!(data.statements.contains(&"delete".into()), "{data:?}");
    }
    let once = examined("application/json", r#"{"sql": "SELECT 1"}"#).unwrap();
    assert_eq!(once.data.unwrap().statement, "select");
}

#[test]
fn prose_in_a_prose_field_is_no_sql_but_code_there_is_judged() {
    // Field, text, and the statement read (`Err`: refused as unreadable).
    type Row = (&'static str, &'static str, Result<Option<&'static str>, ()>);
    let table: &[Row] = &[
        ("query", "do cats dream?", Ok(None)),
        ("query", "explain how DNS works", Ok(None)),
        ("query", "delete my facebook account", Ok(None)),
        ("query", "DO $$BEGIN DELETE FROM users; END$$", Err(())),
        ("query", "CALL purge_users()", Ok(Some("call"))),
        (
            "query",
            "do language plpgsql $$ begin delete from users; end $$",
            Err(()),
        ),
        (
            "query",
            "DELETE FROM users WHERE id = 1",
            Ok(Some("delete")),
        ),
        ("sql", "do cats dream?", Err(())),
        ("sql", "DO $$BEGIN DELETE FROM users; END$$", Err(())),
    ];
    for (field, text, expected) in table {
        let body = serde_json::json!({ *field: text }).to_string();
        let got = examined("application/json", &body)
            .map(|r| r.data.map(|d| d.statement))
            .map_err(|_| ());
        let expected = expected.map(|kind| kind.map(String::from));
        assert_eq!(got, expected, "{field}: {text}");
    }
}

#[test]
fn a_body_read_from_another_charset_stays_within_the_limit() {
    // 0x80 is `€` in windows-1252: one byte sent, three read as UTF-8.
    let body = Bytes::from(vec![0x80; 1000]);
    let request = |content_type| Request {
        host: "api.example",
        method: "POST",
        path: "/",
        query: None,
        content_type: Some(content_type),
        prefer: None,
        body: &body,
    };
    let config = InspectConfig::default();
    let read = examine(
        request("text/plain; charset=windows-1252"),
        None,
        3000,
        &config,
    );
    assert_eq!(read.map(|(b, _)| b.len()), Ok(3000));
    let over = examine(
        request("text/plain; charset=windows-1252"),
        None,
        2999,
        &config,
    );
    assert!(over.is_err_and(|e| e.contains("limit")));
}
