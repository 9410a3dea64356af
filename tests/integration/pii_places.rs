//! Nothing leaves unlooked-at: personal data in JSON member names, form field names, bare query
//! names, every multipart part, text in another charset or in compatibility forms, the URL path
//! and header values is found (a rule refuses it) and, under a `mask` obligation, leaves masked.
//! Real clients (curl, Python `requests`) through the proxy, over real sockets.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::{TestProxy, origin, python};

const RULES: &str = r#"
rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: mask-personal-data
    trigger: http.request
    match: { paths: ["/mirror", "/masked", "/masked/**"] }
    effect: allow
    redact: { kinds: [email, credit_card, us_ssn], style: mask }
  - id: no-personal-data
    trigger: http.request
    match: { paths: ["/echo", "/echo/**"] }
    when: "pii.total > 0"
    effect: deny
    message: personal data may not leave
  - id: allow-echo
    trigger: http.request
    match: { paths: ["/echo", "/echo/**"] }
    effect: allow
  - id: no-personal-data-in-uploads
    trigger: http.request
    match: { paths: ["/opaque/**"] }
    when: "pii.total > 0"
    effect: deny
  - id: uploads-as-they-are
    trigger: http.request
    match: { paths: ["/opaque", "/opaque/**"] }
    effect: allow
    allow_uninspected: true
"#;

/// Runs curl through `proxy` with `args`; the status and the body.
async fn curl(proxy: &TestProxy, args: Vec<String>) -> (u16, String) {
    let ca = proxy.dir.path().join("certs/gatehouse-ca.pem");
    let proxy_url = proxy.url();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--http1.1", "--proxy", &proxy_url, "--cacert"])
            .arg(&ca)
            .args(["-w", "\n%{http_code}"])
            .args(&args)
            .output()
            .expect("curl is installed")
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = stdout.rsplit_once('\n').unwrap();
    (status.parse().unwrap(), body.to_string())
}

/// curl `--data-binary data` (`@file` reads a file) as `content_type` to `url`.
async fn post(proxy: &TestProxy, content_type: &str, data: &str, url: String) -> (u16, String) {
    let header = format!("content-type: {content_type}");
    curl(proxy, args(&["-H", &header, "--data-binary", data, &url])).await
}

/// Runs `script` in the test venv's Python with `sys.argv[1:]` = the origin's base URL, the
/// proxy URL and the proxy's CA file; it prints one JSON document per request it makes.
async fn python_requests(proxy: &TestProxy, origin: &origin::Origin, script: &str) -> Vec<Value> {
    let base = format!("https://localhost:{}", origin.port());
    let ca = proxy.dir.path().join("certs/gatehouse-ca.pem");
    let (proxy_url, script) = (proxy.url(), script.to_string());
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python())
            .args(["-c", &script, &base, &proxy_url])
            .arg(&ca)
            // requests prefers these to the session's own `verify`.
            .env_remove("REQUESTS_CA_BUNDLE")
            .env_remove("CURL_CA_BUNDLE")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The Python preamble: a session through the proxy, and `report(response)`.
const PY: &str = r#"
import json, sys
import requests
base, proxy, ca = sys.argv[1], sys.argv[2], sys.argv[3]
s = requests.Session()
s.proxies = {"https": proxy}
s.verify = ca
def report(r):
    print(json.dumps({"status": r.status_code, "body": r.text}))
"#;

fn url(origin: &origin::Origin, path: &str) -> String {
    format!("https://localhost:{}{path}", origin.port())
}

fn received(origin: &origin::Origin) -> Vec<(String, String)> {
    origin
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(target, body)| (target.clone(), String::from_utf8_lossy(body).into_owned()))
        .collect()
}

fn refused_by_rule(status: u16, body: &str) {
    assert_eq!(status, 403, "{body}");
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        error["error"]["rules"],
        json!(["no-personal-data"]),
        "{body}"
    );
}

fn args(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn json_member_names_are_scanned_and_masked_without_losing_a_sibling() {
    let (_pki, origin, proxy) = TestProxy::with_origin(RULES).await;
    let json_type = "application/json";
    let (status, body) = post(
        &proxy,
        json_type,
        r#"{"metadata": {"alice@example.com": "x"}}"#,
        url(&origin, "/echo"),
    )
    .await;
    refused_by_rule(status, &body);

    let array = r#"[{"to": "jane\u0040example.com"}]"#;
    let (status, body) = post(&proxy, json_type, array, url(&origin, "/echo")).await;
    refused_by_rule(status, &body);

    let doc = r#"{"metadata": {"alice@example.com": "x", "bob@example.com": "y"}, "n": 1}"#;
    let (status, body) = post(&proxy, json_type, doc, url(&origin, "/mirror")).await;
    assert_eq!(status, 200, "{body}");
    let seen = received(&origin);
    assert_eq!(seen.len(), 1);
    let sent: Value = serde_json::from_str(&seen[0].1).unwrap();
    assert_eq!(
        sent,
        json!({"metadata": {"[EMAIL]": "x", "[EMAIL]#2": "y"}, "n": 1}),
        "both members arrive, renamed"
    );
    let record = proxy
        .decisions()
        .into_iter()
        .rfind(|r| r["trigger"] == "http.request")
        .unwrap();
    assert_eq!(record["pii"], json!({"email": 2}));
}

#[tokio::test]
async fn form_field_names_and_bare_query_names_are_scanned_and_masked() {
    let (_pki, origin, proxy) = TestProxy::with_origin(RULES).await;
    let script = format!(
        "{PY}{}",
        r#"
text = "SSN 078-05-1121 card 4111 1111 1111 1111"
form = {"content-type": "application/x-www-form-urlencoded"}
report(s.post(base + "/echo", data=text, headers=form))
report(s.post(base + "/mirror", data=text, headers=form))
report(s.post(base + "/mirror", data={"note": "hi", "jane@example.com": "x"}))
"#
    );
    let answers = python_requests(&proxy, &origin, &script).await;
    refused_by_rule(
        answers[0]["status"].as_u64().unwrap() as u16,
        answers[0]["body"].as_str().unwrap(),
    );
    assert_eq!(answers[1]["status"], 200);
    assert_eq!(answers[2]["status"], 200);
    let seen = received(&origin);
    assert_eq!(seen[0].1, "SSN+%5BSSN%5D+card+%5BCARD%5D=");
    assert_eq!(seen[1].1, "note=hi&%5BEMAIL%5D=x");

    let (status, body) = curl(&proxy, args(&[&url(&origin, "/echo?4111111111111111")])).await;
    refused_by_rule(status, &body);
    let (status, _) = curl(
        &proxy,
        args(&[&url(&origin, "/mirror?4111111111111111&lang=en")]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(received(&origin)[2].0, "/mirror?%5BCARD%5D=&lang=en");
}

#[tokio::test]
async fn every_multipart_part_that_is_text_is_scanned_and_others_are_not_forwarded_unjudged() {
    let (_pki, origin, proxy) = TestProxy::with_origin(RULES).await;
    let script = format!(
        "{PY}{}",
        r#"
jsonl = b'{"messages": [{"role": "user", "content": "mail jane@example.com"}]}\n'
clean = b'{"messages": [{"role": "user", "content": "hello"}]}\n'
escaped = b'{"messages": [{"role": "user", "content": "mail jane\\u0040example.com"}]}\n'
png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00"
def upload(path, content, kind="application/octet-stream"):
    files = {"file": ("train.jsonl", content, kind)}
    return s.post(base + path, files=files, data={"purpose": "fine-tune"})
report(upload("/echo", jsonl))
report(upload("/echo", clean))
report(upload("/echo", png, "image/png"))
report(upload("/opaque", png, "image/png"))
report(upload("/echo", escaped))
report(upload("/opaque/users/jane%40example.com", png, "image/png"))
report(upload("/mirror", jsonl))
"#
    );
    let answers = python_requests(&proxy, &origin, &script).await;
    let status = |i: usize| answers[i]["status"].as_u64().unwrap() as u16;
    let body = |i: usize| answers[i]["body"].as_str().unwrap().to_string();
    refused_by_rule(status(0), &body(0));
    assert_eq!(status(1), 200, "{}", body(1));
    assert_ne!(status(2), 200);
    assert!(
        body(2).contains("not text") && body(2).contains("allow_uninspected"),
        "{}",
        body(2)
    );
    assert_eq!(
        status(3),
        200,
        "a rule may let an uninspected upload through"
    );
    refused_by_rule(status(4), &body(4));
    assert_eq!(
        status(5),
        403,
        "the path of an uninspected upload is still read"
    );
    assert!(
        body(5).contains("no-personal-data-in-uploads"),
        "{}",
        body(5)
    );
    assert_eq!(status(6), 200, "a text part is masked where it stands");
    let sent = &received(&origin)[0].1;
    assert!(
        sent.contains("mail [EMAIL]") && sent.contains("fine-tune"),
        "{sent}"
    );

    let mixed = "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nY2FyZCA0MTExIDExMTEgMTExMSAxMTEx\r\n--b--\r\n";
    let (status, body) = post(
        &proxy,
        "multipart/mixed; boundary=b",
        mixed,
        url(&origin, "/echo"),
    )
    .await;
    refused_by_rule(status, &body);

    let (status, body) = post(
        &proxy,
        "multipart/form-data; boundary=zz",
        "--b\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\njane@example.com\r\n--b--\r\n",
        url(&origin, "/echo"),
    )
    .await;
    assert_ne!(status, 200);
    assert!(
        body.contains("boundary") && body.contains("allow_uninspected"),
        "{body}"
    );
}

fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let units = if bom { vec![0xFEFF] } else { Vec::new() };
    for unit in units.into_iter().chain(text.encode_utf16()) {
        out.extend(if little {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    out
}

#[tokio::test]
async fn text_in_another_charset_or_in_compatibility_forms_is_read_as_a_model_reads_it() {
    let (_pki, origin, proxy) = TestProxy::with_origin(RULES).await;
    let dir = proxy.dir.path().to_path_buf();
    let file = |name: &str, bytes: Vec<u8>| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        format!("@{}", path.display())
    };
    let text = "mail jane@example.com";
    let cases = [
        ("text/plain", file("le-bom", utf16(text, true, true))),
        (
            "text/plain; charset=utf-16be",
            file("be", utf16(text, false, false)),
        ),
        (
            "text/plain; charset=utf-32",
            file(
                "utf32",
                text.chars()
                    .flat_map(|c| (c as u32).to_le_bytes())
                    .collect(),
            ),
        ),
        (
            "application/json; charset=utf-16",
            file("json16", utf16(r#"{"to": "jane@example.com"}"#, true, true)),
        ),
    ];
    for (content_type, data) in &cases {
        let (status, body) = post(&proxy, content_type, data, url(&origin, "/echo")).await;
        refused_by_rule(status, &body);
    }

    // A form's escapes in Shift_JIS: the fullwidth digits of a card number.
    let sjis: String = "4111111111111111"
        .chars()
        .map(|c| if c == '4' { "%82%53" } else { "%82%50" })
        .collect();
    let form = "application/x-www-form-urlencoded; charset=shift_jis";
    let (status, body) = post(&proxy, form, &format!("card={sjis}"), url(&origin, "/echo")).await;
    refused_by_rule(status, &body);

    let latin1 = file("latin1", b"caf\xe9, jane@example.com".to_vec());
    let (status, _) = post(
        &proxy,
        "text/plain; charset=iso-8859-1",
        &latin1,
        url(&origin, "/mirror"),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&proxy, "text/plain", &cases[0].1, url(&origin, "/mirror")).await;
    assert_eq!(status, 200);
    let seen = received(&origin);
    assert_eq!(seen[0].1, "café, [EMAIL]", "forwarded as UTF-8, masked");
    assert_eq!(seen[1].1, "mail [EMAIL]");

    let clean = file("clean", utf16("hello", true, true));
    let (status, body) = post(
        &proxy,
        "text/plain; charset=utf-16",
        &clean,
        url(&origin, "/echo"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["content-type"], "text/plain; charset=utf-8");
    assert_eq!(seen["body_len"], 5);

    let (status, body) = post(
        &proxy,
        "text/plain; charset=utf-7",
        "hello",
        url(&origin, "/echo"),
    )
    .await;
    assert_ne!(status, 200);
    assert!(body.contains("utf-7"), "{body}");

    let script = format!(
        "{PY}{}",
        r#"
report(s.post(base + "/mirror", json={"note": "card ４１１１ １１１１ １１１１ １１１１, ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ"}))
report(s.post(base + "/echo", json={"note": "ja\u200bne@exa\u00admple.com"}))
"#
    );
    let answers = python_requests(&proxy, &origin, &script).await;
    assert_eq!(answers[0]["status"], 200);
    refused_by_rule(
        answers[1]["status"].as_u64().unwrap() as u16,
        answers[1]["body"].as_str().unwrap(),
    );
    let sent: Value = serde_json::from_str(&received(&origin)[2].1).unwrap();
    assert_eq!(sent["note"], "card [CARD], [EMAIL]");
}

#[tokio::test]
async fn the_path_is_always_scanned_and_header_values_but_the_credentials() {
    let (_pki, origin, proxy) = TestProxy::with_origin(RULES).await;
    let (status, body) = curl(
        &proxy,
        args(&[&url(&origin, "/echo/users/jane%40example.com")]),
    )
    .await;
    refused_by_rule(status, &body);
    let (status, body) = curl(
        &proxy,
        args(&["-H", "X-Customer: jane@example.com", &url(&origin, "/echo")]),
    )
    .await;
    refused_by_rule(status, &body);
    let (status, body) = curl(
        &proxy,
        args(&["-H", "X-4111111111111111: 1", &url(&origin, "/echo")]),
    )
    .await;
    refused_by_rule(status, &body);

    let (status, body) = curl(
        &proxy,
        args(&[
            "-H",
            "Authorization: Bearer jane@example.com",
            "-H",
            "Cookie: who=jane@example.com",
            "-H",
            "x-api-key: sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
            &url(&origin, "/echo"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "credential headers are not scanned: {body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["authorization"], "Bearer jane@example.com");

    let (status, body) = curl(
        &proxy,
        args(&[
            "-H",
            "X-Customer: jane@example.com",
            "-H",
            "X-Note: card 4111 1111 1111 1111",
            &url(&origin, "/masked"),
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(seen["headers"]["x-customer"], "[EMAIL]");
    assert_eq!(seen["headers"]["x-note"], "card [CARD]");

    let (status, body) = curl(
        &proxy,
        args(&[&url(&origin, "/masked/users/jane%40example.com")]),
    )
    .await;
    assert_eq!(status, 403);
    assert!(body.contains("URL path"), "{body}");

    let audit = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    // Whole values, not fragments: a hex digest in the chain holds "4111" about once in 200 runs.
    for needle in ["jane", "4111111111111111", "4111 1111"] {
        if let Some(at) = audit.find(needle) {
            let line = audit[..at].rsplit('\n').next().unwrap_or("");
            panic!("values never reach the audit trail: {needle} after {line}");
        }
    }
}
