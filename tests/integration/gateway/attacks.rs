//! What an agent sends to get around the gateway: no key, an unknown or foreign key, paths that
//! leave their route, another Host, absolute-form, a body over the limit, a denied route.

use serde_json::{Value, json};

use super::{CODER_KEY, POLICY, WRITER_KEY, client, gateway, gateway_with, raw, secret};
use crate::support::{ProxySpec, TestPki, TestProxy};

/// No key, a key no agent holds, a provider key (alone or beside the gateway key) and a key for
/// another agent beside its own are refused before anything leaves, and audited.
#[tokio::test]
async fn requests_without_their_gateway_key_are_refused_and_audited() {
    let gw = gateway("").await;
    let url = gw.url("/keyed-openai/v1/chat/completions");
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let cases: [(&[(&str, &str)], u16); 5] = [
        (&[], 401),
        (&[("authorization", "Bearer gk-nobody-000000000000")], 401),
        (
            &[(
                "authorization",
                "Bearer sk-proj-AbCdEf0123456789AbCdEf0123456789",
            )],
            401,
        ),
        (
            &[
                ("authorization", &format!("Bearer {CODER_KEY}")),
                ("x-api-key", "sk-ant-api03-agents-own-key-0123456789"),
            ],
            403,
        ),
        (&[("x-api-key", CODER_KEY), ("api-key", WRITER_KEY)], 403),
    ];
    let client = client();
    for (headers, expected) in cases {
        let mut request = client.post(&url).json(&body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "{headers:?}");
        if expected == 401 {
            assert!(response.headers().contains_key("www-authenticate"));
        }
        let text = response.text().await.unwrap();
        assert!(!text.contains("sk-"), "no key echoed: {text}");
    }
    assert_eq!(gw.received(), "", "nothing reached the origin");
    assert_eq!(gw.refusals("a gateway key is required").len(), 1);
    assert_eq!(gw.refusals("unknown gateway key").len(), 2);
    assert_eq!(
        gw.refusals("holds something other than").len(),
        2,
        "{:?}",
        gw.proxy.decisions()
    );
    let audit = std::fs::read_to_string(gw.proxy.dir.path().join("audit.jsonl")).unwrap();
    for secret in [
        CODER_KEY,
        WRITER_KEY,
        "sk-ant-api03-agents-own-key",
        "gk-nobody",
    ] {
        assert!(!audit.contains(secret), "no key in the audit trail");
    }
}

/// Every way out of a route an agent could write is refused with 400 (or 421 for another Host,
/// 404 for no route) before any upstream is chosen; nothing reaches the origin.
#[tokio::test]
async fn path_tricks_absolute_form_and_host_spoofing_never_leave_their_route() {
    let gw = gateway("").await;
    let auth = format!("Authorization: Bearer {CODER_KEY}\r\n");
    let cases = [
        (
            "GET /origin/../anthropic/v1/messages HTTP/1.1",
            "127.0.0.1",
            400,
        ),
        ("GET /origin/./echo HTTP/1.1", "127.0.0.1", 400),
        ("GET /origin/%2e%2e/echo HTTP/1.1", "127.0.0.1", 400),
        ("GET /origin%2f..%2fecho HTTP/1.1", "127.0.0.1", 400),
        ("GET /origin/a%2fb HTTP/1.1", "127.0.0.1", 400),
        ("GET /origin//evil.example/echo HTTP/1.1", "127.0.0.1", 400),
        ("GET //evil.example/echo HTTP/1.1", "127.0.0.1", 400),
        ("GET /origin/\\..\\echo HTTP/1.1", "127.0.0.1", 400),
        ("GET /keyed-openai/%5c..%5cecho HTTP/1.1", "127.0.0.1", 400),
        (
            "GET https://evil.example/echo HTTP/1.1",
            "evil.example",
            400,
        ),
        (
            "GET http://127.0.0.1/origin/echo HTTP/1.1",
            "127.0.0.1",
            400,
        ),
        ("CONNECT evil.example:443 HTTP/1.1", "evil.example:443", 400),
        ("GET /origin/echo HTTP/1.1", "evil.example", 421),
        ("GET /origin/echo HTTP/1.1", "localhost.evil.example", 421),
        ("GET /originx/echo HTTP/1.1", "127.0.0.1", 404),
        ("GET /evil.example/echo HTTP/1.1", "127.0.0.1", 404),
    ];
    for (line, host, expected) in cases {
        let request = format!("{line}\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
        let answer = raw(gw.addr, &request).await;
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(0);
        assert_eq!(status, expected, "{line} (Host {host}): {answer}");
    }
    let huge = format!(
        "GET /origin/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    // The gateway answers 431 and closes; bytes it never read may reset the connection first.
    let answer = raw(gw.addr, &huge).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );
    assert_eq!(gw.refusals("larger than limits.max_header_bytes").len(), 1);
    let no_host = raw(
        gw.addr,
        &format!("GET /origin/echo HTTP/1.0\r\n{auth}Connection: close\r\n\r\n"),
    )
    .await;
    assert!(
        no_host.starts_with("HTTP/1.0 421") || no_host.starts_with("HTTP/1.1 421"),
        "{no_host}"
    );
    assert_eq!(gw.received(), "", "nothing reached the origin");
    assert!(!gw.refusals("canonical form").is_empty());
    assert!(!gw.refusals("Host header").is_empty());

    // The same route, written plainly, works: the test is not refusing everything.
    let response = client()
        .post(gw.url("/origin/mirror?x=1"))
        .header("authorization", format!("Bearer {CODER_KEY}"))
        .json(&json!({"plain": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        gw.received().starts_with("/mirror?x=1 "),
        "{}",
        gw.received()
    );
}

/// A body over the limit is refused (413); a path no route takes is a 404 naming the routes; a
/// gateway key in Google's `key` query parameter names the agent and never leaves.
#[tokio::test]
async fn oversized_bodies_unrouted_paths_and_query_keys() {
    let gw = gateway("").await;
    let client = client();
    let key = ("x-api-key", CODER_KEY);
    let too_large = client
        .post(gw.url("/origin/mirror"))
        .header(key.0, key.1)
        .body(vec![b'a'; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    let unrouted = client
        .get(gw.url("/github/user"))
        .header(key.0, key.1)
        .send()
        .await
        .unwrap();
    assert_eq!(unrouted.status(), 404, "`/github` is not built in");
    assert!(unrouted.text().await.unwrap().contains("/anthropic"));
    assert_eq!(gw.received(), "");
    let in_query = client
        .get(gw.url(&format!(
            "/keyed-openai/v1beta/models?alt=json&q=a+b%20c&%6Bey={CODER_KEY}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 200);
    let seen: Value = in_query.json().await.unwrap();
    assert_eq!(seen["query"], "alt=json&q=a+b%20c", "the rest as written");
    // Where no key is brokered, the gateway key is dropped, not forwarded.
    let in_header = client
        .get(gw.url("/keyed-openai/v1beta/models"))
        .header("x-goog-api-key", CODER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(in_header.status(), 200);
    let seen: Value = in_header.json().await.unwrap();
    assert_eq!(seen["x-goog-api-key"], json!([]));
    assert!(!gw.received().contains(CODER_KEY));
}

/// A configured route to a host the connect rules deny is refused with the rule's message.
#[tokio::test]
async fn a_route_the_connect_rules_deny_is_refused_by_the_rule() {
    let pki = TestPki::new();
    let files = tempfile::tempdir().unwrap();
    let key = secret(files.path(), "coder.key", CODER_KEY);
    let token = secret(files.path(), "coder.token", "token-coder-0a0a0a");
    let spec = ProxySpec {
        identity: format!("identity:\n  agents:\n    - {{ id: coder, token_file: '{token}' }}\n"),
        policy: POLICY.into(),
        extra: format!(
            "gateway:\n  listen: 127.0.0.1:0\n  keys:\n    - {{ agent: coder, key_file: '{key}' }}\n  routes:\n    - {{ prefix: /github, upstream: 'https://api.github.com' }}\n"
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let addr = proxy.gatehouse.as_ref().unwrap().gateway_addr().unwrap();
    let response = client()
        .get(format!("http://{addr}/github/user"))
        .header("authorization", format!("Bearer {CODER_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("no-github-here"), "{body}");
    let decisions = proxy.decisions();
    assert!(
        decisions.iter().any(|d| d["agent"] == "coder"
            && d["effect"] == "deny"
            && d["rules"] == json!(["no-github-here"])),
        "{decisions:?}"
    );
}

/// The gateway's own refusals on a provider's route are shaped like that provider's errors, so an
/// SDK raises a readable exception; none of them reaches the network.
#[tokio::test]
async fn refusals_on_a_provider_route_are_shaped_like_its_errors() {
    let gw = gateway("").await;
    let response = client()
        .post(gw.url("/gemini/v1beta/models/gemini-2.5-flash:generateContent"))
        .header("x-goog-api-key", "AIzaSyNotAGatewayKey0123456789")
        .json(&json!({"contents": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(body["error"]["message"], "unknown gateway key");
    let refused = gw.refusals("unknown gateway key");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["host"], "generativelanguage.googleapis.com");
}

/// With anonymous calls allowed, a web page the operator's browser opens still cannot call
/// through the gateway without a key (it would spend the anonymous agent's budget); a program
/// without a key can.
#[tokio::test]
async fn a_browser_page_without_a_key_is_refused_even_when_anonymous_calls_are_allowed() {
    let gw = gateway_with(Some("  allow_anonymous: true\n".into()), "").await;
    let client = client();
    let from_page = client
        .post(gw.url("/origin/mirror"))
        .header("origin", "https://evil.example")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(from_page.status(), 403);
    let status = from_page.headers()["proxy-status"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        status.contains("http_request_denied") && status.contains("(decision "),
        "{status}"
    );
    let fetched = client
        .post(gw.url("/origin/mirror"))
        .header("sec-fetch-site", "cross-site")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), 403);
    assert_eq!(gw.received(), "", "nothing of a page's request left");
    let program = client
        .post(gw.url("/origin/mirror"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        program.status(),
        200,
        "an anonymous program is still admitted"
    );
}
