//! Waiting for something another task, thread or process does: poll an observable condition
//! until it holds, with a deadline, instead of sleeping for a guessed time.
//!
//! The deadline is a bound on "eventually", not a speed target: pick it generously (seconds),
//! so that a slow machine passes and only a behaviour that never happens fails.

use std::future::Future;
use std::time::{Duration, Instant};

/// The first pause between two checks; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(1);
/// The longest pause between two checks.
const MAX_PAUSE: Duration = Duration::from_millis(50);

fn next(pause: Duration) -> Duration {
    (pause * 2).min(MAX_PAUSE)
}

/// Checks `condition` until it gives `Some`, and returns its value; panics, naming `what`, if
/// it has not within `deadline`. The condition is checked once more at the deadline.
#[track_caller]
pub fn eventually_some<T, F, Fut>(
    deadline: Duration,
    what: &str,
    condition: F,
) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(
        deadline,
        what,
        None,
        condition,
        std::panic::Location::caller(),
    )
}

/// [`eventually_some`] checking at most once every `pace`: for a condition that is itself a
/// request to a rate-limited service (a caller polling its request, as a client would).
#[track_caller]
pub fn eventually_some_every<T, F, Fut>(
    deadline: Duration,
    pace: Duration,
    what: &str,
    condition: F,
) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll(
        deadline,
        what,
        Some(pace),
        condition,
        std::panic::Location::caller(),
    )
}

fn poll<T, F, Fut>(
    deadline: Duration,
    what: &str,
    pace: Option<Duration>,
    mut condition: F,
    caller: &'static std::panic::Location<'static>,
) -> impl Future<Output = T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let what = what.to_owned();
    async move {
        let end = Instant::now() + deadline;
        let mut pause = pace.unwrap_or(FIRST_PAUSE);
        loop {
            let checked = Instant::now();
            if let Some(value) = condition().await {
                return value;
            }
            let now = Instant::now();
            if now >= end {
                panic!("{what}: not within {deadline:?} (waited at {caller})");
            }
            let wait = match pace {
                Some(pace) => pace.saturating_sub(now - checked),
                None => pause,
            };
            tokio::time::sleep(wait.min(end - now)).await;
            pause = next(pause);
        }
    }
}

/// Checks `condition` until it holds; panics, naming `what`, if it has not within `deadline`.
#[track_caller]
pub fn eventually<F, Fut>(
    deadline: Duration,
    what: &str,
    mut condition: F,
) -> impl Future<Output = ()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    eventually_some(deadline, what, move || {
        let check = condition();
        async move { check.await.then_some(()) }
    })
}

/// Takes `probe` until `done` holds for what it gives, or until `deadline`, and returns the
/// last value either way: for a caller whose own assertion then says what is wrong with it.
pub async fn until<T, F, Fut>(deadline: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let end = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        let value = probe().await;
        let now = Instant::now();
        if done(&value) || now >= end {
            return value;
        }
        tokio::time::sleep(pause.min(end - now)).await;
        pause = next(pause);
    }
}

/// [`until`] for a plain thread: the probe is a blocking call.
pub fn until_blocking<T>(
    deadline: Duration,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let end = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        let value = probe();
        let now = Instant::now();
        if done(&value) || now >= end {
            return value;
        }
        std::thread::sleep(pause.min(end - now));
        pause = next(pause);
    }
}

/// [`eventually_some`] for a plain thread: the condition is a blocking call.
#[track_caller]
pub fn eventually_some_blocking<T>(
    deadline: Duration,
    what: &str,
    mut condition: impl FnMut() -> Option<T>,
) -> T {
    let end = Instant::now() + deadline;
    let mut pause = FIRST_PAUSE;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        let now = Instant::now();
        if now >= end {
            panic!("{what}: not within {deadline:?}");
        }
        std::thread::sleep(pause.min(end - now));
        pause = next(pause);
    }
}

/// [`eventually`] for a plain thread: the condition is a blocking call.
#[track_caller]
pub fn eventually_blocking(deadline: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    eventually_some_blocking(deadline, what, || condition().then_some(()));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn returns_as_soon_as_the_condition_holds() {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        let value = eventually_some(Duration::from_secs(10), "the third call", move || {
            let n = seen.fetch_add(1, Ordering::SeqCst) + 1;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(value, 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3, "no call after it held");
    }

    #[tokio::test]
    #[should_panic(expected = "never true: not within")]
    async fn fails_naming_what_never_happened() {
        eventually(Duration::from_millis(20), "never true", || async { false }).await;
    }

    #[tokio::test]
    async fn until_returns_the_last_value_at_the_deadline() {
        let last = until(Duration::from_millis(20), || async { 7 }, |v| *v == 8).await;
        assert_eq!(last, 7);
        let calls = AtomicU32::new(0);
        let held = until(
            Duration::from_secs(10),
            || async { calls.fetch_add(1, Ordering::SeqCst) + 1 },
            |v| *v == 2,
        )
        .await;
        assert_eq!(held, 2);
    }

    #[test]
    fn the_blocking_form_sees_another_thread_s_work() {
        let flag = Arc::new(AtomicU32::new(0));
        let set = flag.clone();
        let worker = std::thread::spawn(move || set.store(1, Ordering::SeqCst));
        eventually_blocking(Duration::from_secs(10), "the flag set", || {
            flag.load(Ordering::SeqCst) == 1
        });
        worker.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "nothing: not within")]
    fn the_blocking_form_fails_at_its_deadline() {
        eventually_blocking(Duration::from_millis(20), "nothing", || false);
    }
}
