//! Files that change while the proxy runs: the policy folder and the geo database ([`geo`]).
//!
//! Keeps the policies in force current: the policy folder is checked every few seconds and on
//! SIGHUP; a change is validated first and swapped in whole, an invalid change keeps the running
//! policies and is reported.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

mod geo;

pub use geo::{GeoFile, build_geo, watch_geo};

use crate::config::policies::{check_redact_kinds, reload};
use crate::policy::PolicyHandle;

/// What a reload needs from the config besides the folder.
#[derive(Debug, Clone)]
pub struct PolicyInputs {
    /// Policy texts the config adds (templates, residency rules).
    pub extras: Vec<(String, String)>,
    /// Names of the configured PII detectors, which `redact` may name.
    pub custom_kinds: Vec<String>,
}

/// Watches `folder` until `shutdown`, putting valid changes in force in `policies`.
pub async fn watch_policies(
    folder: PathBuf,
    interval: Duration,
    policies: Arc<PolicyHandle>,
    inputs: PolicyInputs,
    shutdown: CancellationToken,
) {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    loop {
        let hangup_signal = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
            _ = hangup_signal => tracing::info!("SIGHUP: reloading policies"),
        }
        let current = policies.version();
        let checked = reload(&folder, &current, &inputs.extras).and_then(|changed| match changed {
            Some(changed) => {
                check_redact_kinds(&changed, &inputs.custom_kinds)?;
                Ok(Some(changed))
            }
            None => Ok(None),
        });
        match checked {
            Ok(None) => {}
            // A folder caught mid-change (a checkout, a rule moved between files) can parse and
            // still be incomplete: swap only what reads the same a moment later.
            Ok(Some(changed)) if !settled(&folder, &changed.version, &inputs.extras).await => {}
            Ok(Some(changed)) => {
                tracing::info!(
                    folder = %folder.display(),
                    from = %current,
                    to = %changed.version,
                    rules = changed.set.len(),
                    "policies reloaded"
                );
                policies.replace(changed);
                last_error = None;
            }
            Err(e) => {
                let message = e.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, version = %current, "policy change rejected; the running policies stay in force");
                    last_error = Some(message);
                }
            }
        }
    }
}

/// Reloads the policies of `folder` now (the admin API's reload): the new version when they
/// changed and are valid, `None` when unchanged, the error when invalid (the running policies
/// then stay in force).
pub fn reload_now(
    folder: &std::path::Path,
    policies: &PolicyHandle,
    inputs: &PolicyInputs,
) -> Result<Option<String>, String> {
    let current = policies.version();
    match reload(folder, &current, &inputs.extras) {
        Ok(None) => Ok(None),
        Ok(Some(changed)) => {
            check_redact_kinds(&changed, &inputs.custom_kinds).map_err(|e| e.to_string())?;
            let version = changed.version.clone();
            tracing::info!(from = %current, to = %version, "policies reloaded through the admin API");
            policies.replace(changed);
            Ok(Some(version))
        }
        Err(e) => Err(e.to_string()),
    }
}

async fn settled(folder: &std::path::Path, version: &str, extras: &[(String, String)]) -> bool {
    tokio::time::sleep(SETTLE).await;
    matches!(reload(folder, version, extras), Ok(None))
}

/// How long a changed policy folder must stay the same before it is put in force.
const SETTLE: Duration = Duration::from_millis(200);
