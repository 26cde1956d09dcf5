//! The expiry job keeps going through store errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gbal_core::{
    BalanceRequest, BalanceRequestId, CallerId, Completion, LockOutcome, MessageId,
    NewBalanceRequest, Outcome, SystemClock, Tracker, TrackerError,
};
use gbal_tracker::{SqliteTracker, run_expiry, run_expiry_counting};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::fixture::{now, request_expiring};

/// A tracker whose first `failures` expiry calls fail.
#[derive(Debug)]
struct Flaky {
    inner: SqliteTracker,
    failures: AtomicU32,
}

#[async_trait]
impl Tracker for Flaky {
    async fn insert(&self, request: &NewBalanceRequest) -> Result<(), TrackerError> {
        self.inner.insert(request).await
    }
    async fn complete(
        &self,
        message_id: MessageId,
        outcome: &Outcome,
        completed_at: OffsetDateTime,
    ) -> Result<Completion, TrackerError> {
        self.inner.complete(message_id, outcome, completed_at).await
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
        timeout: Duration,
    ) -> Result<Option<BalanceRequest>, TrackerError> {
        self.inner.wait_for_completion(id, timeout).await
    }
    async fn acquire_lock(
        &self,
        key: &str,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<LockOutcome, TrackerError> {
        self.inner.acquire_lock(key, now, ttl).await
    }
    async fn expire(&self, now: OffsetDateTime, batch: u32) -> Result<u64, TrackerError> {
        let failing = self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(TrackerError::Unavailable("injected".to_owned()));
        }
        self.inner.expire(now, batch).await
    }
    async fn ping(&self) -> Result<(), TrackerError> {
        self.inner.ping().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_job_logs_errors_and_goes_on() {
    let inner = SqliteTracker::in_memory().await.unwrap();
    let hour_ago = now() - time::Duration::HOUR;
    for _ in 0..7 {
        inner
            .insert(&request_expiring(
                hour_ago,
                hour_ago + time::Duration::MINUTE,
            ))
            .await
            .unwrap();
    }
    let tracker = Arc::new(Flaky {
        inner,
        failures: AtomicU32::new(3),
    });
    let cancel = CancellationToken::new();
    let deleted = Arc::new(AtomicU64::new(0));
    let job = {
        let (tracker, cancel, deleted) = (tracker.clone(), cancel.clone(), deleted.clone());
        tokio::spawn(async move {
            run_expiry_counting(
                tracker,
                Arc::new(SystemClock),
                Duration::from_millis(20),
                3,
                cancel,
                &deleted,
            )
            .await
        })
    };
    let started = Instant::now();
    while deleted.load(Ordering::Relaxed) < 7 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the job recovers"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(tracker.failures.load(Ordering::SeqCst), 0);
    cancel.cancel();
    assert_eq!(job.await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_expiry_job_returns_its_total() {
    let tracker = SqliteTracker::in_memory().await.unwrap();
    let hour_ago = now() - time::Duration::HOUR;
    tracker
        .insert(&request_expiring(
            hour_ago,
            hour_ago + time::Duration::MINUTE,
        ))
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let job = tokio::spawn(run_expiry(
        Arc::new(tracker),
        Arc::new(SystemClock),
        Duration::from_secs(3600),
        100,
        cancel.clone(),
    ));
    // The first sweep runs at once; the next would be an hour later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel.cancel();
    let total = tokio::time::timeout(Duration::from_secs(5), job)
        .await
        .expect("stops when cancelled")
        .unwrap();
    assert_eq!(total, 1);
}
