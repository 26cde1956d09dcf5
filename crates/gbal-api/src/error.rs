//! The one client-facing error type.
//!
//! Error policy:
//! - Every refusal the API gives is an [`ApiError`]; handlers and extractors return it and
//!   nothing else, and its one `IntoResponse` writes the body of API.md:
//!   `{"code": "...", "message": "..."}`, sometimes with more fields.
//! - Client errors (4xx) say precisely what is wrong, but never echo a secret: the access code
//!   and the token never appear in a body or a log line.
//! - Server errors (5xx) are opaque. Their cause is logged once, here, at `error` level for
//!   500 and `warn` for the upstream and availability classes, and never returned.
//! - Libraries (core, ncts, tracker, gms) return their own `thiserror` types; the handlers map
//!   them to a variant here, by API version where the versions differ.
//! - Responses that did not come from here (axum's 405, tower-http's 413 and timeout) get
//!   their body from [`ApiError::from_status`] in the `middleware::error_body` layer, so every
//!   error body has the same shape.
//! - The OpenAPI document describes that body with [`ErrorBody`] and its parts, kept here
//!   beside the type that writes it.
//!
//! [`StartError`] is the other error of the front door: a setting or key that stops it from
//! starting.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gbal_core::{ApiVersion, FieldError, NctsError};
use serde::Serialize;
use utoipa::openapi::{Ref, Schema};

use crate::config::InvalidSetting;

/// Why a request was refused, and the answer the caller gets.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid bearer token (401).
    #[error("the bearer token is missing or invalid: {0}")]
    Unauthorized(&'static str),
    /// A valid token without the required scope (403).
    #[error("the token lacks the required scope")]
    Forbidden,
    /// `Accept` is missing or names another version (406); the text differs by version.
    #[error("the Accept header does not ask for API {0:?}")]
    NotAcceptable(ApiVersion),
    /// The body is not JSON by its `Content-Type` (415).
    #[error("the content type is not JSON")]
    UnsupportedMediaType,
    /// The body is over the limit (413).
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// API v1: the body is not JSON or has the wrong shape (400), by JSON path.
    #[error("invalid request JSON")]
    InvalidRequestJson(BTreeMap<String, Vec<&'static str>>),
    /// API v1: field rules broken (400), in order.
    #[error("field rules broken")]
    InvalidFields(Vec<FieldError>),
    /// A 400 `BAD_REQUEST` with this message.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// API v2: the guarantee type has no balance (400).
    #[error("the guarantee type has no balance")]
    InvalidGuaranteeType,
    /// GMS refused the query (400); v1 nests the errors in `response`.
    #[error("GMS refused the query")]
    FunctionalError {
        /// The version whose body shape to use.
        version: ApiVersion,
        /// The IE906 errors, in order.
        errors: Vec<NctsError>,
    },
    /// A 404 `NOT_FOUND` with this message.
    #[error("not found: {0}")]
    NotFound(String),
    /// No route has this path (404).
    #[error("no route has this path")]
    UriNotFound,
    /// The path exists, the method does not (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The reply would change a request's outcome (409).
    #[error("the request already has a different outcome")]
    Conflict,
    /// API v1: too many requests (429). The body is HMRC's, exactly; gbal's extra
    /// information travels in `Retry-After` only.
    #[error("too many requests: {reason}")]
    TooManyRequests {
        /// Which limit refused it (`API_RATE_LIMIT`, `CLIENT_RATE_LIMIT`), for the log only.
        reason: &'static str,
        /// Sent as `Retry-After` when known.
        retry_after: Option<Duration>,
    },
    /// API v2: throttled (429).
    #[error("throttled")]
    Throttled {
        /// Sent as `Retry-After`.
        retry_after: Duration,
    },
    /// GMS refused, garbled or could not read the exchange (502); the cause is logged.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// GMS or the store cannot be reached, or gbal is draining (503); the cause is logged.
    #[error("service unavailable: {reason}")]
    ServiceUnavailable {
        /// Sent as `Retry-After`.
        retry_after: Duration,
        /// For the log.
        reason: String,
    },
    /// API v2: no answer within the wait (504).
    #[error("GMS did not answer in time")]
    GatewayTimeout,
    /// The internal reply did not pass the schema rules (400).
    #[error("the reply is not schema-valid")]
    SchemaValidation {
        /// `IE037`, `IE906` or `IE917`.
        message_type: &'static str,
        /// Where and what.
        errors: Vec<SchemaProblem>,
    },
    /// Anything else (500); the cause is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

/// One schema problem of a reply, as the SCHEMA_VALIDATION body lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaProblem {
    /// 1-based line.
    pub line_number: u32,
    /// 1-based column.
    pub column_number: u32,
    /// What is wrong.
    pub message: String,
}

/// Marks a response whose body an [`ApiError`] wrote (the error-body layer leaves it alone).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorBodyWritten;

/// The body of every error: `code`, `message`, and the extra fields some codes carry.
#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Errors<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<FunctionalResponse<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Errors<'a> {
    Paths(&'a BTreeMap<String, Vec<&'static str>>),
    Fields(Vec<FieldErrorBody<'a>>),
    Ncts(&'a [NctsError]),
    Schema(&'a [SchemaProblem]),
}

#[derive(Serialize)]
struct FieldErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    reason: &'a str,
}

#[derive(Serialize)]
struct FunctionalResponse<'a> {
    errors: &'a [NctsError],
}

/// The message of the 502 body.
pub(crate) const BAD_GATEWAY_MESSAGE: &str =
    "The guarantee management system could not process the request";
/// The message of the v1 functional-error body.
pub(crate) const FUNCTIONAL_ERROR_MESSAGE: &str =
    "The request was rejected by the guarantee management system";

impl ApiError {
    /// The error a bare response with this status stands for (see the module policy).
    pub fn from_status(status: StatusCode) -> Self {
        match status {
            StatusCode::NOT_FOUND => ApiError::UriNotFound,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized("refused"),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::ServiceUnavailable {
                retry_after: Duration::from_secs(1),
                reason: "the request took longer than the request timeout".to_owned(),
            },
            s if s.is_client_error() => ApiError::BadRequest("Bad request".to_owned()),
            s => ApiError::Internal(format!("a response with status {s} and no error body")),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::InvalidRequestJson(_)
            | ApiError::InvalidFields(_)
            | ApiError::BadRequest(_)
            | ApiError::InvalidGuaranteeType
            | ApiError::FunctionalError { .. }
            | ApiError::SchemaValidation { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) | ApiError::UriNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } | ApiError::Throttled { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::BadGateway(_) => StatusCode::BAD_GATEWAY,
            ApiError::ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `code` of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "UNAUTHORIZED",
            ApiError::Forbidden => "FORBIDDEN",
            ApiError::NotAcceptable(_) => "ACCEPT_HEADER_INVALID",
            ApiError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ApiError::PayloadTooLarge => "REQUEST_ENTITY_TOO_LARGE",
            ApiError::InvalidRequestJson(_) => "INVALID_REQUEST_JSON",
            ApiError::InvalidFields(_) | ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::InvalidGuaranteeType => "INVALID_GUARANTEE_TYPE",
            ApiError::FunctionalError { .. } => "FUNCTIONAL_ERROR",
            ApiError::NotFound(_) | ApiError::UriNotFound => "NOT_FOUND",
            ApiError::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ApiError::Conflict => "CONFLICT",
            ApiError::TooManyRequests { .. } => "TOO_MANY_REQUESTS",
            ApiError::Throttled { .. } => "MESSAGE_THROTTLED_OUT",
            ApiError::BadGateway(_) => "BAD_GATEWAY",
            ApiError::ServiceUnavailable { .. } => "SERVICE_UNAVAILABLE",
            ApiError::GatewayTimeout => "GATEWAY_TIMEOUT",
            ApiError::SchemaValidation { .. } => "SCHEMA_VALIDATION",
            ApiError::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::Unauthorized(_) => "The bearer token is missing or invalid".to_owned(),
            ApiError::Forbidden => {
                "The bearer token does not grant access to this resource".to_owned()
            }
            ApiError::NotAcceptable(ApiVersion::V1) => {
                "The accept header is missing or invalid".to_owned()
            }
            ApiError::NotAcceptable(ApiVersion::V2) => "The Accept header must be set to \
                 application/vnd.hmrc.2.0+json to use this resource."
                .to_owned(),
            ApiError::UnsupportedMediaType => {
                "The Content-Type header must be application/json".to_owned()
            }
            ApiError::PayloadTooLarge => "The request body is too large".to_owned(),
            ApiError::InvalidRequestJson(_) => "Invalid request JSON".to_owned(),
            ApiError::InvalidFields(_) => "Bad request".to_owned(),
            ApiError::BadRequest(message) | ApiError::NotFound(message) => message.clone(),
            ApiError::InvalidGuaranteeType => "Guarantee type is not supported.".to_owned(),
            ApiError::FunctionalError { .. } => FUNCTIONAL_ERROR_MESSAGE.to_owned(),
            ApiError::UriNotFound => "URI not found".to_owned(),
            ApiError::MethodNotAllowed => "The method is not allowed on this resource".to_owned(),
            ApiError::Conflict => "The balance request already has a different outcome".to_owned(),
            ApiError::TooManyRequests { .. } => "Too many requests".to_owned(),
            ApiError::Throttled { .. } => "The request for the API is throttled as you have \
                 exceeded your quota."
                .to_owned(),
            ApiError::BadGateway(_) => BAD_GATEWAY_MESSAGE.to_owned(),
            ApiError::ServiceUnavailable { .. } => {
                "The service is temporarily unavailable".to_owned()
            }
            ApiError::GatewayTimeout => {
                "The guarantee management system did not answer in time".to_owned()
            }
            ApiError::SchemaValidation { message_type, .. } => {
                format!("Error while validating {message_type} message")
            }
            ApiError::Internal(_) => "Internal server error".to_owned(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::TooManyRequests { retry_after, .. } => *retry_after,
            ApiError::Throttled { retry_after }
            | ApiError::ServiceUnavailable { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Logs the cause of a server error, once.
    fn log(&self) {
        match self {
            ApiError::Internal(cause) => tracing::error!(cause = %cause, "internal error"),
            ApiError::BadGateway(cause) => tracing::warn!(cause = %cause, "bad gateway"),
            ApiError::ServiceUnavailable { reason, .. } => {
                tracing::warn!(cause = %reason, "service unavailable");
            }
            ApiError::GatewayTimeout => tracing::warn!("GMS did not answer in time"),
            ApiError::TooManyRequests { reason, .. } => {
                tracing::debug!(reason, "too many requests")
            }
            ApiError::Unauthorized(why) => tracing::debug!(why, "unauthenticated"),
            _ => {}
        }
    }
}

/// When to try again after GMS's per-TIN query limit refused a check: GMS does not say, and
/// trying again before the lock on (caller, GRN) frees up would be refused anyway.
pub(crate) const GMS_QUERY_LIMIT_RETRY: Duration = Duration::from_secs(60);

/// Whole seconds, rounded up, at least 1: a client retrying earlier would be refused again.
pub(crate) fn retry_after_seconds(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let message = self.message();
        let field_errors;
        let errors = match &self {
            ApiError::InvalidRequestJson(paths) => Some(Errors::Paths(paths)),
            ApiError::InvalidFields(fields) => {
                field_errors = fields
                    .iter()
                    .map(|e| FieldErrorBody {
                        code: e.code,
                        message: e.message,
                        reason: e.reason,
                    })
                    .collect();
                Some(Errors::Fields(field_errors))
            }
            ApiError::FunctionalError {
                version: ApiVersion::V2,
                errors,
            } => Some(Errors::Ncts(errors)),
            ApiError::SchemaValidation { errors, .. } => Some(Errors::Schema(errors)),
            _ => None,
        };
        let response_field = match &self {
            ApiError::FunctionalError {
                version: ApiVersion::V1,
                errors,
            } => Some(FunctionalResponse { errors }),
            _ => None,
        };
        let body = Body {
            code: self.code(),
            message: &message,
            errors,
            response: response_field,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}"#.to_vec()
        });
        let mut response = (
            self.status(),
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response();
        if let Some(wait) = self.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(wait)),
            );
        }
        if matches!(self, ApiError::Unauthorized(_)) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            );
        }
        response.extensions_mut().insert(ErrorBodyWritten);
        response
    }
}

/// A setting that stops the front door from starting.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is not valid; the text names it.
    #[error("invalid setting {setting}: {reason}")]
    InvalidSetting {
        /// Which setting.
        setting: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The token verification keys could not be loaded.
    #[error("the token verification keys could not be loaded: {0}")]
    Keys(String),
}

impl From<InvalidSetting> for StartError {
    fn from(e: InvalidSetting) -> Self {
        StartError::InvalidSetting {
            setting: e.setting.name(),
            reason: e.reason,
        }
    }
}

/// An error body: `code` and `message`, and for some codes `errors` or `response`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// Stable machine-readable code, e.g. `BAD_REQUEST`.
    #[schema(example = "BAD_REQUEST")]
    code: String,
    /// What went wrong.
    message: String,
    /// v1 INVALID_REQUEST_JSON: messages by JSON path (an object); v1 BAD_REQUEST: the broken
    /// field rules (an array of FieldErrorItem); v2 FUNCTIONAL_ERROR: the GMS errors (an array
    /// of FunctionalErrorItem).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = errors_schema)]
    errors: Option<serde_json::Value>,
    /// v1 FUNCTIONAL_ERROR: `{"errors": [...]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<FunctionalErrorResponse>,
}

/// The schema of [`ErrorBody::errors`]: its three shapes, by code.
fn errors_schema() -> Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
    let strings = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String));
    let array_of = |name: &str| ArrayBuilder::new().items(Ref::from_schema_name(name));
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(strings))
                .description(Some("v1 INVALID_REQUEST_JSON: messages by JSON path")),
        )
        .item(
            array_of("FieldErrorItem").description(Some("v1 BAD_REQUEST: the broken field rules")),
        )
        .item(
            array_of("FunctionalErrorItem")
                .description(Some("v2 FUNCTIONAL_ERROR: the GMS errors")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "v1 INVALID_REQUEST_JSON: messages by JSON path; v1 BAD_REQUEST: the broken field \
             rules; v2 FUNCTIONAL_ERROR: the GMS errors.",
        ))
        .build()
        .into()
}

/// One broken field rule of a v1 BAD_REQUEST.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct FieldErrorItem {
    /// `INVALID_TAX_IDENTIFIER`, `INVALID_GUARANTEE_REFERENCE` or `INVALID_ACCESS_CODE`.
    #[schema(example = "INVALID_ACCESS_CODE")]
    code: String,
    /// The field's message, e.g. `Invalid access code value`.
    message: String,
    /// The rule, e.g. `Access code must be 4 characters in length`.
    reason: String,
}

/// The `response` of a v1 FUNCTIONAL_ERROR.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct FunctionalErrorResponse {
    /// The GMS errors, in order.
    errors: Vec<FunctionalErrorItem>,
}

/// One error GMS reported (an IE906 FUNERRER1).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct FunctionalErrorItem {
    /// ErrTypER11, e.g. 12.
    error_type: u8,
    /// ErrPoiER12, e.g. `GRR(1).ACC(1).Access code`.
    error_pointer: String,
    /// ErrReaER13, when GMS gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_seconds(Duration::ZERO), 1);
        assert_eq!(retry_after_seconds(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_seconds(Duration::from_secs(59)), 59);
        assert_eq!(retry_after_seconds(Duration::from_millis(59_001)), 60);
    }
}
