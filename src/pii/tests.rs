//! Detector tables: each row a text, and the kinds (with the exact span) it must yield.

use super::*;

fn scanner() -> Scanner {
    Scanner::new(&ScannerConfig {
        internal_domains: vec!["internal".into(), "corp.example".into()],
        dictionaries: vec![Dictionary {
            name: "customer".into(),
            words: vec!["Ada Lovelace".into(), "Project Nightjar".into()],
        }],
        patterns: vec![Pattern {
            name: "ticket".into(),
            regex: Regex::new(r"\bTCK-[0-9]{6}\b").expect("valid regex"),
        }],
        ..ScannerConfig::default()
    })
    .expect("scanner builds")
}

/// `prefix` with its Luhn check digit appended.
fn with_luhn(prefix: &str) -> String {
    for d in 0..10 {
        let candidate = format!("{prefix}{d}");
        let digits: Vec<u8> = candidate.bytes().map(|b| b - b'0').collect();
        if checksum::luhn(&digits) {
            return candidate;
        }
    }
    unreachable!()
}

fn found(text: &str) -> Vec<(String, String)> {
    scanner()
        .scan(text)
        .into_iter()
        .map(|f| (f.kind.name().to_string(), text[f.start..f.end].to_string()))
        .collect()
}

#[test]
fn detectors_find_each_kind_with_its_exact_span() {
    let visa19 = with_luhn("411111111111111111");
    let maestro12 = with_luhn("50180000000");
    let cases: Vec<(String, &str, &str)> = vec![
        ("mail jane.doe@example.com today".into(), "email", "jane.doe@example.com"),
        ("write to bob@build.corp.example.".into(), "email", "bob@build.corp.example"),
        ("ops@service.internal".into(), "email", "ops@service.internal"),
        ("john [at] example [dot] org".into(), "email", "john [at] example [dot] org"),
        ("john(at)example(dot)co(dot)uk".into(), "email", "john(at)example(dot)co(dot)uk"),
        ("card 4111 1111 1111 1111 exp".into(), "credit_card", "4111 1111 1111 1111"),
        ("mc 5555-5555-5555-4444".into(), "credit_card", "5555-5555-5555-4444"),
        ("mc2 2223003122003222".into(), "credit_card", "2223003122003222"),
        ("amex 378282246310005".into(), "credit_card", "378282246310005"),
        ("disc 6011111111111117".into(), "credit_card", "6011111111111117"),
        ("jcb 3530111333300000".into(), "credit_card", "3530111333300000"),
        ("diners 30569309025904".into(), "credit_card", "30569309025904"),
        ("up 6200000000000005".into(), "credit_card", "6200000000000005"),
        (format!("visa19 {visa19}"), "credit_card", &*Box::leak(visa19.clone().into_boxed_str())),
        (format!("maestro {maestro12}"), "credit_card", &*Box::leak(maestro12.clone().into_boxed_str())),
        ("IBAN DE89 3704 0044 0532 0130 00 ok".into(), "iban", "DE89 3704 0044 0532 0130 00"),
        ("GB29NWBK60161331926819".into(), "iban", "GB29NWBK60161331926819"),
        ("GB29 NWBK 6016 1331 9268 19".into(), "iban", "GB29 NWBK 6016 1331 9268 19"),
        ("ssn 123-45-6789".into(), "us_ssn", "123-45-6789"),
        ("my SSN is 123456789".into(), "us_ssn", "123456789"),
        ("call +1 415 555 0132".into(), "phone", "+1 415 555 0132"),
        ("+44 20 7946 0958".into(), "phone", "+44 20 7946 0958"),
        ("(415) 555-0132".into(), "phone", "(415) 555-0132"),
        ("415-555-0132".into(), "phone", "415-555-0132"),
        ("Telefon: 030 1234567".into(), "phone", "030 1234567"),
        ("host 192.168.1.20 up".into(), "ip_address", "192.168.1.20"),
        ("v6 2001:db8::1 up".into(), "ip_address", "2001:db8::1"),
        ("link fe80::1ff:fe23:4567:890a".into(), "ip_address", "fe80::1ff:fe23:4567:890a"),
        ("mac 00:1A:2B:3C:4D:5E".into(), "mac_address", "00:1A:2B:3C:4D:5E"),
        ("mac 00-1a-2b-3c-4d-5e".into(), "mac_address", "00-1a-2b-3c-4d-5e"),
        ("btc 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2".into(), "crypto_wallet", "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"),
        ("p2sh 3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy".into(), "crypto_wallet", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),
        ("bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq".into(), "crypto_wallet", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"),
        ("eth 0x52908400098527886E0F7030069857D2E4169EE7".into(), "crypto_wallet", "0x52908400098527886E0F7030069857D2E4169EE7"),
        ("Steuer-ID 86095742719".into(), "de_tax_id", "86095742719"),
        ("NIR 1 84 12 76 451 089 46".into(), "fr_nir", "1 84 12 76 451 089 46"),
        ("DNI 12345678Z".into(), "es_dni", "12345678Z"),
        ("NIE X1234567L".into(), "es_dni", "X1234567L"),
        ("CF RSSMRA85T10A562S".into(), "it_fiscal_code", "RSSMRA85T10A562S"),
        ("BSN 111222333".into(), "nl_bsn", "111222333"),
        ("PESEL 44051401359".into(), "pl_pesel", "44051401359"),
        ("nr 85.07.30-033.28".into(), "be_national_number", "85.07.30-033.28"),
        ("pnr 811218-9876".into(), "se_personnummer", "811218-9876"),
        ("hetu 131052-308T".into(), "fi_hetu", "131052-308T"),
        ("NINO AB123456C".into(), "uk_nino", "AB123456C"),
        ("NHS number 943 476 5919".into(), "uk_nhs", "943 476 5919"),
        ("key AKIAQ2W7ZR5TXK3MVN6P".into(), "secret", "AKIAQ2W7ZR5TXK3MVN6P"),
        ("ghp_0123456789abcdefghijABCDEFGHIJ012345".into(), "secret", "ghp_0123456789abcdefghijABCDEFGHIJ012345"),
        ("sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF".into(), "secret", "sk-proj-Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1dF"),
        ("sk-ant-api03-Xy7Zq2Wv9Tu4Sr1Qp8On6Ml3Kj5Ih0Gf".into(), "secret", "sk-ant-api03-Xy7Zq2Wv9Tu4Sr1Qp8On6Ml3Kj5Ih0Gf"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q".into(), "secret", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
        ("glpat-AbCdEf0123456789xYz_".into(), "secret", "glpat-AbCdEf0123456789xYz_"),
        ("xoxb-8136705070-2940068064-SA9zpvfw8Bgkqorpv2hp".into(), "secret", "xoxb-8136705070-2940068064-SA9zpvfw8Bgkqorpv2hp"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(), "secret", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
        ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".into(), "secret", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
        ("password = \"Tr0ub4dorX3yzQ7wv\"".into(), "secret", "Tr0ub4dorX3yzQ7wv"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----".into(), "secret", "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n-----END RSA PRIVATE KEY-----"),
        ("met ada lovelace today".into(), "customer", "ada lovelace"),
        ("see TCK-123456".into(), "ticket", "TCK-123456"),
    ];
    let mut failures = Vec::new();
    for (text, kind, span) in &cases {
        let got = found(text);
        if !got.contains(&(kind.to_string(), span.to_string())) {
            failures.push(format!("{text:?}: wanted {kind} {span:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn near_misses_are_not_findings() {
    let cases = [
        "card 4111 1111 1111 1112",
        "IBAN DE88 3704 0044 0532 0130 00",
        "ssn 900-12-3456 and 666-12-3456 and 000-12-3456 and 123-00-4567",
        "version 1.2.3 and v10.0.19041.1 released",
        "order 123456789012 shipped",
        "id 123e4567-e89b-12d3-a456-426614174000",
        "on 2024-01-15 and 15/01/2024 and 15.01.2024",
        "at 2024-01-15T10:30:00Z for 10:30:45",
        "user@localhost and a@b.notarealtld",
        "meet at noon at the office",
        "sk-learn is a library; task-force-management-system-2024",
        "tokens: 1500 and max_tokens=4096",
        "NINO QQ123456C",
        "DNI 12345678A",
        "hash 5d41402abc4b2a76b9719d911017c592",
        "std::vector and Class::method",
        "BSN 111222334",
        "22 apples and 30 pears",
    ];
    let mut failures = Vec::new();
    for text in cases {
        let got = found(text);
        if !got.is_empty() {
            failures.push(format!("{text:?}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn overlaps_keep_the_most_specific_kind() {
    let text = "pay with 4111111111111111 please";
    let got = found(text);
    assert_eq!(got, vec![("credit_card".into(), "4111111111111111".into())]);
    let text = "tel +49 30 12345678, card 5555555555554444";
    let kinds: Vec<String> = found(text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec!["phone", "credit_card"]);
}

#[test]
fn unicode_digits_and_text_are_not_mistaken_for_ascii() {
    // Arabic-Indic digits spelling a card number are not one.
    assert!(found("٤١١١١١١١١١١١١١١١").is_empty());
    let text = "Grüße an jürgen@example.de – 📞 +49 30 12345678";
    let got = found(text);
    assert!(
        got.contains(&("email".into(), "jürgen@example.de".into()))
            || got.iter().any(|(k, _)| k == "email"),
        "{got:?}"
    );
    assert!(
        got.contains(&("phone".into(), "+49 30 12345678".into())),
        "{got:?}"
    );
}

#[test]
fn dashes_and_ideographic_stops_read_as_ascii_punctuation() {
    let cases = [
        (
            "card 4111\u{2013}1111\u{2013}1111\u{2013}1111",
            "credit_card",
        ),
        ("card ４１１１−１１１１−１１１１−１１１１", "credit_card"),
        ("ssn 078\u{2010}05\u{2010}1121", "us_ssn"),
        ("mail jane@example\u{3002}com", "email"),
    ];
    for (text, kind) in cases {
        let kinds: Vec<String> = found(text).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, vec![kind.to_string()], "{text}");
    }
}

struct Masker;

impl Replacer for Masker {
    fn replace(&mut self, f: &Finding, _: &str) -> Result<Option<String>, VaultError> {
        Ok(Some(format!("[{}]", f.kind.label())))
    }
}

#[test]
fn json_redaction_edits_strings_and_keeps_the_document_valid() {
    let mut doc: serde_json::Value = serde_json::from_str(
        r#"{"model":"gpt-4o","messages":[{"role":"user","content":"mail jane\u0040example.com or call +44 20 7946 0958"}],"api_key":"Zx9Qw7Er5Ty3Ui1Op"}"#,
    )
    .expect("json");
    let s = scanner();
    let findings = scan_json(&s, &doc);
    let pointers: Vec<&str> = findings.iter().map(|f| f.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        vec!["/api_key", "/messages/0/content", "/messages/0/content"]
    );
    let changed = redact_json(&s, &mut doc, &mut Masker).expect("redacts");
    assert_eq!(changed, 2);
    assert_eq!(
        doc["messages"][0]["content"],
        "mail [EMAIL] or call [PHONE]"
    );
    assert_eq!(doc["api_key"], "[SECRET]");
    assert_eq!(doc["model"], "gpt-4o");
}

#[test]
fn styles_mask_hash_and_pseudonymize() {
    let s = scanner();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"test key");
    let vault = Vault::new(8, 8, std::time::Duration::from_secs(60));
    let now = std::time::Instant::now();
    let text = "a@example.com, b@example.com, a@example.com";
    let findings = s.scan(text);
    let redact_with = |style: Style| {
        let mut r = Redaction::new(
            vec![(vec!["email".into()], style)],
            &key,
            &vault,
            "run-1",
            now,
        );
        redact(text, &findings, &mut r)
            .expect("redacts")
            .expect("changed")
    };
    assert_eq!(redact_with(Style::Mask), "[EMAIL], [EMAIL], [EMAIL]");
    let hashed = redact_with(Style::Hash);
    let tokens: Vec<&str> = hashed.split(", ").collect();
    assert_eq!(tokens[0], tokens[2]);
    assert_ne!(tokens[0], tokens[1]);
    assert!(tokens[0].starts_with("[EMAIL:") && tokens[0].len() == "[EMAIL:]".len() + 12);
    assert_eq!(
        redact_with(Style::Pseudonymize),
        "<EMAIL_1>, <EMAIL_2>, <EMAIL_1>"
    );
    let mut restorer = vault.restorer("run-1", false).expect("session");
    let mut out = restorer.push(b"Hi <EMAIL_1> and <EMA");
    out.extend(restorer.push(b"IL_2>, bye <EMAIL_9> <b>"));
    out.extend(restorer.finish());
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        "Hi a@example.com and b@example.com, bye <EMAIL_9> <b>"
    );
}

#[test]
fn restoring_holds_back_only_what_could_complete_a_placeholder() {
    let names = std::sync::Arc::new(
        [("EMAIL_1".to_string(), "a\"b@example.com".to_string())]
            .into_iter()
            .collect(),
    );
    let mut r = Restorer::new(names, true);
    assert_eq!(r.push(b"data: {\"t\":\"x \\u003cEMA"), b"data: {\"t\":\"x ");
    assert_eq!(r.push(b"IL_1\\u003"), b"");
    assert_eq!(r.push(b"e y\"}\n\n"), b"a\\\"b@example.com y\"}\n\n");
    assert_eq!(
        r.push(b"plain text with no opener"),
        b"plain text with no opener"
    );
    assert_eq!(r.push(b"a < b"), b"a < b");
    assert_eq!(r.push(b" ends with <"), b" ends with ");
    assert_eq!(r.finish(), b"<");
}

#[test]
fn vault_is_bounded_and_forgets() {
    let vault = Vault::new(2, 2, std::time::Duration::from_secs(10));
    let now = std::time::Instant::now();
    assert_eq!(
        vault
            .pseudonym("s", &Kind::Email, "a@x.io", now)
            .expect("ok"),
        "<EMAIL_1>"
    );
    assert_eq!(
        vault.pseudonym("s", &Kind::Phone, "+1", now).expect("ok"),
        "<PHONE_1>"
    );
    assert!(matches!(
        vault.pseudonym("s", &Kind::Email, "b@x.io", now),
        Err(VaultError::Full(2))
    ));
    vault
        .pseudonym("t", &Kind::Email, "c@x.io", now)
        .expect("ok");
    vault
        .pseudonym("u", &Kind::Email, "d@x.io", now)
        .expect("ok");
    assert_eq!(vault.sessions(), 2, "least recently used session evicted");
    vault.sweep(now + std::time::Duration::from_secs(11));
    assert_eq!(vault.sessions(), 0);
}

#[test]
fn pathological_inputs_finish_without_panicking() {
    let s = scanner();
    let inputs = [
        "@".repeat(100_000),
        "1".repeat(100_000),
        "1 ".repeat(50_000),
        "a@".repeat(50_000),
        ":".repeat(100_000),
        "+(".repeat(50_000),
        "sk-".repeat(30_000),
        "password=".repeat(10_000),
        "-----BEGIN PRIVATE KEY-----".repeat(3_000),
        "é1".repeat(40_000),
    ];
    for input in &inputs {
        let findings = s.scan(input);
        for f in findings {
            assert!(input.is_char_boundary(f.start) && input.is_char_boundary(f.end));
        }
    }
}

#[test]
fn pseudonymize_then_restore_round_trips_in_any_chunking() {
    const PIECES: &[&str] = &[
        "hello ",
        "mail jane.doe@example.com ",
        "card 4111 1111 1111 1111 ",
        "call +44 20 7946 0958 ",
        "IBAN DE89 3704 0044 0532 0130 00 ",
        "ip 10.1.2.3 ",
        "Grüße ",
        "a > b ",
        "x\\y ",
        "{\"k\": 1} ",
        "bob@example.org ",
        "jane.doe@example.com ",
        "\n\n",
        "2024-01-15 ",
        "ünïcödé ",
    ];
    let s = scanner();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"k");
    let mut seed: u64 = 42;
    let mut next = move || {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) as usize
    };
    for round in 0..300 {
        let text: String = (0..1 + next() % 12)
            .map(|_| PIECES[next() % PIECES.len()])
            .collect();
        let vault = Vault::new(4, 1000, std::time::Duration::from_secs(60));
        let now = std::time::Instant::now();
        let mut r = Redaction::new(
            vec![(vec!["any".into()], Style::Pseudonymize)],
            &key,
            &vault,
            "s",
            now,
        );
        let findings = s.scan(&text);
        let redacted = redact(&text, &findings, &mut r)
            .expect("redacts")
            .unwrap_or_else(|| text.clone());
        for f in &findings {
            assert!(
                !redacted.contains(&text[f.start..f.end]),
                "round {round}: value left in {redacted:?}"
            );
        }
        let Some(mut restorer) = vault.restorer("s", false) else {
            assert!(findings.is_empty());
            continue;
        };
        let bytes = redacted.as_bytes();
        let mut out = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let step = 1 + next() % 7;
            let end = (at + step).min(bytes.len());
            out.extend(restorer.push(&bytes[at..end]));
            at = end;
        }
        out.extend(restorer.finish());
        assert_eq!(String::from_utf8(out).expect("utf8"), text, "round {round}");
    }
}

#[test]
fn numbers_in_json_are_scanned_and_redacted_as_strings() {
    let s = scanner();
    let mut doc: serde_json::Value =
        serde_json::from_str(r#"{"card": 4111111111111111, "qty": 3}"#).expect("json");
    let found = scan_json(&s, &doc);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pointer, "/card");
    assert_eq!(redact_json(&s, &mut doc, &mut Masker).expect("redacts"), 1);
    assert_eq!(doc, serde_json::json!({"card": "[CARD]", "qty": 3}));
}
