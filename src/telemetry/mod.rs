//! OpenTelemetry: one span per request (and per refused CONNECT and relayed tunnel) and the GenAI
//! client metrics, exported over OTLP/HTTP (protobuf) when the standard `OTEL_EXPORTER_OTLP_*`
//! variables name a collector. Off (no exporter, no span, no header read) when none is named or
//! `OTEL_SDK_DISABLED=true`.
//!
//! Spans and metrics leave through the SDK's batch processors, on threads of their own: ending a
//! span queues it (a full queue drops it), so the request path never waits on the collector, and a
//! dead collector loses spans, never requests. Every request is recorded: the agent's `traceparent`
//! chooses the trace, never whether the proxy's span is kept (a sampler it could steer would let
//! an agent hide its own calls). What a span carries is in [`attributes`]; how trace context
//! enters and leaves in [`trace_context`].

mod attributes;
mod connect;
mod request;
mod settings;
mod trace_context;
mod transport;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

pub use attributes::{
    Decided, Exchange, LlmExchange, Tokens, attributes, model_name, provider_name, span_name,
};
pub use request::{LlmEnd, RequestTrace};
pub use settings::{Exports, exports};

use crate::metrics::{GenAiCall, Metrics};
use crate::pii::Redactor;

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The environment asks for a protocol other than OTLP/HTTP with protobuf.
    #[error(
        "{variable}={protocol}: Gatehouse exports OTLP over HTTP with protobuf only (http/protobuf)"
    )]
    Protocol {
        /// The variable.
        variable: String,
        /// What it says.
        protocol: String,
    },
    /// An exporter could not be built (an endpoint or header the exporter cannot read).
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
    /// The TLS client for the collector could not be built.
    #[error("OpenTelemetry exporter TLS: {0}")]
    Tls(String),
}

/// How long one export may take when `OTEL_EXPORTER_OTLP_TIMEOUT` does not say.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The GenAI client instruments.
struct Instruments {
    tokens: Histogram<u64>,
    duration: Histogram<f64>,
    first_chunk: Histogram<f64>,
}

struct Exporting {
    tracer: Option<(SdkTracerProvider, SdkTracer)>,
    meters: Option<(SdkMeterProvider, Instruments)>,
}

/// The exporters, when the environment names a collector, and the Prometheus metrics the
/// GenAI histograms also go to; cheap to clone.
#[derive(Clone)]
pub struct Telemetry {
    inner: Option<Arc<Exporting>>,
    metrics: Arc<Metrics>,
    /// The detectors a host, an execution id or a model name must pass before a span carries it.
    redactor: Arc<Redactor>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field(
                "traces",
                &self.inner.as_ref().is_some_and(|i| i.tracer.is_some()),
            )
            .field(
                "metrics",
                &self.inner.as_ref().is_some_and(|i| i.meters.is_some()),
            )
            .finish()
    }
}

impl Telemetry {
    /// Telemetry that exports nothing (the GenAI histograms still go to `metrics`).
    pub fn off(metrics: Arc<Metrics>, redactor: Arc<Redactor>) -> Telemetry {
        Telemetry {
            inner: None,
            metrics,
            redactor,
        }
    }

    /// Telemetry as the process environment configures it, exporting on `runtime` with the TLS
    /// client `tls` builds from extra CA files (`OTEL_EXPORTER_OTLP_CERTIFICATE` and its
    /// per-signal forms, beside the system roots); the GenAI histograms also go to `metrics`, and
    /// model names are checked with `redactor`'s detectors.
    pub fn from_env(
        (metrics, redactor): (Arc<Metrics>, Arc<Redactor>),
        tls: impl FnOnce(&[std::path::PathBuf]) -> Result<rustls::ClientConfig, String>,
        runtime: tokio::runtime::Handle,
    ) -> Result<Telemetry, TelemetryError> {
        let wanted = exports(|name| std::env::var(name).ok())?;
        if !wanted.any() {
            return Ok(Telemetry::off(metrics, redactor));
        }
        let extra_roots: Vec<std::path::PathBuf> = [
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
        ]
        .iter()
        .filter_map(std::env::var_os)
        .filter(|path| !path.is_empty())
        .map(std::path::PathBuf::from)
        .collect();
        let tls = tls(&extra_roots).map_err(TelemetryError::Tls)?;
        let transport = transport::Transport::new(tls, runtime, {
            let millis = std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT").ok();
            millis
                .and_then(|m| m.trim().parse().ok())
                .map_or(EXPORT_TIMEOUT, Duration::from_millis)
        });
        let resource = resource();
        let exporter =
            |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter(e.to_string());
        let tracer = if wanted.traces {
            let exporter = SpanExporter::builder()
                .with_http()
                .with_http_client(transport.clone())
                .build()
                .map_err(exporter)?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_sampler(Sampler::AlwaysOn)
                .with_resource(resource.clone())
                .build();
            let tracer = provider.tracer("gatehouse");
            Some((provider, tracer))
        } else {
            None
        };
        let meters = if wanted.metrics {
            let exporter = MetricExporter::builder()
                .with_http()
                .with_http_client(transport)
                .build()
                .map_err(exporter)?;
            let provider = SdkMeterProvider::builder()
                .with_reader(PeriodicReader::builder(exporter).build())
                .with_resource(resource)
                .build();
            let instruments = instruments(&provider);
            Some((provider, instruments))
        } else {
            None
        };
        tracing::info!(
            traces = wanted.traces,
            metrics = wanted.metrics,
            "exporting OpenTelemetry over OTLP/HTTP"
        );
        Ok(Telemetry {
            inner: Some(Arc::new(Exporting { tracer, meters })),
            metrics,
            redactor,
        })
    }

    /// The trace of a request that arrived with `headers`: its span (under the agent's
    /// `traceparent` when it sent one that holds) when spans are exported.
    pub fn request(&self, headers: &HeaderMap) -> RequestTrace {
        let span = self.tracer().map(|tracer| {
            let parent = trace_context::parent_of(headers);
            tracer
                .span_builder("request")
                .with_kind(SpanKind::Client)
                .start_with_context(tracer, &parent)
        });
        RequestTrace::new(self.clone(), span)
    }

    /// Whether the PII detectors find nothing in `text` (a string from the traffic a span would
    /// carry: a host, an execution id, a model name).
    fn clean(&self, text: &str) -> bool {
        self.redactor.scanner().scan(text).is_empty()
    }

    fn tracer(&self) -> Option<&SdkTracer> {
        self.inner
            .as_ref()?
            .tracer
            .as_ref()
            .map(|(_, tracer)| tracer)
    }

    /// A span for something that already ended (a refused CONNECT, a relayed tunnel): `exchange`,
    /// which began `elapsed` ago, with `extra` attributes.
    fn ended(&self, mut exchange: Exchange<'_>, elapsed: Duration, extra: Vec<KeyValue>) {
        let Some(tracer) = self.tracer() else {
            return;
        };
        self.scrub(&mut exchange);
        let exchange = &exchange;
        let start = SystemTime::now()
            .checked_sub(elapsed)
            .unwrap_or_else(SystemTime::now);
        let mut span = tracer
            .span_builder(span_name(exchange))
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .start_with_context(tracer, &Context::new());
        finish(&mut span, exchange, extra);
    }

    /// Records a GenAI call in the Prometheus and the OTLP metrics.
    fn gen_ai_call(&self, call: &GenAiCall<'_>) {
        self.metrics.gen_ai_call(call);
        let Some((_, instruments)) = self.inner.as_ref().and_then(|i| i.meters.as_ref()) else {
            return;
        };
        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", call.operation.to_string()),
            KeyValue::new("gen_ai.provider.name", call.provider.to_string()),
            KeyValue::new("gen_ai.request.model", call.model.to_string()),
        ];
        if let Some((input, output)) = call.tokens {
            for (kind, count) in [("input", input), ("output", output)] {
                let mut with_type = attrs.clone();
                with_type.push(KeyValue::new("gen_ai.token.type", kind));
                instruments.tokens.record(count, &with_type);
            }
        }
        if let Some(first) = call.first_chunk {
            instruments.first_chunk.record(first.as_secs_f64(), &attrs);
        }
        if let Some(error) = call.error {
            attrs.push(KeyValue::new("error.type", error.to_string()));
        }
        instruments
            .duration
            .record(call.duration.as_secs_f64(), &attrs);
    }

    /// Exports what is queued and stops the exporters (at shutdown), within a few seconds.
    pub fn shutdown(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let within = Duration::from_secs(5);
        if let Some((provider, _)) = &inner.tracer
            && let Err(e) = provider.shutdown_with_timeout(within)
        {
            tracing::warn!(error = %e, "spans could not all be exported at shutdown");
        }
        if let Some((provider, _)) = &inner.meters
            && let Err(e) = provider.shutdown_with_timeout(within)
        {
            tracing::warn!(error = %e, "metrics could not all be exported at shutdown");
        }
    }
}

fn finish(
    span: &mut opentelemetry_sdk::trace::Span,
    exchange: &Exchange<'_>,
    extra: Vec<KeyValue>,
) {
    span.set_attributes(attributes(exchange));
    span.set_attributes(extra);
    if exchange.failed {
        span.set_status(Status::error(exchange.outcome.to_string()));
    }
    span.end();
}

impl Telemetry {
    /// Takes out of `exchange` the strings from the traffic in which the PII detectors find
    /// something: such a host name reads `redacted` (an IP literal is an address, which is what
    /// `server.address` is for), such an execution id is left out.
    fn scrub(&self, exchange: &mut Exchange<'_>) {
        let address = exchange.host.parse::<std::net::IpAddr>().is_ok();
        if !address && !self.clean(&exchange.host) {
            exchange.host = "redacted".to_string();
        }
        exchange.execution = exchange.execution.filter(|e| self.clean(e));
    }
}

/// The resource: `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_SERVICE_NAME`, the service named
/// `gatehouse` when neither names it.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder().with_service_name("gatehouse").build()
    }
}

/// The GenAI client metrics, with the buckets the conventions recommend.
fn instruments(provider: &SdkMeterProvider) -> Instruments {
    let meter = provider.meter("gatehouse");
    let tokens = meter
        .u64_histogram("gen_ai.client.token.usage")
        .with_unit("{token}")
        .with_description("Number of input and output tokens used.")
        .with_boundaries(crate::metrics::TOKEN_BUCKETS.to_vec())
        .build();
    let duration = meter
        .f64_histogram("gen_ai.client.operation.duration")
        .with_unit("s")
        .with_description("GenAI operation duration.")
        .with_boundaries(crate::metrics::SECONDS_BUCKETS.to_vec())
        .build();
    let first_chunk = meter
        .f64_histogram("gen_ai.client.operation.time_to_first_chunk")
        .with_unit("s")
        .with_description("Time to receive the first chunk of a streamed answer.")
        .with_boundaries(crate::metrics::SECONDS_BUCKETS.to_vec())
        .build();
    Instruments {
        tokens,
        duration,
        first_chunk,
    }
}
