//! Response rules through the proxy: an answer is judged whole before the agent sees it, refused
//! or redacted as the rules say, and recorded; answers no response rule could judge stream as
//! they come.

use serde_json::{Value, json};

use crate::support::{TestPki, TestProxy, origin};

const RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: allow-requests
    trigger: http.request
    effect: allow
  - id: no-credentials-in-answers
    trigger: http.response
    match: { paths: ["/mirror"] }
    when: "'secret' in response.pii.kinds"
    effect: deny
    message: the answer carried a credential
  - id: mask-emails-in-answers
    trigger: http.response
    match: { paths: ["/mirror"] }
    effect: redact
    redact: { kinds: [email], style: mask }
  - id: no-emails-in-streamed-answers
    trigger: http.response
    match: { paths: ["/token-sse"] }
    when: "'email' in response.pii.kinds"
    effect: deny
    message: the answer named a person
  - id: no-forbidden-model-answers
    trigger: llm.response
    when: "response.status == 200 && response.body.json.model == 'forbidden-model'"
    effect: deny
    message: answers of this model are not accepted
"#;

async fn setup() -> (TestPki, origin::Origin, TestProxy) {
    TestProxy::with_origin(RULES).await
}

#[tokio::test]
async fn an_answer_is_redacted_or_refused_before_the_agent_sees_it() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/mirror", origin.port());

    let masked = client
        .post(&url)
        .json(&json!({"customer": "bob@example.org", "plan": "pro"}))
        .send()
        .await
        .unwrap();
    assert_eq!(masked.status(), 200);
    let length: usize = masked.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let text = masked.text().await.unwrap();
    assert_eq!(length, text.len());
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer, json!({"customer": "[EMAIL]", "plan": "pro"}));
    let received = origin.received.lock().unwrap().clone();
    assert!(
        String::from_utf8_lossy(&received[0].1).contains("bob@example.org"),
        "the request itself was not redacted"
    );

    let refused = client
        .post(&url)
        .json(&json!({"key": "AKIAZ7Q3MD4XW2PLH5RK"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["rules"], json!(["no-credentials-in-answers"]));
    assert!(!body.to_string().contains("AKIAZ7Q3MD4XW2PLH5RK"));

    let responses: Vec<Value> = proxy
        .decisions()
        .into_iter()
        .filter(|r| r["trigger"] == "http.response")
        .collect();
    assert_eq!(responses.len(), 2);
    assert_eq!(responses[0]["effect"], "allow");
    assert_eq!(responses[0]["obligations"], json!(["redact email as mask"]));
    assert_eq!(responses[1]["effect"], "deny");
    assert!(
        responses[1]["decision"]
            .as_str()
            .unwrap()
            .ends_with("-resp")
    );
}

#[tokio::test]
async fn llm_answers_are_judged_by_llm_response_rules_with_the_providers_error_shape() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/v1/chat/completions", origin.port());
    let call =
        |model: &str| json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let accepted = client
        .post(&url)
        .json(&call("gpt-4o"))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let refused = client
        .post(&url)
        .json(&call("forbidden-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["error"]["type"], "gatehouse_policy",
        "OpenAI-shaped: {body}"
    );
    assert_eq!(
        body["error"]["rules"],
        json!(["no-forbidden-model-answers"])
    );
    let triggers: Vec<String> = proxy
        .decisions()
        .iter()
        .map(|r| r["trigger"].as_str().unwrap().to_string())
        .collect();
    assert!(
        triggers.contains(&"llm.response".to_string()),
        "{triggers:?}"
    );
}

#[tokio::test]
async fn answers_no_response_rule_could_judge_still_stream() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let mut response = client
        .get(format!("https://localhost:{}/sse", origin.port()))
        .send()
        .await
        .unwrap();
    let first = tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk())
        .await
        .expect("the first event arrives while the origin holds the second")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    origin.sse_release.notify_one();
}

#[tokio::test]
async fn personal_data_split_across_streamed_tokens_is_found_in_the_answer() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/token-sse", origin.port());
    let ask =
        |content: &str| json!({"messages": [{"role": "user", "content": content}], "stream": true});
    let plain = client
        .post(&url)
        .json(&ask("all good here"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    let _ = plain.text().await.unwrap();
    let named = client
        .post(&url)
        .json(&ask("write to jane.doe@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        named.status(),
        403,
        "the address streamed in 3-character tokens is still found"
    );
    let body: Value = named.json().await.unwrap();
    assert_eq!(
        body["error"]["rules"],
        json!(["no-emails-in-streamed-answers"])
    );
}
