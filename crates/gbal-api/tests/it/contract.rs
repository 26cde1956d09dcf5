//! The wire contract, row by row. Every row of the contract's tables (route, version,
//! situation, status, code, message, and the exact body or headers where the contract gives
//! them) is written out below, independently of the code that answers, and played against
//! the app in process; every difference is reported, not only the first.
//!
//! In the expected texts, `<id>`, `<grn>` and `<recipient>` stand for the request's values;
//! in an expected body, the string `"<any>"` matches any value; an empty message means the
//! contract does not write it out (any text will do).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gbal_api::ApiConfig;
use gbal_core::outcome::Balance;
use gbal_core::{BalanceRequestId, Gms, GmsError, Outcome, Submission};
use gbal_ncts::{Header, Ie037};
use gbal_testkit::gms_rules::Case;
use serde_json::Value;

use crate::reply::{ie037, ie906, ie917};
use crate::support::sandbox::*;
use crate::support::*;

/// The prefix of recipient ids, as the contract gives it.
const PREFIX: &str = "MDTP-GUA-";

const V1_POST: &str = "POST /customs/guarantees/balances";
const V1_GET: &str = "GET /customs/guarantees/balances/{balanceId}";
const V2_POST: &str = "POST /customs/guarantees/{grn}/balance";
const REPLY: &str = "POST /balances/{recipient} (internal)";
const ANY: &str = "any route";

/// One row of the contract.
struct Row {
    route: &'static str,
    version: &'static str,
    situation: &'static str,
    status: u16,
    /// The error body's `code`; empty for an answer that is not an error body.
    code: &'static str,
    /// The error body's `message`; empty when the contract does not write it out.
    message: &'static str,
    /// The whole body, when the contract gives it (JSON; empty: not given).
    body: &'static str,
    /// Headers the contract names, with their values (`<seconds>`: a whole number ≥ 1).
    headers: &'static [(&'static str, &'static str)],
}

const fn row(
    route: &'static str,
    version: &'static str,
    situation: &'static str,
    status: u16,
    code: &'static str,
    message: &'static str,
) -> Row {
    Row {
        route,
        version,
        situation,
        status,
        code,
        message,
        body: "",
        headers: &[],
    }
}

const fn with_body(mut r: Row, body: &'static str) -> Row {
    r.body = body;
    r
}

const fn with_headers(mut r: Row, headers: &'static [(&'static str, &'static str)]) -> Row {
    r.headers = headers;
    r
}

const FUNCTIONAL: &str = "The request was rejected by the guarantee management system";
const BAD_GATEWAY: &str = "The guarantee management system could not process the request";
const THROTTLED: &str = "The request for the API is throttled as you have exceeded your quota.";
const RETRY_AFTER: &[(&str, &str)] = &[("retry-after", "<seconds>")];

/// The contract's rows.
const ROWS: &[Row] = &[
    // --- Authentication and the order of the checks (every public route) ---
    with_headers(
        row(V1_POST, "v1", "no token", 401, "UNAUTHORIZED", ""),
        &[("www-authenticate", r#"Bearer error="invalid_token""#)],
    ),
    with_headers(
        row(
            V1_POST,
            "v1",
            "a token signed by another key",
            401,
            "UNAUTHORIZED",
            "",
        ),
        &[("www-authenticate", r#"Bearer error="invalid_token""#)],
    ),
    row(
        V1_POST,
        "v1",
        "a valid token without the scope",
        403,
        "FORBIDDEN",
        "",
    ),
    with_headers(
        row(V2_POST, "v2", "no token", 401, "UNAUTHORIZED", ""),
        &[("www-authenticate", r#"Bearer error="invalid_token""#)],
    ),
    row(
        V2_POST,
        "v2",
        "a valid token without the scope",
        403,
        "FORBIDDEN",
        "",
    ),
    row(V1_GET, "v1", "no token", 401, "UNAUTHORIZED", ""),
    row(
        V1_POST,
        "v1",
        "no token and no Accept: auth first",
        401,
        "UNAUTHORIZED",
        "",
    ),
    with_headers(
        with_body(
            row(
                V1_POST,
                "v1",
                "caller over its rate and no Accept: the rate right after auth",
                429,
                "TOO_MANY_REQUESTS",
                "Too many requests",
            ),
            r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#,
        ),
        RETRY_AFTER,
    ),
    with_headers(
        row(
            V2_POST,
            "v2",
            "caller over its rate and no Accept: the rate right after auth",
            429,
            "MESSAGE_THROTTLED_OUT",
            THROTTLED,
        ),
        RETRY_AFTER,
    ),
    with_headers(
        with_body(
            row(
                V1_GET,
                "v1",
                "caller over its rate",
                429,
                "TOO_MANY_REQUESTS",
                "Too many requests",
            ),
            r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#,
        ),
        RETRY_AFTER,
    ),
    row(
        V1_POST,
        "v1",
        "no Accept and a body that is not JSON: Accept before the body",
        406,
        "ACCEPT_HEADER_INVALID",
        "The accept header is missing or invalid",
    ),
    // --- Version 1: POST /balances ---
    with_body(
        row(V1_POST, "v1", "IE037 within sync_wait", 200, "", ""),
        r#"{"response":{"balance":12345678.9,"currency":"GBP"}}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "IE906 within sync_wait",
            400,
            "FUNCTIONAL_ERROR",
            FUNCTIONAL,
        ),
        r#"{"code":"FUNCTIONAL_ERROR","message":"The request was rejected by the guarantee management system","response":{"errors":[{"errorType":12,"errorPointer":"GRR(1).ACC(1).Access code"}]}}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "IE906 with a reason",
            400,
            "FUNCTIONAL_ERROR",
            FUNCTIONAL,
        ),
        r#"{"code":"FUNCTIONAL_ERROR","message":"The request was rejected by the guarantee management system","response":{"errors":[{"errorType":14,"errorPointer":"GRR(1).GQY(1).Query identifier","errorReason":"R261"}]}}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "the GMS query limit (26 RC1.TIN alone)",
            400,
            "FUNCTIONAL_ERROR",
            FUNCTIONAL,
        ),
        r#"{"code":"FUNCTIONAL_ERROR","message":"The request was rejected by the guarantee management system","response":{"errors":[{"errorType":26,"errorPointer":"RC1.TIN"}]}}"#,
    ),
    with_headers(
        with_body(
            row(V1_POST, "v1", "no reply within sync_wait", 202, "", ""),
            r#"{"_links":{"self":{"href":"/customs/guarantees/balances/<id>"}},"balanceId":"<id>"}"#,
        ),
        &[("location", "/customs/guarantees/balances/<id>")],
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "body not JSON",
            400,
            "INVALID_REQUEST_JSON",
            "Invalid request JSON",
        ),
        "",
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "body of the wrong shape",
            400,
            "INVALID_REQUEST_JSON",
            "Invalid request JSON",
        ),
        r#"{"code":"INVALID_REQUEST_JSON","message":"Invalid request JSON","errors":{"$.accessCode":["Missing path"]}}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "a field of the wrong type",
            400,
            "INVALID_REQUEST_JSON",
            "Invalid request JSON",
        ),
        r#"{"code":"INVALID_REQUEST_JSON","message":"Invalid request JSON","errors":{"$.accessCode":["String value expected"]}}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "field rules broken",
            400,
            "BAD_REQUEST",
            "Bad request",
        ),
        r#"{"code":"BAD_REQUEST","message":"Bad request","errors":[{"code":"INVALID_ACCESS_CODE","message":"Invalid access code value","reason":"Access code must be 4 characters in length"}]}"#,
    ),
    with_headers(
        with_body(
            row(
                V1_POST,
                "v1",
                "same caller and GRN within 60 s",
                429,
                "TOO_MANY_REQUESTS",
                "Too many requests",
            ),
            r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#,
        ),
        RETRY_AFTER,
    ),
    with_headers(
        with_body(
            row(
                V1_POST,
                "v1",
                "caller over its request rate",
                429,
                "TOO_MANY_REQUESTS",
                "Too many requests",
            ),
            r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#,
        ),
        RETRY_AFTER,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "Accept missing",
            406,
            "ACCEPT_HEADER_INVALID",
            "The accept header is missing or invalid",
        ),
        r#"{"code":"ACCEPT_HEADER_INVALID","message":"The accept header is missing or invalid"}"#,
    ),
    row(
        V1_POST,
        "v1",
        "Accept of another version",
        406,
        "ACCEPT_HEADER_INVALID",
        "The accept header is missing or invalid",
    ),
    row(
        V1_POST,
        "v1",
        "Content-Type not JSON",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "",
    ),
    row(
        V1_POST,
        "v1",
        "body over the limit (16 KiB)",
        413,
        "REQUEST_ENTITY_TOO_LARGE",
        "",
    ),
    with_body(
        row(V1_POST, "v1", "IE917", 502, "BAD_GATEWAY", BAD_GATEWAY),
        r#"{"code":"BAD_GATEWAY","message":"The guarantee management system could not process the request"}"#,
    ),
    row(
        V1_POST,
        "v1",
        "GMS refused the exchange",
        502,
        "BAD_GATEWAY",
        BAD_GATEWAY,
    ),
    row(
        V1_POST,
        "v1",
        "GMS garbled the exchange",
        502,
        "BAD_GATEWAY",
        BAD_GATEWAY,
    ),
    with_headers(
        row(
            V1_POST,
            "v1",
            "GMS unreachable",
            503,
            "SERVICE_UNAVAILABLE",
            "",
        ),
        RETRY_AFTER,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "a retry after a 503 (the lock was released)",
            200,
            "",
            "",
        ),
        r#"{"response":{"balance":10,"currency":"GBP"}}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "submission timed out after sending (outcome unknown)",
            202,
            "",
            "",
        ),
        r#"{"_links":{"self":{"href":"/customs/guarantees/balances/<id>"}},"balanceId":"<id>"}"#,
    ),
    with_body(
        row(
            V1_POST,
            "v1",
            "anything else",
            500,
            "INTERNAL_SERVER_ERROR",
            "Internal server error",
        ),
        r#"{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}"#,
    ),
    // --- Version 1: GET /balances/{balanceId} ---
    with_body(
        row(V1_GET, "v1", "pending", 200, "", ""),
        r#"{"_links":{"self":{"href":"/customs/guarantees/balances/<id>"}},"request":{"balanceId":"<id>","taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000090000029","requestedAt":"<any>"}}"#,
    ),
    with_body(
        row(V1_GET, "v1", "balance", 200, "", ""),
        r#"{"_links":{"self":{"href":"/customs/guarantees/balances/<id>"}},"request":{"balanceId":"<id>","taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000090000029","requestedAt":"<any>","completedAt":"<any>","response":{"status":"SUCCESS","balance":50000,"currency":"GBP"}}}"#,
    ),
    with_body(
        row(V1_GET, "v1", "functional error", 200, "", ""),
        r#"{"_links":{"self":{"href":"/customs/guarantees/balances/<id>"}},"request":{"balanceId":"<id>","taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000090000029","requestedAt":"<any>","completedAt":"<any>","response":{"status":"FUNCTIONAL_ERROR","errors":[{"errorType":12,"errorPointer":"GRR(1).ACC(1).Access code"}]}}}"#,
    ),
    with_body(
        row(V1_GET, "v1", "XML error", 502, "BAD_GATEWAY", BAD_GATEWAY),
        r#"{"code":"BAD_GATEWAY","message":"The guarantee management system could not process the request"}"#,
    ),
    with_body(
        row(
            V1_GET,
            "v1",
            "unknown",
            404,
            "NOT_FOUND",
            "The balance request with ID <id> was not found",
        ),
        r#"{"code":"NOT_FOUND","message":"The balance request with ID <id> was not found"}"#,
    ),
    row(
        V1_GET,
        "v1",
        "expired (1 h after requestedAt)",
        404,
        "NOT_FOUND",
        "The balance request with ID <id> was not found",
    ),
    row(
        V1_GET,
        "v1",
        "another caller's",
        404,
        "NOT_FOUND",
        "The balance request with ID <id> was not found",
    ),
    with_body(
        row(
            V1_GET,
            "v1",
            "id not a UUID",
            400,
            "BAD_REQUEST",
            "The balance request ID is not a valid UUID",
        ),
        r#"{"code":"BAD_REQUEST","message":"The balance request ID is not a valid UUID"}"#,
    ),
    // --- Version 2: POST /{grn}/balance ---
    with_body(
        row(V2_POST, "v2", "balance", 200, "", ""),
        r#"{"_links":{"self":{"href":"/customs/guarantees/26GB0000010000039/balance"}},"balance":1234.56,"currency":"GBP"}"#,
    ),
    row(
        V2_POST,
        "v2",
        "GRN malformed",
        400,
        "BAD_REQUEST",
        "The guarantee reference number is not in the correct format.",
    ),
    row(
        V2_POST,
        "v2",
        "GRN not GB/XI",
        400,
        "BAD_REQUEST",
        "The guarantee reference number must be for a GB or XI guarantee.",
    ),
    row(
        V2_POST,
        "v2",
        "accessCode absent",
        400,
        "BAD_REQUEST",
        "The access code was not supplied.",
    ),
    row(
        V2_POST,
        "v2",
        "accessCode not a string",
        400,
        "BAD_REQUEST",
        "The access code was not supplied.",
    ),
    row(
        V2_POST,
        "v2",
        "accessCode not 4 letters/digits",
        400,
        "BAD_REQUEST",
        "Access code must be four alphanumeric characters.",
    ),
    row(
        V2_POST,
        "v2",
        "guarantee type not 0, 1 or 9 (14 R261)",
        400,
        "INVALID_GUARANTEE_TYPE",
        "Guarantee type is not supported.",
    ),
    row(
        V2_POST,
        "v2",
        "GRN unknown",
        404,
        "NOT_FOUND",
        "The guarantee reference number or access code did not match an existing guarantee.",
    ),
    row(
        V2_POST,
        "v2",
        "access code wrong",
        404,
        "NOT_FOUND",
        "The guarantee reference number or access code did not match an existing guarantee.",
    ),
    with_headers(
        with_body(
            row(
                V2_POST,
                "v2",
                "same caller and GRN within 60 s",
                429,
                "MESSAGE_THROTTLED_OUT",
                THROTTLED,
            ),
            r#"{"code":"MESSAGE_THROTTLED_OUT","message":"The request for the API is throttled as you have exceeded your quota."}"#,
        ),
        RETRY_AFTER,
    ),
    with_headers(
        row(
            V2_POST,
            "v2",
            "GMS query limit",
            429,
            "MESSAGE_THROTTLED_OUT",
            THROTTLED,
        ),
        RETRY_AFTER,
    ),
    row(
        V2_POST,
        "v2",
        "Accept missing",
        406,
        "ACCEPT_HEADER_INVALID",
        "The Accept header must be set to application/vnd.hmrc.2.0+json to use this resource.",
    ),
    row(
        V2_POST,
        "v2",
        "Accept of another version",
        406,
        "ACCEPT_HEADER_INVALID",
        "The Accept header must be set to application/vnd.hmrc.2.0+json to use this resource.",
    ),
    row(
        V2_POST,
        "v2",
        "any other IE906",
        400,
        "FUNCTIONAL_ERROR",
        FUNCTIONAL,
    ),
    with_body(
        row(
            V2_POST,
            "v2",
            "no answer within v2_wait",
            504,
            "GATEWAY_TIMEOUT",
            "The guarantee management system did not answer in time",
        ),
        r#"{"code":"GATEWAY_TIMEOUT","message":"The guarantee management system did not answer in time"}"#,
    ),
    row(
        V2_POST,
        "v2",
        "submission timed out after sending",
        504,
        "GATEWAY_TIMEOUT",
        "The guarantee management system did not answer in time",
    ),
    row(
        V2_POST,
        "v2",
        "body over the limit",
        413,
        "REQUEST_ENTITY_TOO_LARGE",
        "",
    ),
    row(
        V2_POST,
        "v2",
        "Content-Type not JSON",
        415,
        "UNSUPPORTED_MEDIA_TYPE",
        "",
    ),
    row(V2_POST, "v2", "IE917", 502, "BAD_GATEWAY", BAD_GATEWAY),
    with_headers(
        row(
            V2_POST,
            "v2",
            "GMS unreachable",
            503,
            "SERVICE_UNAVAILABLE",
            "",
        ),
        RETRY_AFTER,
    ),
    with_body(
        row(
            V2_POST,
            "v2",
            "a retry after a 503 (the lock was released)",
            200,
            "",
            "",
        ),
        r#"{"_links":{"self":{"href":"/customs/guarantees/26GB0000010000039/balance"}},"balance":10,"currency":"GBP"}"#,
    ),
    with_body(
        row(
            V2_POST,
            "v2",
            "anything else",
            500,
            "INTERNAL_SERVER_ERROR",
            "Internal server error",
        ),
        r#"{"code":"INTERNAL_SERVER_ERROR","message":"Internal server error"}"#,
    ),
    // --- Any public path ---
    row(ANY, "-", "another method on a known path", 405, "", ""),
    with_body(
        row(
            ANY,
            "-",
            "an unknown path",
            404,
            "NOT_FOUND",
            "URI not found",
        ),
        r#"{"code":"NOT_FOUND","message":"URI not found"}"#,
    ),
    // --- Internal listener: GMS replies ---
    row(REPLY, "internal", "stored", 200, "", ""),
    row(REPLY, "internal", "an identical duplicate", 200, "", ""),
    row(REPLY, "internal", "no token", 401, "", ""),
    with_body(
        row(
            REPLY,
            "internal",
            "X-Message-Type missing",
            400,
            "BAD_REQUEST",
            "Missing or incorrect X-Message-Type header",
        ),
        r#"{"code":"BAD_REQUEST","message":"Missing or incorrect X-Message-Type header"}"#,
    ),
    row(
        REPLY,
        "internal",
        "X-Message-Type unknown",
        400,
        "BAD_REQUEST",
        "Missing or incorrect X-Message-Type header",
    ),
    row(
        REPLY,
        "internal",
        "recipient not of the form <prefix><24 hex>: bad hex",
        400,
        "BAD_REQUEST",
        "",
    ),
    row(
        REPLY,
        "internal",
        "recipient not of the form <prefix><24 hex>: another prefix",
        400,
        "BAD_REQUEST",
        "",
    ),
    with_body(
        row(
            REPLY,
            "internal",
            "schema-valid IE037 with no balance (no BalEXP3)",
            400,
            "BAD_REQUEST",
            "Unable to parse required values from IE037 message",
        ),
        r#"{"code":"BAD_REQUEST","message":"Unable to parse required values from IE037 message"}"#,
    ),
    with_body(
        row(
            REPLY,
            "internal",
            "schema rules broken",
            400,
            "SCHEMA_VALIDATION",
            "Error while validating IE037 message",
        ),
        r#"{"code":"SCHEMA_VALIDATION","message":"Error while validating IE037 message","errors":"<any>"}"#,
    ),
    row(
        REPLY,
        "internal",
        "root does not match the header",
        400,
        "SCHEMA_VALIDATION",
        "",
    ),
    row(
        REPLY,
        "internal",
        "names a request it does not belong to (the IE037's GRN)",
        400,
        "BAD_REQUEST",
        "",
    ),
    with_body(
        row(
            REPLY,
            "internal",
            "unknown recipient",
            404,
            "NOT_FOUND",
            "The balance request with message identifier <recipient> was not found",
        ),
        r#"{"code":"NOT_FOUND","message":"The balance request with message identifier <recipient> was not found"}"#,
    ),
    row(
        REPLY,
        "internal",
        "the request already has a different outcome",
        409,
        "CONFLICT",
        "",
    ),
    // --- Probes ---
    row("GET /livez", "-", "process up", 200, "", ""),
    row("GET /readyz", "-", "database answers", 200, "", ""),
    row(
        "GET /readyz",
        "-",
        "shutting down",
        503,
        "SERVICE_UNAVAILABLE",
        "",
    ),
    row("GET /openapi.json", "-", "the document", 200, "", ""),
];

/// What a row's situation produced: the answer, and the values its expectations name.
struct Played {
    reply: Reply,
    vars: BTreeMap<&'static str, String>,
}

impl From<Reply> for Played {
    fn from(reply: Reply) -> Self {
        Played {
            reply,
            vars: BTreeMap::new(),
        }
    }
}

/// A Balance answered at once.
fn balance(amount: &str) -> Outcome {
    Outcome::Success(Balance {
        amount: amount.parse().expect("an amount"),
        currency: "GBP".parse().expect("a currency"),
    })
}

/// An app over the sandbox with `tweak` applied to its settings, and short waits.
async fn app_with(tweak: impl FnOnce(&mut ApiConfig)) -> TestApp {
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_millis(200);
    parts.balance.v2_wait = Duration::from_millis(200);
    let gms = parts.simulator();
    TestApp::build(parts, gms, tweak).await
}

async fn sandbox() -> TestApp {
    app_with(|_| {}).await
}

/// An app whose GMS answers with `answer`.
async fn gms_app(
    answer: impl Fn(&gbal_core::BalanceQuery) -> Result<Submission, GmsError> + Send + Sync + 'static,
) -> TestApp {
    let parts = Parts::sqlite().await;
    let gms: Arc<dyn Gms> = FakeGms::new(answer);
    TestApp::build(parts, gms, |_| {}).await
}

/// An app whose GMS is unreachable once, then answers a balance of 10.
async fn unreachable_once() -> TestApp {
    let calls = AtomicUsize::new(0);
    gms_app(move |_| {
        if calls.fetch_add(1, Ordering::SeqCst) == 0 {
            Err(GmsError::Unavailable {
                retry_after: Duration::from_secs(1),
                reason: "connection refused".to_owned(),
            })
        } else {
            Ok(Submission::Answered(balance("10")))
        }
    })
    .await
}

/// An app allowing each caller one request, then refusing it for its rate.
async fn one_request_per_caller() -> TestApp {
    app_with(|config| {
        config.rate_limit.per_second = 1;
        config.rate_limit.burst = 1;
    })
    .await
}

fn without(mut request: Request<Body>, header: &str) -> Request<Body> {
    request.headers_mut().remove(header);
    request
}

fn with(mut request: Request<Body>, header: &'static str, value: &str) -> Request<Body> {
    request
        .headers_mut()
        .insert(header, value.parse().expect("a header value"));
    request
}

fn no_token(request: Request<Body>) -> Request<Body> {
    without(request, "authorization")
}

/// A pending v1 request (the sandbox's guarantee that never replies), its caller and id.
async fn pending(app: &TestApp) -> (String, BalanceRequestId) {
    let sub = caller("contract");
    let reply = app
        .call(v1_post(&token(&sub), TIN, GRN_NO_REPLY, CODE))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let id = reply.json()["balanceId"]
        .as_str()
        .expect("balanceId")
        .parse()
        .expect("a request id");
    (sub, id)
}

fn recipient(id: BalanceRequestId) -> String {
    format!("{PREFIX}{}", id.message_id().to_hex())
}

/// A pending request, answered on the internal listener with `xml` of `kind`; then GET.
async fn answered_then_get(kind: &str, xml: impl Fn(&str) -> String) -> Played {
    let app = sandbox().await;
    let (sub, id) = pending(&app).await;
    let to = recipient(id);
    let stored = app
        .call_internal(reply_post(&to, Some(kind), &xml(&to)))
        .await;
    assert_eq!(stored.status, 200, "the reply is stored: {}", stored.text());
    let reply = app.call(v1_get(&token(&sub), &id.to_string())).await;
    Played {
        reply,
        vars: BTreeMap::from([("id", id.to_string())]),
    }
}

/// The IE906's OriMesIdeMES22 must name the IE034: read the request's message reference.
async fn message_ref(app: &TestApp, id: BalanceRequestId) -> String {
    app.tracker
        .get_by_message_id(id.message_id(), app.clock.now())
        .await
        .expect("the store answers")
        .expect("the request")
        .message_ref
        .as_str()
        .to_owned()
}

/// An IE037 without BalEXP3, otherwise valid.
fn ie037_without_balance(recipient: &str, grn: &str) -> String {
    Ie037 {
        header: Header {
            sender: "NTA.GB".to_owned(),
            recipient: recipient.to_owned(),
            prepared_at: time::OffsetDateTime::now_utc(),
            message_ref: gbal_core::UniqueReference::random(),
        },
        requester_tin: Some(TIN.to_owned()),
        guarantee_office: "GB000001".to_owned(),
        grn: grn.to_owned(),
        accepted_on: "20210114".to_owned(),
        guarantee_type: "1".parse().expect("a type"),
        exposure: "0".parse().expect("an amount"),
        balance: None,
        currency: "GBP".parse().expect("a currency"),
    }
    .build()
    .expect("an IE037 without a balance is schema-valid")
}

/// Plays one row's situation.
async fn play(row: &Row) -> Played {
    let v1 = |sub: &str, grn: &str, code: &str| v1_post(&token(sub), TIN, grn, code);
    let v2 = |sub: &str, grn: &str, code: &str| v2_post(&token(sub), grn, code);
    let fresh = || caller("contract");
    match (row.route, row.situation) {
        // Authentication and order.
        (V1_POST, "no token") => sandbox()
            .await
            .call(no_token(v1(&fresh(), GRN_BALANCE, CODE)))
            .await
            .into(),
        (V1_POST, "a token signed by another key") => {
            let claims = claims(&fresh());
            let key = jsonwebtoken::EncodingKey::from_rsa_pem(&key_file("unknown-private.pem"))
                .expect("a key");
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            header.kid = Some(KID.to_owned());
            let forged = jsonwebtoken::encode(&header, &claims, &key).expect("a token");
            sandbox()
                .await
                .call(v1_post(&forged, TIN, GRN_BALANCE, CODE))
                .await
                .into()
        }
        (V1_POST, "a valid token without the scope") => {
            let mut claims = claims(&fresh());
            claims.as_object_mut().expect("claims").remove("scope");
            sandbox()
                .await
                .call(v1_post(&sign(&claims), TIN, GRN_BALANCE, CODE))
                .await
                .into()
        }
        (V2_POST, "no token") => sandbox()
            .await
            .call(no_token(v2(&fresh(), GRN_BALANCE_2, CODE)))
            .await
            .into(),
        (V2_POST, "a valid token without the scope") => {
            let mut claims = claims(&fresh());
            claims.as_object_mut().expect("claims").remove("scope");
            sandbox()
                .await
                .call(v2_post(&sign(&claims), GRN_BALANCE_2, CODE))
                .await
                .into()
        }
        (V1_GET, "no token") => sandbox()
            .await
            .call(no_token(v1_get(
                &token(&fresh()),
                &BalanceRequestId::new().to_string(),
            )))
            .await
            .into(),
        (V1_POST, "no token and no Accept: auth first") => sandbox()
            .await
            .call(without(no_token(v1(&fresh(), GRN_BALANCE, CODE)), "accept"))
            .await
            .into(),
        (route, "caller over its rate and no Accept: the rate right after auth") => {
            let app = one_request_per_caller().await;
            let sub = fresh();
            let spent = app
                .call(v1_get(&token(&sub), &BalanceRequestId::new().to_string()))
                .await;
            assert_eq!(spent.status, 404, "the caller's one request");
            let request = if route == V1_POST {
                v1(&sub, GRN_BALANCE, CODE)
            } else {
                v2(&sub, GRN_BALANCE_2, CODE)
            };
            app.call(without(request, "accept")).await.into()
        }
        (V1_GET, "caller over its rate") => {
            let app = one_request_per_caller().await;
            let sub = fresh();
            let id = BalanceRequestId::new().to_string();
            let spent = app.call(v1_get(&token(&sub), &id)).await;
            assert_eq!(spent.status, 404, "the caller's one request");
            app.call(v1_get(&token(&sub), &id)).await.into()
        }
        (V1_POST, "no Accept and a body that is not JSON: Accept before the body") => sandbox()
            .await
            .call(without(v1_post_raw(Some(&token(&fresh())), "{"), "accept"))
            .await
            .into(),
        // Version 1: POST.
        (V1_POST, "IE037 within sync_wait") => sandbox()
            .await
            .call(v1(&fresh(), GRN_BALANCE, CODE))
            .await
            .into(),
        (V1_POST, "IE906 within sync_wait") => sandbox()
            .await
            .call(v1(&fresh(), GRN_BALANCE_3, "ZZ99"))
            .await
            .into(),
        (V1_POST, "IE906 with a reason") => sandbox()
            .await
            .call(v1(&fresh(), GRN_TYPE_2, CODE))
            .await
            .into(),
        (V1_POST, "the GMS query limit (26 RC1.TIN alone)") => sandbox()
            .await
            .call(v1_post(&token(&fresh()), TIN_QUERY_LIMIT, GRN_BALANCE, CODE))
            .await
            .into(),
        (V1_POST, "no reply within sync_wait") => {
            let reply = sandbox().await.call(v1(&fresh(), GRN_NO_REPLY, CODE)).await;
            let id = reply.json()["balanceId"].as_str().unwrap_or("?").to_owned();
            Played {
                reply,
                vars: BTreeMap::from([("id", id)]),
            }
        }
        (V1_POST, "body not JSON") => sandbox()
            .await
            .call(v1_post_raw(Some(&token(&fresh())), "not JSON"))
            .await
            .into(),
        (V1_POST, "body of the wrong shape") => sandbox()
            .await
            .call(v1_post_raw(
                Some(&token(&fresh())),
                r#"{"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021"}"#,
            ))
            .await
            .into(),
        (V1_POST, "a field of the wrong type") => sandbox()
            .await
            .call(v1_post_raw(
                Some(&token(&fresh())),
                r#"{"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021","accessCode":1234}"#,
            ))
            .await
            .into(),
        (V1_POST, "field rules broken") => sandbox()
            .await
            .call(v1(&fresh(), GRN_BALANCE, "AC0"))
            .await
            .into(),
        (V1_POST, "same caller and GRN within 60 s") => {
            let app = sandbox().await;
            let sub = fresh();
            assert_eq!(app.call(v1(&sub, GRN_BALANCE, CODE)).await.status, 200);
            app.call(v1(&sub, GRN_BALANCE, CODE)).await.into()
        }
        (V1_POST, "caller over its request rate") => {
            let app = one_request_per_caller().await;
            let sub = fresh();
            assert_eq!(app.call(v1(&sub, GRN_BALANCE, CODE)).await.status, 200);
            app.call(v1(&sub, GRN_BALANCE_2, CODE)).await.into()
        }
        (V1_POST, "Accept missing") => sandbox()
            .await
            .call(without(v1(&fresh(), GRN_BALANCE, CODE), "accept"))
            .await
            .into(),
        (V1_POST, "Accept of another version") => sandbox()
            .await
            .call(with(v1(&fresh(), GRN_BALANCE, CODE), "accept", V2))
            .await
            .into(),
        (V1_POST, "Content-Type not JSON") => sandbox()
            .await
            .call(with(
                v1(&fresh(), GRN_BALANCE, CODE),
                "content-type",
                "application/xml",
            ))
            .await
            .into(),
        (V1_POST, "body over the limit (16 KiB)") => {
            let body = format!(
                r#"{{"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021","accessCode":"AC01","pad":"{}"}}"#,
                "x".repeat(16 * 1024)
            );
            sandbox()
                .await
                .call(v1_post_raw(Some(&token(&fresh())), &body))
                .await
                .into()
        }
        (V1_POST, "IE917") => sandbox()
            .await
            .call(v1(&fresh(), GRN_IE917, CODE))
            .await
            .into(),
        (V1_POST, "GMS refused the exchange") => {
            gms_app(|_| Err(GmsError::Rejected { status: 400 }))
                .await
                .call(v1(&fresh(), GRN_BALANCE, CODE))
                .await
                .into()
        }
        (V1_POST, "GMS garbled the exchange") => sandbox()
            .await
            .call(v1(&fresh(), GRN_MALFORMED, CODE))
            .await
            .into(),
        (V1_POST, "GMS unreachable") => sandbox()
            .await
            .call(v1(&fresh(), GRN_503, CODE))
            .await
            .into(),
        (V1_POST, "a retry after a 503 (the lock was released)") => {
            let app = unreachable_once().await;
            let sub = fresh();
            let refused = app.call(v1(&sub, GRN_BALANCE, CODE)).await;
            assert_eq!(refused.status, 503, "{}", refused.text());
            app.call(v1(&sub, GRN_BALANCE, CODE)).await.into()
        }
        (V1_POST, "submission timed out after sending (outcome unknown)") => {
            let reply = gms_app(|_| Err(GmsError::TimedOut))
                .await
                .call(v1(&fresh(), GRN_BALANCE, CODE))
                .await;
            let id = reply.json()["balanceId"].as_str().unwrap_or("?").to_owned();
            Played {
                reply,
                vars: BTreeMap::from([("id", id)]),
            }
        }
        (V1_POST, "anything else") => {
            gms_app(|_| Err(GmsError::Internal("the IE034 failed its self-check".to_owned())))
                .await
                .call(v1(&fresh(), GRN_BALANCE, CODE))
                .await
                .into()
        }
        // Version 1: GET.
        (V1_GET, "pending") => {
            let app = sandbox().await;
            let (sub, id) = pending(&app).await;
            Played {
                reply: app.call(v1_get(&token(&sub), &id.to_string())).await,
                vars: BTreeMap::from([("id", id.to_string())]),
            }
        }
        (V1_GET, "balance") => {
            answered_then_get("IE037", |to| ie037(to, GRN_NO_REPLY, "50000.00")).await
        }
        (V1_GET, "functional error") => {
            let app = sandbox().await;
            let (sub, id) = pending(&app).await;
            let to = recipient(id);
            let reference = message_ref(&app, id).await;
            let stored = app
                .call_internal(reply_post(&to, Some("IE906"), &ie906(&to, &reference)))
                .await;
            assert_eq!(stored.status, 200, "{}", stored.text());
            Played {
                reply: app.call(v1_get(&token(&sub), &id.to_string())).await,
                vars: BTreeMap::from([("id", id.to_string())]),
            }
        }
        (V1_GET, "XML error") => {
            let app = sandbox().await;
            let (sub, id) = pending(&app).await;
            let to = recipient(id);
            let reference = message_ref(&app, id).await;
            let stored = app
                .call_internal(reply_post(&to, Some("IE917"), &ie917(&to, &reference)))
                .await;
            assert_eq!(stored.status, 200, "{}", stored.text());
            Played {
                reply: app.call(v1_get(&token(&sub), &id.to_string())).await,
                vars: BTreeMap::from([("id", id.to_string())]),
            }
        }
        (V1_GET, "unknown") => {
            let id = BalanceRequestId::new().to_string();
            Played {
                reply: sandbox().await.call(v1_get(&token(&fresh()), &id)).await,
                vars: BTreeMap::from([("id", id)]),
            }
        }
        (V1_GET, "expired (1 h after requestedAt)") => {
            let clock = TestClock::now();
            let mut parts = Parts::sqlite().await;
            parts.clock = clock.clone();
            parts.balance.sync_wait = Duration::from_millis(200);
            let gms = parts.simulator();
            let app = TestApp::build(parts, gms, |_| {}).await;
            let (sub, id) = pending(&app).await;
            clock.advance(Duration::from_secs(3600));
            Played {
                reply: app.call(v1_get(&token(&sub), &id.to_string())).await,
                vars: BTreeMap::from([("id", id.to_string())]),
            }
        }
        (V1_GET, "another caller's") => {
            let app = sandbox().await;
            let (_, id) = pending(&app).await;
            Played {
                reply: app.call(v1_get(&token(&fresh()), &id.to_string())).await,
                vars: BTreeMap::from([("id", id.to_string())]),
            }
        }
        (V1_GET, "id not a UUID") => sandbox()
            .await
            .call(v1_get(&token(&fresh()), "not-a-uuid"))
            .await
            .into(),
        // Version 2.
        (V2_POST, "balance") => sandbox()
            .await
            .call(v2(&fresh(), GRN_BALANCE_2, CODE))
            .await
            .into(),
        (V2_POST, "GRN malformed") => sandbox()
            .await
            .call(v2(&fresh(), "26GB000001000003", CODE))
            .await
            .into(),
        (V2_POST, "GRN not GB/XI") => sandbox()
            .await
            .call(v2(&fresh(), "26FR0000010000039", CODE))
            .await
            .into(),
        (V2_POST, "accessCode absent") => sandbox()
            .await
            .call(v2_post_raw(Some(&token(&fresh())), GRN_BALANCE_2, "{}"))
            .await
            .into(),
        (V2_POST, "accessCode not a string") => sandbox()
            .await
            .call(v2_post_raw(
                Some(&token(&fresh())),
                GRN_BALANCE_2,
                r#"{"accessCode":1234}"#,
            ))
            .await
            .into(),
        (V2_POST, "accessCode not 4 letters/digits") => sandbox()
            .await
            .call(v2(&fresh(), GRN_BALANCE_2, "AC0!"))
            .await
            .into(),
        (V2_POST, "guarantee type not 0, 1 or 9 (14 R261)") => sandbox()
            .await
            .call(v2(&fresh(), GRN_TYPE_2, CODE))
            .await
            .into(),
        (V2_POST, "GRN unknown") => sandbox()
            .await
            .call(v2(&fresh(), GRN_UNKNOWN, CODE))
            .await
            .into(),
        (V2_POST, "access code wrong") => sandbox()
            .await
            .call(v2(&fresh(), GRN_BALANCE_2, "ZZ99"))
            .await
            .into(),
        (V2_POST, "same caller and GRN within 60 s") => {
            let app = sandbox().await;
            let sub = fresh();
            assert_eq!(app.call(v2(&sub, GRN_BALANCE_2, CODE)).await.status, 200);
            app.call(v2(&sub, GRN_BALANCE_2, CODE)).await.into()
        }
        (V2_POST, "GMS query limit") => gms_app(|_| {
            Ok(Submission::Answered(Outcome::FunctionalError {
                errors: Case::QueryLimit.errors(),
            }))
        })
        .await
        .call(v2(&fresh(), GRN_BALANCE_2, CODE))
        .await
        .into(),
        (V2_POST, "Accept missing") => sandbox()
            .await
            .call(without(v2(&fresh(), GRN_BALANCE_2, CODE), "accept"))
            .await
            .into(),
        (V2_POST, "Accept of another version") => sandbox()
            .await
            .call(with(v2(&fresh(), GRN_BALANCE_2, CODE), "accept", V1))
            .await
            .into(),
        (V2_POST, "any other IE906") => gms_app(|_| {
            Ok(Submission::Answered(Outcome::FunctionalError {
                errors: Case::TinMismatch.errors(),
            }))
        })
        .await
        .call(v2(&fresh(), GRN_BALANCE_2, CODE))
        .await
        .into(),
        (V2_POST, "no answer within v2_wait") => sandbox()
            .await
            .call(v2(&fresh(), GRN_NO_REPLY, CODE))
            .await
            .into(),
        (V2_POST, "submission timed out after sending") => gms_app(|_| Err(GmsError::TimedOut))
            .await
            .call(v2(&fresh(), GRN_BALANCE_2, CODE))
            .await
            .into(),
        (V2_POST, "body over the limit") => {
            let body = format!(r#"{{"accessCode":"AC01","pad":"{}"}}"#, "x".repeat(16 * 1024));
            sandbox()
                .await
                .call(v2_post_raw(Some(&token(&fresh())), GRN_BALANCE_2, &body))
                .await
                .into()
        }
        (V2_POST, "Content-Type not JSON") => sandbox()
            .await
            .call(with(
                v2(&fresh(), GRN_BALANCE_2, CODE),
                "content-type",
                "application/xml",
            ))
            .await
            .into(),
        (V2_POST, "IE917") => sandbox()
            .await
            .call(v2(&fresh(), GRN_IE917, CODE))
            .await
            .into(),
        (V2_POST, "GMS unreachable") => sandbox()
            .await
            .call(v2(&fresh(), GRN_503, CODE))
            .await
            .into(),
        (V2_POST, "a retry after a 503 (the lock was released)") => {
            let app = unreachable_once().await;
            let sub = fresh();
            let refused = app.call(v2(&sub, GRN_BALANCE_2, CODE)).await;
            assert_eq!(refused.status, 503, "{}", refused.text());
            app.call(v2(&sub, GRN_BALANCE_2, CODE)).await.into()
        }
        (V2_POST, "anything else") => {
            gms_app(|_| Err(GmsError::Internal("the IE034 failed its self-check".to_owned())))
                .await
                .call(v2(&fresh(), GRN_BALANCE_2, CODE))
                .await
                .into()
        }
        // Any path.
        (ANY, "another method on a known path") => {
            let request = Request::delete(format!("{BASE}/balances"))
                .header("authorization", format!("Bearer {}", token(&fresh())))
                .body(Body::empty())
                .expect("a request");
            sandbox().await.call(request).await.into()
        }
        (ANY, "an unknown path") => sandbox()
            .await
            .call(
                Request::get(format!("{BASE}/nothing"))
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .into(),
        // The internal reply route.
        (REPLY, situation) => play_reply(situation).await,
        // Probes.
        ("GET /livez", _) => sandbox().await.call(get("/livez")).await.into(),
        ("GET /readyz", "database answers") => sandbox().await.call(get("/readyz")).await.into(),
        ("GET /readyz", "shutting down") => {
            let app = sandbox().await;
            app.state.start_draining();
            app.call(get("/readyz")).await.into()
        }
        ("GET /openapi.json", _) => sandbox().await.call(get("/openapi.json")).await.into(),
        (route, situation) => panic!("no way to play {route} / {situation}"),
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("a request")
}

/// The reply route's rows: each against a pending request of its own.
async fn play_reply(situation: &str) -> Played {
    let app = sandbox().await;
    let (_, id) = pending(&app).await;
    let to = recipient(id);
    let balance = ie037(&to, GRN_NO_REPLY, "50000.00");
    let send = |recipient: &str, kind: Option<&str>, xml: &str| {
        app.call_internal(reply_post(recipient, kind, xml))
    };
    let reply = match situation {
        "stored" => send(&to, Some("IE037"), &balance).await,
        "an identical duplicate" => {
            assert_eq!(send(&to, Some("IE037"), &balance).await.status, 200);
            send(&to, Some("IE037"), &balance).await
        }
        "no token" => {
            app.call_internal(without(
                reply_post(&to, Some("IE037"), &balance),
                "authorization",
            ))
            .await
        }
        "X-Message-Type missing" => send(&to, None, &balance).await,
        "X-Message-Type unknown" => send(&to, Some("IE015"), &balance).await,
        "recipient not of the form <prefix><24 hex>: bad hex" => {
            let bad = format!("{PREFIX}{}", "zz".repeat(12));
            send(&bad, Some("IE037"), &ie037(&bad, GRN_NO_REPLY, "1.00")).await
        }
        "recipient not of the form <prefix><24 hex>: another prefix" => {
            let other = format!("MDTP-ARR-{}", id.message_id().to_hex());
            send(&other, Some("IE037"), &ie037(&other, GRN_NO_REPLY, "1.00")).await
        }
        "schema-valid IE037 with no balance (no BalEXP3)" => {
            send(
                &to,
                Some("IE037"),
                &ie037_without_balance(&to, GRN_NO_REPLY),
            )
            .await
        }
        "schema rules broken" => {
            // The required first element left out.
            let broken = balance.replacen("<SynIdeMES1>UNOC</SynIdeMES1>", "", 1);
            assert_ne!(broken, balance, "the IE037 has its SynIdeMES1");
            send(&to, Some("IE037"), &broken).await
        }
        "root does not match the header" => {
            let reference = message_ref(&app, id).await;
            send(&to, Some("IE037"), &ie906(&to, &reference)).await
        }
        "names a request it does not belong to (the IE037's GRN)" => {
            send(&to, Some("IE037"), &ie037(&to, GRN_BALANCE, "1.00")).await
        }
        "unknown recipient" => {
            let unknown = recipient(BalanceRequestId::new());
            let reply = send(
                &unknown,
                Some("IE037"),
                &ie037(&unknown, GRN_NO_REPLY, "1.00"),
            )
            .await;
            return Played {
                reply,
                vars: BTreeMap::from([("recipient", unknown)]),
            };
        }
        "the request already has a different outcome" => {
            assert_eq!(send(&to, Some("IE037"), &balance).await.status, 200);
            send(&to, Some("IE037"), &ie037(&to, GRN_NO_REPLY, "1.00")).await
        }
        other => panic!("no way to play the reply route's {other}"),
    };
    Played {
        reply,
        vars: BTreeMap::from([("recipient", to)]),
    }
}

/// `text` with each `<name>` replaced by its value.
fn substitute(text: &str, vars: &BTreeMap<&'static str, String>) -> String {
    vars.iter().fold(text.to_owned(), |text, (name, value)| {
        text.replace(&format!("<{name}>"), value)
    })
}

/// Whether `actual` is `expected`, where the string `"<any>"` stands for any value.
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == "<any>" => !actual.is_null(),
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|actual| matches(v, actual)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| matches(e, a))
        }
        _ => expected == actual,
    }
}

/// What differs between a row and what was played; empty when nothing does.
fn differences(row: &Row, played: &Played) -> Vec<String> {
    let reply = &played.reply;
    let mut out = Vec::new();
    if reply.status.as_u16() != row.status {
        out.push(format!(
            "status {} (expected {})",
            reply.status.as_u16(),
            row.status
        ));
    }
    let body: Option<Value> = serde_json::from_slice(&reply.body).ok();
    if !row.code.is_empty() {
        match &body {
            Some(body) => {
                if body["code"] != row.code {
                    out.push(format!("code {} (expected {})", body["code"], row.code));
                }
                let message = substitute(row.message, &played.vars);
                match body["message"].as_str() {
                    Some(m) if !message.is_empty() && m != message => {
                        out.push(format!("message {m:?} (expected {message:?})"));
                    }
                    Some("") => out.push("an empty message".to_owned()),
                    None => out.push("no message".to_owned()),
                    _ => {}
                }
                if reply.header("content-type") != Some("application/json") {
                    out.push(format!(
                        "Content-Type {:?} for an error body",
                        reply.header("content-type")
                    ));
                }
            }
            None => out.push("no JSON error body".to_owned()),
        }
    }
    if !row.body.is_empty() {
        let expected: Value =
            serde_json::from_str(&substitute(row.body, &played.vars)).expect("a JSON row body");
        if !body.as_ref().is_some_and(|b| matches(&expected, b)) {
            out.push(format!("body {} (expected {expected})", reply.text()));
        }
    }
    for (name, value) in row.headers {
        let actual = reply.header(name);
        let ok = match *value {
            "<seconds>" => actual.is_some_and(|v| v.parse::<u64>().is_ok_and(|s| s >= 1)),
            value => actual == Some(substitute(value, &played.vars).as_str()),
        };
        if !ok {
            out.push(format!("header {name}: {actual:?} (expected {value})"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_the_contract_is_what_the_service_answers() {
    let mut failures = Vec::new();
    for row in ROWS {
        let played = play(row).await;
        let differences = differences(row, &played);
        if !differences.is_empty() {
            failures.push(format!(
                "{} [{}] {}: {}",
                row.route,
                row.version,
                row.situation,
                differences.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ from the contract:\n  {}",
        failures.len(),
        ROWS.len(),
        failures.join("\n  ")
    );
}

#[test]
fn the_matcher_sees_a_difference_anywhere() {
    let expected: Value = serde_json::from_str(r#"{"a":[1,{"b":"<any>"}],"c":"x"}"#).unwrap();
    for (actual, holds) in [
        (r#"{"a":[1,{"b":7}],"c":"x"}"#, true),
        (r#"{"a":[1,{"b":7}],"c":"y"}"#, false),
        (r#"{"a":[1,{"b":7}],"c":"x","d":1}"#, false),
        (r#"{"a":[1],"c":"x"}"#, false),
        (r#"{"a":[1,{"b":null}],"c":"x"}"#, false),
    ] {
        let actual: Value = serde_json::from_str(actual).unwrap();
        assert_eq!(matches(&expected, &actual), holds, "{actual}");
    }
}
