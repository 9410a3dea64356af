//! The audit file's writer: the chain across restarts, torn lines, bounded records, checkpoints
//! and the start-time check against them.

use super::*;

fn record(decision: &str) -> DecisionRecord {
    DecisionRecord {
        time: "2026-01-01T00:00:00Z".into(),
        decision: decision.into(),
        request: decision.into(),
        agent: "a".into(),
        team: None,
        env: None,
        execution: None,
        trigger: "http.request".into(),
        method: "GET".into(),
        host: "h".into(),
        port: 443,
        path: "/".into(),
        destination: String::new(),
        effect: "allow".into(),
        rules: vec![],
        monitored: vec![],
        reason: String::new(),
        policy_version: "v".into(),
        policy_commit: None,
        obligations: vec![],
        pii: Default::default(),
        country: String::new(),
        policy_us: 1,
        llm: None,
        tool: None,
        data: None,
        status: None,
    }
}

fn keys(dir: &Path) -> AuditKeys {
    AuditKeys::load_or_create(&dir.join("certs")).unwrap()
}

fn verify(dir: &Path, path: &Path) -> VerifyReport {
    let key = ChainKey::load_or_create(&dir.join("certs")).unwrap();
    verify_file(path, Some(&key)).unwrap().unwrap()
}

#[test]
fn one_writer_per_file_and_the_chain_continues_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    log.record(&record("d1")).unwrap();
    assert!(
        matches!(
            AuditLog::open(&path, keys(dir.path())),
            Err(AuditError::Broken { .. })
        ),
        "a second writer is refused"
    );
    drop(log);
    let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
    reopened.record(&record("d2")).unwrap();
    drop(reopened);
    let report = verify(dir.path(), &path);
    assert_eq!((report.records, report.keyed), (2, 2));
}

#[test]
fn a_torn_last_line_is_dropped_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    AuditLog::open(&path, keys(dir.path()))
        .unwrap()
        .record(&record("d1"))
        .unwrap();
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"decision\":\"d2\",\"ag");
    std::fs::write(&path, text).unwrap();
    AuditLog::open(&path, keys(dir.path()))
        .unwrap()
        .record(&record("d3"))
        .unwrap();
    assert_eq!(verify(dir.path(), &path).records, 2);
}

#[test]
fn an_agent_sized_model_name_writes_a_bounded_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    let mut huge = record("d1");
    huge.llm = Some(serde_json::json!({"provider": "openai", "model": "m".repeat(8 << 20)}));
    huge.tool = Some("t".repeat(1 << 20));
    huge.path = "/p".repeat(1 << 19);
    log.record(&huge).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 4096, "{size} bytes of audit for one request");
    assert_eq!(verify(dir.path(), &path).records, 1);
}

#[test]
fn checkpoints_are_due_by_time_or_records_and_signed_over_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    let schedule = CheckpointSchedule {
        every: std::time::Duration::from_secs(3600),
        records: 3,
    };
    assert!(
        log.checkpoint(None).is_none(),
        "an empty trail has no name yet"
    );
    log.record(&record("d1")).unwrap();
    let first = log.checkpoint(Some(schedule)).unwrap();
    assert_eq!(first.records, 1);
    log.record(&record("d2")).unwrap();
    assert!(log.checkpoint(Some(schedule)).is_none(), "neither due");
    log.record(&record("d3")).unwrap();
    log.record(&record("d4")).unwrap();
    let by_count = log.checkpoint(Some(schedule)).unwrap();
    assert_eq!((by_count.records, &by_count.trail), (4, &first.trail));
    assert!(log.checkpoint(None).is_none(), "nothing new since");
    log.record(&record("d5")).unwrap();
    let at_shutdown = log.checkpoint(None).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(at_shutdown.head, chain::last_hash(&text).unwrap());
    let public = PublicKey::read(&dir.path().join("certs").join(PUBLIC_KEY_FILE)).unwrap();
    let stored: Vec<_> = [first, by_count, at_shutdown]
        .iter()
        .map(Checkpoint::stored)
        .collect();
    let verified = verify_trail(&text, None, Some((&stored, &public))).unwrap();
    assert_eq!(verified.report.checkpoints, 3);
    log.continues(stored.last(), &stored).unwrap();
    // The file replaced by another trail, or cut, while no proxy wrote to it.
    drop(log);
    let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, cut).unwrap();
    let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
    let refused = reopened.continues(stored.last(), &stored).unwrap_err();
    assert!(refused.to_string().contains("tail was cut"), "{refused}");
    drop(reopened);
    std::fs::write(&path, "").unwrap();
    let fresh = AuditLog::open(&path, keys(dir.path())).unwrap();
    // Moved aside (or emptied): a new trail, whose first record names the one before.
    fresh.continues(stored.last(), &stored).unwrap();
    let first: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
    assert_eq!(first["record"], "trail");
    assert_eq!(first["follows"], stored[0].trail.as_str());
    assert_eq!(first["follows_records"], 5);
    drop(fresh);
    std::fs::write(&path, "").unwrap();
    let fresh = AuditLog::open(&path, keys(dir.path())).unwrap();
    fresh.record(&record("other")).unwrap();
    let refused = fresh.continues(stored.last(), &stored[..0]).unwrap_err();
    assert!(
        refused.to_string().contains("replaced or rewritten"),
        "{refused}"
    );
}

#[test]
fn a_last_record_without_its_line_break_is_completed_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    log.record(&record("d1")).unwrap();
    log.record(&record("d2")).unwrap();
    let stored = [log.checkpoint(None).unwrap().stored()];
    drop(log);
    // One byte taken off the file: the last record is whole, only its line break is gone.
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.strip_suffix('\n').unwrap()).unwrap();
    let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "the record is kept"
    );
    reopened.continues(stored.last(), &stored).unwrap();
    reopened.record(&record("d3")).unwrap();
    assert_eq!(verify(dir.path(), &path).records, 3);
}

#[test]
fn a_cut_file_is_refused_at_start_though_no_checkpoint_names_it_under_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    for i in 0..3 {
        log.record(&record(&format!("d{i}"))).unwrap();
    }
    let stored = [log.checkpoint(None).unwrap().stored()];
    drop(log);
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, cut).unwrap();
    // The host was renamed (a re-created container): no checkpoint carries the file's name, but
    // the trail the file holds has checkpoints, and the file is checked against them.
    let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
    assert_eq!(reopened.trail().as_deref(), Some(stored[0].trail.as_str()));
    let refused = reopened.continues(None, &stored).unwrap_err();
    assert!(refused.to_string().contains("tail was cut"), "{refused}");
    // A trail no checkpoint knows (written before checkpoints) still starts.
    reopened.continues(None, &[]).unwrap();
}

#[test]
fn a_file_cut_while_the_proxy_writes_breaks_where_it_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    for i in 0..3 {
        log.record(&record(&format!("d{i}"))).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let first = text.lines().next().unwrap().len() + 1;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(first as u64)
        .unwrap();
    // The writer goes on from the chain it wrote, not from what the file now ends with.
    log.record(&record("d3")).unwrap();
    let key = ChainKey::load_or_create(&dir.path().join("certs")).unwrap();
    assert_eq!(
        verify_file(&path, Some(&key)).unwrap(),
        Err(VerifyError::Broken { line: 2 })
    );
    let checkpoint = log.checkpoint(None).unwrap();
    assert_eq!(checkpoint.records, 4, "signed as written, not as found");
}

#[test]
fn a_trail_no_checkpoint_knows_starts_only_when_its_chain_and_macs_hold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // Rewritten whole by someone without the chain key (a key of their own), while no checkpoint
    // names the file (a renamed host): the proxy must not continue it and sign it.
    let other = tempfile::tempdir().unwrap();
    let log = AuditLog::open(&path, keys(other.path())).unwrap();
    log.record(&record("forged")).unwrap();
    drop(log);
    let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
    let refused = reopened.continues(None, &[]).unwrap_err();
    assert!(
        refused.to_string().contains("not the chain key's"),
        "{refused}"
    );
    drop(reopened);
    // A file of the unkeyed scheme (before the keyed chain) still starts, and is continued.
    let mut prev = GENESIS.to_string();
    let mut text = String::new();
    for i in 0..2 {
        let (line, hash) = chain::seal(&serde_json::json!({"decision": i}), &prev, None).unwrap();
        text.push_str(&line);
        prev = hash;
    }
    std::fs::write(&path, text).unwrap();
    let legacy = AuditLog::open(&path, keys(dir.path())).unwrap();
    legacy.continues(None, &[]).unwrap();
    legacy.record(&record("d3")).unwrap();
    assert_eq!(verify(dir.path(), &path).keyed, 1);
}

#[test]
fn a_checkpoint_the_store_lost_is_signed_again_though_nothing_was_written_since() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path, keys(dir.path())).unwrap();
    log.record(&record("d1")).unwrap();
    let first = log.checkpoint(None).unwrap();
    log.record(&record("d2")).unwrap();
    let lost = log.checkpoint(None).unwrap();
    assert!(log.checkpoint(None).is_none(), "nothing new since");
    // An older checkpoint reported lost late does not undo the newer one.
    log.checkpoint_lost(&first);
    assert!(log.checkpoint(None).is_none());
    // The store did not take the newest: shutdown (or the next tick) signs the same state again.
    log.checkpoint_lost(&lost);
    let again = log.checkpoint(None).unwrap();
    assert_eq!((again.records, &again.head), (2, &lost.head));
}
