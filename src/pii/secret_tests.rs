//! The ported gitleaks rules: true positives built here in each rule's documented shape (a fixed
//! pseudo-random walk over the rule's alphabet, never a real key) and false positives of the
//! classes gitleaks allows (placeholders, variable references, vendor example keys, UUIDs, git
//! SHAs, hashes, paths, words).

use super::*;

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const HEX: &str = "0123456789abcdef";
const UPPER32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `n` characters of `alphabet` chosen by a fixed linear congruential walk from `seed`.
fn walk(alphabet: &str, n: usize, seed: u64) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            chars[((state >> 33) % chars.len() as u64) as usize]
        })
        .collect()
}

fn secrets(text: &str) -> Vec<(String, &'static str)> {
    Scanner::new(&ScannerConfig::default())
        .expect("scanner")
        .scan(text)
        .into_iter()
        .filter(|f| f.kind == Kind::Secret)
        .map(|f| (text[f.start..f.end].to_string(), f.validator))
        .collect()
}

#[test]
fn every_ported_rule_compiles_with_lower_case_anchors() {
    let rules = secret_rules::Rules::new().expect("rules compile");
    assert!(rules.rules.len() > 200, "{} rules", rules.rules.len());
    for rule in &rules.rules {
        assert!(!rule.anchors.is_empty(), "{}", rule.id);
        for anchor in &rule.anchors {
            assert_eq!(*anchor, anchor.to_ascii_lowercase(), "{}", rule.id);
        }
    }
}

#[test]
fn ported_rules_find_secrets_in_their_documented_shape() {
    let aws_id = format!("AKIA{}", walk(UPPER32, 16, 1));
    let aws_secret = walk(B64, 40, 2);
    let cases: Vec<(String, String)> = vec![
        (format!("aws_access_key_id = {aws_id}"), aws_id.clone()),
        (
            format!("ASIA{}", walk(UPPER32, 16, 3)),
            format!("ASIA{}", walk(UPPER32, 16, 3)),
        ),
        (
            format!("aws_secret_access_key = {aws_secret}"),
            aws_secret.clone(),
        ),
        (
            format!("id {aws_id}\nkey {aws_secret}\n"),
            aws_secret.clone(),
        ),
        (
            format!("ghp_{}", walk(ALNUM, 36, 4)),
            format!("ghp_{}", walk(ALNUM, 36, 4)),
        ),
        (
            format!("token: github_pat_{}", walk(ALNUM, 82, 5)),
            format!("github_pat_{}", walk(ALNUM, 82, 5)),
        ),
        (
            format!("glpat-{}", walk(ALNUM, 20, 6)),
            format!("glpat-{}", walk(ALNUM, 20, 6)),
        ),
        (
            format!("hf_{}", walk(LOWER, 34, 7)),
            format!("hf_{}", walk(LOWER, 34, 7)),
        ),
        (
            format!("api_org_{}", walk(LOWER, 34, 8)),
            format!("api_org_{}", walk(LOWER, 34, 8)),
        ),
        (
            format!("SK{}", walk(HEX, 32, 9)),
            format!("SK{}", walk(HEX, 32, 9)),
        ),
        (
            format!("SG.{}.{}", walk(ALNUM, 22, 10), walk(ALNUM, 43, 11)),
            format!("SG.{}.{}", walk(ALNUM, 22, 10), walk(ALNUM, 43, 11)),
        ),
        (
            format!("dop_v1_{}", walk(HEX, 64, 12)),
            format!("dop_v1_{}", walk(HEX, 64, 12)),
        ),
        (
            format!("doo_v1_{}", walk(HEX, 64, 13)),
            format!("doo_v1_{}", walk(HEX, 64, 13)),
        ),
        (
            format!("dor_v1_{}", walk(HEX, 64, 14)),
            format!("dor_v1_{}", walk(HEX, 64, 14)),
        ),
        (
            format!("npm_{}", walk(ALNUM, 36, 15)),
            format!("npm_{}", walk(ALNUM, 36, 15)),
        ),
        (
            format!("pypi-AgEIcHlwaS5vcmc{}", walk(ALNUM, 60, 16)),
            format!("pypi-AgEIcHlwaS5vcmc{}", walk(ALNUM, 60, 16)),
        ),
        (
            format!("rubygems_{}", walk(HEX, 48, 17)),
            format!("rubygems_{}", walk(HEX, 48, 17)),
        ),
        (
            format!("CLOJARS_{}", walk(&ALNUM[26..], 60, 18)),
            format!("CLOJARS_{}", walk(&ALNUM[26..], 60, 18)),
        ),
        (
            format!("sk_live_{}", walk(ALNUM, 24, 19)),
            format!("sk_live_{}", walk(ALNUM, 24, 19)),
        ),
        (
            format!(
                "xoxp-{}-{}-{}-{}",
                walk(DIGITS, 12, 20),
                walk(DIGITS, 12, 21),
                walk(DIGITS, 12, 22),
                walk(HEX, 32, 23)
            ),
            format!(
                "xoxp-{}-{}-{}-{}",
                walk(DIGITS, 12, 20),
                walk(DIGITS, 12, 21),
                walk(DIGITS, 12, 22),
                walk(HEX, 32, 23)
            ),
        ),
        (
            format!("AIza{}", walk(ALNUM, 35, 24)),
            format!("AIza{}", walk(ALNUM, 35, 24)),
        ),
        (
            format!(
                "secret=\"{}8Q~{}\"",
                walk(ALNUM, 3, 25),
                walk(ALNUM, 32, 26)
            ),
            format!("{}8Q~{}", walk(ALNUM, 3, 25), walk(ALNUM, 32, 26)),
        ),
        (
            format!(
                "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={}==;EndpointSuffix=core.windows.net",
                walk(B64, 86, 27)
            ),
            format!("{}==", walk(B64, 86, 27)),
        ),
        (
            format!(
                "Endpoint=sb://acme.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey={}=",
                walk(B64, 43, 28)
            ),
            format!("{}=", walk(B64, 43, 28)),
        ),
        (
            format!("shpat_{}", walk(HEX, 32, 29)),
            format!("shpat_{}", walk(HEX, 32, 29)),
        ),
        (
            format!("pplx-{}", walk(ALNUM, 48, 30)),
            format!("pplx-{}", walk(ALNUM, 48, 30)),
        ),
        (
            format!(
                "AGE-SECRET-KEY-1{}",
                walk("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 31)
            ),
            format!(
                "AGE-SECRET-KEY-1{}",
                walk("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58, 31)
            ),
        ),
        (
            format!("hvs.{}", walk(ALNUM, 100, 32)),
            format!("hvs.{}", walk(ALNUM, 100, 32)),
        ),
        (
            format!("twilio_token = \"SK{}\"", walk(HEX, 32, 33)),
            format!("SK{}", walk(HEX, 32, 33)),
        ),
        (
            format!("sendbird_token: {}", walk(HEX, 40, 34)),
            walk(HEX, 40, 34),
        ),
        (
            format!(
                "heroku_api_key = \"{}-{}-{}-{}-{}\"",
                walk(HEX, 8, 35),
                walk(HEX, 4, 36),
                walk(HEX, 4, 37),
                walk(HEX, 4, 38),
                walk(HEX, 12, 39)
            ),
            format!(
                "{}-{}-{}-{}-{}",
                walk(HEX, 8, 35),
                walk(HEX, 4, 36),
                walk(HEX, 4, 37),
                walk(HEX, 4, 38),
                walk(HEX, 12, 39)
            ),
        ),
        (
            format!("datadog_api_key={}", walk(&ALNUM[26..], 40, 40)),
            walk(&ALNUM[26..], 40, 40),
        ),
        (
            format!(
                "curl -H \"Authorization: Bearer {}\" https://api.example",
                walk(ALNUM, 32, 41)
            ),
            walk(ALNUM, 32, 41),
        ),
        (
            format!("client_secret: \"{}\"", walk(ALNUM, 30, 42)),
            walk(ALNUM, 30, 42),
        ),
        (
            format!("DB_PASSWORD={}", walk(ALNUM, 24, 43)),
            walk(ALNUM, 24, 43),
        ),
        (
            format!(
                "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
                walk(ALNUM, 30, 44),
                walk(ALNUM, 43, 45)
            ),
            format!(
                "eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}",
                walk(ALNUM, 30, 44),
                walk(ALNUM, 43, 45)
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = secrets(text);
        if !got.iter().any(|(span, _)| span == want) {
            failures.push(format!("{text:?}: wanted {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn placeholders_references_and_ids_are_not_secrets() {
    let cases = [
        "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "key = AKIAXXXXXXXXXXXXXXXX",
        "password = \"changeme\"",
        "password: ${DB_PASSWORD}",
        "api_key = $API_KEY",
        "token: {{ .Values.token }}",
        "secret: ${{ secrets.DEPLOY_TOKEN }}",
        "password=%DB_PASSWORD%",
        "access_token = \"xxxxxxxxxxxxxxxxxxxxxxxx\"",
        "api_key: \"********************\"",
        "ssh_key_path = /home/deploy/.ssh/id_ed25519",
        "secret_name = \"prod-database-credentials\"",
        "request_id: 123e4567-e89b-12d3-a456-426614174000",
        "commit db7be58a70b52ec735c2fdd551d38c0b0b036686",
        "sha256 3773fb59da930bade0b7fa124197188c5f194f7cfba50d27f26d1edda98e334c",
        "md5 5d41402abc4b2a76b9719d911017c592",
        "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "glpat-XXXXXXXXXXX-XXXXXXXX",
        "xoxp-1234-1234-1234-4ddbc191d40ee098cbaae6f3523ada2d",
        "xoxb-xxxxxxxxx-xxxxxxxxxx-xxxxxxxxxxxx",
        "AIzaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "AIzaSyabcdefghijklmnopqrstuvwxyz1234567",
        "sk-ant-api03-abc123xyz-456de-klMnopqrstuvwx-3456yza789bcde-1234fghijklmnopAA",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
        "-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----",
        "primaryKey = \"Zm9vYmFyYmF6cXV4MTIzNDU2\"",
        "the author_id is 4471 and max_tokens=4096",
        "keyword: \"Befaehigung_P2\"",
        "credentialsId: 'ff083f76-7804-4ef1-80e4-fe975bb9141b'",
        "task_test_Ab3dE5gH7jK9mN1pQ3sT5vW7yZ9",
    ];
    let mut failures = Vec::new();
    for text in cases {
        let got = secrets(text);
        if !got.is_empty() {
            failures.push(format!("{text:?}: {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_service_account_private_key_is_a_secret_in_text_and_in_json() {
    let body: String = (0..4)
        .map(|i| format!("{}\\n", walk(B64, 64, 50 + i)))
        .collect();
    let raw = format!(
        "{{\"type\": \"service_account\", \"project_id\": \"acme\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\n{body}-----END PRIVATE KEY-----\\n\", \"client_email\": \"svc@acme.iam.gserviceaccount.com\"}}"
    );
    assert!(
        secrets(&raw).iter().any(|(_, v)| *v == "pem_private_key"),
        "raw: {:?}",
        secrets(&raw)
    );
    let doc: serde_json::Value = serde_json::from_str(&raw).expect("json");
    let scanner = Scanner::new(&ScannerConfig::default()).expect("scanner");
    let found = scan_json(&scanner, &doc);
    assert!(
        found
            .iter()
            .any(|f| f.pointer == "/private_key" && f.finding.kind == Kind::Secret),
        "{found:?}"
    );
}

#[test]
fn a_credential_named_json_field_is_read_as_its_member() {
    let scanner = Scanner::new(&ScannerConfig::default()).expect("scanner");
    let value = walk(ALNUM, 32, 60);
    let found = scanner.scan_field("client_secret", &value);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].start, found[0].end), (0, value.len()));
    for (name, value) in [
        ("client_secret", "changeme"),
        ("api_key", "${API_KEY}"),
        ("session_id", value.as_str()),
        ("request_id", "123e4567-e89b-12d3-a456-426614174000"),
        ("password", "hunter2"),
    ] {
        let found = scanner.scan_field(name, value);
        assert!(found.is_empty(), "{name}={value}: {found:?}");
    }
}

#[test]
fn keyword_led_and_fixed_length_gitleaks_rules_find_their_shapes() {
    // gitleaks' Anthropic rules: a fixed length and the `AA` tail, whatever the body looks like
    // (a readable one too, as in gitleaks' own cases).
    let readable = "abcdefghij0123456789-klmnopqrst_uvwxyz".repeat(3);
    let api = format!("sk-ant-api03-{}AA", &readable[..93]);
    let admin = format!("sk-ant-admin01-{}AA", walk(ALNUM, 93, 7));
    let facebook = format!("{}|{}", walk(DIGITS, 15, 8), walk(ALNUM, 27, 9));
    let sourcegraph = walk(HEX, 40, 10);
    let cases = [
        (format!("key {api}"), api.clone()),
        (format!("ADMIN={admin}"), admin.clone()),
        (format!("facebook {facebook}"), facebook.clone()),
        (
            format!("{{\"facebook token\":\"{facebook}\"}}"),
            facebook.clone(),
        ),
        (format!("sourcegraph: {sourcegraph}"), sourcegraph.clone()),
    ];
    for (text, want) in cases {
        let got: Vec<String> = secrets(&text).into_iter().map(|(s, _)| s).collect();
        assert!(got.contains(&want), "{text}: {got:?}");
    }
    for text in [
        format!("row {facebook}"),
        format!("commit {sourcegraph}"),
        format!("key sk-ant-api03-{}AB", &readable[..93]),
    ] {
        assert!(secrets(&text).is_empty(), "{text}: {:?}", secrets(&text));
    }
}

#[test]
fn bech32_addresses_are_found_in_either_case_but_not_mixed() {
    // BIP 173's own valid test vector, in its upper-case and lower-case forms.
    let upper = "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4";
    let lower = upper.to_ascii_lowercase();
    for address in [upper.to_string(), lower.clone()] {
        let found = Scanner::new(&ScannerConfig::default())
            .expect("scanner")
            .scan(&format!("send to {address}."));
        assert_eq!(found.len(), 1, "{address}: {found:?}");
        assert_eq!(found[0].kind, Kind::CryptoWallet);
    }
    let mixed = format!("BC1Q{}", &lower[4..]);
    let found = Scanner::new(&ScannerConfig::default())
        .expect("scanner")
        .scan(&format!("send to {mixed}."));
    assert!(
        found.iter().all(|f| f.kind != Kind::CryptoWallet),
        "{found:?}"
    );
}
