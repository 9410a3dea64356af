//! Golden tables for resolution and for policy-file errors.

use super::*;

const RULES: &str = r#"
rules:
  - id: allow-openai
    trigger: http.request
    match: { hosts: [api.openai.com], methods: [POST], paths: ["/v1/**"] }
    effect: allow
    redact: { kinds: [email], style: mask }
  - id: deny-metadata-everywhere
    trigger: http.request
    match: { hosts: ["*.internal"] }
    effect: deny
    message: internal hosts are off limits
  - id: finance-payments-allow
    scope: { agents: [ledger-bot] }
    trigger: http.request
    match: { hosts: [api.stripe.com] }
    effect: allow
  - id: payments-over-1000-hold
    trigger: http.request
    match: { hosts: [api.stripe.com] }
    when: "int(request.headers['x-amount']) > 1000"
    effect: hold
  - id: payments-allow
    trigger: http.request
    match: { hosts: [api.stripe.com] }
    effect: allow
  - id: team-research-allow
    scope: { teams: [research] }
    trigger: http.request
    match: { hosts: [api.stripe.com] }
    effect: allow
    priority: 5
  - id: team-research-hold
    scope: { teams: [research] }
    trigger: http.request
    match: { hosts: [api.stripe.com] }
    effect: hold
    priority: 5
  - id: prod-env-low-priority-deny-monitor
    scope: { environments: [prod] }
    trigger: http.request
    match: { hosts: [api.openai.com] }
    effect: deny
    mode: monitor
  - id: broken-condition-allow
    trigger: http.request
    match: { hosts: [broken.example.com] }
    when: "request.headers['missing'] == 'x'"
    effect: allow
  - id: broken-condition-deny
    trigger: http.request
    match: { hosts: [broken-deny.example.com] }
    when: "request.headers['missing'] == 'x'"
    effect: deny
  - id: broken-allow-twin
    trigger: http.request
    match: { hosts: [broken-deny.example.com] }
    effect: allow
  - id: ledger-bot-internal-allow
    scope: { agents: [ledger-bot] }
    trigger: http.request
    match: { hosts: ["*.internal"] }
    effect: allow
  - id: prod-reports-allow
    scope: { environments: [prod] }
    trigger: http.request
    match: { hosts: [reports.example.com] }
    effect: allow
  - id: everyone-reports-hold
    trigger: http.request
    match: { hosts: [reports.example.com] }
    effect: hold
  - id: low-priority-hold
    trigger: http.request
    match: { hosts: [prio.example.com] }
    effect: hold
    priority: 1
  - id: high-priority-allow
    trigger: http.request
    match: { hosts: [prio.example.com] }
    effect: allow
    priority: 9
  - id: monitor-allow-only
    trigger: http.request
    match: { hosts: [monitored.example.com] }
    effect: allow
    mode: monitor
  - id: redact-phones-too
    trigger: http.request
    match: { hosts: [api.openai.com] }
    effect: allow
    redact: { kinds: [phone], style: mask }
  - id: redact-only-everywhere
    trigger: http.request
    match: { hosts: [redact.example.com, redact-denied.example.com] }
    effect: redact
    redact: { kinds: [iban], style: hash }
  - id: redact-host-allow
    trigger: http.request
    match: { hosts: [redact.example.com] }
    effect: allow
"#;

fn policy() -> PolicySet {
    PolicySet::new(parse_policy_file(RULES, "golden.yaml").unwrap()).unwrap()
}

struct Case {
    name: &'static str,
    agent: &'static str,
    team: Option<&'static str>,
    env: Option<&'static str>,
    method: &'static str,
    host: &'static str,
    path: &'static str,
    amount: Option<&'static str>,
    effect: Effect,
    deciding: &'static [&'static str],
    obligations: usize,
    monitored: &'static [&'static str],
}

const BASE: Case = Case {
    name: "",
    agent: "bot",
    team: None,
    env: None,
    method: "POST",
    host: "api.openai.com",
    path: "/v1/chat/completions",
    amount: None,
    effect: Effect::Allow,
    deciding: &[],
    obligations: 0,
    monitored: &[],
};

fn facts(case: &Case) -> Facts {
    let mut facts = Facts::sample(Trigger::HttpRequest);
    facts.llm = None;
    facts.tool = None;
    facts.data = None;
    facts.agent = AgentFacts {
        id: case.agent.into(),
        team: case.team.map(Into::into),
        env: case.env.map(Into::into),
        ..Default::default()
    };
    facts.request.method = case.method.into();
    facts.request.host = case.host.into();
    facts.request.path = case.path.into();
    if let Some(amount) = case.amount {
        facts
            .request
            .headers
            .insert("x-amount".into(), amount.into());
    }
    facts
}

#[test]
fn resolution_golden_table() {
    let cases = [
        Case {
            name: "nothing applies: default deny",
            host: "unknown.example.com",
            effect: Effect::Deny,
            ..BASE
        },
        Case {
            name: "allow with obligations of every applying rule; monitor rule only reported",
            env: Some("prod"),
            deciding: &["allow-openai", "redact-phones-too"],
            obligations: 2,
            monitored: &["prod-env-low-priority-deny-monitor"],
            ..BASE
        },
        Case {
            name: "a redact rule adds its obligation to what another rule allows",
            host: "redact.example.com",
            deciding: &["redact-host-allow"],
            obligations: 1,
            ..BASE
        },
        Case {
            name: "a redact rule alone allows nothing",
            host: "redact-denied.example.com",
            effect: Effect::Deny,
            ..BASE
        },
        Case {
            name: "path glob misses: only the host-wide rule applies",
            path: "/v2/x",
            deciding: &["redact-phones-too"],
            obligations: 1,
            ..BASE
        },
        Case {
            name: "an agent-scoped allow cannot loosen a global deny",
            agent: "ledger-bot",
            host: "ledger.internal",
            effect: Effect::Deny,
            deciding: &["deny-metadata-everywhere"],
            ..BASE
        },
        Case {
            name: "environment rank beats global",
            env: Some("prod"),
            host: "reports.example.com",
            deciding: &["prod-reports-allow"],
            ..BASE
        },
        Case {
            name: "outside the environment the global hold decides",
            env: Some("staging"),
            host: "reports.example.com",
            effect: Effect::Hold,
            deciding: &["everyone-reports-hold"],
            ..BASE
        },
        Case {
            name: "higher priority wins inside a rank, even over hold",
            host: "prio.example.com",
            deciding: &["high-priority-allow"],
            ..BASE
        },
        Case {
            name: "a monitor-mode allow never turns the default deny into an allow",
            host: "monitored.example.com",
            effect: Effect::Deny,
            monitored: &["monitor-allow-only"],
            ..BASE
        },
        Case {
            name: "a deny wins from any scope, with no obligations",
            agent: "ledger-bot",
            host: "db.internal",
            effect: Effect::Deny,
            deciding: &["deny-metadata-everywhere"],
            ..BASE
        },
        Case {
            name: "global hold beats global allow at equal rank",
            host: "api.stripe.com",
            amount: Some("5000"),
            effect: Effect::Hold,
            deciding: &["payments-over-1000-hold"],
            ..BASE
        },
        Case {
            name: "below the threshold the allow decides",
            host: "api.stripe.com",
            amount: Some("10"),
            deciding: &["payments-allow"],
            ..BASE
        },
        Case {
            name: "an agent-scoped allow relaxes the global hold",
            agent: "ledger-bot",
            host: "api.stripe.com",
            amount: Some("5000"),
            deciding: &["finance-payments-allow"],
            ..BASE
        },
        Case {
            name: "team rank: priority tie, hold beats allow",
            team: Some("research"),
            host: "api.stripe.com",
            amount: Some("5"),
            effect: Effect::Hold,
            deciding: &["team-research-hold"],
            ..BASE
        },
        Case {
            name: "a failing condition never helps the agent (allow does not apply)",
            host: "broken.example.com",
            effect: Effect::Deny,
            ..BASE
        },
        Case {
            name: "a failing condition on a deny still denies",
            host: "broken-deny.example.com",
            effect: Effect::Deny,
            deciding: &["broken-condition-deny"],
            ..BASE
        },
        Case {
            name: "a failing condition on the hold rule applies it",
            host: "api.stripe.com",
            amount: None,
            effect: Effect::Hold,
            deciding: &["payments-over-1000-hold"],
            ..BASE
        },
    ];
    let policy = policy();
    for case in &cases {
        let verdict = policy.evaluate(&facts(case));
        assert_eq!(verdict.effect(), case.effect, "{}: {verdict:?}", case.name);
        assert_eq!(verdict.deciding, case.deciding, "{}", case.name);
        assert_eq!(
            verdict.obligations().len(),
            case.obligations,
            "{}",
            case.name
        );
        let monitored: Vec<&str> = verdict
            .monitored
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(monitored, case.monitored, "{}", case.name);
    }
}

#[test]
fn deny_messages_and_explanations_are_carried() {
    let policy = policy();
    let case = Case {
        host: "db.internal",
        ..BASE
    };
    let verdict = policy.explain(&facts(&case));
    assert_eq!(
        verdict.message.as_deref(),
        Some("internal hosts are off limits")
    );
    let scope_miss = verdict
        .considered
        .iter()
        .find(|c| c.rule == "finance-payments-allow")
        .unwrap();
    assert_eq!(scope_miss.outcome, Consideration::OutOfScope);
    let host_miss = verdict
        .considered
        .iter()
        .find(|c| c.rule == "allow-openai")
        .unwrap();
    assert_eq!(host_miss.outcome, Consideration::NoMatch(MatchMiss::Host));
    assert!(!verdict.is_default_deny());
}

#[test]
fn rules_only_see_their_trigger() {
    let policy = policy();
    let mut connect = facts(&BASE);
    connect.trigger = Trigger::Connect;
    let verdict = policy.explain(&connect);
    assert!(verdict.is_default_deny());
    assert!(verdict.considered.is_empty());
}

#[test]
fn policy_file_errors_name_file_line_and_rule() {
    let table: &[(&str, &str)] = &[
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: permit\n",
            "p.yaml:4: rule `a`: unknown effect `permit`",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.requst\n    effect: allow\n",
            "p.yaml:3: rule `a`: unknown trigger `http.requst`",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    when: \"reqest.host == 'x'\"\n",
            "p.yaml:5: rule `a`: when: unknown variable `reqest`",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    when: \"request.hots == 'x'\"\n",
            "p.yaml:5: rule `a`: when: `request` has no field `hots` (its fields: method, scheme, host",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    when: \"request.port\"\n",
            "p.yaml:5: rule `a`: when: must evaluate to a boolean",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    when: \"request.host ==\"\n",
            "p.yaml:5: rule `a`: when: syntax error",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    mode: audit\n",
            "p.yaml:5: rule `a`: unknown mode",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    match: { paths: ['/v1/[x'] }\n",
            "p.yaml:5: rule `a`: match.paths",
        ),
        (
            "rules:\n  - id: a\n    trigger: http.request\n    effect: allow\n    efect: deny\n",
            "p.yaml:5: rule `efect`: unknown field",
        ),
    ];
    for (yaml, expected) in table {
        let err = parse_policy_file(yaml, "p.yaml").unwrap_err().to_string();
        assert!(err.starts_with(expected), "\n got: {err}\nwant: {expected}");
    }
    let twice = "rules:\n  - id: a\n    trigger: connect\n    effect: allow\n  - id: a\n    trigger: connect\n    effect: deny\n";
    let err = PolicySet::new(parse_policy_file(twice, "p.yaml").unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule id `a` is used twice: p.yaml:2 and p.yaml:5"
    );
}

#[test]
fn responses_pass_unless_a_response_rule_refuses_them() {
    let rules = r#"
rules:
  - id: deny-leaky-answers
    trigger: http.response
    when: "response.status == 200 && 'email' in response.pii.kinds"
    effect: deny
  - id: mask-answers
    trigger: http.response
    effect: redact
    redact: { kinds: [phone] }
"#;
    let set = PolicySet::new(parse_policy_file(rules, "r.yaml").unwrap()).unwrap();
    let mut facts = Facts::sample(Trigger::HttpResponse);
    facts.response.as_mut().unwrap().status = 200;
    let verdict = set.evaluate(&facts);
    assert_eq!(
        verdict.effect(),
        Effect::Allow,
        "no default deny for answers"
    );
    assert!(verdict.deciding.is_empty());
    assert_eq!(verdict.obligations().len(), 1);
    facts.response.as_mut().unwrap().pii = PiiFacts::from_counts([("email".to_string(), 1)].into());
    let verdict = set.evaluate(&facts);
    assert_eq!(verdict.effect(), Effect::Deny);
    assert_eq!(verdict.deciding, vec!["deny-leaky-answers".to_string()]);

    let reads_response_on_request = "rules:\n  - id: r\n    trigger: http.request\n    when: \"response.status == 200\"\n    effect: deny\n";
    let err = parse_policy_file(reads_response_on_request, "bad.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.yaml:4") && err.contains("http.response"),
        "{err}"
    );
}

#[test]
fn uninspected_bodies_pass_only_where_a_deciding_rule_allows_them() {
    let rules = r#"
rules:
  - id: allow-all
    trigger: http.request
    effect: allow
  - id: uploads
    trigger: http.request
    match: { paths: ["/uploads/**"] }
    effect: allow
    priority: 5
    allow_uninspected: true
"#;
    let set = PolicySet::new(parse_policy_file(rules, "u.yaml").unwrap()).unwrap();
    let mut facts = Facts::sample(Trigger::HttpRequest);
    facts.llm = None;
    facts.tool = None;
    facts.data = None;
    facts.body.inspected = false;
    facts.request.path = "/v1/x".into();
    let verdict = set.evaluate(&facts);
    assert_eq!(
        (verdict.effect(), verdict.deciding.len()),
        (Effect::Deny, 0)
    );
    facts.request.path = "/uploads/a".into();
    let verdict = set.evaluate(&facts);
    assert_eq!(verdict.effect(), Effect::Allow);
    assert_eq!(verdict.deciding, vec!["uploads".to_string()]);
    let misplaced = "rules:\n  - id: r\n    trigger: llm.request\n    effect: allow\n    allow_uninspected: true\n";
    let err = parse_policy_file(misplaced, "m.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("m.yaml:5") && err.contains("allow_uninspected"),
        "{err}"
    );
}
