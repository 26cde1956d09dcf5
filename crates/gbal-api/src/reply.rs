//! The internal reply route, `POST /balances/{recipient}`: GMS (or the trader router) posts
//! the IE037, IE906 or IE917 that answers an IE034.
//!
//! Checks, in order: the bearer token (constant-time compare; 401), `X-Message-Type` (400),
//! the recipient's form (404: it cannot name a request), the message against its schema
//! (the validator refuses any DOCTYPE or entity declaration; 400 SCHEMA_VALIDATION), then
//! [`BalanceService::record_reply`](gbal_core::BalanceService::record_reply): unknown or
//! expired (404), cross-checks (400), first reply wins (200), identical duplicate (200),
//! different outcome (409).

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gbal_core::{
    Clock, MessageId, Outcome, ReplyError, ReplyFields, ReplyRecorded, ReplySink, Tracker,
};
use gbal_ncts::{Limits, MessageKind, parse_reply};

use crate::auth::bearer_token;
use crate::error::{ApiError, SchemaProblem};
use crate::metric;
use crate::state::AppState;

/// The sender of a reply presented the configured token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplySender;

impl FromRequestParts<AppState> for ReplySender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts).ok_or(ApiError::Unauthorized("no bearer token"))?;
        if constant_time_eq(token.as_bytes(), state.config().reply.token.as_bytes()) {
            Ok(ReplySender)
        } else {
            Err(ApiError::Unauthorized("wrong reply token"))
        }
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing about
/// how much of a guess was right (only the lengths' equality shows).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const MESSAGE_TYPE_ERROR: &str = "Missing or incorrect X-Message-Type header";

/// Record a GMS reply (internal listener).
pub(crate) async fn post_reply(
    State(state): State<AppState>,
    _: ReplySender,
    Path(recipient): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let kind = headers
        .get("x-message-type")
        .and_then(|v| v.to_str().ok())
        .and_then(MessageKind::from_header)
        .filter(|kind| *kind != MessageKind::Ie034)
        .ok_or_else(|| ApiError::BadRequest(MESSAGE_TYPE_ERROR.to_owned()))?;
    let message_type = kind.header();
    let prefix = &state.config().reply.recipient_prefix;
    let not_found = || {
        ApiError::NotFound(format!(
            "The balance request with message identifier {recipient} was not found"
        ))
    };
    let message_id = MessageId::parse_recipient(prefix, &recipient).map_err(|_| not_found())?;

    let limits = Limits {
        max_bytes: state.config().reply_body_limit,
        ..Limits::default()
    };
    let reply = parse_reply(&body, kind, &limits).map_err(|errors| {
        metric::reply(message_type, "schema_invalid");
        ApiError::SchemaValidation {
            message_type,
            errors: errors
                .into_iter()
                .map(|e| SchemaProblem {
                    line_number: e.line,
                    column_number: e.column,
                    message: e.message,
                })
                .collect(),
        }
    })?;
    let fields = ReplyFields {
        addressed_to: MessageId::parse_recipient(prefix, &reply.recipient).ok(),
        original_ref: reply.original_ref,
        grn: reply.grn,
        outcome: reply.outcome,
    };
    let result = state.service().record_reply(message_id, &fields).await;
    let label = match &result {
        Ok(ReplyRecorded::Stored(_)) => "stored",
        Ok(ReplyRecorded::Duplicate(_)) => "duplicate",
        Err(ReplyError::NotFound) => "not_found",
        Err(ReplyError::Mismatch(_)) => "mismatch",
        Err(ReplyError::Conflict(_)) => "conflict",
        Err(ReplyError::Unavailable(_)) => "unavailable",
        Err(ReplyError::Internal(_)) => "internal",
    };
    metric::reply(message_type, label);
    match result {
        Ok(recorded) => {
            let request = match &recorded {
                ReplyRecorded::Stored(r) | ReplyRecorded::Duplicate(r) => r,
            };
            tracing::info!(
                balance_id = %request.id,
                message_type,
                result = label,
                "reply recorded"
            );
            Ok(StatusCode::OK.into_response())
        }
        Err(ReplyError::NotFound) => Err(not_found()),
        Err(ReplyError::Mismatch(why)) => Err(ApiError::BadRequest(why.to_owned())),
        Err(ReplyError::Conflict(request)) => {
            tracing::warn!(balance_id = %request.id, message_type, "a reply conflicts with the recorded outcome");
            Err(ApiError::Conflict)
        }
        Err(ReplyError::Unavailable(reason)) => Err(ApiError::ServiceUnavailable {
            retry_after: std::time::Duration::from_secs(1),
            reason,
        }),
        Err(ReplyError::Internal(cause)) => Err(ApiError::Internal(cause)),
    }
}

/// Delivers late replies (the embedded simulator's delayed ones) straight to the tracker.
#[derive(Debug, Clone)]
pub struct TrackerReplySink {
    tracker: Arc<dyn Tracker>,
    clock: Arc<dyn Clock>,
}

impl TrackerReplySink {
    /// A sink completing requests in `tracker`, stamped with `clock`.
    pub fn new(tracker: Arc<dyn Tracker>, clock: Arc<dyn Clock>) -> Self {
        Self { tracker, clock }
    }
}

#[async_trait]
impl ReplySink for TrackerReplySink {
    async fn deliver(&self, message_id: MessageId, outcome: Outcome) {
        match self
            .tracker
            .complete(message_id, &outcome, self.clock.now())
            .await
        {
            Ok(completion) => tracing::debug!(?message_id, ?completion, "late reply delivered"),
            Err(error) => {
                tracing::error!(?message_id, error = %error, "a late reply could not be recorded");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
