//! Whether and where Gatehouse exports, read from the standard `OTEL_*` environment variables
//! (the exporter itself reads the endpoint, headers, timeout and compression; the SDK reads
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*` and `OTEL_METRIC_EXPORT_*`).

use super::TelemetryError;

/// What the environment asks to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exports {
    /// Spans, over OTLP/HTTP.
    pub traces: bool,
    /// Metrics, over OTLP/HTTP.
    pub metrics: bool,
}

impl Exports {
    /// Whether anything is exported.
    pub fn any(&self) -> bool {
        self.traces || self.metrics
    }
}

/// The exports `var` (an environment lookup) asks for: a signal is exported when an endpoint
/// for it is set, its `OTEL_*_EXPORTER` is not `none`, and `OTEL_SDK_DISABLED` is not `true`.
/// A protocol other than OTLP/HTTP with protobuf is refused rather than silently ignored.
pub fn exports(var: impl Fn(&str) -> Option<String>) -> Result<Exports, TelemetryError> {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let is =
        |name: &str, value: &str| var(name).is_some_and(|v| v.trim().eq_ignore_ascii_case(value));
    if is("OTEL_SDK_DISABLED", "true") {
        return Ok(Exports::default());
    }
    let general = set("OTEL_EXPORTER_OTLP_ENDPOINT");
    let exports = Exports {
        traces: (general || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            && !is("OTEL_TRACES_EXPORTER", "none"),
        metrics: (general || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
            && !is("OTEL_METRICS_EXPORTER", "none"),
    };
    for (signal, wanted) in [("TRACES_", exports.traces), ("METRICS_", exports.metrics)] {
        for name in [
            format!("OTEL_EXPORTER_OTLP_{signal}PROTOCOL"),
            "OTEL_EXPORTER_OTLP_PROTOCOL".to_string(),
        ] {
            if let Some(protocol) = var(&name).filter(|_| wanted) {
                let protocol = protocol.trim();
                if !protocol.is_empty() && protocol != "http/protobuf" {
                    return Err(TelemetryError::Protocol {
                        variable: name,
                        protocol: protocol.to_string(),
                    });
                }
                break;
            }
        }
    }
    Ok(exports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<Exports, TelemetryError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        exports(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint_or_when_disabled() {
        assert_eq!(with(&[]).unwrap(), Exports::default());
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
        assert!(with(&[endpoint]).unwrap().traces);
        assert!(with(&[endpoint]).unwrap().metrics);
        for disabled in ["true", "TRUE", " true "] {
            let off = with(&[endpoint, ("OTEL_SDK_DISABLED", disabled)]).unwrap();
            assert!(!off.any(), "{disabled}");
        }
        let on = with(&[endpoint, ("OTEL_SDK_DISABLED", "false")]).unwrap();
        assert!(on.traces && on.metrics);
    }

    #[test]
    fn signals_follow_their_own_endpoints_and_exporters() {
        let traces = with(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/v1/traces")]);
        assert_eq!(
            traces.unwrap(),
            Exports {
                traces: true,
                metrics: false
            }
        );
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let no_metrics = with(&[endpoint, ("OTEL_METRICS_EXPORTER", "none")]).unwrap();
        assert!(no_metrics.traces && !no_metrics.metrics);
    }

    #[test]
    fn other_protocols_are_refused_not_ignored() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let grpc = with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]);
        assert!(matches!(grpc, Err(TelemetryError::Protocol { .. })));
        let proto = with(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")]);
        assert!(proto.unwrap().any());
        // The signal's own variable wins over the general one.
        let own = with(&[
            endpoint,
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_METRICS_EXPORTER", "none"),
        ]);
        assert!(own.unwrap().traces);
    }
}
