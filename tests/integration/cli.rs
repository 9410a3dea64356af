//! The command line: CA management, config errors, environment for agents.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::binary;

#[test]
fn ca_init_creates_a_private_key_once_and_ca_path_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.yaml");
    std::fs::write(
        &config,
        format!("ca:\n  dir: {}\n", dir.path().join("certs").display()),
    )
    .unwrap();
    let first = Command::new(binary())
        .args(["ca", "init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stderr).contains("created"));
    let key = dir.path().join("certs/gatehouse-ca.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let pem = std::fs::read_to_string(dir.path().join("certs/gatehouse-ca.pem")).unwrap();

    let second = Command::new(binary())
        .args(["ca", "init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&second.stderr).contains("already exists"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("certs/gatehouse-ca.pem")).unwrap(),
        pem
    );

    let path = Command::new(binary())
        .args(["ca", "path", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let printed = String::from_utf8(path.stdout).unwrap();
    assert_eq!(std::fs::read_to_string(printed.trim()).unwrap(), pem);
}

#[test]
fn config_errors_exit_non_zero_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broken.yaml");
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\nlimits:\n  max_conections: 5\n",
    )
    .unwrap();
    let output = Command::new(binary())
        .args(["run", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yaml:3: key `max_conections`"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let missing = Command::new(binary())
        .args(["run", "--config", "/nonexistent/g.yaml"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("/nonexistent/g.yaml: cannot read config")
    );
}

#[test]
fn env_on_the_embedded_defaults_prints_exports_for_the_anonymous_agent() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .arg("env")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.contains("export HTTPS_PROXY='http://anonymous+exec-"),
        "{stdout}"
    );
    assert!(stdout.contains("@127.0.0.1:8080'"), "{stdout}");
    assert!(stdout.contains("export NODE_EXTRA_CA_CERTS='"), "{stdout}");
    assert!(
        dir.path().join("certs/gatehouse-ca.pem").exists(),
        "the CA is created on first use"
    );
    assert!(dir.path().join("certs/gatehouse-bundle.pem").exists());
}

#[test]
fn exec_reports_a_missing_program() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(binary())
        .args(["exec", "--", "/nonexistent/program"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot run `/nonexistent/program`"));
}

#[test]
fn scan_places_each_finding_in_the_file_itself() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("call.json");
    let arguments = r#"{\"to\": \"jane\\u0040example.com\"}"#;
    let body = format!(
        "{{\n  \"messages\": [{{\"role\": \"user\", \"content\": \"card 4111\\u00201111 1111 1111 or \\u00e9 bob@example.org\"}}],\n  \"tool\": {{\"arguments\": \"{arguments}\"}},\n  \"carol@example.net\": 5555555555554444\n}}\n"
    );
    serde_json::from_str::<serde_json::Value>(&body).expect("the test's JSON");
    std::fs::write(&file, &body).unwrap();
    let out = Command::new(binary())
        .arg("scan")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut placed: Vec<(String, String)> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: serde_json::Value = serde_json::from_str(line).unwrap();
            let (start, end) = (
                f["raw_start"].as_u64().unwrap(),
                f["raw_end"].as_u64().unwrap(),
            );
            let kind = f["kind"].as_str().unwrap().to_string();
            (kind, body[start as usize..end as usize].to_string())
        })
        .collect();
    placed.sort();
    assert_eq!(
        placed,
        [
            ("credit_card", "4111\\u00201111 1111 1111"),
            ("credit_card", "5555555555554444"),
            ("email", "bob@example.org"),
            ("email", "carol@example.net"),
            // In a string that holds JSON: the whole string.
            ("email", r#"{\"to\": \"jane\\u0040example.com\"}"#),
        ]
        .map(|(k, s)| (k.to_string(), s.to_string()))
    );

    let text = dir.path().join("note.txt");
    std::fs::write(&text, "é mail dan@example.com\n").unwrap();
    let out = Command::new(binary())
        .arg("scan")
        .arg(&text)
        .output()
        .unwrap();
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (f["raw_start"].as_u64(), f["raw_end"].as_u64()),
        (Some(8), Some(23))
    );
}
