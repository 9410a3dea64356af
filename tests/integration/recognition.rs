//! LLM and MCP calls recognised through the proxy, judged by their own triggers, refused in the
//! shape their clients understand.

use std::io::Write;

use serde_json::{Value, json};

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

const RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: http-all
    trigger: http.request
    effect: allow
  - id: unapproved-model
    trigger: llm.request
    when: "llm.model == 'gpt-4o'"
    effect: deny
    message: gpt-4o is not approved for this agent
  - id: no-big-outputs
    trigger: llm.request
    when: "has(llm.max_tokens) && llm.max_tokens > 4000"
    effect: deny
  - id: no-destructive-tools
    trigger: tool.call
    when: "tool.name == 'delete_everything' || (has(tool.arguments.force) && tool.arguments.force == true)"
    effect: deny
  - id: no-unbounded-deletes
    trigger: data.access
    when: "data.statement == 'delete' && !data.has_where"
    effect: deny
    message: deletes need a WHERE clause
  - id: no-emails-from-customers
    trigger: data.access
    when: "'customers' in data.tables && ('email' in data.columns || '*' in data.columns)"
    effect: deny
"#;

async fn post(proxy: &TestProxy, url: &str, body: Value, gzip: bool) -> (u16, Value) {
    let mut request = proxy
        .client(true)
        .post(url)
        .header("content-type", "application/json");
    let bytes = serde_json::to_vec(&body).unwrap();
    request = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&bytes).unwrap();
        request
            .header("content-encoding", "gzip")
            .body(encoder.finish().unwrap())
    } else {
        request.body(bytes)
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn llm_calls_are_judged_on_their_facts_and_refused_in_the_providers_shape() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: RULES.into(),
            ..Default::default()
        },
    )
    .await;
    let base = format!("https://localhost:{}", origin.port());

    let chat =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let (status, _) = post(
        &proxy,
        &format!("{base}/v1/chat/completions"),
        chat("gpt-4o-mini"),
        false,
    )
    .await;
    assert_eq!(status, 200);

    for gzip in [false, true] {
        let (status, body) = post(
            &proxy,
            &format!("{base}/v1/chat/completions"),
            chat("gpt-4o"),
            gzip,
        )
        .await;
        assert_eq!(status, 403, "gzip={gzip}");
        assert_eq!(
            body["error"]["type"], "gatehouse_policy",
            "OpenAI shape: {body}"
        );
        assert_eq!(body["error"]["rules"], json!(["unapproved-model"]));
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("gpt-4o is not approved")
        );
    }

    let anthropic = json!({"model": "claude-x", "max_tokens": 8000, "messages": [{"role": "user", "content": "hi"}]});
    let (status, body) = post(&proxy, &format!("{base}/v1/messages"), anthropic, false).await;
    assert_eq!(status, 403);
    assert_eq!(body["type"], "error", "Anthropic shape: {body}");
    assert_eq!(body["error"]["type"], "permission_error");

    let gemini = json!({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 9000}});
    let (status, body) = post(
        &proxy,
        &format!("{base}/v1beta/models/gemini-pro:generateContent"),
        gemini,
        false,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["status"], "PERMISSION_DENIED",
        "Gemini shape: {body}"
    );
}

#[tokio::test]
async fn mcp_tool_calls_are_judged_by_name_and_arguments() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: RULES.into(),
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://localhost:{}/mcp", origin.port());
    let call = |id: u64, name: &str, arguments: Value| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": name, "arguments": arguments}});

    let (status, _) = post(&proxy, &url, call(1, "search", json!({"q": "x"})), false).await;
    assert_eq!(status, 200);

    let (status, body) = post(&proxy, &url, call(2, "delete_everything", json!({})), false).await;
    assert_eq!(status, 403);
    assert_eq!(body["jsonrpc"], "2.0", "JSON-RPC shape: {body}");
    assert_eq!(body["id"], 2);
    assert_eq!(
        body["error"]["data"]["rules"],
        json!(["no-destructive-tools"])
    );

    let (status, body) = post(
        &proxy,
        &url,
        call(3, "drop_table", json!({"force": true})),
        false,
    )
    .await;
    assert_eq!(status, 403, "arguments are facts too: {body}");

    let list = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/list"});
    let (status, _) = post(&proxy, &url, list, false).await;
    assert_eq!(status, 200, "listing tools is a plain request");
}

#[tokio::test]
async fn a_body_that_cannot_be_decoded_is_not_forwarded() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: RULES.into(),
            ..Default::default()
        },
    )
    .await;
    let response = proxy
        .client(true)
        .post(format!(
            "https://localhost:{}/v1/chat/completions",
            origin.port()
        ))
        .header("content-encoding", "gzip")
        .body("this is not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not forwarded uninspected"),
        "{body}"
    );
}

#[tokio::test]
async fn sql_in_tool_calls_and_postgrest_reads_are_data_access() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: RULES.into(),
            ..Default::default()
        },
    )
    .await;
    let mcp = format!("https://localhost:{}/mcp", origin.port());
    let sql = |id: u64, query: &str| json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "run_sql", "arguments": {"query": query}}});

    let (status, _) = post(
        &proxy,
        &mcp,
        sql(1, "DELETE FROM sessions WHERE expired = true"),
        false,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = post(&proxy, &mcp, sql(2, "DELETE FROM sessions"), false).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error"]["data"]["rules"],
        json!(["no-unbounded-deletes"]),
        "{body}"
    );
    let (status, _) = post(
        &proxy,
        &mcp,
        sql(3, "SELECT * FROM customers LIMIT 5"),
        false,
    )
    .await;
    assert_eq!(status, 403, "a wildcard read of customers includes emails");

    let rest = |query: &str| {
        format!(
            "https://localhost:{}/rest/v1/customers?{query}",
            origin.port()
        )
    };
    assert_eq!(
        proxy
            .client(true)
            .get(rest("select=id,country"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        proxy
            .client(true)
            .get(rest("select=id,email"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
}

#[tokio::test]
async fn rest_endpoints_named_as_tools_are_tool_calls_with_form_arguments() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let policy = format!(
        "{RULES}  - id: big-refunds-hold\n    trigger: tool.call\n    when: \"tool.name == 'refund' && int(tool.arguments.amount) > 1000\"\n    effect: hold\n"
    );
    let spec = ProxySpec {
        policy,
        extra: "inspect:\n  tools:\n    - { name: refund, host: localhost, method: POST, path: /v1/refunds }\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let url = format!("https://localhost:{}/v1/refunds", origin.port());
    let form = |amount: &str| {
        proxy
            .client(true)
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("charge=ch_1&amount={amount}"))
            .send()
    };
    assert_eq!(form("500").await.unwrap().status(), 200);
    let held = form("5000").await.unwrap();
    assert_eq!(held.status(), 408, "held for a person");
    let body: Value = held.json().await.unwrap();
    assert_eq!(
        body["error"]["rules"],
        json!(["big-refunds-hold"]),
        "{body}"
    );
}

#[tokio::test]
async fn body_text_form_and_multipart_fields_are_facts() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let policy = format!(
        "{RULES}  - id: no-exports\n    trigger: http.request\n    when: \"(has(body.form.purpose) && body.form.purpose == 'export') || body.text.exists(t, t.contains('TOP SECRET'))\"\n    effect: deny\n"
    );
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy,
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://localhost:{}/upload", origin.port());
    let send = |content_type: &'static str, body: String| {
        proxy
            .client(true)
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let multipart = |purpose: &str| {
        format!(
            "--b1\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n--b1\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\nContent-Type: text/plain\r\n\r\nrows\r\n--b1--\r\n"
        )
    };
    assert_eq!(
        send("multipart/form-data; boundary=b1", multipart("backup"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send("multipart/form-data; boundary=b1", multipart("export"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        send("application/x-www-form-urlencoded", "purpose=export".into())
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        send("text/plain", "quarterly numbers".into())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        send("text/plain", "this is TOP SECRET".into())
            .await
            .unwrap()
            .status(),
        403
    );
}
