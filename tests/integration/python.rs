//! An unmodified Python program (requests) launched with `gatehouse exec` goes through the proxy.

use std::path::PathBuf;

use crate::support::{ProxySpec, TestPki, TestProxy, binary, origin};

/// The venv `scripts/test` creates; `GATEHOUSE_TEST_PYTHON` may name another interpreter.
fn python() -> PathBuf {
    if let Ok(python) = std::env::var("GATEHOUSE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test, which creates it",
        venv.display()
    );
    venv
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
    let config = proxy.config_path.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(binary())
            .args(["exec", "--config"])
            .arg(&config)
            .arg("--")
            .arg(python())
            .args(["-c", SCRIPT, &url])
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
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
