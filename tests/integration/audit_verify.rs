//! `gatehouse audit verify` on a trail a real proxy wrote: it holds as written, and each way of
//! tampering with it is caught, with a non-zero exit and a message that says what happened — an
//! edited line, a cut tail, a file rewritten with a recomputed chain (from its first record, or
//! after it), a forged checkpoint, an index row that disagrees with the file.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{ALLOW_ALL, TestProxy, binary};

struct Trail {
    dir: PathBuf,
    config: PathBuf,
    original: String,
}

impl Trail {
    fn file(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
    }

    /// `audit verify` with `args`; exit code and stdout.
    fn verify(&self, args: &[&str]) -> (i32, String) {
        let out = Command::new(binary())
            .args(["audit", "verify"])
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        (out.status.code().unwrap_or(-1), format!("{stdout}{stderr}"))
    }

    fn verify_config(&self) -> (i32, String) {
        self.verify(&["-c", self.config.to_str().unwrap()])
    }

    /// Verifies the file with `text` in place of what the proxy wrote, then puts it back.
    fn tampered(&self, text: &str) -> (i32, String) {
        std::fs::write(self.file(), text).unwrap();
        let result = self.verify_config();
        std::fs::write(self.file(), &self.original).unwrap();
        result
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Re-chains `records` from `prev` the way someone without the chain key would: SHA-256 over
/// the line, and (when `fake_mac`) a made-up mac on a record that still claims to be keyed.
fn rechain(records: &[Value], mut prev: String, fake_mac: bool) -> String {
    let mut text = String::new();
    for record in records {
        let mut record = record.clone();
        let fields = record.as_object_mut().unwrap();
        fields.remove("hash");
        fields.remove("mac");
        if !fake_mac {
            fields.remove("chain");
        }
        fields.insert("prev".into(), Value::String(prev.clone()));
        let body = record.to_string();
        let hash = hex(ring::digest::digest(
            &ring::digest::SHA256,
            format!("{prev}{body}").as_bytes(),
        )
        .as_ref());
        let open = body.strip_suffix('}').unwrap();
        match fake_mac {
            true => text.push_str(&format!(
                "{open},\"hash\":\"{hash}\",\"mac\":\"{}\"}}\n",
                "0".repeat(64)
            )),
            false => text.push_str(&format!("{open},\"hash\":\"{hash}\"}}\n")),
        }
        prev = hash;
    }
    text
}

fn sqlite(path: &Path, sql: &str) {
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch(sql)
        .unwrap();
}

#[tokio::test]
async fn audit_verify_catches_edits_cut_tails_rewrites_forged_checkpoints_and_index_edits() {
    let (_pki, origin, mut proxy) = TestProxy::with_origin(ALLOW_ALL).await;
    for i in 0..4 {
        let url = format!("https://localhost:{}/echo?n={i}", origin.port());
        assert_eq!(proxy.get(url).await.status(), 200);
    }
    // Shutdown signs the last checkpoint: every record is covered.
    proxy.gatehouse.take().unwrap().shutdown().await;
    let dir = proxy.dir.path().to_path_buf();
    let trail = Trail {
        config: proxy.config_path.clone(),
        original: std::fs::read_to_string(dir.join("audit.jsonl")).unwrap(),
        dir,
    };
    let (code, out) = trail.verify_config();
    assert_eq!(code, 0, "{out}");
    for said in [
        "chain intact",
        "macs checked",
        "signed checkpoints checked",
        "rows agree",
    ] {
        assert!(out.contains(said), "{said}: {out}");
    }
    let lines: Vec<&str> = trail.original.lines().collect();
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.len() >= 8, "{}", trail.original);

    // An edited line.
    let edited = trail
        .original
        .replacen("\"effect\":\"allow\"", "\"effect\":\"deny\"", 1);
    let (code, out) = trail.tampered(&edited);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the record was edited"), "{out}");

    // A removed line, and a cut tail (on a record boundary: the chain itself still holds).
    let removed = [&lines[..2], &lines[3..]].concat().join("\n") + "\n";
    let (code, out) = trail.tampered(&removed);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("removed, inserted or reordered"), "{out}");
    let cut = lines[..lines.len() - 2].join("\n") + "\n";
    let (code, out) = trail.tampered(&cut);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("its tail was cut"), "{out}");

    // The whole file rewritten with a recomputed unkeyed chain: a trail with no checkpoint.
    let rewritten = rechain(&records, "0".repeat(64), false);
    let (code, out) = trail.tampered(&rewritten);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("is of another trail"), "{out}");

    // ... nor does a proxy start on it: it would sign the forgery's checkpoints.
    std::fs::write(trail.file(), &rewritten).unwrap();
    let yaml = std::fs::read_to_string(&trail.config).unwrap();
    let listen = yaml.lines().next().unwrap().to_string();
    let yaml = yaml.replacen(&listen, "listen: 127.0.0.1:0", 1);
    let config = gatehouse::Config::from_yaml(&yaml, "restart.yaml").unwrap();
    let refused = gatehouse::Gatehouse::start(config)
        .await
        .err()
        .expect("refused");
    assert!(
        refused.to_string().contains("replaced or rewritten"),
        "{refused}"
    );
    std::fs::write(trail.file(), &trail.original).unwrap();

    // Rewritten after its first record, unkeyed: a downgrade; keyed with made-up macs: forged.
    let first_hash = records[0]["hash"].as_str().unwrap().to_string();
    let after_first = format!(
        "{}\n{}",
        lines[0],
        rechain(&records[1..], first_hash.clone(), false)
    );
    let (code, out) = trail.tampered(&after_first);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unkeyed record after keyed ones"), "{out}");
    let mut altered = records[1..].to_vec();
    altered[0]["reason"] = Value::String("rewritten".into());
    let faked = format!("{}\n{}", lines[0], rechain(&altered, first_hash, true));
    let (code, out) = trail.tampered(&faked);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("rewritten by someone without the key"),
        "{out}"
    );

    // ... and offline, with the public key alone (no chain key): the checkpoints catch it.
    std::fs::write(trail.file(), &faked).unwrap();
    let file = trail.file();
    let public = trail.dir.join("certs").join("audit-signing.pub");
    let store = trail.dir.join("budget.sqlite");
    let offline = [
        file.to_str().unwrap(),
        "--public-key",
        public.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ];
    let (code, out) = trail.verify(&offline);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("does not hash to the head signed"), "{out}");
    std::fs::write(trail.file(), &trail.original).unwrap();
    let (code, out) = trail.verify(&offline);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("macs not checked"), "{out}");

    // A forged checkpoint in the store.
    let name = records[0]["hash"].as_str().unwrap();
    sqlite(
        &store,
        &format!(
            "INSERT INTO audit_checkpoints (file, trail, records, head, time, signature) \
             VALUES ('{}', '{name}', 3, 'beef', '2026-01-01T00:00:00Z', '{}')",
            gatehouse::audit::file_key(&trail.file()),
            "00".repeat(64)
        ),
    );
    let (code, out) = trail.verify_config();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("a forged checkpoint"), "{out}");
    sqlite(&store, "DELETE FROM audit_checkpoints WHERE head = 'beef'");

    // An index row that says otherwise than the file, and one deleted.
    let index = trail.dir.join("audit.sqlite");
    sqlite(
        &index,
        "UPDATE decisions SET record = replace(record, '\"allow\"', '\"deny\"') \
         WHERE line = (SELECT min(line) FROM decisions)",
    );
    let (code, out) = trail.verify_config();
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("audit index, line 1: the index's record differs"),
        "{out}"
    );
    sqlite(&index, "DELETE FROM decisions WHERE line = 1");
    let (code, out) = trail.verify_config();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing from the index"), "{out}");
}

#[test]
fn a_file_of_the_unkeyed_scheme_still_verifies_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.jsonl");
    let records: Vec<Value> = (0..3)
        .map(|i| serde_json::json!({"decision": format!("d{i}"), "effect": "allow"}))
        .collect();
    std::fs::write(&file, rechain(&records, "0".repeat(64), false)).unwrap();
    let out = Command::new(binary())
        .args(["audit", "verify", file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("3 records, chain intact"), "{stdout}");
    assert!(stdout.contains("unkeyed"), "{stdout}");
}

/// The proxy's name for its file in the store is `host:path`; a re-created container has a new
/// host name (a moved file a new path), so no checkpoint names the file any more. A tail cut
/// while it was down must still refuse the start: the file is checked against the checkpoints of
/// the trail it holds.
#[tokio::test]
async fn a_cut_tail_refuses_the_start_after_the_host_was_renamed() {
    let (_pki, origin, mut proxy) = TestProxy::with_origin(ALLOW_ALL).await;
    for i in 0..3 {
        let url = format!("https://localhost:{}/echo?n={i}", origin.port());
        assert_eq!(proxy.get(url).await.status(), 200);
    }
    proxy.gatehouse.take().unwrap().shutdown().await;
    let dir = proxy.dir.path();
    let file = dir.join("audit.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // The file's name in the store changes as with a renamed host: here, its path.
    let moved = dir.join("moved.jsonl");
    std::fs::write(&moved, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
    let yaml = std::fs::read_to_string(&proxy.config_path).unwrap();
    let listen = yaml.lines().next().unwrap().to_string();
    let yaml = yaml.replacen(&listen, "listen: 127.0.0.1:0", 1).replacen(
        &file.display().to_string(),
        &moved.display().to_string(),
        1,
    );
    let config = gatehouse::Config::from_yaml(&yaml, "restart.yaml").unwrap();
    let refused = gatehouse::Gatehouse::start(config)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("tail was cut"), "{refused}");
}

/// A checkpoint the store did not take (down for a moment) is signed again: after one failed
/// write and no record since, the clean shutdown still leaves a checkpoint of the whole trail.
#[tokio::test]
async fn a_checkpoint_the_store_failed_to_take_is_signed_again_at_shutdown() {
    let (_pki, origin, mut proxy) = TestProxy::with_origin(ALLOW_ALL).await;
    proxy.gatehouse.take().unwrap().shutdown().await;
    // The same proxy again, due for a checkpoint after every record.
    let yaml = std::fs::read_to_string(&proxy.config_path).unwrap();
    let listen = yaml.lines().next().unwrap().to_string();
    let yaml = yaml.replacen(&listen, "listen: 127.0.0.1:0", 1).replacen(
        "audit:\n",
        "audit:\n  checkpoint_records: 1\n",
        1,
    );
    let config = gatehouse::Config::from_yaml(&yaml, "restart.yaml").unwrap();
    let gatehouse = gatehouse::Gatehouse::start(config).await.unwrap();
    proxy.addr = gatehouse.local_addr();
    proxy.gatehouse = Some(gatehouse);
    let store = proxy.dir.path().join("budget.sqlite");
    let schema: String = rusqlite::Connection::open(&store)
        .unwrap()
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = 'audit_checkpoints'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    sqlite(&store, "ALTER TABLE audit_checkpoints RENAME TO away");
    let url = format!("https://localhost:{}/echo", origin.port());
    assert_eq!(proxy.get(url).await.status(), 200);
    // A tick (every second) after the last record: its checkpoint is not stored.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    sqlite(&store, &format!("DROP TABLE away; {schema};"));
    proxy.gatehouse.take().unwrap().shutdown().await;
    let records = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .count() as i64;
    let counted: Option<i64> = rusqlite::Connection::open(&store)
        .unwrap()
        .query_row("SELECT max(records) FROM audit_checkpoints", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(
        counted,
        Some(records),
        "the shutdown checkpoint covers every record"
    );
}
