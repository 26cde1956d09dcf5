//! An unreachable database: operations fail with `Unavailable` within the acquire timeout,
//! nothing hangs, and the same tracker works again once the database is back. The outage is
//! a TCP proxy in front of the shared server being cut.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gbal_core::{BalanceRequestId, Completion, LockOutcome, Tracker, TrackerError};
use gbal_testkit::database::{server_url, url_with_address};
use gbal_tracker::{PgConfig, PgTracker};
use sqlx::postgres::PgConnectOptions;

use crate::fixture::{balance, caller, now, request_at};
use crate::proxy::Proxy;
use crate::store::with_pg;

const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// What an operation may take past the acquire timeout on a slow machine: generous, yet far
/// below what a hang would take (the statement timeout and the wait below are 30 s, a dead TCP
/// connection minutes).
const MARGIN: Duration = Duration::from_secs(5);
/// Far above `ACQUIRE_TIMEOUT + MARGIN`, so an operation that ends by it fails the test.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

async fn upstream() -> SocketAddr {
    let options: PgConnectOptions = server_url().parse().expect("a valid DATABASE_URL");
    tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .expect("resolve the database host")
        .next()
        .expect("an address for the database host")
}

async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    op: impl std::future::Future<Output = Result<T, TrackerError>>,
) {
    let started = Instant::now();
    let result = op.await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(TrackerError::Unavailable(_))),
        "{what}: {result:?}"
    );
    assert!(
        elapsed < ACQUIRE_TIMEOUT + MARGIN,
        "{what} took {elapsed:?}, more than the acquire timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_unavailable_in_time_and_the_pool_recovers() {
    with_pg(|db| async move {
        let proxy = Proxy::start(upstream().await).await;
        let url = url_with_address(&db.url, "127.0.0.1", proxy.port());
        let config = PgConfig {
            max_connections: 3,
            acquire_timeout: ACQUIRE_TIMEOUT,
            statement_timeout: STATEMENT_TIMEOUT,
        };
        let tracker = PgTracker::connect(&url, &config).unwrap();
        tracker.ping().await.expect("up through the proxy");
        let at = now();
        let before = request_at(at);
        tracker.insert(&before).await.unwrap();

        proxy.cut().await;
        // A tracker made while the database is down does not wait for it.
        let late = PgTracker::connect(&url, &config).unwrap();
        let new = request_at(at);
        {
            assert_unavailable("ping", tracker.ping()).await;
            assert_unavailable("insert", tracker.insert(&new)).await;
            assert_unavailable("get", tracker.get(before.id, &before.caller, at)).await;
            assert_unavailable(
                "get_by_message_id",
                tracker.get_by_message_id(before.message_id(), at),
            )
            .await;
            assert_unavailable(
                "complete",
                tracker.complete(before.message_id(), &balance("1"), at),
            )
            .await;
            assert_unavailable(
                "acquire_lock",
                tracker.acquire_lock("k", at, Duration::from_secs(60)),
            )
            .await;
            assert_unavailable("expire", tracker.expire(at, 10)).await;
            assert_unavailable(
                "wait_for_completion",
                tracker.wait_for_completion(before.id, at, Duration::from_secs(30)),
            )
            .await;
            assert_unavailable("ping on a tracker made while down", late.ping()).await;
        }

        proxy.restore().await;
        // The same pool works again.
        tracker.ping().await.expect("the same tracker works again");
        assert!(
            tracker
                .get(before.id, &before.caller, at)
                .await
                .unwrap()
                .is_some()
        );
        tracker.insert(&new).await.expect("insert after the outage");
        assert!(matches!(
            tracker.complete(new.message_id(), &balance("3"), at).await,
            Ok(Completion::Stored(_))
        ));
        assert_eq!(
            tracker
                .acquire_lock("k", at, Duration::from_secs(60))
                .await
                .unwrap(),
            LockOutcome::Acquired
        );
        assert_eq!(
            tracker
                .get(BalanceRequestId::new(), &caller("client-1"), at)
                .await
                .unwrap(),
            None
        );
        late.ping()
            .await
            .expect("a tracker made while down works once it is up");
        // Its listener reconnects by itself.
        tokio::time::timeout(Duration::from_secs(15), tracker.until_listening())
            .await
            .expect("the listener reconnects");
    })
    .await;
}
