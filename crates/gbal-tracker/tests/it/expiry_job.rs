//! The expiry job keeps going through store errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gbal_core::{SystemClock, Tracker, TrackerError};
use gbal_testkit::{FakeTracker, Method, Times};
use gbal_tracker::{SqliteTracker, run_expiry, run_expiry_counting};
use tokio_util::sync::CancellationToken;

use crate::fixture::{now, request_expiring};

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
    // The first three expiry calls fail.
    let tracker = FakeTracker::over(Arc::new(inner));
    tracker.fail(Method::Expire, Times::First(3), || {
        TrackerError::Unavailable("injected".to_owned())
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
    gbal_testkit::eventually(Duration::from_secs(30), "the job recovers", || {
        let n = deleted.load(Ordering::Relaxed);
        async move { n >= 7 }
    })
    .await;
    assert_eq!(tracker.left(Method::Expire), Some(0));
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
    let tracker = FakeTracker::over(Arc::new(tracker));
    let cancel = CancellationToken::new();
    let job = tokio::spawn(run_expiry(
        tracker.clone(),
        Arc::new(SystemClock),
        Duration::from_secs(3600),
        100,
        cancel.clone(),
    ));
    // The first sweep runs at once (one call: its batch comes back short); the next would be an
    // hour later. A cancel during the call lets it finish.
    gbal_testkit::eventually(Duration::from_secs(30), "the first sweep", || {
        let calls = tracker.calls(Method::Expire);
        async move { calls >= 1 }
    })
    .await;
    cancel.cancel();
    let total = tokio::time::timeout(Duration::from_secs(5), job)
        .await
        .expect("stops when cancelled")
        .unwrap();
    assert_eq!(total, 1);
}
