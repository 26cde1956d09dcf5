//! The GMS port: how a balance query reaches the Guarantee Management System, whatever the
//! transport.

use std::fmt::Debug;
use std::time::{Duration, Instant};

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
    /// When the caller must have its answer: no attempt is started, and none runs, past it.
    /// `None`: only the transport's own timeouts bound the submission.
    pub deadline: Option<Instant>,
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
///
/// Each error says whether the query can have reached GMS: the check that made it releases
/// its lock when it provably did not ([`GmsError::never_reached_gms`]), and keeps waiting for
/// a reply when GMS may have acted ([`GmsError::outcome_unknown`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GmsError {
    /// GMS refused the exchange itself (its 4xx) before accepting the query: resending would
    /// not help, and nothing will come of it.
    #[error("GMS refused the request with HTTP {status}")]
    Rejected {
        /// The HTTP status GMS answered.
        status: u16,
    },
    /// The query never reached GMS, or GMS refused it before accepting it: no connection, a
    /// 5xx answer (after the retries), the circuit open, or no time left to send it.
    #[error("GMS is unavailable: {reason}")]
    Unavailable {
        /// When trying again makes sense: the breaker's remaining cool-down when it is open.
        retry_after: Duration,
        /// What happened, for the log.
        reason: String,
    },
    /// The query was sent and GMS did not answer in time: it may have acted on it.
    #[error("GMS did not answer in time")]
    TimedOut,
    /// The exchange broke off after the query was sent (a reset connection, an answer cut
    /// short): GMS may have acted on it.
    #[error("the exchange with GMS broke off: {0}")]
    Interrupted(String),
    /// GMS answered something gbal cannot read.
    #[error("GMS answered something unreadable: {0}")]
    Garbled(String),
    /// gbal could not make a valid message (a bug, never sent).
    #[error("the message to GMS could not be built: {0}")]
    Internal(String),
}

impl GmsError {
    /// Whether the query provably never reached GMS, or GMS refused it before accepting it:
    /// no reply can come, so the check may release everything it took.
    pub fn never_reached_gms(&self) -> bool {
        matches!(
            self,
            Self::Rejected { .. } | Self::Unavailable { .. } | Self::Internal(_)
        )
    }

    /// Whether GMS may have acted on the query although no answer came: a reply may still
    /// arrive.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, Self::TimedOut | Self::Interrupted(_))
    }
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

    /// Whether `submit` ends with GMS's answer to this query ([`Submission::Answered`] or an
    /// error), never with a reply to come later: then no request needs recording for a reply
    /// to complete. `false` unless the transport knows.
    fn answers_within_call(&self, query: &BalanceQuery) -> bool {
        let _ = query;
        false
    }
}

/// Where replies that arrive after `submit` returned are delivered (the embedded simulator
/// uses it when a reply is delayed).
#[async_trait]
pub trait ReplySink: Send + Sync + Debug {
    /// Records the reply for the request with this message id.
    async fn deliver(&self, message_id: MessageId, outcome: Outcome);
}
