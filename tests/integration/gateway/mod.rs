//! The base-URL gateway through real sockets: the official OpenAI and Anthropic Python SDKs pointed
//! at it by `gatehouse exec --mode base-url` reach the test's TLS origin with the brokered key and
//! never the gateway key; what an agent sends to get around it (no key, an unknown key, its own
//! provider key, paths that leave their route, another Host, absolute-form, a body over the
//! limit, a route the policy denies) is refused and audited; budgets meter gateway calls; streamed
//! answers come back with pseudonyms restored.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::origin::Origin;
use crate::support::{ProxySpec, TestPki, TestProxy, binary, origin, python};

mod attacks;

const CODER_KEY: &str = "gk-coder-7f3a9c1e5b2d4086";
const WRITER_KEY: &str = "gk-writer-1b2c3d4e5f6a7b8c";
const OPENAI_SECRET: &str = "sk-real-openai-broker-5a5a5a5a";
const ANTHROPIC_SECRET: &str = "sk-ant-real-broker-6b6b6b6b";
const AZURE_SECRET: &str = "azure-real-broker-7c7c7c7c";

/// Connect rules for the test origin (`api.github.com` refused), every request and LLM call
/// allowed, emails pseudonymized on `/mirror-sse` and `/token-sse`.
const POLICY: &str = r#"rules:
  - id: connect-origin
    trigger: connect
    match: { hosts: [localhost] }
    effect: allow
  - id: no-github-here
    trigger: connect
    match: { hosts: [api.github.com] }
    effect: deny
    message: GitHub is not for this agent
  - id: requests
    trigger: http.request
    effect: allow
  - id: llm
    trigger: llm.request
    effect: allow
  - id: pseudonymize-for-llm
    trigger: http.request
    match: { paths: ["/mirror-sse", "/token-sse"] }
    effect: allow
    redact: { kinds: [email], style: pseudonymize }
"#;

/// A proxy with the gateway on, its origin, and the folder of its key files.
struct Gateway {
    _pki: TestPki,
    origin: Origin,
    proxy: TestProxy,
    addr: SocketAddr,
    files: tempfile::TempDir,
}

fn secret(dir: &Path, name: &str, value: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// The gateway with routes to the origin (`/openai` and `/anthropic` replace the built-in ones),
/// two agents with keys, brokered keys on the origin's `/keyed/` paths, and `extra` config.
async fn gateway(extra: &str) -> Gateway {
    gateway_named(None, extra).await
}

/// [`gateway`], serving TLS for `tls_name` when given.
async fn gateway_named(tls_name: Option<&str>, extra: &str) -> Gateway {
    gateway_with(tls_name.map(|name| format!("  tls_name: {name}\n")), extra).await
}

/// [`gateway`] with `section` (indented lines) added to its `gateway:` section.
async fn gateway_with(section: Option<String>, extra: &str) -> Gateway {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let files = tempfile::tempdir().unwrap();
    let d = files.path();
    let port = origin.port();
    let identity = format!(
        "identity:\n  agents:\n    - {{ id: coder, token_file: '{}' }}\n    - {{ id: writer, token_file: '{}' }}\n",
        secret(d, "coder.token", "token-coder-0a0a0a"),
        secret(d, "writer.token", "token-writer-0b0b0b"),
    );
    let o = format!("https://localhost:{port}");
    let tls = section.unwrap_or_default();
    let gateway = format!(
        "gateway:\n  listen: 127.0.0.1:0\n{}  keys:\n    - {{ agent: coder, key_file: '{}' }}\n    - {{ agent: writer, key_file: '{}' }}\n  routes:\n    - {{ prefix: /openai, upstream: '{o}' }}\n    - {{ prefix: /anthropic, upstream: '{o}' }}\n    - {{ prefix: /keyed-openai, upstream: '{o}/keyed' }}\n    - {{ prefix: /keyed-anthropic, upstream: '{o}/keyed' }}\n    - {{ prefix: /origin, upstream: '{o}' }}\n    - {{ prefix: /azure, upstream: '{o}/keyed' }}\n    - {{ prefix: /tokens/chat/completions, upstream: '{o}/token-sse' }}\n",
        tls,
        secret(d, "coder.key", CODER_KEY),
        secret(d, "writer.key", WRITER_KEY),
    );
    let credentials = format!(
        "credentials:\n  - {{ host: localhost, port: {port}, path: '/keyed/v1/chat/**', header: authorization, secret_file: '{}', require: placeholder }}\n  - {{ host: localhost, port: {port}, path: '/keyed/v1/messages', header: x-api-key, secret_file: '{}', require: placeholder }}\n  - {{ host: localhost, port: {port}, path: '/keyed/openai/**', header: api-key, secret_file: '{}', require: placeholder }}\n",
        secret(d, "openai.secret", OPENAI_SECRET),
        secret(d, "anthropic.secret", ANTHROPIC_SECRET),
        secret(d, "azure.secret", AZURE_SECRET),
    );
    let spec = ProxySpec {
        identity,
        policy: POLICY.into(),
        limits: "limits:\n  max_request_body_bytes: 65536\n  max_header_bytes: 8192\n".into(),
        extra: format!("{gateway}{credentials}{extra}"),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let addr = proxy.gatehouse.as_ref().unwrap().gateway_addr().unwrap();
    Gateway {
        _pki: pki,
        origin,
        proxy,
        addr,
        files,
    }
}

impl Gateway {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The proxy's config with the gateway's real address, for `gatehouse exec`.
    fn exec_config(&self) -> std::path::PathBuf {
        let text = std::fs::read_to_string(&self.proxy.config_path).unwrap();
        let text = text.replace(
            "gateway:\n  listen: 127.0.0.1:0",
            &format!("gateway:\n  listen: {}", self.addr),
        );
        let path = self.files.path().join("exec.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Everything the origin received, as text.
    fn received(&self) -> String {
        self.origin
            .received
            .lock()
            .unwrap()
            .iter()
            .map(|(target, body)| format!("{target} {}\n", String::from_utf8_lossy(body)))
            .collect()
    }

    /// Denials in the audit trail whose reason contains `needle`.
    fn refusals(&self, needle: &str) -> Vec<Value> {
        self.proxy
            .decisions()
            .into_iter()
            .filter(|d| {
                d["effect"] == "deny" && d["reason"].as_str().is_some_and(|r| r.contains(needle))
            })
            .collect()
    }
}

/// Sends `request` as written and reads the answer until the gateway closes.
async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

const SDK_SCRIPT: &str = r#"
import json, os
import anthropic, openai
report = {"env": {k: os.environ.get(k) for k in [
    "OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
    "GOOGLE_GEMINI_BASE_URL", "GEMINI_API_KEY", "HTTPS_PROXY"]}}
gpt = openai.OpenAI(max_retries=0)
raw = gpt.chat.completions.with_raw_response.create(
    model="gpt-4o", messages=[{"role": "user", "content": "hello through the gateway"}])
report["openai"] = {"status": raw.http_response.status_code, "seen": raw.http_response.json()}
claude = anthropic.Anthropic(max_retries=0)
message = claude.messages.create(model="claude-sonnet-4-5", max_tokens=100,
                                 messages=[{"role": "user", "content": "hi"}])
report["anthropic"] = {"text": message.content[0].text, "output_tokens": message.usage.output_tokens}
base = os.environ["GATEHOUSE_GATEWAY_URL"]
keyed = openai.OpenAI(base_url=base + "/keyed-openai/v1", max_retries=0)
raw = keyed.chat.completions.with_raw_response.create(
    model="gpt-4o", messages=[{"role": "user", "content": "which key?"}])
report["openai_keys"] = raw.http_response.json()
keyed = anthropic.Anthropic(base_url=base + "/keyed-anthropic", max_retries=0)
raw = keyed.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=10,
                                              messages=[{"role": "user", "content": "which key?"}])
report["anthropic_keys"] = raw.http_response.json()
azure = openai.AzureOpenAI(max_retries=0)
raw = azure.chat.completions.with_raw_response.create(
    model="gpt-4o", messages=[{"role": "user", "content": "which key?"}])
report["azure_keys"] = raw.http_response.json()
report["env"]["AZURE_OPENAI_ENDPOINT"] = os.environ.get("AZURE_OPENAI_ENDPOINT")
tokens = openai.OpenAI(base_url=base + "/tokens", max_retries=0)
stream = tokens.chat.completions.create(model="gpt-4o", stream=True, messages=[
    {"role": "user", "content": "Write to jane.doe@example.com about the refund"}])
report["streamed"] = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
print(json.dumps(report))
"#;

/// The unmodified SDKs under `gatehouse exec --mode base-url` read their base URL and key from
/// the environment, reach the origin through the gateway, and the origin sees the brokered keys,
/// never the gateway key.
#[tokio::test]
async fn official_sdks_under_exec_base_url_reach_the_origin_with_the_brokered_key() {
    let gw = gateway("").await;
    let config = gw.exec_config();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary())
            .args(["exec", "--mode", "base-url", "--agent", "coder", "--config"])
            .arg(&config)
            .arg("--")
            .arg(python())
            .args(["-c", SDK_SCRIPT])
            .env_remove("HTTPS_PROXY")
            .env("OPENAI_API_VERSION", "2024-10-21")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let base = format!("http://{}", gw.addr);
    let env = &report["env"];
    assert_eq!(env["OPENAI_BASE_URL"], format!("{base}/openai/v1"));
    assert_eq!(env["ANTHROPIC_BASE_URL"], format!("{base}/anthropic"));
    assert_eq!(env["GOOGLE_GEMINI_BASE_URL"], format!("{base}/gemini"));
    for key in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"] {
        assert_eq!(env[key], CODER_KEY, "{key}");
    }
    assert_eq!(env["HTTPS_PROXY"], Value::Null);

    assert_eq!(report["openai"]["status"], 200);
    assert_eq!(
        report["openai"]["seen"]["messages"][0]["content"],
        "hello through the gateway"
    );
    assert!(
        report["anthropic"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{report}"
    );
    // The origin echoes the keys it saw; the proxy scrubs the brokered key from the answer.
    assert_eq!(
        report["openai_keys"]["authorization"],
        json!(["Bearer [credential]"])
    );
    assert_eq!(
        report["anthropic_keys"]["x-api-key"],
        json!(["[credential]"])
    );
    assert_eq!(report["anthropic_keys"]["authorization"], json!([]));
    // Streamed token by token, the pseudonym the origin saw comes back as the original.
    assert_eq!(
        report["streamed"],
        "Write to jane.doe@example.com about the refund"
    );
    let received = gw.received();
    assert!(
        received.contains("<EMAIL_1>") && !received.contains("jane.doe"),
        "{received}"
    );
    let keys_at = |path: &str| -> Value {
        let prefix = format!("KEYS {path} ");
        let line = received
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{path} not reached: {received}"));
        serde_json::from_str(line).unwrap()
    };
    let openai = keys_at("/keyed/v1/chat/completions");
    assert_eq!(
        openai["authorization"],
        json!([format!("Bearer {OPENAI_SECRET}")])
    );
    assert_eq!(openai["x-api-key"], json!([]));
    assert_eq!(env["AZURE_OPENAI_ENDPOINT"], format!("{base}/azure"));
    let azure = keys_at("/keyed/openai/deployments/gpt-4o/chat/completions");
    assert_eq!(azure["api-key"], json!([AZURE_SECRET]));
    assert_eq!(azure["query"], "api-version=2024-10-21");
    let anthropic = keys_at("/keyed/v1/messages");
    assert_eq!(anthropic["x-api-key"], json!([ANTHROPIC_SECRET]));
    assert_eq!(anthropic["authorization"], json!([]));
    assert!(
        !received.contains(CODER_KEY),
        "the gateway key never leaves: {received}"
    );
    // The calls were judged as the agent's own.
    let decisions = gw.proxy.decisions();
    assert!(
        decisions
            .iter()
            .any(|d| d["agent"] == "coder" && d["trigger"] == "llm.request"),
        "{decisions:?}"
    );
}

/// A call through the gateway is metered into the budget like a forward-proxied one.
#[tokio::test]
async fn budgets_meter_gateway_calls() {
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    let gw = gateway(&format!(
        "budget:\n  store: {store}\n  budgets:\n    - {{ id: shared-daily, limit_usd: '10', window: day }}\n"
    ))
    .await;
    let response = client()
        .post(gw.url("/anthropic/v1/messages"))
        .header("x-api-key", CODER_KEY)
        .header("content-type", "application/json")
        .body(crate::budgets::call_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await.unwrap();
    let mut balance = crate::budgets::balance(&store).await;
    for _ in 0..100 {
        if balance.reserved == 0 && balance.spent > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        balance = crate::budgets::balance(&store).await;
    }
    assert_eq!(balance.spent, crate::budgets::ACTUAL_NANO);
    assert_eq!(balance.reserved, 0);
}

/// A streamed answer through the gateway comes back with the pseudonyms the policy put in the
/// request restored; the origin saw only pseudonyms.
#[tokio::test]
async fn streamed_answers_come_back_with_pseudonyms_restored() {
    let gw = gateway("").await;
    let content = "Write to jane.doe@example.com about the refund";
    let response = client()
        .post(gw.url("/origin/mirror-sse"))
        .header("authorization", format!("Bearer {WRITER_KEY}"))
        .json(&json!({"messages": [{"role": "user", "content": content}], "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = response.text().await.unwrap();
    let received = gw.received();
    assert!(!received.contains("jane.doe@example.com"), "{received}");
    assert!(received.contains("<EMAIL_1>"), "{received}");
    let data = streamed
        .strip_prefix("data: ")
        .and_then(|s| s.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one event: {streamed:?}"));
    let restored: Value = serde_json::from_str(data).unwrap();
    assert_eq!(restored["messages"][0]["content"], content);
}

/// With `tls_name`, the gateway serves TLS with a leaf from Gatehouse's CA for that name: a client
/// trusting the CA reaches the route by that name; plain HTTP gets no answer.
#[tokio::test]
async fn a_tls_gateway_serves_a_leaf_from_the_ca_for_its_name() {
    let name = "gateway.gatehouse.test";
    let gw = gateway_named(Some(name), "").await;
    let cert = reqwest::Certificate::from_pem(gw.proxy.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([cert])
        .resolve(name, gw.addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let response = client
        .post(format!("https://{name}:{}/origin/mirror", gw.addr.port()))
        .header("authorization", format!("Bearer {CODER_KEY}"))
        .json(&json!({"over": "tls"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["over"], "tls");
    let plain = raw(
        gw.addr,
        &format!("GET /origin/echo HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
}
