//! WebSocket upgrades through the intercepting proxy.

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::support::{ProxySpec, TestPki, TestProxy, origin, read_head};

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
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let host = format!("127.0.0.1:{}", origin.port());
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let handshake = format!(
        "GET http://{host}/ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mut ws = WebSocketStream::from_raw_socket(stream, Role::Client, None).await;
    ws.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(vec![1u8, 2, 3])
    );
}
