//! API v2 (phase 5, synchronous): `POST /{grn}/balance`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use gbal_core::{
    Amount, ApiVersion, BalanceQuery, CallContext, CheckError, CheckOutcome, Currency, Outcome,
    ncts_error,
};
use serde::Serialize;

use crate::accept::schema::AcceptV2 as AcceptV2Header;
use crate::accept::{AcceptV2, V2};
use crate::auth::Caller;
use crate::body::V2Query;
use crate::deadline::Deadline;
use crate::error::{ApiError, ErrorBody, GMS_QUERY_LIMIT_RETRY};
use crate::hal::{self, Links};
use crate::middleware::Correlation;
use crate::post;
use crate::state::AppState;

/// The message of an unknown GRN or a wrong access code.
const NOT_FOUND: &str =
    "The guarantee reference number or access code did not match an existing guarantee.";

/// The body of `POST /{grn}/balance` (for the OpenAPI document).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct V2BalanceRequest {
    /// The access code: 4 letters and digits.
    #[schema(
        example = "AC01",
        min_length = 4,
        max_length = 4,
        pattern = "^[A-Za-z0-9]{4}$"
    )]
    access_code: String,
}

/// `200` of `POST /{grn}/balance`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct V2BalanceOk {
    #[serde(rename = "_links")]
    links: Links,
    /// The balance, an exact decimal.
    #[schema(value_type = f64, example = 1234.56)]
    balance: Amount,
    /// Its ISO currency code.
    #[schema(value_type = String, example = "GBP")]
    currency: Currency,
}

/// Ask for a guarantee's balance (API v2).
#[utoipa::path(
    post,
    path = "/{grn}/balance",
    tag = "v2",
    security(("bearer" = [])),
    params(
        ("grn" = String, Path, pattern = "^[0-9]{2}(GB|XI)[A-Z0-9]{12}[0-9]$", example = "26XI0000010000036",
            description = "The GRN: 2 digits, GB or XI, 12 letters or digits, 1 digit"),
        ("Accept" = inline(AcceptV2Header), Header, description = "application/vnd.hmrc.2.0+json"),
    ),
    request_body(content = V2BalanceRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The balance", body = V2BalanceOk),
        (status = 400, description = "BAD_REQUEST (GRN or access code), INVALID_GUARANTEE_TYPE or FUNCTIONAL_ERROR", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: unknown GRN or wrong access code", body = ErrorBody),
        (status = 406, description = "ACCEPT_HEADER_INVALID", body = ErrorBody),
        (status = 413, description = "REQUEST_ENTITY_TOO_LARGE", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE", body = ErrorBody),
        (status = 429, description = "MESSAGE_THROTTLED_OUT", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = ErrorBody),
        (status = 502, description = "BAD_GATEWAY", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 504, description = "GATEWAY_TIMEOUT: GMS did not answer in time", body = ErrorBody),
    )
)]
pub(crate) async fn post_balance(
    State(state): State<AppState>,
    caller: Caller<V2>,
    accept: Result<AcceptV2, ApiError>,
    Correlation(context): Correlation,
    Deadline(deadline): Deadline,
    request: Request,
) -> Result<Response, ApiError> {
    let context = CallContext {
        deadline: Some(deadline),
        ..context
    };
    post::audited_check::<V2, V2Query>(
        &state,
        &caller,
        accept.map(drop),
        request,
        &context,
        deadline,
        |query, result| match result {
            Ok(outcome) => answer(&state, query, outcome),
            Err(error) => Err(refusal(error)),
        },
    )
    .await
}

/// The v2 answer to a check that ended: 200 with the balance, 504 when GMS did not answer in
/// time, or the error GMS answered.
fn answer(
    state: &AppState,
    query: &BalanceQuery,
    outcome: &CheckOutcome,
) -> Result<Response, ApiError> {
    let answered = match outcome {
        CheckOutcome::Completed(answered) => answered,
        CheckOutcome::Pending(_) => return Err(ApiError::GatewayTimeout),
    };
    match answered.outcome() {
        Outcome::Success(balance) => hal::json(
            StatusCode::OK,
            &V2BalanceOk {
                links: Links::to(format!(
                    "{}/{}/balance",
                    state.config().base_path,
                    query.grn.as_str()
                )),
                balance: balance.amount,
                currency: balance.currency,
            },
        ),
        Outcome::FunctionalError { errors } => Err(functional(errors)),
        Outcome::XmlError { errors } => Err(ApiError::BadGateway(format!(
            "GMS could not read the IE034 of request {}: {errors:?}",
            answered.request().id
        ))),
    }
}

/// The v2 answer to an IE906.
fn functional(errors: &[gbal_core::NctsError]) -> ApiError {
    if ncts_error::is_query_limit(errors) {
        ApiError::Throttled {
            retry_after: GMS_QUERY_LIMIT_RETRY,
        }
    } else if ncts_error::is_unsupported_guarantee_type(errors) {
        ApiError::InvalidGuaranteeType
    } else if ncts_error::is_not_found(errors) {
        ApiError::NotFound(NOT_FOUND.to_owned())
    } else {
        ApiError::FunctionalError {
            version: ApiVersion::V2,
            errors: errors.to_vec(),
        }
    }
}

/// The v2 answer to a check that did not end.
fn refusal(error: &CheckError) -> ApiError {
    match error {
        CheckError::RateLimited { retry_after } => ApiError::Throttled {
            retry_after: *retry_after,
        },
        CheckError::Unavailable {
            retry_after,
            reason,
        } => ApiError::ServiceUnavailable {
            retry_after: *retry_after,
            reason: reason.clone(),
        },
        CheckError::BadGateway(cause) => ApiError::BadGateway(cause.clone()),
        CheckError::GmsTimedOut | CheckError::Expired(_) => ApiError::GatewayTimeout,
        CheckError::Internal(cause) => ApiError::Internal(cause.clone()),
    }
}
