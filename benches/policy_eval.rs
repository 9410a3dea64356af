//! Criterion benchmark: judging the facts of a 4 KB LLM request against 200 rules (the bar in the
//! policy issue: p50 under 20 µs, p99 under 100 µs).
//!
//! Run: `cargo bench --bench policy_eval`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::policy::{AgentFacts, Facts, LlmFacts, PolicySet, Trigger, parse_policy_file};

/// 200 rules of the shapes policies have: host allowlists, scoped allows, conditions on model,
/// tokens, message size and headers, denies, monitors. With `spread`, the rules are spread over 25
/// providers and teams as in a real fleet policy, so a request meets a handful of candidates; without,
/// every conditional rule targets the request's own host (the worst case: 100 conditions to run).
fn rules(spread: bool) -> String {
    let mut yaml = String::from("rules:\n");
    for i in 0..200 {
        let host = if spread && i % 25 != 0 {
            format!("api{}.example.com", i % 25)
        } else {
            "api.openai.com".to_string()
        };
        let rule = match i % 8 {
            0 => format!(
                "  - id: r{i}\n    trigger: llm.request\n    match: {{ hosts: ['api{i}.example.com', '*.corp{i}.example'] }}\n    effect: allow\n"
            ),
            1 => format!(
                "  - id: r{i}\n    scope: {{ teams: [team{i}] }}\n    trigger: llm.request\n    effect: allow\n"
            ),
            2 => format!(
                "  - id: r{i}\n    trigger: llm.request\n    match: {{ hosts: [{host}] }}\n    when: \"llm.model == 'model-{i}' && llm.max_tokens > {i}\"\n    effect: hold\n"
            ),
            3 => format!(
                "  - id: r{i}\n    trigger: llm.request\n    match: {{ hosts: [{host}] }}\n    when: \"size(llm.messages) > {i} || request.headers['x-tenant'] == 't{i}'\"\n    effect: deny\n"
            ),
            4 => format!(
                "  - id: r{i}\n    scope: {{ agents: [agent{i}] }}\n    trigger: llm.request\n    effect: allow\n    priority: {i}\n"
            ),
            5 => format!(
                "  - id: r{i}\n    trigger: llm.request\n    match: {{ hosts: [{host}], methods: [POST], paths: ['/v1/**'] }}\n    when: \"agent.env == 'env{i}' && llm.stream\"\n    effect: allow\n    mode: monitor\n"
            ),
            6 => format!(
                "  - id: r{i}\n    trigger: http.request\n    match: {{ hosts: [{host}] }}\n    effect: allow\n"
            ),
            _ => format!(
                "  - id: r{i}\n    trigger: llm.request\n    match: {{ hosts: [{host}] }}\n    when: \"llm.tools.exists(t, t == 'tool{i}')\"\n    effect: deny\n"
            ),
        };
        yaml.push_str(&rule);
    }
    yaml.push_str("  - id: allow-openai\n    trigger: llm.request\n    match: { hosts: [api.openai.com] }\n    effect: allow\n");
    yaml
}

fn facts() -> Facts {
    let mut facts = Facts::sample(Trigger::LlmRequest);
    facts.agent = AgentFacts {
        id: "research-bot".into(),
        team: Some("research".into()),
        env: Some("prod".into()),
        execution: Some("exec-1".into()),
        ..Default::default()
    };
    facts.request.method = "POST".into();
    facts.request.scheme = "https".into();
    facts.request.host = "api.openai.com".into();
    facts.request.port = 443;
    facts.request.path = "/v1/chat/completions".into();
    facts
        .request
        .headers
        .insert("content-type".into(), "application/json".into());
    facts
        .request
        .headers
        .insert("x-tenant".into(), "acme".into());
    facts.llm = Some(LlmFacts {
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        stream: true,
        max_tokens: Some(512),
        messages: vec!["You are a helpful assistant.".into(), "x".repeat(4000)],
        tools: vec!["search".into(), "calculator".into()],
    });
    facts.tool = None;
    facts.data = None;
    facts
}

fn evaluate(c: &mut Criterion) {
    let facts = facts();
    for (spread, name) in [
        (
            true,
            "evaluate 200 rules (spread over 25 providers), 4 KB LLM request",
        ),
        (
            false,
            "evaluate 200 rules (100 conditions on the request's host), 4 KB LLM request",
        ),
    ] {
        let policy =
            PolicySet::new(parse_policy_file(&rules(spread), "bench.yaml").expect("rules parse"))
                .expect("unique ids");
        let verdict = policy.explain(&facts);
        assert_eq!(
            verdict.effect(),
            gatehouse::policy::Effect::Allow,
            "{verdict:?}"
        );
        c.bench_function(name, |b| b.iter(|| policy.evaluate(black_box(&facts))));
    }
    percentiles(&facts);
    matches(c, &facts);
    c.bench_function("facts to CEL activation, 4 KB LLM request", |b| {
        b.iter(|| {
            gatehouse::policy::Activation::new(black_box(&facts), gatehouse::policy::Reads::ALL)
        })
    });
}

/// `matches()`: a rule whose condition matches the path against a pattern, beside what the `cel`
/// crate's own `matches` did on every call (compile the pattern, then match).
fn matches(c: &mut Criterion, facts: &Facts) {
    const PATTERN: &str = "^/v1/(chat|responses|embeddings)(/[a-z_]+)?$";
    let yaml = format!(
        "rules:\n  - id: m\n    trigger: llm.request\n    when: \"request.path.matches('{PATTERN}')\"\n    effect: allow\n"
    );
    let policy = PolicySet::new(parse_policy_file(&yaml, "bench.yaml").expect("rule parses"))
        .expect("unique ids");
    assert_eq!(
        policy.evaluate(facts).effect(),
        gatehouse::policy::Effect::Allow
    );
    c.bench_function("a rule with matches(), pattern compiled at load", |b| {
        b.iter(|| policy.evaluate(black_box(facts)))
    });
    let path = facts.request.path.clone();
    c.bench_function(
        "the same match compiling its pattern per call (cel 0.15)",
        |b| {
            b.iter(|| {
                regex::Regex::new(black_box(PATTERN))
                    .map(|r| r.is_match(black_box(&path)))
                    .unwrap_or(false)
            })
        },
    );
}

/// p50 and p99 of single evaluations (criterion reports means), printed for BENCHMARKS.md.
fn percentiles(facts: &Facts) {
    for spread in [true, false] {
        let policy =
            PolicySet::new(parse_policy_file(&rules(spread), "bench.yaml").expect("rules parse"))
                .expect("unique ids");
        let mut samples: Vec<std::time::Duration> = (0..20_000)
            .map(|_| {
                let started = std::time::Instant::now();
                black_box(policy.evaluate(black_box(facts)));
                started.elapsed()
            })
            .collect();
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!(
            "spread={spread}: p50 {:?}, p99 {:?} over {} evaluations",
            at(0.5),
            at(0.99),
            samples.len()
        );
    }
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
