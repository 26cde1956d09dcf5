//! The extractors that authenticate, each the first check of its route: [`Caller`] on the
//! public API (a valid token, then the caller's limits and a place of the replica's),
//! [`ReplySender`] on the internal reply route (the configured reply token).

use std::marker::PhantomData;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use gbal_core::{ApiVersion, CallerId};
use tokio::sync::OwnedSemaphorePermit;

use crate::accept::Version;
use crate::audit::{AuditEvent, EventType};
use crate::error::ApiError;
use crate::limit::CallerPermit;
use crate::metric;
use crate::middleware::REQUEST_ID;
use crate::state::AppState;

/// The authenticated caller of an API `V` route, within its limits: the `sub` of a valid token
/// that grants the scope (see `authenticator`), then, right after authentication, the caller's
/// request rate, a place among its requests in flight and a place among the replica's (see
/// `limit`), held until the handler is done. So every route, `GET` included, is bounded
/// before anything else is read, and nothing of the replica's is held by a caller before it
/// is authenticated or while it is over its own limits. A caller over its rate or its
/// requests in flight gets the 429 of API `V`; a replica with no place left answers 503.
#[derive(Debug)]
pub(crate) struct Caller<V> {
    id: CallerId,
    _places: (CallerPermit, OwnedSemaphorePermit),
    version: PhantomData<V>,
}

impl<V> Caller<V> {
    /// Who is calling.
    pub(crate) fn id(&self) -> &CallerId {
        &self.id
    }
}

/// The 429 of API version `api`.
fn over_own_limit(api: ApiVersion, retry_after: Duration) -> ApiError {
    match api {
        ApiVersion::V1 => ApiError::TooManyRequests {
            reason: "CLIENT_RATE_LIMIT",
            retry_after: Some(retry_after),
        },
        ApiVersion::V2 => ApiError::Throttled { retry_after },
    }
}

impl<V: Version> FromRequestParts<AppState> for Caller<V> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized("no bearer token"))?;
        let id = state.auth().verify(token).await?;
        tracing::Span::current().record("caller", id.as_str());
        // Every POST of the API is a balance check, which ends here when refused.
        let check = parts.method == Method::POST;
        let refused = |limit: &'static str, error: ApiError| {
            if check {
                audit_refusal::<V>(state, parts, &id, limit, &error);
            }
            error
        };
        if let Err(retry_after) = state.limits().check(&id) {
            metric::caller_refused(V::API, "client", check);
            return Err(refused("client", over_own_limit(V::API, retry_after)));
        }
        let Some(own) = state.limits().enter(&id) else {
            metric::caller_refused(V::API, "client_in_flight", check);
            let error = over_own_limit(V::API, Duration::from_secs(1));
            return Err(refused("client_in_flight", error));
        };
        let Some(replica) = state.in_flight().enter() else {
            metric::shed();
            let error = ApiError::ServiceUnavailable {
                retry_after: Duration::from_secs(1),
                reason: "too many requests in flight on this replica".to_owned(),
            };
            return Err(refused("replica_in_flight", error));
        };
        Ok(Self {
            id,
            _places: (own, replica),
            version: PhantomData,
        })
    }
}

/// Records the audit event of a check refused by `limit` before it began.
fn audit_refusal<V: Version>(
    state: &AppState,
    parts: &Parts,
    caller: &CallerId,
    limit: &'static str,
    error: &ApiError,
) {
    let now = state.service().clock().now();
    let mut event = AuditEvent::new(EventType::RateLimited, now, error.status().as_u16());
    event.caller = Some(caller.as_str());
    event.api_version = Some(V::API);
    event.limit = Some(limit);
    event.with_error(error);
    event.http_request_id = parts.headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    state.audit().record(&event);
}

/// The sender of a reply presented the configured reply token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplySender;

impl FromRequestParts<AppState> for ReplySender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized("no bearer token"))?;
        let expected = state.config().reply.token.as_bytes();
        if gbal_core::secret::constant_time_eq(expected, token.as_bytes()) {
            Ok(ReplySender)
        } else {
            Err(ApiError::Unauthorized("wrong reply token"))
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_forms() {
        let parts = |value: &str| {
            let (parts, ()) = axum::http::Request::builder()
                .header("authorization", value)
                .body(())
                .unwrap()
                .into_parts();
            parts
        };
        assert_eq!(bearer_token(&parts("Bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&parts("bearer abc")), Some("abc"));
        assert_eq!(bearer_token(&parts("Basic abc")), None);
        assert_eq!(bearer_token(&parts("Bearer ")), None);
    }
}
