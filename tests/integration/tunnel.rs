//! Tunnel mode: listed hosts are relayed byte for byte, so a client that pins the origin's own
//! certificate still works; host-level checks still apply.

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin};

#[tokio::test]
async fn listed_hosts_are_relayed_without_interception() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        tunnel_hosts: vec!["localhost".into()],
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;

    let pinned_client = proxy.client_with(
        reqwest::Proxy::all(proxy.url()).unwrap(),
        &pki.ca_pem,
        false,
    );
    let response = pinned_client
        .get(format!("https://localhost:{}/echo", origin.port()))
        .send()
        .await
        .expect("the origin's own certificate reaches the client");
    assert_eq!(response.status(), 200);

    let intercepted = pinned_client
        .get(format!("https://127.0.0.1:{}/echo", origin.port()))
        .send()
        .await;
    let err = intercepted
        .expect_err("an unlisted host is intercepted, so the pinned client rejects the leaf");
    let chain = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ");
    assert!(
        chain.contains("certificate"),
        "a certificate error, not another failure: {chain}"
    );
}

#[tokio::test]
async fn tunnel_hosts_still_pass_the_network_guard() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        tunnel_hosts: vec!["localhost".into()],
        allow_cidrs: vec![],
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let (status, head, _) =
        connect_tunnel(proxy.addr, &format!("localhost:{}", origin.port()), None).await;
    assert_eq!(status, 403, "{head}");
}

#[tokio::test]
async fn a_relayed_tunnel_refuses_an_sni_for_another_host_and_non_tls_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        tunnel_hosts: vec!["localhost".into()],
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());

    let (status, _, stream) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200);
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let fronted = rustls_pki_types::ServerName::try_from("fronted.example.com").unwrap();
    let handshake = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(fronted, stream)
        .await;
    assert!(
        handshake.is_err(),
        "the proxy closes a tunnel whose SNI names another host"
    );

    let (status, _, mut raw) = connect_tunnel(proxy.addr, &target, None).await;
    assert_eq!(status, 200);
    raw.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        raw.read_to_end(&mut answer),
    )
    .await;
    assert!(
        answer.is_empty(),
        "plain bytes are not relayed: {:?}",
        String::from_utf8_lossy(&answer)
    );
}
