//! The metrics the front door records (the binary installs the recorder).
//!
//! - `http_server_request_duration_seconds{http_request_method, http_route,
//!   http_response_status_code}` (histogram; recorded in `middleware`);
//! - `gbal_balance_outcomes_total{api_version, outcome}`;
//! - `gbal_rate_limit_refusals_total{reason}`: `client`, `caller_grn` (in process),
//!   `cluster_lock` (the tracker's lock), `gms_query_limit`;
//! - `gbal_balance_checks_in_flight` (gauge): checks waiting on GMS right now;
//! - `gbal_replies_total{message_type, result}`;
//! - `gbal_rate_limit_keys{limiter}` (gauge): keys the in-process limiters remember;
//! - `gbal_requests_shed_total`: balance requests answered 503 because `max_in_flight`
//!   were already being served.

use gbal_core::ApiVersion;

/// The label value of an API version.
pub(crate) fn version_label(version: ApiVersion) -> &'static str {
    match version {
        ApiVersion::V1 => "v1",
        ApiVersion::V2 => "v2",
    }
}

/// Counts the end of one balance check.
pub(crate) fn balance_outcome(version: ApiVersion, outcome: &'static str) {
    metrics::counter!(
        "gbal_balance_outcomes_total",
        "api_version" => version_label(version),
        "outcome" => outcome,
    )
    .increment(1);
}

/// Counts one rate-limit refusal.
pub(crate) fn rate_limit_refusal(reason: &'static str) {
    metrics::counter!("gbal_rate_limit_refusals_total", "reason" => reason).increment(1);
}

/// Counts one reply on the internal listener.
pub(crate) fn reply(message_type: &'static str, result: &'static str) {
    metrics::counter!(
        "gbal_replies_total",
        "message_type" => message_type,
        "result" => result,
    )
    .increment(1);
}

/// Holds the in-flight gauge up while a check runs.
pub(crate) struct InFlight;

impl InFlight {
    pub(crate) fn start() -> Self {
        metrics::gauge!("gbal_balance_checks_in_flight").increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("gbal_balance_checks_in_flight").decrement(1.0);
    }
}

/// Counts a balance request refused because too many were in flight.
pub(crate) fn shed() {
    metrics::counter!("gbal_requests_shed_total").increment(1);
}
