//! The tracker's own PostgreSQL connection pool: it stays within its size, and an operation
//! cancelled half way never leaves a connection that later operations trip over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gbal_core::{Completion, Tracker};
use gbal_testkit::database::tracker_config;
use gbal_tracker::{APPLICATION_NAME, PgConfig, PgTracker};
use sqlx::PgPool;

use crate::fixture::{balance, now, request_at};
use crate::store::with_pg;

async fn connections(raw: &PgPool, database: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(database)
    .bind(APPLICATION_NAME)
    .fetch_one(raw)
    .await
    .expect("read pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_never_opens_more_connections_than_configured() {
    with_pg(|db| async move {
        let config = PgConfig {
            max_connections: 3,
            acquire_timeout: Duration::from_secs(20),
            statement_timeout: Duration::from_secs(10),
        };
        let tracker = Arc::new(PgTracker::connect(&db.url, &config).unwrap());
        let raw = db.pool().await;
        let at = now();
        let tasks: Vec<_> = (0..60)
            .map(|_| {
                let tracker = Arc::clone(&tracker);
                tokio::spawn(async move {
                    let new = request_at(at);
                    tracker.insert(&new).await.unwrap();
                    let done = tracker.complete(new.message_id(), &balance("1"), at).await;
                    assert!(matches!(done, Ok(Completion::Stored(_))));
                })
            })
            .collect();
        let mut most = 0;
        while tasks.iter().any(|t| !t.is_finished()) {
            most = most.max(connections(&raw, &db.name).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        most = most.max(connections(&raw, &db.name).await);
        assert!((1..=3).contains(&most), "{most} connections at most");
        raw.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_cancelled_half_way_do_not_poison_the_pool() {
    with_pg(|db| async move {
        let config = PgConfig {
            max_connections: 2,
            ..tracker_config()
        };
        let tracker = Arc::new(PgTracker::connect(&db.url, &config).unwrap());
        let at = now();
        for round in 0..40u64 {
            // Abandon operations at various points: waiting, mid-statement, done.
            let tasks: Vec<_> = (0..4)
                .map(|_| {
                    let tracker = Arc::clone(&tracker);
                    tokio::spawn(async move {
                        let new = request_at(at);
                        let _ = tracker.insert(&new).await;
                        let _ = tracker.complete(new.message_id(), &balance("2"), at).await;
                    })
                })
                .collect();
            tokio::time::sleep(Duration::from_micros(250 * (round % 8))).await;
            for task in &tasks {
                task.abort();
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        // Every later operation works, on whatever connections are left (a poisoned one would
        // fail it, or hold it until the acquire timeout, which fails it too).
        for _ in 0..20 {
            let new = request_at(at);
            tracker
                .insert(&new)
                .await
                .expect("insert after cancellations");
            assert!(matches!(
                tracker.complete(new.message_id(), &balance("3"), at).await,
                Ok(Completion::Stored(_))
            ));
            assert!(
                tracker
                    .get(new.id, &new.caller, at)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_insert_keeps_its_connection_usable() {
    with_pg(|db| async move {
        let config = PgConfig {
            max_connections: 1,
            ..tracker_config()
        };
        let tracker = PgTracker::connect(&db.url, &config).unwrap();
        let raw = db.pool().await;
        let new = request_at(now());
        tracker.insert(&new).await.unwrap();
        let backend: i32 = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        )
        .bind(&db.name)
        .bind(APPLICATION_NAME)
        .fetch_one(&raw)
        .await
        .unwrap();
        for _ in 0..3 {
            assert!(tracker.insert(&new).await.is_err());
        }
        tracker.ping().await.unwrap();
        let after: i32 = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
        )
        .bind(&db.name)
        .bind(APPLICATION_NAME)
        .fetch_one(&raw)
        .await
        .unwrap();
        assert_eq!(backend, after, "the same connection served on");
        raw.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_pool_refuses_at_once_and_lets_its_connections_go() {
    with_pg(|db| async move {
        let tracker = PgTracker::connect(&db.url, &tracker_config()).unwrap();
        let raw = db.pool().await;
        tracker.ping().await.unwrap();
        let (first, second) = (tracker.ping(), tracker.ping());
        let (a, b) = tokio::join!(first, second);
        a.unwrap();
        b.unwrap();
        assert!(tracker.pool().size() >= 1);
        assert_eq!(tracker.pool().num_idle(), tracker.pool().size() as usize);
        tracker.pool().close().await;
        assert_eq!(tracker.pool().num_idle(), 0);
        // At once: not after waiting out the acquire timeout for a connection.
        let started = Instant::now();
        assert!(matches!(
            tracker.ping().await,
            Err(gbal_core::TrackerError::Unavailable(_))
        ));
        assert!(started.elapsed() < tracker_config().acquire_timeout);
        gbal_testkit::eventually(Duration::from_secs(30), "connections close", || async {
            connections(&raw, &db.name).await == 0
        })
        .await;
        raw.close().await;
    })
    .await;
}
