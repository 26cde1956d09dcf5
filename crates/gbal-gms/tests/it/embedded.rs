//! The embedded simulator: the full message path in process, late replies to the sink, the
//! behaviours, and the query limit on a controlled clock.

use std::time::{Duration, Instant};

use gbal_core::{Balance, Gms, GmsError, Outcome, Submission};
use gbal_gms::simulator::simulated_xml_error;
use gbal_gms::{Dataset, EmbeddedSimulator, QueryLimit};
use gbal_testkit::TestClock;
use gbal_testkit::gms_rules::Case;
use time::macros::datetime;

use crate::defaults;
use crate::support::{PATIENCE, RecordingSink, context, query};

const TIN: Option<&str> = Some("GB954131533000");

fn dataset() -> Dataset {
    Dataset::from_toml(
        r#"
        [[guarantees]]
        grn = "26GB0000010000012"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "50000.00"

        [[guarantees]]
        grn = "26GB0000090000011"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        reply_delay = "200ms"

        [[guarantees]]
        grn = "26GB0000090000020"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        reply_delay = "100ms"
        malformed_reply = true

        [[guarantees]]
        grn = "26GB0000090000029"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        no_reply = true

        [[guarantees]]
        grn = "26GB0000090000037"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        ie917_reply = true

        [[guarantees]]
        grn = "26GB0000090000045"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        submit_status = 503

        [[guarantees]]
        grn = "26GB0000090000046"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        submit_status = 429

        [[guarantees]]
        grn = "26GB0000090000053"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        malformed_reply = true
        "#,
    )
    .expect("dataset")
}

fn balance(amount: &str) -> Outcome {
    Outcome::Success(Balance {
        amount: amount.parse().expect("amount"),
        currency: "GBP".parse().expect("currency"),
    })
}

#[tokio::test]
async fn answers_at_once_through_the_full_message_path() {
    let (sink, mut delivered) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    assert_eq!(sim.transport(), "simulator");
    let cases = [
        (query("26GB0000010000012", TIN, "AC01"), balance("50000")),
        (query("26GB0000010000012", None, "ac01"), balance("50000")),
        (
            query("26GB0000010000012", TIN, "AC02"),
            Outcome::FunctionalError {
                errors: Case::WrongAccessCode.errors(),
            },
        ),
        (
            query("26GB0000010000012", Some("GB1"), "AC01"),
            Outcome::FunctionalError {
                errors: Case::UnknownTin.errors(),
            },
        ),
        (
            query("26GB0000090000037", TIN, "AC01"),
            Outcome::XmlError {
                errors: vec![simulated_xml_error()],
            },
        ),
    ];
    for (q, expected) in cases {
        assert_eq!(
            sim.submit(&q, &context()).await,
            Ok(Submission::Answered(expected)),
            "{q:?}"
        );
    }
    assert!(delivered.try_recv().is_err(), "nothing goes to the sink");
}

#[tokio::test]
async fn a_delayed_reply_is_delivered_to_the_sink_later() {
    let (sink, mut delivered) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    let ctx = context();
    let started = Instant::now();
    let q = query("26GB0000090000011", TIN, "AC01");
    assert_eq!(sim.submit(&q, &ctx).await, Ok(Submission::Accepted));
    let (message_id, outcome) = tokio::time::timeout(PATIENCE, delivered.recv())
        .await
        .expect("in time")
        .expect("delivered");
    // Not before its delay (a lower bound the simulator's timer guarantees).
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(message_id, ctx.message_id);
    assert_eq!(outcome, balance("10"));

    // The rules still apply to a delayed guarantee.
    let ctx = context();
    assert_eq!(
        sim.submit(&query("26GB0000090000011", TIN, "ZZZZ"), &ctx)
            .await,
        Ok(Submission::Accepted)
    );
    let (message_id, outcome) = tokio::time::timeout(PATIENCE, delivered.recv())
        .await
        .expect("in time")
        .expect("delivered");
    assert_eq!(
        (message_id, outcome),
        (
            ctx.message_id,
            Outcome::FunctionalError {
                errors: Case::WrongAccessCode.errors()
            }
        )
    );
}

#[tokio::test]
async fn no_reply_and_a_late_malformed_reply_deliver_nothing() {
    let (sink, mut delivered) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    assert_eq!(
        sim.submit(&query("26GB0000090000029", TIN, "AC01"), &context())
            .await,
        Ok(Submission::Accepted)
    );
    assert_eq!(
        sim.submit(&query("26GB0000090000020", TIN, "AC01"), &context())
            .await,
        Ok(Submission::Accepted)
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(400), delivered.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn dropping_the_simulator_abandons_waiting_replies() {
    let (sink, mut delivered) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    assert_eq!(
        sim.submit(&query("26GB0000090000011", TIN, "AC01"), &context())
            .await,
        Ok(Submission::Accepted)
    );
    drop(sim);
    assert!(matches!(
        tokio::time::timeout(Duration::from_millis(400), delivered.recv()).await,
        Ok(None) | Err(_)
    ));
}

#[tokio::test]
async fn a_malformed_immediate_reply_is_garbled() {
    let (sink, _) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    let result = sim
        .submit(&query("26GB0000090000053", TIN, "AC01"), &context())
        .await;
    assert!(
        matches!(&result, Err(GmsError::Garbled(m)) if m.contains("IE037")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_submit_status_is_what_an_http_adapter_would_make_of_it() {
    let (sink, _) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    let result = sim
        .submit(&query("26GB0000090000045", TIN, "AC01"), &context())
        .await;
    assert!(
        matches!(result, Err(GmsError::Unavailable { .. })),
        "{result:?}"
    );
    let result = sim
        .submit(&query("26GB0000090000046", TIN, "AC01"), &context())
        .await;
    assert_eq!(result, Err(GmsError::Rejected { status: 429 }));
}

#[tokio::test]
async fn the_query_limit_holds_per_tin_on_the_clock() {
    let (sink, _) = RecordingSink::new();
    let clock = TestClock::at(datetime!(2026-11-21 00:00 UTC));
    let mut config = defaults::embedded(dataset());
    config.query_limit = QueryLimit {
        per_tin: 2,
        window: Duration::from_secs(24 * 3600),
    };
    let sim = EmbeddedSimulator::new(config, sink).with_clock(clock.clone());
    let q = query("26GB0000010000012", TIN, "AC01");
    for _ in 0..2 {
        assert_eq!(
            sim.submit(&q, &context()).await,
            Ok(Submission::Answered(balance("50000")))
        );
    }
    let limited = Ok(Submission::Answered(Outcome::FunctionalError {
        errors: Case::QueryLimit.errors(),
    }));
    assert_eq!(sim.submit(&q, &context()).await, limited);
    assert_eq!(
        sim.submit(&query("26GB0000010000012", None, "AC01"), &context())
            .await,
        Ok(Submission::Answered(balance("50000"))),
        "no TIN, no limit"
    );
    clock.advance(time::Duration::hours(24));
    assert_eq!(
        sim.submit(&q, &context()).await,
        Ok(Submission::Answered(balance("50000")))
    );
}

#[tokio::test]
async fn it_says_which_queries_it_answers_within_the_call() {
    let (sink, _delivered) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    // At once: a plain guarantee, an IE917 one, one the data set does not hold.
    for grn in [
        "26GB0000010000012",
        "26GB0000090000037",
        "26GB0000010000999",
    ] {
        assert!(sim.answers_within_call(&query(grn, TIN, "AC01")), "{grn}");
        assert!(matches!(
            sim.submit(&query(grn, TIN, "AC01"), &context()).await,
            Ok(Submission::Answered(_))
        ));
    }
    // Later, or never: what it accepts without answering.
    for grn in ["26GB0000090000011", "26GB0000090000029"] {
        assert!(!sim.answers_within_call(&query(grn, TIN, "AC01")), "{grn}");
        assert_eq!(
            sim.submit(&query(grn, TIN, "AC01"), &context()).await,
            Ok(Submission::Accepted)
        );
    }
    // A delay for every reply makes every guarantee's reply a late one.
    let (sink, _delivered) = RecordingSink::new();
    let delayed = dataset().with_default_reply_delay(Duration::from_millis(50));
    let sim = EmbeddedSimulator::new(defaults::embedded(delayed), sink);
    assert!(!sim.answers_within_call(&query("26GB0000010000012", TIN, "AC01")));
}
