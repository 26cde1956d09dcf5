//! Trace context: with OpenTelemetry on, the GMS call carries gbal's own span as a child of
//! the caller's trace; a caller without a trace still gets one started.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gbal_core::outcome::Balance;
use gbal_core::{BalanceQuery, Gms, GmsError, Outcome, Submission, SubmitContext};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::{Parts, TestApp, caller, token, v1_post};

#[derive(Debug, Default)]
struct Recording(Mutex<Vec<SubmitContext>>);

#[async_trait]
impl Gms for Recording {
    async fn submit(
        &self,
        _: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<Submission, GmsError> {
        self.0.lock().unwrap().push(context.clone());
        Ok(Submission::Answered(Outcome::Success(Balance {
            amount: "10".parse().unwrap(),
            currency: "GBP".parse().unwrap(),
        })))
    }

    fn transport(&self) -> &'static str {
        "recording"
    }
}

fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap()
}

fn span_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(2).unwrap()
}

#[tokio::test]
async fn gms_calls_continue_the_callers_trace() {
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);

    let gms = Arc::new(Recording::default());
    let app = TestApp::build(Parts::sqlite().await, gms.clone(), |_| {}).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut request = v1_post(
        &token(&caller("trace-a")),
        "GB954131533000",
        "26GB0000010000012",
        "AC01",
    );
    request
        .headers_mut()
        .insert("traceparent", incoming.parse().unwrap());
    assert_eq!(app.call(request).await.status, 200);
    let request = v1_post(
        &token(&caller("trace-b")),
        "GB954131533000",
        "26GB0000010000021",
        "AC01",
    );
    assert_eq!(app.call(request).await.status, 200);

    let seen = gms.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let continued = seen[0]
        .traceparent
        .as_deref()
        .expect("a traceparent to GMS");
    assert_eq!(
        trace_id(continued),
        trace_id(incoming),
        "same trace as the caller's"
    );
    assert_ne!(
        span_id(continued),
        span_id(incoming),
        "gbal's own span, a child of the caller's"
    );
    let started = seen[1]
        .traceparent
        .as_deref()
        .expect("a trace started for a caller without one");
    assert_ne!(trace_id(started), trace_id(incoming));
}
