//! The direct evaluator against the `cel` interpreter: wherever it answers, it answers what the
//! interpreter does, and it answers for the shapes it is meant to know.

use super::activation::{Activation, Reads};
use super::condition::Condition;
use super::fast::Fast;
use super::*;

/// Conditions, and whether the direct evaluator must answer them on every request below that
/// has the fields they read (`false`: it may leave them to the interpreter).
const CONDITIONS: &[(&str, bool)] = &[
    ("llm.model == 'gpt-4o'", true),
    ("llm.model != 'gpt-4o'", true),
    ("llm.model < 'h' && llm.model >= 'claude'", true),
    ("has(llm.max_tokens) && llm.max_tokens > 1000", true),
    ("llm.max_tokens >= 512", false),
    ("llm.max_tokens + 1 > 512", false),
    ("llm.max_tokens < 512u", false),
    ("llm.max_tokens == 512.0", false),
    ("int(llm.max_tokens) > 3", false),
    ("agent.team == 'research'", false),
    ("agent.team in ['finance', 'research']", false),
    ("agent.team == null", false),
    ("agent.env == 'prod' && llm.stream", false),
    ("!llm.stream", true),
    ("llm.stream == true", true),
    ("size(llm.messages) > 1", true),
    ("llm.messages.size() == 2", true),
    ("llm.message_count > 2", true),
    ("size(request.path) > 5", true),
    ("size(agent.labels) == 0", true),
    ("request.headers['x-tenant'] == 'acme'", false),
    ("'x-tenant' in request.headers", true),
    ("request.headers['missing'] == 'a'", false),
    ("request.headers['missing'] == 'a' || true", true),
    ("false && request.headers['missing'] == 'a'", true),
    ("request.headers['missing'] == 'a' && false", true),
    (
        "request.headers['missing'] == 'a' || request.port == 443",
        false,
    ),
    ("llm.tools.exists(t, t == 'search')", true),
    ("llm.tools.all(t, t.startsWith('s'))", true),
    ("llm.tools.exists_one(t, t.contains('a'))", true),
    ("llm.messages.exists(m, m.contains('secret'))", true),
    (
        "llm.tools.exists(t, llm.messages.exists(m, m.contains(t)))",
        true,
    ),
    ("llm.tools.map(t, t + 'x').size() > 0", false),
    ("request.headers.exists(k, k == 'x-tenant')", false),
    ("request.path.matches('^/v1/')", true),
    ("matches(request.path, 'chat')", true),
    ("request.path.matches(request.headers['x-tenant'])", false),
    (
        "request.path.startsWith('/v1') && request.path.endsWith('completions')",
        true,
    ),
    ("request.port == 443", true),
    ("request.host_is_ip", true),
    ("request.method == 'POST' ? llm.stream : false", true),
    ("agent.labels['tier'] == 'gold'", false),
    ("has(agent.labels.tier)", true),
    ("1 == 1", true),
    ("'a' == 1", false),
    ("size(llm.messages) > 0 && llm.messages[0] == 'hi'", false),
    ("size(llm.messages) > 0 && llm.messages[5] == 'hi'", false),
    ("request.method in ['GET', 'HEAD']", true),
    ("!(agent.id == 'dev')", true),
    ("agent.execution.startsWith('exec')", false),
    ("request.query['q'] == 'x'", false),
    ("'ssn' in pii.kinds || pii.total > 3", true),
    ("destination.country == 'SE' && destination.eu", true),
    ("body.size > 100 && body.inspected", true),
    ("request.method == 'POST' ? request.path : false", false),
];

fn requests() -> Vec<Facts> {
    let base = || {
        let mut facts = Facts::sample(Trigger::LlmRequest);
        facts.agent.id = "research-bot".into();
        facts.request.method = "POST".into();
        facts.request.host = "api.openai.com".into();
        facts.request.port = 443;
        facts.request.path = "/v1/chat/completions".into();
        facts
    };
    let mut all = Vec::new();
    let mut facts = base();
    facts.agent.team = Some("research".into());
    facts.agent.env = Some("prod".into());
    facts
        .request
        .headers
        .insert("x-tenant".into(), "acme".into());
    facts.llm = Some(LlmFacts {
        provider: "openai".into(),
        model: "gpt-4o".into(),
        stream: true,
        max_tokens: Some(512),
        messages: vec!["hi".into(), "a secret search".into()],
        tools: vec!["search".into(), "calculator".into()],
    });
    facts.pii.kinds = vec!["ssn".into()];
    facts.pii.total = 1;
    facts.destination.country = "SE".into();
    facts.destination.eu = true;
    facts.body.size = 4096;
    facts.body.inspected = true;
    all.push(facts);

    let mut facts = base();
    facts.agent.team = None;
    facts.agent.env = None;
    facts.agent.execution = None;
    facts.agent.labels.insert("tier".into(), "gold".into());
    facts.request.method = "GET".into();
    facts.request.path = "/v2/ünïcödé/路径".into();
    facts
        .request
        .headers
        .insert("x-tenant".into(), "^/v2/".into());
    facts.request.query.insert("q".into(), "x".into());
    facts.llm = Some(LlmFacts {
        provider: "anthropic".into(),
        model: "claude-sonnet-4-5".into(),
        stream: false,
        max_tokens: None,
        messages: (0..300).map(|i| format!("message {i}")).collect(),
        tools: vec![],
    });
    all.push(facts);

    let mut facts = base();
    facts.llm = None;
    facts.request.port = 8443;
    facts.request.host_is_ip = true;
    all.push(facts);
    all
}

#[test]
fn the_direct_evaluator_answers_as_the_interpreter_does() {
    let mut answered = 0;
    for facts in requests() {
        let activation = Activation::new(&facts, Reads::ALL);
        for (source, must_answer) in CONDITIONS {
            let condition = Condition::compile(source, Trigger::LlmRequest)
                .unwrap_or_else(|e| panic!("{source}: {e}"));
            let interpreted = condition.interpret(&activation);
            let program = cel::Program::compile(source).expect("compiles");
            let direct = Fast::compile(program.expression()).and_then(|f| f.eval(&activation));
            match direct {
                Some(answer) => {
                    answered += 1;
                    assert_eq!(Ok(answer), interpreted, "{source} on {facts:?}");
                }
                None => assert!(
                    !must_answer || facts.llm.is_none() && source.contains("llm."),
                    "{source}: not answered directly (interpreter: {interpreted:?})"
                ),
            }
            assert_eq!(condition.eval(&activation), interpreted, "{source}");
        }
    }
    assert!(answered > 80, "{answered}");
}

/// `body`, `pii` and `response` read through another variable's field names (a typo that loads:
/// the load-time check lets a missing key pass) fail as the interpreter says, and are not read as
/// whatever field sits at that name's index in the other variable (81821fd~1 read
/// `response.size` as `response.status`, `body.kinds` as `body.size`, `pii.body` as `pii.total`).
#[test]
fn another_variables_field_names_are_not_read_by_their_index() {
    let mut facts = Facts::sample(Trigger::HttpResponse);
    facts.body.size = 5;
    facts.body.content_type = String::new();
    facts.pii = PiiFacts::from_counts([("email".to_string(), 3)].into());
    let response = facts.response.as_mut().expect("a response");
    response.status = 500;
    let activation = Activation::new(&facts, Reads::ALL);
    for source in [
        "body.kinds == 5",
        "body.counts == ''",
        "body.total == {}",
        "pii.body == 3",
        "pii.headers == {'email': 3}",
        "response.size >= 400",
        "response.content_type == {}",
    ] {
        // Refused at load now; below the load check, the direct evaluator still must not read
        // them by index.
        let refused = Condition::compile(source, Trigger::HttpResponse);
        assert!(
            matches!(refused, Err(ConditionError::UnknownField { .. })),
            "{source}: {refused:?}"
        );
        let program = cel::Program::compile(source).expect("compiles");
        let direct = Fast::compile(program.expression()).and_then(|f| f.eval(&activation));
        assert_eq!(direct, None, "{source}");
    }
}

#[test]
fn a_field_its_object_does_not_have_is_refused_at_load() {
    let refused = [
        (
            "response.status_code >= 400",
            Trigger::HttpResponse,
            "response",
            "status_code",
        ),
        (
            "has(request.hostname)",
            Trigger::HttpRequest,
            "request",
            "hostname",
        ),
        (
            "response.pii.totl > 0",
            Trigger::HttpResponse,
            "response.pii",
            "totl",
        ),
        (
            "response.body.sise > 0",
            Trigger::HttpResponse,
            "response.body",
            "sise",
        ),
        ("llm.modle == 'x'", Trigger::LlmRequest, "llm", "modle"),
        (
            "request.headers.exists(h, h == 'x') && agent.tem == 'a'",
            Trigger::HttpRequest,
            "agent",
            "tem",
        ),
    ];
    for (source, trigger, object, field) in refused {
        match Condition::compile(source, trigger) {
            Err(ConditionError::UnknownField {
                object: o,
                field: f,
                known,
            }) => {
                assert_eq!((o.as_str(), f.as_str()), (object, field), "{source}");
                assert!(!known.is_empty(), "{source}");
            }
            other => panic!("{source}: {other:?}"),
        }
    }
    let loaded = [
        (
            "response.status >= 400 && response.pii.total == 0",
            Trigger::HttpResponse,
        ),
        (
            "response.body.size > 0 && has(response.headers)",
            Trigger::HttpResponse,
        ),
        (
            "agent.labels.tier == 'gold' || request.headers['x-a'] == 'b'",
            Trigger::HttpRequest,
        ),
        (
            "[{'foo': 1}].exists(pii, pii.foo == 1)",
            Trigger::HttpRequest,
        ),
        (
            "has(llm.max_tokens) && llm.model == 'x'",
            Trigger::LlmRequest,
        ),
    ];
    for (source, trigger) in loaded {
        if let Err(e) = Condition::compile(source, trigger) {
            panic!("{source}: {e}");
        }
    }
}
