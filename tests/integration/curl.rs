//! The real curl binary through the proxy, over HTTP/1.1 and HTTP/2.

use std::process::Command;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

#[tokio::test]
async fn curl_http1_and_http2_through_the_proxy() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let ca = proxy.dir.path().join("certs/gatehouse-ca.pem");
    let url = format!("https://localhost:{}/echo", origin.port());
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (ca, url, proxy_url) = (ca.clone(), url.clone(), proxy.url());
        let output = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["-sS", flag, "--proxy", &proxy_url, "--cacert"])
                .arg(&ca)
                .args([
                    "-d",
                    "{\"q\":1}",
                    "-w",
                    "\n%{http_code} %{http_version}",
                    &url,
                ])
                .output()
                .expect("curl is installed")
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "curl {flag}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let status_line = stdout.lines().last().unwrap();
        assert_eq!(
            status_line,
            format!("200 {version}"),
            "curl {flag}: {stdout}"
        );
        assert!(stdout.contains("\"body_len\":7"), "{stdout}");
    }
}
