//! Log capture: every event and every span field, at every level, as text a test can search.
//!
//! Each line is `LEVEL target: field=value ...` for an event, `span name: field=value ...`
//! when a span opens and `span record: ...` when it records more fields, so a value that
//! reaches any span or event shows up. Two scopes: this thread while a guard lives
//! ([`capture`]; with a current-thread runtime, spawned tasks run on it too), or the whole
//! process from the first call on ([`capture_global`]).

use std::fmt::{Debug, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::DefaultGuard;
use tracing::{Event, Metadata, Subscriber};

/// Captured log lines; clones share the same buffer.
#[derive(Debug, Clone, Default)]
pub struct Logs(Arc<Mutex<String>>);

impl Logs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.0.lock().expect("the log buffer").clone()
    }

    fn push(&self, line: &str) {
        let mut buffer = self.0.lock().expect("the log buffer");
        buffer.push_str(line);
        buffer.push('\n');
    }
}

/// Captures this thread's logs while the guard lives.
pub fn capture() -> (Logs, DefaultGuard) {
    let logs = Logs::default();
    let guard = tracing::subscriber::set_default(Capture::writing_to(logs.clone()));
    (logs, guard)
}

/// Captures every thread's logs from the first call on, for the rest of the process. Installs
/// the process's global subscriber, so nothing else may.
pub fn capture_global() -> Logs {
    static LOGS: OnceLock<Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        tracing::subscriber::set_global_default(Capture::writing_to(logs.clone()))
            .expect("no other global subscriber in a test that captures logs");
        logs
    })
    .clone()
}

/// A subscriber that writes every span and event, with all its fields, to [`Logs`].
struct Capture {
    out: Logs,
    next_id: AtomicU64,
}

impl Capture {
    fn writing_to(out: Logs) -> Self {
        Self {
            out,
            next_id: AtomicU64::new(0),
        }
    }
}

/// Appends ` name=value` for each field.
struct Fields<'a>(&'a mut String);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let _ = write!(self.0, " {}={:?}", field.name(), value);
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut line = format!("span {}:", span.metadata().name());
        span.record(&mut Fields(&mut line));
        self.out.push(&line);
        Id::from_u64(self.next_id.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut line = "span record:".to_owned();
        values.record(&mut Fields(&mut line));
        self.out.push(&line);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut line = format!(
            "{} {}:",
            event.metadata().level(),
            event.metadata().target()
        );
        event.record(&mut Fields(&mut line));
        self.out.push(&line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_and_events_are_captured_with_their_fields() {
        let (logs, guard) = super::capture();
        let span = tracing::info_span!("request", caller = "abc");
        span.record("caller", "def");
        tracing::trace!(answer = 42, "a quiet line");
        drop(guard);
        tracing::error!("after the guard");
        let text = logs.text();
        assert!(text.contains("span request: caller=\"abc\""), "{text}");
        assert!(text.contains("span record: caller=\"def\""), "{text}");
        assert!(text.contains("TRACE "), "{text}");
        assert!(text.contains("message=a quiet line answer=42"), "{text}");
        assert!(!text.contains("after the guard"), "{text}");
    }
}
