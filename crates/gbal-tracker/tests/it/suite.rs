//! The tracker suite: every test takes a fresh tracker, whatever stores it, and both stores
//! must pass all of them (see `main.rs` for the factories each test runs on).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gbal_core::{
    BalanceRequest, BalanceRequestId, Completion, LockOutcome, MessageId, NewBalanceRequest,
    Outcome, PendingRequests, ReplyMatch, SystemClock, Tracker, TrackerError,
};
use gbal_tracker::{expire_all, run_expiry_counting};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::fixture::{
    balance, caller, functional_error, now, request_at, request_expiring, xml_error,
};

fn micros(n: i64) -> time::Duration {
    time::Duration::microseconds(n)
}

/// The request as the store should now hold it, completed with `outcome` at `at`.
fn completed(new: &NewBalanceRequest, outcome: Outcome, at: OffsetDateTime) -> BalanceRequest {
    BalanceRequest {
        completed_at: Some(at),
        outcome: Some(outcome),
        ..BalanceRequest::pending(new)
    }
}

async fn stored(t: &dyn Tracker, new: &NewBalanceRequest, outcome: &Outcome, at: OffsetDateTime) {
    let completion = t
        .complete(new.message_id(), outcome, at)
        .await
        .expect("complete");
    assert_eq!(
        completion,
        Completion::Stored(completed(new, outcome.clone(), at))
    );
}

pub async fn insert_then_read(t: Arc<dyn Tracker>) {
    t.ping().await.expect("the store answers");
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.expect("insert");
    let pending = BalanceRequest::pending(&new);
    assert_eq!(
        t.get(new.id, &new.caller, at).await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(
        t.get_by_message_id(new.message_id(), at).await.unwrap(),
        Some(pending)
    );
    // A v2 request without a TIN.
    let v2 = NewBalanceRequest {
        api_version: gbal_core::ApiVersion::V2,
        grn: gbal_core::Grn::parse_v2("24GB1234567890AB3").unwrap(),
        tin: None,
        ..request_at(at)
    };
    t.insert(&v2).await.expect("insert v2");
    assert_eq!(
        t.get(v2.id, &v2.caller, at).await.unwrap(),
        Some(BalanceRequest::pending(&v2))
    );
    assert_eq!(
        t.get(BalanceRequestId::new(), &new.caller, at)
            .await
            .unwrap(),
        None
    );
}

pub async fn duplicate_id_is_refused(t: Arc<dyn Tracker>) {
    let new = request_at(now());
    t.insert(&new).await.expect("insert");
    assert!(matches!(
        t.insert(&new).await,
        Err(TrackerError::DuplicateId)
    ));
    // Another id whose first 12 bytes (the message id) are the same.
    let mut bytes = *new.id.as_uuid().as_bytes();
    bytes[15] ^= 0xff;
    let twin = NewBalanceRequest {
        id: BalanceRequestId::from_uuid(uuid::Uuid::from_bytes(bytes)),
        ..request_at(now())
    };
    assert_eq!(twin.message_id(), new.message_id());
    assert!(matches!(
        t.insert(&twin).await,
        Err(TrackerError::DuplicateId)
    ));
}

pub async fn complete_stores_each_outcome(t: Arc<dyn Tracker>) {
    let at = now();
    for outcome in [
        balance("12345678.90"),
        balance("123456789012345678901234.56"),
        balance("-0.05"),
        functional_error(),
        xml_error(),
    ] {
        let new = request_at(at);
        t.insert(&new).await.unwrap();
        let done_at = at + micros(1_500_001);
        stored(t.as_ref(), &new, &outcome, done_at).await;
        let read = t.get(new.id, &new.caller, done_at).await.unwrap().unwrap();
        assert_eq!(read, completed(&new, outcome.clone(), done_at));
        assert_eq!(
            t.get_by_message_id(new.message_id(), done_at)
                .await
                .unwrap(),
            Some(read)
        );
    }
    // The amount keeps its exact digits, trailing zeros dropped.
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    stored(t.as_ref(), &new, &balance("12345678.90"), at).await;
    let read = t.get(new.id, &new.caller, at).await.unwrap().unwrap();
    match read.outcome {
        Some(Outcome::Success(b)) => assert_eq!(b.amount.to_string(), "12345678.9"),
        other => panic!("expected a balance, got {other:?}"),
    }
}

pub async fn identical_repeat_is_duplicate(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    stored(t.as_ref(), &new, &functional_error(), at).await;
    let later = at + micros(2_000_000);
    assert_eq!(
        t.complete(new.message_id(), &functional_error(), later)
            .await
            .unwrap(),
        Completion::Duplicate(completed(&new, functional_error(), at))
    );
    // Equal amounts are equal, however they were written.
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    stored(t.as_ref(), &new, &balance("50000.00"), at).await;
    assert!(matches!(
        t.complete(new.message_id(), &balance("50000"), later)
            .await
            .unwrap(),
        Completion::Duplicate(_)
    ));
}

pub async fn different_outcome_conflicts_and_changes_nothing(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    stored(t.as_ref(), &new, &balance("100.00"), at).await;
    let first = completed(&new, balance("100"), at);
    let later = at + micros(3_000_000);
    for other in [balance("100.01"), functional_error(), xml_error()] {
        assert_eq!(
            t.complete(new.message_id(), &other, later).await.unwrap(),
            Completion::Conflict(first.clone())
        );
    }
    assert_eq!(
        t.get(new.id, &new.caller, later).await.unwrap(),
        Some(first)
    );
}

pub async fn unknown_message_id_is_not_found(t: Arc<dyn Tracker>) {
    let unknown = BalanceRequestId::new().message_id();
    assert_eq!(
        t.complete(unknown, &balance("1"), now()).await.unwrap(),
        Completion::NotFound
    );
    assert_eq!(t.get_by_message_id(unknown, now()).await.unwrap(), None);
    let zeros = MessageId::from_bytes([0; MessageId::LEN]);
    assert_eq!(
        t.complete(zeros, &xml_error(), now()).await.unwrap(),
        Completion::NotFound
    );
}

pub async fn expired_request_is_not_found(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    // At expires_at the request is gone for every purpose.
    assert_eq!(
        t.complete(new.message_id(), &balance("1"), new.expires_at)
            .await
            .unwrap(),
        Completion::NotFound
    );
    // Nothing was recorded: a microsecond earlier it is still pending.
    let before = new.expires_at - micros(1);
    assert_eq!(
        t.get(new.id, &new.caller, before).await.unwrap(),
        Some(BalanceRequest::pending(&new))
    );
    stored(t.as_ref(), &new, &balance("1"), before).await;
}

pub async fn another_caller_sees_nothing(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    assert_eq!(t.get(new.id, &caller("client-2"), at).await.unwrap(), None);
    assert_eq!(t.get(new.id, &caller("CLIENT-1"), at).await.unwrap(), None);
    assert!(
        t.get(new.id, &caller("client-1"), at)
            .await
            .unwrap()
            .is_some()
    );
}

pub async fn nothing_is_read_past_expiry(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    let last = new.expires_at - micros(1);
    assert!(t.get(new.id, &new.caller, last).await.unwrap().is_some());
    assert!(
        t.get_by_message_id(new.message_id(), last)
            .await
            .unwrap()
            .is_some()
    );
    for after in [new.expires_at, new.expires_at + time::Duration::DAY] {
        assert_eq!(t.get(new.id, &new.caller, after).await.unwrap(), None);
        assert_eq!(
            t.get_by_message_id(new.message_id(), after).await.unwrap(),
            None
        );
    }
    // A completed request expires the same way.
    stored(t.as_ref(), &new, &xml_error(), at).await;
    assert_eq!(
        t.get(new.id, &new.caller, new.expires_at).await.unwrap(),
        None
    );
}

pub async fn wait_wakes_on_completion(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    // The timeout is far away: only the completion can end the wait before it (whether it
    // comes while the waiter waits or before it starts).
    let timeout = Duration::from_secs(60);
    let waiter = {
        let t = Arc::clone(&t);
        let id = new.id;
        tokio::spawn(async move {
            let started = Instant::now();
            let answer = t.wait_for_completion(id, at, timeout).await;
            (answer, started.elapsed())
        })
    };
    stored(t.as_ref(), &new, &balance("42.42"), at).await;
    let (answer, elapsed) = waiter.await.unwrap();
    assert_eq!(answer.unwrap(), Some(completed(&new, balance("42.42"), at)));
    assert!(elapsed < timeout, "ended by its timeout: {elapsed:?}");
    // A completed request is answered without waiting for the timeout.
    let started = Instant::now();
    assert!(
        t.wait_for_completion(new.id, at, timeout)
            .await
            .unwrap()
            .unwrap()
            .is_completed()
    );
    assert!(started.elapsed() < timeout);
}

pub async fn wait_times_out_with_the_pending_request(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    let started = Instant::now();
    let answer = t
        .wait_for_completion(new.id, at, Duration::from_millis(300))
        .await
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(answer, Some(BalanceRequest::pending(&new)));
    // Not before its timeout (the timer guarantees it); it does come back ("eventually": 5 s
    // for a 300 ms timeout leaves room for a slow machine).
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // An unknown request is answered without waiting for the timeout.
    let timeout = Duration::from_secs(60);
    let started = Instant::now();
    assert_eq!(
        t.wait_for_completion(BalanceRequestId::new(), at, timeout)
            .await
            .unwrap(),
        None
    );
    assert!(started.elapsed() < timeout);
}

pub async fn locks(t: Arc<dyn Tracker>) {
    let at = now();
    let ttl = Duration::from_secs(60);
    let secs = |n: i64| at + time::Duration::seconds(n);
    assert_eq!(
        t.acquire_lock("client-1/GRN1", at, ttl).await.unwrap(),
        LockOutcome::Acquired
    );
    // Another key is another lock.
    assert_eq!(
        t.acquire_lock("client-1/GRN2", at, ttl).await.unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(10), ttl)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_secs(50)
        }
    );
    // The refused attempt did not extend the lock.
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(59), ttl)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(60) - micros(1), ttl)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_micros(1)
        }
    );
    // After its TTL it can be taken again, for a fresh TTL.
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(60), ttl)
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(61), ttl)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_secs(59)
        }
    );
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(200), Duration::from_millis(1500))
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        t.acquire_lock("client-1/GRN1", secs(201), ttl)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_millis(500)
        }
    );
}

pub async fn lock_and_insert_records_only_under_a_free_lock(t: Arc<dyn Tracker>) {
    let at = now();
    let ttl = Duration::from_secs(60);
    let secs = |n: i64| at + time::Duration::seconds(n);
    let first = request_at(at);
    assert_eq!(
        t.lock_and_insert("client-1/GRN1", at, ttl, &first)
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    assert_eq!(
        t.get(first.id, &first.caller, at).await.unwrap(),
        Some(BalanceRequest::pending(&first))
    );
    // Held: the answer says for how long, and the request is not recorded.
    let refused = request_at(secs(10));
    assert_eq!(
        t.lock_and_insert("client-1/GRN1", secs(10), ttl, &refused)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_secs(50)
        }
    );
    assert_eq!(
        t.get_by_message_id(refused.message_id(), secs(10))
            .await
            .unwrap(),
        None
    );
    // The refusal did not extend the lock; once it lapses it is taken again.
    let later = request_at(secs(60));
    assert_eq!(
        t.lock_and_insert("client-1/GRN1", secs(60), ttl, &later)
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    assert!(
        t.get_by_message_id(later.message_id(), secs(60))
            .await
            .unwrap()
            .is_some()
    );
    // A request whose id exists: the lock is taken, the existing row is untouched.
    let again = NewBalanceRequest {
        caller: caller("client-2"),
        ..first.clone()
    };
    assert!(matches!(
        t.lock_and_insert("client-2/GRN1", at, ttl, &again).await,
        Err(TrackerError::DuplicateId)
    ));
    assert!(matches!(
        t.acquire_lock("client-2/GRN1", secs(1), ttl).await.unwrap(),
        LockOutcome::Held { .. }
    ));
    assert_eq!(
        t.get(first.id, &first.caller, at).await.unwrap(),
        Some(BalanceRequest::pending(&first))
    );
}

pub async fn complete_matching_stores_only_a_matching_reply(t: Arc<dyn Tracker>) {
    let at = now();
    let grn = |text: &str| ReplyMatch::Grn(text.to_owned());
    // A balance names the GRN, in any ASCII case.
    let by_grn = request_at(at);
    t.insert(&by_grn).await.unwrap();
    for wrong in [
        "21GB3300BE0001067A001018",
        "21GB3300BE0001067A00101",
        "21GB3300BE0001067A001017 ",
    ] {
        assert_eq!(
            t.complete_matching(by_grn.message_id(), &balance("1"), &grn(wrong), at)
                .await
                .unwrap(),
            Completion::Unmatched(BalanceRequest::pending(&by_grn)),
            "{wrong:?}"
        );
    }
    assert_eq!(
        t.get(by_grn.id, &by_grn.caller, at).await.unwrap(),
        Some(BalanceRequest::pending(&by_grn)),
        "an unmatched reply changes nothing"
    );
    assert_eq!(
        t.complete_matching(
            by_grn.message_id(),
            &balance("7.5"),
            &grn("21gb3300be0001067A001017"),
            at
        )
        .await
        .unwrap(),
        Completion::Stored(completed(&by_grn, balance("7.5"), at))
    );
    // Once completed, the outcome decides: the caller checks the request that comes back.
    assert!(matches!(
        t.complete_matching(by_grn.message_id(), &balance("7.5"), &grn("OTHER"), at)
            .await
            .unwrap(),
        Completion::Duplicate(_)
    ));
    assert!(matches!(
        t.complete_matching(by_grn.message_id(), &balance("8"), &grn("OTHER"), at)
            .await
            .unwrap(),
        Completion::Conflict(_)
    ));
    // An error names the IE034's message ref, exactly.
    let by_ref = request_at(at);
    t.insert(&by_ref).await.unwrap();
    let reference = by_ref.message_ref.as_str();
    let other_case: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    let mut wrongs = vec![format!("{reference}0"), String::new()];
    // (A reference of digits only has no other case.)
    if other_case != reference {
        wrongs.push(other_case);
    }
    for wrong in wrongs {
        assert!(matches!(
            t.complete_matching(
                by_ref.message_id(),
                &functional_error(),
                &ReplyMatch::MessageRef(wrong),
                at
            )
            .await
            .unwrap(),
            Completion::Unmatched(_)
        ));
    }
    assert_eq!(
        t.complete_matching(
            by_ref.message_id(),
            &functional_error(),
            &ReplyMatch::MessageRef(reference.to_owned()),
            at
        )
        .await
        .unwrap(),
        Completion::Stored(completed(&by_ref, functional_error(), at))
    );
    assert_eq!(
        t.complete_matching(
            MessageId::from_bytes([7; 12]),
            &xml_error(),
            &ReplyMatch::MessageRef(reference.to_owned()),
            at
        )
        .await
        .unwrap(),
        Completion::NotFound
    );
}

pub async fn a_watch_sees_a_completion_that_came_before_the_wait(t: Arc<dyn Tracker>) {
    let at = now();
    let new = request_at(at);
    t.insert(&new).await.unwrap();
    let watch = t.watch(new.id, at);
    stored(t.as_ref(), &new, &balance("3"), at).await;
    let timeout = Duration::from_secs(60);
    let started = Instant::now();
    let answer = watch.wait(timeout).await.unwrap();
    assert_eq!(answer, Some(completed(&new, balance("3"), at)));
    assert!(
        started.elapsed() < timeout,
        "it did not wait for the timeout"
    );
    // No completion: the pending request once the time is up; an unknown one: nothing.
    let pending = request_at(at);
    t.insert(&pending).await.unwrap();
    let started = Instant::now();
    let answer = t
        .watch(pending.id, at)
        .wait(Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(answer, Some(BalanceRequest::pending(&pending)));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        t.watch(BalanceRequestId::new(), at)
            .wait(Duration::from_millis(50))
            .await
            .unwrap(),
        None
    );
}

pub async fn expire_deletes_only_expired_rows_in_batches(t: Arc<dyn Tracker>) {
    let at = now();
    let hour_ago = at - time::Duration::HOUR;
    let mut expired = Vec::new();
    for i in 0..25 {
        // Some expire exactly now: `expires_at <= now` is expired.
        let new = request_expiring(hour_ago, at - micros(i));
        t.insert(&new).await.unwrap();
        expired.push(new);
    }
    let mut live = Vec::new();
    for _ in 0..5 {
        let new = request_expiring(hour_ago, at + micros(1));
        t.insert(&new).await.unwrap();
        live.push(new);
    }
    // One expired request was completed: it goes too.
    stored(t.as_ref(), &expired[3], &balance("1"), hour_ago).await;
    for key in ["lapsed-1", "lapsed-2", "lapsed-3"] {
        t.acquire_lock(key, hour_ago, Duration::from_secs(60))
            .await
            .unwrap();
    }
    for key in ["live-1", "live-2"] {
        t.acquire_lock(key, at, Duration::from_secs(60))
            .await
            .unwrap();
    }

    // 10 requests and all 3 lapsed locks, then 10 requests, then the last 5.
    assert_eq!(t.expire(at, 10).await.unwrap(), 13);
    assert_eq!(t.expire(at, 10).await.unwrap(), 10);
    assert_eq!(t.expire(at, 10).await.unwrap(), 5);
    assert_eq!(t.expire(at, 10).await.unwrap(), 0);

    // Deleted, not just hidden: even an earlier "now" finds nothing.
    for new in &expired {
        assert_eq!(t.get(new.id, &new.caller, hour_ago).await.unwrap(), None);
        assert_eq!(
            t.wait_for_completion(new.id, hour_ago, Duration::ZERO)
                .await
                .unwrap(),
            None
        );
    }
    for new in &live {
        assert_eq!(
            t.get(new.id, &new.caller, at).await.unwrap(),
            Some(BalanceRequest::pending(new))
        );
    }
    for key in ["live-1", "live-2"] {
        assert!(matches!(
            t.acquire_lock(key, at, Duration::from_secs(60))
                .await
                .unwrap(),
            LockOutcome::Held { .. }
        ));
    }
    assert_eq!(expire_all(t.as_ref(), at, 2).await.unwrap(), 0);
    // A microsecond later the live ones have expired too.
    assert_eq!(expire_all(t.as_ref(), at + micros(1), 2).await.unwrap(), 5);
}

pub async fn pending_counts_live_requests_without_an_outcome(t: Arc<dyn Tracker>) {
    let at = now();
    let secs = time::Duration::seconds;
    let pending = |count, oldest: Option<i64>| PendingRequests {
        count,
        oldest_age: oldest.map(|s| Duration::from_secs(s.unsigned_abs())),
    };
    assert_eq!(t.pending(at).await.unwrap(), pending(0, None));

    // Three waiting for their reply (one of them another caller's, over v2), one answered,
    // and one that expires exactly now (`expires_at <= now` is expired).
    let oldest = request_at(at - secs(40));
    let middle = NewBalanceRequest {
        caller: caller("client-2"),
        api_version: gbal_core::ApiVersion::V2,
        grn: gbal_core::Grn::parse_v2("24GB1234567890AB3").unwrap(),
        tin: None,
        ..request_at(at - secs(20))
    };
    let newest = request_at(at - secs(10));
    let answered = request_at(at - secs(50));
    let lapsed = request_expiring(at - time::Duration::HOUR, at);
    for new in [&oldest, &middle, &newest, &answered, &lapsed] {
        t.insert(new).await.unwrap();
    }
    stored(t.as_ref(), &answered, &balance("1"), at - secs(45)).await;
    assert_eq!(t.pending(at).await.unwrap(), pending(3, Some(40)));
    // The oldest grows older until its reply comes; then the next is the oldest.
    assert_eq!(t.pending(at + secs(5)).await.unwrap(), pending(3, Some(45)));
    stored(t.as_ref(), &oldest, &functional_error(), at).await;
    assert_eq!(t.pending(at).await.unwrap(), pending(2, Some(20)));
    // Expired requests are not counted, answered or not, deleted or not.
    assert_eq!(
        t.pending(newest.expires_at).await.unwrap(),
        pending(0, None)
    );
    assert_eq!(
        t.pending(middle.expires_at).await.unwrap(),
        pending(1, Some(3600 - 10))
    );
}

pub async fn concurrent_inserts_get_distinct_ids(t: Arc<dyn Tracker>) {
    let at = now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let t = Arc::clone(&t);
            tokio::spawn(async move {
                let new = request_at(at);
                t.insert(&new).await.map(|()| new)
            })
        })
        .collect();
    let mut inserted = Vec::new();
    for task in tasks {
        inserted.push(task.await.unwrap().expect("every insert succeeds"));
    }
    let ids: HashSet<_> = inserted.iter().map(|n| n.id).collect();
    let message_ids: HashSet<_> = inserted.iter().map(|n| n.message_id()).collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(message_ids.len(), 100);
    for new in &inserted {
        assert_eq!(
            t.get(new.id, &new.caller, at).await.unwrap(),
            Some(BalanceRequest::pending(new))
        );
    }
}

pub async fn concurrent_completions_store_once(t: Arc<dyn Tracker>) {
    let at = now();
    for round in 0..20 {
        let new = request_at(at);
        t.insert(&new).await.unwrap();
        let (a, b) = if round % 2 == 0 {
            (balance("10"), balance("10.00"))
        } else {
            (balance("10"), functional_error())
        };
        let complete = |outcome: Outcome| {
            let t = Arc::clone(&t);
            let message_id = new.message_id();
            tokio::spawn(async move { t.complete(message_id, &outcome, at).await })
        };
        let (first, second) = (complete(a.clone()), complete(b.clone()));
        let results = [
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        ];
        let winners: Vec<_> = results
            .iter()
            .filter_map(|c| match c {
                Completion::Stored(r) => r.outcome.clone(),
                _ => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let winner = &winners[0];
        for c in &results {
            match c {
                Completion::Stored(_) => {}
                Completion::Duplicate(r) => {
                    assert_eq!(a, b, "round {round}");
                    assert_eq!(r.outcome.as_ref(), Some(winner));
                }
                Completion::Conflict(r) => {
                    assert_ne!(a, b, "round {round}");
                    assert_eq!(r.outcome.as_ref(), Some(winner));
                }
                Completion::NotFound | Completion::Unmatched(_) => {
                    panic!("round {round}: {c:?}")
                }
            }
        }
        let read = t.get(new.id, &new.caller, at).await.unwrap().unwrap();
        assert_eq!(read.outcome.as_ref(), Some(winner));
    }
}

pub async fn concurrent_lock_attempts_admit_one(t: Arc<dyn Tracker>) {
    let at = now();
    let ttl = Duration::from_secs(60);
    let attempt_all = |when: OffsetDateTime| {
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let t = Arc::clone(&t);
                tokio::spawn(async move { t.acquire_lock("client-1/hot", when, ttl).await })
            })
            .collect();
        async move {
            let mut acquired = 0;
            for task in tasks {
                match task.await.unwrap().expect("lock attempt") {
                    LockOutcome::Acquired => acquired += 1,
                    LockOutcome::Held { retry_after } => {
                        assert!(retry_after <= ttl && retry_after > Duration::ZERO);
                    }
                }
            }
            acquired
        }
    };
    assert_eq!(attempt_all(at).await, 1);
    assert_eq!(attempt_all(at + time::Duration::seconds(30)).await, 0);
    assert_eq!(attempt_all(at + time::Duration::seconds(60)).await, 1);
}

pub async fn concurrent_expiry_jobs_delete_each_row_once(t: Arc<dyn Tracker>) {
    let at = now();
    let hour_ago = at - time::Duration::HOUR;
    for i in 0..120 {
        t.insert(&request_expiring(hour_ago, at - micros(i)))
            .await
            .unwrap();
    }
    for i in 0..30 {
        t.insert(&request_at(at)).await.unwrap();
        t.acquire_lock(&format!("lapsed-{i}"), hour_ago, Duration::from_secs(60))
            .await
            .unwrap();
    }
    let jobs: Vec<_> = (0..3)
        .map(|_| {
            let t = Arc::clone(&t);
            tokio::spawn(async move { expire_all(t.as_ref(), at, 7).await })
        })
        .collect();
    let mut total = 0;
    for job in jobs {
        total += job.await.unwrap().expect("no expiry job fails");
    }
    assert_eq!(total, 150);
    assert_eq!(t.expire(at, 1000).await.unwrap(), 0);
}

pub async fn expiry_job_runs_until_cancelled(t: Arc<dyn Tracker>) {
    let hour_ago = now() - time::Duration::HOUR;
    for _ in 0..12 {
        t.insert(&request_expiring(hour_ago, hour_ago + micros(1)))
            .await
            .unwrap();
    }
    let live = request_at(now());
    t.insert(&live).await.unwrap();
    let cancel = CancellationToken::new();
    let deleted = Arc::new(AtomicU64::new(0));
    let job = {
        let (t, cancel, deleted) = (Arc::clone(&t), cancel.clone(), Arc::clone(&deleted));
        tokio::spawn(async move {
            run_expiry_counting(
                t,
                Arc::new(SystemClock),
                Duration::from_millis(50),
                5,
                cancel,
                &deleted,
            )
            .await
        })
    };
    gbal_testkit::eventually(Duration::from_secs(30), "the job deletes", || {
        let n = deleted.load(Ordering::Relaxed);
        async move { n >= 12 }
    })
    .await;
    // More expired rows are picked up on a later interval.
    t.insert(&request_expiring(hour_ago, hour_ago + micros(1)))
        .await
        .unwrap();
    gbal_testkit::eventually(Duration::from_secs(30), "the job runs again", || {
        let n = deleted.load(Ordering::Relaxed);
        async move { n >= 13 }
    })
    .await;
    cancel.cancel();
    let total = tokio::time::timeout(Duration::from_secs(10), job)
        .await
        .expect("the job stops when cancelled")
        .unwrap();
    assert_eq!(total, 13);
    assert_eq!(deleted.load(Ordering::Relaxed), 13);
    assert!(t.get(live.id, &live.caller, now()).await.unwrap().is_some());
}

pub async fn release_frees_only_its_own_lock_and_pending_request(t: Arc<dyn Tracker>) {
    let at = now();
    let ttl = Duration::from_secs(60);
    let secs = |n: i64| at + time::Duration::seconds(n);
    let (owner, stranger) = (BalanceRequestId::new(), BalanceRequestId::new());
    // A lock taken alone: only its owner frees it.
    assert_eq!(
        t.lock("client-1/solo", owner, at, ttl).await.unwrap(),
        LockOutcome::Acquired
    );
    t.release("client-1/solo", stranger, None).await.unwrap();
    assert!(matches!(
        t.acquire_lock("client-1/solo", secs(1), ttl).await.unwrap(),
        LockOutcome::Held { .. }
    ));
    t.release("client-1/solo", owner, None).await.unwrap();
    assert_eq!(
        t.acquire_lock("client-1/solo", secs(1), ttl).await.unwrap(),
        LockOutcome::Acquired,
        "released: free at once, not after its TTL"
    );
    // A lock with its pending request: both go, in one release.
    let new = request_at(at);
    assert_eq!(
        t.lock_and_insert("client-1/recorded", at, ttl, &new)
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    t.release("client-1/recorded", new.id, Some(new.id))
        .await
        .unwrap();
    assert_eq!(t.get(new.id, &new.caller, at).await.unwrap(), None);
    assert_eq!(
        t.get_by_message_id(new.message_id(), at).await.unwrap(),
        None
    );
    assert_eq!(
        t.lock("client-1/recorded", stranger, secs(1), ttl)
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    // A request that has its outcome stays; a lock that lapsed and was taken by another
    // check stays that check's.
    let answered = request_at(at);
    t.insert(&answered).await.unwrap();
    stored(t.as_ref(), &answered, &balance("5"), at).await;
    t.lock("client-1/lapsed", owner, at, ttl).await.unwrap();
    assert_eq!(
        t.lock("client-1/lapsed", stranger, secs(60), ttl)
            .await
            .unwrap(),
        LockOutcome::Acquired
    );
    t.release("client-1/lapsed", owner, Some(answered.id))
        .await
        .unwrap();
    assert_eq!(
        t.get(answered.id, &answered.caller, at).await.unwrap(),
        Some(completed(&answered, balance("5"), at))
    );
    assert_eq!(
        t.acquire_lock("client-1/lapsed", secs(61), ttl)
            .await
            .unwrap(),
        LockOutcome::Held {
            retry_after: Duration::from_secs(59)
        }
    );
    // Releasing what is gone already is no error.
    t.release("client-1/nothing", owner, Some(BalanceRequestId::new()))
        .await
        .unwrap();
}

pub async fn insert_completed_records_an_answered_request(t: Arc<dyn Tracker>) {
    let at = now();
    for outcome in [balance("12345678.90"), functional_error(), xml_error()] {
        let new = request_at(at);
        let done_at = at + micros(250_000);
        t.insert_completed(&new, &outcome, done_at).await.unwrap();
        let read = t.get(new.id, &new.caller, done_at).await.unwrap();
        assert_eq!(read, Some(completed(&new, outcome.clone(), done_at)));
        // As any completed request: a repeat is a duplicate, another outcome a conflict.
        assert!(matches!(
            t.complete(new.message_id(), &outcome, done_at)
                .await
                .unwrap(),
            Completion::Duplicate(_)
        ));
        assert!(matches!(
            t.insert_completed(&new, &outcome, done_at).await,
            Err(TrackerError::DuplicateId)
        ));
    }
}

pub async fn a_wait_ends_with_nothing_once_its_request_expired(t: Arc<dyn Tracker>) {
    let at = now();
    // Expires while waited for: the wait's last read, at its end, finds nothing.
    let short = request_expiring(at, at + micros(300_000));
    t.insert(&short).await.unwrap();
    let answer = t
        .wait_for_completion(short.id, at, Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(answer, None, "a request past its expires_at is not read");
    let short = request_expiring(at, at + micros(300_000));
    t.insert(&short).await.unwrap();
    let watch = t.watch(short.id, at);
    assert_eq!(watch.wait(Duration::from_millis(600)).await.unwrap(), None);
    // Waited for after its expiry (not yet deleted): nothing at once.
    let lapsed = request_expiring(at - time::Duration::HOUR, at);
    t.insert(&lapsed).await.unwrap();
    let started = Instant::now();
    assert_eq!(
        t.wait_for_completion(lapsed.id, at, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    // Alive all along: the pending request.
    let live = request_at(at);
    t.insert(&live).await.unwrap();
    assert_eq!(
        t.watch(live.id, at)
            .wait(Duration::from_millis(100))
            .await
            .unwrap(),
        Some(BalanceRequest::pending(&live))
    );
}
