//! The ncts-xml adapter's edges, against wiremock: headers, statuses, retries, timeouts, the
//! breaker, and the self-check.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use gbal_core::{Gms, GmsError, Submission};
use gbal_gms::NctsXmlGms;
use gbal_ncts::{Limits, parse_ie034};
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::defaults;
use crate::support::{context, fast, query, refusing_addr, url};

const PATH: &str = "/movements/messages";

fn adapter(server: &MockServer) -> NctsXmlGms {
    NctsXmlGms::new(defaults::ncts_xml(fast(
        url(*server.address(), PATH),
        "gms-token",
    )))
    .expect("client")
}

async fn answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ResponseTemplate::new(status))
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

#[tokio::test]
async fn sends_the_ie034_with_every_header_of_api_md() {
    let server = answering(202).await;
    let gms = adapter(&server);
    let q = query("26GB0000010000012", Some("GB954131533000"), "AC01");
    let ctx = context();

    assert_eq!(gms.submit(&q, &ctx).await, Ok(Submission::Accepted));

    let received = requests(&server).await;
    assert_eq!(received.len(), 1);
    let r = &received[0];
    let recipient = ctx.message_id.recipient(&defaults::sender_prefix());
    // Every header API.md ("The IE034 gbal sends") lists, with its value.
    let traceparent = ctx
        .traceparent
        .clone()
        .expect("the context has a traceparent");
    let expected = [
        ("content-type", "application/xml; charset=utf-8"),
        ("accept", "application/xml"),
        // RFC 1123 of the request time (2026-11-21 13:45:07 UTC).
        ("date", "Sat, 21 Nov 2026 13:45:07 GMT"),
        ("x-message-sender", recipient.as_str()),
        ("x-message-type", "IE034"),
        ("channel", "api"),
        ("traceparent", traceparent.as_str()),
        ("authorization", "Bearer gms-token"),
    ];
    for (name, value) in expected {
        assert_eq!(header(r, name), Some(value), "header {name}");
    }
    // X-Correlation-Id: a fresh UUID (per attempt: see the retry test).
    let correlation = header(r, "x-correlation-id").expect("X-Correlation-Id");
    assert!(Uuid::parse_str(correlation).is_ok(), "{correlation}");
    // And the request id gbal was given, for GMS's logs.
    assert_eq!(header(r, "x-request-id"), Some("req-7f3a"));

    // The body is the checked IE034, in <transitRequest>, saying what the query says.
    let body = std::str::from_utf8(&r.body).expect("UTF-8");
    assert!(body.starts_with("<transitRequest><CD034A>"), "{body}");
    assert_eq!(body, gms.message(&q, &ctx).expect("message"));
    let ie034 = parse_ie034(&r.body, &Limits::default()).expect("valid IE034");
    assert_eq!(ie034.sender, recipient);
    assert_eq!(ie034.recipient, "NTA.GB");
    assert_eq!(ie034.message_ref, ctx.message_ref.as_str());
    assert_eq!(ie034.requester_tin.as_deref(), Some("GB954131533000"));
    assert_eq!(ie034.guarantees[0].grn, "26GB0000010000012");
    assert_eq!(ie034.guarantees[0].access_code(), Some("AC01"));
    assert!(
        body.contains("<DatOfPreMES9>20261121</DatOfPreMES9><TimOfPreMES10>1345</TimOfPreMES10>")
    );
}

#[tokio::test]
async fn leaves_out_trace_headers_it_was_not_given() {
    let server = answering(202).await;
    let mut ctx = context();
    ctx.request_id = None;
    ctx.traceparent = Some("bad\nvalue".to_owned());
    let q = query("26GB0000010000012", None, "AC01");
    assert_eq!(
        adapter(&server).submit(&q, &ctx).await,
        Ok(Submission::Accepted)
    );
    let r = &requests(&server).await[0];
    assert_eq!(header(r, "x-request-id"), None);
    assert_eq!(
        header(r, "traceparent"),
        None,
        "a value HTTP does not allow is not sent"
    );
    let ie034 = parse_ie034(&r.body, &Limits::default()).expect("valid IE034");
    assert_eq!(ie034.requester_tin, None, "v2: no TIN");
}

#[tokio::test]
async fn any_2xx_is_accepted() {
    for status in [200, 201, 202, 204] {
        let server = answering(status).await;
        let q = query("26GB0000010000012", None, "AC01");
        assert_eq!(
            adapter(&server).submit(&q, &context()).await,
            Ok(Submission::Accepted),
            "{status}"
        );
    }
}

#[tokio::test]
async fn a_4xx_is_rejected_and_not_retried() {
    for status in [400, 401, 403, 404, 413, 429] {
        let server = answering(status).await;
        let q = query("26GB0000010000012", None, "AC01");
        assert_eq!(
            adapter(&server).submit(&q, &context()).await,
            Err(GmsError::Rejected { status }),
        );
        assert_eq!(requests(&server).await.len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_503_is_retried_with_a_fresh_correlation_id_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    let q = query("26GB0000010000012", None, "AC01");
    assert_eq!(
        adapter(&server).submit(&q, &context()).await,
        Ok(Submission::Accepted)
    );
    let received = requests(&server).await;
    assert_eq!(received.len(), 3);
    let ids: HashSet<&str> = received
        .iter()
        .filter_map(|r| header(r, "x-correlation-id"))
        .collect();
    assert_eq!(ids.len(), 3, "one X-Correlation-Id per attempt");
    assert!(
        received.windows(2).all(|w| w[0].body == w[1].body),
        "the same IE034 each time"
    );
}

#[tokio::test]
async fn a_503_every_time_is_unavailable_after_the_retries() {
    let server = answering(503).await;
    let q = query("26GB0000010000012", None, "AC01");
    let result = adapter(&server).submit(&q, &context()).await;
    assert!(
        matches!(&result, Err(GmsError::Unavailable { reason, .. }) if reason.contains("503") && reason.contains("3 attempt")),
        "{result:?}"
    );
    assert_eq!(requests(&server).await.len(), 3, "1 attempt + 2 retries");
}

#[tokio::test]
async fn a_retry_after_beyond_the_budget_stops_retrying_and_is_passed_on() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("Retry-After", "7"))
        .mount(&server)
        .await;
    let q = query("26GB0000010000012", None, "AC01");
    let result = adapter(&server).submit(&q, &context()).await;
    assert!(
        matches!(result, Err(GmsError::Unavailable { retry_after, .. }) if retry_after == Duration::from_secs(7)),
        "{result:?}"
    );
    assert_eq!(
        requests(&server).await.len(),
        1,
        "7 s is past the 2 s budget"
    );
}

#[tokio::test]
async fn other_5xx_are_unavailable_and_not_retried() {
    for status in [500, 502, 504] {
        let server = answering(status).await;
        let q = query("26GB0000010000012", None, "AC01");
        let result = adapter(&server).submit(&q, &context()).await;
        assert!(
            matches!(result, Err(GmsError::Unavailable { .. })),
            "{status}: {result:?}"
        );
        assert_eq!(
            requests(&server).await.len(),
            1,
            "{status}: GMS may have acted"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn connection_refused_is_retried_then_unavailable() {
    let (logs, _guard) = gbal_testkit::logs::capture();
    let addr = refusing_addr().await;
    let gms = NctsXmlGms::new(defaults::ncts_xml(fast(url(addr, PATH), "t"))).expect("client");
    let q = query("26GB0000010000012", None, "AC01");
    let started = Instant::now();
    let result = gms.submit(&q, &context()).await;
    assert!(
        matches!(&result, Err(GmsError::Unavailable { reason, .. }) if reason.contains("no connection after 3 attempt")),
        "{result:?}"
    );
    // A lower bound the back-off itself guarantees (it cannot fail on a slow machine).
    assert!(
        started.elapsed() >= Duration::from_millis(40),
        "two back-off sleeps of at least 20 ms"
    );
    assert_eq!(logs.text().matches("GMS call failed, retrying").count(), 2);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_not_resent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let q = query("26GB0000010000012", None, "AC01");
    // Without the 800 ms request timeout the answer, 3 s late, would be Accepted.
    assert_eq!(
        adapter(&server).submit(&q, &context()).await,
        Err(GmsError::TimedOut)
    );
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_and_closes_after_the_cool_down() {
    let server = answering(500).await;
    let gms = adapter(&server);
    let q = query("26GB0000010000012", None, "AC01");
    for _ in 0..3 {
        assert!(matches!(
            gms.submit(&q, &context()).await,
            Err(GmsError::Unavailable { .. })
        ));
    }
    assert_eq!(requests(&server).await.len(), 3);

    // Open: refused without a request.
    let result = gms.submit(&q, &context()).await;
    assert!(
        matches!(&result, Err(GmsError::Unavailable { reason, retry_after }) if reason.contains("circuit breaker is open") && *retry_after <= Duration::from_millis(300)),
        "{result:?}"
    );
    assert_eq!(requests(&server).await.len(), 3, "no request reached GMS");

    // After the cool-down one trial goes through; its success closes the breaker.
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    // Refused (without a request) until the 300 ms cool-down has passed, then let through.
    gbal_testkit::eventually(
        Duration::from_secs(10),
        "the breaker lets a trial through",
        || async {
            match gms.submit(&q, &context()).await {
                Ok(Submission::Accepted) => true,
                Err(GmsError::Unavailable { reason, .. })
                    if reason.contains("circuit breaker is open") =>
                {
                    false
                }
                other => panic!("{other:?}"),
            }
        },
    )
    .await;
    assert_eq!(gms.submit(&q, &context()).await, Ok(Submission::Accepted));
    assert_eq!(
        requests(&server).await.len(),
        2,
        "only the trial and the next call"
    );
}

#[tokio::test]
async fn a_4xx_does_not_open_the_breaker() {
    let server = answering(400).await;
    let gms = adapter(&server);
    let q = query("26GB0000010000012", None, "AC01");
    for _ in 0..5 {
        assert_eq!(
            gms.submit(&q, &context()).await,
            Err(GmsError::Rejected { status: 400 })
        );
    }
    assert_eq!(requests(&server).await.len(), 5);
}

#[tokio::test]
async fn a_message_failing_its_self_check_is_internal_and_never_sent() {
    let server = answering(202).await;
    let mut config = defaults::ncts_xml(fast(url(*server.address(), PATH), "t"));
    config.recipient_office = "X".repeat(36); // MesRecMES6 allows 35 characters
    let gms = NctsXmlGms::new(config).expect("client");
    let q = query("26GB0000010000012", None, "QZ7X");
    let result = gms.submit(&q, &context()).await;
    assert!(
        matches!(&result, Err(GmsError::Internal(m)) if m.contains("MesRecMES6") && !m.contains("QZ7X")),
        "{result:?}"
    );
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn ncts_xml_never_answers_within_the_call() {
    let server = answering(202).await;
    let q = query("26GB0000010000012", None, "AC01");
    assert!(!adapter(&server).answers_within_call(&q));
}

/// A server that reads one request, starts a 202 answer and hangs up before its body ends.
async fn hanging_up_mid_answer() -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0; 64 * 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\npartial")
                .await;
            drop(socket);
        }
    });
    addr
}

#[tokio::test]
async fn each_failure_says_whether_the_ie034_can_have_reached_gms() {
    let q = query("26GB0000010000012", None, "AC01");
    // Never reached it, or refused before accepting it: nothing can come of it.
    let refused = NctsXmlGms::new(defaults::ncts_xml(fast(
        url(refusing_addr().await, PATH),
        "t",
    )))
    .expect("client")
    .submit(&q, &context())
    .await
    .unwrap_err();
    let unavailable = adapter(&answering(503).await)
        .submit(&q, &context())
        .await
        .unwrap_err();
    let rejected = adapter(&answering(403).await)
        .submit(&q, &context())
        .await
        .unwrap_err();
    for error in [&refused, &unavailable, &rejected] {
        assert!(error.never_reached_gms(), "{error:?}");
        assert!(!error.outcome_unknown(), "{error:?}");
    }
    // Sent, and then no answer: GMS may have acted, a reply may still come.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let timed_out = adapter(&server).submit(&q, &context()).await.unwrap_err();
    assert_eq!(timed_out, GmsError::TimedOut);
    let cut = NctsXmlGms::new(defaults::ncts_xml(fast(
        url(hanging_up_mid_answer().await, PATH),
        "t",
    )))
    .expect("client")
    .submit(&q, &context())
    .await
    .unwrap_err();
    assert!(matches!(cut, GmsError::Interrupted(_)), "{cut:?}");
    for error in [&timed_out, &cut] {
        assert!(error.outcome_unknown(), "{error:?}");
        assert!(!error.never_reached_gms(), "{error:?}");
    }
}

#[tokio::test]
async fn retry_after_is_the_breakers_remaining_cool_down_or_a_second() {
    let server = answering(503).await;
    let gms = adapter(&server);
    let q = query("26GB0000010000012", None, "AC01");
    let retry_after = |result: Result<Submission, GmsError>| match result {
        Err(GmsError::Unavailable { retry_after, .. }) => retry_after,
        other => panic!("{other:?}"),
    };
    // The breaker (3 failed calls) is still closed: come back in a second.
    for _ in 0..2 {
        assert_eq!(
            retry_after(gms.submit(&q, &context()).await),
            Duration::from_secs(1)
        );
    }
    // The third opens it for 300 ms: come back when it closes, not sooner, not later.
    let wait = retry_after(gms.submit(&q, &context()).await);
    assert!(
        wait <= Duration::from_millis(300) && wait > Duration::ZERO,
        "{wait:?}"
    );
}

#[tokio::test]
async fn no_attempt_runs_past_the_checks_deadline() {
    // A GMS that would accept, 2 s late, well within a patient transport's 30 s.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(2)))
        .mount(&server)
        .await;
    let mut upstream = fast(url(*server.address(), PATH), "t");
    upstream.request_timeout = Duration::from_secs(30);
    let gms = NctsXmlGms::new(defaults::ncts_xml(upstream)).expect("client");
    let q = query("26GB0000010000012", None, "AC01");
    let mut ctx = context();
    ctx.deadline = Some(Instant::now() + Duration::from_millis(200));
    // Cut at the deadline: sent, so the outcome is unknown (never Accepted, 2 s later).
    assert_eq!(gms.submit(&q, &ctx).await, Err(GmsError::TimedOut));
    assert_eq!(requests(&server).await.len(), 1);

    // A deadline already past: nothing is sent.
    let mut ctx = context();
    ctx.deadline = Some(Instant::now());
    let result = gms.submit(&q, &ctx).await;
    assert!(
        matches!(&result, Err(e @ GmsError::Unavailable { .. }) if e.never_reached_gms()),
        "{result:?}"
    );
    assert_eq!(requests(&server).await.len(), 1, "no second request");

    // Retries stop at the deadline: a 503 every time, and delays longer than what is left.
    let refusing = answering(503).await;
    let mut upstream = fast(url(*refusing.address(), PATH), "t");
    upstream.retry.min_delay = Duration::from_millis(400);
    upstream.retry.max_delay = Duration::from_millis(400);
    let gms = NctsXmlGms::new(defaults::ncts_xml(upstream)).expect("client");
    let mut ctx = context();
    ctx.deadline = Some(Instant::now() + Duration::from_millis(300));
    let result = gms.submit(&q, &ctx).await;
    assert!(
        matches!(result, Err(GmsError::Unavailable { .. })),
        "{result:?}"
    );
    assert_eq!(
        requests(&refusing).await.len(),
        1,
        "no retry could start before the deadline"
    );
}
