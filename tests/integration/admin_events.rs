//! The admin API's event stream (`GET /api/events`): authenticated like the rest of the API (the
//! bearer token, or a single-use ticket the token buys, never the token in a URL), capped in
//! clients, and a client that stops reading never holds up the proxy.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

/// Opens `GET /api/events` on a raw connection (with `auth` headers, `query` after the path) and
/// returns the status line and the connection, its head read.
async fn open_stream(proxy: &TestProxy, auth: &str, query: &str) -> (String, TcpStream) {
    let addr = proxy.admin_url().trim_start_matches("http://").to_string();
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let request = format!("GET /api/events{query} HTTP/1.1\r\nhost: {addr}\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = crate::support::read_head(&mut stream).await;
    (head, stream)
}

/// Reads from `stream` until `needle` arrived, counting what `already` holds (10 s at most);
/// returns what was read.
async fn read_until(stream: &mut TcpStream, already: &str, needle: &str) -> String {
    let mut seen = already.as_bytes().to_vec();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut buf = [0u8; 65536];
        let n = tokio::time::timeout(left, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {needle:?} in: {}", String::from_utf8_lossy(&seen)))
            .unwrap();
        assert!(n > 0, "stream closed before {needle:?}");
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn token(proxy: &TestProxy) -> String {
    std::fs::read_to_string(proxy.dir.path().join("certs/admin-token")).unwrap()
}

#[tokio::test]
async fn the_stream_needs_the_token_or_a_ticket_used_once() {
    let pki = TestPki::new();
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let token = token(&proxy);

    let (head, _) = open_stream(&proxy, "", "").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    // The token itself is no ticket: it never belongs in a URL.
    let (head, _) = open_stream(&proxy, "", &format!("?ticket={token}&token={token}")).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");

    let tickets = format!("{}/api/events/ticket", proxy.admin_url());
    let anonymous = reqwest::Client::builder().no_proxy().build().unwrap();
    let refused = anonymous.post(&tickets).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let issued: serde_json::Value = proxy
        .admin_client()
        .post(&tickets)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket = issued["ticket"].as_str().unwrap();
    assert_ne!(ticket, token);

    let (head, mut stream) = open_stream(&proxy, "", &format!("?ticket={ticket}")).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{head}"
    );
    read_until(&mut stream, &head, "event: ready").await;
    let (head, _) = open_stream(&proxy, "", &format!("?ticket={ticket}")).await;
    assert!(
        head.starts_with("HTTP/1.1 401"),
        "a ticket is good once: {head}"
    );

    let bearer = format!("authorization: Bearer {token}\r\n");
    let (head, mut stream) = open_stream(&proxy, &bearer, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    read_until(&mut stream, &head, "event: ready").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_never_holds_up_the_proxy_and_streams_are_capped() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            extra: "admin:\n  listen: 127.0.0.1:0\n  max_connections: 64\n".into(),
            ..Default::default()
        },
    )
    .await;
    let bearer = format!("authorization: Bearer {}\r\n", token(&proxy));
    // One client that never reads again, and one that reads.
    let (head, _stalled) = open_stream(&proxy, &bearer, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let (head, mut reader) = open_stream(&proxy, &bearer, "").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    read_until(&mut reader, &head, "event: ready").await;

    let client = proxy.client(true);
    let url = format!("https://localhost:{}/echo", origin.port());
    let started = Instant::now();
    for _ in 0..400 {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "400 requests took {:?} beside a stalled stream",
        started.elapsed()
    );
    let seen = read_until(&mut reader, "", "event: decision").await;
    assert!(seen.contains("\"trigger\":\"http.request\""), "{seen}");

    // The cap: streams beyond it are refused, not queued.
    let mut open = Vec::new();
    let mut refused = None;
    for _ in 0..20 {
        let (head, stream) = open_stream(&proxy, &bearer, "").await;
        if head.starts_with("HTTP/1.1 503") {
            refused = Some(head);
            break;
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        open.push(stream);
    }
    assert!(refused.is_some(), "no cap on event streams");
    assert_eq!(open.len() + 2, 16, "the cap is 16 streams");
}
