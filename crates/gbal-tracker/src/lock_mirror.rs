//! [`LockMirror`]: one replica's memory of the request locks it has seen held, in front of the
//! tracker.
//!
//! The once-a-minute rule holds across replicas because the tracker's cluster-wide lock on
//! (caller, GRN) refuses a second check with the time left on it. A caller hammering one
//! replica would make each of those refusals a database round trip; the mirror answers them
//! from memory instead. It learns only from the lock's own answers (taken at `now`: held until
//! `now + ttl`; refused: held until `now + retry_after`), so it never refuses longer than the
//! store would, and it is never a limiter of its own: a refused attempt extends nothing, here
//! or in the store. A release (a check whose query never reached GMS) forgets the key, so the
//! next attempt asks the store. Everything else is forwarded unchanged, the store's own
//! watches and one-statement operations included.
//!
//! It measures on the replica's clock (the `now` the service passes) the durations the store
//! reports: the TTL of a lock taken, the time left on a held one. A store that measures lock
//! windows by a clock of its own (PostgreSQL's `now()`) may disagree with the replica's clock
//! by any amount; the durations still agree, and since the replica's `now` is read before the
//! store's answer, the mirror frees a lock no later than the store does.
//!
//! Its memory is bounded by the locks taken within one lock TTL: [`LockMirror::forget_expired`]
//! (run periodically) drops the locks that have freed up and gives back the room a burst took.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use gbal_core::{
    BalanceRequest, BalanceRequestId, CallerId, Completion, CompletionWatch, LockOutcome,
    MessageId, NewBalanceRequest, Outcome, ReplyMatch, Tracker, TrackerError,
};
use time::OffsetDateTime;

/// A [`Tracker`] that answers a lock it knows to be held without asking the store.
pub struct LockMirror {
    inner: Arc<dyn Tracker>,
    /// When each lock known to be held frees up.
    held: Mutex<HashMap<String, OffsetDateTime>>,
    held_here: AtomicU64,
    held_by_store: AtomicU64,
}

/// How many lock attempts were refused, and by whom, since the mirror was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorCounts {
    /// Answered `Held` from memory, without the store.
    pub held_here: u64,
    /// Answered `Held` by the store.
    pub held_by_store: u64,
}

impl LockMirror {
    /// A mirror in front of `inner`, knowing of no lock yet.
    pub fn new(inner: Arc<dyn Tracker>) -> Self {
        Self {
            inner,
            held: Mutex::new(HashMap::new()),
            held_here: AtomicU64::new(0),
            held_by_store: AtomicU64::new(0),
        }
    }

    fn locks(&self) -> std::sync::MutexGuard<'_, HashMap<String, OffsetDateTime>> {
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The time left at `now` on `key`, if it is known to be held.
    fn held_for(&self, key: &str, now: OffsetDateTime) -> Option<Duration> {
        let free_at = *self.locks().get(key)?;
        Duration::try_from(free_at - now)
            .ok()
            .filter(|left| !left.is_zero())
    }

    /// Remembers what the store answered at `now` to an attempt to take `key` for `ttl`.
    fn learn(&self, key: &str, now: OffsetDateTime, ttl: Duration, outcome: LockOutcome) {
        let free_at = match outcome {
            LockOutcome::Acquired => now + ttl,
            LockOutcome::Held { retry_after } => {
                self.held_by_store.fetch_add(1, Ordering::Relaxed);
                now + retry_after
            }
        };
        let mut locks = self.locks();
        let slot = locks.entry(key.to_owned()).or_insert(free_at);
        *slot = (*slot).max(free_at);
    }

    /// What the store answered, remembered; `Err(DuplicateId)` from a lock-and-insert means
    /// the lock was taken (only the request's id was not).
    fn learn_from(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
        answer: &Result<LockOutcome, TrackerError>,
    ) {
        match answer {
            Ok(outcome) => self.learn(key, now, ttl, *outcome),
            Err(TrackerError::DuplicateId) => self.learn(key, now, ttl, LockOutcome::Acquired),
            Err(_) => {}
        }
    }

    /// `Held` from memory, when `key` is known to be held at `now`.
    fn answer_from_memory(&self, key: &str, now: OffsetDateTime) -> Option<LockOutcome> {
        let retry_after = self.held_for(key, now)?;
        self.held_here.fetch_add(1, Ordering::Relaxed);
        Some(LockOutcome::Held { retry_after })
    }

    /// Forgets what it knows of `key` (a lock the store released: the next attempt asks it).
    pub fn forget(&self, key: &str) {
        self.locks().remove(key);
    }

    /// Forgets the locks that have freed up by `now` and, after a burst, gives back the room
    /// the table no longer needs (keeping some to grow into). Returns how many locks it still
    /// remembers.
    pub fn forget_expired(&self, now: OffsetDateTime) -> usize {
        let mut locks = self.locks();
        locks.retain(|_, free_at| *free_at > now);
        let live = locks.len();
        if locks.capacity() > 4 * live.max(1024) {
            locks.shrink_to(2 * live);
        }
        live
    }

    /// The refusals so far, for metrics.
    pub fn counts(&self) -> MirrorCounts {
        MirrorCounts {
            held_here: self.held_here.load(Ordering::Relaxed),
            held_by_store: self.held_by_store.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for LockMirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockMirror")
            .field("inner", &self.inner)
            .field("held", &self.locks().len())
            .finish()
    }
}

#[async_trait]
impl Tracker for LockMirror {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        self.inner.insert(request).await
    }

    async fn insert_completed(
        &self,
        request: &NewBalanceRequest,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<(), TrackerError> {
        self.inner
            .insert_completed(request, outcome, completed_at)
            .await
    }

    async fn lock_and_insert(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
        request: &NewBalanceRequest,
    ) -> Result<LockOutcome, TrackerError> {
        if let Some(held) = self.answer_from_memory(key, now) {
            return Ok(held);
        }
        let answer = self.inner.lock_and_insert(key, now, ttl, request).await;
        self.learn_from(key, now, ttl, &answer);
        answer
    }

    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        self.inner.complete(message_id, outcome, completed_at).await
    }

    async fn complete_matching(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        expected: &ReplyMatch,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        self.inner
            .complete_matching(message_id, outcome, expected, completed_at)
            .await
    }

    async fn get(
        &self,
        id: BalanceRequestId,
        caller: &CallerId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.inner.get(id, caller, now).await
    }

    async fn get_by_message_id(
        &self,
        message_id: MessageId,
        now: OffsetDateTime,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.inner.get_by_message_id(message_id, now).await
    }

    async fn wait_for_completion(
        &self,
        id: BalanceRequestId,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.inner.wait_for_completion(id, now, timeout).await
    }

    fn watch<'a>(
        &'a self,
        id: BalanceRequestId,
        now: OffsetDateTime,
    ) -> Box<dyn CompletionWatch + 'a> {
        self.inner.watch(id, now)
    }

    async fn lock(
        &self,
        key: &str,
        owner: BalanceRequestId,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        if let Some(held) = self.answer_from_memory(key, now) {
            return Ok(held);
        }
        let answer = self.inner.lock(key, owner, now, ttl).await;
        self.learn_from(key, now, ttl, &answer);
        answer
    }

    /// Releases in the store and forgets the key here, whatever the store answered: a lock
    /// the store may have freed is never refused from memory.
    async fn release(
        &self,
        key: &str,
        owner: BalanceRequestId,
        request: Option<BalanceRequestId>,
    ) -> Result<(), TrackerError> {
        self.forget(key);
        self.inner.release(key, owner, request).await
    }

    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        if let Some(held) = self.answer_from_memory(key, now) {
            return Ok(held);
        }
        let answer = self.inner.acquire_lock(key, now, ttl).await;
        self.learn_from(key, now, ttl, &answer);
        answer
    }

    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError> {
        self.inner.expire(now, batch).await
    }

    async fn ping(&self) -> Result<(), TrackerError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use time::macros::datetime;

    const TTL: Duration = Duration::from_secs(60);
    const T0: OffsetDateTime = datetime!(2024-05-01 12:00 UTC);

    /// What the scripted store answers to a lock attempt.
    #[derive(Debug, Clone, Copy)]
    enum Script {
        Answer(LockOutcome),
        Unavailable,
        /// The lock is taken, the request's id is not free.
        DuplicateId,
    }

    /// A store whose lock answers as scripted, counting the attempts that reach it.
    #[derive(Debug)]
    struct Store {
        script: Mutex<Script>,
        asked: AtomicUsize,
    }

    impl Store {
        fn answering(script: Script) -> Arc<Self> {
            Arc::new(Self {
                script: Mutex::new(script),
                asked: AtomicUsize::new(0),
            })
        }

        fn then(&self, script: Script) {
            *self.script.lock().unwrap() = script;
        }

        fn answer(&self) -> Result<LockOutcome, TrackerError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            match *self.script.lock().unwrap() {
                Script::Answer(outcome) => Ok(outcome),
                Script::Unavailable => Err(TrackerError::Unavailable("down".to_owned())),
                Script::DuplicateId => Err(TrackerError::DuplicateId),
            }
        }

        fn asked(&self) -> usize {
            self.asked.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Tracker for Store {
        async fn insert(&self, _: &NewBalanceRequest) -> Result<(), TrackerError> {
            Ok(())
        }
        async fn lock_and_insert(
            &self,
            _: &str,
            _: OffsetDateTime,
            _: Duration,
            _: &NewBalanceRequest,
        ) -> Result<LockOutcome, TrackerError> {
            self.answer()
        }
        async fn complete(
            &self,
            _: MessageId,
            _: &Outcome,
            _: OffsetDateTime,
        ) -> Result<Completion, TrackerError> {
            Ok(Completion::NotFound)
        }
        async fn get(
            &self,
            _: BalanceRequestId,
            _: &CallerId,
            _: OffsetDateTime,
        ) -> Result<Option<BalanceRequest>, TrackerError> {
            Ok(None)
        }
        async fn get_by_message_id(
            &self,
            _: MessageId,
            _: OffsetDateTime,
        ) -> Result<Option<BalanceRequest>, TrackerError> {
            Ok(None)
        }
        async fn wait_for_completion(
            &self,
            _: BalanceRequestId,
            _: OffsetDateTime,
            _: Duration,
        ) -> Result<Option<BalanceRequest>, TrackerError> {
            Ok(None)
        }
        async fn lock(
            &self,
            _: &str,
            _: BalanceRequestId,
            _: OffsetDateTime,
            _: Duration,
        ) -> Result<LockOutcome, TrackerError> {
            self.answer()
        }
        async fn release(
            &self,
            _: &str,
            _: BalanceRequestId,
            _: Option<BalanceRequestId>,
        ) -> Result<(), TrackerError> {
            Ok(())
        }
        async fn expire(&self, _: OffsetDateTime, _: u32) -> Result<u64, TrackerError> {
            Ok(0)
        }
        async fn ping(&self) -> Result<(), TrackerError> {
            Ok(())
        }
    }

    const TAKEN: Script = Script::Answer(LockOutcome::Acquired);

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn held(retry_after: Duration) -> LockOutcome {
        LockOutcome::Held { retry_after }
    }

    #[tokio::test]
    async fn a_lock_taken_here_is_refused_from_memory_until_its_ttl_ends() {
        let store = Store::answering(TAKEN);
        let mirror = LockMirror::new(store.clone());
        let attempt = |key: &'static str, at| mirror.acquire_lock(key, at, TTL);
        assert_eq!(attempt("a", T0).await.unwrap(), LockOutcome::Acquired);
        assert_eq!(attempt("a", T0 + secs(15)).await.unwrap(), held(secs(45)));
        assert_eq!(store.asked(), 1, "the refusal needed no round trip");
        // Another key, or the same one once the TTL ran out, asks the store.
        attempt("b", T0 + secs(15)).await.unwrap();
        attempt("a", T0 + secs(60)).await.unwrap();
        assert_eq!(store.asked(), 3);
        let counts = MirrorCounts {
            held_here: 1,
            held_by_store: 0,
        };
        assert_eq!(mirror.counts(), counts);
    }

    #[tokio::test]
    async fn a_refusal_by_the_store_is_mirrored_without_extending_it() {
        let store = Store::answering(Script::Answer(held(secs(20))));
        let mirror = LockMirror::new(store.clone());
        mirror.acquire_lock("a", T0, TTL).await.unwrap();
        let again = mirror.acquire_lock("a", T0 + secs(5), TTL).await.unwrap();
        assert_eq!(again, held(secs(15)));
        assert_eq!(store.asked(), 1);
        store.then(TAKEN);
        let freed = mirror.acquire_lock("a", T0 + secs(20), TTL).await.unwrap();
        assert_eq!(
            freed,
            LockOutcome::Acquired,
            "free when the store's lock is"
        );
        let counts = MirrorCounts {
            held_here: 1,
            held_by_store: 1,
        };
        assert_eq!(mirror.counts(), counts);
    }

    #[tokio::test]
    async fn lock_and_insert_learns_like_a_lock_and_a_taken_id_still_took_the_lock() {
        let store = Store::answering(TAKEN);
        let mirror = LockMirror::new(store.clone());
        let request = sample_request();
        mirror
            .lock_and_insert("a", T0, TTL, &request)
            .await
            .unwrap();
        let again = mirror.lock_and_insert("a", T0, TTL, &request).await;
        assert_eq!(again.unwrap(), held(TTL));
        assert_eq!(store.asked(), 1);

        store.then(Script::DuplicateId);
        let taken = mirror.lock_and_insert("b", T0, TTL, &request).await;
        assert!(matches!(taken, Err(TrackerError::DuplicateId)));
        let again = mirror.acquire_lock("b", T0, TTL).await.unwrap();
        assert_eq!(again, held(TTL));
        assert_eq!(store.asked(), 2);
    }

    #[tokio::test]
    async fn an_unavailable_store_teaches_nothing_and_a_forgotten_key_asks_again() {
        let store = Store::answering(Script::Unavailable);
        let mirror = LockMirror::new(store.clone());
        assert!(mirror.acquire_lock("a", T0, TTL).await.is_err());
        store.then(TAKEN);
        let taken = mirror.acquire_lock("a", T0, TTL).await.unwrap();
        assert_eq!(taken, LockOutcome::Acquired);
        mirror.forget("a");
        let again = mirror.acquire_lock("a", T0, TTL).await.unwrap();
        assert_eq!(again, LockOutcome::Acquired);
        assert_eq!(store.asked(), 3);
    }

    #[tokio::test]
    async fn after_a_burst_the_mirror_gives_its_room_back() {
        let store = Store::answering(Script::Answer(held(Duration::from_millis(1))));
        let mirror = LockMirror::new(store);
        for n in 0..20_000 {
            let key = format!("burst-{n}");
            mirror.acquire_lock(&key, T0, TTL).await.unwrap();
        }
        let capacity = |m: &LockMirror| m.locks().capacity();
        assert!(capacity(&mirror) >= 20_000);
        assert_eq!(mirror.forget_expired(T0), 20_000, "all still held");
        assert_eq!(mirror.forget_expired(T0 + secs(1)), 0);
        assert!(capacity(&mirror) < 20_000, "{}", capacity(&mirror));
    }

    fn sample_request() -> NewBalanceRequest {
        use gbal_core::{ApiVersion, Grn, UniqueReference};
        NewBalanceRequest {
            id: BalanceRequestId::new(),
            message_ref: UniqueReference::random(),
            caller: CallerId::parse("mirror-test").unwrap(),
            api_version: ApiVersion::V2,
            grn: Grn::parse_v2("22GB0000010000313").unwrap(),
            tin: None,
            requested_at: T0,
            expires_at: T0 + Duration::from_secs(3600),
        }
    }
}
