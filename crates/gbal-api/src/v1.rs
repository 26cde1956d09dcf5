//! API v1 (phase 4, asynchronous): `POST /balances` and `GET /balances/{balanceId}`.

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use gbal_core::{
    Amount, ApiVersion, BalanceRequest, BalanceRequestId, CallContext, CheckError, CheckOutcome,
    Currency, NctsError, Outcome,
};
use serde::Serialize;

use crate::accept::schema::AcceptV1 as AcceptV1Header;
use crate::accept::{AcceptV1, V1};
use crate::auth::Caller;
use crate::body::V1Query;
use crate::deadline::Deadline;
use crate::error::{ApiError, ErrorBody, FunctionalErrorItem};
use crate::hal::{self, Links};
use crate::middleware::Correlation;
use crate::post;
use crate::state::AppState;
use crate::time_format::rfc3339;

/// The body of `POST /balances` (for the OpenAPI document; the handler reads it by hand to
/// report errors by JSON path).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct V1BalanceRequest {
    /// The principal's TIN (EORI): 1 to 17 letters and digits.
    #[schema(
        example = "GB954131533000",
        min_length = 1,
        max_length = 17,
        pattern = "^[A-Za-z0-9]+$"
    )]
    tax_identifier: String,
    /// The GRN: 1 to 24 letters and digits.
    #[schema(
        example = "26GB0000010000021",
        min_length = 1,
        max_length = 24,
        pattern = "^[A-Za-z0-9]+$"
    )]
    guarantee_reference: String,
    /// The access code: 4 letters and digits.
    #[schema(
        example = "AC01",
        min_length = 4,
        max_length = 4,
        pattern = "^[A-Za-z0-9]{4}$"
    )]
    access_code: String,
}

/// A balance.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BalanceBody {
    /// The balance, an exact decimal.
    #[schema(value_type = f64, example = 12345678.9)]
    balance: Amount,
    /// Its ISO currency code.
    #[schema(value_type = String, example = "GBP")]
    currency: Currency,
}

/// `200` of `POST /balances`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct PostBalanceOk {
    response: BalanceBody,
}

/// `202` of `POST /balances`: the request is pending; poll `_links.self`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PostBalancePending {
    #[serde(rename = "_links")]
    links: Links,
    balance_id: String,
}

/// `200` of `GET /balances/{balanceId}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct GetBalanceOk {
    #[serde(rename = "_links")]
    links: Links,
    request: RequestBody,
}

/// A balance request as v1 shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestBody {
    balance_id: String,
    tax_identifier: String,
    guarantee_reference: String,
    /// RFC 3339, UTC.
    requested_at: String,
    /// RFC 3339, UTC; once GMS answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    completed_at: Option<String>,
    /// What GMS answered, once it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<RequestOutcome>,
}

/// What GMS answered to a v1 request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(tag = "status")]
pub(crate) enum RequestOutcome {
    /// A balance.
    #[serde(rename = "SUCCESS")]
    Success {
        #[schema(value_type = f64)]
        balance: Amount,
        #[schema(value_type = String)]
        currency: Currency,
    },
    /// GMS refused the query.
    #[serde(rename = "FUNCTIONAL_ERROR")]
    FunctionalError {
        #[schema(value_type = Vec<FunctionalErrorItem>)]
        errors: Vec<NctsError>,
    },
}

fn self_href(state: &AppState, id: BalanceRequestId) -> String {
    format!("{}/balances/{id}", state.config().base_path)
}

/// Ask for a guarantee's balance (API v1).
#[utoipa::path(
    post,
    path = "/balances",
    tag = "v1",
    security(("bearer" = [])),
    params(("Accept" = inline(AcceptV1Header), Header, description = "application/vnd.hmrc.1.0+json")),
    request_body(content = V1BalanceRequest, content_type = "application/json", examples(
        ("balance" = (summary = "A guarantee of the sandbox dataset: 200 with its balance",
            value = json!({"taxIdentifier": "GB954131533000", "guaranteeReference": "26GB0000010000021", "accessCode": "AC01"}))),
        ("pending" = (summary = "A sandbox guarantee whose GMS never answers: 202 after sync_wait",
            value = json!({"taxIdentifier": "GB954131533000", "guaranteeReference": "26GB0000090000029", "accessCode": "AC01"}))),
    )),
    responses(
        (status = 200, description = "GMS answered with a balance", body = PostBalanceOk),
        (status = 202, description = "No answer yet: poll the Location", body = PostBalancePending,
            headers(("Location" = String, description = "The balance request")),
            links(("GetBalance" = (operation_id = "get_balance",
                parameters(("balanceId" = "$response.body#/balanceId")),
                description = "The balance request, to poll")))),
        (status = 400, description = "INVALID_REQUEST_JSON, BAD_REQUEST (fields) or FUNCTIONAL_ERROR (every IE906, the GMS query limit included)", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN: the token lacks the scope", body = ErrorBody),
        (status = 406, description = "ACCEPT_HEADER_INVALID", body = ErrorBody),
        (status = 413, description = "REQUEST_ENTITY_TOO_LARGE", body = ErrorBody),
        (status = 415, description = "UNSUPPORTED_MEDIA_TYPE", body = ErrorBody),
        (status = 429, description = "TOO_MANY_REQUESTS: the same caller and GRN within the lock's TTL, or the caller over its request rate", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = ErrorBody),
        (status = 502, description = "BAD_GATEWAY", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE: GMS could not be reached (the query never reached it, and the caller's minute is not used)", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 504, description = "GATEWAY_TIMEOUT: the request expired before GMS answered", body = ErrorBody),
    )
)]
pub(crate) async fn post_balances(
    State(state): State<AppState>,
    caller: Caller<V1>,
    accept: Result<AcceptV1, ApiError>,
    Correlation(context): Correlation,
    Deadline(deadline): Deadline,
    request: Request,
) -> Result<Response, ApiError> {
    let context = CallContext {
        deadline: Some(deadline),
        ..context
    };
    post::audited_check::<V1, V1Query>(
        &state,
        &caller,
        accept.map(drop),
        request,
        &context,
        deadline,
        |_, result| match result {
            Ok(outcome) => post_answer(&state, outcome),
            Err(error) => Err(refusal(error)),
        },
    )
    .await
}

/// The v1 answer to a check that ended: 200 with the balance, 202 pending, or the error GMS
/// answered.
fn post_answer(state: &AppState, outcome: &CheckOutcome) -> Result<Response, ApiError> {
    let answered = match outcome {
        CheckOutcome::Completed(answered) => answered,
        CheckOutcome::Pending(request) => return pending(state, request),
    };
    match answered.outcome() {
        Outcome::Success(balance) => hal::json(
            StatusCode::OK,
            &PostBalanceOk {
                response: BalanceBody {
                    balance: balance.amount,
                    currency: balance.currency,
                },
            },
        ),
        // Every IE906, the GMS query limit (26 RC1.TIN) included, as HMRC's v1 error table
        // says: a v1 client reads the error type.
        Outcome::FunctionalError { errors } => Err(ApiError::FunctionalError {
            version: ApiVersion::V1,
            errors: errors.clone(),
        }),
        Outcome::XmlError { errors } => Err(ApiError::BadGateway(format!(
            "GMS could not read the IE034 of request {}: {errors:?}",
            answered.request().id
        ))),
    }
}

fn pending(state: &AppState, request: &BalanceRequest) -> Result<Response, ApiError> {
    let href = self_href(state, request.id);
    let mut response = hal::json(
        StatusCode::ACCEPTED,
        &PostBalancePending {
            links: Links::to(href.clone()),
            balance_id: request.id.to_string(),
        },
    )?;
    let location = HeaderValue::try_from(href)
        .map_err(|e| ApiError::Internal(format!("a Location that is not a header value: {e}")))?;
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// The v1 answer to a check that did not end.
fn refusal(error: &CheckError) -> ApiError {
    match error {
        CheckError::RateLimited { retry_after } => ApiError::TooManyRequests {
            reason: "API_RATE_LIMIT",
            retry_after: Some(*retry_after),
        },
        CheckError::Unavailable {
            retry_after,
            reason,
        } => ApiError::ServiceUnavailable {
            retry_after: *retry_after,
            reason: reason.clone(),
        },
        CheckError::BadGateway(cause) => ApiError::BadGateway(cause.clone()),
        // No answer came and there is no request to point at (its outcome is unknown and
        // nothing was recorded, or it expired meanwhile): as v2 says it.
        CheckError::GmsTimedOut | CheckError::Expired(_) => ApiError::GatewayTimeout,
        CheckError::Internal(cause) => ApiError::Internal(cause.clone()),
    }
}

/// A balance request made through API v1, pending or answered.
#[utoipa::path(
    get,
    path = "/balances/{balanceId}",
    tag = "v1",
    security(("bearer" = [])),
    params(
        ("balanceId" = String, Path,
            pattern = "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
            description = "The balance request id (a UUID)"),
        ("Accept" = inline(AcceptV1Header), Header, description = "application/vnd.hmrc.1.0+json"),
    ),
    responses(
        (status = 200, description = "Pending, balance or functional error", body = GetBalanceOk),
        (status = 400, description = "BAD_REQUEST: the id is not a UUID", body = ErrorBody),
        (status = 401, description = "UNAUTHORIZED", body = ErrorBody),
        (status = 403, description = "FORBIDDEN", body = ErrorBody),
        (status = 404, description = "NOT_FOUND: unknown, expired or another caller's", body = ErrorBody),
        (status = 406, description = "ACCEPT_HEADER_INVALID", body = ErrorBody),
        (status = 429, description = "TOO_MANY_REQUESTS: the caller over its request rate", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "INTERNAL_SERVER_ERROR", body = ErrorBody),
        (status = 502, description = "BAD_GATEWAY: GMS could not read the query (IE917)", body = ErrorBody),
        (status = 503, description = "SERVICE_UNAVAILABLE", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub(crate) async fn get_balance(
    State(state): State<AppState>,
    caller: Caller<V1>,
    _: AcceptV1,
    Path(balance_id): Path<String>,
) -> Result<Response, ApiError> {
    let id: BalanceRequestId = balance_id
        .parse()
        .map_err(|e: gbal_core::id::InvalidBalanceRequestId| ApiError::BadRequest(e.to_string()))?;
    let request = state
        .service()
        .get(id, caller.id())
        .await
        .map_err(|e| refusal(&e))?
        .filter(|r| r.api_version == ApiVersion::V1)
        .ok_or_else(|| {
            ApiError::NotFound(format!("The balance request with ID {id} was not found"))
        })?;
    get_answer(&state, &request)
}

/// The v1 view of a recorded request: 200 pending, balance or functional error; 502 for an
/// IE917.
fn get_answer(state: &AppState, request: &BalanceRequest) -> Result<Response, ApiError> {
    let id = request.id;
    let response = match &request.outcome {
        None => None,
        Some(Outcome::Success(balance)) => Some(RequestOutcome::Success {
            balance: balance.amount,
            currency: balance.currency,
        }),
        Some(Outcome::FunctionalError { errors }) => Some(RequestOutcome::FunctionalError {
            errors: errors.clone(),
        }),
        Some(Outcome::XmlError { errors }) => {
            return Err(ApiError::BadGateway(format!(
                "GMS could not read the IE034 of request {id}: {errors:?}"
            )));
        }
    };
    hal::json(
        StatusCode::OK,
        &GetBalanceOk {
            links: Links::to(self_href(state, id)),
            request: RequestBody {
                balance_id: id.to_string(),
                tax_identifier: request
                    .tin
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                guarantee_reference: request.grn.as_str().to_owned(),
                requested_at: rfc3339(request.requested_at),
                completed_at: request.completed_at.map(rfc3339),
                response,
            },
        },
    )
}
