//! The per-caller request rate (governor, in process, per replica): `per_second` sustained
//! with a `burst`, counted right after authentication on every public API route (the `Caller`
//! extractor); refused as `CLIENT_RATE_LIMIT` (v1) or `MESSAGE_THROTTLED_OUT` (v2).
//!
//! The other limit a caller meets, once a minute per (caller, GRN), is the tracker's
//! cluster-wide lock, taken by `BalanceService::check`; a replica's memory of it is the
//! tracker's decorator `gbal_tracker::LockMirror`, not the HTTP layer's business.

use std::num::NonZeroU32;
use std::time::Duration;

use gbal_core::CallerId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::{RateLimitConfig, Setting};
use crate::error::StartError;

/// The request rate of each caller.
pub(crate) struct CallerLimits {
    per_caller: DefaultKeyedRateLimiter<CallerId>,
    clock: DefaultClock,
}

impl CallerLimits {
    pub(crate) fn new(config: &RateLimitConfig) -> Result<Self, StartError> {
        let at_least_one = |setting: Setting, value| {
            NonZeroU32::new(value).ok_or_else(|| StartError::InvalidSetting {
                setting: setting.name(),
                reason: "must be at least 1".to_owned(),
            })
        };
        let per_second = at_least_one(Setting::RatePerSecond, config.per_second)?;
        let burst = at_least_one(Setting::RateBurst, config.burst)?;
        Ok(Self {
            per_caller: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
        })
    }

    /// Counts one request by `caller`, or says how long it must wait.
    pub(crate) fn check(&self, caller: &CallerId) -> Result<(), Duration> {
        self.per_caller
            .check_key(caller)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Forgets the callers whose limits have fully replenished (call periodically).
    pub(crate) fn retain_recent(&self) {
        self.per_caller.retain_recent();
        metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller")
            .set(self.per_caller.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(s: &str) -> CallerId {
        CallerId::parse(s).unwrap()
    }

    fn rate(per_second: u32, burst: u32) -> RateLimitConfig {
        RateLimitConfig { per_second, burst }
    }

    #[test]
    fn caller_limit_has_a_burst_and_is_per_caller() {
        let limits = CallerLimits::new(&rate(1, 2)).unwrap();
        assert_eq!(limits.check(&caller("a")), Ok(()));
        assert_eq!(limits.check(&caller("a")), Ok(()));
        let wait = limits.check(&caller("a")).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(limits.check(&caller("b")), Ok(()));
        limits.retain_recent();
    }

    #[test]
    fn zero_settings_are_refused() {
        assert!(CallerLimits::new(&rate(0, 1)).is_err());
        assert!(CallerLimits::new(&rate(1, 0)).is_err());
    }
}
