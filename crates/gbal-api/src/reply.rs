//! The internal reply route, `POST /balances/{recipient}`: GMS (or the trader router) posts
//! the IE037, IE906 or IE917 that answers an IE034.
//!
//! The extractors authenticate the sender (`auth::ReplySender`, 401) and read the reply
//! (`reply_message`: 400 for a malformed recipient or header, 400 SCHEMA_VALIDATION, 400 for
//! a reply without the values it must carry); then
//! [`BalanceService::record_reply`](gbal_core::BalanceService::record_reply) decides: unknown
//! or expired (404), cross-checks (400), first reply wins (200), identical duplicate (200),
//! different outcome (409). Every reply that passed the token is one audit event
//! (`REPLY_*`), the ones the extractors refuse included.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gbal_core::{Clock, MessageId, Outcome, ReplyError, ReplyRecorded, ReplySink, Tracker};

use crate::audit::{AuditEvent, EventType, status_of};
use crate::auth::ReplySender;
use crate::error::ApiError;
use crate::metric;
use crate::middleware::RequestId;
use crate::reply_message::{ReplyMessage, recipient_not_found};
use crate::state::AppState;

/// Record a GMS reply (internal listener).
pub(crate) async fn post_reply(
    State(state): State<AppState>,
    _: ReplySender,
    RequestId(request_id): RequestId,
    reply: Result<ReplyMessage, ApiError>,
) -> Result<Response, ApiError> {
    let reply = match reply {
        Ok(reply) => reply,
        Err(error) => {
            if state.audit().is_on() {
                let (now, status) = (state.service().clock().now(), error.status().as_u16());
                let mut event = AuditEvent::new(EventType::ReplyInvalid, now, status);
                event.with_error(&error);
                event.http_request_id = request_id.as_deref();
                state.audit().record(&event);
            }
            return Err(error);
        }
    };
    let result = state
        .service()
        .record_reply(reply.recipient, &reply.fields)
        .await;
    let answer = answer(&reply, &result);
    if state.audit().is_on() {
        audit(&state, &reply, &result, &answer, request_id.as_deref());
    }
    answer
}

/// Records the audit event of a reply that could be read: what became of it, the request it
/// matched, what it says.
fn audit(
    state: &AppState,
    reply: &ReplyMessage,
    result: &Result<ReplyRecorded, ReplyError>,
    answer: &Result<Response, ApiError>,
    request_id: Option<&str>,
) {
    let now = state.service().clock().now();
    let mut event = AuditEvent::new(reply_event_type(result), now, status_of(answer));
    event.with_outcome(&reply.fields.outcome);
    match result {
        Ok(ReplyRecorded::Stored(request) | ReplyRecorded::Duplicate(request)) => {
            event.with_request(request);
        }
        Err(ReplyError::Conflict(request)) => event.with_request(request),
        Err(_) => {}
    }
    if let Err(error) = answer {
        event.with_error(error);
    }
    event.message_type = Some(reply.kind.header());
    event.recipient = Some(&reply.posted_to);
    event.http_request_id = request_id;
    state.audit().record(&event);
}

/// The audit event type of what became of a reply.
fn reply_event_type(result: &Result<ReplyRecorded, ReplyError>) -> EventType {
    match result {
        Ok(ReplyRecorded::Stored(_)) => EventType::ReplyAccepted,
        Ok(ReplyRecorded::Duplicate(_)) => EventType::ReplyDuplicate,
        Err(ReplyError::NotFound) => EventType::ReplyUnknownRecipient,
        Err(ReplyError::Mismatch(_)) => EventType::ReplyInvalid,
        Err(ReplyError::Conflict(_)) => EventType::ReplyConflict,
        Err(ReplyError::Unavailable(_) | ReplyError::Internal(_)) => EventType::ReplyFailed,
    }
}

/// The answer to a reply, counted and logged.
fn answer(
    reply: &ReplyMessage,
    result: &Result<ReplyRecorded, ReplyError>,
) -> Result<Response, ApiError> {
    let message_type = reply.kind.header();
    let label = result_label(result);
    metric::reply(message_type, label);
    match result {
        Ok(ReplyRecorded::Stored(request) | ReplyRecorded::Duplicate(request)) => {
            tracing::info!(
                balance_id = %request.id,
                message_type,
                result = label,
                "reply recorded"
            );
            Ok(StatusCode::OK.into_response())
        }
        Err(ReplyError::NotFound) => Err(recipient_not_found(&reply.posted_to)),
        Err(ReplyError::Mismatch(why)) => Err(ApiError::BadRequest((*why).to_owned())),
        Err(ReplyError::Conflict(request)) => {
            tracing::warn!(balance_id = %request.id, message_type, "a reply conflicts with the recorded outcome");
            Err(ApiError::Conflict)
        }
        Err(ReplyError::Unavailable(reason)) => Err(ApiError::ServiceUnavailable {
            retry_after: std::time::Duration::from_secs(1),
            reason: reason.clone(),
        }),
        Err(ReplyError::Internal(cause)) => Err(ApiError::Internal(cause.clone())),
    }
}

/// The `result` label of `gbal_replies_total`.
fn result_label(result: &Result<ReplyRecorded, ReplyError>) -> &'static str {
    match result {
        Ok(ReplyRecorded::Stored(_)) => "stored",
        Ok(ReplyRecorded::Duplicate(_)) => "duplicate",
        Err(ReplyError::NotFound) => "not_found",
        Err(ReplyError::Mismatch(_)) => "mismatch",
        Err(ReplyError::Conflict(_)) => "conflict",
        Err(ReplyError::Unavailable(_)) => "unavailable",
        Err(ReplyError::Internal(_)) => "internal",
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
