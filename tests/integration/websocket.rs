//! WebSocket upgrades through the intercepting proxy.

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

#[tokio::test]
async fn websocket_echo_through_an_intercepted_tunnel() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
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
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
}
