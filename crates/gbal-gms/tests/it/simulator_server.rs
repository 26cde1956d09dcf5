//! The standalone simulator's own edges, spoken to directly over HTTP.

use std::time::Duration;

use gbal_core::{BalanceQuery, Outcome};
use gbal_gms::simulator::MAX_MESSAGE_BYTES;
use gbal_gms::{BearerToken, Dataset, SimulatorConfig};
use gbal_ncts::{Header, Ie034, Limits, MessageKind, parse_reply};
use serde_json::json;

use crate::defaults;
use crate::support::{PATIENCE, ReplyListener, RunningSimulator, context, query};

async fn start(listener: Option<&ReplyListener>, token: Option<&str>) -> RunningSimulator {
    let mut config = SimulatorConfig::new(Dataset::sandbox(), defaults::query_limit(), PATIENCE);
    config.token = token.map(BearerToken::new);
    config.reply_to = listener.map(ReplyListener::url);
    RunningSimulator::start(config).await
}

fn ie034(q: &BalanceQuery) -> String {
    let ctx = context();
    Ie034 {
        header: Header {
            sender: ctx.message_id.recipient(&defaults::sender_prefix()),
            recipient: "NTA.GB".to_owned(),
            prepared_at: ctx.requested_at,
            message_ref: ctx.message_ref,
        },
        grn: q.grn.clone(),
        tin: q.tin.clone(),
        access_code: q.access_code.clone(),
    }
    .build_wire()
    .expect("valid IE034")
}

fn post(sim: &RunningSimulator, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("http://{}/movements/messages", sim.addr))
        .timeout(Duration::from_secs(5))
        .header("X-Message-Type", "IE034")
        .body(body)
}

#[tokio::test]
async fn an_invalid_ie034_is_accepted_and_answered_with_an_ie917() {
    let mut listener = ReplyListener::start().await;
    let sim = start(Some(&listener), None).await;
    let body =
        ie034(&query("26GB0000010000012", None, "AC01")).replace("<QueIdeQUE1>2</QueIdeQUE1>", "");
    let answer = post(&sim, body)
        .header("X-Message-Sender", "MDTP-GUA-22b9899e24ee48e6a18997d1")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 202);
    let reply = listener.next().await;
    assert_eq!(reply.recipient, "MDTP-GUA-22b9899e24ee48e6a18997d1");
    assert_eq!(reply.header("x-message-type"), Some("IE917"));
    let read = parse_reply(
        reply.body.as_bytes(),
        MessageKind::Ie917,
        &Limits::default(),
    )
    .expect("valid IE917");
    assert!(matches!(read.outcome, Outcome::XmlError { .. }));
    assert!(
        read.original_ref.is_some_and(|r| r.len() == 14),
        "names the IE034's MesIdeMES19"
    );
}

#[tokio::test]
async fn an_invalid_ie034_naming_no_sender_is_a_bad_request() {
    let sim = start(None, None).await;
    let answer = post(&sim, "<CD034A><nonsense/></CD034A>")
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 400);
}

#[tokio::test]
async fn the_message_type_header_is_required() {
    let sim = start(None, None).await;
    let body = ie034(&query("26GB0000010000012", None, "AC01"));
    for value in [None, Some("IE037")] {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/movements/messages", sim.addr))
            .body(body.clone());
        if let Some(v) = value {
            request = request.header("X-Message-Type", v);
        }
        assert_eq!(
            request.send().await.expect("answer").status(),
            400,
            "{value:?}"
        );
    }
}

#[tokio::test]
async fn every_route_requires_the_token_when_one_is_set() {
    let sim = start(None, Some("sim-token")).await;
    let client = reqwest::Client::new();
    let body = ie034(&query("26GB0000010000012", None, "AC01"));
    let base = format!("http://{}", sim.addr);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("sim-token"),
        Some("Basic sim-token"),
    ] {
        let with = |r: reqwest::RequestBuilder| match auth {
            Some(a) => r.header("Authorization", a),
            None => r,
        };
        let statuses = [
            with(
                client
                    .post(format!("{base}/movements/messages"))
                    .header("X-Message-Type", "IE034")
                    .body(body.clone()),
            ),
            with(
                client
                    .post(format!("{base}/guarantees/26GB0000010000012/access-codes"))
                    .json(&json!({"masterAccessCode": "AC01"})),
            ),
            with(client.get(format!("{base}/xi/guarantees/26XI0000010000010/balance"))),
        ];
        for request in statuses {
            assert_eq!(
                request.send().await.expect("answer").status(),
                401,
                "{auth:?}"
            );
        }
    }
    let ok = client
        .post(format!("{base}/movements/messages"))
        .header("X-Message-Type", "IE034")
        .bearer_auth("sim-token")
        .body(body)
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status(), 202);
}

#[tokio::test]
async fn a_message_over_1_mib_is_refused() {
    let sim = start(None, None).await;
    let body = format!(
        "<transitRequest>{}</transitRequest>",
        " ".repeat(MAX_MESSAGE_BYTES)
    );
    assert_eq!(post(&sim, body).send().await.expect("answer").status(), 413);
}

#[tokio::test]
async fn eis_answers_a_bad_payload_with_its_error_body() {
    let sim = start(None, None).await;
    let client = reqwest::Client::new();
    for body in ["{}", "[]", "not json", r#"{"masterAccessCode": 12}"#] {
        let answer = client
            .post(format!(
                "http://{}/guarantees/26GB0000010000012/access-codes",
                sim.addr
            ))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 400, "{body}");
        let read: serde_json::Value = answer.json().await.expect("JSON");
        assert_eq!(read["message"], "Invalid request payload");
        assert_eq!(read["path"], "/guarantees/26GB0000010000012/access-codes");
        assert!(read["timestamp"].as_str().is_some_and(|t| t.contains('T')));
    }
}

#[tokio::test]
async fn eis_balances_are_written_exactly() {
    let sim = start(None, None).await;
    let text = reqwest::get(format!(
        "http://{}/guarantees/26GB0000010000021/balance",
        sim.addr
    ))
    .await
    .expect("answer")
    .text()
    .await
    .expect("body");
    assert_eq!(
        text,
        r#"{"grn":"26GB0000010000021","balance":12345678.9,"currencyCL":"GBP"}"#
    );
}

#[tokio::test]
async fn unknown_paths_and_instances_are_404() {
    let sim = start(None, None).await;
    for path in [
        "/nope",
        "/fr/guarantees/26GB0000010000012/balance",
        "/movements",
    ] {
        let answer = reqwest::get(format!("http://{}{path}", sim.addr))
            .await
            .expect("answer");
        assert_eq!(answer.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn it_stops_on_shutdown_abandoning_delayed_replies() {
    let mut listener = ReplyListener::start().await;
    let sim = start(Some(&listener), None).await;
    // 26GB0000090000011 replies after 2 s: stopping now abandons it.
    let body = ie034(&query("26GB0000090000011", Some("GB954131533000"), "AC01"));
    assert_eq!(post(&sim, body).send().await.expect("answer").status(), 202);
    sim.stop().await.expect("clean stop");
    // Had the stop waited for the delayed reply, it would have been sent by now.
    listener.nothing_yet();
    listener.nothing_within(Duration::from_millis(2500)).await;
}
