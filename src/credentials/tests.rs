use http::HeaderMap;

use super::*;

fn credential(slot: Slot, require: bool) -> Credential {
    Credential {
        host: HostPattern::parse("api.openai.com").unwrap(),
        port: 443,
        path: None,
        agent: None,
        team: None,
        slot,
        source: SecretSource::Env {
            value: Secret::new("sk-real".into()),
        },
        placeholder: DEFAULT_PLACEHOLDER.into(),
        require_placeholder: require,
        agent_env: Vec::new(),
    }
}

fn bearer() -> Slot {
    Slot::Header {
        name: AUTHORIZATION,
        prefix: "Bearer ".into(),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    map
}

#[test]
fn require_placeholder_table() {
    let header = credential(bearer(), true);
    let query = credential(Slot::Query("key".into()), true);
    let open = credential(bearer(), false);
    type Case<'a> = (
        &'a Credential,
        &'a [(&'a str, &'a str)],
        Option<&'a str>,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            &header,
            &[("authorization", "Bearer gatehouse-placeholder")],
            None,
            "ok",
        ),
        (
            &header,
            &[("Authorization", "bearer  gatehouse-placeholder ")],
            None,
            "ok",
        ),
        (
            &header,
            &[("authorization", "Bearer sk-own")],
            None,
            "foreign",
        ),
        (&header, &[], None, "missing"),
        (
            &header,
            &[
                ("authorization", "Bearer gatehouse-placeholder"),
                ("x-api-key", "sk-own"),
            ],
            None,
            "foreign",
        ),
        (
            &header,
            &[
                ("authorization", "Bearer gatehouse-placeholder"),
                ("authorization", "Bearer sk-own"),
            ],
            None,
            "foreign",
        ),
        (&query, &[], Some("alt=sse&key=gatehouse-placeholder"), "ok"),
        (
            &query,
            &[],
            Some("key=gatehouse-placeholder&key=own"),
            "foreign",
        ),
        (&query, &[], Some("k%65y=own"), "foreign"),
        (
            &query,
            &[("x-goog-api-key", "own")],
            Some("key=gatehouse-placeholder"),
            "foreign",
        ),
        (&query, &[], Some("alt=sse"), "missing"),
        (&open, &[("authorization", "Bearer sk-own")], None, "ok"),
        // SDKs differ in the slot they use: the placeholder in any key slot carries it.
        (
            &header,
            &[("x-api-key", "gatehouse-placeholder")],
            None,
            "ok",
        ),
        (
            &header,
            &[("authorization", "Bearer gatehouse-placeholder")],
            Some("key=sk-own"),
            "foreign",
        ),
        (&header, &[], Some("key=gatehouse-placeholder"), "ok"),
    ];
    for (i, (credential, pairs, q, expected)) in cases.iter().enumerate() {
        let got = match credential.check("api.openai.com", &headers(pairs), *q) {
            Ok(()) => "ok",
            Err(BrokerError::Foreign { .. }) => "foreign",
            Err(BrokerError::Missing { .. }) => "missing",
            Err(BrokerError::Unavailable { .. }) => "unavailable",
            Err(BrokerError::Cleartext { .. }) => "cleartext",
            Err(BrokerError::NotBrokered { .. }) => "not brokered",
        };
        assert_eq!(got, *expected, "case {i}: {pairs:?} {q:?}");
    }
}

#[test]
fn apply_drops_what_the_agent_sent_and_sets_the_real_key() {
    let mut map = headers(&[
        ("authorization", "Bearer sk-own"),
        ("x-api-key", "sk-other"),
        ("content-type", "application/json"),
    ]);
    let mut uri: Uri = "https://api.openai.com/v1/chat/completions"
        .parse()
        .unwrap();
    let secret = credential(bearer(), false)
        .apply("api.openai.com", &mut map, &mut uri)
        .unwrap();
    assert_eq!(secret.expose(), "sk-real");
    assert_eq!(map.get_all("authorization").iter().count(), 1);
    assert_eq!(map["authorization"], "Bearer sk-real");
    assert!(map["authorization"].is_sensitive());
    assert!(!map.contains_key("x-api-key"));
    assert_eq!(map["content-type"], "application/json");

    let mut map = headers(&[("x-goog-api-key", "own")]);
    let mut uri: Uri = "https://g.example/v1/m:generateContent?alt=sse&key=own&k%65y=x"
        .parse()
        .unwrap();
    credential(Slot::Query("key".into()), false)
        .apply("g.example", &mut map, &mut uri)
        .unwrap();
    assert_eq!(uri.query(), Some("alt=sse&key=sk-real"));
    assert!(map.is_empty());
}

#[test]
fn the_first_matching_credential_is_the_requests() {
    let mut for_bot = credential(bearer(), true);
    for_bot.agent = Some("bot".into());
    for_bot.placeholder = "bot-placeholder".into();
    let mut for_team = credential(bearer(), true);
    for_team.team = Some("research".into());
    for_team.path = Some(globset::Glob::new("/v1/**").unwrap().compile_matcher());
    let anyone = credential(bearer(), false);
    let broker = Broker::new(vec![for_bot, for_team, anyone], true);
    let to = |host, port, path| Destination {
        https: true,
        host,
        port,
        path,
    };
    let find = |agent, team, path| {
        broker
            .find(
                to("API.openai.com", 443, path),
                Sender {
                    agent,
                    team,
                    anonymous: false,
                },
            )
            .map(|c| (c.agent.clone(), c.team.clone()))
    };
    assert_eq!(
        find("bot", Some("research"), "/v1/x"),
        Some((Some("bot".into()), None))
    );
    assert_eq!(
        find("other", Some("research"), "/v1/x"),
        Some((None, Some("research".into())))
    );
    assert_eq!(find("other", Some("research"), "/v2/x"), Some((None, None)));
    assert_eq!(find("other", None, "/v1/x"), Some((None, None)));
    let bot = Sender {
        agent: "bot",
        team: None,
        anonymous: false,
    };
    let anonymous = Sender {
        agent: "anonymous",
        team: None,
        anonymous: true,
    };
    assert!(
        broker
            .find(to("api.openai.com", 443, "/v2/x"), anonymous)
            .is_none(),
        "no credential is an anonymous agent's unless it names `agent: anonymous`"
    );
    assert!(
        broker
            .find(to("api.anthropic.com", 443, "/v1/x"), bot)
            .is_none()
    );
    assert!(
        broker
            .find(to("api.openai.com", 8443, "/v1/x"), bot)
            .is_none(),
        "a credential is for its port only: another port may be anyone's listener"
    );
    let cleartext = Destination {
        https: false,
        ..to("api.openai.com", 443, "/v1/x")
    };
    assert!(matches!(
        broker.check(cleartext, bot, &HeaderMap::new(), None),
        Err(BrokerError::Cleartext { .. })
    ));
    // Where no credential matches (another port here), a host that takes only brokered keys
    // takes no key of the agent's own either; a request without one passes.
    let elsewhere = to("api.openai.com", 8443, "/v1/x");
    let own = headers(&[("x-api-key", "sk-own")]);
    assert!(matches!(
        broker.check(elsewhere, bot, &own, None),
        Err(BrokerError::NotBrokered { .. })
    ));
    assert!(matches!(
        broker.check(elsewhere, bot, &HeaderMap::new(), Some("key=sk-own")),
        Err(BrokerError::NotBrokered { .. })
    ));
    assert!(
        broker
            .check(elsewhere, bot, &HeaderMap::new(), None)
            .is_ok()
    );
    assert_eq!(
        broker
            .of_sender(Sender {
                agent: "x",
                team: None,
                anonymous: false,
            })
            .count(),
        1
    );
}
