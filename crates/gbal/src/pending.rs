//! The pending-request gauges: how many balance requests wait for GMS's reply, and how long
//! the oldest has waited, counted from the request store for the whole cluster.
//!
//! A count reads every live request (see [`Tracker::pending`]): at 1,000,000 live requests
//! (an hour at 280 requests/s) PostgreSQL takes about 0.3 s. So the replicas take turns: a
//! replica counts only when it takes [`COUNT_LOCK`] in the store, a lock like a caller's
//! once-a-minute lock that lapses after one turn. That makes at most one count per turn in
//! the whole cluster, one replica at a time; a turn is [`INTERVAL`], or ten times as long as
//! the replica's last count took, so that counting never keeps the database busy more than a
//! tenth of the time.
//!
//! Only a replica that counted lately publishes the gauges (until two of its turns have
//! passed): another replica's older count could be out of date, and `max` over the replicas,
//! as the dashboard and the alerts read them, would keep it. The `metrics` exporter cannot
//! withdraw a series once set, so these two gauges are written here, after its text.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use gbal_core::{Clock, LockOutcome, PendingRequests, Tracker};
use time::OffsetDateTime;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// The gauge of pending requests: recorded, not answered, not expired.
pub const PENDING_REQUESTS: &str = "gbal_pending_requests";

/// The gauge of the oldest pending request's age, in seconds (0 when none is pending).
pub const OLDEST_PENDING_AGE: &str = "gbal_oldest_pending_request_age_seconds";

/// The store lock the replicas take turns with; no caller's lock key looks like it (theirs
/// begin `balance:`).
pub const COUNT_LOCK: &str = "gbal:pending-count";

/// How often a replica tries to take its turn, and the shortest turn.
pub const INTERVAL: Duration = Duration::from_secs(5);

/// A turn lasts at least this many times as long as the last count took.
const TURN_PER_COUNT: u32 = 10;

/// The last count this replica took, and until when it is published.
#[derive(Debug, Clone, Copy)]
struct Reading {
    pending: PendingRequests,
    until: OffsetDateTime,
}

/// The gauges as this replica publishes them: its last count, while it is recent.
#[derive(Debug, Default)]
pub struct PendingGauges {
    last: Mutex<Option<Reading>>,
}

impl PendingGauges {
    /// Keeps `pending`, counted by this replica, for publishing until `until`.
    fn record(&self, pending: PendingRequests, until: OffsetDateTime) {
        *self.lock() = Some(Reading { pending, until });
    }

    /// Appends the two gauges, in the Prometheus text format, to `text` (a scrape), unless
    /// this replica has not counted since before `now` minus two of its turns.
    pub fn render_into(&self, text: &mut String, now: OffsetDateTime) {
        let Some(Reading { pending, until }) = *self.lock() else {
            return;
        };
        if now >= until {
            return;
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let age = pending.oldest_age.unwrap_or_default().as_secs_f64();
        // Writing to a String cannot fail.
        let _ = write!(
            text,
            "# TYPE {PENDING_REQUESTS} gauge\n{PENDING_REQUESTS} {}\n\
             # TYPE {OLDEST_PENDING_AGE} gauge\n{OLDEST_PENDING_AGE} {age}\n",
            pending.count
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Reading>> {
        // A plain value, replaced whole: a panicking holder cannot leave it half-written.
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What became of one attempt to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// This replica counted; its next turn is no sooner than this.
    Counted(Duration),
    /// Another replica counted within its turn.
    NotOurs,
}

/// Takes a turn if none is running in the cluster: takes [`COUNT_LOCK`] for a turn of `turn`,
/// counts, and keeps the count in `gauges` for two turns (of the next turn's length, which a
/// slow count makes longer). A count that fails leaves the gauges as they were (they go once
/// their time is up).
pub async fn take_turn(
    tracker: &dyn Tracker,
    clock: &dyn Clock,
    turn: Duration,
    gauges: &PendingGauges,
) -> Result<Turn, gbal_core::TrackerError> {
    let now = clock.now();
    if let LockOutcome::Held { .. } = tracker.acquire_lock(COUNT_LOCK, now, turn).await? {
        return Ok(Turn::NotOurs);
    }
    let started = tokio::time::Instant::now();
    let pending = tracker.pending(now).await?;
    let took = started.elapsed();
    gauges.record(pending, now + 2 * next_turn(turn, took));
    Ok(Turn::Counted(took))
}

/// The turn after a count that took `took`: at least `shortest`, and ten times the count.
pub fn next_turn(shortest: Duration, took: Duration) -> Duration {
    shortest.max(took.saturating_mul(TURN_PER_COUNT))
}

/// Runs the count every `interval` (the first attempt at once) until `cancel` fires, taking
/// the cluster's turn when it is free (see [the module](self)). Errors are logged and the job
/// goes on.
pub async fn run_pending_count(
    tracker: Arc<dyn Tracker>,
    clock: Arc<dyn Clock>,
    interval: Duration,
    cancel: CancellationToken,
    gauges: &PendingGauges,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut turn = interval;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = ticks.tick() => {}
        }
        match take_turn(tracker.as_ref(), clock.as_ref(), turn, gauges).await {
            Ok(Turn::Counted(took)) => {
                turn = next_turn(interval, took);
                tracing::debug!(
                    took_ms = took.as_millis() as u64,
                    "pending requests counted"
                );
            }
            Ok(Turn::NotOurs) => {}
            Err(error) => tracing::warn!(
                %error,
                "counting the pending requests failed; the next attempt is at the next interval"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use gbal_core::{
        ApiVersion, BalanceRequestId, CallerId, Grn, NewBalanceRequest, Tin, UniqueReference,
    };
    use gbal_testkit::TestClock;
    use gbal_tracker::SqliteTracker;

    use super::*;

    const SCRAPE: &str = "# TYPE gbal_other counter\ngbal_other 1\n";

    /// A scrape of `gauges` at `now`, after another metric.
    fn scrape(gauges: &PendingGauges, now: OffsetDateTime) -> String {
        let mut text = SCRAPE.to_owned();
        gauges.render_into(&mut text, now);
        text
    }

    /// A pending v1 request made at `at`, live for an hour.
    fn request(at: OffsetDateTime) -> NewBalanceRequest {
        NewBalanceRequest {
            id: BalanceRequestId::new(),
            message_ref: UniqueReference::random(),
            caller: CallerId::parse("client-1").unwrap(),
            api_version: ApiVersion::V1,
            grn: Grn::parse_v1("21GB3300BE0001067A001017").unwrap(),
            tin: Some(Tin::parse("GB12345678900").unwrap()),
            requested_at: at,
            expires_at: at + time::Duration::HOUR,
        }
    }

    /// A store holding two pending requests, made 30 s and 10 s before `clock`'s time.
    async fn store(clock: &TestClock) -> Arc<SqliteTracker> {
        let store = Arc::new(SqliteTracker::in_memory().await.unwrap());
        for ago in [30, 10] {
            store
                .insert(&request(clock.now() - time::Duration::seconds(ago)))
                .await
                .unwrap();
        }
        store
    }

    fn counted(text: &str) -> Option<(f64, f64)> {
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .map(|v| v.parse::<f64>().unwrap())
        };
        Some((value(PENDING_REQUESTS)?, value(OLDEST_PENDING_AGE)?))
    }

    #[tokio::test]
    async fn a_replica_publishes_its_count_for_two_turns() {
        let clock = TestClock::now();
        let store = store(&clock).await;
        let gauges = PendingGauges::default();
        assert_eq!(
            scrape(&gauges, clock.now()),
            SCRAPE,
            "nothing before a count"
        );

        let turn = Duration::from_secs(5);
        let taken = take_turn(store.as_ref(), clock.as_ref(), turn, &gauges).await;
        assert!(matches!(taken, Ok(Turn::Counted(_))), "{taken:?}");
        let text = scrape(&gauges, clock.now());
        assert!(text.starts_with(SCRAPE), "{text}");
        assert!(
            text.contains("# TYPE gbal_pending_requests gauge\n")
                && text.contains("# TYPE gbal_oldest_pending_request_age_seconds gauge\n"),
            "{text}"
        );
        assert_eq!(counted(&text), Some((2.0, 30.0)));

        // The count as it was taken, until two turns have passed.
        clock.advance(Duration::from_secs(9));
        assert_eq!(counted(&scrape(&gauges, clock.now())), Some((2.0, 30.0)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(scrape(&gauges, clock.now()), SCRAPE, "too old to publish");

        // A fresh count: the oldest is older now; none pending reads 0 and 0.
        let taken = take_turn(store.as_ref(), clock.as_ref(), turn, &gauges).await;
        assert!(matches!(taken, Ok(Turn::Counted(_))), "{taken:?}");
        assert_eq!(counted(&scrape(&gauges, clock.now())), Some((2.0, 40.0)));
        clock.advance(time::Duration::HOUR);
        take_turn(store.as_ref(), clock.as_ref(), turn, &gauges)
            .await
            .unwrap();
        assert_eq!(counted(&scrape(&gauges, clock.now())), Some((0.0, 0.0)));
    }

    /// A five-second turn for `gauges`' replica, if it is free.
    async fn take(store: &SqliteTracker, clock: &TestClock, gauges: &PendingGauges) -> Turn {
        take_turn(store, clock, Duration::from_secs(5), gauges)
            .await
            .expect("the store answers")
    }

    #[tokio::test]
    async fn replicas_take_turns() {
        let clock = TestClock::now();
        let store = store(&clock).await;
        let (a, b) = (PendingGauges::default(), PendingGauges::default());

        assert!(matches!(take(&store, &clock, &a).await, Turn::Counted(_)));
        assert_eq!(take(&store, &clock, &b).await, Turn::NotOurs);
        assert_eq!(take(&store, &clock, &a).await, Turn::NotOurs, "once a turn");
        assert_eq!(scrape(&b, clock.now()), SCRAPE, "b has not counted");
        clock.advance(Duration::from_secs(4));
        assert_eq!(take(&store, &clock, &b).await, Turn::NotOurs);
        // The turn is over: whoever asks first counts.
        clock.advance(Duration::from_secs(1));
        assert!(matches!(take(&store, &clock, &b).await, Turn::Counted(_)));
        assert_eq!(take(&store, &clock, &a).await, Turn::NotOurs);
        assert_eq!(counted(&scrape(&b, clock.now())), Some((2.0, 35.0)));
        assert_eq!(counted(&scrape(&a, clock.now())), Some((2.0, 30.0)));
    }

    #[test]
    fn a_slow_count_makes_the_turns_longer() {
        let shortest = Duration::from_secs(5);
        assert_eq!(next_turn(shortest, Duration::from_millis(20)), shortest);
        assert_eq!(
            next_turn(shortest, Duration::from_millis(1500)),
            Duration::from_secs(15)
        );
    }

    #[tokio::test]
    async fn the_job_logs_a_failed_count_goes_on_and_stops_when_cancelled() {
        let (logs, _guard) = gbal_testkit::logs::capture();
        let store = SqliteTracker::in_memory().await.unwrap();
        // The requests out of sight: the lock can be taken, the count fails.
        sqlx::query("ALTER TABLE balance_requests RENAME TO hidden")
            .execute(store.pool())
            .await
            .unwrap();
        let store = Arc::new(store);
        let gauges = Arc::new(PendingGauges::default());
        let cancel = CancellationToken::new();
        let job = tokio::spawn({
            let (store, gauges, cancel) = (store.clone(), gauges.clone(), cancel.clone());
            async move {
                let clock = Arc::new(gbal_core::SystemClock);
                let interval = Duration::from_millis(20);
                run_pending_count(store, clock, interval, cancel, &gauges).await;
            }
        });
        gbal_testkit::eventually(Duration::from_secs(10), "the failure is logged", || {
            let logs = logs.clone();
            async move { logs.text().contains("counting the pending requests failed") }
        })
        .await;
        assert_eq!(scrape(&gauges, OffsetDateTime::now_utc()), SCRAPE);

        sqlx::query("ALTER TABLE hidden RENAME TO balance_requests")
            .execute(store.pool())
            .await
            .unwrap();
        gbal_testkit::eventually(Duration::from_secs(10), "a later count", || {
            let gauges = gauges.clone();
            async move { counted(&scrape(&gauges, OffsetDateTime::now_utc())).is_some() }
        })
        .await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), job)
            .await
            .expect("the job stops when cancelled")
            .unwrap();
    }
}
