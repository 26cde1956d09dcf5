//! The GMS port: how a balance query reaches the Guarantee Management System, whatever the
//! transport.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::id::{BalanceRequestId, MessageId, UniqueReference};
use crate::outcome::Outcome;
use crate::request::BalanceQuery;

/// What gbal knows about a submission besides the query itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmitContext {
    /// The balance request this submission is for.
    pub balance_id: BalanceRequestId,
    /// Its message id (the reply names it as `<prefix><24 hex>`).
    pub message_id: MessageId,
    /// The IE034's MesIdeMES19.
    pub message_ref: UniqueReference,
    /// When the caller asked (the IE034's date and time, and the `Date` header).
    pub requested_at: OffsetDateTime,
    /// The caller's request id, propagated to GMS.
    pub request_id: Option<String>,
    /// The W3C `traceparent` of the current span, propagated to GMS.
    pub traceparent: Option<String>,
}

/// How a submission was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submission {
    /// GMS answered at once.
    Answered(Outcome),
    /// GMS accepted the query; the reply arrives later on the internal listener.
    Accepted,
}

/// Why a submission failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GmsError {
    /// GMS refused the exchange itself (its 4xx): resending would not help.
    #[error("GMS refused the request with HTTP {status}")]
    Rejected {
        /// The HTTP status GMS answered.
        status: u16,
    },
    /// GMS cannot be reached now (connection refused, 5xx after retries, circuit open).
    #[error("GMS is unavailable: {reason}")]
    Unavailable {
        /// When trying again makes sense.
        retry_after: Duration,
        /// What happened, for the log.
        reason: String,
    },
    /// GMS did not answer within the configured time.
    #[error("GMS did not answer in time")]
    TimedOut,
    /// GMS answered something gbal cannot read.
    #[error("GMS answered something unreadable: {0}")]
    Garbled(String),
    /// gbal could not make a valid message (a bug, never sent).
    #[error("the message to GMS could not be built: {0}")]
    Internal(String),
}

/// A Guarantee Management System, behind whichever transport is configured.
#[async_trait]
pub trait Gms: Send + Sync + Debug {
    /// Sends the query. The access code leaves gbal here and nowhere else.
    async fn submit(
        &self,
        query: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<Submission, GmsError>;

    /// The transport's name for logs and metrics: `simulator`, `ncts-xml` or `eis-json`.
    fn transport(&self) -> &'static str;
}

/// Where replies that arrive after `submit` returned are delivered (the embedded simulator
/// uses it when a reply is delayed).
#[async_trait]
pub trait ReplySink: Send + Sync + Debug {
    /// Records the reply for the request with this message id.
    async fn deliver(&self, message_id: MessageId, outcome: Outcome);
}
