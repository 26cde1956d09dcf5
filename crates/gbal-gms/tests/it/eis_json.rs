//! The eis-json adapter's edges, against wiremock: headers of notes §5.3, GB/XI instances, the
//! 403 vocabulary, exact balances, garbled answers, retries, timeouts and per-instance breakers.

use std::collections::HashSet;
use std::time::Duration;

use gbal_core::{Amount, Balance, Gms, GmsError, Outcome, Submission};
use gbal_gms::{EisJsonConfig, EisJsonGms};
use gbal_testkit::gms_rules::Case;
use serde_json::json;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::support::{context, fast, query, url};

const GB_GRN: &str = "26GB0000010000012";
const XI_GRN: &str = "26XI0000010000010";

fn adapter(gb: &MockServer, xi: &MockServer) -> EisJsonGms {
    EisJsonGms::new(EisJsonConfig {
        gb: fast(url(*gb.address(), "/eis-gb"), "gb-token"),
        xi: fast(url(*xi.address(), "/eis-xi/"), "xi-token"),
    })
    .expect("client")
}

fn access_ok(grn: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "grn": grn, "masterAccessCode": "AC01", "additionalAccessCodes": ["AA12"]
    }))
}

fn balance_ok(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json")
}

fn forbidden(message: &str) -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({
        "message": message, "timestamp": "2023-01-24T11:57:36.0537863801", "path": "/x"
    }))
}

/// GB mocks: the access-code call answers `access`, the balance call `balance`.
async fn eis(
    prefix: &str,
    grn: &str,
    access: ResponseTemplate,
    balance: ResponseTemplate,
) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("{prefix}/guarantees/{grn}/access-codes")))
        .respond_with(access)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/guarantees/{grn}/balance")))
        .respond_with(balance)
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> Vec<Request> {
    server.received_requests().await.expect("recording")
}

fn header<'r>(r: &'r Request, name: &str) -> Option<&'r str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn success(amount: &str, currency: &str) -> Result<Submission, GmsError> {
    Ok(Submission::Answered(Outcome::Success(Balance {
        amount: amount.parse::<Amount>().expect("amount"),
        currency: currency.parse().expect("currency"),
    })))
}

fn refused(case: Case) -> Result<Submission, GmsError> {
    Ok(Submission::Answered(Outcome::FunctionalError {
        errors: case.errors(),
    }))
}

#[tokio::test]
async fn both_calls_carry_the_headers_of_notes_5_3_and_the_balance_stays_exact() {
    let body =
        format!(r#"{{"grn":"{GB_GRN}","balance":123456789012345678.91,"currencyCL":"GBP"}}"#);
    let gb = eis("/eis-gb", GB_GRN, access_ok(GB_GRN), balance_ok(&body)).await;
    let xi = MockServer::start().await;
    let gms = adapter(&gb, &xi);

    let result = gms.submit(&query(GB_GRN, None, "AC01"), &context()).await;
    assert_eq!(
        result,
        success("123456789012345678.91", "GBP"),
        "never through f64"
    );

    let received = requests(&gb).await;
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].method.as_str(), "POST");
    assert_eq!(
        received[0].body_json::<serde_json::Value>().expect("JSON"),
        json!({"masterAccessCode": "AC01"})
    );
    assert_eq!(received[1].method.as_str(), "GET");
    assert!(
        received[1].body.is_empty(),
        "the balance call carries no access code"
    );
    let date_format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] UTC"
    );
    for r in &received {
        let date = header(r, "date").expect("Date");
        assert!(
            time::PrimitiveDateTime::parse(date, date_format).is_ok(),
            "{date}"
        );
        assert!(Uuid::parse_str(header(r, "x-correlation-id").expect("X-Correlation-Id")).is_ok());
        assert_eq!(header(r, "customprocesshost"), Some("Digital"));
        assert_eq!(header(r, "accept"), Some("application/json"));
        assert_eq!(
            header(r, "content-type"),
            Some("application/json"),
            "on the GET too"
        );
        assert_eq!(header(r, "authorization"), Some("Bearer gb-token"));
        assert_eq!(header(r, "x-request-id"), Some("req-7f3a"));
    }
    assert_ne!(
        header(&received[0], "x-correlation-id"),
        header(&received[1], "x-correlation-id")
    );
    assert!(requests(&xi).await.is_empty());
}

#[tokio::test]
async fn the_grn_picks_the_gb_or_xi_instance_with_its_own_token() {
    let body = format!(r#"{{"grn":"{XI_GRN}","balance":30000,"currencyCL":"EUR"}}"#);
    let xi = eis("/eis-xi", XI_GRN, access_ok(XI_GRN), balance_ok(&body)).await;
    let gb = MockServer::start().await;
    let result = adapter(&gb, &xi)
        .submit(&query(XI_GRN, None, "AC01"), &context())
        .await;
    assert_eq!(result, success("30000", "EUR"));
    assert!(requests(&gb).await.is_empty());
    let received = requests(&xi).await;
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|r| header(r, "authorization") == Some("Bearer xi-token"))
    );
}

#[tokio::test]
async fn a_grn_of_neither_country_is_an_unknown_grn_without_a_call() {
    let (gb, xi) = (MockServer::start().await, MockServer::start().await);
    let result = adapter(&gb, &xi)
        .submit(&query("22FR0000010000012", None, "AC01"), &context())
        .await;
    assert_eq!(result, refused(Case::UnknownGrn));
    assert!(requests(&gb).await.is_empty() && requests(&xi).await.is_empty());
}

#[tokio::test]
async fn the_three_403_messages_become_the_ncts_error_sets() {
    let cases = [
        (
            format!("Guarantee not found for GRN: {GB_GRN}"),
            Case::UnknownGrn,
        ),
        (
            "Not Valid Access Code for this operation".to_owned(),
            Case::WrongAccessCode,
        ),
        (
            "Not Valid Guarantee Type for this operation".to_owned(),
            Case::UnsupportedType,
        ),
    ];
    for (message, rejection) in cases {
        // On the access-code call...
        let gb = eis("/eis-gb", GB_GRN, forbidden(&message), balance_ok("{}")).await;
        let xi = MockServer::start().await;
        let result = adapter(&gb, &xi)
            .submit(&query(GB_GRN, None, "AC01"), &context())
            .await;
        assert_eq!(result, refused(rejection), "{message}");
        assert_eq!(
            requests(&gb).await.len(),
            1,
            "{message}: not retried, no balance call"
        );
        // ...and on the balance call.
        let gb = eis("/eis-gb", GB_GRN, access_ok(GB_GRN), forbidden(&message)).await;
        let result = adapter(&gb, &xi)
            .submit(&query(GB_GRN, None, "AC01"), &context())
            .await;
        assert_eq!(result, refused(rejection), "{message} on the balance call");
    }
}

#[tokio::test]
async fn any_other_403_is_a_rejection() {
    let xi = MockServer::start().await;
    for response in [
        forbidden("Something else"),
        ResponseTemplate::new(403).set_body_string("not JSON"),
        ResponseTemplate::new(403)
            .set_body_json(json!({"message": "Not Valid Access Code for this operation"})),
    ] {
        let gb = eis("/eis-gb", GB_GRN, response, balance_ok("{}")).await;
        let result = adapter(&gb, &xi)
            .submit(&query(GB_GRN, None, "AC01"), &context())
            .await;
        assert_eq!(result, Err(GmsError::Rejected { status: 403 }));
    }
}

#[tokio::test]
async fn a_4xx_is_rejected_and_not_retried() {
    let xi = MockServer::start().await;
    let gb = eis(
        "/eis-gb",
        GB_GRN,
        ResponseTemplate::new(400),
        balance_ok("{}"),
    )
    .await;
    let result = adapter(&gb, &xi)
        .submit(&query(GB_GRN, None, "AC01"), &context())
        .await;
    assert_eq!(result, Err(GmsError::Rejected { status: 400 }));
    assert_eq!(requests(&gb).await.len(), 1);
}

#[tokio::test]
async fn garbled_answers_are_garbled_and_not_retried() {
    let xi = MockServer::start().await;
    let balance_bodies = [
        "not JSON".to_owned(),
        format!(r#"{{"grn":"{GB_GRN}","balance":"12","currencyCL":"GBP"}}"#),
        format!(r#"{{"grn":"{GB_GRN}","balance":1e3,"currencyCL":"GBP"}}"#),
        format!(r#"{{"grn":"{GB_GRN}","balance":12,"currencyCL":"pounds"}}"#),
        format!(r#"{{"grn":"{GB_GRN}","currencyCL":"GBP"}}"#),
        r#"{"grn":"26GB0000010000021","balance":12,"currencyCL":"GBP"}"#.to_owned(),
        format!(r#"{{"grn":"{GB_GRN}","balance":12,"#),
    ];
    for body in &balance_bodies {
        let gb = eis("/eis-gb", GB_GRN, access_ok(GB_GRN), balance_ok(body)).await;
        let result = adapter(&gb, &xi)
            .submit(&query(GB_GRN, None, "AC01"), &context())
            .await;
        assert!(
            matches!(result, Err(GmsError::Garbled(_))),
            "{body}: {result:?}"
        );
        assert_eq!(requests(&gb).await.len(), 2, "{body}");
    }
    let gb = eis(
        "/eis-gb",
        GB_GRN,
        ResponseTemplate::new(200).set_body_json(json!({"grn": GB_GRN})),
        balance_ok("{}"),
    )
    .await;
    let result = adapter(&gb, &xi)
        .submit(&query(GB_GRN, None, "AC01"), &context())
        .await;
    assert!(matches!(result, Err(GmsError::Garbled(m)) if m.contains("access-code")));
}

#[tokio::test]
async fn a_503_is_retried_with_fresh_correlation_ids() {
    let gb = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&gb)
        .await;
    Mock::given(method("POST"))
        .respond_with(access_ok(GB_GRN))
        .mount(&gb)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&gb)
        .await;
    Mock::given(method("GET"))
        .respond_with(balance_ok(&format!(
            r#"{{"grn":"{GB_GRN}","balance":1.5,"currencyCL":"GBP"}}"#
        )))
        .mount(&gb)
        .await;
    let xi = MockServer::start().await;
    let result = adapter(&gb, &xi)
        .submit(&query(GB_GRN, None, "AC01"), &context())
        .await;
    assert_eq!(result, success("1.5", "GBP"));
    let received = requests(&gb).await;
    assert_eq!(received.len(), 4);
    let ids: HashSet<&str> = received
        .iter()
        .filter_map(|r| header(r, "x-correlation-id"))
        .collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let gb = eis(
        "/eis-gb",
        GB_GRN,
        access_ok(GB_GRN).set_delay(Duration::from_secs(3)),
        balance_ok("{}"),
    )
    .await;
    let xi = MockServer::start().await;
    let result = adapter(&gb, &xi)
        .submit(&query(GB_GRN, None, "AC01"), &context())
        .await;
    assert_eq!(result, Err(GmsError::TimedOut));
    assert_eq!(requests(&gb).await.len(), 1);
}

#[tokio::test]
async fn each_instance_has_its_own_breaker() {
    let gb = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&gb)
        .await;
    let body = format!(r#"{{"grn":"{XI_GRN}","balance":2,"currencyCL":"GBP"}}"#);
    let xi = eis("/eis-xi", XI_GRN, access_ok(XI_GRN), balance_ok(&body)).await;
    let gms = adapter(&gb, &xi);
    for _ in 0..3 {
        let r = gms.submit(&query(GB_GRN, None, "AC01"), &context()).await;
        assert!(matches!(r, Err(GmsError::Unavailable { .. })), "{r:?}");
    }
    let r = gms.submit(&query(GB_GRN, None, "AC01"), &context()).await;
    assert!(
        matches!(&r, Err(GmsError::Unavailable { reason, .. }) if reason.contains("circuit breaker")),
        "{r:?}"
    );
    assert_eq!(
        requests(&gb).await.len(),
        3,
        "the open breaker sent nothing"
    );
    assert_eq!(
        gms.submit(&query(XI_GRN, None, "AC01"), &context()).await,
        success("2", "GBP")
    );

    gb.reset().await;
    let body = format!(r#"{{"grn":"{GB_GRN}","balance":3,"currencyCL":"GBP"}}"#);
    Mock::given(method("POST"))
        .respond_with(access_ok(GB_GRN))
        .mount(&gb)
        .await;
    Mock::given(method("GET"))
        .respond_with(balance_ok(&body))
        .mount(&gb)
        .await;
    // GB's breaker refuses (without a request) until its cool-down has passed, then answers.
    let answer = gbal_testkit::eventually_some(
        Duration::from_secs(10),
        "GB's breaker closes after its cool-down",
        || async {
            match gms.submit(&query(GB_GRN, None, "AC01"), &context()).await {
                Err(GmsError::Unavailable { reason, .. }) if reason.contains("circuit breaker") => {
                    None
                }
                other => Some(other),
            }
        },
    )
    .await;
    assert_eq!(answer, success("3", "GBP"));
}

#[tokio::test]
async fn eis_json_answers_every_query_within_the_call() {
    let (gb, xi) = (MockServer::start().await, MockServer::start().await);
    let gms = adapter(&gb, &xi);
    for grn in [
        "26GB0000010000012",
        "26XI0000010000036",
        "22FR0000010000012",
    ] {
        assert!(gms.answers_within_call(&query(grn, None, "AC01")), "{grn}");
    }
}
