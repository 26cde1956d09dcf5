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
    /// The request is pending but does not match what the reply expects of it (see
    /// [`ReplyMatch`]); nothing changed.
    Unmatched(BalanceRequest),
}

/// What a reply must find in the request it completes, besides its message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyMatch {
    /// A balance (IE037) names the request's GRN; compared ignoring ASCII case.
    Grn(String),
    /// An error (IE906, IE917) names the IE034's MesIdeMES19 (the request's message ref),
    /// exactly.
    MessageRef(String),
}

impl ReplyMatch {
    /// Whether `request` is the one the reply expects.
    pub fn matches(&self, request: &BalanceRequest) -> bool {
        match self {
            Self::Grn(grn) => grn.eq_ignore_ascii_case(request.grn.as_str()),
            Self::MessageRef(reference) => reference == request.message_ref.as_str(),
        }
    }
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

/// The requests a store holds without an outcome: recorded, not answered, not expired.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingRequests {
    /// How many there are.
    pub count: u64,
    /// How long ago the oldest of them was made; `None` when there are none.
    pub oldest_age: Option<Duration>,
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

/// A wait for one request's completion, started before anything could complete it (before
/// the request is submitted), so that it needs no first read to catch a completion that came
/// early.
#[async_trait]
pub trait CompletionWatch: Send {
    /// Waits until the request is completed or `timeout` passes, reading the request again
    /// at the end if no completion was seen. `None` when the request no longer exists or has
    /// expired.
    async fn wait(
        self: Box<Self>,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError>;
}

/// The watch of a tracker without one of its own: [`Tracker::wait_for_completion`] when the
/// wait begins.
#[derive(Debug)]
struct WaitLater<'a, T: ?Sized> {
    tracker: &'a T,
    id: BalanceRequestId,
    now: OffsetDateTime,
}

#[async_trait]
impl<T: Tracker + ?Sized> CompletionWatch for WaitLater<'_, T> {
    async fn wait(
        self: Box<Self>,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.tracker
            .wait_for_completion(self.id, self.now, timeout)
            .await
    }
}

/// [`Tracker::lock_and_insert`] in two steps: [`Tracker::lock`] on behalf of the request,
/// then, if it was taken, [`Tracker::insert`].
pub async fn lock_then_insert<T: Tracker + ?Sized>(
    tracker: &T,
    key: &str,
    now: OffsetDateTime,
    ttl: Duration,
    request: &NewBalanceRequest,
) -> Result<LockOutcome, TrackerError> {
    match tracker.lock(key, request.id, now, ttl).await? {
        LockOutcome::Acquired => tracker
            .insert(request)
            .await
            .map(|()| LockOutcome::Acquired),
        held @ LockOutcome::Held { .. } => Ok(held),
    }
}

/// Records balance requests, their replies, and the cluster-wide request locks.
///
/// Times are passed in so that callers (and tests) decide what "now" is. A store shared by
/// several processes may measure lock windows and expiry by a clock of its own instead (the
/// PostgreSQL tracker uses the database's), so that the processes' clocks need not agree;
/// the durations passed (TTLs, a request's lifetime `expires_at - requested_at`) are kept.
#[async_trait]
pub trait Tracker: Send + Sync + Debug {
    /// Records a pending request. [`TrackerError::DuplicateId`] if its id or message id exists.
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError>;

    /// Records a request already answered, with its outcome, as [`Tracker::insert`] then
    /// [`Tracker::complete`] would, without waking anyone (nobody waits for a request that is
    /// recorded complete); stores that can do it in one statement do.
    async fn insert_completed(
        &self,
        request: &NewBalanceRequest,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<(), TrackerError> {
        self.insert(request).await?;
        match self
            .complete(request.message_id(), outcome, completed_at)
            .await?
        {
            Completion::Stored(_) | Completion::Duplicate(_) => Ok(()),
            other => Err(TrackerError::Other(format!(
                "request {} was not completed as recorded: {other:?}",
                request.id
            ))),
        }
    }

    /// Takes the lock `key` for `ttl` unless someone holds it and, if it was taken, records
    /// `request`; stores that can do both in one statement do. `Held`: nothing was recorded.
    /// [`TrackerError::DuplicateId`]: the lock is taken but the request, whose id or message id
    /// exists, is not recorded (record a fresh one with [`Tracker::insert`]).
    async fn lock_and_insert(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
        request: &NewBalanceRequest,
    ) -> Result<LockOutcome, TrackerError> {
        lock_then_insert(self, key, now, ttl, request).await
    }

    /// Records the reply for the request with this message id: the first terminal outcome
    /// wins, and every replica waiting on the request is woken.
    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError>;

    /// [`Tracker::complete`] for a reply: the outcome is recorded only if the pending request
    /// also matches `expected`; a pending request that does not is left alone and comes back
    /// as [`Completion::Unmatched`]. Stores that can check in the completing statement do.
    async fn complete_matching(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        expected: &ReplyMatch,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        match self.get_by_message_id(message_id, completed_at).await? {
            None => Ok(Completion::NotFound),
            Some(request) if request.outcome.is_none() && !expected.matches(&request) => {
                Ok(Completion::Unmatched(request))
            }
            Some(_) => self.complete(message_id, outcome, completed_at).await,
        }
    }

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
    /// that a lost wake-up never loses an answer. `None` when the request no longer exists or
    /// has expired: every read is at `now` plus the time the wait has taken.
    async fn wait_for_completion(
        &self,
        id: BalanceRequestId,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError>;

    /// Starts a wait for request `id` at `now`, to be awaited later with
    /// [`CompletionWatch::wait`]. Without a watch of the store's own, the wait is
    /// [`Tracker::wait_for_completion`] (which reads the request first).
    fn watch<'a>(
        &'a self,
        id: BalanceRequestId,
        now: OffsetDateTime,
    ) -> Box<dyn CompletionWatch + 'a> {
        Box::new(WaitLater {
            tracker: self,
            id,
            now,
        })
    }

    /// Takes the lock `key` for `ttl` on behalf of request `owner` unless someone holds it,
    /// and records nothing else. The lock alone is not worth a wait for the disk: a store may
    /// commit it without waiting for it to be durable, since a crash can lose at most the
    /// lock, never an answer a caller was given (a durable write that follows, such as
    /// [`lock_then_insert`]'s, makes it durable too).
    async fn lock(
        &self,
        key: &str,
        owner: BalanceRequestId,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError>;

    /// Takes the lock `key` for `ttl` unless someone holds it, on behalf of nobody in
    /// particular (so it cannot be released, only lapse).
    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        self.lock(key, BalanceRequestId::new(), now, ttl).await
    }

    /// Undoes a check whose query provably never reached GMS, in one transaction: frees the
    /// lock `key` if it is still held on behalf of `owner`, and removes `request` if it is
    /// still pending. Either may be gone already (a lock that lapsed); nothing else is
    /// touched.
    async fn release(
        &self,
        key: &str,
        owner: BalanceRequestId,
        request: Option<BalanceRequestId>,
    ) -> Result<(), TrackerError>;

    /// Deletes at most `batch` expired requests and at most `batch` expired locks; returns
    /// how many rows went. Safe to run on several replicas at once.
    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError>;

    /// Whether the store answers (for readiness).
    async fn ping(&self) -> Result<(), TrackerError>;

    /// The requests without an outcome that have not expired at `now`, read from the whole
    /// store (every replica's requests): a scan of the live requests, so for a gauge read
    /// every few seconds, not for a request's path. A store that cannot count says so with
    /// [`TrackerError::Other`].
    async fn pending(&self, now: OffsetDateTime) -> Result<PendingRequests, TrackerError> {
        let _ = now;
        Err(TrackerError::Other(
            "this request store does not count its pending requests".to_owned(),
        ))
    }
}
