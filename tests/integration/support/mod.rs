//! Shared test fixtures: a test PKI, origins, an in-process Gatehouse, and clients.

pub mod netns;
pub mod origin;
pub mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse::{Config, Gatehouse};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub use pki::TestPki;

/// What a test wants of the proxy's config; everything else is the test default.
pub struct ProxySpec {
    pub allow_cidrs: Vec<&'static str>,
    pub trust_origin: bool,
    pub identity: String,
    pub tunnel_hosts: Vec<String>,
    pub limits: String,
    /// Extra lines under `upstream:` (indented by two spaces).
    pub upstream: String,
    /// The policy file (YAML) the proxy loads.
    pub policy: String,
    /// Further top-level config sections, appended as written.
    pub extra: String,
    /// Templates enabled with `policies.templates`.
    pub templates: Vec<&'static str>,
}

/// [`ALLOW_ALL`] and WebSocket upgrades (whose messages no rule refuses).
pub const ALLOW_WEBSOCKETS: &str = "rules:\n  - id: test-allow-connect\n    trigger: connect\n    effect: allow\n  - id: test-allow-websockets\n    trigger: http.request\n    effect: allow\n    allow_websocket: true\n";

/// Lets everything the network guard admits through: the proxy-core tests are about sockets.
pub const ALLOW_ALL: &str = "rules:\n  - id: test-allow-connect\n    trigger: connect\n    effect: allow\n  - id: test-allow-requests\n    trigger: http.request\n    effect: allow\n";

impl Default for ProxySpec {
    fn default() -> Self {
        Self {
            allow_cidrs: vec!["127.0.0.0/8", "::1/128"],
            trust_origin: true,
            identity: "identity:\n  allow_anonymous: true\n".into(),
            tunnel_hosts: Vec::new(),
            limits: String::new(),
            upstream: String::new(),
            policy: ALLOW_ALL.into(),
            extra: String::new(),
            templates: Vec::new(),
        }
    }
}

impl ProxySpec {
    /// Writes the policy folder under `dir` and returns the config text that uses it.
    pub fn yaml(&self, pki: &TestPki, ca_dir: &std::path::Path, listen: &str) -> String {
        let policy_dir = ca_dir.with_file_name("policies");
        std::fs::create_dir_all(&policy_dir).unwrap();
        std::fs::write(policy_dir.join("test.yaml"), &self.policy).unwrap();
        let extra_ca = if self.trust_origin {
            format!("[{}]", pki.ca_path.display())
        } else {
            "[]".into()
        };
        let cidrs: Vec<String> = self.allow_cidrs.iter().map(|c| format!("'{c}'")).collect();
        let tunnel: Vec<String> = self.tunnel_hosts.iter().map(|h| format!("'{h}'")).collect();
        format!(
            "listen: {listen}\naudit:\n  file: {}\n  store: {}\npolicies:\n  dir: {}\n  reload_interval: 100ms\n  templates: [{}]\nca:\n  dir: {}\nupstream:\n  extra_ca_files: {extra_ca}\n{}network:\n  allow_cidrs: [{}]\ntunnel:\n  hosts: [{}]\n{}{}{}",
            ca_dir.with_file_name("audit.jsonl").display(),
            ca_dir.with_file_name("audit.sqlite").display(),
            policy_dir.display(),
            self.templates.join(", "),
            ca_dir.display(),
            self.upstream,
            cidrs.join(", "),
            tunnel.join(", "),
            self.identity,
            self.limits,
            // The budget ledger lives with the test, unless the test's own section names one; the
            // admin API listens on a free port unless the test says where.
            {
                let mut extra = self.extra.clone();
                let store = format!(
                    "budget:\n  store: {}\n",
                    ca_dir.with_file_name("budget.sqlite").display()
                );
                if !extra.contains("budget:") {
                    extra.push_str(&store);
                } else if !extra.contains("  store:") {
                    extra = extra.replacen("budget:\n", &store, 1);
                }
                if !extra.contains("admin:") {
                    extra.push_str("admin:\n  listen: 127.0.0.1:0\n");
                }
                // Held requests wait briefly: nobody decides in most tests.
                if !extra.contains("approvals:") {
                    extra.push_str("approvals:\n  wait: 300ms\n");
                }
                extra
            },
        )
    }
}

/// An in-process Gatehouse with its own CA directory.
pub struct TestProxy {
    pub gatehouse: Option<Gatehouse>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub config_path: PathBuf,
}

impl TestProxy {
    /// A fresh PKI, an HTTPS origin and a proxy judging by `policy`.
    pub async fn with_origin(policy: &str) -> (TestPki, origin::Origin, TestProxy) {
        let pki = TestPki::new();
        let origin = origin::start_tls(&pki).await;
        let proxy = TestProxy::with_policy(&pki, policy).await;
        (pki, origin, proxy)
    }

    /// A proxy judging by `policy`, everything else as [`ProxySpec::default`].
    pub async fn with_policy(pki: &TestPki, policy: &str) -> TestProxy {
        let spec = ProxySpec {
            policy: policy.into(),
            ..Default::default()
        };
        TestProxy::start(pki, spec).await
    }

    /// The decisions in the audit trail, in order (outcome records left out).
    pub fn decisions(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["record"] != "outcome")
            .collect()
    }

    pub async fn start(pki: &TestPki, spec: ProxySpec) -> TestProxy {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("certs");
        let yaml = spec.yaml(pki, &ca_dir, "127.0.0.1:0");
        let config = Config::from_yaml(&yaml, "test.yaml").expect("test config is valid");
        let gatehouse = Gatehouse::start(config).await.expect("proxy starts");
        let addr = gatehouse.local_addr();
        let ca_pem = std::fs::read_to_string(gatehouse.ca_cert_path()).unwrap();
        let config_path = dir.path().join("gatehouse.yaml");
        std::fs::write(&config_path, spec.yaml(pki, &ca_dir, &addr.to_string())).unwrap();
        TestProxy {
            gatehouse: Some(gatehouse),
            addr,
            dir,
            ca_pem,
            config_path,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for the admin API with the token the proxy generated (tests that configure no
    /// token of their own).
    pub fn admin_client(&self) -> reqwest::Client {
        let token = std::fs::read_to_string(self.dir.path().join("certs/admin-token"))
            .expect("the proxy generated an admin token");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        reqwest::Client::builder()
            .no_proxy()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    /// The admin API's base URL (`http://127.0.0.1:port`).
    pub fn admin_url(&self) -> String {
        let addr = self
            .gatehouse
            .as_ref()
            .and_then(|g| g.admin_addr())
            .expect("the admin API runs");
        format!("http://{addr}")
    }

    /// `GET url` through the proxy over HTTP/1.1.
    pub async fn get(&self, url: impl reqwest::IntoUrl) -> reqwest::Response {
        self.client(true)
            .get(url)
            .send()
            .await
            .expect("the proxy answers")
    }

    /// CONNECT to `target` and speak TLS (HTTP/1.1 ALPN) inside with the given SNI, trusting the
    /// Gatehouse CA.
    pub async fn intercepted(&self, target: &str, sni: &str) -> TlsStream<TcpStream> {
        let (status, head, stream) = connect_tunnel(self.addr, target, None).await;
        assert_eq!(status, 200, "CONNECT {target}: {head}");
        tls_over(stream, sni, &self.ca_pem, &[b"http/1.1"]).await
    }

    /// A reqwest client going through this proxy, trusting only the Gatehouse CA.
    pub fn client(&self, h1_only: bool) -> reqwest::Client {
        self.client_with(
            reqwest::Proxy::all(self.url()).unwrap(),
            &self.ca_pem,
            h1_only,
        )
    }

    pub fn client_with(
        &self,
        proxy: reqwest::Proxy,
        trust_pem: &str,
        h1_only: bool,
    ) -> reqwest::Client {
        let cert = reqwest::Certificate::from_pem(trust_pem.as_bytes()).unwrap();
        let mut builder = reqwest::Client::builder()
            .proxy(proxy)
            .tls_certs_only([cert])
            .timeout(Duration::from_secs(20));
        if h1_only {
            builder = builder.http1_only();
        }
        builder.build().unwrap()
    }
}

/// Sends `CONNECT target` (with optional `Proxy-Authorization` value) and reads the answer head.
pub async fn connect_tunnel(
    proxy: SocketAddr,
    target: &str,
    auth: Option<&str>,
) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = auth {
        request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head, stream)
}

/// Reads an HTTP response head (up to the blank line), plus whatever body bytes arrived with it.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("head arrives")
            .unwrap();
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// TLS over an open tunnel, trusting `ca_pem`, with the given SNI and ALPN.
pub async fn tls_over(
    stream: TcpStream,
    sni: &str,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let name = rustls_pki_types::ServerName::try_from(sni.to_string()).unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .expect("TLS handshake through the proxy")
}

/// Sends one HTTP/1.1 request over an established stream and returns status and body.
pub async fn h1_request<IO>(io: IO, req: http::Request<String>) -> (u16, String)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .unwrap();
    tokio::spawn(conn);
    let response = sender.send_request(req).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Path of the `gatehouse` binary under test: `GATEHOUSE_TEST_BIN` when set (several worktrees
/// sharing one target directory each keep a copy of their own build), else the one cargo built.
pub fn binary() -> String {
    std::env::var("GATEHOUSE_TEST_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_gatehouse").to_owned())
}

/// Opens a WebSocket to `ws://{host}/ws` through the proxy with an absolute-form handshake.
pub async fn websocket_via_proxy(
    proxy: SocketAddr,
    host: &str,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let (head, stream) = websocket_handshake(proxy, host, "websocket").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tokio_tungstenite::WebSocketStream::from_raw_socket(
        stream,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await
}

/// Sends a plain-HTTP WebSocket handshake for `http://host/ws` (with `upgrade` as the `Upgrade`
/// value) through the proxy; the answer's head and the connection.
pub async fn websocket_handshake(
    proxy: SocketAddr,
    host: &str,
    upgrade: &str,
) -> (String, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let handshake = format!(
        "GET http://{host}/ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: {upgrade}\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).await.unwrap();
    let head = read_head(&mut stream).await;
    (head, stream)
}

/// The venv `scripts/test` creates; `GATEHOUSE_TEST_PYTHON` may name another interpreter.
pub fn python() -> PathBuf {
    if let Ok(python) = std::env::var("GATEHOUSE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run scripts/test, which creates it",
        venv.display()
    );
    venv
}

/// A new, empty database on the PostgreSQL server `GATEHOUSE_TEST_POSTGRES` names (`scripts/test`
/// starts one); its URL.
pub async fn fresh_postgres() -> String {
    let server = std::env::var("GATEHOUSE_TEST_POSTGRES").expect(
        "GATEHOUSE_TEST_POSTGRES names the PostgreSQL server for tests; scripts/test starts one",
    );
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("test PostgreSQL server reachable");
    tokio::spawn(connection);
    let name = format!(
        "gatehouse_it_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    format!("{}/{name}", server.rsplit_once('/').unwrap().0)
}

static NEXT_DATABASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Starts `gatehouse run --config CONFIG` (a config with `log.format: json`) as a child process;
/// returns it, its address once it listens, and a task collecting the rest of its log.
pub async fn spawn_gatehouse(
    config: &std::path::Path,
) -> (
    tokio::process::Child,
    SocketAddr,
    tokio::task::JoinHandle<String>,
) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(binary())
        .args(["run", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
            .await
            .expect("proxy logs its address")
            .unwrap()
            .expect("proxy is running");
        if line.contains("gatehouse listening") {
            let record: serde_json::Value = serde_json::from_str(&line).unwrap();
            break record["fields"]["addr"]
                .as_str()
                .unwrap()
                .parse::<SocketAddr>()
                .unwrap();
        }
    };
    let log = tokio::spawn(async move {
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    (child, addr, log)
}
