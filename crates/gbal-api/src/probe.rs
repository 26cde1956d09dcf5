//! Probes and documents: `/livez`, `/readyz`, `/openapi.json`, and `/metrics` on the
//! internal listener.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The OpenAPI document `/openapi.json` serves, as JSON: the router it describes adds it.
#[derive(Debug, Clone)]
pub(crate) struct OpenApiJson(pub Arc<str>);

/// The body of a probe that passed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ProbeOk {
    /// `UP` or `READY`.
    status: &'static str,
}

/// The process is up. Never touches the database or GMS.
#[utoipa::path(get, path = "/livez", tag = "probes",
    responses((status = 200, description = "The process is up", body = ProbeOk)))]
pub(crate) async fn livez() -> Response {
    (StatusCode::OK, axum::Json(ProbeOk { status: "UP" })).into_response()
}

/// Ready for traffic: the process is not shutting down, tokens can be verified (keys loaded
/// and not older than their maximum age) and the request store answers within the readiness
/// timeout (its answer reused for a second, so a flood of probes costs the database about one
/// ping a second). GMS is not consulted: its outage must not take every replica out of the
/// load balancer at once.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses(
        (status = 200, description = "Ready", body = ProbeOk),
        (status = 503, description = "SERVICE_UNAVAILABLE: shutting down, no usable token keys, or the database does not answer", body = ErrorBody),
    ))]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Response, ApiError> {
    let unavailable = |reason: String| ApiError::ServiceUnavailable {
        retry_after: Duration::from_secs(1),
        reason,
    };
    if state.is_draining() {
        return Err(unavailable("shutting down".to_owned()));
    }
    state.auth().readiness().map_err(unavailable)?;
    state.store_readiness().await.map_err(unavailable)?;
    Ok((StatusCode::OK, axum::Json(ProbeOk { status: "READY" })).into_response())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "probes",
    responses((status = 200, description = "The OpenAPI 3.1 document of the public API", content_type = "application/json")))]
pub(crate) async fn openapi_json(Extension(document): Extension<OpenApiJson>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0.to_string(),
    )
        .into_response()
}

/// Prometheus text (internal listener).
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics().map(|render| render()).unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}
