//! A consecutive-failure circuit breaker.
//!
//! failsafe's breaker was the first choice, but it cannot say how long it stays open (gbal
//! answers 503 with a `Retry-After`), and it reads `std::time` so tests cannot pause it. This
//! one is small: closed until `failure_threshold` consecutive failures, then open for
//! `cool_down`, then half-open with exactly one trial call whose result closes or reopens it.
//!
//! Each breaker keeps the gauge [`BREAKER_OPEN`] of its transport up to date: at every change
//! of state, and when an open breaker's cool-down ends (a timer, since nothing else happens
//! then).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// The breaker gauge, labelled `transport`: 1 while a breaker of the transport refuses calls
/// (open, or half-open with its trial call in flight), 0 otherwise.
pub const BREAKER_OPEN: &str = "gbal_gms_breaker_open";

/// How many of this process's breakers refuse calls, by transport. The gauge says whether any
/// does: eis-json has a breaker per GMS instance, and both publish under one label.
static REFUSING: Mutex<BTreeMap<&'static str, u32>> = Mutex::new(BTreeMap::new());

/// Counts a breaker of `transport` in (`+1`), out (`-1`) of the refusing ones, or neither
/// (`0`, to publish the gauge), and publishes the gauge.
fn count_refusing(transport: &'static str, change: i32) {
    let mut refusing = REFUSING.lock().unwrap_or_else(PoisonError::into_inner);
    let n = refusing.entry(transport).or_insert(0);
    *n = n.saturating_add_signed(change);
    // Set under the lock, so that two breakers changing at once publish in order.
    metrics::gauge!(BREAKER_OPEN, "transport" => transport).set(if *n > 0 { 1.0 } else { 0.0 });
}

/// When the breaker opens and how long it stays open (`[gms.breaker]` of the binary's
/// configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the breaker (at least 1).
    pub failure_threshold: u32,
    /// How long it stays open before one trial call is let through.
    pub cool_down: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { trial_in_flight: bool },
}

impl State {
    /// Whether a call asking at `now` is refused.
    fn refuses(self, now: Instant) -> bool {
        match self {
            State::Closed { .. } => false,
            State::Open { until } => now < until,
            State::HalfOpen { trial_in_flight } => trial_in_flight,
        }
    }
}

/// A breaker's state, and whether its transport's gauge counts it as refusing.
#[derive(Debug)]
struct Shared {
    state: State,
    refusing: bool,
    transport: &'static str,
}

impl Shared {
    fn set(&mut self, state: State) {
        self.state = state;
        self.publish();
    }

    /// Brings the gauge up to date with the state as of now.
    fn publish(&mut self) {
        let refusing = self.state.refuses(Instant::now());
        if refusing != self.refusing {
            self.refusing = refusing;
            count_refusing(self.transport, if refusing { 1 } else { -1 });
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.refusing {
            count_refusing(self.transport, -1);
        }
    }
}

/// Publishes the gauge again when an open breaker's cool-down ends. Outside a Tokio runtime
/// (never the case for a call) it cannot; the next call publishes it.
fn publish_at(shared: &Arc<Mutex<Shared>>, until: Instant) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    // Weak: a pending timer does not keep a dropped breaker counted.
    let shared = Arc::downgrade(shared);
    runtime.spawn(async move {
        tokio::time::sleep_until(until).await;
        if let Some(shared) = shared.upgrade() {
            lock(&shared).publish();
        }
    });
}

/// The breaker; cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    config: BreakerConfig,
    state: Arc<Mutex<Shared>>,
}

/// Leave to make one call. Record its result with [`Permit::record`]; a permit dropped
/// unrecorded (the call was cancelled) says nothing about GMS and only frees the trial slot.
#[derive(Debug)]
#[must_use = "record the call's result"]
pub(crate) struct Permit {
    breaker: Arc<Mutex<Shared>>,
    config: BreakerConfig,
    trial: bool,
    recorded: bool,
}

impl CircuitBreaker {
    /// A closed breaker for calls over `transport` (the label of its gauge, which it
    /// publishes at once).
    pub(crate) fn new(config: BreakerConfig, transport: &'static str) -> Self {
        count_refusing(transport, 0);
        Self {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                cool_down: config.cool_down,
            },
            state: Arc::new(Mutex::new(Shared {
                state: State::Closed { failures: 0 },
                refusing: false,
                transport,
            })),
        }
    }

    /// A permit to call, or how long until a call may be tried again.
    pub(crate) fn acquire(&self) -> Result<Permit, Duration> {
        let mut shared = lock(&self.state);
        let trial = match shared.state {
            State::Closed { .. } => false,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(until - now);
                }
                shared.set(State::HalfOpen {
                    trial_in_flight: true,
                });
                true
            }
            State::HalfOpen { trial_in_flight } => {
                if trial_in_flight {
                    // Another caller is finding out; it will not take longer than a cool-down
                    // to know.
                    return Err(self.config.cool_down);
                }
                shared.set(State::HalfOpen {
                    trial_in_flight: true,
                });
                true
            }
        };
        Ok(Permit {
            breaker: Arc::clone(&self.state),
            config: self.config,
            trial,
            recorded: false,
        })
    }

    /// How long calls stay refused, when they are refused right now.
    pub(crate) fn open_for(&self) -> Option<Duration> {
        match lock(&self.state).state {
            State::Open { until } => {
                let now = Instant::now();
                (now < until).then(|| until - now)
            }
            State::Closed { .. } | State::HalfOpen { .. } => None,
        }
    }

    /// Whether calls are refused right now (for logs and tests).
    #[cfg(test)]
    pub(crate) fn is_open(&self) -> bool {
        matches!(lock(&self.state).state, State::Open { until } if Instant::now() < until)
    }
}

impl Permit {
    /// Records the call's result.
    pub(crate) fn record(mut self, success: bool) {
        self.recorded = true;
        let mut shared = lock(&self.breaker);
        let state = match (shared.state, success) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.config.failure_threshold => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            // The threshold reached, a failed trial, or a late failure while already open.
            (_, false) => State::Open {
                until: Instant::now() + self.config.cool_down,
            },
        };
        shared.set(state);
        if let State::Open { until } = state {
            publish_at(&self.breaker, until);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            let mut shared = lock(&self.breaker);
            if let State::HalfOpen { .. } = shared.state {
                shared.set(State::HalfOpen {
                    trial_in_flight: false,
                });
            }
        }
    }
}

// A poisoned lock only means another thread panicked between two plain assignments; the state
// it left is still a valid state.
fn lock(state: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(
            BreakerConfig {
                failure_threshold: threshold,
                cool_down: Duration::from_secs(10),
            },
            "test",
        )
    }

    fn fail(b: &CircuitBreaker) {
        b.acquire().expect("permitted").record(false);
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_n_consecutive_failures() {
        let b = breaker(3);
        fail(&b);
        fail(&b);
        assert!(!b.is_open());
        fail(&b);
        assert!(b.is_open());
        let wait = b.acquire().expect_err("open");
        assert_eq!(wait, Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(b.acquire().expect_err("open"), Duration::from_secs(6));
        assert_eq!(b.open_for(), Some(Duration::from_secs(6)));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(b.open_for(), None, "the cool-down is over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let b = breaker(3);
        fail(&b);
        fail(&b);
        b.acquire().expect("permitted").record(true);
        fail(&b);
        fail(&b);
        assert!(
            !b.is_open(),
            "only two consecutive failures since the success"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_trial_through_and_closes_on_success() {
        let b = breaker(1);
        fail(&b);
        tokio::time::advance(Duration::from_secs(10)).await;
        let trial = b.acquire().expect("trial after the cool-down");
        assert!(b.acquire().is_err(), "only one trial at a time");
        trial.record(true);
        for _ in 0..5 {
            b.acquire().expect("closed").record(true);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_reopens_for_a_full_cool_down() {
        let b = breaker(2);
        fail(&b);
        fail(&b);
        tokio::time::advance(Duration::from_secs(11)).await;
        b.acquire().expect("trial").record(false);
        assert_eq!(b.acquire().expect_err("open"), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_trial_frees_the_slot() {
        let b = breaker(1);
        fail(&b);
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(b.acquire().expect("trial"));
        b.acquire().expect("another trial").record(true);
        assert!(!b.is_open());
    }

    /// The gauge of `transport` on the process's `/metrics` (its own label, so that tests
    /// running at once do not share it).
    fn gauge(transport: &str) -> Option<f64> {
        let text = gbal_testkit::metrics::prometheus().render();
        let series = format!("{BREAKER_OPEN}{{transport=\"{transport}\"}} ");
        text.lines()
            .find_map(|line| line.strip_prefix(&series))
            .map(|value| value.parse().expect("a number"))
    }

    /// A breaker publishing to the process's recorder (installed first: a gauge set before is
    /// lost).
    fn breaker_for(transport: &'static str, threshold: u32) -> CircuitBreaker {
        gbal_testkit::metrics::prometheus();
        CircuitBreaker::new(
            BreakerConfig {
                failure_threshold: threshold,
                cool_down: Duration::from_secs(10),
            },
            transport,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn the_gauge_is_one_exactly_while_calls_are_refused() {
        let b = breaker_for("gauge-cycle", 2);
        assert_eq!(gauge("gauge-cycle"), Some(0.0), "published when made");
        fail(&b);
        assert_eq!(gauge("gauge-cycle"), Some(0.0), "one failure of two");
        fail(&b);
        assert_eq!(gauge("gauge-cycle"), Some(1.0), "open");
        // The cool-down ends with no call at all: the next call would go through. (A second
        // later than its end: the timer and this test would wake at the same instant.)
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(gauge("gauge-cycle"), Some(0.0), "the cool-down is over");
        // The trial call: every other call is refused while it runs.
        let trial = b.acquire().expect("the trial");
        assert_eq!(gauge("gauge-cycle"), Some(1.0), "a trial in flight");
        drop(trial);
        assert_eq!(gauge("gauge-cycle"), Some(0.0), "the trial was cancelled");
        let trial = b.acquire().expect("another trial");
        trial.record(false);
        assert_eq!(gauge("gauge-cycle"), Some(1.0), "the trial failed");
        tokio::time::sleep(Duration::from_secs(11)).await;
        b.acquire().expect("a third trial").record(true);
        assert_eq!(gauge("gauge-cycle"), Some(0.0), "closed");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(
            gauge("gauge-cycle"),
            Some(0.0),
            "no timer left to change it"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_gauge_says_whether_any_breaker_of_the_transport_refuses() {
        let (gb, xi) = (breaker_for("gauge-two", 1), breaker_for("gauge-two", 1));
        fail(&gb);
        tokio::time::sleep(Duration::from_secs(5)).await;
        fail(&xi);
        assert_eq!(gauge("gauge-two"), Some(1.0));
        // The first cool-down ends: the other breaker still refuses.
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(gb.acquire().is_ok() && xi.acquire().is_err());
        assert_eq!(gauge("gauge-two"), Some(1.0));
        // A breaker dropped while it refuses stops counting.
        drop(xi);
        assert_eq!(gauge("gauge-two"), Some(0.0));
        // And an open one dropped before its timer fires.
        let other = breaker_for("gauge-two", 1);
        fail(&other);
        assert_eq!(gauge("gauge-two"), Some(1.0));
        drop(other);
        assert_eq!(gauge("gauge-two"), Some(0.0));
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(gauge("gauge-two"), Some(0.0));
    }

    #[test]
    fn threshold_zero_means_one() {
        let b = breaker(0);
        b.acquire().expect("closed").record(false);
        assert!(b.acquire().is_err());
    }
}
