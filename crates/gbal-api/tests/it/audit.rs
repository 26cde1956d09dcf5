//! Audit events: one per outcome of a check and per reply received, with their fields, never
//! the access code or a token; the HTTP sink delivers them in batches and never holds a check
//! up when its endpoint is down.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use gbal_api::{Audit, AuditHttpConfig, AuditSink};
use gbal_core::BalanceRequestId;
use gbal_testkit::logs::Logs;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::reply::{PREFIX, ie037, ie906, pending, recipient_of};
use crate::support::sandbox::*;
use crate::support::*;

/// The audit events captured so far, parsed.
fn events(logs: &Logs) -> Vec<Value> {
    logs.text()
        .lines()
        .filter_map(|line| line.strip_prefix("INFO gbal::audit: audit="))
        .map(|quoted| {
            let json: String = serde_json::from_str(quoted).expect("a quoted event");
            serde_json::from_str(&json).expect("an event is a JSON object")
        })
        .collect()
}

/// The one event captured since `before` events, after a call.
fn the_new_event(logs: &Logs, before: &mut usize) -> Value {
    let all = events(logs);
    assert_eq!(all.len(), *before + 1, "one new event: {all:#?}");
    *before = all.len();
    all.last().cloned().expect("an event")
}

/// Asserts `event` has these fields with these values, every other field of `absent` missing,
/// an RFC 3339 UTC time, and returns it.
fn assert_fields(event: &Value, expected: Value, absent: &[&str]) {
    for (key, value) in expected.as_object().expect("an object") {
        assert_eq!(&event[key], value, "{key} of {event:#}");
    }
    for key in absent {
        assert!(event.get(key).is_none(), "{key} in {event:#}");
    }
    let time = event["time"].as_str().expect("a time");
    assert!(time.ends_with('Z') && time.contains('T'), "{time}");
}

/// With an `X-Request-Id` the test chose.
fn with_id(
    mut request: axum::http::Request<axum::body::Body>,
    id: &str,
) -> axum::http::Request<axum::body::Body> {
    request
        .headers_mut()
        .insert("x-request-id", HeaderValue::from_str(id).unwrap());
    request
}

/// The access codes of the checks below: each a string found nowhere else.
const CODES: [&str; 9] = [
    "aC01", "Ac01", "Qz7x", "Wq9k", "Jk5Y", "Tt4r", "Hh2b", "Pp8m", "Uu3v",
];

#[tokio::test]
async fn every_outcome_of_a_check_is_one_event_with_its_fields_and_never_the_access_code() {
    let (logs, _guard) = gbal_testkit::logs::capture();
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_millis(200);
    parts.balance.v2_wait = Duration::from_millis(200);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let sub = caller("audit");
    let token = token(&sub);
    let mut seen = 0;

    // v1 success.
    let reply = app
        .call(with_id(
            v1_post(&token, TIN, GRN_BALANCE, CODES[0]),
            "audit-1",
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let event = the_new_event(&logs, &mut seen);
    assert_fields(
        &event,
        json!({"eventType": "SUCCESS", "httpStatus": 200, "caller": sub, "apiVersion": 1,
            "grn": GRN_BALANCE, "taxIdentifier": TIN, "balance": 12345678.9, "currency": "GBP",
            "httpRequestId": "audit-1"}),
        &["errors", "limit", "code", "messageType", "recipient"],
    );
    event["balanceRequestId"]
        .as_str()
        .unwrap()
        .parse::<BalanceRequestId>()
        .expect("a balance request id");

    // v2 success: no TIN; the exchange's generated request id.
    let reply = app.call(v2_post(&token, GRN_BALANCE_2, CODES[1])).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let event = the_new_event(&logs, &mut seen);
    assert_fields(
        &event,
        json!({"eventType": "SUCCESS", "httpStatus": 200, "caller": sub, "apiVersion": 2,
            "grn": GRN_BALANCE_2, "balance": 1234.56, "currency": "GBP",
            "httpRequestId": reply.header("x-request-id").unwrap()}),
        &["taxIdentifier", "errors"],
    );

    // A functional error (IE906): its error types.
    let reply = app.call(v1_post(&token, TIN, GRN_UNKNOWN, CODES[2])).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let event = the_new_event(&logs, &mut seen);
    assert_fields(
        &event,
        json!({"eventType": "FUNCTIONAL_ERROR", "httpStatus": 400, "grn": GRN_UNKNOWN,
            "code": "FUNCTIONAL_ERROR"}),
        &["balance", "currency"],
    );
    let errors = event["errors"].as_array().expect("errors");
    assert!(!errors.is_empty());
    assert!(
        errors
            .iter()
            .all(|e| e["errorType"].is_u64() && e["errorPointer"].is_string()),
        "{errors:?}"
    );

    // An XML error (IE917).
    let reply = app.call(v1_post(&token, TIN, GRN_IE917, CODES[3])).await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let event = the_new_event(&logs, &mut seen);
    assert_fields(
        &event,
        json!({"eventType": "XML_ERROR", "httpStatus": 502, "code": "BAD_GATEWAY"}),
        &["balance"],
    );
    assert!(!event["errors"].as_array().unwrap().is_empty());

    // The once-a-minute lock.
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODES[4])).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "RATE_LIMITED", "httpStatus": 429, "limit": "lock",
            "grn": GRN_BALANCE, "taxIdentifier": TIN, "code": "TOO_MANY_REQUESTS"}),
        &["balanceRequestId", "balance"],
    );

    // GMS unavailable: the query never reached it.
    let reply = app.call(v1_post(&token, TIN, GRN_503, CODES[5])).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "GMS_UNAVAILABLE", "httpStatus": 503, "grn": GRN_503,
            "code": "SERVICE_UNAVAILABLE"}),
        &[],
    );

    // No answer in time: v1's 202 names the request to poll; v2's 504.
    let reply = app.call(v1_post(&token, TIN, GRN_NO_REPLY, CODES[6])).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "TIMED_OUT", "httpStatus": 202, "apiVersion": 1,
            "balanceRequestId": reply.json()["balanceId"]}),
        &["code"],
    );
    // (Another caller: this one holds the GRN's lock for the minute.)
    let reply = app
        .call(v2_post(
            &crate::support::token(&caller("audit-v2")),
            GRN_NO_REPLY,
            CODES[7],
        ))
        .await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "TIMED_OUT", "httpStatus": 504, "apiVersion": 2,
            "code": "GATEWAY_TIMEOUT"}),
        &["taxIdentifier"],
    );

    // Invalid requests, after authentication: fields, JSON, Accept, media type.
    let reply = app.call(v1_post(&token, "", GRN_BALANCE_3, CODES[8])).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "INVALID_REQUEST", "httpStatus": 400, "caller": sub,
            "apiVersion": 1, "code": "BAD_REQUEST"}),
        &["grn", "taxIdentifier", "balanceRequestId"],
    );
    let reply = app
        .call(v1_post_raw(Some(&token), r#"{"accessCode": "Uu3v""#))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "INVALID_REQUEST", "code": "INVALID_REQUEST_JSON"}),
        &["grn"],
    );
    let mut request = v2_post(&token, GRN_BALANCE_3, CODES[8]);
    request
        .headers_mut()
        .insert(header::ACCEPT, HeaderValue::from_static(V1));
    let reply = app.call(request).await;
    assert_eq!(reply.status, 406, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "INVALID_REQUEST", "httpStatus": 406, "apiVersion": 2,
            "code": "ACCEPT_HEADER_INVALID"}),
        &[],
    );
    let mut request = v2_post(&token, GRN_BALANCE_3, CODES[8]);
    request
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    let reply = app.call(request).await;
    assert_eq!(reply.status, 415, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "INVALID_REQUEST", "httpStatus": 415,
            "code": "UNSUPPORTED_MEDIA_TYPE"}),
        &[],
    );

    // Not audited: no caller (401, 403), and reads.
    let reply = app.call(v1_post_raw(None, "{}")).await;
    assert_eq!(reply.status, 401);
    let id = BalanceRequestId::new().to_string();
    assert_eq!(app.call(v1_get(&token, &id)).await.status, 404);
    assert_eq!(events(&logs).len(), seen, "no event for a 401 or a GET");

    let all = events(&logs);
    let text = all
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    for code in CODES {
        assert!(!text.contains(code), "{code} in an audit event: {text}");
    }
    for event in &all {
        assert!(event.get("accessCode").is_none(), "{event}");
    }
}

#[tokio::test]
async fn a_check_whose_caller_goes_away_is_one_timed_out_event() {
    let (logs, _guard) = gbal_testkit::logs::capture();
    let app = TestApp::sandbox().await;
    let sub = caller("audit-away");
    // No reply ever: the check waits `sync_wait` (5 s); its caller gives up after 200 ms.
    let call = app.call(with_id(
        v1_post(&token(&sub), TIN, GRN_NO_REPLY, CODE),
        "audit-away-1",
    ));
    assert!(
        tokio::time::timeout(Duration::from_millis(200), call)
            .await
            .is_err()
    );
    let all = events(&logs);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_fields(
        &all[0],
        json!({"eventType": "TIMED_OUT", "httpStatus": 499, "caller": sub, "apiVersion": 1,
            "grn": GRN_NO_REPLY, "taxIdentifier": TIN, "httpRequestId": "audit-away-1"}),
        &["code", "balanceRequestId"],
    );
}

#[tokio::test]
async fn a_caller_over_its_rate_is_rate_limited_by_the_client_limit() {
    let (logs, _guard) = gbal_testkit::logs::capture();
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 1;
    })
    .await;
    let sub = caller("audit-rate");
    let token = token(&sub);
    assert_eq!(
        app.call(v2_post(&token, GRN_BALANCE, CODE)).await.status,
        200
    );
    let reply = app
        .call(with_id(
            v2_post(&token, GRN_BALANCE_2, CODE),
            "audit-rate-2",
        ))
        .await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    let all = events(&logs);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_fields(
        &all[1],
        json!({"eventType": "RATE_LIMITED", "httpStatus": 429, "caller": sub,
            "apiVersion": 2, "limit": "client", "code": "MESSAGE_THROTTLED_OUT",
            "httpRequestId": "audit-rate-2"}),
        // Refused before the query was read.
        &["grn", "balanceRequestId"],
    );
    // A GET over the rate is refused too, and is no check.
    let id = BalanceRequestId::new().to_string();
    assert_eq!(app.call(v1_get(&token, &id)).await.status, 429);
    assert_eq!(events(&logs).len(), 2);
}

#[tokio::test]
async fn every_reply_received_is_one_event_with_its_outcome_and_never_the_reply_token() {
    let (logs, _guard) = gbal_testkit::logs::capture();
    let (app, sub, request) = pending().await;
    let mut seen = events(&logs).len();
    assert_eq!(seen, 1, "the check's own TIMED_OUT");
    let recipient = recipient_of(&request);
    let id = request.id.to_string();

    let xml = ie037(&recipient, GRN_NO_REPLY, "1234.50");
    let post = |xml: &str, message_type: &str, request_id: &str| {
        with_id(reply_post(&recipient, Some(message_type), xml), request_id)
    };
    let reply = app.call_internal(post(&xml, "IE037", "reply-1")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let matched = json!({"caller": sub, "apiVersion": 1, "balanceRequestId": id,
        "grn": GRN_NO_REPLY, "taxIdentifier": TIN, "recipient": recipient});
    let accepted = the_new_event(&logs, &mut seen);
    assert_fields(&accepted, matched.clone(), &[]);
    assert_fields(
        &accepted,
        json!({"eventType": "REPLY_ACCEPTED", "httpStatus": 200, "messageType": "IE037",
            "balance": 1234.5, "currency": "GBP", "httpRequestId": "reply-1"}),
        &["errors", "code"],
    );

    let reply = app.call_internal(post(&xml, "IE037", "reply-2")).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let duplicate = the_new_event(&logs, &mut seen);
    assert_fields(&duplicate, matched.clone(), &[]);
    assert_fields(
        &duplicate,
        json!({"eventType": "REPLY_DUPLICATE", "httpStatus": 200}),
        &[],
    );

    let other = ie906(&recipient, request.message_ref.as_str());
    let reply = app.call_internal(post(&other, "IE906", "reply-3")).await;
    assert_eq!(reply.status, 409, "{}", reply.text());
    let conflict = the_new_event(&logs, &mut seen);
    assert_fields(&conflict, matched, &[]);
    assert_fields(
        &conflict,
        json!({"eventType": "REPLY_CONFLICT", "httpStatus": 409, "messageType": "IE906",
            "code": "CONFLICT",
            "errors": [{"errorType": 12, "errorPointer": "GRR(1).ACC(1).Access code"}]}),
        &["balance"],
    );

    let nobody = BalanceRequestId::new().message_id().recipient(PREFIX);
    let reply = app
        .call_internal(reply_post(
            &nobody,
            Some("IE037"),
            &ie037(&nobody, GRN_NO_REPLY, "1"),
        ))
        .await;
    assert_eq!(reply.status, 404, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "REPLY_UNKNOWN_RECIPIENT", "httpStatus": 404,
            "recipient": nobody, "messageType": "IE037", "code": "NOT_FOUND"}),
        &["caller", "balanceRequestId", "grn"],
    );

    // Invalid: not the schema; a recipient that is not one of gbal's; another request's GRN.
    let reply = app
        .call_internal(reply_post(&recipient, Some("IE037"), "<nope/>"))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "REPLY_INVALID", "httpStatus": 400, "code": "SCHEMA_VALIDATION"}),
        &["caller", "recipient", "balanceRequestId"],
    );
    let reply = app
        .call_internal(reply_post("not-ours", Some("IE037"), &xml))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "REPLY_INVALID", "code": "BAD_REQUEST"}),
        &["recipient"],
    );
    let reply = app
        .call_internal(reply_post(
            &recipient,
            Some("IE037"),
            &ie037(&recipient, GRN_BALANCE, "1"),
        ))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_fields(
        &the_new_event(&logs, &mut seen),
        json!({"eventType": "REPLY_INVALID", "recipient": recipient, "messageType": "IE037"}),
        &["caller", "balanceRequestId"],
    );

    // No reply token: refused before anything is read, and not audited.
    let mut unauthenticated = reply_post(&recipient, Some("IE037"), &xml);
    unauthenticated.headers_mut().remove(header::AUTHORIZATION);
    assert_eq!(app.call_internal(unauthenticated).await.status, 401);
    assert_eq!(events(&logs).len(), seen);

    let text = logs.text();
    let audit_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("INFO gbal::audit:"))
        .collect();
    assert!(
        !audit_lines.iter().any(|l| l.contains(REPLY_TOKEN)),
        "{audit_lines:#?}"
    );
    assert!(!audit_lines.iter().any(|l| l.contains(CODE)));
}

/// A POST the audit endpoint received: its `Authorization` header and its JSON body.
type Post = (Option<String>, Value);

/// A local audit endpoint, and what it was sent.
#[derive(Clone, Default)]
struct Receiver {
    posts: Arc<Mutex<Vec<Post>>>,
}

impl Receiver {
    /// Serves `POST /audit` on a loopback port, answering 204.
    async fn start(&self) -> String {
        let posts = self.posts.clone();
        let app = axum::Router::new().route(
            "/audit",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let posts = posts.clone();
                    async move {
                        let auth = headers
                            .get(header::AUTHORIZATION)
                            .map(|v| v.to_str().unwrap().to_owned());
                        let body: Value = serde_json::from_slice(&body).expect("a JSON body");
                        posts.lock().unwrap().push((auth, body));
                        StatusCode::NO_CONTENT
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/audit")
    }

    fn events(&self) -> Vec<Value> {
        self.posts
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(_, batch)| batch.as_array().expect("a JSON array").clone())
            .collect()
    }
}

fn http_sink(url: &str, queue: usize, batch_size: usize) -> AuditHttpConfig {
    AuditHttpConfig {
        url: url.parse().unwrap(),
        token: Some("audit-token-xyz".to_owned()),
        queue,
        batch_size,
        flush_interval: Duration::from_millis(100),
        retries: 1,
        timeout: Duration::from_secs(2),
    }
}

/// The value of `name{reason="<reason>"}` (or of `name` without labels) in a scrape.
fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn the_http_sink_posts_batches_of_events_to_the_endpoint() {
    let metrics = gbal_testkit::metrics::prometheus();
    let receiver = Receiver::default();
    let url = receiver.start().await;
    let (audit, delivery) =
        Audit::new(&AuditSink::Http(http_sink(&url, 100, 3))).expect("an HTTP sink");
    let stop = CancellationToken::new();
    let delivering = tokio::spawn(delivery.expect("a delivery task").run(stop.clone()));
    let mut parts = Parts::sqlite().await;
    parts.audit = audit;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let token = token(&caller("audit-http"));
    let grns = [
        GRN_BALANCE,
        GRN_BALANCE_2,
        GRN_BALANCE_3,
        GRN_UNKNOWN,
        GRN_IE917,
    ];
    for grn in grns {
        app.call(v1_post(&token, TIN, grn, "aC01")).await;
    }
    gbal_testkit::eventually(Duration::from_secs(5), "every event delivered", || {
        let n = receiver.events().len();
        async move { n == grns.len() }
    })
    .await;
    let posts = receiver.posts.lock().unwrap().clone();
    assert!(
        posts
            .iter()
            .all(|(auth, _)| auth.as_deref() == Some("Bearer audit-token-xyz")),
        "{posts:?}"
    );
    let sizes: Vec<usize> = posts
        .iter()
        .map(|(_, b)| b.as_array().unwrap().len())
        .collect();
    assert!(sizes.iter().all(|&n| (1..=3).contains(&n)), "{sizes:?}");
    assert!(sizes.iter().any(|&n| n > 1), "batched: {sizes:?}");
    let events = receiver.events();
    let got: Vec<&str> = events.iter().map(|e| e["grn"].as_str().unwrap()).collect();
    assert_eq!(got, grns, "in order");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["eventType"] == "SUCCESS")
            .count(),
        3
    );

    // Events recorded just before the stop are flushed by it.
    app.call(v2_post(&token, GRN_50000, "aC01")).await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), delivering)
        .await
        .expect("the delivery stops within its timeout")
        .unwrap();
    let events = receiver.events();
    assert_eq!(events.len(), grns.len() + 1);
    assert!(!serde_json::to_string(&events).unwrap().contains("aC01"));
    let text = metrics.render();
    assert_eq!(
        counter(&text, "gbal_audit_events_delivered_total"),
        (grns.len() + 1) as f64,
        "{text}"
    );
    assert_eq!(
        counter(
            &text,
            "gbal_audit_events_dropped_total{reason=\"queue_full\"}"
        ),
        0.0
    );
}

#[tokio::test]
async fn an_audit_endpoint_that_never_answers_slows_no_check_and_drops_are_counted() {
    let metrics = gbal_testkit::metrics::prometheus();
    // Accepts connections and never answers them.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/audit", silent.local_addr().unwrap());
    let held = Arc::new(Mutex::new(Vec::new()));
    {
        let held = held.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = silent.accept().await {
                held.lock().unwrap().push(socket);
            }
        });
    }
    let mut config = http_sink(&url, 2, 1);
    config.timeout = Duration::from_secs(5);
    let (audit, delivery) = Audit::new(&AuditSink::Http(config)).expect("an HTTP sink");
    let stop = CancellationToken::new();
    let delivering = tokio::spawn(delivery.expect("a delivery task").run(stop.clone()));
    let mut parts = Parts::sqlite().await;
    parts.audit = audit;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;

    let checks = 12;
    let started = Instant::now();
    for n in 0..checks {
        // A caller each: the once-a-minute rule does not come into it.
        let token = token(&caller(&format!("audit-down-{n}")));
        let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "{checks} checks took {took:?} with the audit endpoint silent"
    );
    // One event is being sent, two wait in the queue; the rest were dropped.
    let text = metrics.render();
    let dropped = counter(
        &text,
        "gbal_audit_events_dropped_total{reason=\"queue_full\"}",
    );
    assert!(
        dropped >= f64::from(checks - 3),
        "dropped {dropped} of {checks}:\n{text}"
    );
    assert_eq!(counter(&text, "gbal_audit_events_delivered_total"), 0.0);

    // At the stop, the batch in flight gets no more attempts and the last flush gives up
    // within one timeout; what could not be sent is counted.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(15), delivering)
        .await
        .expect("the delivery stops within its timeout")
        .unwrap();
    let text = metrics.render();
    let lost = counter(
        &text,
        "gbal_audit_events_dropped_total{reason=\"queue_full\"}",
    ) + counter(
        &text,
        "gbal_audit_events_dropped_total{reason=\"delivery_failed\"}",
    ) + counter(
        &text,
        "gbal_audit_events_dropped_total{reason=\"shutdown\"}",
    );
    assert_eq!(
        lost,
        f64::from(checks),
        "every event is accounted for:\n{text}"
    );
}
