//! What the balance `POST` of both versions does around the balance service: the query is
//! read only once `Accept` passed (as the extractors would), a refusal of either is one
//! `INVALID_REQUEST` audit event, and the check runs with its metrics, the guard that records
//! a check that never ended, and the audit event of how it ended.

use std::time::Instant;

use axum::extract::{FromRequest, Request};
use axum::response::Response;
use gbal_core::{BalanceQuery, CallContext, CheckError, CheckOutcome};

use crate::accept::Version;
use crate::audit::{Asked, Unfinished};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metric;
use crate::state::AppState;

/// Reads the query `B` of `request` when `accepted`, runs the check, and answers with
/// `answer`, recording the audit event of each way it can end.
pub(crate) async fn audited_check<V: Version, B>(
    state: &AppState,
    caller: &Caller<V>,
    accepted: Result<(), ApiError>,
    request: Request,
    context: &CallContext,
    deadline: Instant,
    answer: impl FnOnce(&BalanceQuery, &Result<CheckOutcome, CheckError>) -> Result<Response, ApiError>,
) -> Result<Response, ApiError>
where
    B: FromRequest<AppState, Rejection = ApiError>,
    BalanceQuery: From<B>,
{
    let asked = |query| Asked {
        caller: caller.id(),
        api_version: V::API,
        query,
        http_request_id: context.request_id.as_deref(),
    };
    let clock = state.service().clock();
    let query = match accepted {
        Ok(()) => B::from_request(request, state)
            .await
            .map(BalanceQuery::from),
        Err(error) => Err(error),
    };
    let query = match query {
        Ok(query) => query,
        Err(error) => {
            state.audit().invalid(clock.now(), &asked(None), &error);
            return Err(error);
        }
    };
    let unfinished = Unfinished::new(state.audit(), &**clock, asked(Some(&query)), deadline);
    let check = state.service().check(caller.id(), &query, V::API, context);
    let result = metric::balance_check(V::API, check).await;
    unfinished.ended();
    let answer = answer(&query, &result);
    state
        .audit()
        .check(clock.now(), &asked(Some(&query)), &result, &answer);
    answer
}
