//! The `limits` section: what one client, one agent and everyone together may make the proxy
//! hold (connections, streams, buffered bytes) and how long silence is tolerated.

use std::time::Duration;

use super::compile::{Compiler, positive};
use super::raw::RawConfig;
use super::{ConfigError, Limits};

const MIB: u64 = 1024 * 1024;

impl Compiler<'_> {
    pub(super) fn limits(&self, raw: &RawConfig) -> Result<Limits, ConfigError> {
        let l = &raw.limits;
        let max_header_bytes =
            positive(self, &l.max_header_bytes, "limits.max_header_bytes", 65536)?;
        if max_header_bytes < 8192 {
            let at = l.max_header_bytes.as_ref().map(|s| &s.referenced);
            return Err(self.invalid(at, "limits.max_header_bytes", "must be at least 8192 bytes"));
        }
        let body = self.bytes(
            &l.max_request_body_bytes,
            "limits.max_request_body_bytes",
            8 * MIB,
        )?;
        let total = self.bytes(
            &l.max_buffered_bytes,
            "limits.max_buffered_bytes",
            512 * MIB,
        )?;
        let per_agent = self.bytes(
            &l.max_buffered_bytes_per_agent,
            "limits.max_buffered_bytes_per_agent",
            128 * MIB,
        )?;
        // One body of the largest size must fit, or it could never be read.
        if per_agent < body {
            let at = l
                .max_buffered_bytes_per_agent
                .as_ref()
                .map(|s| &s.referenced);
            return Err(self.invalid(
                at,
                "limits.max_buffered_bytes_per_agent",
                format!("must be at least limits.max_request_body_bytes ({body})"),
            ));
        }
        if total < per_agent {
            let at = l.max_buffered_bytes.as_ref().map(|s| &s.referenced);
            return Err(self.invalid(
                at,
                "limits.max_buffered_bytes",
                format!("must be at least limits.max_buffered_bytes_per_agent ({per_agent})"),
            ));
        }
        let max_connections = positive(self, &l.max_connections, "limits.max_connections", 4096)?;
        let per_agent_connections = positive(
            self,
            &l.max_connections_per_agent,
            "limits.max_connections_per_agent",
            max_connections.min(512),
        )?;
        let streams = match &l.max_concurrent_streams {
            Some(v) if v.value == 0 => {
                return Err(self.invalid(
                    Some(&v.referenced),
                    "limits.max_concurrent_streams",
                    "must be greater than 0",
                ));
            }
            Some(v) => v.value,
            None => 100,
        };
        Ok(Limits {
            max_connections,
            max_header_bytes,
            max_request_body_bytes: body,
            max_buffered_bytes: total,
            max_buffered_bytes_per_agent: per_agent,
            max_connections_per_agent: per_agent_connections,
            max_concurrent_streams: streams,
            tunnel_idle_timeout: self.tunnel_idle_timeout(raw)?,
            client_header_timeout: self.duration(
                &l.client_header_timeout,
                "limits.client_header_timeout",
                30,
            )?,
            client_body_timeout: self.duration(
                &l.client_body_timeout,
                "limits.client_body_timeout",
                120,
            )?,
            shutdown_grace: self.duration(&l.shutdown_grace, "limits.shutdown_grace", 10)?,
        })
    }

    /// A relayed tunnel or WebSocket silent both ways this long is closed.
    pub(super) fn tunnel_idle_timeout(&self, raw: &RawConfig) -> Result<Duration, ConfigError> {
        let key = "limits.tunnel_idle_timeout";
        self.duration(&raw.limits.tunnel_idle_timeout, key, 600)
    }

    fn bytes(
        &self,
        value: &Option<serde_saphyr::Spanned<u64>>,
        key: &str,
        default: u64,
    ) -> Result<u64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if v.value == 0 => {
                Err(self.invalid(Some(&v.referenced), key, "must be greater than 0"))
            }
            Some(v) => Ok(v.value),
        }
    }
}
