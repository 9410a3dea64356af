//! Policy through the proxy: the same agent is allowed, denied and held by different rules; deny
//! by default; host-level rules refuse tunnels and plain HTTP alike.

use serde_json::Value;

use crate::support::{ProxySpec, TestPki, TestProxy, binary, connect_tunnel, origin};

const RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: allow-echo
    trigger: http.request
    match: { paths: ["/echo", "/echo/**"] }
    effect: allow
  - id: deny-admin
    trigger: http.request
    match: { paths: ["/echo/admin/**"] }
    effect: deny
    message: admin endpoints are off limits
  - id: hold-big-payments
    trigger: http.request
    match: { methods: [POST], paths: ["/echo/payments"] }
    when: "int(request.headers['x-amount']) > 1000"
    effect: hold
    message: payments over 1000 need a human
"#;

#[tokio::test]
async fn one_agent_allowed_denied_and_held_by_different_rules() {
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
    let client = proxy.client(true);
    let url = |path: &str| format!("https://localhost:{}{path}", origin.port());

    let allowed = client.get(url("/echo")).send().await.unwrap();
    assert_eq!(allowed.status(), 200);

    let denied = client.get(url("/echo/admin/users")).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    let decision = denied.headers()["x-gatehouse-decision"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"]["rules"], serde_json::json!(["deny-admin"]));
    assert_eq!(body["error"]["decision"], decision);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("deny-admin") && message.contains("admin endpoints are off limits"),
        "{message}"
    );

    let held = client
        .post(url("/echo/payments"))
        .header("x-amount", "5000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        held.status(),
        408,
        "held for a person, who does not decide in time"
    );
    assert!(held.headers().contains_key("x-gatehouse-approval"));
    let held: Value = held.json().await.unwrap();
    let message = held["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("hold-big-payments") && message.contains("human approval"),
        "{message}"
    );

    let small = client
        .post(url("/echo/payments"))
        .header("x-amount", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(
        small.status(),
        200,
        "below the threshold only the allow applies"
    );

    let unlisted = client.get(url("/elsewhere")).send().await.unwrap();
    assert_eq!(unlisted.status(), 403);
    let unlisted: Value = unlisted.json().await.unwrap();
    assert!(
        unlisted["error"]["message"]
            .as_str()
            .unwrap()
            .contains("denied by default")
    );
    assert_eq!(unlisted["error"]["rules"], serde_json::json!([]));

    // Every decision is in the audit trail, and the chain verifies.
    let audit = proxy.dir.path().join("audit.jsonl");
    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["trigger"] == "http.request")
        .collect();
    assert_eq!(requests.len(), 5, "{text}");
    let effects: Vec<&str> = requests
        .iter()
        .map(|r| r["effect"].as_str().unwrap())
        .collect();
    assert_eq!(effects, ["allow", "deny", "hold", "allow", "deny"]);
    let denied = requests
        .iter()
        .find(|r| r["decision"] == decision.as_str())
        .expect("the refused decision is recorded");
    assert_eq!(denied["rules"], serde_json::json!(["deny-admin"]));
    assert_eq!(denied["agent"], "anonymous");
    assert!(
        records
            .iter()
            .any(|r| r["trigger"] == "connect" && r["rules"] == serde_json::json!(["connect-all"]))
    );
    assert!(
        !text.contains("x-amount"),
        "header values never reach the audit trail"
    );
    // Each request's outcome follows its decisions: what the agent got and what the upstream said.
    let outcomes: Vec<&Value> = records
        .iter()
        .filter(|r| r["record"] == "outcome")
        .collect();
    assert_eq!(outcomes.len(), 5, "{text}");
    let refused = outcomes
        .iter()
        .find(|r| r["request"] == denied["request"])
        .unwrap();
    assert_eq!(
        (
            refused["status"].as_u64(),
            refused["upstream_status"].is_null()
        ),
        (Some(403), true)
    );
    assert!(
        outcomes
            .iter()
            .any(|r| r["upstream_status"] == 200 && r["outcome"] == "forwarded")
    );
    let verify = std::process::Command::new(binary())
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(String::from_utf8_lossy(&verify.stdout).contains("chain intact"));

    // The index answers queries: the proxy feeds it as it writes, and the query catches it up.
    let query = std::process::Command::new(binary())
        .args(["audit", "query", "--config"])
        .arg(&proxy.config_path)
        .args(["--trigger", "http.request", "--effect", "deny"])
        .output()
        .unwrap();
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    let found: Vec<Value> = String::from_utf8_lossy(&query.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[1]["decision"], decision.as_str(), "newest first");
    let by_rule = std::process::Command::new(binary())
        .args(["audit", "query", "--config"])
        .arg(&proxy.config_path)
        .args(["--rule", "hold-big-payments"])
        .output()
        .unwrap();
    let held = String::from_utf8_lossy(&by_rule.stdout);
    assert_eq!(held.lines().count(), 1, "{held}");
    assert!(proxy.dir.path().join("audit.sqlite").is_file());

    let mut kept: Vec<&str> = text.lines().collect();
    kept.remove(2);
    let tampered = proxy.dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, kept.join("\n") + "\n").unwrap();
    let verify = std::process::Command::new(binary())
        .args(["audit", "verify"])
        .arg(&tampered)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("line 3: does not chain"), "{said}");
}

#[tokio::test]
async fn host_level_rules_refuse_tunnels_and_plain_http() {
    let pki = TestPki::new();
    let tls_origin = origin::start_tls(&pki).await;
    let plain_origin = origin::start_plain().await;
    let policy = "rules:\n  - id: only-127\n    trigger: connect\n    match: { hosts: ['127.0.0.1'] }\n    effect: allow\n  - id: requests\n    trigger: http.request\n    effect: allow\n";
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: policy.into(),
            ..Default::default()
        },
    )
    .await;

    let (status, head, _) = connect_tunnel(
        proxy.addr,
        &format!("localhost:{}", tls_origin.port()),
        None,
    )
    .await;
    assert_eq!(status, 403, "{head}");
    assert!(
        head.contains("denied by default: no rule allows this connect request"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("x-gatehouse-decision"),
        "{head}"
    );

    let (status, head, _) = connect_tunnel(
        proxy.addr,
        &format!("127.0.0.1:{}", tls_origin.port()),
        None,
    )
    .await;
    assert_eq!(status, 200, "{head}");

    let plain = proxy
        .get(format!("http://localhost:{}/echo", plain_origin.port()))
        .await;
    assert_eq!(
        plain.status(),
        403,
        "host-level rules apply to plain HTTP too"
    );
    let plain_ok = proxy
        .get(format!("http://127.0.0.1:{}/echo", plain_origin.port()))
        .await;
    assert_eq!(plain_ok.status(), 200);
}

#[test]
fn an_invalid_policy_stops_the_proxy_with_file_line_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("bad.yaml"),
        "rules:\n  - id: typo\n    trigger: http.request\n    effect: allow\n    when: \"reqest.host == 'x'\"\n",
    )
    .unwrap();
    let config = dir.path().join("g.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\npolicies:\n  dir: {}\n",
            policies.display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yaml:5: rule `typo`: when: unknown variable `reqest`"),
        "{stderr}"
    );
}

#[test]
fn check_validates_config_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("ok.yaml"), RULES).unwrap();
    let config = dir.path().join("g.yaml");
    std::fs::write(
        &config,
        format!("policies:\n  dir: {}\n", policies.display()),
    )
    .unwrap();
    let ok = std::process::Command::new(binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        String::from_utf8_lossy(&ok.stdout).contains("ok (4 rules"),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    std::fs::write(
        policies.join("zz-dup.yaml"),
        "rules:\n  - id: deny-admin\n    trigger: connect\n    effect: deny\n",
    )
    .unwrap();
    let dup = std::process::Command::new(binary())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(dup.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&dup.stderr);
    assert!(
        stderr.contains("rule id `deny-admin` is used twice") && stderr.contains("zz-dup.yaml:2"),
        "{stderr}"
    );
}

#[tokio::test]
async fn policy_changes_are_validated_then_swapped_in_while_running() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let url = format!("http://127.0.0.1:{}/echo", origin.port());
    let policy_file = proxy.dir.path().join("policies/test.yaml");
    assert_eq!(proxy.get(&url).await.status(), 200);

    let until = |want: u16| {
        let url = url.clone();
        let proxy = &proxy;
        async move {
            for _ in 0..100 {
                if proxy.get(&url).await.status().as_u16() == want {
                    return true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            false
        }
    };
    std::fs::write(
        &policy_file,
        "rules:\n  - id: connect\n    trigger: connect\n    effect: allow\n",
    )
    .unwrap();
    assert!(
        until(403).await,
        "the stricter policy is put in force without a restart"
    );

    std::fs::write(
        &policy_file,
        "rules:\n  - id: broken\n    trigger: http.request\n    effect: permit\n",
    )
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let still = proxy.get(&url).await;
    assert_eq!(
        still.status(),
        403,
        "an invalid change keeps the running policies"
    );
    let body: Value = still.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("denied by default")
    );

    std::fs::write(&policy_file, crate::support::ALLOW_ALL).unwrap();
    assert!(
        until(200).await,
        "a valid change after an invalid one is put in force"
    );

    let audit = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    let versions: std::collections::BTreeSet<String> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["record"] != "outcome")
        .map(|r| r["policy_version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        versions.len(),
        2,
        "decisions name the policy version that made them: {versions:?}"
    );
}

#[tokio::test]
async fn a_host_the_rules_refuse_is_not_looked_up_unless_a_rule_reads_the_destination() {
    let pki = TestPki::new();
    let quiet = "rules:\n  - id: only-127\n    trigger: connect\n    match: { hosts: ['127.0.0.1'] }\n    effect: allow\n";
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: quiet.into(),
            ..Default::default()
        },
    )
    .await;
    let (status, head, _) = connect_tunnel(proxy.addr, "no-such-host.invalid:443", None).await;
    assert_eq!(
        status, 403,
        "refused by policy before any DNS lookup: {head}"
    );
    assert!(head.contains("denied by default"), "{head}");

    let reads = "rules:\n  - id: private-only\n    trigger: connect\n    when: \"destination.private\"\n    effect: allow\n";
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: reads.into(),
            ..Default::default()
        },
    )
    .await;
    let (status, head, _) = connect_tunnel(proxy.addr, "no-such-host.invalid:443", None).await;
    assert_eq!(
        status, 502,
        "a rule that reads the destination needs it resolved first: {head}"
    );
    assert!(head.contains("cannot resolve"), "{head}");
}
