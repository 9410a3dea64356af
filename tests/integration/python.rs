//! An unmodified Python program (requests) launched with `gatehouse exec` goes through the proxy.

use std::path::PathBuf;

use crate::support::{ProxySpec, TestPki, TestProxy, binary, origin, python};

/// Runs `script` (with `arg`) in the test venv's Python under `gatehouse exec` with `proxy`'s
/// config.
async fn python_under_exec(
    proxy: &TestProxy,
    script: &'static str,
    arg: String,
) -> std::process::Output {
    python_with_config(proxy.config_path.clone(), script, arg).await
}

/// [`python_under_exec`] with the config at `config`.
async fn python_with_config(
    config: PathBuf,
    script: &'static str,
    arg: String,
) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary())
            .args(["exec", "--config"])
            .arg(&config)
            .arg("--")
            .arg(python())
            .args(["-c", script, &arg])
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

const SCRIPT: &str = r#"
import json, os, sys
import requests
response = requests.post(sys.argv[1], json={"hello": "world"}, timeout=20)
print(json.dumps({
    "status": response.status_code,
    "seen": response.json(),
    "execution": os.environ["GATEHOUSE_EXECUTION_ID"],
    "proxy": os.environ["HTTPS_PROXY"],
}))
"#;

#[tokio::test]
async fn python_requests_under_gatehouse_exec_is_intercepted() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let url = format!("https://localhost:{}/echo", origin.port());
    let output = python_under_exec(&proxy, SCRIPT, url).await;
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], 200);
    assert_eq!(report["seen"]["method"], "POST");
    assert!(
        report["seen"]["headers"]
            .get("proxy-authorization")
            .is_none()
    );
    let execution = report["execution"].as_str().unwrap();
    assert!(execution.starts_with("exec-"));
    let proxy_url = report["proxy"].as_str().unwrap();
    assert_eq!(
        proxy_url,
        format!("http://anonymous+{execution}:@{}", proxy.addr)
    );
}

const SDK_SCRIPT: &str = r#"
import json, sys
import anthropic, openai
base = sys.argv[1]
report = {}
client = openai.OpenAI(base_url=base + "/v1", api_key="sk-test-not-a-key", max_retries=0)
try:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    report["openai"] = "no error raised"
except openai.PermissionDeniedError as e:
    report["openai"] = {
        "status": e.status_code,
        "message": str(e),
        "code": getattr(e, "code", None),
        "decision": e.response.headers.get("x-gatehouse-decision"),
    }
claude = anthropic.Anthropic(base_url=base, api_key="sk-ant-test-not-a-key", max_retries=0)
try:
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=10,
                           messages=[{"role": "user", "content": "hi"}])
    report["anthropic"] = "no error raised"
except anthropic.PermissionDeniedError as e:
    report["anthropic"] = {
        "status": e.status_code,
        "message": str(e),
        "type": e.body.get("type") if isinstance(e.body, dict) else None,
        "decision": e.response.headers.get("x-gatehouse-decision"),
    }
print(json.dumps(report))
"#;

/// The official OpenAI and Anthropic Python SDKs, unmodified under `gatehouse exec`, raise their own
/// permission errors for a refused call, with the rule and the decision in them.
#[tokio::test]
async fn official_sdks_raise_readable_errors_for_refused_calls() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let policy = "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: no-llm-in-tests\n    trigger: llm.request\n    effect: deny\n    message: LLM calls are switched off here\n";
    let proxy = TestProxy::with_policy(&pki, policy).await;
    let base = format!("https://localhost:{}", origin.port());
    let output = python_under_exec(&proxy, SDK_SCRIPT, base).await;
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for sdk in ["openai", "anthropic"] {
        let error = &report[sdk];
        assert_eq!(error["status"], 403, "{sdk}: {report}");
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("no-llm-in-tests")
                && message.contains("LLM calls are switched off here"),
            "{sdk}: {message}"
        );
        let decision = error["decision"].as_str().unwrap();
        assert!(
            message.contains(decision),
            "{sdk}: decision id in the message: {message}"
        );
    }
    assert_eq!(report["anthropic"]["type"], "error");
    assert!(origin.received.lock().unwrap().is_empty());
}

const HELD_SCRIPT: &str = r#"
import json, sys
import openai
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-test-not-a-key", max_retries=4)
raw = client.chat.completions.with_raw_response.create(
    model="gpt-4o", messages=[{"role": "user", "content": "refund order 7"}])
print(json.dumps({"status": raw.status_code, "retries": raw.retries_taken}))
"#;

/// The unmodified OpenAI SDK retries a held call's 408 on its own; each retry waits on the same
/// approval, and once a person approves, the call completes.
#[tokio::test]
async fn the_openai_sdk_retries_a_held_call_until_it_is_approved() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        policy: "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: llm-needs-a-person\n    trigger: llm.request\n    effect: hold\n".into(),
        extra: "approvals:\n  wait: 500ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let base = format!("https://localhost:{}", origin.port());
    let admin = proxy.admin_url();
    let python = tokio::spawn(python_with_config(
        proxy.config_path.clone(),
        HELD_SCRIPT,
        base,
    ));
    let http = proxy.admin_client();
    let id = loop {
        let list: serde_json::Value = http
            .get(format!("{admin}/api/approvals"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(id) = list["approvals"][0]["id"].as_str() {
            break id.to_string();
        }
        assert!(!python.is_finished(), "the SDK gave up before a decision");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    // Let the first attempt time out so the SDK's own retry is what completes.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let approved = http
        .post(format!("{admin}/api/approvals/{id}/approve"))
        .json(&serde_json::json!({"reviewer": "dana"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    let output = python.await.unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["status"], 200, "{report}");
    assert!(report["retries"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(origin.received.lock().unwrap().len(), 1, "forwarded once");
}

const UPLOAD_SCRIPT: &str = r#"
import io, json, sys
import openai
client = openai.OpenAI(base_url=sys.argv[1] + "/v1", api_key="sk-test-not-a-key", max_retries=0)
report = []
for content in ["mail jane@example.com", "hello"]:
    line = json.dumps({"messages": [{"role": "user", "content": content}]}) + "\n"
    try:
        client.files.create(file=("train.jsonl", io.BytesIO(line.encode())), purpose="fine-tune")
        report.append({"status": 200})
    except openai.APIStatusError as e:
        report.append({"status": e.status_code, "message": str(e)})
print(json.dumps(report))
"#;

/// The OpenAI SDK uploads a fine-tuning file as an `application/octet-stream` part: it is read as
/// text, so personal data in it is found.
#[tokio::test]
async fn a_file_the_openai_sdk_uploads_is_scanned() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let policy = "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: no-personal-data\n    trigger: http.request\n    when: \"pii.total > 0\"\n    effect: deny\n  - id: requests\n    trigger: http.request\n    effect: allow\n";
    let proxy = TestProxy::with_policy(&pki, policy).await;
    let base = format!("https://localhost:{}", origin.port());
    let output = python_under_exec(&proxy, UPLOAD_SCRIPT, base).await;
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report[0]["status"], 403, "{report}");
    assert!(
        report[0]["message"]
            .as_str()
            .unwrap()
            .contains("no-personal-data")
    );
    assert_eq!(report[1]["status"], 200, "{report}");
}
