//! PostgreSQL across replicas: a completion recorded through one tracker wakes a waiter on
//! another through LISTEN/NOTIFY, and a lost notification never loses an answer.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gbal_core::{BalanceRequest, Completion, Tracker};
use gbal_tracker::{LISTENER_APPLICATION_NAME, PgTracker};
use sqlx::PgPool;

use crate::fixture::{balance, now, request_at};
use crate::store::with_pg;

/// Starts `tracker` waiting for `id`; resolves to the answer and when it came.
fn spawn_waiter(
    tracker: &PgTracker,
    id: gbal_core::BalanceRequestId,
    timeout: Duration,
) -> tokio::task::JoinHandle<(Option<BalanceRequest>, Instant)> {
    let tracker = tracker.clone();
    tokio::spawn(async move {
        let answer = tracker
            .wait_for_completion(id, now(), timeout)
            .await
            .expect("wait");
        (answer, Instant::now())
    })
}

/// Lets a freshly spawned waiter register and make its first read.
async fn until_waiting(tracker: &PgTracker, n: usize) {
    let started = Instant::now();
    while tracker.waiting() < n {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the waiter registers"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

async fn listener_pids(pool: &PgPool, database: &str) -> HashSet<i32> {
    sqlx::query_scalar::<_, i32>(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(database)
    .bind(LISTENER_APPLICATION_NAME)
    .fetch_all(pool)
    .await
    .expect("read pg_stat_activity")
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_on_one_replica_wakes_a_waiter_on_another_within_100ms() {
    with_pg(|db| async move {
        let a = db.tracker().await;
        let b = db.tracker().await;
        // Opening B's first connection is not part of the wake-up path.
        b.ping().await.unwrap();
        let mut latencies = Vec::new();
        for _ in 0..5 {
            let at = now();
            let new = request_at(at);
            a.insert(&new).await.unwrap();
            // The timeout is far away: only the notification can end the wait early.
            let waiter = spawn_waiter(&a, new.id, Duration::from_secs(20));
            until_waiting(&a, 1).await;
            let sent = Instant::now();
            let completion = b.complete(new.message_id(), &balance("99.99"), at).await;
            assert!(matches!(completion, Ok(Completion::Stored(_))));
            let (answer, woken) = waiter.await.unwrap();
            assert_eq!(answer.and_then(|r| r.outcome), Some(balance("99.99")));
            latencies.push(woken.duration_since(sent));
        }
        eprintln!("replica A woken after {latencies:?} (from the start of B's complete)");
        let slowest = latencies.iter().max().copied().unwrap_or_default();
        assert!(slowest < Duration::from_millis(100), "{latencies:?}");
        assert_eq!(a.waiting(), 0, "waiter entries are cleaned up");
        assert_eq!(b.waiting(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_without_notification_is_found_by_the_final_read() {
    with_pg(|db| async move {
        let a = db.tracker().await;
        let raw = db.pool().await;
        let at = now();
        let new = request_at(at);
        a.insert(&new).await.unwrap();
        let started = Instant::now();
        let waiter = spawn_waiter(&a, new.id, Duration::from_millis(1500));
        until_waiting(&a, 1).await;
        // Well after the waiter's first read.
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Completed behind the tracker's back: no NOTIFY, so no wake-up.
        let updated = sqlx::query(
            "UPDATE balance_requests SET status = 'SUCCESS', balance = 7.50, currency = 'GBP', \
             completed_at = $2 WHERE id = $1",
        )
        .bind(new.id.as_uuid())
        .bind(at)
        .execute(&raw)
        .await
        .unwrap();
        assert_eq!(updated.rows_affected(), 1);
        let (answer, woken) = waiter.await.unwrap();
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("7.5")));
        let waited = woken.duration_since(started);
        assert!(
            waited >= Duration::from_millis(1500),
            "answered by the final read: {waited:?}"
        );
        assert_eq!(a.waiting(), 0);
        raw.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_reconnects_and_no_answer_is_lost() {
    with_pg(|db| async move {
        let a = db.tracker().await;
        let b = db.tracker().await;
        let raw = db.pool().await;
        let old = listener_pids(&raw, &db.name).await;
        assert_eq!(old.len(), 2, "one listener per tracker");

        let at = now();
        let new = request_at(at);
        a.insert(&new).await.unwrap();
        let started = Instant::now();
        let waiter = spawn_waiter(&a, new.id, Duration::from_secs(3));
        until_waiting(&a, 1).await;
        // Kill the listeners, then complete at once: the notification may well be lost.
        for pid in &old {
            sqlx::query("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .execute(&raw)
                .await
                .unwrap();
        }
        assert!(matches!(
            b.complete(new.message_id(), &balance("1"), at).await,
            Ok(Completion::Stored(_))
        ));
        let (answer, woken) = waiter.await.unwrap();
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("1")));
        eprintln!("answered after {:?}", woken.duration_since(started));

        // Both listeners come back by themselves, on new connections...
        let started = Instant::now();
        loop {
            let pids = listener_pids(&raw, &db.name).await;
            if pids.len() == 2 && pids.is_disjoint(&old) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "listeners reconnect"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        a.until_listening().await;
        // ...and wake waiters again, long before their timeout.
        let new = request_at(at);
        a.insert(&new).await.unwrap();
        let waiter = spawn_waiter(&a, new.id, Duration::from_secs(20));
        until_waiting(&a, 1).await;
        let sent = Instant::now();
        b.complete(new.message_id(), &balance("2"), at)
            .await
            .unwrap();
        let (answer, woken) = waiter.await.unwrap();
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("2")));
        let latency = woken.duration_since(sent);
        assert!(latency < Duration::from_secs(2), "woken after {latency:?}");
        assert_eq!(a.waiting(), 0);
        raw.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_on_one_replica_is_ended_by_a_completion_on_another() {
    with_pg(|db| async move {
        let a = db.tracker().await;
        let b = db.tracker().await;
        a.until_listening().await;
        b.ping().await.unwrap();
        let at = now();
        let new = request_at(at);
        a.insert(&new).await.unwrap();
        // Started before anything can complete it, awaited later, as a check does.
        let watch = a.watch(new.id, at);
        assert_eq!(a.waiting(), 1);
        let completing = {
            let b = b.clone();
            let message_id = new.message_id();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let sent = Instant::now();
                let done = b.complete(message_id, &balance("12.5"), at).await;
                (done, sent)
            })
        };
        // The timeout is far away: only the notification can end the wait early.
        let answer = watch.wait(Duration::from_secs(20)).await.unwrap();
        let woken = Instant::now();
        let (done, sent) = completing.await.unwrap();
        assert!(matches!(done, Ok(Completion::Stored(_))));
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("12.5")));
        let latency = woken.duration_since(sent);
        assert!(latency < Duration::from_secs(2), "woken after {latency:?}");
        assert_eq!(a.waiting(), 0, "the watch's entry went with it");
    })
    .await;
}
