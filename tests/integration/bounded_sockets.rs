//! Bounded sockets: connections per agent, relayed tunnels and WebSockets silent both ways, a
//! relay without a ClientHello, the admin listener (no destination, connection cap, header
//! timeout).

use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin};

/// An agent with a token file, besides anonymous agents.
fn token_agent(name: &str) -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join(format!("{name}.token"));
    std::fs::write(&file, format!("{name}-token\n")).unwrap();
    format!(
        "identity:\n  allow_anonymous: true\n  agents:\n    - id: {name}\n      token_file: {}\n",
        file.display()
    )
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

#[tokio::test]
async fn an_agent_past_its_connection_share_gets_429_and_others_still_connect() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        identity: token_agent("greedy"),
        limits: "limits:\n  max_connections: 10\n  max_connections_per_agent: 2\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    let auth = basic("greedy:greedy-token");
    let (first, _, held) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    let (second, _, _also_held) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    assert_eq!((first, second), (200, 200));
    let (third, head, _) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    assert_eq!(third, 429, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    // Another agent still gets through.
    let response = proxy.get(format!("https://{target}/answer")).await;
    assert_eq!(response.status(), 200);
    // A closed tunnel gives its slot back.
    drop(held);
    let mut status = 0;
    for _ in 0..50 {
        (status, _, _) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_relayed_tunnel_silent_both_ways_is_closed_after_the_idle_timeout() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        tunnel_hosts: vec!["localhost".into()],
        limits: "limits:\n  tunnel_idle_timeout: 500ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    let (status, head, stream) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200, "{head}");
    // A real TLS session through the relay, then silence.
    let mut tls = crate::support::tls_over(stream, "localhost", &pki.ca_pem, &[b"http/1.1"]).await;
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the idle tunnel is closed");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn a_relayed_tunnel_without_a_client_hello_is_closed_after_the_header_timeout() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        tunnel_hosts: vec!["localhost".into()],
        limits: "limits:\n  client_header_timeout: 300ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    let (status, _, mut stream) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a tunnel that never says hello is closed");
}

#[tokio::test]
async fn a_websocket_silent_both_ways_is_closed_after_the_idle_timeout() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let spec = ProxySpec {
        limits: "limits:\n  tunnel_idle_timeout: 500ms\n".into(),
        policy: crate::support::ALLOW_WEBSOCKETS.into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let host = format!("127.0.0.1:{}", origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    // Traffic keeps it open past the timeout.
    for _ in 0..4 {
        ws.send(Message::text("ping")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("ping"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let closing = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("the idle socket is closed");
    match closing {
        Some(Ok(Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 1001);
            assert_eq!(frame.reason.as_str(), "idle timeout");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn the_admin_listener_is_no_destination_and_bounds_its_clients() {
    let pki = TestPki::new();
    let spec = ProxySpec {
        limits: "limits:\n  client_header_timeout: 1s\n".into(),
        extra: "admin:\n  listen: 127.0.0.1:0\n  max_connections: 2\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let admin = proxy.gatehouse.as_ref().unwrap().admin_addr().unwrap();
    // 127.0.0.0/8 is allowed in tests, yet the admin API is never reached through the proxy.
    let through = proxy.get(format!("http://{admin}/healthz")).await;
    assert_eq!(through.status(), 403);
    let reason = through.text().await.unwrap();
    assert!(reason.contains("own listening address"), "{reason}");
    // Past the connection cap, a connection is closed at once; the held ones still work.
    let mut held: Vec<TcpStream> = vec![
        TcpStream::connect(admin).await.unwrap(),
        TcpStream::connect(admin).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(admin).await.unwrap();
    let mut answer = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_millis(500), third.read_to_end(&mut answer)).await;
    assert!(
        matches!(closed, Ok(Ok(0))),
        "over the cap: {closed:?} {answer:?}"
    );
    let first = &mut held[0];
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    first.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A client that sends no request head is dropped after the header timeout.
    let started = std::time::Instant::now();
    let mut silent = TcpStream::connect(admin).await.unwrap();
    let mut rest = Vec::new();
    let dropped =
        tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut rest)).await;
    assert!(dropped.is_ok(), "the silent admin client is disconnected");
    assert!(started.elapsed() >= Duration::from_millis(800));
}

#[tokio::test]
async fn a_connection_refused_before_it_counts_for_an_agent_is_closed() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        identity: token_agent("greedy"),
        limits: "limits:\n  max_connections: 4\n  max_connections_per_agent: 2\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    let auth = basic("greedy:greedy-token");
    let (_, _, _first) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    let (_, _, _second) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    // Past its share, and with a wrong token: refused, and each connection closed, so it holds
    // no slot of the global limit the agent's share does not count.
    let (past, head, mut third) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    assert_eq!(past, 429, "{head}");
    let wrong = basic("greedy:wrong");
    let (unknown, head, mut fourth) = connect_tunnel(proxy.addr, &target, Some(&wrong)).await;
    assert_eq!(unknown, 407, "{head}");
    for stream in [&mut third, &mut fourth] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        assert!(closed.await.is_ok(), "the refused connection is closed");
    }
    // Another agent still finds a slot of the global limit.
    let response = proxy.get(format!("https://{target}/answer")).await;
    assert_eq!(response.status(), 200);
}
