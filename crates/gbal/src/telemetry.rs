//! Logs and traces: readable text on a terminal or one JSON object per line, filtered by
//! `telemetry.log_level` or `RUST_LOG`; OTLP trace export only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The standard
//! `OTEL_*` variables (service name, resource attributes, sampler, headers, protocol) are read
//! by the OpenTelemetry SDK itself.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, TelemetryConfig};

/// Holds what must be flushed when the process ends.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

fn otlp_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

impl Telemetry {
    /// Installs the global subscriber (and the OTLP exporter when configured). Call once,
    /// outside any Tokio runtime (the exporter's blocking HTTP client must not live in one).
    pub fn init(config: &TelemetryConfig) -> anyhow::Result<Self> {
        let filter = match std::env::var("RUST_LOG") {
            Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(spec).context("RUST_LOG")?,
            _ => EnvFilter::try_new(&config.log_level).context("telemetry.log_level")?,
        };
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let provider = if otlp_configured() {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()
                .context("OTLP exporter (OTEL_EXPORTER_OTLP_* variables)")?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name("gbal")
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        } else {
            None
        };
        let otel = provider
            .as_ref()
            .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("gbal")));
        let registry = tracing_subscriber::registry().with(filter).with(otel);
        let installed = match config.log_format {
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(true),
                )
                .try_init(),
            LogFormat::Text => registry
                .with(tracing_subscriber::fmt::layer().with_ansi(std::io::stdout().is_terminal()))
                .try_init(),
        };
        installed.context("installing the log subscriber")?;
        if let Some(p) = &provider {
            opentelemetry::global::set_tracer_provider(p.clone());
            tracing::info!("exporting traces over OTLP");
        }
        Ok(Self { provider })
    }

    /// Flushes and stops trace export.
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("gbal: flushing traces failed: {e}");
        }
    }
}
