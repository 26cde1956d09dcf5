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

/// Until `n` waiters are registered with `tracker`: from then on a completion wakes them.
async fn until_waiting(tracker: &PgTracker, n: usize) {
    gbal_testkit::eventually(Duration::from_secs(30), "the waiter registers", || async {
        tracker.waiting() >= n
    })
    .await;
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
async fn a_completion_on_one_replica_wakes_a_waiter_on_another_before_its_timeout() {
    with_pg(|db| async move {
        let a = db.tracker().await;
        let b = db.tracker().await;
        // Opening B's first connection is not part of the wake-up path.
        b.ping().await.unwrap();
        // The timeout is far away: only the notification can end the wait before it (how soon
        // is a benchmark's figure: `cargo bench -p gbal-tracker --bench wake_up`).
        let timeout = Duration::from_secs(60);
        for _ in 0..5 {
            let at = now();
            let new = request_at(at);
            a.insert(&new).await.unwrap();
            let waiter = spawn_waiter(&a, new.id, timeout);
            until_waiting(&a, 1).await;
            let sent = Instant::now();
            let completion = b.complete(new.message_id(), &balance("99.99"), at).await;
            assert!(matches!(completion, Ok(Completion::Stored(_))));
            let (answer, woken) = waiter.await.unwrap();
            assert_eq!(answer.and_then(|r| r.outcome), Some(balance("99.99")));
            assert!(
                woken.duration_since(sent) < timeout,
                "woken by the notification, not at the timeout"
            );
        }
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
        // Watching from before the completion, as a check does: no read until the wait ends.
        let started = Instant::now();
        let watch = a.watch(new.id, at);
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
        let answer = watch.wait(Duration::from_millis(1500)).await.unwrap();
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("7.5")));
        // Nothing woke it: the answer came from the read when the wait ran out (a lower bound
        // the wait's own timer guarantees).
        let waited = started.elapsed();
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

        // Both listeners come back by themselves, on new connections (backoff up to 5 s)...
        gbal_testkit::eventually(Duration::from_secs(30), "listeners reconnect", || async {
            let pids = listener_pids(&raw, &db.name).await;
            pids.len() == 2 && pids.is_disjoint(&old)
        })
        .await;
        a.until_listening().await;
        // ...and wake waiters again: before their timeout, which only the notification can do.
        let timeout = Duration::from_secs(60);
        let new = request_at(at);
        a.insert(&new).await.unwrap();
        let waiter = spawn_waiter(&a, new.id, timeout);
        until_waiting(&a, 1).await;
        let sent = Instant::now();
        b.complete(new.message_id(), &balance("2"), at)
            .await
            .unwrap();
        let (answer, woken) = waiter.await.unwrap();
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("2")));
        let latency = woken.duration_since(sent);
        assert!(latency < timeout, "woken at the timeout: {latency:?}");
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
                let sent = Instant::now();
                let done = b.complete(message_id, &balance("12.5"), at).await;
                (done, sent)
            })
        };
        // The timeout is far away: only the notification can end the wait before it.
        let timeout = Duration::from_secs(60);
        let answer = watch.wait(timeout).await.unwrap();
        let woken = Instant::now();
        let (done, sent) = completing.await.unwrap();
        assert!(matches!(done, Ok(Completion::Stored(_))));
        assert_eq!(answer.and_then(|r| r.outcome), Some(balance("12.5")));
        let latency = woken.duration_since(sent);
        assert!(latency < timeout, "woken at the timeout: {latency:?}");
        assert_eq!(a.waiting(), 0, "the watch's entry went with it");
    })
    .await;
}

/// What operators and other programs can rely on: each completion is announced on the channel
/// `gbal_request_completed` with the request's id, once the completion has committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_is_announced_on_gbal_request_completed_with_its_id() {
    with_pg(|db| async move {
        let tracker = db.tracker().await;
        let mut outsider = sqlx::postgres::PgListener::connect(&db.url)
            .await
            .expect("connect a listener");
        outsider
            .listen("gbal_request_completed")
            .await
            .expect("LISTEN");
        let at = now();
        let new = request_at(at);
        tracker.insert(&new).await.unwrap();
        assert!(matches!(
            tracker.complete(new.message_id(), &balance("3"), at).await,
            Ok(Completion::Stored(_))
        ));
        let notification = tokio::time::timeout(Duration::from_secs(30), outsider.recv())
            .await
            .expect("a notification within 30 s")
            .expect("the listener's connection holds");
        assert_eq!(notification.channel(), "gbal_request_completed");
        assert_eq!(notification.payload(), new.id.to_string());
        // A duplicate changes nothing, and announces nothing.
        assert!(matches!(
            tracker.complete(new.message_id(), &balance("3"), at).await,
            Ok(Completion::Duplicate(_))
        ));
        let other = request_at(at);
        tracker.insert(&other).await.unwrap();
        tracker
            .complete(other.message_id(), &balance("4"), at)
            .await
            .unwrap();
        let next = tokio::time::timeout(Duration::from_secs(30), outsider.recv())
            .await
            .expect("a notification within 30 s")
            .expect("the listener's connection holds");
        assert_eq!(
            next.payload(),
            other.id.to_string(),
            "the next announcement is the next completion's, not the duplicate's"
        );
    })
    .await;
}
