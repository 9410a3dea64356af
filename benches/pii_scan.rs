//! Criterion benchmark of the PII scanner: throughput on 1 MB of ordinary prose (bar: 1 GB/s per
//! core), of chat transcript with an item about every 400 bytes, and of text dense with personal
//! data (bar: 200 MB/s per core); and a 4 KB LLM request scanned and
//! redacted end to end (bar: p99 under 50 µs, printed after the criterion runs).
//!
//! Run: `cargo bench --bench pii_scan`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gatehouse::pii::{Redaction, Scanner, ScannerConfig, Style, Vault, redact_json};

/// A small deterministic generator, so every run scans the same text.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() % items.len()]
    }
}

const PROSE: &[&str] = &[
    "Sure, I can help you with that request. ",
    "The customer wrote back yesterday about the delayed order and asked for an update. ",
    "Please summarise the following conversation in three bullet points. ",
    "Our Q3 revenue grew 12% compared to last year, driven by 3 new markets. ",
    "The deployment on 2024-05-17 failed at 10:42 because version 2.3.1 lacked a migration. ",
    "Can you draft a polite reply that explains the refund policy? ",
    "Ticket 48213 is still open; the agent escalated it to tier 2 on Monday. ",
    "Here is the stack trace from the worker process, line 214 in scheduler.rs. ",
    "The meeting moved to room 4 at 3pm, and the budget is $25,000 for the quarter. ",
    "I think the best approach is to retry with exponential backoff up to 5 times. ",
];

const PII: &[&str] = &[
    "Contact me at maria.gonzalez@example.com. ",
    "My card is 4111 1111 1111 1111, expiry 12/27. ",
    "Call +44 20 7946 0958 after lunch. ",
    "IBAN DE89 3704 0044 0532 0130 00 for the transfer. ",
    "SSN 123-45-6789 was on the form. ",
    "The server at 192.168.10.24 keeps timing out. ",
    "Use key sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF for now. ",
];

/// About `size` bytes of text: prose with a personal data item in one sentence of `every`
/// (0: none, 1: every sentence).
fn text(size: usize, every: usize) -> String {
    let mut rng = Lcg(7);
    let mut text = String::with_capacity(size + 200);
    while text.len() < size {
        let draw = rng.next();
        text.push_str(if every > 0 && draw.is_multiple_of(every) {
            rng.pick(PII)
        } else {
            rng.pick(PROSE)
        });
    }
    text
}

/// A 4 KB chat-completions request with a handful of personal data items.
fn llm_request() -> String {
    let mut messages = Vec::new();
    let mut rng = Lcg(11);
    let mut size = 0;
    while size < 3800 {
        let mut content = String::new();
        for _ in 0..4 {
            content.push_str(if rng.next().is_multiple_of(5) {
                rng.pick(PII)
            } else {
                rng.pick(PROSE)
            });
        }
        size += content.len() + 30;
        messages.push(serde_json::json!({"role": "user", "content": content}));
    }
    serde_json::json!({"model": "gpt-4o", "messages": messages, "max_tokens": 512}).to_string()
}

fn bench(c: &mut Criterion) {
    let scanner = Scanner::new(&ScannerConfig::default()).expect("scanner");
    // Ordinary prose (numbers, dates, versions, no personal data; bar 1 GB/s), a transcript
    // with an item about every 400 bytes, and text dense with it (every sentence; bar 200 MB/s).
    for (name, every) in [("prose", 0), ("transcript", 6), ("dense", 1)] {
        let text = text(1 << 20, every);
        let mut group = c.benchmark_group("pii");
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("scan 1 MB {name}"), |b| {
            b.iter(|| black_box(scanner.scan(black_box(&text))))
        });
        group.finish();
    }

    let request = llm_request();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"bench");
    let vault = Vault::new(16, 1_000_000, Duration::from_secs(3600));
    let run = || {
        let mut doc: serde_json::Value = serde_json::from_str(&request).expect("json");
        let rules = vec![(vec!["any".to_string()], Style::Mask)];
        let mut redaction = Redaction::new(rules, &key, &vault, "bench", Instant::now());
        redact_json(&scanner, &mut doc, &mut redaction).expect("redacts");
        serde_json::to_vec(&doc).expect("serialises")
    };
    c.bench_function("pii scan+redact 4 KB LLM request", |b| {
        b.iter(|| black_box(run()))
    });

    let mut samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let started = Instant::now();
            black_box(run());
            started.elapsed()
        })
        .collect();
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!(
        "4 KB request ({} bytes) parse+scan+redact+serialise: p50 {:?}, p99 {:?} over {} runs",
        request.len(),
        at(0.5),
        at(0.99),
        samples.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
