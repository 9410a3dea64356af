//! `gatehouse test` and `gatehouse explain` on real files.

use std::process::Command;

use crate::support::binary;

const POLICY: &str = "rules:
  - id: stripe-allow
    trigger: http.request
    match: { hosts: [api.stripe.com] }
    effect: allow
  - id: refunds-hold
    scope: { teams: [support] }
    trigger: http.request
    match: { hosts: [api.stripe.com], methods: [POST], paths: ['/v1/refunds'] }
    when: \"int(request.headers['x-amount']) > 1000\"
    effect: hold
    redact: { kinds: [email] }
";

fn setup(tests: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("stripe.yaml"), POLICY).unwrap();
    std::fs::write(policies.join("stripe.test.yaml"), tests).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "t").unwrap();
    let config = dir.path().join("g.yaml");
    std::fs::write(
        &config,
        format!(
            "policies:\n  dir: {}\nidentity:\n  agents:\n    - id: helpdesk\n      team: support\n      token_file: {}\n",
            policies.display(),
            token.display()
        ),
    )
    .unwrap();
    (dir, config)
}

/// Runs `gatehouse test` with the shipped config over `paths`; its output, having passed.
fn shipped_tests_pass(paths: &[&str]) -> String {
    let output = Command::new(binary())
        .args(["test", "--config", "config/gatehouse.yaml"])
        .args(paths)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(" passed, 0 failed") && !stdout.contains("FAIL"),
        "{stdout}"
    );
    stdout
}

#[test]
fn shipped_policy_tests_pass() {
    shipped_tests_pass(&[]);
}

#[test]
fn template_policy_tests_pass() {
    let stdout = shipped_tests_pass(&["config/templates/tests"]);
    for template in [
        "gdpr.test.yaml",
        "gdpr_redact.test.yaml",
        "soc2.test.yaml",
        "eu_ai_act.test.yaml",
    ] {
        assert!(stdout.contains(template), "{template} ran: {stdout}");
    }
    assert!(
        stdout.contains(" passed, 0 failed") && !stdout.contains("FAIL"),
        "{stdout}"
    );
}

#[test]
fn a_folder_is_searched_for_policy_tests_in_its_subfolders_too() {
    let stdout = shipped_tests_pass(&["config/templates"]);
    for template in ["gdpr.test.yaml", "soc2.test.yaml", "eu_ai_act.test.yaml"] {
        assert!(
            stdout.contains(&format!("config/templates/tests/{template}")),
            "{template} found under config/templates: {stdout}"
        );
    }
}

#[test]
fn policy_tests_report_each_case_and_fail_the_run() {
    let tests = "tests:
  - name: a declared agent's team comes from the config
    agent: helpdesk
    method: POST
    url: https://api.stripe.com/v1/refunds
    headers: { x-amount: '5000' }
    expect: { effect: hold, rules: [refunds-hold], redact: [email] }
  - name: small refunds pass
    agent: helpdesk
    method: POST
    url: https://api.stripe.com/v1/refunds
    headers: { x-amount: '5' }
    expect: { effect: allow, rules: [stripe-allow] }
  - name: a wrong expectation fails
    url: https://api.stripe.com/v1/charges
    expect: { effect: deny }
";
    let (_dir, config) = setup(tests);
    let output = Command::new(binary())
        .args(["test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("PASS a declared agent's team comes from the config"),
        "{stdout}"
    );
    assert!(stdout.contains("PASS small refunds pass"), "{stdout}");
    assert!(
        stdout.contains("FAIL a wrong expectation fails (")
            && stdout.contains("stripe.test.yaml:14)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("effect: expected deny, got allow"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("2 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn explain_shows_every_rule_and_the_verdict() {
    let (_dir, config) = setup("tests: []\n");
    let output = Command::new(binary())
        .args(["explain", "--config"])
        .arg(&config)
        .args([
            "--url",
            "https://api.stripe.com/v1/refunds",
            "-X",
            "POST",
            "--agent",
            "helpdesk",
            "-H",
            "x-amount: 50000",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("as agent `helpdesk` (team support"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stripe-allow") && stdout.contains("refunds-hold"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verdict: hold (decided by refunds-hold)"),
        "{stdout}"
    );

    let anonymous = Command::new(binary())
        .args(["explain", "--config"])
        .arg(&config)
        .args([
            "--url",
            "https://api.stripe.com/v1/refunds",
            "-X",
            "POST",
            "-H",
            "x-amount: 50000",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&anonymous.stdout);
    assert!(
        stdout.contains("skipped: agent outside the rule's scope"),
        "{stdout}"
    );
    assert!(stdout.contains("verdict: allow"), "{stdout}");
}

#[test]
fn policy_tests_and_explain_recognise_bodies_like_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("llm.yaml"),
        "rules:
  - id: openai
    trigger: http.request
    match: { hosts: [api.openai.com] }
    effect: allow
  - id: no-gpt-4o
    trigger: llm.request
    when: \"llm.model == 'gpt-4o'\"
    effect: deny
",
    )
    .unwrap();
    std::fs::write(
        policies.join("llm.test.yaml"),
        "tests:
  - name: gpt-4o is refused
    method: POST
    url: https://api.openai.com/v1/chat/completions
    json: { model: gpt-4o, messages: [{ role: user, content: hi }] }
    expect: { effect: deny, rules: [no-gpt-4o] }
  - name: gpt-4o-mini is allowed
    method: POST
    url: https://api.openai.com/v1/chat/completions
    json: { model: gpt-4o-mini, messages: [] }
    expect: { effect: allow, rules: [openai] }
",
    )
    .unwrap();
    let config = dir.path().join("g.yaml");
    std::fs::write(
        &config,
        format!("policies:\n  dir: {}\n", policies.display()),
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["test", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");

    let explain = Command::new(binary())
        .args(["explain", "--config"])
        .arg(&config)
        .args([
            "--url",
            "https://api.openai.com/v1/chat/completions",
            "-X",
            "POST",
        ])
        .args([
            "-H",
            "content-type: application/json",
            "-d",
            r#"{"model":"gpt-4o","messages":[]}"#,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&explain.stdout);
    assert!(stdout.starts_with("llm.request POST"), "{stdout}");
    assert!(
        stdout.contains("verdict: deny (decided by no-gpt-4o)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn replay_reports_what_other_policies_would_change() {
    use crate::support::{ProxySpec, TestPki, TestProxy, origin};

    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let url = format!("http://127.0.0.1:{}/echo", origin.port());
    assert_eq!(proxy.get(&url).await.status(), 200);
    assert_eq!(
        proxy
            .client(true)
            .post(&url)
            .body("x")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(proxy.get(&url).await.status(), 200);

    let stricter = proxy.dir.path().join("stricter");
    std::fs::create_dir_all(&stricter).unwrap();
    std::fs::write(
        stricter.join("p.yaml"),
        "rules:\n  - id: connect\n    trigger: connect\n    effect: allow\n  - id: reads-only\n    trigger: http.request\n    match: { methods: [GET] }\n    effect: allow\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["replay", "--audit"])
        .arg(proxy.dir.path().join("audit.jsonl"))
        .arg("--policies")
        .arg(&stricter)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("6 decisions replayed") && stdout.contains("5 unchanged, 1 would change"),
        "{stdout}"
    );
    assert!(stdout.contains("allow → deny: 1"), "{stdout}");
    assert!(
        stdout
            .contains("http.request POST 127.0.0.1/* as `anonymous`: allow → deny (default deny)"),
        "{stdout}"
    );
}
