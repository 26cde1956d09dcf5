//! PostgreSQL measures lock windows and expiry by the database's clock: replicas whose clocks
//! are minutes apart still allow one check per minute, and keep a request for its lifetime.

use std::time::Duration;

use gbal_core::{BalanceRequestId, LockOutcome, NewBalanceRequest, Tracker};
use time::OffsetDateTime;

use crate::fixture::{caller, now, request_at};
use crate::store::with_pg;

const TTL: Duration = Duration::from_secs(60);

fn minutes(n: i64) -> time::Duration {
    time::Duration::minutes(n)
}

/// The database's clock, read once.
async fn database_now(pool: &sqlx::PgPool) -> OffsetDateTime {
    sqlx::query_scalar("SELECT now()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_minutes_apart_share_one_lock_window() {
    with_pg(|db| async move {
        // Replica A runs five minutes fast, replica B five minutes slow.
        let (a, b) = (db.tracker().await, db.tracker().await);
        let fast = || now() + minutes(5);
        let slow = || now() - minutes(5);
        let key = "balance:26GB0000010000021:skewed";
        assert_eq!(
            a.lock(key, BalanceRequestId::new(), fast(), TTL)
                .await
                .unwrap(),
            LockOutcome::Acquired
        );
        // B is refused, told the time left by the database: at most the TTL, not the ten
        // minutes its own clock is behind A's.
        match b
            .lock(key, BalanceRequestId::new(), slow(), TTL)
            .await
            .unwrap()
        {
            LockOutcome::Held { retry_after } => {
                assert!(retry_after <= TTL, "{retry_after:?}");
                assert!(
                    retry_after > TTL - Duration::from_secs(10),
                    "{retry_after:?}"
                );
            }
            LockOutcome::Acquired => panic!("a replica five minutes slow took a held lock"),
        }
        // A's clock being ahead frees nothing early: even asked at A's time plus the TTL, the
        // lock is still held.
        assert!(matches!(
            a.acquire_lock(key, fast() + minutes(1), TTL).await.unwrap(),
            LockOutcome::Held { .. }
        ));

        // A short lock lapses when the database says so, whoever asks and whatever time they
        // pass.
        let short = "balance:26GB0000010000021:short";
        let ttl = Duration::from_millis(800);
        assert_eq!(
            b.lock(short, BalanceRequestId::new(), slow(), ttl)
                .await
                .unwrap(),
            LockOutcome::Acquired
        );
        assert!(matches!(
            a.lock(short, BalanceRequestId::new(), fast(), ttl)
                .await
                .unwrap(),
            LockOutcome::Held { .. }
        ));
        gbal_testkit::eventually(Duration::from_secs(30), "the short lock lapses", || {
            let a = a.clone();
            async move {
                a.lock(short, BalanceRequestId::new(), fast(), ttl)
                    .await
                    .unwrap()
                    == LockOutcome::Acquired
            }
        })
        .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_lives_its_lifetime_by_the_database_clock() {
    with_pg(|db| async move {
        let (fast, slow) = (db.tracker().await, db.tracker().await);
        let pool = db.pool().await;
        // Made by a replica ten minutes fast, for an hour.
        let made_at = now() + minutes(10);
        let new = NewBalanceRequest {
            caller: caller("skewed"),
            ..request_at(made_at)
        };
        let before = database_now(&pool).await;
        fast.insert(&new).await.unwrap();
        let after = database_now(&pool).await;
        // Its times are the database's, its lifetime kept.
        let read = slow
            .get(new.id, &new.caller, now() - minutes(10))
            .await
            .unwrap()
            .expect("read by a replica ten minutes slow");
        assert!(
            read.requested_at >= before && read.requested_at <= after + time::Duration::SECOND,
            "{read:?}"
        );
        assert_eq!(read.expires_at - read.requested_at, time::Duration::HOUR);
        // Neither replica's idea of the time expires it: not a read at a time past its
        // expiry by the fast clock, nor an expiry sweep two hours ahead.
        assert!(
            fast.get_by_message_id(new.message_id(), made_at + time::Duration::HOUR)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(fast.expire(now() + minutes(120), 100).await.unwrap(), 0);
        assert!(
            slow.wait_for_completion(new.id, now(), Duration::ZERO)
                .await
                .unwrap()
                .is_some()
        );
        // The database's clock does: moved an hour and a second back, the request has lived
        // its hour.
        sqlx::query(
            "UPDATE balance_requests SET requested_at = requested_at - interval '3601 seconds', \
             expires_at = expires_at - interval '3601 seconds' WHERE id = $1",
        )
        .bind(new.id.as_uuid())
        .execute(&pool)
        .await
        .unwrap();
        assert_eq!(
            slow.get(new.id, &new.caller, now() - minutes(120))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            slow.wait_for_completion(new.id, now() - minutes(120), Duration::ZERO)
                .await
                .unwrap(),
            None
        );
        assert_eq!(slow.expire(now() - minutes(120), 100).await.unwrap(), 1);
        pool.close().await;
    })
    .await;
}
