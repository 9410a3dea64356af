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
    assert!(
        intercepted.is_err(),
        "an unlisted host is intercepted, so the pinned client rejects the leaf"
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
