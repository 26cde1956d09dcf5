//! Both adapters against the standalone simulator over real HTTP on port 0, with replies
//! delivered to a listening endpoint that stands in for gbal's internal listener.

use std::time::{Duration, Instant};

use gbal_core::{Amount, Balance, Gms, GmsError, Outcome, Submission, SubmitContext};
use gbal_gms::simulator::simulated_xml_error;
use gbal_gms::{BearerToken, Dataset, EisJsonConfig, EisJsonGms, NctsXmlGms, SimulatorConfig, Url};
use gbal_ncts::{Limits, MessageKind, Reply, parse_reply};
use gbal_testkit::gms_rules::Case;

use crate::defaults;
use crate::support::{
    PATIENCE, ReceivedReply, ReplyListener, RunningSimulator, context, fast, query, url,
};

const TOKEN: &str = "sim-token";
const REPLY_TOKEN: &str = "reply-token";

/// The sandbox plus short-delay variants, so tests stay quick.
fn dataset() -> Dataset {
    let mut toml = include_str!("../../src/simulator/sandbox.toml").to_owned();
    toml.push_str(
        r#"
        [[guarantees]]
        grn = "26GB0000090000100"
        type = "1"
        tin = "GB954131533000"
        access_code = "AC01"
        balance = "10"
        reply_delay = "600ms"
        "#,
    );
    Dataset::from_toml(&toml).expect("dataset")
}

async fn simulator(replies: Option<&ReplyListener>, wrap: bool) -> RunningSimulator {
    let mut config = SimulatorConfig::new(dataset(), defaults::query_limit(), PATIENCE);
    config.token = Some(BearerToken::new(TOKEN));
    config.reply_to = replies.map(ReplyListener::url);
    config.reply_token = Some(BearerToken::new(REPLY_TOKEN));
    config.wrap_replies = wrap;
    config.reply_timeout = Duration::from_secs(2);
    RunningSimulator::start(config).await
}

fn ncts(sim: &RunningSimulator, token: &str) -> NctsXmlGms {
    NctsXmlGms::new(defaults::ncts_xml(fast(
        url(sim.addr, "/movements/messages"),
        token,
    )))
    .expect("client")
}

fn eis(gb: Url, xi: Url) -> EisJsonGms {
    EisJsonGms::new(EisJsonConfig {
        gb: fast(gb, TOKEN),
        xi: fast(xi, TOKEN),
    })
    .expect("client")
}

/// Checks the reply's route and headers, and reads it as gbal's listener would.
fn read(reply: &ReceivedReply, ctx: &SubmitContext) -> Reply {
    let recipient = ctx.message_id.recipient(&defaults::sender_prefix());
    assert_eq!(reply.recipient, recipient);
    assert_eq!(
        reply.header("x-message-recipient"),
        Some(recipient.as_str())
    );
    assert_eq!(reply.header("authorization"), Some("Bearer reply-token"));
    assert_eq!(
        reply.header("content-type"),
        Some("application/xml; charset=utf-8")
    );
    let kind = MessageKind::from_header(reply.header("x-message-type").expect("X-Message-Type"))
        .expect("known type");
    let read = parse_reply(reply.body.as_bytes(), kind, &Limits::default()).expect("a valid reply");
    assert_eq!(read.recipient, recipient, "MesRecMES6");
    if kind != MessageKind::Ie037 {
        assert_eq!(
            read.original_ref.as_deref(),
            Some(ctx.message_ref.as_str()),
            "OriMesIdeMES22"
        );
    }
    read
}

fn balance(amount: &str, currency: &str) -> Outcome {
    Outcome::Success(Balance {
        amount: amount.parse::<Amount>().expect("amount"),
        currency: currency.parse().expect("currency"),
    })
}

fn refused(case: Case) -> Outcome {
    Outcome::FunctionalError {
        errors: case.errors(),
    }
}

#[tokio::test]
async fn ncts_xml_replies_reach_the_listener() {
    let mut listener = ReplyListener::start().await;
    let sim = simulator(Some(&listener), false).await;
    let gms = ncts(&sim, TOKEN);
    let cases = [
        (
            query("26GB0000010000012", Some("GB954131533000"), "AC01"),
            balance("262626", "GBP"),
            Some("26GB0000010000012"),
        ),
        (
            query("26GB0000010000021", Some("GB954131533000"), "ac01"),
            balance("12345678.9", "GBP"),
            Some("26GB0000010000021"),
        ),
        (
            query("26XI0000010000036", Some("XI954131533000"), "AC01"),
            balance("7500.25", "EUR"),
            Some("26XI0000010000036"),
        ),
        (
            query("26GB0000010000012", None, "AC01"),
            balance("262626", "GBP"),
            Some("26GB0000010000012"),
        ),
        (
            query("26GB0000019999999", Some("GB954131533000"), "AC01"),
            refused(Case::UnknownGrn),
            None,
        ),
        (
            query("26GB0000010000012", Some("GB999999999999"), "AC01"),
            refused(Case::UnknownTin),
            None,
        ),
        (
            query("26GB0000010000012", Some("GB954131533000"), "ZZ99"),
            refused(Case::WrongAccessCode),
            None,
        ),
        (
            query("26GB0000010000012", Some("GB123456789000"), "AC01"),
            refused(Case::TinMismatch),
            None,
        ),
        (
            query("26GB0000040000017", Some("GB954131533000"), "AC01"),
            refused(Case::UnsupportedType),
            None,
        ),
        (
            query("26GB0000010000012", Some("GB000000000026"), "AC01"),
            refused(Case::QueryLimit),
            None,
        ),
        (
            query("26GB0000090000037", Some("GB954131533000"), "AC01"),
            Outcome::XmlError {
                errors: vec![simulated_xml_error()],
            },
            None,
        ),
    ];
    for (q, expected, grn) in cases {
        let ctx = context();
        assert_eq!(
            gms.submit(&q, &ctx).await,
            Ok(Submission::Accepted),
            "{q:?}"
        );
        let reply = read(&listener.next().await, &ctx);
        assert_eq!(reply.outcome, expected, "{q:?}");
        assert_eq!(reply.grn.as_deref(), grn);
    }
    listener.nothing_within(Duration::from_millis(100)).await;
    sim.stop().await.expect("clean stop");
}

#[tokio::test]
async fn ncts_xml_replies_can_travel_wrapped() {
    let mut listener = ReplyListener::start().await;
    let sim = simulator(Some(&listener), true).await;
    let ctx = context();
    let q = query("26GB0000010000039", Some("GB954131533000"), "AC01");
    assert_eq!(
        ncts(&sim, TOKEN).submit(&q, &ctx).await,
        Ok(Submission::Accepted)
    );
    let reply = listener.next().await;
    assert!(
        reply.body.starts_with("<transitRequest><CD037A>"),
        "{}",
        reply.body
    );
    assert_eq!(read(&reply, &ctx).outcome, balance("1234.56", "GBP"));
}

#[tokio::test]
async fn ncts_xml_behaviours() {
    let mut listener = ReplyListener::start().await;
    let sim = simulator(Some(&listener), false).await;
    let gms = ncts(&sim, TOKEN);
    let tin = Some("GB954131533000");

    // A delayed reply comes after its delay.
    let ctx = context();
    let started = Instant::now();
    let q = query("26GB0000090000100", tin, "AC01");
    assert_eq!(gms.submit(&q, &ctx).await, Ok(Submission::Accepted));
    listener.nothing_yet();
    let reply = listener.next().await;
    // Not before its delay (a lower bound the simulator's timer guarantees).
    assert!(started.elapsed() >= Duration::from_millis(600));
    assert_eq!(read(&reply, &ctx).outcome, balance("10", "GBP"));

    // No reply: accepted, then nothing.
    let q = query("26GB0000090000029", tin, "AC01");
    assert_eq!(gms.submit(&q, &context()).await, Ok(Submission::Accepted));
    listener.nothing_within(Duration::from_millis(300)).await;

    // A malformed reply: it arrives, and gbal cannot read it.
    let ctx = context();
    let q = query("26GB0000090000053", tin, "AC01");
    assert_eq!(gms.submit(&q, &ctx).await, Ok(Submission::Accepted));
    let reply = listener.next().await;
    assert_eq!(
        reply.recipient,
        ctx.message_id.recipient(&defaults::sender_prefix())
    );
    assert!(
        parse_reply(
            reply.body.as_bytes(),
            MessageKind::Ie037,
            &Limits::default()
        )
        .is_err()
    );

    // HTTP 503 on submit: resent after the simulator's `Retry-After: 1` while within the 2 s
    // budget, then unavailable, passing that `Retry-After` on.
    let q = query("26GB0000090000045", tin, "AC01");
    let result = gms.submit(&q, &context()).await;
    assert!(
        matches!(&result, Err(GmsError::Unavailable { reason, retry_after }) if reason.contains("503") && *retry_after == Duration::from_secs(1)),
        "{result:?}"
    );
    listener.nothing_within(Duration::from_millis(100)).await;
}

#[tokio::test]
async fn the_simulator_requires_its_token() {
    let listener = ReplyListener::start().await;
    let sim = simulator(Some(&listener), false).await;
    let q = query("26GB0000010000012", None, "AC01");
    assert_eq!(
        ncts(&sim, "wrong").submit(&q, &context()).await,
        Err(GmsError::Rejected { status: 401 })
    );
    let gms = EisJsonGms::new(EisJsonConfig {
        gb: fast(url(sim.addr, "/gb"), "wrong"),
        xi: fast(url(sim.addr, "/xi"), "wrong"),
    })
    .expect("client");
    assert_eq!(
        gms.submit(&q, &context()).await,
        Err(GmsError::Rejected { status: 401 })
    );
}

#[tokio::test]
async fn eis_json_against_the_simulator() {
    let sim = simulator(None, false).await;
    // The same server as both instances, by path prefix and at its root.
    for (gb, xi) in [
        (url(sim.addr, "/gb"), url(sim.addr, "/xi")),
        (url(sim.addr, ""), url(sim.addr, "/")),
    ] {
        let gms = eis(gb, xi);
        let ask = |grn: &'static str, code: &'static str| {
            let gms = &gms;
            async move { gms.submit(&query(grn, None, code), &context()).await }
        };
        let answered = |o: Outcome| Ok(Submission::Answered(o));
        assert_eq!(
            ask("26GB0000010000012", "AC01").await,
            answered(balance("262626", "GBP"))
        );
        assert_eq!(
            ask("26GB0000010000021", "ac01").await,
            answered(balance("12345678.9", "GBP"))
        );
        assert_eq!(
            ask("26GB0000010000039", "AC01").await,
            answered(balance("1234.56", "GBP"))
        );
        assert_eq!(
            ask("26XI0000010000010", "AC01").await,
            answered(balance("30000", "GBP"))
        );
        assert_eq!(
            ask("26XI0000010000028", "AC01").await,
            answered(balance("50000", "GBP"))
        );
        assert_eq!(
            ask("26XI0000010000036", "AC01").await,
            answered(balance("7500.25", "EUR"))
        );
        assert_eq!(
            ask("26GB0000019999999", "AC01").await,
            answered(refused(Case::UnknownGrn))
        );
        assert_eq!(
            ask("26GB0000010000012", "ZZ99").await,
            answered(refused(Case::WrongAccessCode))
        );
        assert_eq!(
            ask("26GB0000020000019", "AC01").await,
            answered(refused(Case::UnsupportedType))
        );
        assert_eq!(
            ask("26GB0000040000017", "AC01").await,
            answered(refused(Case::UnsupportedType))
        );
        assert_eq!(
            ask("26GB0000090000100", "AC01").await,
            answered(balance("10", "GBP")),
            "after 600 ms, twice"
        );
        assert_eq!(
            ask("26GB0000090000037", "AC01").await,
            Err(GmsError::Rejected { status: 400 }),
            "IE917"
        );
        assert!(matches!(
            ask("26GB0000090000053", "AC01").await,
            Err(GmsError::Garbled(_))
        ));
        assert!(matches!(
            ask("26GB0000090000045", "AC01").await,
            Err(GmsError::Unavailable { .. })
        ));
        assert_eq!(
            ask("26GB0000090000029", "AC01").await,
            Err(GmsError::TimedOut),
            "no reply"
        );
    }
    sim.stop()
        .await
        .expect("stops although a no-reply call was left hanging");
}

#[tokio::test]
async fn an_instance_does_not_know_the_other_countrys_guarantees() {
    let sim = simulator(None, false).await;
    let client = reqwest::Client::new();
    let answer = client
        .get(format!(
            "http://{}/gb/guarantees/26XI0000010000010/balance",
            sim.addr
        ))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 403);
    let body: serde_json::Value = answer.json().await.expect("JSON");
    assert_eq!(
        body["message"],
        "Guarantee not found for GRN: 26XI0000010000010"
    );
    assert_eq!(body["path"], "/gb/guarantees/26XI0000010000010/balance");
    assert!(body["timestamp"].is_string());
}

/// Both transports answer a v2 query (no TIN) with the same outcome: one vocabulary.
#[tokio::test]
async fn both_transports_speak_one_vocabulary() {
    let mut listener = ReplyListener::start().await;
    let sim = simulator(Some(&listener), false).await;
    let xml = ncts(&sim, TOKEN);
    let json = eis(url(sim.addr, "/gb"), url(sim.addr, "/xi"));
    for (grn, code) in [
        ("26GB0000010000012", "AC01"),
        ("26XI0000010000036", "aC01"),
        ("26GB0000019999999", "AC01"),
        ("26GB0000010000012", "ZZ99"),
        ("26GB0000020000019", "AC01"),
        ("26GB0000040000017", "AC01"),
    ] {
        let q = query(grn, None, code);
        let ctx = context();
        assert_eq!(xml.submit(&q, &ctx).await, Ok(Submission::Accepted));
        let by_xml = read(&listener.next().await, &ctx).outcome;
        let by_json = json.submit(&q, &context()).await;
        assert_eq!(by_json, Ok(Submission::Answered(by_xml)), "{grn} {code}");
    }
}
