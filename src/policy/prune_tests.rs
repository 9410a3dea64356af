//! The pruned, directly evaluated decision against the oracle (every condition evaluated by the
//! `cel` interpreter), over generated rule sets and requests.

use super::*;

/// A small deterministic generator (an LCG), so a failure names a reproducible case.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % sides
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.roll(from.len())]
    }
}

/// Conditions of every kind: true or false per request, failing (a missing header, `int` of a
/// word), and one only the interpreter evaluates (`int`).
const CONDITIONS: &[&str] = &[
    "",
    "",
    "agent.team == 'research'",
    "agent.env == 'prod'",
    "request.headers['x-tenant'] == 'acme'",
    "request.headers['missing'] == 'x'",
    "request.method == 'POST' && request.path.startsWith('/v1')",
    "request.path.matches('^/v2/')",
    "size(request.headers) > 2",
    "int(request.headers['x-n']) > 3",
    "'x-flag' in request.headers",
    "agent.team == 'research' || request.headers['missing'] == 'x'",
];

fn rule_set(dice: &mut Dice, response_side: bool) -> String {
    let mut yaml = String::from("rules:\n");
    for i in 0..1 + dice.roll(14) {
        let trigger = if response_side {
            "http.response"
        } else {
            dice.pick(&["http.request", "llm.request"])
        };
        let effect = dice.pick(&["allow", "allow", "hold", "deny", "redact"]);
        yaml.push_str(&format!(
            "  - id: r{i}\n    trigger: {trigger}\n    effect: {effect}\n"
        ));
        let scope = dice.pick(&[
            "",
            "",
            "{ teams: [research] }",
            "{ teams: [ops] }",
            "{ agents: [bot-a] }",
            "{ environments: [prod] }",
        ]);
        if !scope.is_empty() {
            yaml.push_str(&format!("    scope: {scope}\n"));
        }
        let hosts = dice.pick(&["", "", "[api.openai.com]", "[other.example.com]"]);
        if !hosts.is_empty() {
            yaml.push_str(&format!("    match: {{ hosts: {hosts} }}\n"));
        }
        let condition = dice.pick(CONDITIONS);
        if !condition.is_empty() {
            yaml.push_str(&format!("    when: \"{condition}\"\n"));
        }
        if effect == "redact" || (effect != "deny" && dice.roll(3) == 0) {
            let kinds = dice.pick(&["[email]", "[phone]", "[email, phone]"]);
            yaml.push_str(&format!("    redact: {{ kinds: {kinds} }}\n"));
        }
        if dice.roll(4) == 0 {
            yaml.push_str("    mode: monitor\n");
        }
        let priority = dice.pick(&["0", "0", "1", "5"]);
        yaml.push_str(&format!("    priority: {priority}\n"));
        if dice.roll(3) == 0 {
            yaml.push_str(&format!("    message: says r{i}\n"));
        }
        if effect == "allow" && trigger == "http.request" && dice.roll(3) == 0 {
            yaml.push_str("    allow_uninspected: true\n");
        }
    }
    yaml
}

fn request(dice: &mut Dice, response_side: bool) -> Facts {
    let trigger = if response_side {
        Trigger::HttpResponse
    } else {
        Trigger::LlmRequest
    };
    let mut facts = Facts::sample(trigger);
    facts.agent.id = dice.pick(&["bot-a", "bot-b"]).into();
    facts.agent.team = [Some("research"), Some("ops"), None][dice.roll(3)].map(String::from);
    facts.agent.env = Some(dice.pick(&["prod", "dev"]).into());
    facts.request.host = dice.pick(&["api.openai.com", "other.example.com"]).into();
    facts.request.method = dice.pick(&["POST", "GET"]).into();
    facts.request.path = dice.pick(&["/v1/chat/completions", "/v2/x"]).into();
    for (header, values) in [
        ("x-tenant", &["acme", "other"]),
        ("x-flag", &["1", "1"]),
        ("x-n", &["7", "seven"]),
    ] {
        if dice.roll(2) == 0 {
            let value = dice.pick(values);
            facts.request.headers.insert(header.into(), value.into());
        }
    }
    facts.body.inspected = dice.roll(5) != 0;
    facts
}

#[test]
fn pruned_decisions_equal_the_fully_interpreted_ones() {
    let mut dice = Dice(7);
    let mut effects = std::collections::HashMap::new();
    for case in 0..600 {
        let response_side = case % 5 == 4;
        let yaml = rule_set(&mut dice, response_side);
        let rules = parse_policy_file(&yaml, "generated.yaml").expect("generated rules parse");
        let policy = PolicySet::new(rules).expect("unique ids");
        for _ in 0..8 {
            let facts = request(&mut dice, response_side);
            let want = policy.evaluate_fully(&facts);
            let got = policy.evaluate(&facts);
            let context = || format!("case {case}\n{yaml}\nfacts: {facts:?}\nwant: {want:?}");
            assert_eq!(got.verdict, want.verdict, "{}", context());
            assert_eq!(got.deciding, want.deciding, "{}", context());
            assert_eq!(got.message, want.message, "{}", context());
            assert_eq!(got.monitored, want.monitored, "{}", context());
            let explained = policy.explain(&facts);
            assert_eq!(explained.verdict, want.verdict, "{}", context());
            assert_eq!(explained.deciding, want.deciding, "{}", context());
            let kind = (
                got.effect(),
                got.deciding.is_empty(),
                !got.obligations().is_empty(),
            );
            *effects.entry(kind).or_insert(0) += 1;
        }
    }
    // Every kind of decision was met: denies by a rule and by default, holds and allows, with
    // and without obligations.
    for kind in [
        (Effect::Deny, false, false),
        (Effect::Deny, true, false),
        (Effect::Hold, false, false),
        (Effect::Hold, false, true),
        (Effect::Allow, false, false),
        (Effect::Allow, false, true),
        (Effect::Allow, true, true),
    ] {
        assert!(
            effects.get(&kind).is_some_and(|n| *n > 10),
            "{kind:?}: {effects:?}"
        );
    }
}
