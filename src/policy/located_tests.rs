//! Judging a host before its destination is known: refused without a look-up only when every
//! destination would be refused, and never a verdict that differs from the full evaluation.

use super::*;

const RULES: &str = r#"
rules:
  - id: eu-only
    trigger: connect
    match: { hosts: ["*.allowed.example"] }
    when: "destination.eu"
    effect: allow
  - id: held-private
    scope: { agents: [ops] }
    trigger: connect
    when: "destination.private"
    effect: hold
  - id: no-leaks
    trigger: connect
    when: "request.host.startsWith('leak')"
    effect: deny
  - id: named-partner
    trigger: connect
    match: { hosts: [partner.example] }
    effect: allow
  - id: watch-everything
    trigger: connect
    effect: deny
    mode: monitor
  - id: corp-private
    scope: { agents: [corp] }
    trigger: connect
    when: "request.host.endsWith('.corp.example') && destination.private"
    effect: allow
  - id: corp-private-reversed
    scope: { agents: [corp2] }
    trigger: connect
    when: "destination.private && request.host.endsWith('.corp.example')"
    effect: allow
  - id: corp-eu-or-named
    scope: { agents: [corp3] }
    trigger: connect
    when: "destination.eu || request.host == 'named.example'"
    effect: allow
  - id: broken-deny
    trigger: connect
    match: { hosts: [broken.example] }
    when: "request.headers['missing'] == 'x'"
    effect: deny
"#;

fn connect(agent: &str, host: &str) -> Facts {
    let request = RequestFacts::new(("CONNECT", ""), (host.into(), 443), "", None, None);
    let agent = AgentFacts {
        id: agent.into(),
        ..AgentFacts::default()
    };
    Facts::new(Trigger::Connect, agent, request)
}

#[test]
fn only_hosts_some_allow_could_admit_are_looked_up() {
    let set = PolicySet::new(parse_policy_file(RULES, "located.yaml").unwrap()).unwrap();
    assert!(set.reads_destination(Trigger::Connect));
    // agent, host, may admit once located
    let table = [
        ("bot", "api.allowed.example", true),
        ("bot", "leak-c2VjcmV0.allowed.example", false),
        ("bot", "c2VjcmV0.attacker.example", false),
        ("ops", "c2VjcmV0.attacker.example", true),
        ("ops", "leak.attacker.example", false),
        ("bot", "partner.example", true),
        ("bot", "broken.example", false),
        // A condition that is false whatever the destination admits nothing there.
        ("corp", "db.corp.example", true),
        ("corp", "c2VjcmV0.attacker.example", false),
        ("corp2", "db.corp.example", true),
        ("corp2", "c2VjcmV0.attacker.example", false),
        ("corp3", "c2VjcmV0.attacker.example", true),
    ];
    for (agent, host, may_admit) in table {
        let facts = connect(agent, host);
        assert_eq!(
            set.may_admit_once_located(&facts),
            may_admit,
            "{agent} → {host}"
        );
        if !may_admit {
            assert_eq!(
                set.evaluate(&facts).verdict,
                Verdict::Deny,
                "{agent} → {host}: judged without a destination, it is refused"
            );
        }
    }
}
