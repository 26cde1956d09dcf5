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
//! They are gathered in a buffer and written together, every [`AUDIT_FLUSH_EVERY`] by a
//! thread of their own (or at once when [`AUDIT_BUFFER`] bytes are waiting, and at
//! shutdown): one `write` a tenth of a second rather than one per event, whose wake-up of the
//! reader of standard output cost a check more than the rest of its event did.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

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

/// How long an audit line may wait in the buffer before it is written.
pub const AUDIT_FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Bytes of audit lines past which the event that adds them writes the buffer at once.
pub const AUDIT_BUFFER: usize = 64 * 1024;

/// Where buffered audit lines are written: standard output, or a test's writer.
trait AuditOut: Send + Sync + 'static {
    /// Runs `write` with the output locked, so that nothing else writes to it meanwhile.
    fn locked(&self, write: &mut dyn FnMut(&mut dyn std::io::Write));
}

/// Standard output, through its own lock (which log lines take too).
struct Stdout;

impl AuditOut for Stdout {
    fn locked(&self, write: &mut dyn FnMut(&mut dyn std::io::Write)) {
        write(&mut std::io::stdout().lock());
    }
}

/// Audit lines not yet written to standard output, in the order their events came.
#[derive(Clone)]
struct AuditBuffer {
    lines: Arc<Mutex<Vec<u8>>>,
    out: Arc<dyn AuditOut>,
}

impl std::fmt::Debug for AuditBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBuffer")
            .field("waiting", &self.lines().len())
            .finish()
    }
}

impl AuditBuffer {
    fn new(out: Arc<dyn AuditOut>) -> Self {
        Self {
            lines: Arc::default(),
            out,
        }
    }

    fn lines(&self) -> MutexGuard<'_, Vec<u8>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends one line; writes the buffer when it is over [`AUDIT_BUFFER`].
    fn push(&self, line: &str) {
        let full = {
            let mut lines = self.lines();
            lines.extend_from_slice(line.as_bytes());
            lines.len() >= AUDIT_BUFFER
        };
        if full {
            self.flush();
        }
    }

    /// Writes what is buffered. The output's lock is taken before the buffer's, so that
    /// buffers are written in the order they were filled, and a line is never split.
    fn flush(&self) {
        self.out.locked(&mut |out| {
            let lines = std::mem::take(&mut *self.lines());
            if !lines.is_empty() {
                let _ = out.write_all(&lines);
                let _ = out.flush();
            }
        });
    }

    /// Starts the thread that writes the buffer every [`AUDIT_FLUSH_EVERY`].
    fn start_flushing(&self) -> anyhow::Result<()> {
        let buffer = self.clone();
        std::thread::Builder::new()
            .name("gbal-audit-lines".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(AUDIT_FLUSH_EVERY);
                    buffer.flush();
                }
            })
            .context("starting the audit lines' writer")?;
        Ok(())
    }
}

/// Writes each audit event to standard output as one line: the event's JSON (already
/// serialised by `gbal_api::Audit`) with the target as its first field, through the buffer.
struct AuditLines(AuditBuffer);

impl<S: Subscriber> Layer<S> for AuditLines {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut line = AuditLine(None);
        event.record(&mut line);
        if let Some(line) = line.0 {
            self.0.push(&line);
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
    audit: AuditBuffer,
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
        let audit = AuditBuffer::new(Arc::new(Stdout));
        let registry = tracing_subscriber::registry().with(otel).with(
            AuditLines(audit.clone())
                .with_filter(filter_fn(is_audit).with_max_level_hint(LevelFilter::INFO)),
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
        audit.start_flushing()?;
        if let Some(p) = &provider {
            opentelemetry::global::set_tracer_provider(p.clone());
            tracing::info!("exporting traces over OTLP");
        }
        Ok(Self { provider, audit })
    }

    /// Writes the audit lines still buffered, then flushes and stops trace export.
    pub fn shutdown(self) {
        self.audit.flush();
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("gbal: flushing traces failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that keeps what it is given, and how many writes it took.
    #[derive(Default)]
    struct Kept(Mutex<(Vec<u8>, usize)>);

    impl AuditOut for Kept {
        fn locked(&self, write: &mut dyn FnMut(&mut dyn std::io::Write)) {
            let mut kept = self.0.lock().unwrap();
            let mut out = Vec::new();
            write(&mut out);
            if !out.is_empty() {
                kept.0.extend_from_slice(&out);
                kept.1 += 1;
            }
        }
    }

    #[test]
    fn audit_lines_wait_for_a_flush_or_a_full_buffer_and_come_out_whole_and_in_order() {
        let kept = Arc::new(Kept::default());
        let buffer = AuditBuffer::new(kept.clone());
        buffer.push("{\"n\":0}\n");
        buffer.push("{\"n\":1}\n");
        assert!(
            kept.0.lock().unwrap().0.is_empty(),
            "written before a flush"
        );
        buffer.flush();
        assert_eq!(kept.0.lock().unwrap().0, b"{\"n\":0}\n{\"n\":1}\n");
        assert_eq!(kept.0.lock().unwrap().1, 1, "two lines, one write");

        // Four threads, each with its own numbered lines: past AUDIT_BUFFER the event that
        // fills the buffer writes it, and every thread's lines come out whole and in order.
        let per_thread = 2_000;
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let buffer = buffer.clone();
                scope.spawn(move || {
                    for i in 0..per_thread {
                        buffer.push(&format!(
                            "{{\"thread\":{thread},\"i\":{i},\"pad\":\"{}\"}}\n",
                            "x".repeat(40)
                        ));
                    }
                });
            }
        });
        let writes_before_flush = kept.0.lock().unwrap().1;
        assert!(
            writes_before_flush > 2,
            "a full buffer was not written at once"
        );
        buffer.flush();
        let (text, _) = std::mem::take(&mut *kept.0.lock().unwrap());
        let text = String::from_utf8(text).unwrap();
        let mut next = [0; 4];
        for line in text.lines().skip(2) {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let thread = value["thread"].as_u64().unwrap() as usize;
            assert_eq!(value["i"], next[thread], "thread {thread} out of order");
            next[thread] += 1;
        }
        assert_eq!(next, [per_thread; 4]);
    }
}
