//! WebSocket upgrades through the intercepting proxy: refused unless a rule allows them; once
//! allowed, every text message is judged on its way, and a refused one closes the socket.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{ALLOW_WEBSOCKETS, ProxySpec, TestPki, TestProxy, origin};

fn allowing(policy: &str) -> ProxySpec {
    ProxySpec {
        policy: policy.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn websocket_echo_through_an_intercepted_tunnel() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, allowing(ALLOW_WEBSOCKETS)).await;
    let target = format!("localhost:{}", origin.port());
    let tls = proxy.intercepted(&target, "localhost").await;
    let (mut ws, response) = tokio_tungstenite::client_async(format!("wss://{target}/ws"), tls)
        .await
        .expect("websocket handshake through the proxy");
    assert_eq!(response.status(), 101);
    for text in ["hello", "second message"] {
        ws.send(Message::text(text)).await.unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed, Message::text(text));
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn websocket_over_plain_http_absolute_form() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, allowing(ALLOW_WEBSOCKETS)).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
}

/// A rule that allows every request does not allow a WebSocket: after the upgrade its frames would
/// otherwise be an unjudged pipe. The refusal is a decision in the audit trail.
#[tokio::test]
async fn a_websocket_is_refused_unless_a_rule_allows_it() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let (head, _) = crate::support::websocket_handshake(proxy.addr, &host, "WebSocket").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let refused = proxy
        .decisions()
        .into_iter()
        .find(|d| d["effect"] == "deny")
        .expect("the refusal is recorded");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("allow_websocket"),
        "{refused}"
    );
}

/// Once a socket is allowed, each message is scanned and judged: a message carrying an e-mail
/// address is refused by a `websocket.message` rule, never reaches the origin, and the socket is
/// closed with 1008 and the reason.
#[tokio::test]
async fn a_message_with_personal_data_closes_the_socket() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let policy = format!(
        "{ALLOW_WEBSOCKETS}  - id: no-personal-data-in-messages\n    trigger: websocket.message\n    \
         effect: deny\n    when: \"'email' in pii.kinds\"\n    message: no e-mail addresses over sockets\n"
    );
    let proxy = TestProxy::start(&pki, allowing(&policy)).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    ws.send(Message::text("nothing personal")).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::text("nothing personal")
    );
    ws.send(Message::text("{\"to\": \"alice@example.com\"}"))
        .await
        .unwrap();
    let closed = ws.next().await.expect("a frame").expect("a close frame");
    let Message::Close(Some(frame)) = closed else {
        panic!("expected a close frame, got {closed:?} (the origin echoed the message?)");
    };
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(
        frame.reason.contains("no-personal-data-in-messages"),
        "{}",
        frame.reason
    );
    let denied: Vec<_> = proxy
        .decisions()
        .into_iter()
        .filter(|d| d["trigger"] == "websocket.message")
        .collect();
    // The first message, its echo on the way back, and the refused one.
    assert_eq!(denied.len(), 3, "every message was judged: {denied:?}");
    assert_eq!(denied[1]["effect"], "allow");
    assert_eq!(denied[2]["effect"], "deny");
    assert_eq!(denied[2]["pii"]["email"], 1);
    let text = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    assert!(
        !text.contains("alice@example.com"),
        "no value in the audit trail"
    );
}

/// A binary message that is not text cannot be inspected: it closes the socket instead of
/// passing unjudged. One that is UTF-8 is judged like text.
#[tokio::test]
async fn a_binary_message_that_is_not_text_closes_the_socket() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, allowing(ALLOW_WEBSOCKETS)).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    ws.send(Message::binary(b"plain words".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(b"plain words".to_vec())
    );
    ws.send(Message::binary(vec![0xff, 0xfe, 0x00, 0x81]))
        .await
        .unwrap();
    let closed = ws.next().await.expect("a frame").expect("a close frame");
    let Message::Close(Some(frame)) = closed else {
        panic!("expected a close frame, got {closed:?}");
    };
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(
        frame.reason.contains("cannot be inspected"),
        "{}",
        frame.reason
    );
}

/// A JSON message naming a member twice cannot be judged (readers disagree on which value counts,
/// and the proxy's reader kept only the last): it closes the socket like a request body that does
/// so is left uninspected, rather than passing the value no rule saw.
#[tokio::test]
async fn a_json_message_naming_a_member_twice_closes_the_socket() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let policy = format!(
        "{ALLOW_WEBSOCKETS}  - id: no-personal-data-in-messages\n    trigger: websocket.message\n    \
         effect: deny\n    when: \"'email' in pii.kinds\"\n    message: no e-mail addresses over sockets\n"
    );
    let proxy = TestProxy::start(&pki, allowing(&policy)).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    let twice = "{\"to\": \"alice@example.com\", \"to\": \"nobody\"}";
    ws.send(Message::text(twice)).await.unwrap();
    let closed = ws.next().await.expect("a frame").expect("a close frame");
    let Message::Close(Some(frame)) = closed else {
        panic!("expected a close frame, got {closed:?} (the origin echoed the message?)");
    };
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(frame.reason.contains("twice"), "{}", frame.reason);
}
