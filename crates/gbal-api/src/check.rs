//! The part of a balance check both API versions share: the in-process limits, then
//! `BalanceService::check`, with the outcome counted.

use gbal_core::{
    ApiVersion, BalanceQuery, CallContext, CallerId, CheckError, CheckOutcome, Outcome, ncts_error,
};

use crate::limit::{PairLock, Refusal};
use crate::metric;
use crate::state::AppState;

/// When to try again after GMS's per-TIN query limit refused a check: GMS does not say, and
/// trying again before the lock on (caller, GRN) frees up would be refused anyway.
pub(crate) const GMS_QUERY_LIMIT_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

/// Why a check did not reach an outcome.
#[derive(Debug)]
pub(crate) enum Refused {
    /// An in-process limit refused it.
    Limit(Refusal),
    /// The service refused or failed it.
    Check(CheckError),
}

/// Runs a check for `caller`, after the in-process rate limits.
pub(crate) async fn run(
    state: &AppState,
    caller: &CallerId,
    query: &BalanceQuery,
    version: ApiVersion,
    context: &CallContext,
) -> Result<CheckOutcome, Refused> {
    if let Err(refusal) = state.limits().check(caller, &query.grn) {
        let reason = match refusal {
            Refusal::Client { .. } => "client",
            Refusal::CallerGrn { .. } => "caller_grn",
        };
        metric::rate_limit_refusal(reason);
        metric::balance_outcome(version, "rate_limited");
        return Err(Refused::Limit(refusal));
    }
    let started = std::time::Instant::now();
    let result = {
        let _in_flight = metric::InFlight::start();
        state.service().check(caller, query, version, context).await
    };
    let lock = match &result {
        // These all come after the cluster lock was taken.
        Ok(_) | Err(CheckError::BadGateway(_) | CheckError::GmsTimedOut) => {
            PairLock::Taken { at: started }
        }
        Err(CheckError::RateLimited { retry_after }) => PairLock::Held {
            retry_after: *retry_after,
        },
        Err(CheckError::Unavailable { .. } | CheckError::Internal(_)) => PairLock::Unknown,
    };
    state.limits().learn(caller, &query.grn, lock);
    let label = match &result {
        Ok(CheckOutcome::Completed(request)) => match &request.outcome {
            Some(Outcome::Success(_)) => "success",
            Some(Outcome::FunctionalError { errors }) if ncts_error::is_query_limit(errors) => {
                metric::rate_limit_refusal("gms_query_limit");
                "gms_query_limit"
            }
            Some(Outcome::FunctionalError { .. }) => "functional_error",
            Some(Outcome::XmlError { .. }) => "xml_error",
            None => "pending",
        },
        Ok(CheckOutcome::Pending(_)) => "pending",
        Err(CheckError::RateLimited { .. }) => {
            metric::rate_limit_refusal("cluster_lock");
            "rate_limited"
        }
        Err(CheckError::Unavailable { .. }) => "unavailable",
        Err(CheckError::BadGateway(_)) => "bad_gateway",
        Err(CheckError::GmsTimedOut) => "gms_timeout",
        Err(CheckError::Internal(_)) => "internal",
    };
    metric::balance_outcome(version, label);
    result.map_err(Refused::Check)
}
