//! Metrics capture, in two scopes: the metrics this thread registers while a guard lives
//! ([`MetricsCapture`], names and labels), or a Prometheus recorder for the whole process
//! ([`prometheus`], rendered as `/metrics` renders it).

use std::sync::{Mutex, OnceLock};

use ::metrics::{
    Counter, Gauge, Histogram, Key, KeyName, LocalRecorderGuard, Metadata, Recorder, SharedString,
    Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The process's Prometheus recorder, installed by the first call; every later call returns
/// a handle to the same one. Installs the process's global recorder, so nothing else may.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("no other global recorder in a test that captures metrics")
        })
        .clone()
}

/// One registered metric: its name and its labels, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The metric's name.
    pub name: String,
    /// Its labels, `(key, value)`.
    pub labels: Vec<(String, String)>,
}

impl Registered {
    /// The value of label `key`, if it has one.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Records every metric handle registered through it, in order; the values themselves go
/// nowhere. Install it on this thread with [`MetricsCapture::install`].
#[derive(Debug, Default)]
pub struct MetricsCapture {
    seen: Mutex<Vec<Registered>>,
}

impl MetricsCapture {
    /// Makes this capture the thread's recorder while the guard lives (use a current-thread
    /// runtime, so that spawned tasks record here too).
    pub fn install(&self) -> LocalRecorderGuard<'_> {
        ::metrics::set_default_local_recorder(self)
    }

    /// Every registration of `name`, in order.
    pub fn registered(&self, name: &str) -> Vec<Registered> {
        self.seen
            .lock()
            .expect("the metrics capture")
            .iter()
            .filter(|r| r.name == name)
            .cloned()
            .collect()
    }

    /// The values of label `label` in the registrations of `name` that carry the label
    /// `with` (key, value), in order.
    pub fn label_values(&self, name: &str, with: (&str, &str), label: &str) -> Vec<String> {
        self.registered(name)
            .iter()
            .filter(|r| r.label(with.0) == Some(with.1))
            .filter_map(|r| r.label(label).map(str::to_owned))
            .collect()
    }

    fn push(&self, key: &Key) {
        let labels = key
            .labels()
            .map(|l| (l.key().to_owned(), l.value().to_owned()))
            .collect();
        self.seen
            .lock()
            .expect("the metrics capture")
            .push(Registered {
                name: key.name().to_owned(),
                labels,
            });
    }
}

impl Recorder for MetricsCapture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.push(key);
        Counter::noop()
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.push(key);
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.push(key);
        Histogram::noop()
    }
}

#[cfg(test)]
mod tests {
    use super::MetricsCapture;

    #[test]
    fn registrations_are_recorded_with_their_labels() {
        let capture = MetricsCapture::default();
        let guard = capture.install();
        ::metrics::counter!("calls", "transport" => "a", "outcome" => "ok").increment(1);
        ::metrics::histogram!("calls", "transport" => "b", "outcome" => "late").record(1.0);
        ::metrics::counter!("calls", "transport" => "a", "outcome" => "failed").increment(1);
        drop(guard);
        ::metrics::counter!("calls", "transport" => "a", "outcome" => "unseen").increment(1);
        assert_eq!(
            capture.label_values("calls", ("transport", "a"), "outcome"),
            ["ok", "failed"]
        );
        assert_eq!(capture.registered("calls").len(), 3);
        assert!(capture.registered("other").is_empty());
    }
}
