//! Every refusal says why in an RFC 9209 `Proxy-Status` header, where `curl -v` and client logs
//! show it (a CONNECT refusal's body never reaches the user): a registered error type and, in
//! `details`, the reason and the id the audit trail holds the refusal under.

use std::process::Command;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

/// `Proxy-Status` as a structured-field list: this hop's name, its `error` token, its `details`.
#[derive(Debug)]
struct ProxyStatus {
    hop: String,
    error: String,
    details: String,
}

/// Parses a `Proxy-Status` value strictly (RFC 9651): a list of one item naming `gatehouse`.
fn parse(value: &str) -> ProxyStatus {
    let list: sfv::List = sfv::Parser::new(value)
        .parse()
        .unwrap_or_else(|e| panic!("Proxy-Status is not a structured field: {e}: {value}"));
    assert_eq!(list.len(), 1, "{value}");
    let sfv::ListEntry::Item(item) = &list[0] else {
        panic!("Proxy-Status member is not an item: {value}");
    };
    let param = |name: &str| {
        item.params
            .iter()
            .find(|(key, _)| key.as_str() == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {value}"))
    };
    ProxyStatus {
        hop: item
            .bare_item
            .as_token()
            .expect("hop is a token")
            .as_str()
            .into(),
        error: param("error")
            .as_token()
            .expect("error is a token")
            .as_str()
            .into(),
        details: param("details")
            .as_string()
            .expect("details is a string")
            .as_str()
            .into(),
    }
}

/// Runs `curl -v` with `args` and returns every `Proxy-Status` header it printed (those of a
/// CONNECT answer included) and its whole stderr.
fn curl_v(args: &[&str]) -> (Vec<ProxyStatus>, String) {
    let output = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "20", "-o", "/dev/null"])
        .args(args)
        .output()
        .expect("curl is installed");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let statuses = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("< "))
        .filter_map(|l| l.split_once(':'))
        .filter(|(name, _)| name.eq_ignore_ascii_case("proxy-status"))
        .map(|(_, value)| parse(value.trim()))
        .collect();
    (statuses, stderr)
}

/// The decision id inside `details`: `(decision <id>)` at its end.
fn decision_in(status: &ProxyStatus) -> String {
    let start = status
        .details
        .rfind("(decision ")
        .unwrap_or_else(|| panic!("no decision in {status:?}"));
    status.details[start + "(decision ".len()..]
        .trim_end_matches(')')
        .to_string()
}

/// The audit trail's decision record with id `id`.
fn recorded(proxy: &TestProxy, id: &str) -> serde_json::Value {
    proxy
        .decisions()
        .into_iter()
        .find(|d| d["decision"] == id)
        .unwrap_or_else(|| {
            panic!(
                "decision {id} is not in the audit trail: {:?}",
                proxy.decisions()
            )
        })
}

const DENY_ADMIN: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: no-intranet
    trigger: connect
    match: { hosts: ["intranet.localhost"] }
    effect: deny
    message: the intranet is off limits
  - id: allow-echo
    trigger: http.request
    effect: allow
  - id: deny-admin
    trigger: http.request
    match: { paths: ["/echo/admin/**"] }
    effect: deny
    message: admin endpoints are off limits
"#;

#[tokio::test]
async fn a_denied_connect_says_why_in_proxy_status_naming_the_recorded_decision() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, DENY_ADMIN).await;
    let url = format!("https://intranet.localhost:{}/echo", origin.port());
    let proxy_url = proxy.url();
    let (statuses, stderr) =
        tokio::task::spawn_blocking(move || curl_v(&["--proxy", &proxy_url, &url]))
            .await
            .unwrap();
    assert!(stderr.contains("< HTTP/1.1 403"), "{stderr}");
    let [status] = statuses.as_slice() else {
        panic!("one Proxy-Status on the CONNECT answer: {stderr}");
    };
    assert_eq!(status.hop, "gatehouse");
    assert_eq!(status.error, "http_request_denied");
    assert!(
        status.details.contains("the intranet is off limits"),
        "{status:?}"
    );
    let decision = recorded(&proxy, &decision_in(status));
    assert_eq!(decision["trigger"], "connect");
    assert_eq!(decision["effect"], "deny");
    assert_eq!(decision["rules"], serde_json::json!(["no-intranet"]));
}

#[tokio::test]
async fn a_request_denied_inside_an_intercepted_tunnel_names_its_decision() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, DENY_ADMIN).await;
    let ca = proxy.dir.path().join("certs/gatehouse-ca.pem");
    let url = format!("https://localhost:{}/echo/admin/users", origin.port());
    let proxy_url = proxy.url();
    let (statuses, stderr) = tokio::task::spawn_blocking(move || {
        let ca = ca.display().to_string();
        curl_v(&["--http1.1", "--proxy", &proxy_url, "--cacert", &ca, &url])
    })
    .await
    .unwrap();
    assert!(stderr.contains("< HTTP/1.1 403"), "{stderr}");
    let [status] = statuses.as_slice() else {
        panic!("one Proxy-Status, on the inner answer only: {stderr}");
    };
    assert_eq!(status.error, "http_request_denied");
    assert!(
        status.details.contains("admin endpoints are off limits"),
        "{status:?}"
    );
    let decision = recorded(&proxy, &decision_in(status));
    assert_eq!(decision["trigger"], "http.request");
    assert_eq!(decision["rules"], serde_json::json!(["deny-admin"]));
}

#[tokio::test]
async fn an_unknown_agent_is_told_why_without_its_token_echoed() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("bot.token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let identity = format!(
        "identity:\n  allow_anonymous: false\n  agents:\n    - id: bot\n      token_file: {}\n",
        token_file.display()
    );
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            identity,
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://localhost:{}/echo", origin.port());
    let proxy_url = proxy.url();
    let (statuses, stderr) = tokio::task::spawn_blocking(move || {
        curl_v(&[
            "--proxy",
            &proxy_url,
            "--proxy-user",
            "ghost:s3cret-token",
            &url,
        ])
    })
    .await
    .unwrap();
    assert!(stderr.contains("< HTTP/1.1 407"), "{stderr}");
    let [status] = statuses.as_slice() else {
        panic!("one Proxy-Status on the 407: {stderr}");
    };
    assert_eq!(status.error, "http_request_denied");
    assert!(
        status.details.contains("invalid proxy credentials"),
        "{status:?}"
    );
    assert!(!status.details.contains("s3cret"), "{status:?}");
    let decision = recorded(&proxy, &decision_in(status));
    assert_eq!(decision["effect"], "deny");
    assert_eq!(decision["status"], 407);
}

#[tokio::test]
async fn a_guard_refusal_is_destination_ip_prohibited_and_recorded() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            allow_cidrs: vec![],
            ..Default::default()
        },
    )
    .await;
    let url = format!("https://localhost:{}/echo", origin.port());
    let proxy_url = proxy.url();
    let (statuses, stderr) =
        tokio::task::spawn_blocking(move || curl_v(&["--proxy", &proxy_url, &url]))
            .await
            .unwrap();
    assert!(stderr.contains("< HTTP/1.1 403"), "{stderr}");
    let [status] = statuses.as_slice() else {
        panic!("one Proxy-Status on the CONNECT answer: {stderr}");
    };
    assert_eq!(status.error, "destination_ip_prohibited");
    assert!(status.details.contains("loopback"), "{status:?}");
    let decision = recorded(&proxy, &decision_in(status));
    assert_eq!(decision["effect"], "deny");
    assert_eq!(decision["status"], 403);
}

#[tokio::test]
async fn an_upstream_that_refuses_the_connection_is_named_with_the_requests_record() {
    let pki = TestPki::new();
    let proxy = TestProxy::with_policy(&pki, crate::support::ALLOW_ALL).await;
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let response = proxy.get(format!("http://127.0.0.1:{port}/x")).await;
    assert_eq!(response.status(), 502);
    let value = response.headers()["proxy-status"].to_str().unwrap();
    let status = parse(value);
    assert_eq!(status.error, "connection_refused", "{value}");
    let start = status
        .details
        .rfind("(request ")
        .expect("names the request");
    let request = status.details[start + "(request ".len()..].trim_end_matches(')');
    let trail = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    let outcome = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["record"] == "outcome" && r["request"] == request)
        .unwrap_or_else(|| panic!("no outcome record for request {request}: {trail}"));
    assert_eq!(outcome["status"], 502);
}

#[tokio::test]
async fn an_upstream_certificate_the_proxy_does_not_trust_is_a_tls_certificate_error() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            trust_origin: false,
            ..Default::default()
        },
    )
    .await;
    let response = proxy
        .get(format!("https://localhost:{}/echo", origin.port()))
        .await;
    assert_eq!(response.status(), 502);
    let value = response.headers()["proxy-status"].to_str().unwrap();
    let status = parse(value);
    assert_eq!(status.error, "tls_certificate_error", "{value}");
    assert!(status.details.contains("(request "), "{value}");
}

#[tokio::test]
async fn a_budget_refusal_names_the_request_whose_outcome_the_trail_holds() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: crate::budgets::ALLOW.into(),
            extra: "budget:\n  budgets:\n    - { id: tiny, limit_usd: '0.000001', window: day }\n"
                .into(),
            ..Default::default()
        },
    )
    .await;
    let response = proxy
        .client(true)
        .post(format!("https://localhost:{}/v1/messages", origin.port()))
        .header("content-type", "application/json")
        .body(crate::budgets::call_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    let value = response.headers()["proxy-status"]
        .to_str()
        .unwrap()
        .to_string();
    let status = parse(&value);
    assert_eq!(status.error, "http_request_denied", "{value}");
    let start = status
        .details
        .rfind("(request ")
        .expect("names the request");
    let request = status.details[start + "(request ".len()..].trim_end_matches(')');
    let trail = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    let outcome = trail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["record"] == "outcome" && r["request"] == request)
        .unwrap_or_else(|| panic!("no outcome record for request {request}: {trail}"));
    assert_eq!(outcome["status"], 429);
    assert_eq!(outcome["outcome"], "budget_exceeded");
}
