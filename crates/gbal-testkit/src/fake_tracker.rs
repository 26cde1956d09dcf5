//! One configurable fake [`Tracker`]: a real tracker behind it does the work, and a test
//! makes chosen methods fail, hang, wait or find every lock held, for every call or for the
//! first few, and counts the calls of each method.
//!
//! The trait's composite methods (`lock_and_insert`, `insert_completed`, `complete_matching`,
//! `watch`) keep the trait's own definitions, built from the single methods: so an injection
//! on `insert` or `acquire_lock` applies to `lock_and_insert` too, and the counts see every
//! step.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gbal_core::{
    BalanceRequest, BalanceRequestId, CallerId, Completion, LockOutcome, MessageId,
    NewBalanceRequest, Outcome, Tracker, TrackerError,
};
use gbal_tracker::SqliteTracker;
use time::OffsetDateTime;

/// A method of [`Tracker`] that a [`FakeTracker`] can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// [`Tracker::insert`].
    Insert,
    /// [`Tracker::complete`].
    Complete,
    /// [`Tracker::get`].
    Get,
    /// [`Tracker::get_by_message_id`].
    GetByMessageId,
    /// [`Tracker::wait_for_completion`].
    WaitForCompletion,
    /// [`Tracker::acquire_lock`], and [`Tracker::lock`] (the same lock on behalf of a
    /// request).
    AcquireLock,
    /// [`Tracker::expire`].
    Expire,
    /// [`Tracker::ping`].
    Ping,
    /// [`Tracker::release`].
    Release,
}

impl Method {
    /// Every method, in the trait's order.
    pub const ALL: [Method; 9] = [
        Method::Insert,
        Method::Complete,
        Method::Get,
        Method::GetByMessageId,
        Method::WaitForCompletion,
        Method::AcquireLock,
        Method::Expire,
        Method::Ping,
        Method::Release,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// For how many calls an injection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// Every call from now on.
    Always,
    /// The next `n` calls; after them the method reaches the real tracker again.
    First(usize),
}

/// Makes the error an injected failure returns (a [`TrackerError`] is not `Clone`).
type MakeError = Arc<dyn Fn() -> TrackerError + Send + Sync>;

/// What an injected call does instead of (or before) reaching the real tracker.
#[derive(Clone)]
enum Fault {
    Fail(MakeError),
    Hang,
    Delay(Duration),
    Held(Duration),
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fail(make) => write!(f, "Fail({})", make()),
            Self::Hang => f.write_str("Hang"),
            Self::Delay(by) => write!(f, "Delay({by:?})"),
            Self::Held(retry_after) => write!(f, "Held({retry_after:?})"),
        }
    }
}

#[derive(Debug)]
struct Injection {
    fault: Fault,
    /// Calls it still applies to; `None`: every call.
    left: Option<usize>,
}

/// A [`Tracker`] over a real one, with failures, hangs, delays or held locks injected per
/// method, and every call counted. Shared (`Arc`) so that a test keeps a handle on what it
/// hands to a service.
#[derive(Debug)]
pub struct FakeTracker {
    inner: Arc<dyn Tracker>,
    injections: Mutex<[Option<Injection>; Method::ALL.len()]>,
    calls: [AtomicUsize; Method::ALL.len()],
}

impl FakeTracker {
    /// A fake over `inner`, with nothing injected yet.
    pub fn over(inner: Arc<dyn Tracker>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            injections: Mutex::new(Default::default()),
            calls: Default::default(),
        })
    }

    /// A fake over a fresh SQLite tracker in memory.
    pub async fn in_memory() -> Arc<Self> {
        let sqlite = SqliteTracker::in_memory()
            .await
            .expect("an in-memory SQLite tracker");
        Self::over(Arc::new(sqlite))
    }

    /// The real tracker behind the fake, to reach it without injections or counts.
    pub fn inner(&self) -> &Arc<dyn Tracker> {
        &self.inner
    }

    /// Calls of `method` fail with `error()`. Replaces what `method` had injected.
    pub fn fail(
        &self,
        method: Method,
        times: Times,
        error: impl Fn() -> TrackerError + Send + Sync + 'static,
    ) {
        self.inject(method, times, Fault::Fail(Arc::new(error)));
    }

    /// Calls of every method fail with `error()`: a store that is down.
    pub fn fail_all(&self, error: impl Fn() -> TrackerError + Send + Sync + 'static) {
        let error: MakeError = Arc::new(error);
        for method in Method::ALL {
            self.inject(method, Times::Always, Fault::Fail(Arc::clone(&error)));
        }
    }

    /// Calls of `method` never answer.
    pub fn hang(&self, method: Method, times: Times) {
        self.inject(method, times, Fault::Hang);
    }

    /// Calls of every method never answer: a store that does not respond.
    pub fn hang_all(&self) {
        for method in Method::ALL {
            self.inject(method, Times::Always, Fault::Hang);
        }
    }

    /// Calls of `method` wait `by`, then reach the real tracker.
    pub fn delay(&self, method: Method, times: Times, by: Duration) {
        self.inject(method, times, Fault::Delay(by));
    }

    /// `acquire_lock` answers that someone holds the lock for `retry_after` more, without
    /// asking the real tracker.
    pub fn hold_locks(&self, times: Times, retry_after: Duration) {
        self.inject(Method::AcquireLock, times, Fault::Held(retry_after));
    }

    /// `method` reaches the real tracker again on every call.
    pub fn clear(&self, method: Method) {
        self.injections.lock().expect("the injections")[method.index()] = None;
    }

    /// How many times `method` was called, injected calls included.
    pub fn calls(&self, method: Method) -> usize {
        self.calls[method.index()].load(Ordering::SeqCst)
    }

    /// How many calls of `method` a [`Times::First`] injection still applies to (`Some(0)`
    /// once all were used); `None` when `method` has no counted injection.
    pub fn left(&self, method: Method) -> Option<usize> {
        self.injections.lock().expect("the injections")[method.index()]
            .as_ref()
            .and_then(|injection| injection.left)
    }

    fn inject(&self, method: Method, times: Times, fault: Fault) {
        let left = match times {
            Times::Always => None,
            Times::First(n) => Some(n),
        };
        self.injections.lock().expect("the injections")[method.index()] =
            Some(Injection { fault, left });
    }

    /// Counts a call of `method` and plays its injection, if any applies: `Err` is an injected
    /// failure, `Ok(Some(retry_after))` an injected held lock, `Ok(None)` "go on to the real
    /// tracker".
    async fn enter(&self, method: Method) -> Result<Option<Duration>, TrackerError> {
        self.calls[method.index()].fetch_add(1, Ordering::SeqCst);
        let fault = {
            let mut injections = self.injections.lock().expect("the injections");
            match &mut injections[method.index()] {
                Some(Injection { left: Some(0), .. }) | None => None,
                Some(Injection { fault, left }) => {
                    if let Some(n) = left {
                        *n -= 1;
                    }
                    Some(fault.clone())
                }
            }
        };
        match fault {
            None => Ok(None),
            Some(Fault::Fail(error)) => Err(error()),
            Some(Fault::Hang) => std::future::pending().await,
            Some(Fault::Delay(by)) => {
                tokio::time::sleep(by).await;
                Ok(None)
            }
            Some(Fault::Held(retry_after)) => Ok(Some(retry_after)),
        }
    }

    /// [`FakeTracker::enter`] for a method that has no held-lock answer.
    async fn pass(&self, method: Method) -> Result<(), TrackerError> {
        self.enter(method).await.map(|_| ())
    }
}

#[async_trait]
impl Tracker for FakeTracker {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        self.pass(Method::Insert).await?;
        self.inner.insert(request).await
    }

    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        self.pass(Method::Complete).await?;
        self.inner.complete(message_id, outcome, completed_at).await
    }

    async fn get(
        &self,
        id: BalanceRequestId,
        caller: &CallerId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.pass(Method::Get).await?;
        self.inner.get(id, caller, now).await
    }

    async fn get_by_message_id(
        &self,
        message_id: MessageId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.pass(Method::GetByMessageId).await?;
        self.inner.get_by_message_id(message_id, now).await
    }

    async fn wait_for_completion(
        &self,
        id: BalanceRequestId,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.pass(Method::WaitForCompletion).await?;
        self.inner.wait_for_completion(id, now, timeout).await
    }

    async fn lock(
        &self,
        key: &str,
        owner: BalanceRequestId,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        if let Some(retry_after) = self.enter(Method::AcquireLock).await? {
            return Ok(LockOutcome::Held { retry_after });
        }
        self.inner.lock(key, owner, now, ttl).await
    }

    async fn release(
        &self,
        key: &str,
        owner: BalanceRequestId,
        request: Option<BalanceRequestId>,
    ) -> Result<(), TrackerError> {
        self.pass(Method::Release).await?;
        self.inner.release(key, owner, request).await
    }

    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        if let Some(retry_after) = self.enter(Method::AcquireLock).await? {
            return Ok(LockOutcome::Held { retry_after });
        }
        self.inner.acquire_lock(key, now, ttl).await
    }

    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError> {
        self.pass(Method::Expire).await?;
        self.inner.expire(now, batch).await
    }

    async fn ping(&self) -> Result<(), TrackerError> {
        self.pass(Method::Ping).await?;
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn injections_apply_for_their_calls_and_every_call_is_counted() {
        let tracker = FakeTracker::in_memory().await;
        tracker.fail(Method::Ping, Times::First(2), || {
            TrackerError::Unavailable("injected".to_owned())
        });
        assert_eq!(tracker.left(Method::Ping), Some(2));
        for _ in 0..2 {
            assert!(matches!(
                tracker.ping().await,
                Err(TrackerError::Unavailable(_))
            ));
        }
        tracker.ping().await.expect("the real tracker answers");
        assert_eq!(tracker.calls(Method::Ping), 3);
        assert_eq!(tracker.left(Method::Ping), Some(0));

        let now = OffsetDateTime::now_utc();
        tracker.hold_locks(Times::Always, Duration::from_secs(42));
        assert_eq!(
            tracker
                .acquire_lock("k", now, Duration::from_secs(1))
                .await
                .unwrap(),
            LockOutcome::Held {
                retry_after: Duration::from_secs(42)
            }
        );
        assert_eq!(tracker.left(Method::AcquireLock), None);
        tracker.clear(Method::AcquireLock);
        assert_eq!(
            tracker
                .acquire_lock("k", now, Duration::from_secs(1))
                .await
                .unwrap(),
            LockOutcome::Acquired
        );

        tracker.hang(Method::Expire, Times::First(1));
        let hung = tokio::time::timeout(Duration::from_millis(50), tracker.expire(now, 1)).await;
        assert!(hung.is_err(), "the first expiry hangs");
        assert_eq!(tracker.expire(now, 1).await.unwrap(), 0);
    }
}
