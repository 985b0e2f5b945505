//! Logs, and the optional export of trace spans over OTLP, for the long-running processes
//! (`kmsim node`, `kmsim gateway`).
//!
//! Logs go to stderr: `KMSIM_LOG` sets the filter (default `info,openraft=warn`;
//! `info,kmsim::hop=debug` adds one line per hop of every traced request) and
//! `KMSIM_LOG_FORMAT=json` writes one JSON object per line (its `spans` carry `trace_id`).
//!
//! With an OTLP endpoint (`--otlp-endpoint`, else `KMSIM_OTLP_ENDPOINT`; off by default), the
//! `trace` span of every hop (`kmsim_node::trace::scope`) is also exported, by gRPC, to an
//! OpenTelemetry collector, with the hop's events (`kmsim::hop`, and warnings and errors) as span
//! events. The export has its own filter, independent of `KMSIM_LOG`, and only these spans pass
//! it: the many spans of openraft and tonic stay out of the collector.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::{Level, Metadata};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{filter, Layer as _};

use kmsim_node::trace::HOP_TARGET;

/// The environment variable that turns the export on when the flag is absent. Nodes started by
/// `kmsim up`, `node restart` and `chaos restart-region`, and the gateway, inherit it.
pub const OTLP_ENDPOINT_ENV: &str = "KMSIM_OTLP_ENDPOINT";

/// How long the exporter waits for the collector to take one batch.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often finished spans are sent (OpenTelemetry's default is 5 s; a trace of a short
/// experiment is wanted sooner).
const EXPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Finished spans held for export at most; beyond this, spans are dropped (and counted by the
/// SDK), never queued without bound, when the collector is slow or away.
const EXPORT_QUEUE: usize = 8192;

/// Who exports: the OpenTelemetry resource of this process.
pub struct Service {
    /// `service.name`: `kmsim-node` or `kmsim-gateway`.
    pub name: &'static str,
    /// `service.instance.id`: `<region>/<id>` for a node, `gateway` for the gateway.
    pub instance: String,
    /// `cloud.region` (a node's Region).
    pub region: Option<String>,
}

/// Keeps the exporter alive; dropping it sends the spans still queued (waiting at most
/// [`EXPORT_TIMEOUT`] for the collector).
#[must_use = "dropping the guard stops the export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("kmsim: the last spans were not exported: {e}");
            }
        }
    }
}

/// The OTLP endpoint: the flag, else [`OTLP_ENDPOINT_ENV`] (empty means none). Only `http://`
/// endpoints are accepted (the export is plain gRPC, meant for a collector on the same host or
/// network).
pub fn otlp_endpoint(flag: Option<String>) -> anyhow::Result<Option<String>> {
    let endpoint = flag
        .or_else(|| std::env::var(OTLP_ENDPOINT_ENV).ok())
        .filter(|e| !e.is_empty());
    match endpoint {
        Some(e) if !e.starts_with("http://") => anyhow::bail!(
            "the OTLP endpoint must be an http:// URL of a collector's gRPC port (e.g. \
             http://127.0.0.1:4317), not {e:?}"
        ),
        other => Ok(other),
    }
}

/// Installs the logger, and the span export when `otlp` names an endpoint. Must be called
/// inside a tokio runtime (`Runtime::enter`) when exporting: the gRPC client lives on it.
pub fn init(otlp: Option<(String, Service)>) -> anyhow::Result<Telemetry> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KMSIM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let (format, unknown_format) = match std::env::var("KMSIM_LOG_FORMAT").as_deref() {
        Ok("json") => (true, None),
        Ok("text") | Err(_) => (false, None),
        Ok(other) => (false, Some(other.to_string())),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if format {
        logs.json().with_filter(filter).boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    let (export, provider) = match otlp {
        Some((endpoint, service)) => {
            let provider = provider(&endpoint, service)?;
            let tracer = provider.tracer("kmsim");
            let layer = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_level(true)
                .with_filter(filter::filter_fn(exported));
            kmsim_node::trace::set_exporting();
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(export)
        .try_init()
        .context("install the logger")?;
    if let Some(other) = unknown_format {
        tracing::warn!(
            format = other,
            "KMSIM_LOG_FORMAT is json or text; writing text"
        );
    }
    Ok(Telemetry { provider })
}

/// What the export sees: the `trace` spans of `kmsim_node::trace::scope`, and inside them the
/// hop lines and anything at warning level or above.
fn exported(meta: &Metadata<'_>) -> bool {
    if meta.is_span() {
        meta.name() == "trace" && meta.target() == "kmsim_node::trace"
    } else {
        meta.target() == HOP_TARGET || *meta.level() <= Level::WARN
    }
}

/// The tracer provider: a batch of finished spans every [`EXPORT_INTERVAL`] to `endpoint`.
fn provider(endpoint: &str, service: Service) -> anyhow::Result<SdkTracerProvider> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .with_context(|| format!("the OTLP exporter for {endpoint}"))?;
    let batches = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(EXPORT_INTERVAL)
                .with_max_queue_size(EXPORT_QUEUE)
                .build(),
        )
        .build();
    let mut attributes = vec![KeyValue::new("service.instance.id", service.instance)];
    if let Some(r) = service.region {
        attributes.push(KeyValue::new("cloud.region", r));
    }
    let resource = Resource::builder()
        .with_service_name(service.name)
        .with_attributes(attributes)
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(batches)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_endpoints_are_accepted() {
        assert_eq!(
            otlp_endpoint(Some("http://127.0.0.1:4317".into())).unwrap(),
            Some("http://127.0.0.1:4317".to_string())
        );
        let e = otlp_endpoint(Some("127.0.0.1:4317".into())).unwrap_err();
        assert!(e.to_string().contains("http:// URL"), "{e}");
        assert!(otlp_endpoint(Some("https://collector:4317".into())).is_err());
    }
}
