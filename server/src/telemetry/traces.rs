//! OpenTelemetry traces, when `--otlp-endpoint` is given: every `tracing`
//! span becomes an OTLP span (through `tracing-opentelemetry`), exported in
//! batches over OTLP/HTTP (protobuf). A GraphQL operation's span is named
//! by its operation type, as the OpenTelemetry GraphQL conventions ask;
//! each SQL statement is a child span, reconstructed from its measured
//! duration when it finished (SeaORM reports statements only then).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Where and how traces are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpSettings {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`); spans
    /// go to `/v1/traces` under it.
    pub endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

/// Whether statement spans are made (only with an exporter installed).
static ON: AtomicBool = AtomicBool::new(false);

const TRACER: &str = "mlgate";

/// The exporting tracer provider; flushes what is buffered on drop.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Drop for Traces {
    fn drop(&mut self) {
        ON.store(false, Ordering::Relaxed);
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("traces: the last spans could not be sent: {e}");
        }
    }
}

/// Builds the exporter and the provider, and makes it the global one.
pub fn provider(
    settings: &OtlpSettings,
) -> anyhow::Result<(Traces, opentelemetry_sdk::trace::Tracer)> {
    use opentelemetry::trace::TracerProvider as _;
    let endpoint = format!("{}/v1/traces", settings.endpoint.trim_end_matches('/'));
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .with_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| anyhow::anyhow!("cannot set up the OTLP exporter: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(settings.service_name.clone())
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(TRACER);
    ON.store(true, Ordering::Relaxed);
    Ok((Traces { provider }, tracer))
}

/// A finished SQL statement as a child span of the current span: `sql` is
/// the statement text (values are bound parameters, never in it).
pub fn statement(backend: &'static str, sql: &str, elapsed: Duration) {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let parent = tracing::Span::current().context();
    if !parent.span().span_context().is_valid() {
        // Not inside a traced operation (migrations, background readers).
        return;
    }
    let end = SystemTime::now();
    let verb = sql
        .split_whitespace()
        .next()
        .unwrap_or("SQL")
        .to_ascii_uppercase();
    let tracer = opentelemetry::global::tracer(TRACER);
    let mut span = tracer
        .span_builder(verb)
        .with_kind(SpanKind::Client)
        .with_start_time(end.checked_sub(elapsed).unwrap_or(end))
        .with_attributes([
            KeyValue::new("db.system.name", backend),
            KeyValue::new("db.query.text", sql.to_owned()),
        ])
        .start_with_context(&tracer, &parent);
    span.end_with_timestamp(end);
}

/// Names `span`'s exported span `name` (an operation's type, known only
/// once its document is parsed, after statements may have started it).
pub fn rename(span: &tracing::Span, name: &'static str) {
    span.record("otel.name", name);
    if ON.load(Ordering::Relaxed) {
        span.context().span().update_name(name);
    }
}
