//! The redactor the fuzz targets that detect and redact share: the default detectors, header
//! scanning on, `authorization` left alone, as a proxy with no `pii` section runs.

use std::sync::OnceLock;
use std::time::Duration;

use gatehouse::pii::{PiiConfig, Redactor, ScannerConfig};

pub fn redactor() -> &'static Redactor {
    static REDACTOR: OnceLock<Redactor> = OnceLock::new();
    REDACTOR.get_or_init(|| {
        let config = PiiConfig {
            scanner: ScannerConfig::default(),
            hash_key: None,
            scan_headers: true,
            unscanned_headers: vec!["authorization".to_string()],
            vault_max_executions: 4,
            vault_max_values: 1024,
            vault_idle: Duration::from_secs(60),
        };
        Redactor::new(&config).expect("redactor")
    })
}
