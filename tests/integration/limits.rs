//! Limits and timeouts: connection count, slow clients, slow and silent upstreams.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

#[tokio::test]
async fn connections_over_the_limit_get_503() {
    let pki = TestPki::new();
    let spec = ProxySpec {
        limits: "limits:\n  max_connections: 2\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let _held: Vec<TcpStream> = vec![
        TcpStream::connect(proxy.addr).await.unwrap(),
        TcpStream::connect(proxy.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(proxy.addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), third.read_to_string(&mut answer))
        .await
        .expect("refused promptly")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("connection limit"), "{answer}");
}

#[tokio::test]
async fn a_client_that_never_sends_its_request_is_disconnected() {
    let pki = TestPki::new();
    let spec = ProxySpec {
        limits: "limits:\n  client_header_timeout: 300ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let mut silent = TcpStream::connect(proxy.addr).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "the proxy closes a silent connection after the header timeout"
    );
}

#[tokio::test]
async fn an_upstream_that_does_not_answer_in_time_gets_504() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        upstream: "  response_timeout: 300ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let response = proxy
        .get(format!("https://localhost:{}/slow", origin.port()))
        .await;
    assert_eq!(response.status(), 504);
    assert!(response.text().await.unwrap().contains("no response from"));
}

#[tokio::test]
async fn a_response_body_silent_past_the_idle_timeout_is_cut() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        upstream: "  idle_timeout: 300ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let response = proxy
        .get(format!("https://localhost:{}/sse", origin.port()))
        .await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    let cut = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("cut in time");
    assert!(
        matches!(cut, Some(Err(_))),
        "the silent stream must end with an error: {cut:?}"
    );
}

#[tokio::test]
async fn a_websocket_keeps_its_connection_slot() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let spec = ProxySpec {
        limits: "limits:\n  max_connections: 1\n".into(),
        policy: crate::support::ALLOW_WEBSOCKETS.into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    ws.send(Message::text("ping")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping"));

    let mut second = TcpStream::connect(proxy.addr).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), second.read_to_string(&mut answer))
        .await
        .expect("refused promptly")
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503"),
        "the open WebSocket holds the only slot: {answer}"
    );
}
