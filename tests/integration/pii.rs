//! Personal data through the proxy: rules read what was found, obligations redact the body and
//! the query before they leave, pseudonyms come back in streamed responses, and the audit trail
//! holds kinds and counts, never values.

use serde_json::{Value, json};

use crate::support::{TestPki, TestProxy, origin};

const RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: mask-contacts
    trigger: http.request
    match: { paths: ["/mirror"] }
    effect: allow
    redact: { kinds: [email, phone], style: mask }
  - id: pseudonymize-for-llm
    trigger: http.request
    match: { paths: ["/mirror-sse", "/token-sse"] }
    effect: allow
    redact: { kinds: [email, credit_card], style: pseudonymize }
  - id: no-cards-in-echo
    trigger: http.request
    match: { paths: ["/echo"] }
    when: "'credit_card' in pii.kinds"
    effect: deny
    message: card numbers may not leave
  - id: allow-echo
    trigger: http.request
    match: { paths: ["/echo"] }
    effect: allow
"#;

async fn setup() -> (TestPki, origin::Origin, TestProxy) {
    TestProxy::with_origin(RULES).await
}

#[tokio::test]
async fn masked_body_and_query_reach_the_origin_and_the_audit_holds_counts_only() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let body = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "mail jane.doe@example.com or call +44 20 7946 0958"}],
        "max_tokens": 10
    });
    let url = format!(
        "https://localhost:{}/mirror?reply_to=bob%40example.org&lang=en",
        origin.port()
    );
    let response = client.post(url).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(
        seen["messages"][0]["content"],
        "mail [EMAIL] or call [PHONE]"
    );
    assert_eq!(seen["model"], "gpt-4o");
    assert_eq!(seen["max_tokens"], 10);
    let received = origin.received.lock().unwrap().clone();
    let (target, bytes) = &received[0];
    assert_eq!(target, "/mirror?reply_to=%5BEMAIL%5D&lang=en");
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains("jane.doe") && !text.contains("7946"),
        "{text}"
    );

    let audit = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        !audit.contains("jane.doe") && !audit.contains("bob%40") && !audit.contains("7946 0958")
    );
    let record = proxy
        .decisions()
        .into_iter()
        .find(|r| r["trigger"] == "http.request")
        .unwrap();
    assert_eq!(record["pii"], json!({"email": 2, "phone": 1}));
    assert_eq!(record["obligations"], json!(["redact email,phone as mask"]));
    assert_eq!(record["rules"], json!(["mask-contacts"]));
}

#[tokio::test]
async fn pseudonyms_hide_values_from_the_origin_and_come_back_in_a_streamed_answer() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(false);
    let content = "Refund jane.doe@example.com, card 4111 1111 1111 1111, cc jane.doe@example.com";
    let body = json!({"messages": [{"role": "user", "content": content}], "stream": true});
    let url = format!("https://localhost:{}/mirror-sse", origin.port());
    let response = client
        .post(url)
        .header("accept-encoding", "gzip")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = response.text().await.unwrap();

    let received = origin.received.lock().unwrap().clone();
    let sent: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(
        sent["messages"][0]["content"],
        "Refund <EMAIL_1>, card <CARD_1>, cc <EMAIL_1>"
    );
    let data = streamed
        .strip_prefix("data: ")
        .and_then(|s| s.strip_suffix("\n\n"))
        .unwrap_or_else(|| panic!("not one event: {streamed:?}"));
    let restored: Value = serde_json::from_str(data).unwrap();
    assert_eq!(restored["messages"][0]["content"], content);
}

#[tokio::test]
async fn rules_read_the_kinds_found() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/echo", origin.port());
    let denied = client
        .post(&url)
        .json(&json!({"note": "card 5555 5555 5555 4444"}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().await.unwrap();
    assert_eq!(body["error"]["rules"], json!(["no-cards-in-echo"]));
    let allowed = client
        .post(&url)
        .json(&json!({"note": "card 5555 5555 5555 4445"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200, "a Luhn-invalid number is not a card");
}

#[tokio::test]
async fn a_body_that_cannot_be_rewritten_is_refused_rather_than_forwarded_unredacted() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/mirror", origin.port());
    let multipart = "--b\r\ncontent-disposition: form-data; name=\"note\"\r\ncontent-transfer-encoding: base64\r\n\r\nbWFpbCBqYW5lQGV4YW1wbGUuY29t\r\n--b--\r\n";
    let refused = client
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("transfer encoding"), "{message}");
    assert!(origin.received.lock().unwrap().is_empty());

    let plain = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("write to jane@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.text().await.unwrap(), "write to [EMAIL]");

    let binary = client
        .post(&url)
        .header("content-type", "application/octet-stream")
        .body(b"mail jane@example.com \xff\xfe".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(binary.status(), 403);
    let body: Value = binary.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("not valid UTF-8"), "{message}");
    assert_eq!(
        origin.received.lock().unwrap().len(),
        1,
        "only the text body arrived"
    );

    let multipart = "--b\r\ncontent-disposition: form-data; name=\"note\"\r\n\r\nmail jane@example.com\r\n--b--\r\n";
    let masked = client
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=b")
        .body(multipart)
        .send()
        .await
        .unwrap();
    assert_eq!(
        masked.status(),
        200,
        "a text part is masked where it stands"
    );
    assert_eq!(
        masked.text().await.unwrap(),
        multipart.replace("jane@example.com", "[EMAIL]")
    );
}

#[tokio::test]
async fn pseudonyms_split_across_streamed_tokens_are_restored() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let content = "Reply to jane.doe@example.com about card 4111 1111 1111 1111.";
    let body = json!({"messages": [{"role": "user", "content": content}], "stream": true});
    let url = format!("https://localhost:{}/token-sse", origin.port());
    let streamed = client
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let sent: Value = serde_json::from_slice(&origin.received.lock().unwrap()[0].1).unwrap();
    assert_eq!(
        sent["messages"][0]["content"],
        "Reply to <EMAIL_1> about card <CARD_1>."
    );
    let text: String = streamed
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|d| {
            d["choices"][0]["delta"]["content"]
                .as_str()
                .map(String::from)
        })
        .collect();
    assert_eq!(text, content, "{streamed}");
    assert!(streamed.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn json_naming_a_member_twice_is_not_forwarded_unjudged() {
    let (_pki, origin, proxy) = setup().await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/echo", origin.port());
    let twice = r#"{"note": "card 5555 5555 5555 4444", "note": "hi"}"#;
    let refused = client
        .post(&url)
        .header("content-type", "application/json")
        .body(twice)
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status(), 200);
    let text = refused.text().await.unwrap();
    assert!(text.contains("names a member twice"), "{text}");
}
