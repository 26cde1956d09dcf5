//! The metrics the front door records (the binary installs the recorder).
//!
//! - `http_server_request_duration_seconds{http_request_method, http_route,
//!   http_response_status_code}` (histogram; recorded in `middleware`);
//! - `gbal_balance_outcomes_total{api_version, outcome}`;
//! - `gbal_rate_limit_refusals_total{reason}`: `client` (a caller over its rate),
//!   `client_in_flight` (over its requests in flight) and `gms_query_limit` here;
//!   `caller_grn` (the replica's memory of the lock) and `cluster_lock` (the tracker's lock)
//!   are the lock mirror's (`gbal_tracker::LockMirror`), published by the binary;
//! - `gbal_balance_checks_in_flight` (gauge): checks inside the balance service right now;
//! - `gbal_replies_total{message_type, result}`;
//! - `gbal_rate_limit_keys{limiter}` (gauge): keys the in-process limiters remember
//!   (`caller` here; `caller_grn` published by the binary from the lock mirror);
//! - `gbal_requests_shed_total`: balance requests answered 503 because `max_in_flight`
//!   were already being served.
//!
//! Every label takes its value from a fixed set written here or in `middleware` (the HTTP
//! method's label is one of the standard methods or `other`, the route is the matched
//! template or `unmatched`, the status a code gbal answered with): nothing a caller sends
//! becomes a label, so the number of series stays bounded whatever arrives.

use std::future::Future;

use gbal_core::{ApiVersion, CheckError, CheckOutcome, Outcome, ncts_error};

/// The label value of an API version.
fn version_label(version: ApiVersion) -> &'static str {
    match version {
        ApiVersion::V1 => "v1",
        ApiVersion::V2 => "v2",
    }
}

/// Counts the end of one balance check.
fn balance_outcome(version: ApiVersion, outcome: &'static str) {
    metrics::counter!(
        "gbal_balance_outcomes_total",
        "api_version" => version_label(version),
        "outcome" => outcome,
    )
    .increment(1);
}

/// Counts one rate-limit refusal.
fn rate_limit_refusal(reason: &'static str) {
    metrics::counter!("gbal_rate_limit_refusals_total", "reason" => reason).increment(1);
}

/// Counts a request refused because its caller is over one of its own limits (`reason`:
/// `client` for its rate, `client_in_flight` for its requests in flight); `check` when the
/// request was a balance check.
pub(crate) fn caller_refused(version: ApiVersion, reason: &'static str, check: bool) {
    rate_limit_refusal(reason);
    if check {
        balance_outcome(version, "rate_limited");
    }
}

/// Runs a balance check with the in-flight gauge up, and counts how it ended.
pub(crate) async fn balance_check(
    version: ApiVersion,
    check: impl Future<Output = Result<CheckOutcome, CheckError>>,
) -> Result<CheckOutcome, CheckError> {
    let result = {
        let _in_flight = InFlight::start();
        check.await
    };
    let label = outcome_label(&result);
    if label == "gms_query_limit" {
        rate_limit_refusal(label);
    }
    balance_outcome(version, label);
    result
}

/// The `outcome` label of `gbal_balance_outcomes_total` for how a check ended.
fn outcome_label(result: &Result<CheckOutcome, CheckError>) -> &'static str {
    match result {
        Ok(CheckOutcome::Completed(answered)) => match answered.outcome() {
            Outcome::Success(_) => "success",
            Outcome::FunctionalError { errors } if ncts_error::is_query_limit(errors) => {
                "gms_query_limit"
            }
            Outcome::FunctionalError { .. } => "functional_error",
            Outcome::XmlError { .. } => "xml_error",
        },
        Ok(CheckOutcome::Pending(_)) => "pending",
        Err(CheckError::RateLimited { .. }) => "rate_limited",
        Err(CheckError::Unavailable { .. }) => "unavailable",
        Err(CheckError::BadGateway(_)) => "bad_gateway",
        Err(CheckError::GmsTimedOut) => "gms_timeout",
        Err(CheckError::Expired(_)) => "expired",
        Err(CheckError::Internal(_)) => "internal",
    }
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
struct InFlight;

impl InFlight {
    fn start() -> Self {
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
