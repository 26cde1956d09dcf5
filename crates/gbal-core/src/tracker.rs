//! The tracker port: where balance requests are recorded until their reply arrives.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::id::{BalanceRequestId, MessageId};
use crate::outcome::Outcome;
use crate::request::{BalanceRequest, CallerId, NewBalanceRequest};

/// What became of an attempt to record a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// The reply was recorded; the request as it now stands.
    Stored(BalanceRequest),
    /// The request already had this very outcome; nothing changed.
    Duplicate(BalanceRequest),
    /// The request already had a different outcome; nothing changed.
    Conflict(BalanceRequest),
    /// No live request has this message id (unknown, or expired).
    NotFound,
}

/// The answer to a lock attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockOutcome {
    /// The lock is ours until its TTL runs out.
    Acquired,
    /// Someone holds it; it frees up after `retry_after`. The attempt did not extend it.
    Held {
        /// Time left on the lock.
        retry_after: Duration,
    },
}

/// Tracker failures.
#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    /// The store cannot be reached or did not answer in time.
    #[error("the request store is unavailable: {0}")]
    Unavailable(String),
    /// A request with this id or message id is already recorded.
    #[error("a request with this id or message id is already recorded")]
    DuplicateId,
    /// A stored row could not be read back as a valid request.
    #[error("a stored request is not valid: {0}")]
    Corrupt(String),
    /// Any other store error.
    #[error("request store error: {0}")]
    Other(String),
}

/// Records balance requests, their replies, and the cluster-wide request locks.
///
/// Times are passed in so that callers (and tests) decide what "now" is.
#[async_trait]
pub trait Tracker: Send + Sync + Debug {
    /// Records a pending request. [`TrackerError::DuplicateId`] if its id or message id exists.
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError>;

    /// Records the reply for the request with this message id: the first terminal outcome
    /// wins, and every replica waiting on the request is woken.
    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError>;

    /// The request with this id, if `caller` made it and it has not expired at `now`.
    async fn get(
        &self,
        id: BalanceRequestId,
        caller: &CallerId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError>;

    /// The live request with this message id (to cross-check a reply before completing it).
    async fn get_by_message_id(
        &self,
        message_id: MessageId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError>;

    /// Waits until the request is completed or `timeout` passes, then reads it once more, so
    /// that a lost wake-up never loses an answer. `None` when the request no longer exists.
    async fn wait_for_completion(
        &self,
        id: BalanceRequestId,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError>;

    /// Takes the lock `key` for `ttl` unless someone holds it.
    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError>;

    /// Deletes at most `batch` expired requests and at most `batch` expired locks; returns
    /// how many rows went. Safe to run on several replicas at once.
    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError>;

    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), TrackerError>;
}
