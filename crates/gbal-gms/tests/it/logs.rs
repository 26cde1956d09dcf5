//! The access code never reaches a log line. Logs are captured with a minimal subscriber on a
//! current-thread runtime, so the simulator's and the clients' spawned tasks are captured too:
//! every span and event field at every level, the simulator's included.

use gbal_core::{Gms, GmsError};
use gbal_gms::{
    BearerToken, Dataset, EisJsonConfig, EisJsonGms, EmbeddedSimulator, NctsXmlGms, SimulatorConfig,
};

use crate::defaults;
use crate::support::{
    PATIENCE, RecordingSink, ReplyListener, RunningSimulator, context, fast, query, url,
};

/// A code no other text in the logs can contain by chance.
const CODE: &str = "QZ7X";
const WRONG: &str = "XJ9K";

fn dataset() -> Dataset {
    Dataset::from_toml(&format!(
        r#"
        [[guarantees]]
        grn = "26GB0000010000012"
        type = "1"
        tin = "GB954131533000"
        access_code = "{CODE}"
        balance = "10"

        [[guarantees]]
        grn = "26GB0000090000011"
        type = "1"
        tin = "GB954131533000"
        access_code = "{CODE}"
        balance = "10"
        reply_delay = "50ms"
        "#
    ))
    .expect("dataset")
}

#[tokio::test(flavor = "current_thread")]
async fn the_access_code_never_reaches_a_log_line() {
    let (logs, _guard) = gbal_testkit::logs::capture();
    let mut listener = ReplyListener::start().await;
    let mut config = SimulatorConfig::new(dataset(), defaults::query_limit(), PATIENCE);
    config.token = Some(BearerToken::new("t"));
    config.reply_to = Some(listener.url());
    let sim = RunningSimulator::start(config).await;

    let xml = NctsXmlGms::new(defaults::ncts_xml(fast(
        url(sim.addr, "/movements/messages"),
        "t",
    )))
    .expect("client");
    let json = EisJsonGms::new(EisJsonConfig {
        gb: fast(url(sim.addr, "/gb"), "t"),
        xi: fast(url(sim.addr, "/xi"), "t"),
    })
    .expect("client");
    let (sink, mut delivered) = RecordingSink::new();
    let embedded = EmbeddedSimulator::new(defaults::embedded(dataset()), sink);
    let tin = Some("GB954131533000");

    for code in [CODE, WRONG, &CODE.to_lowercase()] {
        for grn in [
            "26GB0000010000012",
            "26GB0000090000011",
            "26GB0000019999999",
        ] {
            for q in [query(grn, tin, code), query(grn, None, code)] {
                xml.submit(&q, &context()).await.expect("accepted");
                listener.next().await;
                json.submit(&q, &context()).await.expect("eis-json answers");
                embedded
                    .submit(&q, &context())
                    .await
                    .expect("the simulator answers");
            }
        }
    }
    // The late replies of the embedded simulator are delivered (and logged) too.
    for _ in 0..6 {
        delivered.recv().await.expect("delivered");
    }
    // And an IE034 that fails its self-check, whose error names what is wrong.
    let mut bad = defaults::ncts_xml(fast(url(sim.addr, "/movements/messages"), "t"));
    bad.recipient_office = "X".repeat(40);
    let refused = NctsXmlGms::new(bad)
        .expect("client")
        .submit(&query("26GB0000010000012", tin, CODE), &context())
        .await;
    assert!(matches!(refused, Err(GmsError::Internal(_))), "{refused:?}");
    sim.stop().await.expect("clean stop");

    let text = logs.text();
    for expected in [
        "IE034 received",
        "GMS accepted the IE034",
        "reply delivered",
        "EIS answered with a balance",
        "simulated GMS answered",
        "simulated GMS replies",
        "self-check",
    ] {
        assert!(
            text.contains(expected),
            "the capture works: {expected:?} missing from\n{text}"
        );
    }
    for secret in [CODE, WRONG] {
        for variant in [secret.to_owned(), secret.to_lowercase()] {
            assert!(
                !text.contains(&variant),
                "{variant} found in the logs:\n{text}"
            );
        }
    }
}
