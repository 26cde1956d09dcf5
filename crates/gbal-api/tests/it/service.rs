//! `BalanceService` against small fakes: the paths the simulator cannot reach.

use std::sync::Arc;
use std::time::Duration;

use gbal_core::{
    AccessCode, ApiVersion, Balance, BalanceConfig, BalanceQuery, BalanceService, CallContext,
    CallerId, CheckError, CheckOutcome, Grn, MessageId, Outcome, ReplyError, ReplyFields,
    ReplyRecorded, Submission, SystemClock, Tin, Tracker, TrackerError,
};
use gbal_tracker::SqliteTracker;

use crate::support::{FakeGms, FakeTracker, Method, Times, defaults};

/// SQLite, with the first `duplicates` inserts refused as duplicates and, if `lock_held`,
/// every lock held for 42 s.
async fn scripted(duplicates: usize, lock_held: bool) -> Arc<FakeTracker> {
    let tracker = FakeTracker::in_memory().await;
    tracker.fail(Method::Insert, Times::First(duplicates), || {
        TrackerError::DuplicateId
    });
    if lock_held {
        tracker.hold_locks(Times::Always, Duration::from_secs(42));
    }
    tracker
}

fn query() -> BalanceQuery {
    BalanceQuery {
        grn: Grn::parse_v2("26GB0000010000021").unwrap(),
        access_code: AccessCode::parse("AC01").unwrap(),
        tin: Some(Tin::parse("GB954131533000").unwrap()),
    }
}

fn balance() -> Outcome {
    Outcome::Success(Balance {
        amount: "1.5".parse().unwrap(),
        currency: "GBP".parse().unwrap(),
    })
}

fn service(tracker: Arc<dyn Tracker>, answer: Outcome) -> BalanceService {
    let gms = FakeGms::new(move |_| Ok(Submission::Answered(answer.clone())));
    BalanceService::new(tracker, gms, Arc::new(SystemClock), defaults::balance())
}

fn caller() -> CallerId {
    CallerId::parse("service-test").unwrap()
}

#[tokio::test]
async fn a_taken_id_is_retried_with_a_fresh_one_up_to_three_times() {
    let tracker = scripted(2, false).await;
    let service = service(tracker.clone(), balance());
    let outcome = service
        .check(&caller(), &query(), ApiVersion::V1, &CallContext::default())
        .await
        .unwrap();
    assert!(matches!(outcome, CheckOutcome::Completed(a) if *a.outcome() == balance()));
    assert_eq!(tracker.calls(Method::Insert), 3);

    let tracker = scripted(3, false).await;
    let service = self::service(tracker.clone(), balance());
    let error = service
        .check(&caller(), &query(), ApiVersion::V1, &CallContext::default())
        .await
        .unwrap_err();
    assert!(matches!(error, CheckError::Internal(_)), "{error:?}");
}

#[tokio::test]
async fn a_held_lock_is_rate_limited_with_its_time_left_and_nothing_recorded() {
    let tracker = scripted(0, true).await;
    let service = service(tracker.clone(), balance());
    let error = service
        .check(&caller(), &query(), ApiVersion::V2, &CallContext::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, CheckError::RateLimited { retry_after } if retry_after == Duration::from_secs(42))
    );
    assert_eq!(tracker.calls(Method::Insert), 0);
}

#[tokio::test]
async fn a_lock_never_has_more_than_its_ttl_left() {
    // A check that began just before the holder's and lost the race is told the holder's
    // expiry from its own, earlier, now.
    let tracker = FakeTracker::in_memory().await;
    tracker.hold_locks(Times::Always, Duration::from_millis(60_002));
    let service = service(tracker, balance());
    let error = service
        .check(&caller(), &query(), ApiVersion::V1, &CallContext::default())
        .await
        .unwrap_err();
    assert!(
        matches!(error, CheckError::RateLimited { retry_after } if retry_after == Duration::from_secs(60)),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_stored_request_carries_what_was_asked() {
    let tracker: Arc<dyn Tracker> = Arc::new(SqliteTracker::in_memory().await.unwrap());
    let service = service(Arc::clone(&tracker), balance());
    let CheckOutcome::Completed(answered) = service
        .check(&caller(), &query(), ApiVersion::V1, &CallContext::default())
        .await
        .unwrap()
    else {
        panic!("completed expected");
    };
    let request = answered.request();
    assert_eq!(request.outcome.as_ref(), Some(answered.outcome()));
    assert_eq!(request.caller, caller());
    assert_eq!(request.api_version, ApiVersion::V1);
    assert_eq!(request.grn.as_str(), "26GB0000010000021");
    assert_eq!(
        request.expires_at - request.requested_at,
        time::Duration::hours(1)
    );
    assert_eq!(request.message_id, request.id.message_id());
    // A second check within the lock's TTL is refused by the tracker's lock.
    let error = service
        .check(&caller(), &query(), ApiVersion::V2, &CallContext::default())
        .await
        .unwrap_err();
    assert!(matches!(error, CheckError::RateLimited { .. }));
}

#[tokio::test]
async fn record_reply_cross_checks_and_first_wins() {
    let tracker: Arc<dyn Tracker> = Arc::new(SqliteTracker::in_memory().await.unwrap());
    let gms = FakeGms::new(|_| Ok(Submission::Accepted));
    let config = BalanceConfig {
        sync_wait: Duration::from_millis(10),
        ..defaults::balance()
    };
    let service = BalanceService::new(Arc::clone(&tracker), gms, Arc::new(SystemClock), config);
    let CheckOutcome::Pending(request) = service
        .check(&caller(), &query(), ApiVersion::V1, &CallContext::default())
        .await
        .unwrap()
    else {
        panic!("pending expected");
    };
    let fields = |outcome: Outcome, grn: Option<&str>, original: Option<&str>| ReplyFields {
        addressed_to: Some(request.message_id),
        original_ref: original.map(str::to_owned),
        grn: grn.map(str::to_owned),
        outcome,
    };
    let unknown = MessageId::from_bytes([1; 12]);
    assert!(matches!(
        service
            .record_reply(unknown, &fields(balance(), Some("26GB0000010000021"), None))
            .await,
        Err(ReplyError::NotFound)
    ));
    let mut elsewhere = fields(balance(), Some("26GB0000010000021"), None);
    elsewhere.addressed_to = Some(unknown);
    assert!(matches!(
        service.record_reply(request.message_id, &elsewhere).await,
        Err(ReplyError::Mismatch(_))
    ));
    assert!(matches!(
        service
            .record_reply(
                request.message_id,
                &fields(balance(), Some("26GB0000010000039"), None)
            )
            .await,
        Err(ReplyError::Mismatch(_))
    ));
    let refused = Outcome::FunctionalError {
        errors: gbal_core::Rejection::WrongAccessCode.errors(),
    };
    assert!(matches!(
        service
            .record_reply(
                request.message_id,
                &fields(refused.clone(), None, Some("zzzzzzzzzzzzzz"))
            )
            .await,
        Err(ReplyError::Mismatch(_))
    ));
    // The GRN matches without regard to case.
    assert!(matches!(
        service
            .record_reply(
                request.message_id,
                &fields(balance(), Some("26gb0000010000021"), None)
            )
            .await,
        Ok(ReplyRecorded::Stored(_))
    ));
    assert!(matches!(
        service
            .record_reply(
                request.message_id,
                &fields(balance(), Some("26GB0000010000021"), None)
            )
            .await,
        Ok(ReplyRecorded::Duplicate(_))
    ));
    assert!(matches!(
        service
            .record_reply(
                request.message_id,
                &fields(refused, None, Some(request.message_ref.as_str()))
            )
            .await,
        Err(ReplyError::Conflict(_))
    ));
    let stored = service.get(request.id, &caller()).await.unwrap().unwrap();
    assert_eq!(stored.outcome, Some(balance()));
}
