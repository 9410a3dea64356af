//! The credential broker and isolated `gatehouse exec`: the proxy, not the agent, holds upstream
//! keys; the agent's process starts with placeholders and without any secret the proxy reads, and
//! with `--user` it cannot read the proxy's state.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::origin::Origin;
use crate::support::{
    ALLOW_ALL, ProxySpec, TestPki, TestProxy, binary, origin, python, spawn_gatehouse,
};

/// What `gatehouse exec` hands agents in place of a brokered key (the default).
const PLACEHOLDER: &str = "gatehouse-placeholder";
/// The key the proxy holds.
const REAL_KEY: &str = "sk-real-broker-0123456789";
/// A key the agent brings of its own.
const AGENT_KEY: &str = "sk-agent-own-4d3c2b1a";

/// A file holding `secret`, in a folder of its own (kept as long as the returned guard lives).
fn secret_file(secret: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("upstream.key");
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

/// A proxy whose `credentials:` list holds `entries` (YAML flow mappings), everything else default.
async fn brokered(pki: &TestPki, entries: &[String]) -> TestProxy {
    let mut extra = String::from("credentials:\n");
    for entry in entries {
        extra.push_str(&format!("  - {entry}\n"));
    }
    let spec = ProxySpec {
        extra,
        ..Default::default()
    };
    TestProxy::start(pki, spec).await
}

/// What the origin's `/keyed/` route saw, in order: the path, and the key headers and query.
fn keyed(origin: &Origin) -> Vec<(String, Value)> {
    origin
        .received
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(what, body)| {
            let path = what.strip_prefix("KEYS ")?;
            Some((path.to_string(), serde_json::from_slice(body).unwrap()))
        })
        .collect()
}

/// `GET url` with `headers` (appended: a name may repeat); the status, the answer's headers as
/// text, and its body.
async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    let mut request = client.get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the proxy answers");
    let status = response.status().as_u16();
    let head: String = response
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    (status, head, response.text().await.unwrap())
}

/// The whole audit file, once `forwarded` requests have their outcome record (written when the
/// answer ends, just after the agent has read it).
async fn audit_after(proxy: &TestProxy, forwarded: usize) -> String {
    let path = proxy.dir.path().join("audit.jsonl");
    for _ in 0..100 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let outcomes = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["record"] == "outcome")
            .count();
        if outcomes >= forwarded {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{forwarded} outcome records never reached {}",
        path.display()
    );
}

/// The origin receives the key the proxy holds, once, in place of the agent's own; the answer that
/// echoes it reaches the agent scrubbed; the audit trail holds neither key; and a rewritten key file
/// takes effect without a restart.
#[tokio::test]
async fn the_origin_gets_the_real_key_and_the_agent_never_sees_it() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let (_keys, key_file) = secret_file(REAL_KEY);
    let entry = format!(
        "{{ host: '127.0.0.1', port: {port}, path: '/keyed/**', header: authorization, secret_file: '{}' }}",
        key_file.display(),
        port = origin.port()
    );
    let proxy = brokered(&pki, &[entry]).await;
    let client = proxy.client(true);
    let url = format!("https://127.0.0.1:{}/keyed/x", origin.port());
    let own = format!("Bearer {AGENT_KEY}");

    let (status, head, body) = send(&client, &url, &[("authorization", own.as_str())]).await;
    assert_eq!(status, 200, "{body}");
    let seen = keyed(&origin);
    assert_eq!(seen.len(), 1, "forwarded once: {seen:?}");
    assert_eq!(seen[0].0, "/keyed/x");
    assert_eq!(
        seen[0].1["authorization"],
        json!([format!("Bearer {REAL_KEY}")]),
        "the real key alone, the agent's neither forwarded nor beside it: {}",
        seen[0].1
    );
    assert!(
        !head.contains(REAL_KEY) && !body.contains(REAL_KEY),
        "the agent never sees the key: {head}{body}"
    );
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        echoed["authorization"],
        json!(["Bearer [credential]"]),
        "the echo arrives with the key scrubbed: {body}"
    );
    let audit = audit_after(&proxy, 1).await;
    assert!(
        !audit.contains(REAL_KEY) && !audit.contains(AGENT_KEY),
        "no key reaches the audit trail: {audit}"
    );

    // The key is rotated in its file; the proxy reads it again (it looks at most once a second).
    let rotated = "sk-rotated-broker-9876543210-abcdef";
    std::fs::write(&key_file, format!("{rotated}\n")).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, head, body) = send(&client, &url, &[("authorization", own.as_str())]).await;
    assert_eq!(status, 200, "{body}");
    let seen = keyed(&origin);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[1].1["authorization"],
        json!([format!("Bearer {rotated}")]),
        "the rotated key is the one forwarded: {}",
        seen[1].1
    );
    assert!(
        !head.contains(rotated) && !body.contains(rotated) && body.contains("[credential]"),
        "the rotated key is scrubbed too: {head}{body}"
    );
    let audit = audit_after(&proxy, 2).await;
    assert!(!audit.contains(rotated), "{audit}");
}

/// With `require: placeholder`, a request that brings a key of its own in any key slot, beside the
/// placeholder or in place of it, or that carries no placeholder at all, is refused with a reason,
/// audited, and never reaches the origin; the placeholder alone is exchanged for the real key.
#[tokio::test]
async fn require_placeholder_refuses_a_key_of_the_agents_own() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let (_keys, key_file) = secret_file(REAL_KEY);
    let entry = format!(
        "{{ host: '127.0.0.1', port: {port}, path: '/keyed/**', header: x-api-key, secret_file: '{}', require: placeholder }}",
        key_file.display(),
        port = origin.port()
    );
    let proxy = brokered(&pki, &[entry]).await;
    let client = proxy.client(true);
    let url = format!("https://127.0.0.1:{}/keyed/x", origin.port());
    let bearer_own = format!("Bearer {AGENT_KEY}");
    let foreign = "not a key of the agent's own";
    let missing = "must carry the placeholder credential";
    let refused: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("x-api-key", AGENT_KEY)], foreign),
        (vec![], missing),
        (vec![("authorization", bearer_own.as_str())], foreign),
        // Smuggled beside the right placeholder: in another key header, or the same one twice.
        (
            vec![
                ("x-api-key", PLACEHOLDER),
                ("authorization", bearer_own.as_str()),
            ],
            foreign,
        ),
        (
            vec![("x-api-key", PLACEHOLDER), ("x-goog-api-key", AGENT_KEY)],
            foreign,
        ),
        (
            vec![("x-api-key", PLACEHOLDER), ("api-key", AGENT_KEY)],
            foreign,
        ),
        (
            vec![("x-api-key", PLACEHOLDER), ("x-api-key", AGENT_KEY)],
            foreign,
        ),
    ];
    for (headers, why) in &refused {
        let (status, _, body) = send(&client, &url, headers).await;
        assert_eq!(status, 403, "{headers:?}: {body}");
        assert!(
            body.contains(why) && body.contains("requests to 127.0.0.1"),
            "{headers:?} is refused because it is {why:?}: {body}"
        );
        assert!(
            !body.contains(AGENT_KEY) && !body.contains(REAL_KEY),
            "a refusal names the slot, never a key: {body}"
        );
    }
    assert!(
        keyed(&origin).is_empty(),
        "a refused request never reaches the origin: {:?}",
        keyed(&origin)
    );
    let refusals = proxy
        .decisions()
        .into_iter()
        .filter(|d| {
            d["effect"] == "deny"
                && d["reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("placeholder credential"))
        })
        .count();
    assert_eq!(
        refusals,
        refused.len(),
        "every refusal is audited: {:?}",
        proxy.decisions()
    );

    let (status, _, body) = send(&client, &url, &[("x-api-key", PLACEHOLDER)]).await;
    assert_eq!(status, 200, "the placeholder passes: {body}");
    let seen = keyed(&origin);
    assert_eq!(seen.len(), 1, "{seen:?}");
    let keys = &seen[0].1;
    assert_eq!(keys["x-api-key"], json!([REAL_KEY]), "{keys}");
    for slot in ["authorization", "x-goog-api-key", "api-key"] {
        assert_eq!(keys[slot], json!([]), "{slot}: {keys}");
    }
    assert!(
        !body.contains(REAL_KEY) && body.contains("[credential]"),
        "{body}"
    );
    let audit = audit_after(&proxy, 1).await;
    assert!(
        !audit.contains(REAL_KEY) && !audit.contains(AGENT_KEY),
        "{audit}"
    );
}

/// Both SDKs as an agent writes them: no `api_key=`, the key comes from the environment. Each
/// call's answer (the origin's echo of the key headers) or its error goes in the report.
const PLACEHOLDER_SCRIPT: &str = r#"
import json, os, sys
import anthropic, openai
base = sys.argv[1]
report = {"env": {name: os.environ.get(name) for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")}}
def call(name, fn, error):
    try:
        report[name] = fn()
    except error as e:
        report[name] = {"status": e.status_code, "message": str(e)}
call("openai", lambda: openai.OpenAI(base_url=base + "/keyed/openai/v1", max_retries=0)
     .get("/models", cast_to=object), openai.APIStatusError)
call("anthropic", lambda: anthropic.Anthropic(base_url=base + "/keyed/anthropic", max_retries=0)
     .get("/v1/models", cast_to=object), anthropic.APIStatusError)
print(json.dumps(report))
"#;

/// The official OpenAI and Anthropic SDKs, unmodified and given no key, start under `gatehouse
/// exec` with the placeholder in their key variables (over keys the shell had set), pass `require:
/// placeholder`, and the origin receives the real keys, which the program never sees.
#[tokio::test]
async fn official_sdks_start_with_placeholders_under_exec() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let (openai_real, anthropic_real) = ("sk-real-openai-7e6d5c4b3a", "sk-ant-real-1a2b3c4d5e");
    let (_openai_dir, openai_file) = secret_file(openai_real);
    let (_anthropic_dir, anthropic_file) = secret_file(anthropic_real);
    let entries = [
        format!(
            "{{ host: '127.0.0.1', port: {port}, path: '/keyed/openai/**', header: authorization, secret_file: '{}', require: placeholder, agent_env: [OPENAI_API_KEY] }}",
            openai_file.display(),
            port = origin.port()
        ),
        format!(
            "{{ host: '127.0.0.1', port: {port}, path: '/keyed/anthropic/**', header: x-api-key, secret_file: '{}', require: placeholder, agent_env: [ANTHROPIC_API_KEY] }}",
            anthropic_file.display(),
            port = origin.port()
        ),
    ];
    let proxy = brokered(&pki, &entries).await;
    let base = format!("https://127.0.0.1:{}", origin.port());
    let output = tokio::process::Command::new(binary())
        .args(["exec", "--config"])
        .arg(&proxy.config_path)
        .arg("--")
        .arg(python())
        .args(["-c", PLACEHOLDER_SCRIPT, &base])
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        // Keys of the shell's own, which exec must replace.
        .env("OPENAI_API_KEY", "sk-inherited-openai")
        .env("ANTHROPIC_API_KEY", "sk-ant-inherited")
        .output()
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "python failed: {stderr}");
    for secret in [openai_real, anthropic_real] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "the program never sees a real key: {stdout}{stderr}"
        );
    }
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["env"],
        json!({"OPENAI_API_KEY": PLACEHOLDER, "ANTHROPIC_API_KEY": PLACEHOLDER}),
        "{report}"
    );
    assert_eq!(
        report["openai"]["authorization"],
        json!(["Bearer [credential]"]),
        "the OpenAI SDK's call went through: {report}"
    );
    assert_eq!(
        report["anthropic"]["x-api-key"],
        json!(["[credential]"]),
        "the Anthropic SDK's call went through (it may send its key as `Authorization: Bearer`, \
         which must count as carrying the placeholder): {report}"
    );
    let seen: BTreeMap<String, Value> = keyed(&origin).into_iter().collect();
    let openai = seen
        .get("/keyed/openai/v1/models")
        .unwrap_or_else(|| panic!("the OpenAI call arrived: {seen:?}"));
    assert_eq!(
        openai["authorization"],
        json!([format!("Bearer {openai_real}")]),
        "{openai}"
    );
    let anthropic = seen
        .get("/keyed/anthropic/v1/models")
        .unwrap_or_else(|| panic!("the Anthropic call arrived: {seen:?}"));
    assert_eq!(
        anthropic["x-api-key"],
        json!([anthropic_real]),
        "{anthropic}"
    );
    assert_eq!(
        anthropic["authorization"],
        json!([]),
        "whatever the SDK put in other key slots is dropped: {anthropic}"
    );
}

/// `gatehouse exec -v` hands the program its own proxy credentials with a fresh execution, and
/// keeps from it every secret the config reads from the environment (both agents' tokens, the
/// brokered key, the PII hash key) and the admin token, saying so on stderr; other variables
/// pass.
#[test]
fn exec_keeps_every_secret_from_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("policies")).unwrap();
    std::fs::write(d.join("policies/test.yaml"), ALLOW_ALL).unwrap();
    let config = d.join("gatehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:3999\nca:\n  dir: {}\npolicies:\n  dir: {}\nidentity:\n  agents:\n    \
             - {{ id: a, token_env: GATEHOUSE_IT_TOKEN_A }}\n    \
             - {{ id: b, token_env: GATEHOUSE_IT_TOKEN_B }}\ncredentials:\n  \
             - {{ host: api.openai.com, secret_env: GATEHOUSE_IT_OPENAI_KEY }}\npii:\n  \
             hash_key_env: GATEHOUSE_IT_HASH_KEY\n",
            d.join("certs").display(),
            d.join("policies").display()
        ),
    )
    .unwrap();
    let token_a = "tok-a-7d1c9e";
    let secrets = [
        ("GATEHOUSE_IT_TOKEN_A", token_a),
        ("GATEHOUSE_IT_TOKEN_B", "tok-b-93fe0a"),
        ("GATEHOUSE_IT_OPENAI_KEY", "sk-env-broker-5a5a5a"),
        ("GATEHOUSE_IT_HASH_KEY", "hash-key-0c0c0c0c0c"),
        ("GATEHOUSE_ADMIN_TOKEN", "admin-tok-e4e4e4"),
    ];
    let output = std::process::Command::new(binary())
        .args(["exec", "-v", "--agent", "a", "--config"])
        .arg(&config)
        .args(["--", "env"])
        .envs(secrets)
        .env("GATEHOUSE_IT_UNRELATED", "stays-here")
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stderr}");
    let vars: BTreeMap<&str, &str> = stdout.lines().filter_map(|l| l.split_once('=')).collect();

    let execution = vars["GATEHOUSE_EXECUTION_ID"];
    assert!(execution.starts_with("exec-"), "{execution}");
    let proxy = vars["HTTPS_PROXY"];
    assert_eq!(
        proxy,
        format!("http://a+{execution}:{token_a}@127.0.0.1:3999"),
        "agent a's own credentials with the execution"
    );
    assert_eq!(vars["NODE_USE_ENV_PROXY"], "1");
    assert_eq!(vars["GATEHOUSE_AGENT"], "a");
    assert_eq!(
        vars["OPENAI_API_KEY"], PLACEHOLDER,
        "the brokered key's placeholder"
    );
    assert_eq!(vars["GATEHOUSE_IT_UNRELATED"], "stays-here");
    for (name, value) in secrets {
        assert!(!vars.contains_key(name), "{name} is kept from the program");
        if value == token_a {
            // Agent a's token is in its proxy URLs, and nowhere else.
            for line in stdout.lines().filter(|l| l.contains(value)) {
                let (var, set) = line.split_once('=').unwrap_or_default();
                assert!(
                    var.to_ascii_uppercase().ends_with("_PROXY") && set == proxy,
                    "{line}"
                );
            }
        } else {
            assert!(
                !stdout.contains(value),
                "{name}'s value reached the program"
            );
        }
    }
    let line = stderr
        .lines()
        .find(|l| l.starts_with("gatehouse exec: "))
        .unwrap_or_else(|| panic!("-v says what it kept: {stderr}"));
    assert!(
        line.starts_with(&format!("gatehouse exec: agent a execution {execution}; ")),
        "{line}"
    );
    let kept: BTreeSet<&str> = line
        .split_once("kept from the program: ")
        .map(|(_, list)| list.trim().split(", ").collect())
        .unwrap_or_else(|| panic!("{line}"));
    let expected: BTreeSet<&str> = secrets.iter().map(|(name, _)| *name).collect();
    assert_eq!(kept, expected, "{line}");
}

/// The OS user `exec --user` tests run agents as.
const AGENT_USER: &str = "gatehouse-test-agent";

/// `id` with `args`, trimmed.
fn id(args: &[&str]) -> String {
    let output = std::process::Command::new("id")
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "id {args:?}");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The uid and gid of [`AGENT_USER`], made a system user first if need be.
fn agent_user() -> (u32, u32) {
    let exists = std::process::Command::new("id")
        .arg(AGENT_USER)
        .output()
        .unwrap()
        .status
        .success();
    if !exists {
        let added = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(AGENT_USER)
            .output()
            .unwrap();
        // 9: made meanwhile by a concurrent run.
        assert!(
            added.status.success()
                || added.status.code() == Some(9)
                || String::from_utf8_lossy(&added.stderr).contains("already exists"),
            "useradd: {}",
            String::from_utf8_lossy(&added.stderr)
        );
    }
    let number = |flag: &str| id(&[flag, AGENT_USER]).parse::<u32>().unwrap();
    (number("-u"), number("-g"))
}

/// Run as root, `gatehouse exec --user` starts the program as that user, without root's groups:
/// it reads the CA bundle, but none of the CA key, the admin token, the execution key, the audit
/// trail or the budget store the proxy made. Started by anyone else, `--user` is refused.
#[tokio::test]
async fn exec_user_runs_the_agent_as_another_user_who_cannot_read_the_proxy_state() {
    assert_eq!(id(&["-u"]), "0", "this test needs root (CI runs as root)");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (uid, gid) = agent_user();
    assert_ne!(uid, 0);
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-user-")
        .tempdir_in("/tmp")
        .unwrap();
    // The agent's user walks through this folder to the bundle.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut yaml = ProxySpec::default().yaml(&pki, &dir.path().join("certs"), "127.0.0.1:0");
    yaml.push_str("log:\n  format: json\n");
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (_proxy, addr, _log) = spawn_gatehouse(&config).await;

    // One request, so the audit trail and the stores exist.
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
        .build()
        .unwrap();
    let response = client
        .get(format!("http://127.0.0.1:{}/echo", origin.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    let private = [
        "certs/gatehouse-ca.key",
        "certs/admin-token",
        "certs/execution-key",
        "audit.jsonl",
        "budget.sqlite",
    ];
    for file in private {
        assert!(dir.path().join(file).exists(), "the proxy made {file}");
    }

    let script = format!(
        "id -u; id -G; for f in {}; do cat \"$f\" >/dev/null 2>&1 && echo \"READ $f\" || echo \"DENIED $f\"; done; \
         cat \"$SSL_CERT_FILE\" >/dev/null && echo BUNDLE-OK",
        private.join(" ")
    );
    let output = tokio::process::Command::new(binary())
        .args(["exec", "--user", AGENT_USER, "--config"])
        .arg(&config)
        .args(["--", "sh", "-c", &script])
        .current_dir(dir.path())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some(uid.to_string().as_str()), "{stdout}");
    assert_eq!(
        lines.next(),
        Some(gid.to_string().as_str()),
        "the user's own group only, none of root's: {stdout}"
    );
    for file in private {
        assert!(
            stdout.contains(&format!("DENIED {file}")),
            "{file} is private to the proxy: {stdout}"
        );
    }
    assert!(stdout.contains("BUNDLE-OK"), "{stdout}");

    exec_user_needs_root(uid, gid).await;
}

/// `gatehouse exec --user` started by [`AGENT_USER`] itself (on a config and CA folder it owns) is
/// refused, and the program does not run.
async fn exec_user_needs_root(uid: u32, gid: u32) {
    let dir = tempfile::Builder::new()
        .prefix("gatehouse-nonroot-")
        .tempdir_in("/tmp")
        .unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("policies")).unwrap();
    std::fs::write(d.join("policies/test.yaml"), ALLOW_ALL).unwrap();
    let config = d.join("gatehouse.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:3128\nca:\n  dir: {}\npolicies:\n  dir: {}\nidentity:\n  allow_anonymous: true\n",
            d.join("certs").display(),
            d.join("policies").display()
        ),
    )
    .unwrap();
    let chown = std::process::Command::new("chown")
        .args(["-R", &format!("{uid}:{gid}")])
        .arg(d)
        .status()
        .unwrap();
    assert!(chown.success());
    let output = tokio::process::Command::new(binary())
        .args(["exec", "--user", AGENT_USER, "--config"])
        .arg(&config)
        .args(["--", "sh", "-c", "echo RAN"])
        .current_dir(d)
        .env_remove("GATEHOUSE_ADMIN_TOKEN")
        .uid(uid)
        .gid(gid)
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            // The binary's folders are closed to other users on this machine.
            eprintln!("skipped: {AGENT_USER} cannot start {}: {e}", binary());
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("RAN"),
        "the program never runs"
    );
    assert!(
        stderr.contains("--user needs gatehouse exec to be started as root"),
        "{stderr}"
    );
}
