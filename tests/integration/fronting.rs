//! What may and may not travel inside an intercepted tunnel.

use http::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, h1_request, origin};

#[tokio::test]
async fn host_header_for_another_host_is_refused_with_421() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let target = format!("localhost:{}", origin.port());
    let tls = proxy.intercepted(&target, "localhost").await;
    let req = Request::get("/echo")
        .header("host", "evil.example.com")
        .body(String::new())
        .unwrap();
    let (status, body) = h1_request(tls, req).await;
    assert_eq!(status, 421);
    assert!(body.contains("does not match the CONNECT target"), "{body}");
}

#[tokio::test]
async fn sni_for_another_host_is_refused_with_421() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let target = format!("127.0.0.1:{}", origin.port());
    let tls = proxy.intercepted(&target, "localhost").await;
    let req = Request::get("/echo")
        .header("host", &target)
        .body(String::new())
        .unwrap();
    let (status, body) = h1_request(tls, req).await;
    assert_eq!(status, 421);
    assert!(
        body.contains("TLS SNI `localhost` does not match"),
        "{body}"
    );
}

#[tokio::test]
async fn bytes_that_are_neither_tls_nor_http_are_not_relayed() {
    let pki = TestPki::new();
    // A plain HTTP origin answers any bytes it gets (400), so a relayed tunnel would be seen.
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let (status, _, mut stream) =
        connect_tunnel(proxy.addr, &format!("localhost:{}", origin.port()), None).await;
    assert_eq!(status, 200);
    stream
        .write_all(b"\x00\x01\x02 raw bytes that are no protocol")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    assert!(read.expect("proxy closes the tunnel").is_ok());
    assert!(
        answer.is_empty(),
        "nothing may come back from the origin: {answer:?}"
    );
}

#[tokio::test]
async fn plain_http_inside_a_tunnel_is_inspected_and_forwarded() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let target = format!("127.0.0.1:{}", origin.port());
    let (status, _, stream) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200);
    let req = Request::get("/echo/inside")
        .header("host", &target)
        .body(String::new())
        .unwrap();
    let (status, body) = h1_request(stream, req).await;
    assert_eq!(status, 200);
    assert!(body.contains("/echo/inside"), "{body}");
}

#[tokio::test]
async fn an_http2_authority_for_another_host_is_refused_with_421() {
    use http_body_util::{BodyExt, Empty};

    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let target = format!("localhost:{}", origin.port());
    let (status, _, stream) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200);
    let tls = crate::support::tls_over(stream, "localhost", &proxy.ca_pem, &[b"h2"]).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    for (authority, expected) in [("evil.example.com", 421), (target.as_str(), 200)] {
        let req = Request::get(format!("https://{authority}/echo"))
            .body(Empty::<bytes::Bytes>::new())
            .unwrap();
        let response = sender.send_request(req).await.unwrap();
        assert_eq!(response.status(), expected, ":authority {authority}");
        let _ = response.into_body().collect().await;
    }
}
