//! Agent identity: Basic credentials, 407 with a challenge, execution ids.

use base64::Engine;

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin};

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

async fn proxy_with_agent(pki: &TestPki) -> TestProxy {
    let token_dir = tempfile::tempdir().unwrap().keep();
    let token_file = token_dir.join("bot.token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let identity = format!(
        "identity:\n  allow_anonymous: false\n  agents:\n    - id: bot\n      team: research\n      env: prod\n      token_file: {}\n",
        token_file.display()
    );
    TestProxy::start(
        pki,
        ProxySpec {
            identity,
            ..Default::default()
        },
    )
    .await
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_407_with_a_challenge() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = proxy_with_agent(&pki).await;
    let target = format!("localhost:{}", origin.port());
    let table = [
        (None, 407, "credentials required"),
        (Some(basic("bot:wrong")), 407, "invalid proxy credentials"),
        (
            Some(basic("ghost:s3cret-token")),
            407,
            "invalid proxy credentials",
        ),
        (Some(basic("anonymous:")), 407, "invalid proxy credentials"),
        (Some("Bearer xyz".to_string()), 407, "Basic"),
        (Some(basic("bot:s3cret-token")), 200, ""),
        (Some(basic("bot+run-7:s3cret-token")), 200, ""),
    ];
    for (auth, expected, reason) in table {
        let (status, head, _) = connect_tunnel(proxy.addr, &target, auth.as_deref()).await;
        assert_eq!(status, expected, "{auth:?}: {head}");
        if expected == 407 {
            assert!(
                head.to_ascii_lowercase()
                    .contains("proxy-authenticate: basic realm=\"gatehouse\""),
                "{head}"
            );
            assert!(
                head.contains(reason),
                "{auth:?} should say {reason}: {head}"
            );
            assert!(!head.contains("s3cret"), "tokens never echo back: {head}");
        }
    }
}

#[tokio::test]
async fn credentials_work_for_plain_http_too() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = proxy_with_agent(&pki).await;
    let url = format!("http://127.0.0.1:{}/echo", origin.port());
    let anonymous = proxy.get(&url).await;
    assert_eq!(anonymous.status(), 407);
    let with_auth = reqwest::Proxy::all(proxy.url())
        .unwrap()
        .basic_auth("bot", "s3cret-token");
    let response = proxy
        .client_with(with_auth, &proxy.ca_pem, true)
        .get(&url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}
