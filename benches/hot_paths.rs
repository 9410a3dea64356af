//! Criterion benchmarks of the per-request work Gatehouse does in-process: authenticating the
//! agent, checking a destination, matching tunnel hosts, fetching a cached leaf (and minting one),
//! stripping hop-by-hop headers and shaping the logged path.
//!
//! Run: `cargo bench --bench hot_paths`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::audit::path_shape;
use gatehouse::config::{AgentConfig, HostPattern, HostPatterns, IdentityConfig, Secret};
use gatehouse::proxy::executions::ExecutionKey;
use gatehouse::proxy::guard::AddressGuard;
use gatehouse::proxy::headers::strip_hop_by_hop;
use gatehouse::proxy::identity::Agents;
use gatehouse::proxy::target::Host;
use gatehouse::proxy::tls::{CertificateAuthority, LeafCache};
use http::{HeaderMap, HeaderValue};

fn identity(c: &mut Criterion) {
    let keys = tempfile::tempdir().unwrap();
    let key = ExecutionKey::load_or_create(keys.path()).unwrap();
    let agents = Agents::new(
        &IdentityConfig {
            allow_anonymous: false,
            signed_executions: Default::default(),
            max_new_executions_per_hour: 1000,
            agents: (0..50)
                .map(|i| AgentConfig {
                    id: format!("agent-{i}"),
                    team: Some("team".into()),
                    env: Some("prod".into()),
                    labels: BTreeMap::new(),
                    residency: None,
                    token: Secret::new(format!("token-{i}-0123456789abcdef")),
                })
                .collect(),
        },
        key,
    );
    let encoded = base64::engine::general_purpose::STANDARD
        .encode("agent-17+exec-1234:token-17-0123456789abcdef");
    let header = HeaderValue::from_str(&format!("Basic {encoded}")).unwrap();
    c.bench_function("authenticate Basic agent+execution", |b| {
        b.iter(|| agents.authenticate(black_box(Some(&header))).unwrap())
    });
}

fn guard(c: &mut Criterion) {
    let mut guard = AddressGuard::new(vec![
        "10.20.0.0/16".parse().unwrap(),
        "fd00::/8".parse().unwrap(),
    ]);
    guard.add_own_listener("127.0.0.1:8080".parse().unwrap());
    let public = "104.18.6.192:443".parse().unwrap();
    let metadata = "169.254.169.254:80".parse().unwrap();
    c.bench_function("guard check (global address)", |b| {
        b.iter(|| guard.check(black_box(public)))
    });
    c.bench_function("guard check (refused address)", |b| {
        b.iter(|| guard.check(black_box(metadata)))
    });

    let patterns = HostPatterns(
        (0..20)
            .map(|i| HostPattern::parse(&format!("*.pinned-{i}.example.com")).unwrap())
            .collect(),
    );
    c.bench_function("tunnel host match (20 patterns, miss)", |b| {
        b.iter(|| patterns.matches(black_box("api.openai.com")))
    });
}

fn tls(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Arc::new(CertificateAuthority::create(dir.path()).unwrap());
    let cache = LeafCache::new(
        ca.clone(),
        1000,
        Duration::from_secs(3600),
        Duration::from_secs(86400),
    )
    .unwrap();
    let host = Host::Name("api.openai.com".into());
    cache.server_config(&host).unwrap();
    c.bench_function("leaf cache hit", |b| {
        b.iter(|| cache.server_config(black_box(&host)).unwrap())
    });

    let tiny =
        LeafCache::new(ca, 1, Duration::from_secs(3600), Duration::from_secs(86400)).unwrap();
    let hosts = [
        Host::Name("a.example.com".into()),
        Host::Name("b.example.com".into()),
    ];
    let mut i = 0usize;
    c.bench_function("leaf mint (fresh P-256 key, signed by the CA)", |b| {
        b.iter(|| {
            i += 1;
            tiny.server_config(&hosts[i % 2]).unwrap()
        })
    });
}

fn request_hygiene(c: &mut Criterion) {
    let mut template = HeaderMap::new();
    for (k, v) in [
        ("host", "api.openai.com"),
        ("authorization", "Bearer sk-xxxx"),
        ("content-type", "application/json"),
        ("content-length", "4096"),
        ("connection", "keep-alive"),
        ("proxy-authorization", "Basic abc"),
        ("user-agent", "OpenAI/Python 1.50.0"),
        ("accept", "application/json"),
    ] {
        template.insert(k, HeaderValue::from_static(v));
    }
    c.bench_function("strip hop-by-hop headers", |b| {
        b.iter_batched(
            || template.clone(),
            |mut headers| strip_hop_by_hop(&mut headers, false),
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("path shape for the log", |b| {
        b.iter(|| path_shape(black_box("/v1beta/models/gemini-1.5-pro:generateContent")))
    });
}

/// Destination lookup: the config table, then MaxMind's test database (a hit, a miss, IPv6).
/// The database comes from `GATEHOUSE_TEST_MMDB` or `../shared/data` (see `scripts/test`).
fn geo(c: &mut Criterion) {
    use gatehouse::geo::{CountryTable, Geo, MmdbSource};
    let path = std::env::var("GATEHOUSE_TEST_MMDB").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/GeoIP2-Country-Test.mmdb"
        )
        .into()
    });
    let bytes = std::fs::read(&path).expect("test database");
    let database = MmdbSource::from_bytes(bytes, &path).expect("test database");
    let table = CountryTable::new(vec![("10.0.0.0/8".parse().expect("net"), "DE".into())]);
    let geo = Geo::new(table, Some(database));
    for (name, ip) in [
        ("geo: table hit", "10.1.2.3"),
        ("geo: database hit (SE)", "89.160.20.128"),
        ("geo: database miss", "214.1.1.1"),
        ("geo: database hit IPv6 (JP)", "2001:218::1"),
    ] {
        let ip: std::net::IpAddr = ip.parse().expect("ip");
        c.bench_function(name, |b| b.iter(|| black_box(geo.locate(black_box(ip)))));
    }
}

fn tokens(c: &mut Criterion) {
    let prose = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Summarise the open tickets for the refund team. ".repeat(80)}],
    })
    .to_string();
    let one_word = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "x".repeat(4000)}],
    })
    .to_string();
    let cap = gatehouse::budget::TOKENIZER_MAX_BYTES;
    let prose_at_cap = "Summarise the open tickets for the refund team. "
        .repeat(cap / 49)
        .into_bytes();
    let word_at_cap = "x".repeat(cap - 1);
    let huge_word = "x".repeat(1 << 20);
    c.bench_function("input tokens: 4 KB of prose (o200k)", |b| {
        b.iter(|| gatehouse::budget::input_tokens("gpt-4o", prose.as_bytes()))
    });
    c.bench_function("input tokens: one 4000-byte word", |b| {
        b.iter(|| gatehouse::budget::input_tokens("gpt-4o", one_word.as_bytes()))
    });
    c.bench_function("input tokens: prose up to the cap (64 KiB)", |b| {
        b.iter(|| gatehouse::budget::input_tokens("gpt-4o", &prose_at_cap))
    });
    c.bench_function("input tokens: one word up to the cap (64 KiB)", |b| {
        b.iter(|| gatehouse::budget::input_tokens("gpt-4o", word_at_cap.as_bytes()))
    });
    c.bench_function(
        "input tokens: one 1 MiB word (over the cap: bounded)",
        |b| b.iter(|| gatehouse::budget::input_tokens("gpt-4o", huge_word.as_bytes())),
    );
}

criterion_group!(benches, identity, guard, tls, request_hygiene, geo, tokens);
criterion_main!(benches);
