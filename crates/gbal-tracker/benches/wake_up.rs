//! How soon a waiting check learns of its reply: the time from the start of `complete` on one
//! replica to the wake-up of a check waiting on another (PostgreSQL's NOTIFY and the waiter's
//! LISTEN connection), and within one process (SQLite, in memory). The tests only require the
//! wake-up to come before the wait's timeout; this prints how soon it comes.
//!
//! `cargo bench -p gbal-tracker --bench wake_up`; `GBAL_WAKE_ROUNDS` wake-ups per store (200);
//! `DATABASE_URL` names a server where the role may create databases (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gbal_core::outcome::Balance;
use gbal_core::{
    ApiVersion, BalanceRequestId, CallerId, Completion, Grn, NewBalanceRequest, Outcome, Tin,
    Tracker, UniqueReference,
};
use gbal_testkit::TestDatabase;
use gbal_tracker::SqliteTracker;
use time::OffsetDateTime;

/// The wait's timeout: far above any wake-up, so that a wake-up that never came shows.
const TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    let rounds: usize = std::env::var("GBAL_WAKE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let db = TestDatabase::migrated("gbal_wake").await;
        let waiting_replica = db.tracker().await;
        let completing_replica = db.tracker().await;
        completing_replica
            .ping()
            .await
            .expect("the database answers");
        let waiting = waiting_replica.clone();
        let latencies = measure(
            rounds,
            Arc::new(waiting_replica),
            Arc::new(completing_replica),
            move || waiting.waiting(),
        )
        .await;
        report("PostgreSQL, another replica (NOTIFY)", &latencies);
        db.drop_database().await;

        let sqlite = SqliteTracker::in_memory().await.expect("SQLite in memory");
        let counting = sqlite.clone();
        let sqlite: Arc<dyn Tracker> = Arc::new(sqlite);
        let latencies = measure(rounds, sqlite.clone(), sqlite, move || counting.waiting()).await;
        report("SQLite, the same process", &latencies);
    });
}

/// `rounds` wake-ups: a request recorded, a check waiting on it through `waiter`, the request
/// completed through `completer` once the check is registered; each wake-up's latency.
async fn measure(
    rounds: usize,
    waiter: Arc<dyn Tracker>,
    completer: Arc<dyn Tracker>,
    registered: impl Fn() -> usize,
) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let at = now();
        let new = request(at);
        waiter.insert(&new).await.expect("insert");
        let check = {
            let waiter = Arc::clone(&waiter);
            let id = new.id;
            tokio::spawn(async move {
                let answer = waiter
                    .wait_for_completion(id, at, TIMEOUT)
                    .await
                    .expect("wait");
                (answer, Instant::now())
            })
        };
        while registered() == 0 {
            tokio::task::yield_now().await;
        }
        let sent = Instant::now();
        let done = completer
            .complete(new.message_id(), &balance(), at)
            .await
            .expect("complete");
        assert!(matches!(done, Completion::Stored(_)), "{done:?}");
        let (answer, woken) = check.await.expect("the waiting check");
        assert!(answer.is_some_and(|r| r.outcome.is_some()), "answered");
        latencies.push(woken.duration_since(sent));
    }
    latencies
}

fn report(what: &str, latencies: &[Duration]) {
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    println!(
        "wake-up, {what}: {} rounds, p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
        sorted.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .expect("whole microseconds")
}

fn request(at: OffsetDateTime) -> NewBalanceRequest {
    NewBalanceRequest {
        id: BalanceRequestId::new(),
        message_ref: UniqueReference::random(),
        caller: CallerId::parse("bench").expect("a caller"),
        api_version: ApiVersion::V1,
        grn: Grn::parse_v1("21GB3300BE0001067A001017").expect("a GRN"),
        tin: Some(Tin::parse("GB12345678900").expect("a TIN")),
        requested_at: at,
        expires_at: at + time::Duration::HOUR,
    }
}

fn balance() -> Outcome {
    Outcome::Success(Balance {
        amount: "12.5".parse().expect("an amount"),
        currency: "GBP".parse().expect("a currency"),
    })
}
