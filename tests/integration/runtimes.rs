//! Unmodified programs of other runtimes under `gatehouse exec` go through the proxy (judged, in the
//! audit trail) and trust its CA. Node: built-in `fetch`, the `https` module and the official
//! `openai` npm SDK, because `exec` sets `NODE_USE_ENV_PROXY=1` beside the proxy and CA variables;
//! Node 24 and the SDK come from the npm registry through `scripts/test-node`, which `scripts/test`
//! runs and names in `GATEHOUSE_TEST_NODE`. Go: `net/http` as it comes (the `go` on `PATH`,
//! Debian's `golang-go`).

use std::path::{Path, PathBuf};

use crate::support::{ProxySpec, TestPki, TestProxy, binary, origin};

/// The Node binary `scripts/test` installed (`GATEHOUSE_TEST_NODE`); the tests fail without it.
fn node() -> PathBuf {
    let node = std::env::var("GATEHOUSE_TEST_NODE").expect(
        "GATEHOUSE_TEST_NODE names Node 24 with the openai npm SDK: run scripts/test, or \
         export GATEHOUSE_TEST_NODE=\"$(scripts/test-node)\"",
    );
    let node = PathBuf::from(node);
    assert!(
        node.exists(),
        "{} is missing: run scripts/test-node",
        node.display()
    );
    node
}

/// The `node_modules` folder beside the Node binary (`<tools>/bin/node`, `<tools>/node_modules`).
fn node_modules(node: &Path) -> PathBuf {
    let tools = node
        .parent()
        .and_then(Path::parent)
        .expect("<tools>/bin/node");
    tools.join("node_modules")
}

/// Runs the program `source` (written to a file of its own) with `arg` under `gatehouse exec`
/// with `proxy`'s config; nothing but `exec` tells it about the proxy.
async fn node_under_exec(proxy: &TestProxy, source: &str, arg: String) -> std::process::Output {
    let node = node();
    let modules = node_modules(&node);
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("agent.js");
    std::fs::write(&program, source).unwrap();
    let config = proxy.config_path.clone();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(binary())
            .args(["exec", "--config"])
            .arg(&config)
            .arg("--")
            .arg(&node)
            .arg(&program)
            .arg(&arg)
            // `require("openai")` finds the SDK scripts/test installed.
            .env("NODE_PATH", &modules)
            .env_remove("NODE_USE_ENV_PROXY")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("NODE_EXTRA_CA_CERTS")
            .output()
            .unwrap();
        drop(dir);
        output
    })
    .await
    .unwrap()
}

/// Every record of the proxy's audit trail (decisions and outcomes).
fn trail(proxy: &TestProxy) -> Vec<serde_json::Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const FETCH: &str = r#"
const main = async () => {
  const response = await fetch(process.argv[2], {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ hello: "world" }),
  });
  const seen = await response.json();
  // The `https` module (and the clients built on it) honour the variable too.
  const https_status = await new Promise((resolve, reject) => {
    require("https").get(process.argv[2], (res) => { res.resume(); resolve(res.statusCode); })
      .on("error", reject);
  });
  console.log(JSON.stringify({
    status: response.status,
    seen,
    https_status,
    execution: process.env.GATEHOUSE_EXECUTION_ID,
    version: process.version,
  }));
};
main().catch((e) => { console.error(e, e.cause); process.exit(1); });
"#;

/// The origin's certificate is trusted by the proxy alone: a `fetch` that went around the proxy
/// would fail its TLS (as Node 20's does: it ignores the variable); one that goes through it
/// trusts the Gatehouse CA `exec` names.
#[tokio::test]
async fn node_fetch_under_gatehouse_exec_goes_through_the_proxy() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let url = format!("https://localhost:{}/echo", origin.port());
    let output = node_under_exec(&proxy, FETCH, url).await;
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(
        report["version"].as_str().unwrap().starts_with("v24."),
        "{report}"
    );
    assert_eq!(report["status"], 200, "{report}");
    assert_eq!(report["https_status"], 200, "{report}");
    assert_eq!(report["seen"]["method"], "POST");
    assert!(
        report["seen"]["headers"]
            .get("proxy-authorization")
            .is_none()
    );
    assert!(report["execution"].as_str().unwrap().starts_with("exec-"));
    let records = trail(&proxy);
    let judged = records.iter().find(|r| {
        r["trigger"] == "http.request" && r["method"] == "POST" && r["port"] == origin.port()
    });
    let judged =
        judged.unwrap_or_else(|| panic!("fetch's request is not in the trail: {records:?}"));
    assert_eq!(judged["effect"], "allow");
    assert_eq!(judged["agent"], "anonymous");
}

const OPENAI: &str = r#"
const { OpenAI } = require("openai");
const main = async () => {
  const report = {};
  const client = new OpenAI({ baseURL: process.argv[2] + "/bench/v1", apiKey: "sk-test-not-a-key", maxRetries: 0 });
  const completion = await client.chat.completions.create({
    model: "gpt-4o", max_tokens: 100, messages: [{ role: "user", content: "hi" }],
  });
  report.content = completion.choices[0].message.content;
  report.total_tokens = completion.usage.total_tokens;
  const refused = new OpenAI({ baseURL: process.argv[2] + "/denied/v1", apiKey: "sk-test-not-a-key", maxRetries: 0 });
  try {
    await refused.chat.completions.create({ model: "gpt-4o", max_tokens: 100, messages: [{ role: "user", content: "hi" }] });
    report.refused = "no error raised";
  } catch (e) {
    report.refused = {
      name: e.constructor.name, status: e.status, message: e.message,
      decision: e.headers.get("x-gatehouse-decision"), proxy_status: e.headers.get("proxy-status"),
    };
  }
  console.log(JSON.stringify(report));
};
main().catch((e) => { console.error(e, e.cause); process.exit(1); });
"#;

const OPENAI_RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: requests
    trigger: http.request
    effect: allow
  - id: llm-calls
    trigger: llm.request
    effect: allow
  - id: no-denied-path
    trigger: http.request
    match: { paths: ["/denied/**"] }
    effect: deny
    message: this path is off limits
"#;

/// The official `openai` npm SDK, unmodified: its call is judged and metered by the proxy, and a
/// refused call raises the SDK's own error naming the decision (and `Proxy-Status`).
#[tokio::test]
async fn the_openai_npm_sdk_under_gatehouse_exec_goes_through_the_proxy() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::with_policy(&pki, OPENAI_RULES).await;
    let base = format!("https://localhost:{}", origin.port());
    let output = node_under_exec(&proxy, OPENAI, base).await;
    assert!(
        output.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["content"], "The refund was issued.", "{report}");
    assert_eq!(report["total_tokens"], 1250);
    let refused = &report["refused"];
    assert_eq!(refused["name"], "PermissionDeniedError", "{report}");
    assert_eq!(refused["status"], 403);
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("this path is off limits"), "{message}");
    let decision = refused["decision"].as_str().unwrap();
    let proxy_status = refused["proxy_status"].as_str().unwrap();
    assert!(
        proxy_status.starts_with("gatehouse; error=http_request_denied;")
            && proxy_status.contains(decision),
        "{proxy_status}"
    );

    let records = trail(&proxy);
    let llm = records
        .iter()
        .find(|r| r["trigger"] == "llm.request" && r["effect"] == "allow");
    let llm = llm.unwrap_or_else(|| panic!("the SDK's call is not in the trail: {records:?}"));
    assert_eq!(llm["llm"]["model"], "gpt-4o");
    let metered = records.iter().any(|r| {
        r["record"] == "outcome"
            && r["request"] == llm["request"]
            && r["llm"]["output_tokens"] == 50
    });
    assert!(metered, "the answer's usage is metered: {records:?}");
    let denied = records.iter().find(|r| r["decision"] == decision).unwrap();
    assert_eq!(denied["rules"], serde_json::json!(["no-denied-path"]));
}

const GO: &str = r#"package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	resp, err := http.Get(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("%d %s", resp.StatusCode, body)
}
"#;

/// Go's `net/http` as it comes: `ProxyFromEnvironment` reads `HTTPS_PROXY` (credentials in it
/// become `Proxy-Authorization`) and `crypto/x509` reads `SSL_CERT_FILE`. Go never sends a request
/// for `localhost` or a loopback address through a proxy, so the program asks for `localhost.`
/// (the same host, a name Go does not special-case).
#[tokio::test]
async fn go_net_http_under_gatehouse_exec_goes_through_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.go"), GO).unwrap();
    let program = dir.path().join("agent");
    let built = std::process::Command::new("go")
        .args(["build", "-o"])
        .arg(&program)
        .arg("main.go")
        .current_dir(dir.path())
        .env("GOCACHE", dir.path().join("cache"))
        .env("GOPATH", dir.path().join("gopath"))
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .output()
        .expect("go is installed (Debian's golang-go)");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let url = format!("https://localhost.:{}/echo", origin.port());
    let config = proxy.config_path.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary())
            .args(["exec", "--config"])
            .arg(&config)
            .arg("--")
            .arg(&program)
            .arg(&url)
            .env_remove("SSL_CERT_FILE")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the Go program failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let (status, body) = stdout.split_once(' ').unwrap();
    assert_eq!(status, "200", "{stdout}");
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(
        seen["headers"].get("proxy-authorization").is_none(),
        "{seen}"
    );
    let records = trail(&proxy);
    let judged = records.iter().find(|r| {
        r["trigger"] == "http.request" && r["method"] == "GET" && r["port"] == origin.port()
    });
    let judged = judged.unwrap_or_else(|| panic!("Go's request is not in the trail: {records:?}"));
    assert_eq!(judged["effect"], "allow");
}
