//! Bad input on the agent-facing listener gets a 4xx, and the proxy keeps serving.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin, read_head};

async fn raw(proxy: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn malformed_and_oversized_requests_get_4xx_and_the_proxy_survives() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        limits: "limits:\n  max_header_bytes: 8192\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;

    let garbage = raw(proxy.addr, b"\x16\x03\x01 definitely not http\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");

    let huge = format!(
        "GET http://127.0.0.1:{}/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        origin.port(),
        "a".repeat(20_000)
    );
    let too_large = raw(proxy.addr, huge.as_bytes()).await;
    assert!(too_large.starts_with("HTTP/1.1 431"), "{too_large}");

    let origin_form = raw(
        proxy.addr,
        b"GET /just/a/path HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(origin_form.starts_with("HTTP/1.1 400"), "{origin_form}");
    assert!(origin_form.contains("absolute-form"), "{origin_form}");

    let (status, head, _) = connect_tunnel(proxy.addr, "no-port-here", None).await;
    assert_eq!(status, 400, "{head}");

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"CONNECT bad_host!:443 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    let (status, _, _) =
        connect_tunnel(proxy.addr, &format!("localhost:{}", origin.port()), None).await;
    assert_eq!(status, 200, "the proxy still serves after bad input");
}
