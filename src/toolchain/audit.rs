//! `gatehouse audit verify`: an audit file's chain, its macs (with the chain key, which only the
//! proxy's user can read), the signed checkpoints of its trail in the store (with the public key
//! alone, so anyone can run it offline), and its SQLite index against it.

use std::path::PathBuf;

use super::ToolError;
use crate::audit::{ChainKey, PUBLIC_KEY_FILE, PublicKey, VerifyError, verify_index, verify_trail};
use crate::config::Config;
use crate::store::{Role, Store, StoreLocation};

/// What to verify, and against what.
#[derive(Debug, Clone, Default)]
pub struct VerifyArgs {
    /// The audit file.
    pub file: PathBuf,
    /// The chain key file: every keyed record's mac is checked.
    pub key: Option<PathBuf>,
    /// The checkpoint public key file.
    pub public_key: Option<PathBuf>,
    /// The store holding the checkpoints.
    pub store: Option<StoreLocation>,
    /// The audit index to check against the file.
    pub index: Option<PathBuf>,
    /// The file's name in the store (`host:absolute path`): its newest checkpoint must be of it.
    pub file_name: Option<String>,
}

impl VerifyArgs {
    /// Everything `config` names: its audit file and index, its store, the public key beside its
    /// CA certificate, and the chain key when this user can read it.
    pub fn of_config(config: &Config) -> VerifyArgs {
        let key = config.ca.dir.join(crate::audit::CHAIN_KEY_FILE);
        VerifyArgs {
            file: config.audit_file.clone(),
            key: std::fs::File::open(&key).is_ok().then_some(key),
            public_key: Some(config.ca.dir.join(PUBLIC_KEY_FILE)),
            store: Some(config.budget.store.clone()),
            index: Some(config.audit_store.clone()),
            file_name: Some(crate::audit::file_key(&config.audit_file)),
        }
    }
}

/// The verdict on a trail, in words.
#[derive(Debug, Clone)]
pub struct AuditCheck {
    /// Whether it holds.
    pub holds: bool,
    /// What was checked, or where it broke.
    pub report: String,
}

/// Verifies `args.file` against whatever `args` names besides.
pub async fn verify_audit(args: &VerifyArgs) -> Result<AuditCheck, ToolError> {
    let text = std::fs::read_to_string(&args.file).map_err(|source| ToolError::Read {
        path: args.file.clone(),
        source,
    })?;
    let name = args.file.display().to_string();
    let broken = |e: VerifyError| AuditCheck {
        holds: false,
        report: format!("{name}: {e}"),
    };
    let key = args.key.as_deref().map(ChainKey::read).transpose()?;
    let public = args
        .public_key
        .as_deref()
        .map(PublicKey::read)
        .transpose()?;
    let trail = crate::audit::trail_of(&text);
    let stored = match (&args.store, &public) {
        (Some(location), Some(_)) => {
            let store = Store::open(location, Role::Tool).await?;
            if let Some(file) = &args.file_name
                && let Some(newest) = store.newest_checkpoint(file).await?
                && trail.as_ref() != Some(&newest.trail)
            {
                let records = u64::try_from(newest.records).unwrap_or(0);
                let time = newest.time;
                return Ok(broken(VerifyError::Replaced { records, time }));
            }
            match &trail {
                Some(trail) => Some(store.checkpoints(trail).await?),
                None => Some(Vec::new()),
            }
        }
        (Some(_), None) => {
            return Err(ToolError::Request(
                "checkpoints are checked with the public key: pass --public-key".into(),
            ));
        }
        (None, _) => None,
    };
    let checkpoints = stored.as_deref().zip(public.as_ref());
    let verified = match verify_trail(&text, key.as_ref(), checkpoints) {
        Ok(verified) => verified,
        Err(e) => return Ok(broken(e)),
    };
    let report = verified.report;
    let mut lines = vec![format!("{name}: {} records, chain intact", report.records)];
    if let Some(follows) = text
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|first| first["record"] == "trail")
    {
        lines.push(format!(
            "this trail follows trail {} ({} records at its checkpoint of {}): the file before \
             it was moved aside or emptied",
            follows["follows"], follows["follows_records"], follows["follows_checkpoint"]
        ));
    }
    if report.records > 0 && report.keyed == 0 {
        lines.push(
            "unkeyed: written before the keyed chain, so a rewrite that recomputes the hashes \
             is detected only against checkpoints"
                .into(),
        );
    } else if report.keyed < report.records {
        lines.push(format!(
            "{} records of the unkeyed scheme before {} keyed ones",
            report.records - report.keyed,
            report.keyed
        ));
    }
    lines.push(match (report.macs_checked, report.keyed) {
        (_, 0) => "no macs to check".into(),
        (true, n) => format!("{n} macs checked with the chain key"),
        (false, _) => "macs not checked (no chain key; pass --key as the proxy's user)".into(),
    });
    lines.push(match stored {
        Some(_) => format!("{} signed checkpoints checked", report.checkpoints),
        None => "checkpoints not checked (pass --store and --public-key, or --config)".into(),
    });
    if let Some(index) = args.index.as_ref().filter(|i| !i.exists()) {
        lines.push(format!("index {}: none, not checked", index.display()));
    } else if let Some(index) = &args.index {
        match verify_index(index, &text)? {
            Ok(rows) => lines.push(format!("index {}: {rows} rows agree", index.display())),
            Err(e) => return Ok(broken(e)),
        }
    }
    Ok(AuditCheck {
        holds: true,
        report: lines.join("\n"),
    })
}
