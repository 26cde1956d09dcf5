//! The GMS call metrics every adapter records around `submit`.

use std::time::Instant;

use gbal_core::{GmsError, Outcome, Submission};

/// Histogram of submit durations, by transport and outcome.
pub const CALL_DURATION: &str = "gbal_gms_call_duration_seconds";
/// Counter of submits, by transport and outcome.
pub const CALLS: &str = "gbal_gms_calls_total";

/// The `outcome` label of a submit's result.
pub fn outcome_label(result: &Result<Submission, GmsError>) -> &'static str {
    match result {
        Ok(Submission::Accepted) => "accepted",
        Ok(Submission::Answered(Outcome::Success(_))) => "success",
        Ok(Submission::Answered(Outcome::FunctionalError { .. })) => "functional_error",
        Ok(Submission::Answered(Outcome::XmlError { .. })) => "xml_error",
        Err(GmsError::Rejected { .. }) => "rejected",
        Err(GmsError::Unavailable { .. }) => "unavailable",
        Err(GmsError::TimedOut) => "timed_out",
        Err(GmsError::Interrupted(_)) => "interrupted",
        Err(GmsError::Garbled(_)) => "garbled",
        Err(GmsError::Internal(_)) => "internal",
    }
}

/// Records one submit that started at `started`.
pub(crate) fn record(
    transport: &'static str,
    started: Instant,
    result: &Result<Submission, GmsError>,
) {
    let outcome = outcome_label(result);
    metrics::histogram!(CALL_DURATION, "transport" => transport, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(CALLS, "transport" => transport, "outcome" => outcome).increment(1);
}
