//! Held requests through real proxies: approved, denied, timed out and retried, across a restart,
//! across two proxies sharing PostgreSQL; notifications; the admin API's token.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ProxySpec, TestPki, TestProxy, origin::Origin};

/// Connects anywhere, holds POSTs to `/mirror`, allows the rest.
pub const POLICY: &str = "rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: everything-else
    trigger: http.request
    effect: allow
  - id: refunds-need-a-person
    trigger: http.request
    when: request.path == '/mirror'
    effect: hold
    message: refunds wait for a person
";

const TOKEN: &str = "admin-token-for-tests";

struct Held {
    _pki: TestPki,
    origin: Origin,
    proxy: TestProxy,
    _state: tempfile::TempDir,
}

/// A proxy with `approvals` (YAML under `approvals:`), its store at `store` (a file in a new
/// folder when `None`), and the admin token in a file.
async fn held_proxy(approvals: &str, store: Option<&str>, pki: TestPki) -> Held {
    let origin = crate::support::origin::start_tls(&pki).await;
    let state = tempfile::tempdir().unwrap();
    let token = state.path().join("admin.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let store = store.map_or_else(
        || state.path().join("store.sqlite").display().to_string(),
        str::to_string,
    );
    let spec = ProxySpec {
        policy: POLICY.into(),
        extra: format!(
            "budget:\n  store: {store}\nadmin:\n  listen: 127.0.0.1:0\n  token_file: {}\napprovals:\n{approvals}",
            token.display()
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    Held {
        _pki: pki,
        origin,
        proxy,
        _state: state,
    }
}

fn refund() -> Value {
    json!({"order": 7, "amount": 1200, "customer": "jane.doe@example.com"})
}

async fn send(held: &Held, body: &Value) -> reqwest::Response {
    held.proxy
        .client(true)
        .post(format!("https://localhost:{}/mirror", held.origin.port()))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn admin(token: Option<&str>) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// The pending approvals the admin API of `proxy` lists.
async fn pending(proxy: &TestProxy) -> Vec<Value> {
    let list: Value = admin(Some(TOKEN))
        .get(format!("{}/api/approvals", proxy.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["approvals"].as_array().unwrap().clone()
}

/// Waits until `proxy` lists one pending approval; its id.
async fn one_pending(proxy: &TestProxy) -> String {
    for _ in 0..200 {
        let list = pending(proxy).await;
        if let [one] = list.as_slice() {
            return one["id"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no pending approval appeared");
}

async fn decide(proxy: &TestProxy, id: &str, verb: &str, reason: &str) -> reqwest::Response {
    admin(Some(TOKEN))
        .post(format!("{}/api/approvals/{id}/{verb}", proxy.admin_url()))
        .json(&json!({"reviewer": "alice", "reason": reason}))
        .send()
        .await
        .unwrap()
}

fn outcome_of(proxy: &TestProxy) -> Vec<Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["record"] == "outcome" && r.get("approval").is_some())
        .collect()
}

#[tokio::test]
async fn a_held_request_completes_upstream_once_approved() {
    let held = held_proxy("  wait: 20s\n", None, TestPki::new()).await;
    let agent = tokio::spawn({
        let client = held.proxy.client(true);
        let url = format!("https://localhost:{}/mirror", held.origin.port());
        async move { client.post(url).json(&refund()).send().await.unwrap() }
    });
    let id = one_pending(&held.proxy).await;
    assert!(
        held.origin.received.lock().unwrap().is_empty(),
        "nothing left before approval"
    );
    let listed = pending(&held.proxy).await;
    let summary = &listed[0]["summary"];
    assert_eq!(summary["method"], "POST");
    assert!(
        summary["url"].as_str().unwrap().ends_with("/mirror"),
        "{summary}"
    );
    assert_eq!(summary["rules"], json!(["refunds-need-a-person"]));
    let preview = summary["preview"].as_str().unwrap();
    assert!(
        preview.contains("[EMAIL]") && !preview.contains("jane.doe"),
        "{preview}"
    );

    let approved = decide(&held.proxy, &id, "approve", "checked the order").await;
    assert_eq!(approved.status(), 200);
    let response = agent.await.unwrap();
    assert_eq!(response.status(), 200);
    let echoed: Value = response.json().await.unwrap();
    assert_eq!(echoed["order"], 7, "the upstream answer reached the agent");
    assert_eq!(held.origin.received.lock().unwrap().len(), 1);

    let again = decide(&held.proxy, &id, "deny", "too late").await;
    assert_eq!(again.status(), 409, "decided once");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let records = outcome_of(&held.proxy);
    let approval = &records[0]["approval"];
    assert_eq!(approval["id"], id.as_str());
    assert_eq!(approval["decision"], "approved");
    assert_eq!(approval["reviewer"], "alice");
    assert_eq!(approval["reason"], "checked the order");
}

#[tokio::test]
async fn a_denied_request_gets_403_with_the_reviewers_reason() {
    let held = held_proxy("  wait: 20s\n", None, TestPki::new()).await;
    let agent = tokio::spawn({
        let client = held.proxy.client(true);
        let url = format!("https://localhost:{}/mirror", held.origin.port());
        async move { client.post(url).json(&refund()).send().await.unwrap() }
    });
    let id = one_pending(&held.proxy).await;
    let no_reason = decide(&held.proxy, &id, "deny", "").await;
    assert_eq!(no_reason.status(), 400, "a denial needs a reason");
    assert_eq!(
        decide(&held.proxy, &id, "deny", "refund already paid")
            .await
            .status(),
        200
    );
    let response = agent.await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.headers()["x-gatehouse-approval"], id.as_str());
    let text = response.text().await.unwrap();
    assert!(
        text.contains("denied by alice: refund already paid"),
        "{text}"
    );
    assert!(held.origin.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_timed_out_request_gets_408_and_its_retry_waits_on_the_same_approval() {
    let held = held_proxy("  wait: 300ms\n", None, TestPki::new()).await;
    let first = send(&held, &refund()).await;
    assert_eq!(first.status(), 408);
    assert_eq!(first.headers()["retry-after"], "2");
    let id = first.headers()["x-gatehouse-approval"]
        .to_str()
        .unwrap()
        .to_string();
    let text = first.text().await.unwrap();
    assert!(text.contains(&id) && text.contains("pending"), "{text}");

    let retry = send(&held, &refund()).await;
    assert_eq!(retry.status(), 408);
    assert_eq!(
        retry.headers()["x-gatehouse-approval"],
        id.as_str(),
        "re-attached"
    );
    assert_eq!(pending(&held.proxy).await.len(), 1, "no second approval");
    let other = send(&held, &json!({"order": 8})).await;
    assert_ne!(
        other.headers()["x-gatehouse-approval"],
        id.as_str(),
        "another request is another approval"
    );

    assert_eq!(decide(&held.proxy, &id, "approve", "").await.status(), 200);
    let approved = send(&held, &refund()).await;
    assert_eq!(approved.status(), 200);
    let used = send(&held, &refund()).await;
    assert_eq!(
        used.status(),
        408,
        "an approval is used once: the same request again waits on a new one"
    );
    assert_ne!(used.headers()["x-gatehouse-approval"], id.as_str());
    assert_eq!(held.origin.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_pending_approval_survives_a_restart_and_the_retry_finds_its_decision() {
    let mut held = held_proxy("  wait: 300ms\n", None, TestPki::new()).await;
    let first = send(&held, &refund()).await;
    assert_eq!(first.status(), 408);
    let id = first.headers()["x-gatehouse-approval"]
        .to_str()
        .unwrap()
        .to_string();
    let store = held
        ._state
        .path()
        .join("store.sqlite")
        .display()
        .to_string();
    held.proxy.gatehouse.take().unwrap().shutdown().await;

    // The same store, a new process.
    let spec = ProxySpec {
        policy: POLICY.into(),
        extra: format!(
            "budget:\n  store: {store}\nadmin:\n  listen: 127.0.0.1:0\n  token_file: {}\napprovals:\n  wait: 300ms\n",
            held._state.path().join("admin.token").display()
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&held._pki, spec).await;
    let listed = pending(&proxy).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(decide(&proxy, &id, "approve", "").await.status(), 200);
    let retry = proxy
        .client(true)
        .post(format!("https://localhost:{}/mirror", held.origin.port()))
        .json(&refund())
        .send()
        .await
        .unwrap();
    assert_eq!(
        retry.status(),
        200,
        "the retry found its approval after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_held_by_one_proxy_is_approved_through_another() {
    let store = crate::support::fresh_postgres().await;
    // Proxy A polls its approval only every 30 s: only a notification can wake it sooner.
    let a = held_proxy(
        "  wait: 20s\n  poll_interval: 30s\n",
        Some(&store),
        TestPki::new(),
    )
    .await;
    let b = held_proxy("  wait: 20s\n", Some(&store), TestPki::new()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let agent = tokio::spawn({
        let client = a.proxy.client(true);
        let url = format!("https://localhost:{}/mirror", a.origin.port());
        async move { client.post(url).json(&refund()).send().await.unwrap() }
    });
    let id = one_pending(&b.proxy).await;
    let started = Instant::now();
    assert_eq!(
        decide(&b.proxy, &id, "approve", "ok from B").await.status(),
        200
    );
    let response = agent.await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the notification, not the 30 s poll: {:?}",
        started.elapsed()
    );
    assert_eq!(a.origin.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_announces_held_requests() {
    let hooks = crate::support::origin::start_plain().await;
    let approvals = format!(
        "  wait: 200ms\n  dashboard_url: http://127.0.0.1:8081/\n  webhooks:\n    - {{ url: 'http://127.0.0.1:{0}/mirror', format: json }}\n    - {{ url: 'http://127.0.0.1:{0}/mirror-sse', format: slack }}\n",
        hooks.port()
    );
    let held = held_proxy(&approvals, None, TestPki::new()).await;
    let base = held.proxy.admin_url();
    for path in ["/api/approvals", "/api/spend", "/metrics", "/api/decisions"] {
        let anonymous = admin(None)
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let wrong = admin(Some("admin-token-for-test"))
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let right = admin(Some(TOKEN))
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(right.status(), 200, "{path}");
    }
    for open in ["/healthz", "/readyz", "/"] {
        assert_eq!(
            admin(None)
                .get(format!("{base}{open}"))
                .send()
                .await
                .unwrap()
                .status(),
            200,
            "{open}"
        );
    }

    let first = send(&held, &refund()).await;
    assert_eq!(first.status(), 408);
    let id = first.headers()["x-gatehouse-approval"]
        .to_str()
        .unwrap()
        .to_string();
    let mut hooks_seen = Vec::new();
    for _ in 0..100 {
        hooks_seen = hooks.received.lock().unwrap().clone();
        if hooks_seen.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let generic = hooks_seen
        .iter()
        .find(|(p, _)| p == "/mirror")
        .expect("JSON webhook");
    let generic: Value = serde_json::from_slice(&generic.1).unwrap();
    assert_eq!(generic["event"], "approval.pending");
    assert_eq!(generic["approval"], id.as_str());
    assert_eq!(
        generic["dashboard"],
        format!("http://127.0.0.1:8081/#approval={id}")
    );
    assert!(!generic.to_string().contains("jane.doe"), "{generic}");
    let slack = hooks_seen
        .iter()
        .find(|(p, _)| p == "/mirror-sse")
        .expect("Slack webhook");
    let slack: Value = serde_json::from_slice(&slack.1).unwrap();
    assert!(slack["text"].as_str().unwrap().contains(&id), "{slack}");

    let metrics = admin(Some(TOKEN))
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"gatehouse_decisions_total{trigger="http.request",effect="hold",rule="refunds-need-a-person"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gatehouse_pii_findings_total{kind="email"} 1"#),
        "{metrics}"
    );
    let decisions: Value = admin(Some(TOKEN))
        .get(format!("{base}/api/decisions?effect=hold"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        decisions["decisions"].as_array().unwrap().len(),
        1,
        "{decisions}"
    );
}

#[tokio::test]
async fn approvals_are_listed_and_decided_from_the_terminal() {
    let held = held_proxy(
        "  wait: 200ms\n  poll_interval: 50ms\n",
        None,
        TestPki::new(),
    )
    .await;
    let first = send(&held, &refund()).await;
    assert_eq!(first.status(), 408);
    let id = first.headers()["x-gatehouse-approval"]
        .to_str()
        .unwrap()
        .to_string();
    let cli = |args: &[&str]| {
        std::process::Command::new(crate::support::binary())
            .args(args)
            .arg("--config")
            .arg(&held.proxy.config_path)
            .output()
            .unwrap()
    };
    let listed = cli(&["approvals", "list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["id"], id.as_str());
    assert_eq!(line["summary"]["method"], "POST");
    assert!(!text.contains("jane.doe"), "{text}");

    let no_reason = cli(&[
        "approvals",
        "deny",
        &id,
        "--reviewer",
        "bob",
        "--reason",
        " ",
    ]);
    assert!(!no_reason.status.success());
    let approved = cli(&["approvals", "approve", &id, "--reviewer", "bob"]);
    assert_eq!(
        String::from_utf8_lossy(&approved.stdout).trim(),
        format!("{id} approved")
    );
    let twice = cli(&["approvals", "approve", &id, "--reviewer", "bob"]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("is approved"));
    assert_eq!(send(&held, &refund()).await.status(), 200);
}
