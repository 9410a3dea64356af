//! Load benchmark: the same fixed POST (4 KB JSON body, 1 KB JSON answer) sent to a local HTTPS
//! origin directly and through Gatehouse with interception, in one run, on the same machine.
//!
//! Phase 1, keep-alive: `GH_BENCH_CONNS` connections (default 4) each send `GH_BENCH_REQUESTS`
//! requests (default 2500) back to back; requests per second and p50/p99 latency.
//! Phase 2, new connections: `GH_BENCH_NEW_CONNS` (default 300) sequential fresh connections,
//! each doing TCP (+ CONNECT through the proxy) + TLS + one request; the leaf is already cached.
//!
//! Run: `cargo bench --bench proxy_load`. Every loop is bounded in count and by a 60 s deadline.

#[path = "../tests/integration/support/origin.rs"]
#[allow(
    dead_code,
    reason = "the bench uses only the HTTPS origin and its /answer and /bench routes"
)]
mod origin;
#[path = "../tests/integration/support/pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse::{Config, Gatehouse};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const DEADLINE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Route {
    Direct,
    Proxy(SocketAddr),
}

struct Setup {
    origin: SocketAddr,
    /// `/answer` (1 KB, not an LLM call) or `/bench/v1/chat/completions` (an OpenAI answer with
    /// usage, metered).
    path: &'static str,
    direct_tls: TlsConnector,
    proxy_tls: TlsConnector,
    body: Bytes,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn connector(pem: &str) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.expect("PEM")).expect("root");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

async fn open(setup: &Setup, route: Route) -> SendRequest<Full<Bytes>> {
    let target = format!("localhost:{}", setup.origin.port());
    let (tcp, tls) = match route {
        Route::Direct => (
            TcpStream::connect(setup.origin).await.expect("origin"),
            &setup.direct_tls,
        ),
        Route::Proxy(proxy) => {
            let mut tcp = TcpStream::connect(proxy).await.expect("proxy");
            tcp.set_nodelay(true).expect("nodelay");
            let connect = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            tcp.write_all(connect.as_bytes()).await.expect("CONNECT");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                tcp.read_exact(&mut byte).await.expect("CONNECT answer");
                head.push(byte[0]);
            }
            assert!(head.starts_with(b"HTTP/1.1 200"), "CONNECT refused");
            (tcp, &setup.proxy_tls)
        }
    };
    tcp.set_nodelay(true).expect("nodelay");
    let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
    let stream = tls.connect(name, tcp).await.expect("TLS");
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("h1");
    tokio::spawn(conn);
    sender
}

async fn post(setup: &Setup, sender: &mut SendRequest<Full<Bytes>>) -> Duration {
    let started = Instant::now();
    let req = Request::post(setup.path)
        .header("host", format!("localhost:{}", setup.origin.port()))
        .header("content-type", "application/json")
        .body(Full::new(setup.body.clone()))
        .expect("request");
    sender.ready().await.expect("ready");
    let response = sender.send_request(req).await.expect("response");
    assert_eq!(response.status(), 200);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(setup.path != "/answer" || body.len() == 1024);
    assert!(!body.is_empty());
    started.elapsed()
}

struct Stats {
    rps: f64,
    p50: Duration,
    p99: Duration,
    count: usize,
    /// CPU time of the whole process (client, origin and, when proxied, Gatehouse) per request.
    cpu_per_request: Duration,
}

/// CPU time (user + system) this process has used so far, from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |n: usize| -> u64 {
        after_name
            .split_whitespace()
            .nth(n)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    let ticks = field(11) + field(12);
    Duration::from_millis(ticks * 10)
}

fn stats(mut samples: Vec<Duration>, wall: Duration, cpu: Duration) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        rps: samples.len() as f64 / wall.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        count: samples.len(),
        cpu_per_request: cpu / samples.len().max(1) as u32,
    }
}

async fn keep_alive(setup: Arc<Setup>, route: Route, conns: usize, per_conn: usize) -> Stats {
    let deadline = Instant::now() + DEADLINE;
    let mut senders = Vec::new();
    for _ in 0..conns {
        let mut sender = open(&setup, route).await;
        for _ in 0..50 {
            post(&setup, &mut sender).await;
        }
        senders.push(sender);
    }
    let started = Instant::now();
    let cpu_before = process_cpu();
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut sender| {
            let setup = setup.clone();
            tokio::spawn(async move {
                let mut samples = Vec::with_capacity(per_conn);
                for _ in 0..per_conn {
                    if Instant::now() > deadline {
                        break;
                    }
                    samples.push(post(&setup, &mut sender).await);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.expect("task"));
    }
    stats(
        samples,
        started.elapsed(),
        process_cpu().saturating_sub(cpu_before),
    )
}

async fn new_connections(setup: &Setup, route: Route, count: usize) -> Stats {
    let deadline = Instant::now() + DEADLINE;
    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        if Instant::now() > deadline {
            break;
        }
        let begun = Instant::now();
        let mut sender = open(setup, route).await;
        post(setup, &mut sender).await;
        samples.push(begun.elapsed());
    }
    stats(
        samples,
        started.elapsed(),
        process_cpu().saturating_sub(cpu_before),
    )
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn row(name: &str, s: &Stats) {
    let cpu_us = s.cpu_per_request.as_secs_f64() * 1e6;
    println!(
        "| {name} | {} | {:.0} | {} | {} | {cpu_us:.0} |",
        s.count,
        s.rps,
        ms(s.p50),
        ms(s.p99)
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = pki::TestPki::new();
        let origin = origin::start_tls(&pki).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let policy_dir = dir.path().join("policies");
        std::fs::create_dir_all(&policy_dir).expect("policy dir");
        std::fs::write(
            policy_dir.join("bench.yaml"),
            "rules:\n  - id: connect\n    trigger: connect\n    effect: allow\n  - id: requests\n    trigger: http.request\n    effect: allow\n  - id: llm\n    trigger: llm.request\n    effect: allow\n",
        )
        .expect("policy");
        let yaml = |name: &str, budget: &str| format!(
            "listen: 127.0.0.1:0\naudit:\n  file: {}\n  store: {}\npolicies:\n  dir: {}\nca:\n  dir: {}\nupstream:\n  extra_ca_files: [{}]\nnetwork:\n  allow_cidrs: [127.0.0.0/8]\nidentity:\n  allow_anonymous: true\nlog:\n  level: warn\nadmin:\n  listen: off\nbudget:\n{budget}",
            dir.path().join(format!("{name}.jsonl")).display(),
            dir.path().join(format!("{name}.sqlite")).display(),
            policy_dir.display(),
            dir.path().join("certs").display(),
            pki.ca_path.display()
        );
        let plain = yaml("plain", &format!("  store: {}\n", dir.path().join("plain-budget.sqlite").display()));
        let gatehouse = Gatehouse::start(Config::from_yaml(&plain, "bench.yaml").expect("config")).await.expect("start");
        let proxy = gatehouse.local_addr();
        let gatehouse_ca = std::fs::read_to_string(gatehouse.ca_cert_path()).expect("CA");
        let body = serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "x".repeat(4000)}],
        })
        .to_string();
        let setup = Arc::new(Setup {
            origin: origin.addr,
            path: "/answer",
            direct_tls: connector(&pki.ca_pem),
            proxy_tls: connector(&gatehouse_ca),
            body: Bytes::from(body),
        });
        let conns = env_usize("GH_BENCH_CONNS", 4);
        let per_conn = env_usize("GH_BENCH_REQUESTS", 2500);
        let fresh = env_usize("GH_BENCH_NEW_CONNS", 300);

        println!("POST {} B JSON, answer 1024 B; {conns} keep-alive connections x {per_conn} requests", setup.body.len());
        println!();
        println!("| phase | requests | req/s | p50 ms | p99 ms | process CPU µs/req |");
        println!("|---|---|---|---|---|---|");
        let direct = keep_alive(setup.clone(), Route::Direct, conns, per_conn).await;
        row("keep-alive, direct", &direct);
        let proxied = keep_alive(setup.clone(), Route::Proxy(proxy), conns, per_conn).await;
        row("keep-alive, through Gatehouse", &proxied);
        let single_direct = keep_alive(setup.clone(), Route::Direct, 1, per_conn).await;
        row("keep-alive x1, direct", &single_direct);
        let single_proxied = keep_alive(setup.clone(), Route::Proxy(proxy), 1, per_conn).await;
        row("keep-alive x1, through Gatehouse", &single_proxied);
        let new_direct = new_connections(&setup, Route::Direct, fresh).await;
        row("new TLS connection + 1 request, direct", &new_direct);
        let new_proxied = new_connections(&setup, Route::Proxy(proxy), fresh).await;
        row("new intercepted connection + 1 request", &new_proxied);
        println!();
        println!(
            "keep-alive ({conns} conns): throughput ratio proxied/direct {:.2}, p50 added {} ms",
            proxied.rps / direct.rps,
            ms(proxied.p50.saturating_sub(direct.p50))
        );
        let added_cpu = single_proxied.cpu_per_request.saturating_sub(single_direct.cpu_per_request);
        println!(
            "keep-alive (1 conn): CPU Gatehouse adds per request ~{:.0} µs (process CPU, proxied minus direct)",
            added_cpu.as_secs_f64() * 1e6
        );
        println!(
            "keep-alive (1 conn): p50 added {} ms, p99 added {} ms",
            ms(single_proxied.p50.saturating_sub(single_direct.p50)),
            ms(single_proxied.p99.saturating_sub(single_direct.p99))
        );
        println!(
            "new connection: p50 added {} ms (leaf cached)",
            ms(new_proxied.p50.saturating_sub(new_direct.p50))
        );

        // Metering: the same 4 KB OpenAI call (its answer reports usage) through a Gatehouse without
        // budgets (usage read and priced, nothing written) and through one whose budget covers
        // every call (reserve before, settle after, spend per agent and model), on SQLite and,
        // when GATEHOUSE_TEST_POSTGRES names a server, on PostgreSQL.
        let prose = serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "Summarise the open tickets for the refund team. ".repeat(82)}],
        })
        .to_string();
        let llm = Arc::new(Setup {
            path: "/bench/v1/chat/completions",
            body: Bytes::from(prose),
            ..clone_setup(&setup)
        });
        let budget = "  budgets:\n    - { id: bench, limit_usd: '1000000', window: total }\n";
        let sqlite = yaml("sqlite", &format!("  store: {}\n{budget}", dir.path().join("ledger.sqlite").display()));
        let metered = Gatehouse::start(Config::from_yaml(&sqlite, "bench.yaml").expect("config")).await.expect("start");
        let postgres = match std::env::var("GATEHOUSE_TEST_POSTGRES") {
            Ok(url) => {
                let shared = yaml("postgres", &format!("  store: {url}\n{budget}"));
                Some(Gatehouse::start(Config::from_yaml(&shared, "bench.yaml").expect("config")).await.expect("start"))
            }
            Err(_) => None,
        };
        println!();
        println!("| LLM call, 1 keep-alive connection | requests | req/s | p50 ms | p99 ms | process CPU µs/req |");
        println!("|---|---|---|---|---|---|");
        let llm_direct = keep_alive(llm.clone(), Route::Direct, 1, per_conn).await;
        row("direct", &llm_direct);
        let unmetered = keep_alive(llm.clone(), Route::Proxy(proxy), 1, per_conn).await;
        row("Gatehouse, no budget (usage read, no ledger)", &unmetered);
        let on_sqlite = keep_alive(llm.clone(), Route::Proxy(metered.local_addr()), 1, per_conn).await;
        row("Gatehouse, budget on SQLite (reserve + settle)", &on_sqlite);
        let on_postgres = match &postgres {
            Some(g) => {
                let stats = keep_alive(llm.clone(), Route::Proxy(g.local_addr()), 1, per_conn).await;
                row("Gatehouse, budget on PostgreSQL (reserve + settle)", &stats);
                Some(stats)
            }
            None => None,
        };
        println!();
        println!(
            "metering with a budget on SQLite adds p50 {} ms, p99 {} ms over no budget",
            ms(on_sqlite.p50.saturating_sub(unmetered.p50)),
            ms(on_sqlite.p99.saturating_sub(unmetered.p99))
        );
        if let Some(pg) = on_postgres {
            println!(
                "metering with a budget on PostgreSQL adds p50 {} ms, p99 {} ms over no budget",
                ms(pg.p50.saturating_sub(unmetered.p50)),
                ms(pg.p99.saturating_sub(unmetered.p99))
            );
        }
        if let Some(g) = postgres {
            g.shutdown().await;
        }
        metered.shutdown().await;
        gatehouse.shutdown().await;
    });
}

fn clone_setup(setup: &Setup) -> Setup {
    Setup {
        origin: setup.origin,
        path: setup.path,
        direct_tls: setup.direct_tls.clone(),
        proxy_tls: setup.proxy_tls.clone(),
        body: setup.body.clone(),
    }
}
