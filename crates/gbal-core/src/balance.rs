//! `BalanceService`: the one orchestration of a balance check, the same for both API versions
//! and every GMS transport, and the recording of the replies that arrive later.
//!
//! A check: take the cluster-wide lock on (caller, GRN), record a request only where someone
//! will read it, submit the query through [`Gms`] (the adapter builds the IE034 and
//! self-checks it against CD034A before anything is sent; a message that fails its own check
//! comes back as [`GmsError::Internal`]), then either take the answer GMS gave at once or wait
//! for the reply to complete the request, up to the version's wait and never past the check's
//! deadline. What is recorded ([`Keeping`]):
//!
//! - API v2 over a transport that answers within the call: nothing but the lock (v2 has no
//!   `GET`, and no reply needs matching);
//! - API v1 over such a transport: the request once, already answered (no reply to wait for);
//! - any check whose reply arrives later: a pending request, which the reply completes.
//!
//! When the query provably never reached GMS (no connection, a refusal before GMS accepted it,
//! the circuit open), the lock is released and the request removed in one transaction: a GMS
//! failure never costs the caller its minute. When GMS may have acted (timed out after
//! sending), both stay and the check goes on waiting for the reply.
//!
//! The per-caller request rate (governor) is the HTTP layer's business and runs before
//! [`BalanceService::check`]; a replica's memory of held locks is a caching decorator of the
//! [`Tracker`], so the service never knows of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::clock::Clock;
use crate::gms::{Gms, GmsError, Submission, SubmitContext};
use crate::id::{BalanceRequestId, MessageId, UniqueReference};
use crate::outcome::Outcome;
use crate::request::{ApiVersion, BalanceQuery, BalanceRequest, CallerId, NewBalanceRequest};
use crate::tracker::{Completion, CompletionWatch, LockOutcome, ReplyMatch, Tracker, TrackerError};

/// How long a check may take and how long requests and locks live. Every value comes from
/// the binary's configuration (`[balance]` of `config/default.toml`); there is no default here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalanceConfig {
    /// How long an API v1 check waits for the reply before answering 202.
    pub sync_wait: Duration,
    /// How long an API v2 check waits for the reply before giving up.
    pub v2_wait: Duration,
    /// How long a request is kept after it was made.
    pub ttl: Duration,
    /// How long the (caller, GRN) lock holds: one check per caller and GRN per `lock_ttl`.
    pub lock_ttl: Duration,
}

impl BalanceConfig {
    /// Checks what the service relies on: every duration above zero (a zero lock would let
    /// every check through), and requests that outlive both waits (a request answered 202 or
    /// 504 must still be readable, and completable by its reply, afterwards).
    pub fn validate(&self) -> Result<(), InvalidBalanceConfig> {
        let invalid = |field, reason| Err(InvalidBalanceConfig { field, reason });
        for (field, value) in [
            ("sync_wait", self.sync_wait),
            ("v2_wait", self.v2_wait),
            ("ttl", self.ttl),
            ("lock_ttl", self.lock_ttl),
        ] {
            if value.is_zero() {
                return invalid(field, "must be above 0");
            }
        }
        if self.ttl <= self.sync_wait.max(self.v2_wait) {
            return invalid("ttl", "must be longer than sync_wait and v2_wait");
        }
        Ok(())
    }
}

/// A [`BalanceConfig`] the service cannot work with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidBalanceConfig {
    /// The field at fault, as named in [`BalanceConfig`].
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Correlation data propagated to GMS with a check, and when the check must end.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The caller's (or the generated) request id.
    pub request_id: Option<String>,
    /// The W3C `traceparent` of the current span.
    pub traceparent: Option<String>,
    /// When the check must have ended ([`answer_deadline`]): the submission and the wait
    /// stop by then. `None`: only the configured waits and the transport's timeouts bound it.
    pub deadline: Option<Instant>,
}

/// The most a check keeps between the end of its wait and its request's timeout, for the
/// final read and the answer: a tenth of the timeout, at most a second.
pub fn deadline_margin(request_timeout: Duration) -> Duration {
    (request_timeout / 10).min(Duration::from_secs(1))
}

/// When a check that arrived at `arrival` must have ended so that its answer beats
/// `request_timeout` (after which the HTTP layer gives up on it): the timeout less
/// [`deadline_margin`].
pub fn answer_deadline(arrival: Instant, request_timeout: Duration) -> Instant {
    arrival + request_timeout.saturating_sub(deadline_margin(request_timeout))
}

/// What a check records besides its lock, chosen by who can read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeping {
    /// Nothing: API v2 (no `GET`) over a transport that answers within the call (no reply
    /// to match). The lock alone is committed without waiting for the disk.
    Nothing,
    /// The request, once, already answered: API v1 over a transport that answers within the
    /// call.
    Answer,
    /// A pending request before the query is sent, for the reply that arrives later (and for
    /// v1's `GET`); durable.
    Pending,
}

impl Keeping {
    /// What a check through `api_version` records when the transport does or does not answer
    /// within the call.
    pub fn of(api_version: ApiVersion, answers_within_call: bool) -> Self {
        match (api_version, answers_within_call) {
            (_, false) => Self::Pending,
            (ApiVersion::V1, true) => Self::Answer,
            (ApiVersion::V2, true) => Self::Nothing,
        }
    }
}

/// How a check ended, short of an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// GMS answered.
    Completed(Answered),
    /// No answer within the wait; the request is recorded and still pending.
    Pending(BalanceRequest),
}

/// A request GMS answered, with the outcome it was completed with: a completed check cannot
/// lack its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    request: BalanceRequest,
    outcome: Outcome,
}

impl CheckOutcome {
    /// Where a recorded request leaves a check: completed when it has its outcome, pending
    /// when not.
    pub fn of(request: BalanceRequest) -> Self {
        match request.outcome.clone() {
            Some(outcome) => Self::Completed(Answered { request, outcome }),
            None => Self::Pending(request),
        }
    }
}

impl Answered {
    /// The request as recorded.
    pub fn request(&self) -> &BalanceRequest {
        &self.request
    }

    /// What GMS answered.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
}

/// Why a check failed. Each variant is one class of HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The same caller asked about the same GRN within the lock's TTL (cluster-wide).
    #[error("this caller asked about this guarantee too recently")]
    RateLimited {
        /// Time left on the lock.
        retry_after: Duration,
    },
    /// The request store or GMS cannot be reached now.
    #[error("unavailable: {reason}")]
    Unavailable {
        /// When trying again makes sense.
        retry_after: Duration,
        /// What happened, for the log.
        reason: String,
    },
    /// GMS refused or garbled the exchange itself.
    #[error("bad gateway: {0}")]
    BadGateway(String),
    /// GMS did not answer the submission in time, and no reply can come to a request.
    #[error("GMS did not answer in time")]
    GmsTimedOut,
    /// The request expired, or was removed, before its reply came: there is nothing to
    /// answer with and no request to point at.
    #[error("request {0} expired before its reply came")]
    Expired(BalanceRequestId),
    /// Anything else: a bug or a broken invariant; the cause is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// What became of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyRecorded {
    /// The reply completed the request.
    Stored(BalanceRequest),
    /// The request already had this very outcome.
    Duplicate(BalanceRequest),
}

/// Why a reply was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// No live request has this message id.
    #[error("no live request has this message id")]
    NotFound,
    /// The reply names a request it does not belong to; the text says which value differs.
    #[error("{0}")]
    Mismatch(&'static str),
    /// The request already has a different outcome; nothing changed.
    #[error("the request already has a different outcome")]
    Conflict(Box<BalanceRequest>),
    /// The request store cannot be reached now.
    #[error("the request store is unavailable: {0}")]
    Unavailable(String),
    /// Any other failure, for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The values of a parsed reply that say which request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFields {
    /// MesRecMES6 read as a message id; `None` when it is not one of ours at all.
    pub addressed_to: Option<MessageId>,
    /// OriMesIdeMES22 (IE906, IE917): the MesIdeMES19 of the IE034 it answers.
    pub original_ref: Option<String>,
    /// The GRN the balance is for (IE037).
    pub grn: Option<String>,
    /// What the reply says.
    pub outcome: Outcome,
}

/// The one orchestration of a balance check.
#[derive(Debug, Clone)]
pub struct BalanceService {
    tracker: Arc<dyn Tracker>,
    gms: Arc<dyn Gms>,
    clock: Arc<dyn Clock>,
    config: BalanceConfig,
}

/// How many fresh ids a check tries when its id is already taken.
const INSERT_ATTEMPTS: usize = 3;

/// What a check releases when its query never reached GMS.
struct Undo<'a> {
    key: &'a str,
    /// The id the lock was taken on behalf of.
    owner: BalanceRequestId,
    /// The request recorded under the lock, if any.
    request: Option<BalanceRequestId>,
}

impl BalanceService {
    /// A service over these ports.
    pub fn new(
        tracker: Arc<dyn Tracker>,
        gms: Arc<dyn Gms>,
        clock: Arc<dyn Clock>,
        config: BalanceConfig,
    ) -> Self {
        Self {
            tracker,
            gms,
            clock,
            config,
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &BalanceConfig {
        &self.config
    }

    /// The request store.
    pub fn tracker(&self) -> &Arc<dyn Tracker> {
        &self.tracker
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The GMS transport's name.
    pub fn transport(&self) -> &'static str {
        self.gms.transport()
    }

    /// The key of the cluster-wide lock on (caller, GRN). The GRN comes first because it has
    /// no separator in it, so no two pairs share a key. It is the canonical, upper-case GRN
    /// (API v1 keeps a GRN as typed, and replies are matched upper-cased): writing the GRN in
    /// another case does not make another key, so it cannot dodge the once-a-minute rule.
    ///
    /// ```
    /// use gbal_core::{BalanceService, CallerId, Grn};
    /// let caller = CallerId::parse("trader").unwrap();
    /// let key = |grn| BalanceService::lock_key(&caller, &Grn::parse_v1(grn).unwrap());
    /// assert_eq!(key("26gb0000010000021"), key("26GB0000010000021"));
    /// assert_eq!(key("26Gb0000010000021"), "balance:26GB0000010000021:trader");
    /// ```
    pub fn lock_key(caller: &CallerId, grn: &crate::grn::Grn) -> String {
        format!(
            "balance:{}:{}",
            grn.as_str().to_ascii_uppercase(),
            caller.as_str()
        )
    }

    /// Runs a balance check: lock, record what someone will read, submit, wait, and report
    /// how it ended.
    pub async fn check(
        &self,
        caller: &CallerId,
        query: &BalanceQuery,
        api_version: ApiVersion,
        context: &CallContext,
    ) -> Result<CheckOutcome, CheckError> {
        let now = self.clock.now();
        let key = Self::lock_key(caller, &query.grn);
        let keeping = Keeping::of(api_version, self.gms.answers_within_call(query));
        let new = self.new_request(caller, query, api_version, now);
        // The lock is taken on behalf of the first id; the request may end up with another.
        let owner = new.id;
        let (new, recorded) = match keeping {
            Keeping::Pending => (self.lock_and_record(&key, new, now).await?, true),
            Keeping::Nothing | Keeping::Answer => (self.lock(&key, new, now).await?, false),
        };
        let undo = Undo {
            key: &key,
            owner,
            request: recorded.then_some(new.id),
        };
        // Watching from before the submission: a reply that beats GMS's own answer is seen.
        let watch = (keeping == Keeping::Pending).then(|| self.tracker.watch(new.id, now));
        if context.deadline.is_some_and(|d| Instant::now() >= d) {
            // The store took the whole time: the query is not sent at all.
            drop(watch);
            self.release(&undo).await;
            return Err(CheckError::Unavailable {
                retry_after: Duration::from_secs(1),
                reason: "no time was left to ask GMS".to_owned(),
            });
        }
        let submit_context = SubmitContext {
            balance_id: new.id,
            message_id: new.message_id(),
            message_ref: new.message_ref,
            requested_at: new.requested_at,
            request_id: context.request_id.clone(),
            traceparent: context.traceparent.clone(),
            deadline: context.deadline,
        };
        let submission = self.gms.submit(query, &submit_context).await;

        match (submission, watch) {
            (Ok(Submission::Answered(outcome)), _) => match keeping {
                Keeping::Nothing => Ok(answered(&new, outcome, self.clock.now())),
                Keeping::Answer => self.record_answer(new, outcome).await,
                Keeping::Pending => self.complete_recorded(&new, outcome).await,
            },
            (Ok(Submission::Accepted), Some(watch)) => {
                self.wait(watch, &new, context.deadline).await
            }
            (Ok(Submission::Accepted), None) => Err(CheckError::Internal(format!(
                "the {} transport said it answers within the call, yet only accepted request {}",
                self.gms.transport(),
                new.id
            ))),
            (Err(error), watch) if error.never_reached_gms() => {
                drop(watch);
                self.release(&undo).await;
                Err(gms_error(error))
            }
            (Err(error), Some(watch)) if error.outcome_unknown() => {
                // GMS may have acted: its reply may still come, for this wait or for GET.
                tracing::warn!(balance_id = %new.id, error = %error, "the query may have reached GMS; waiting for its reply");
                self.wait(watch, &new, context.deadline).await
            }
            (Err(error), None) if error.outcome_unknown() => match keeping {
                // v1 answers with an id whose GET shows the request, as for any check
                // whose answer is still to come.
                Keeping::Answer => {
                    self.tracker.insert(&new).await.map_err(tracker_error)?;
                    Ok(CheckOutcome::Pending(BalanceRequest::pending(&new)))
                }
                Keeping::Nothing | Keeping::Pending => Err(gms_error(error)),
            },
            (Err(error), _) => Err(gms_error(error)),
        }
    }

    /// A fresh request for this check, made at `now`.
    fn new_request(
        &self,
        caller: &CallerId,
        query: &BalanceQuery,
        api_version: ApiVersion,
        now: OffsetDateTime,
    ) -> NewBalanceRequest {
        NewBalanceRequest {
            id: BalanceRequestId::new(),
            message_ref: UniqueReference::random(),
            caller: caller.clone(),
            api_version,
            grn: query.grn.clone(),
            tin: query.tin.clone(),
            requested_at: now,
            expires_at: now + self.config.ttl,
        }
    }

    /// The version's wait, cut short by the deadline.
    fn wait_for(&self, api_version: ApiVersion, deadline: Option<Instant>) -> Duration {
        let wait = match api_version {
            ApiVersion::V1 => self.config.sync_wait,
            ApiVersion::V2 => self.config.v2_wait,
        };
        match deadline {
            Some(deadline) => wait.min(deadline.saturating_duration_since(Instant::now())),
            None => wait,
        }
    }

    /// Waits for the reply that completes `new`: the completed request, the pending one when
    /// the wait ran out, or [`CheckError::Expired`] when it is gone.
    async fn wait(
        &self,
        watch: Box<dyn CompletionWatch + '_>,
        new: &NewBalanceRequest,
        deadline: Option<Instant>,
    ) -> Result<CheckOutcome, CheckError> {
        let wait = self.wait_for(new.api_version, deadline);
        match watch.wait(wait).await.map_err(tracker_error)? {
            Some(request) => Ok(CheckOutcome::of(request)),
            None => Err(CheckError::Expired(new.id)),
        }
    }

    /// Stores the answer GMS gave at once to a recorded request. A reply that raced it keeps
    /// its place: the first one wins.
    async fn complete_recorded(
        &self,
        new: &NewBalanceRequest,
        outcome: Outcome,
    ) -> Result<CheckOutcome, CheckError> {
        let now = self.clock.now();
        let completion = self
            .tracker
            .complete(new.message_id(), &outcome, now)
            .await
            .map_err(tracker_error)?;
        match completion {
            Completion::Stored(request)
            | Completion::Duplicate(request)
            | Completion::Conflict(request) => match CheckOutcome::of(request) {
                completed @ CheckOutcome::Completed(_) => Ok(completed),
                CheckOutcome::Pending(r) => Err(CheckError::Internal(format!(
                    "request {} was stored without its outcome",
                    r.id
                ))),
            },
            // The request expired or was removed meanwhile: GMS's answer is still the
            // caller's (a v1 balance carries no id to read it back by).
            Completion::NotFound | Completion::Unmatched(_) => Ok(answered(new, outcome, now)),
        }
    }

    /// Records a v1 request answered within the call, once, with its answer, under a fresh
    /// id when the first one is taken. The caller gets the answer even if the store fails
    /// now: its lock is taken, and the request is one nobody can ask for (a v1 answer carries
    /// no id).
    async fn record_answer(
        &self,
        new: NewBalanceRequest,
        outcome: Outcome,
    ) -> Result<CheckOutcome, CheckError> {
        let completed_at = self.clock.now();
        let mut new = new;
        for _ in 0..INSERT_ATTEMPTS {
            match self
                .tracker
                .insert_completed(&new, &outcome, completed_at)
                .await
            {
                Ok(()) => break,
                Err(TrackerError::DuplicateId) => {
                    new.id = BalanceRequestId::new();
                    new.message_ref = UniqueReference::random();
                }
                Err(error) => {
                    tracing::warn!(balance_id = %new.id, error = %error, "an answered v1 request could not be recorded; answering anyway");
                    break;
                }
            }
        }
        Ok(answered(&new, outcome, completed_at))
    }

    /// Undoes a check's lock and request, logging a failure: the caller's answer does not
    /// depend on it.
    async fn release(&self, undo: &Undo<'_>) {
        if let Err(error) = self
            .tracker
            .release(undo.key, undo.owner, undo.request)
            .await
        {
            tracing::warn!(lock_owner = %undo.owner, error = %error, "the lock of a check that never reached GMS could not be released; it lapses by itself");
        }
    }

    /// Takes the cluster-wide lock on (caller, GRN) for `new`, recording nothing else.
    async fn lock(
        &self,
        key: &str,
        new: NewBalanceRequest,
        now: OffsetDateTime,
    ) -> Result<NewBalanceRequest, CheckError> {
        match self
            .tracker
            .lock(key, new.id, now, self.config.lock_ttl)
            .await
            .map_err(tracker_error)?
        {
            LockOutcome::Acquired => Ok(new),
            LockOutcome::Held { retry_after } => Err(self.rate_limited(retry_after)),
        }
    }

    /// The refusal of a held lock. The time left is measured from this check's `now`; a check
    /// that began just before the holder's (and lost the race to the lock) would be told a
    /// little more than a TTL, which no lock ever has left once it is held.
    fn rate_limited(&self, retry_after: Duration) -> CheckError {
        CheckError::RateLimited {
            retry_after: retry_after.min(self.config.lock_ttl),
        }
    }

    /// Takes the cluster-wide lock on (caller, GRN) and records `new`, pending, under it,
    /// with a fresh id when the first one is taken.
    async fn lock_and_record(
        &self,
        key: &str,
        mut new: NewBalanceRequest,
        now: OffsetDateTime,
    ) -> Result<NewBalanceRequest, CheckError> {
        let mut locked = false;
        for _ in 0..INSERT_ATTEMPTS {
            let recorded = if locked {
                self.tracker.insert(&new).await
            } else {
                match self
                    .tracker
                    .lock_and_insert(key, now, self.config.lock_ttl, &new)
                    .await
                {
                    Ok(LockOutcome::Acquired) => Ok(()),
                    Ok(LockOutcome::Held { retry_after }) => {
                        return Err(self.rate_limited(retry_after));
                    }
                    Err(e) => Err(e),
                }
            };
            match recorded {
                Ok(()) => return Ok(new),
                Err(TrackerError::DuplicateId) => {
                    // The lock is ours (on behalf of the first id); only the request needs a
                    // fresh id.
                    locked = true;
                    new.id = BalanceRequestId::new();
                    new.message_ref = UniqueReference::random();
                }
                Err(e) => return Err(tracker_error(e)),
            }
        }
        Err(CheckError::Internal(format!(
            "{INSERT_ATTEMPTS} fresh request ids were all taken (last {})",
            new.id
        )))
    }

    /// The request with this id, if `caller` made it and it has not expired.
    pub async fn get(
        &self,
        id: BalanceRequestId,
        caller: &CallerId,
    ) -> Result<Option<BalanceRequest>, CheckError> {
        self.tracker
            .get(id, caller, self.clock.now())
            .await
            .map_err(tracker_error)
    }

    /// Records a reply for the request whose message id is `recipient`, after checking that
    /// the reply belongs to it: first reply wins, an identical duplicate is acknowledged, a
    /// different one is refused and changes nothing.
    pub async fn record_reply(
        &self,
        recipient: MessageId,
        reply: &ReplyFields,
    ) -> Result<ReplyRecorded, ReplyError> {
        let now = self.clock.now();
        let Some(expected) = expectation(recipient, reply) else {
            // The reply cannot belong to any request: say whether the one it names exists.
            let request = self
                .tracker
                .get_by_message_id(recipient, now)
                .await
                .map_err(reply_tracker_error)?
                .ok_or(ReplyError::NotFound)?;
            return Err(ReplyError::Mismatch(
                mismatch(recipient, reply, &request).unwrap_or(MESSAGE_RECIPIENT_MISMATCH),
            ));
        };
        // The completing statement itself checks the request; whatever it did not store is
        // checked here, so that a mismatch is reported before a duplicate or a conflict.
        let completion = self
            .tracker
            .complete_matching(recipient, &reply.outcome, &expected, now)
            .await
            .map_err(reply_tracker_error)?;
        let unchecked = match &completion {
            Completion::Stored(_) | Completion::NotFound => None,
            Completion::Duplicate(r) | Completion::Conflict(r) | Completion::Unmatched(r) => {
                Some(r)
            }
        };
        if let Some(why) = unchecked.and_then(|r| mismatch(recipient, reply, r)) {
            return Err(ReplyError::Mismatch(why));
        }
        match completion {
            Completion::Stored(request) => Ok(ReplyRecorded::Stored(request)),
            Completion::Duplicate(request) => Ok(ReplyRecorded::Duplicate(request)),
            Completion::Conflict(request) => Err(ReplyError::Conflict(Box::new(request))),
            Completion::NotFound => Err(ReplyError::NotFound),
            // The store and `ReplyMatch::matches` disagree: refuse rather than store.
            Completion::Unmatched(_) => Err(ReplyError::Mismatch(unmatched_value(&reply.outcome))),
        }
    }
}

const MESSAGE_RECIPIENT_MISMATCH: &str =
    "The message recipient (MesRecMES6) does not match the request";
const GRN_MISMATCH: &str = "The guarantee reference number does not match the request";
const ORIGINAL_REF_MISMATCH: &str =
    "The original message identifier (OriMesIdeMES22) does not match the request";

/// What the request completed by `reply` must match, or `None` when no request can (the reply
/// is addressed elsewhere, or lacks the value to check).
fn expectation(recipient: MessageId, reply: &ReplyFields) -> Option<ReplyMatch> {
    if reply.addressed_to != Some(recipient) {
        return None;
    }
    match &reply.outcome {
        Outcome::Success(_) => reply.grn.clone().map(ReplyMatch::Grn),
        Outcome::FunctionalError { .. } | Outcome::XmlError { .. } => {
            reply.original_ref.clone().map(ReplyMatch::MessageRef)
        }
    }
}

/// Why `reply` does not belong to `request`, if it does not.
fn mismatch(
    recipient: MessageId,
    reply: &ReplyFields,
    request: &BalanceRequest,
) -> Option<&'static str> {
    if reply.addressed_to != Some(recipient) {
        return Some(MESSAGE_RECIPIENT_MISMATCH);
    }
    match expectation(recipient, reply) {
        Some(expected) if expected.matches(request) => None,
        _ => Some(unmatched_value(&reply.outcome)),
    }
}

/// What a reply of this outcome failed to match: the GRN (IE037) or OriMesIdeMES22.
fn unmatched_value(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Success(_) => GRN_MISMATCH,
        Outcome::FunctionalError { .. } | Outcome::XmlError { .. } => ORIGINAL_REF_MISMATCH,
    }
}

fn tracker_error(error: TrackerError) -> CheckError {
    match error {
        TrackerError::Unavailable(reason) => CheckError::Unavailable {
            retry_after: Duration::from_secs(1),
            reason,
        },
        other => CheckError::Internal(other.to_string()),
    }
}

fn reply_tracker_error(error: TrackerError) -> ReplyError {
    match error {
        TrackerError::Unavailable(reason) => ReplyError::Unavailable(reason),
        other => ReplyError::Internal(other.to_string()),
    }
}

fn gms_error(error: GmsError) -> CheckError {
    match error {
        GmsError::Unavailable {
            retry_after,
            reason,
        } => CheckError::Unavailable {
            retry_after,
            reason,
        },
        GmsError::Rejected { .. } | GmsError::Garbled(_) => {
            CheckError::BadGateway(error.to_string())
        }
        GmsError::TimedOut | GmsError::Interrupted(_) => CheckError::GmsTimedOut,
        GmsError::Internal(reason) => CheckError::Internal(reason),
    }
}

/// The check's end when GMS's answer is known and the request as stored (if any) is not: the
/// request as it would read, completed at `at`.
fn answered(new: &NewBalanceRequest, outcome: Outcome, at: OffsetDateTime) -> CheckOutcome {
    CheckOutcome::Completed(Answered {
        request: BalanceRequest {
            completed_at: Some(at),
            outcome: Some(outcome.clone()),
            ..BalanceRequest::pending(new)
        },
        outcome,
    })
}
