//! Graceful shutdown: SIGTERM stops accepting, lets in-flight requests finish, and exits 0; a
//! request longer than the grace period is cut.

use std::time::Duration;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("certs");
    let mut yaml = ProxySpec::default().yaml(&pki, &ca_dir, "127.0.0.1:0");
    yaml.push_str("log:\n  format: json\n");
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, yaml).unwrap();

    let (mut child, addr, log) = crate::support::spawn_gatehouse(&config).await;

    let ca_pem = std::fs::read_to_string(ca_dir.join("gatehouse-ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/slow", origin.port());
    let in_flight = tokio::spawn(async move { client.get(url).send().await?.text().await });
    tokio::time::timeout(Duration::from_secs(10), origin.slow_started.notified())
        .await
        .expect("the slow request reached the origin");

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());

    let body = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(body, "slow done");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener is closed"
    );
    let log = log.await.unwrap();
    assert!(log.contains("all requests drained"), "{log}");
}

#[tokio::test]
async fn requests_longer_than_the_grace_period_are_cut() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        limits: "limits:\n  shutdown_grace: 200ms\n".into(),
        ..Default::default()
    };
    let mut proxy = TestProxy::start(&pki, spec).await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/slow", origin.port());
    let in_flight = tokio::spawn(async move { client.get(url).send().await?.text().await });
    origin.slow_started.notified().await;
    let drained = proxy.gatehouse.take().unwrap().shutdown().await;
    assert_eq!(drained, gatehouse::app::Drained::Cut);
    assert!(
        in_flight.await.unwrap().is_err(),
        "the agent sees the cut connection"
    );
}
