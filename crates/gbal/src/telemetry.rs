//! Logs and traces: readable text on a terminal or one JSON object per line, filtered by
//! `telemetry.log_level` or `RUST_LOG`; OTLP trace export only when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set. The standard
//! `OTEL_*` variables (service name, resource attributes, sampler, headers, protocol) are read
//! by the OpenTelemetry SDK itself.
//!
//! Audit events (the target `gbal::audit`, `gbal_api::AUDIT_TARGET`) are not log lines: the
//! log filter and layers never see them, and each is written to standard output as one JSON
//! object, `{"target":"gbal::audit",...the event's fields}`, whatever the log format, so that
//! a collector can route them by their target. `audit.sink` decides whether there are any.

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use gbal_api::{AUDIT_FIELD, AUDIT_TARGET};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::field::{Field, Visit};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt as _, LevelFilter, filter_fn};
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, TelemetryConfig};

/// The filter of log lines and spans: `RUST_LOG`, or else `telemetry.log_level`; never an
/// audit event.
fn log_filter<S>(config: &TelemetryConfig) -> anyhow::Result<impl Filter<S> + Send + Sync + use<S>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(spec).context("RUST_LOG")?,
        _ => EnvFilter::try_new(&config.log_level).context("telemetry.log_level")?,
    };
    // The hints keep the process's maximum level that of the filter (and INFO, for audit
    // events), so that the macros of disabled levels stay a single comparison.
    let not_audit = filter_fn(|m| !is_audit(m)).with_max_level_hint(LevelFilter::TRACE);
    Ok(filter.and(not_audit))
}

fn is_audit(metadata: &Metadata<'_>) -> bool {
    metadata.target() == AUDIT_TARGET
}

/// Writes each audit event to standard output as one line: the event's JSON (already
/// serialised by `gbal_api::Audit`) with the target as its first field.
struct AuditLines;

impl<S: Subscriber> Layer<S> for AuditLines {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut line = AuditLine(None);
        event.record(&mut line);
        if let Some(line) = line.0 {
            // One write of the whole line, so that lines of concurrent events never interleave.
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

/// The line of an audit event, made from its audit field: `{"target":"gbal::audit",` and the
/// rest of the event's JSON object.
struct AuditLine(Option<String>);

impl Visit for AuditLine {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() != AUDIT_FIELD {
            return;
        }
        let Some(fields) = value.strip_prefix('{') else {
            return;
        };
        let mut line = String::with_capacity(value.len() + AUDIT_TARGET.len() + 16);
        line.push_str(r#"{"target":""#);
        line.push_str(AUDIT_TARGET);
        line.push('"');
        if fields != "}" {
            line.push(',');
        }
        line.push_str(fields);
        line.push('\n');
        self.0 = Some(line);
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

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
        let otel = match &provider {
            Some(p) => Some(
                tracing_opentelemetry::layer()
                    .with_tracer(p.tracer("gbal"))
                    .with_filter(log_filter(config)?),
            ),
            None => None,
        };
        // Each layer filters for itself: the log filter chooses log lines and spans, never
        // audit events, which only the audit layer writes.
        let registry = tracing_subscriber::registry().with(otel).with(
            AuditLines.with_filter(filter_fn(is_audit).with_max_level_hint(LevelFilter::INFO)),
        );
        let installed = match config.log_format {
            LogFormat::Json => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(true)
                        .with_filter(log_filter(config)?),
                )
                .try_init(),
            LogFormat::Text => registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(std::io::stdout().is_terminal())
                        .with_filter(log_filter(config)?),
                )
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
