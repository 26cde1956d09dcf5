//! A consecutive-failure circuit breaker.
//!
//! failsafe's breaker was the first choice, but it cannot say how long it stays open (gbal
//! answers 503 with a `Retry-After`), and it reads `std::time` so tests cannot pause it. This
//! one is small: closed until `failure_threshold` consecutive failures, then open for
//! `cool_down`, then half-open with exactly one trial call whose result closes or reopens it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

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

/// The breaker; cheap to share behind an `Arc`.
#[derive(Debug)]
pub(crate) struct CircuitBreaker {
    config: BreakerConfig,
    state: Arc<Mutex<State>>,
}

/// Leave to make one call. Record its result with [`Permit::record`]; a permit dropped
/// unrecorded (the call was cancelled) says nothing about GMS and only frees the trial slot.
#[derive(Debug)]
#[must_use = "record the call's result"]
pub(crate) struct Permit {
    breaker: Arc<Mutex<State>>,
    config: BreakerConfig,
    trial: bool,
    recorded: bool,
}

impl CircuitBreaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            config: BreakerConfig {
                failure_threshold: config.failure_threshold.max(1),
                cool_down: config.cool_down,
            },
            state: Arc::new(Mutex::new(State::Closed { failures: 0 })),
        }
    }

    /// A permit to call, or how long until a call may be tried again.
    pub(crate) fn acquire(&self) -> Result<Permit, Duration> {
        let mut state = lock(&self.state);
        let trial = match *state {
            State::Closed { .. } => false,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(until - now);
                }
                *state = State::HalfOpen {
                    trial_in_flight: true,
                };
                true
            }
            State::HalfOpen { trial_in_flight } => {
                if trial_in_flight {
                    // Another caller is finding out; it will not take longer than a cool-down
                    // to know.
                    return Err(self.config.cool_down);
                }
                *state = State::HalfOpen {
                    trial_in_flight: true,
                };
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
        match *lock(&self.state) {
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
        matches!(*lock(&self.state), State::Open { until } if Instant::now() < until)
    }
}

impl Permit {
    /// Records the call's result.
    pub(crate) fn record(mut self, success: bool) {
        self.recorded = true;
        let mut state = lock(&self.breaker);
        *state = match (*state, success) {
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
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.trial && !self.recorded {
            let mut state = lock(&self.breaker);
            if let State::HalfOpen { .. } = *state {
                *state = State::HalfOpen {
                    trial_in_flight: false,
                };
            }
        }
    }
}

// A poisoned lock only means another thread panicked between two plain assignments; the state
// it left is still a valid state.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32) -> CircuitBreaker {
        CircuitBreaker::new(BreakerConfig {
            failure_threshold: threshold,
            cool_down: Duration::from_secs(10),
        })
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

    #[test]
    fn threshold_zero_means_one() {
        let b = breaker(0);
        b.acquire().expect("closed").record(false);
        assert!(b.acquire().is_err());
    }
}
