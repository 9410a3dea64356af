use super::*;

fn err(yaml: &str) -> String {
    Config::from_yaml(yaml, "test.yaml")
        .unwrap_err()
        .to_string()
}

#[test]
fn embedded_default_is_valid() {
    let config = Config::from_yaml(EMBEDDED_DEFAULT, "<embedded>").unwrap();
    assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
    assert!(config.identity.allow_anonymous);
    assert_eq!(config.upstream.response_timeout, Duration::from_secs(300));
    // The bounds of the embedded file are the built-in defaults.
    let bare = Config::from_yaml("listen: 127.0.0.1:8080\n", "test.yaml").unwrap();
    let (l, d) = (&config.limits, &bare.limits);
    assert_eq!(l.max_buffered_bytes, d.max_buffered_bytes);
    assert_eq!(
        l.max_buffered_bytes_per_agent,
        d.max_buffered_bytes_per_agent
    );
    assert_eq!(l.max_connections_per_agent, d.max_connections_per_agent);
    assert_eq!(l.max_concurrent_streams, d.max_concurrent_streams);
    assert_eq!(l.tunnel_idle_timeout, d.tunnel_idle_timeout);
    assert_eq!(l.client_body_timeout, d.client_body_timeout);
    assert_eq!(config.upstream.socket_idle_timeout, l.tunnel_idle_timeout);
}

#[test]
fn errors_name_file_line_and_key() {
    let table: &[(&str, &str)] = &[
        (
            "listen: 127.0.0.1:8080\nlimits:\n  max_conections: 5\n",
            "test.yaml:3: key `max_conections`",
        ),
        ("listen: nowhere\n", "test.yaml:1: key `listen`"),
        (
            "network:\n  allow_cidrs:\n    - 10.0.0.0/8\n    - 10.0.0/33\n",
            "test.yaml:4: key `network.allow_cidrs[1]`",
        ),
        (
            "upstream:\n  connect_timeout: soon\n",
            "test.yaml:2: key `upstream.connect_timeout`",
        ),
        (
            "upstream:\n  idle_timeout: 400d\n",
            "test.yaml:2: key `upstream.idle_timeout`",
        ),
        (
            "ca:\n  leaf_cache_ttl: 2h\n  leaf_validity: 1h\n",
            "test.yaml:3: key `ca.leaf_validity`",
        ),
        (
            "limits:\n  max_header_bytes: 100\n",
            "test.yaml:2: key `limits.max_header_bytes`",
        ),
        (
            "limits:\n  max_request_body_bytes: 2000\n  max_buffered_bytes_per_agent: 1000\n",
            "test.yaml:3: key `limits.max_buffered_bytes_per_agent`",
        ),
        (
            "limits:\n  max_buffered_bytes: 1000\n",
            "test.yaml:2: key `limits.max_buffered_bytes`",
        ),
        (
            "limits:\n  max_concurrent_streams: 0\n",
            "test.yaml:2: key `limits.max_concurrent_streams`",
        ),
        (
            "limits:\n  max_connections_per_agent: 0\n",
            "test.yaml:2: key `limits.max_connections_per_agent`",
        ),
        (
            "limits:\n  tunnel_idle_timeout: never\n",
            "test.yaml:2: key `limits.tunnel_idle_timeout`",
        ),
        (
            "admin:\n  max_connections: 0\n",
            "test.yaml:2: key `admin.max_connections`",
        ),
        ("log:\n  format: xml\n", "test.yaml:2: key `log.format`"),
        (
            "tunnel:\n  hosts: ['exa*mple.com']\n",
            "test.yaml:2: key `tunnel.hosts[0]`",
        ),
        (
            "limits:\n  max_connections: lots\n",
            "test.yaml:2: key `max_connections`",
        ),
        (
            "pii:\n  patterns:\n    - name: ticket\n      regex: 'TCK-[0-9'\n",
            "test.yaml:4: key `pii.patterns[0].regex`",
        ),
        (
            "pii:\n  dictionaries:\n    - name: email\n      words: [x]\n",
            "test.yaml:3: key `pii.dictionaries[0].name`",
        ),
        (
            "pii:\n  dictionaries:\n    - name: customers\n",
            "test.yaml:3: key `pii.dictionaries[0]`",
        ),
        (
            "pii:\n  hash_key_env: GATEHOUSE_TEST_UNSET_KEY\n",
            "test.yaml:2: key `pii.hash_key_env`",
        ),
        (
            "pii:\n  phone_regions: [DE, XX]\n",
            "test.yaml:2: key `pii.phone_regions`",
        ),
        (
            "pii:\n  vault:\n    idle: never\n",
            "test.yaml:3: key `pii.vault.idle`",
        ),
        (
            "budget:\n  budgets:\n    - { id: b, limit_usd: '10', window: week }\n",
            "test.yaml:3: key `budget.budgets[0].window`",
        ),
        (
            "budget:\n  budgets:\n    - { id: b, limit_usd: 'lots', window: day }\n",
            "test.yaml:3: key `budget.budgets[0].limit_usd`",
        ),
        (
            "budget:\n  budgets:\n    - { id: b, agent: a, team: t, limit_usd: '1', window: day }\n",
            "test.yaml:3: key `budget.budgets[0]`",
        ),
        (
            "budget:\n  unpriced: maybe\n",
            "test.yaml:2: key `budget.unpriced`",
        ),
        (
            "budget:\n  store: 'postgres:/db'\n",
            "test.yaml:2: key `budget.store`",
        ),
        (
            "budget:\n  store: 'postgres://gh@db:notaport/x'\n",
            "test.yaml:2: key `budget.store`",
        ),
        (
            "budget:\n  reservation_ttl_seconds: 600\n",
            "test.yaml:2: key `budget.reservation_ttl_seconds`: must be between 1920",
        ),
        (
            "budget:\n  on_trip: pause\n",
            "test.yaml:2: key `budget.on_trip`",
        ),
        (
            "budget:\n  breakers:\n    loop: { repeats: 1, seconds: 60 }\n",
            "test.yaml:3: key `budget.breakers.loop.repeats`",
        ),
        (
            "approvals:\n  webhooks:\n    - { url: 'ftp://x/y' }\n",
            "test.yaml:3: key `approvals.webhooks[0].url`",
        ),
        (
            "admin:\n  listen: 0.0.0.0:8081\n",
            "test.yaml:2: key `admin.listen`: the admin API would listen on 0.0.0.0:8081 without a token",
        ),
    ];
    let duplicate = err("listen: 127.0.0.1:1\nlisten: 127.0.0.1:2\n");
    assert!(
        duplicate.starts_with("test.yaml:2: key `listen`: duplicate mapping key"),
        "{duplicate}"
    );
    assert!(
        !duplicate.contains("at line"),
        "the place is said once: {duplicate}"
    );
    for (yaml, expected) in table {
        let message = err(yaml);
        assert!(
            message.starts_with(expected),
            "{yaml:?}\n got: {message}\nwant: {expected}"
        );
    }
}

#[test]
fn agent_tokens_come_from_env_or_file_never_inline() {
    let missing = err(
        "identity:\n  agents:\n    - id: bot\n      token_env: GATEHOUSE_TEST_SURELY_UNSET_VAR\n",
    );
    assert!(
        missing.contains("test.yaml:4: key `identity.agents[0].token_env`"),
        "{missing}"
    );
    assert!(
        missing.contains("GATEHOUSE_TEST_SURELY_UNSET_VAR"),
        "{missing}"
    );

    let inline = err("identity:\n  agents:\n    - id: bot\n      token: hunter2\n");
    assert!(inline.contains("unknown field"), "{inline}");

    let neither = err("identity:\n  agents:\n    - id: bot\n");
    assert!(neither.contains("exactly one of"), "{neither}");

    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("bot.token");
    std::fs::write(&token_path, "s3cret\n").unwrap();
    let yaml = format!(
        "identity:\n  agents:\n    - id: bot\n      team: t\n      token_file: {}\n",
        token_path.display()
    );
    let config = Config::from_yaml(&yaml, "test.yaml").unwrap();
    assert_eq!(config.identity.agents[0].token.expose(), "s3cret");
    assert_eq!(
        format!("{:?}", config.identity.agents[0].token),
        "Secret(***)"
    );
}

#[test]
fn agent_ids_are_checked_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let token_path = dir.path().join("t");
    std::fs::write(&token_path, "x").unwrap();
    let t = token_path.display();
    let reserved = err(&format!(
        "identity:\n  agents:\n    - id: anonymous\n      token_file: {t}\n"
    ));
    assert!(reserved.contains("reserved"), "{reserved}");
    let twice = err(&format!(
        "identity:\n  agents:\n    - id: a\n      token_file: {t}\n    - id: a\n      token_file: {t}\n"
    ));
    assert!(
        twice.contains("test.yaml:5: key `identity.agents[1].id`"),
        "{twice}"
    );
    let bad = err(&format!(
        "identity:\n  agents:\n    - id: 'a b'\n      token_file: {t}\n"
    ));
    assert!(bad.contains("not a valid agent id"), "{bad}");
}

#[test]
fn single_addresses_count_as_cidrs() {
    let config = Config::from_yaml(
        "network:\n  allow_cidrs: [127.0.0.1, '::1', 10.1.2.3/8]\n",
        "t",
    )
    .unwrap();
    let shown: Vec<String> = config
        .network
        .allow_cidrs
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(shown, ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]);
}

#[test]
fn redactions_must_name_known_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |kind: &str| {
        format!(
            "rules:\n  - id: r\n    trigger: llm.request\n    effect: allow\n    redact: {{ kinds: [{kind}] }}\n"
        )
    };
    let config = format!(
        "policies:\n  dir: {}\npii:\n  dictionaries:\n    - name: customer\n      words: [Ada]\n",
        dir.path().display()
    );
    for good in ["email", "national_id", "customer", "any"] {
        std::fs::write(dir.path().join("p.yaml"), rule(good)).unwrap();
        Config::from_yaml(&config, "test.yaml").unwrap();
    }
    std::fs::write(dir.path().join("p.yaml"), rule("emial")).unwrap();
    let message = Config::from_yaml(&config, "test.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("p.yaml:2") && message.contains("`emial`"),
        "{message}"
    );
}

#[test]
fn header_scanning_is_on_and_leaves_the_credential_headers_out() {
    let config = Config::from_yaml(EMBEDDED_DEFAULT, "<embedded>").unwrap();
    assert!(config.pii.scan_headers);
    for name in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "api-key",
    ] {
        assert!(
            config.pii.unscanned_headers.iter().any(|h| h == name),
            "{name}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "k").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let yaml = format!(
        "credentials:\n  - {{ host: api.example.com, header: X-Service-Key, secret_file: '{}' }}\n\
         pii:\n  scan_headers: false\n  unscanned_headers: [X-Session]\n",
        key.display()
    );
    let config = Config::from_yaml(&yaml, "test.yaml").unwrap();
    assert!(!config.pii.scan_headers);
    for name in ["x-service-key", "x-session", "authorization"] {
        assert!(
            config.pii.unscanned_headers.iter().any(|h| h == name),
            "{name}"
        );
    }
}

#[test]
fn phone_regions_default_to_the_eea_uk_us_and_canada_and_name_a_bad_code() {
    let config = Config::from_yaml(EMBEDDED_DEFAULT, "<embedded>").unwrap();
    let codes = config.pii.scanner.phone_regions.codes();
    assert_eq!(codes.len(), 33);
    for code in ["DE", "FR", "NO", "IS", "LI", "GB", "US", "CA"] {
        assert!(codes.contains(&code), "{code}");
    }
    let config = Config::from_yaml("pii:\n  phone_regions: [de, CH]\n", "test.yaml").unwrap();
    assert_eq!(config.pii.scanner.phone_regions.codes(), vec!["DE", "CH"]);
    let message = Config::from_yaml("pii:\n  phone_regions: [DE, UK]\n", "test.yaml")
        .expect_err("UK is not a region code")
        .to_string();
    assert!(message.contains("`UK`"), "{message}");
}
