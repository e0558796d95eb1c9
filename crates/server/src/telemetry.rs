//! Traces: OpenTelemetry over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, configured by the standard `OTEL_*`
//! variables. A span per MCP request, run, tool call and API request, linked parent to
//! child; an MCP request continues the client's trace when its `_meta` carries W3C trace
//! context (`traceparent`, `tracestate`).
//!
//! The spans are `tracing` spans at debug level: with no endpoint set there is no exporter,
//! and the log filter (info by default) leaves them disabled, so they cost nothing.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

/// Keeps the exporter running; dropping it sends the spans still queued.
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: cannot send the last trace spans: {e}");
        }
    }
}

fn set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

/// Whether the environment asks for traces.
pub fn wanted() -> bool {
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        || std::env::var("OTEL_TRACES_EXPORTER").is_ok_and(|v| v == "none");
    !disabled && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The layer that sends kubecode's spans to the OTLP endpoint, and the guard that keeps the
/// exporter; `None` when no endpoint is set. An endpoint that cannot be used is an error
/// that says which variable to fix.
pub fn layer<S>() -> Result<
    Option<(
        impl tracing_subscriber::Layer<S> + Send + Sync + 'static,
        Telemetry,
    )>,
    String,
>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    use tracing_subscriber::Layer as _;
    if !wanted() {
        return Ok(None);
    }
    if let Ok(protocol) = std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL")
        && !protocol.is_empty()
        && protocol != "http/protobuf"
    {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: kubecode sends OTLP over HTTP with protobuf; unset it or set http/protobuf (port 4318 on a collector)"
        ));
    }
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        if let Ok(endpoint) = std::env::var(name)
            && endpoint
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("https://")
        {
            // The exporter's HTTP client carries no TLS (it would bring a second crypto
            // provider next to kube-rs' ring).
            return Err(format!(
                "{name}={endpoint}: kubecode sends OTLP over plain HTTP only; point it at a collector's http:// endpoint (a sidecar or an in-cluster collector on port 4318)"
            ));
        }
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| {
            format!("cannot set up the OTLP trace exporter from OTEL_EXPORTER_OTLP_ENDPOINT: {e}")
        })?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("kubecode");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    let tracer = provider.tracer("kubecode");
    // Only kubecode's own spans: not the events (they are logs) nor other crates' spans.
    let ours = tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_span()
            && (meta.target().starts_with("server") || meta.target().starts_with("cluster"))
    });
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(ours);
    Ok(Some((layer, Telemetry { provider })))
}

/// A span for one MCP request, continuing the client's trace when the request's `_meta`
/// carries `traceparent` (and `tracestate`).
pub(crate) fn mcp_span(method: &str, meta: &rmcp::model::MetaObject) -> tracing::Span {
    let span = tracing::debug_span!(
        "mcp.request",
        otel.name = format!("MCP {method}"),
        otel.kind = "server",
        rpc.system = "jsonrpc",
        rpc.method = method,
        mcp.tool = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let mut carrier = HashMap::new();
    for (key, value) in [
        ("traceparent", meta.get_traceparent()),
        ("tracestate", meta.get_tracestate()),
    ] {
        if let Some(v) = value {
            carrier.insert(key.to_string(), v.to_string());
        }
    }
    if !carrier.is_empty() {
        let parent = TraceContextPropagator::new().extract(&carrier);
        // Fails only when no layer records the span: nothing to link then.
        let _ = span.set_parent(parent);
    }
    span
}
