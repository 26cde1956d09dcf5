//! The simulator as a standalone HTTP server (`gbal gms-sim`): NCTS's IE034 endpoint, which
//! replies later to gbal's internal listener, and EIS's phase-5 JSON endpoints.
//!
//! | route | what |
//! |---|---|
//! | `POST /movements/messages` | an IE034 (`X-Message-Type: IE034`); 202, then the reply is posted to `{reply_to}/balances/{recipient}` |
//! | `POST /guarantees/{grn}/access-codes` | EIS access-code check, `{"masterAccessCode": ...}` |
//! | `GET /guarantees/{grn}/balance` | EIS balance |
//! | `POST /gb/guarantees/...`, `/xi/guarantees/...` | the same, as the GB or XI instance only: it does not know the other country's guarantees |
//!
//! Every route requires `Authorization: Bearer <token>` when a token is configured.

use std::future::Future;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use backon::{ExponentialBuilder, Retryable};
use gbal_core::grn::Country;
use gbal_core::{Amount, Currency, Grn, Rejection};
use gbal_ncts::{Limits, MessageKind, parse_ie034, wrap_transit_request};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::format_description;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, info, info_span, warn};
use uuid::Uuid;

use super::dataset::Dataset;
use super::replies::{self, ReplyAddress, ReplyMessage};
use super::rules::{
    self, Delivery, GuaranteeQuery, QueryLimit, SimulatedAnswer, SimulatedReply, TinUsage,
};
use crate::eis_json::{
    MESSAGE_INVALID_ACCESS_CODE, MESSAGE_INVALID_GUARANTEE_TYPE, MESSAGE_NOT_FOUND,
};
use crate::upstream::{BearerToken, error_chain};

/// The largest IE034 accepted.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// How the standalone simulator runs.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// The guarantees and traders.
    pub dataset: Dataset,
    /// The per-TIN query limit.
    pub query_limit: QueryLimit,
    /// When set, every request must carry it as a bearer token.
    pub token: Option<BearerToken>,
    /// gbal's internal listener: replies go to `{reply_to}/balances/{recipient}`. Without it,
    /// IE034s are accepted and never answered.
    pub reply_to: Option<Url>,
    /// The bearer token replies carry.
    pub reply_token: Option<BearerToken>,
    /// Send replies inside `<transitRequest>`.
    pub wrap_replies: bool,
    /// Longest wait for gbal to take one reply.
    pub reply_timeout: Duration,
}

impl SimulatorConfig {
    /// This dataset and limit, no tokens, no reply address, plain replies.
    pub fn new(dataset: Dataset, query_limit: QueryLimit, reply_timeout: Duration) -> Self {
        Self {
            dataset,
            query_limit,
            token: None,
            reply_to: None,
            reply_token: None,
            wrap_replies: false,
            reply_timeout,
        }
    }
}

#[derive(Debug)]
struct Shared {
    dataset: Dataset,
    usage: Mutex<TinUsage>,
    token: Option<BearerToken>,
    replies: ReplySender,
    tasks: TaskTracker,
    stopping: CancellationToken,
}

#[derive(Debug)]
struct ReplySender {
    client: reqwest::Client,
    reply_to: Option<Url>,
    token: Option<BearerToken>,
    wrap: bool,
}

/// Serves the simulator on `listener` until `shutdown` completes. Replies still waiting for
/// their delay are then abandoned; replies being sent get up to the reply timeout to finish.
pub async fn serve_simulator(
    listener: TcpListener,
    config: SimulatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(config.reply_timeout)
        .connect_timeout(config.reply_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(io::Error::other)?;
    let shared = Arc::new(Shared {
        usage: Mutex::new(TinUsage::new(config.query_limit)),
        dataset: config.dataset,
        token: config.token,
        replies: ReplySender {
            client,
            reply_to: config.reply_to,
            token: config.reply_token,
            wrap: config.wrap_replies,
        },
        tasks: TaskTracker::new(),
        stopping: CancellationToken::new(),
    });
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, guarantees = shared.dataset.guarantees().count(), "GMS simulator listening");
    }
    let stopping = shared.stopping.clone();
    let result = axum::serve(listener, router(Arc::clone(&shared)))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Ends the waits of delayed and never-answered calls, so the drain is quick.
            stopping.cancel();
        })
        .await;
    shared.stopping.cancel();
    shared.tasks.close();
    if tokio::time::timeout(config.reply_timeout, shared.tasks.wait())
        .await
        .is_err()
    {
        warn!("GMS simulator stopped with replies still being sent");
    }
    info!("GMS simulator stopped");
    result
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/movements/messages", post(submit_ie034))
        .route("/guarantees/{grn}/access-codes", post(access_codes))
        .route("/guarantees/{grn}/balance", get(balance))
        .route(
            "/{instance}/guarantees/{grn}/access-codes",
            post(instance_access_codes),
        )
        .route(
            "/{instance}/guarantees/{grn}/balance",
            get(instance_balance),
        )
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"code": "NOT_FOUND", "message": "URI not found"})),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(shared)
}

/// The 401 for a request without the configured bearer token, if it lacks it.
fn unauthorised(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let token = shared.token.as_ref()?;
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|p| token.matches(p)) {
        None
    } else {
        warn!("GMS simulator refused a request without the right bearer token");
        Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(
                    json!({"code": "UNAUTHORIZED", "message": "Missing or invalid bearer token"}),
                ),
            )
                .into_response(),
        )
    }
}

// ---------------------------------------------------------------------------------------
// NCTS: the IE034 endpoint.

async fn submit_ie034(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = unauthorised(&shared, &headers) {
        return refusal;
    }
    let correlation_id = header_text(&headers, "x-correlation-id").unwrap_or_default();
    let span = info_span!("gms_sim_ie034", correlation_id = %correlation_id);
    async move {
        if header_text(&headers, "x-message-type").as_deref() != Some("IE034") {
            warn!("IE034 refused: missing or incorrect X-Message-Type");
            return bad_request("Missing or incorrect X-Message-Type header");
        }
        let now = OffsetDateTime::now_utc();
        let received = match parse_ie034(&body, &Limits::default()) {
            Ok(received) => received,
            Err(errors) => return answer_invalid(&shared, &headers, &body, &errors),
        };
        let Some(query) = GuaranteeQuery::from_ie034(&received) else {
            return bad_request("The IE034 names no guarantee");
        };
        let answer = {
            let mut usage = shared.usage.lock().unwrap_or_else(PoisonError::into_inner);
            rules::answer(&shared.dataset, &query, &mut usage, now)
        };
        info!(grn = %query.grn, recipient = %received.sender, message_ref = %received.message_ref, "IE034 received");
        let (reply, delivery, malformed) = match answer {
            SimulatedAnswer::SubmitRefused { status } => {
                info!(status, "IE034 refused with the guarantee's submit status");
                return status_only(status);
            }
            SimulatedAnswer::Reply {
                reply,
                delivery,
                malformed,
            } => (reply, delivery, malformed),
        };
        let address = ReplyAddress::of(&received);
        match replies::build(&reply, &address, now) {
            Ok(message) => schedule(&shared, address.recipient, message, delivery, malformed),
            Err(e) => {
                warn!(error = %e, "the reply could not be built");
                return (StatusCode::INTERNAL_SERVER_ERROR, e).into_response();
            }
        }
        StatusCode::ACCEPTED.into_response()
    }
    .instrument(span)
    .await
}

/// An IE034 that breaks its schema is accepted and answered with an IE917, when it says
/// (or its `X-Message-Sender` says) where the reply goes.
fn answer_invalid(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    body: &[u8],
    errors: &[gbal_ncts::SchemaError],
) -> Response {
    let text = String::from_utf8_lossy(body);
    let recipient = header_text(headers, "x-message-sender")
        .or_else(|| element_text(&text, "MesSenMES3"))
        .filter(|r| !r.is_empty() && r.chars().count() <= 35);
    let Some(recipient) = recipient else {
        warn!(
            errors = errors.len(),
            "invalid IE034 with no sender to reply to"
        );
        return bad_request("The IE034 is not valid and names no sender");
    };
    let original_ref = element_text(&text, "MesIdeMES19")
        .filter(|r| !r.is_empty() && r.chars().count() <= 14)
        .unwrap_or_else(|| "00000000000000".to_owned());
    let office = element_text(&text, "MesRecMES6")
        .filter(|r| !r.is_empty() && r.chars().count() <= 35)
        .unwrap_or_else(|| "NTA.GB".to_owned());
    let address = ReplyAddress {
        office,
        recipient,
        original_ref,
        requester_tin: None,
    };
    let error = replies::schema_error(errors);
    info!(recipient = %address.recipient, pointer = %error.error_pointer, "invalid IE034: answering with an IE917");
    match replies::build(
        &SimulatedReply::XmlError(error),
        &address,
        OffsetDateTime::now_utc(),
    ) {
        Ok(message) => {
            schedule(
                shared,
                address.recipient,
                message,
                Delivery::Immediate,
                false,
            );
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}

/// The text of the first `<name>…</name>` in a document that could not be parsed.
fn element_text(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find("</")? + start;
    Some(text[start..end].trim().to_owned())
}

fn schedule(
    shared: &Arc<Shared>,
    recipient: String,
    message: ReplyMessage,
    delivery: Delivery,
    malformed: bool,
) {
    let delay = match delivery {
        Delivery::Never => {
            info!(recipient = %recipient, "no reply will be sent (no_reply)");
            return;
        }
        Delivery::Immediate => Duration::ZERO,
        Delivery::After(delay) => delay,
    };
    let mut body = if shared.replies.wrap {
        wrap_transit_request(&message.xml)
    } else {
        message.xml
    };
    if malformed {
        body = replies::malform(&body);
    }
    let shared2 = Arc::clone(shared);
    let span =
        info_span!("gms_sim_reply", recipient = %recipient, message_type = message.kind.header());
    shared.tasks.spawn(
        async move {
            if !delay.is_zero() {
                tokio::select! {
                    () = shared2.stopping.cancelled() => {
                        info!("simulator stopping: delayed reply abandoned");
                        return;
                    }
                    () = tokio::time::sleep(delay) => {}
                }
            }
            shared2.replies.send(&recipient, message.kind, body).await;
        }
        .instrument(span),
    );
}

impl ReplySender {
    async fn send(&self, recipient: &str, kind: MessageKind, body: String) {
        let Some(base) = &self.reply_to else {
            warn!("no reply address configured: reply dropped");
            return;
        };
        let mut url = base.clone();
        match url.path_segments_mut() {
            Ok(mut segments) => {
                segments.pop_if_empty().push("balances").push(recipient);
            }
            Err(()) => {
                warn!(reply_to = %base, "the reply address cannot take a path: reply dropped");
                return;
            }
        }
        let attempt = || async {
            let mut request = self
                .client
                .post(url.clone())
                .header(header::CONTENT_TYPE, "application/xml; charset=utf-8")
                .header("X-Message-Type", kind.header())
                .header("X-Message-Recipient", recipient)
                .header("X-Correlation-Id", Uuid::new_v4().to_string())
                .body(body.clone());
            if let Some(token) = &self.token {
                request = request.bearer_auth(token.expose());
            }
            let response = request.send().await.map_err(|e| (None, error_chain(&e)))?;
            let status = response.status();
            if status.is_server_error() {
                return Err((Some(status), format!("HTTP {}", status.as_u16())));
            }
            Ok(status)
        };
        let sent = attempt
            .retry(
                ExponentialBuilder::new()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(1))
                    .with_max_times(2)
                    .with_jitter(),
            )
            .notify(|(_, error): &(Option<reqwest::StatusCode>, String), delay: Duration| {
                warn!(error = %error, delay_ms = delay.as_millis() as u64, "reply not taken, retrying");
            })
            .await;
        match sent {
            Ok(status) if status.is_success() => info!(status = status.as_u16(), "reply delivered"),
            Ok(status) => warn!(status = status.as_u16(), "reply refused by gbal"),
            Err((_, error)) => warn!(error = %error, "reply could not be delivered"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// EIS: the phase-5 JSON endpoints.

#[derive(Deserialize)]
struct AccessCodeRequest {
    #[serde(rename = "masterAccessCode")]
    master_access_code: String,
}

async fn access_codes(
    State(shared): State<Arc<Shared>>,
    Path(grn): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    eis_access_codes(shared, None, grn, uri, headers, body).await
}

async fn instance_access_codes(
    State(shared): State<Arc<Shared>>,
    Path((instance, grn)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match instance_country(&instance) {
        Some(country) => eis_access_codes(shared, Some(country), grn, uri, headers, body).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn balance(
    State(shared): State<Arc<Shared>>,
    Path(grn): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    eis_balance(shared, None, grn, uri, headers).await
}

async fn instance_balance(
    State(shared): State<Arc<Shared>>,
    Path((instance, grn)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match instance_country(&instance) {
        Some(country) => eis_balance(shared, Some(country), grn, uri, headers).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn instance_country(instance: &str) -> Option<Country> {
    match instance {
        "gb" | "GB" => Some(Country::Gb),
        "xi" | "XI" => Some(Country::Xi),
        _ => None,
    }
}

#[derive(Serialize)]
struct BalanceBody<'a> {
    grn: &'a str,
    balance: Option<Amount>,
    #[serde(rename = "currencyCL")]
    currency: Currency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EisCall {
    AccessCodes,
    Balance,
}

async fn eis_access_codes(
    shared: Arc<Shared>,
    instance: Option<Country>,
    grn: String,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = unauthorised(&shared, &headers) {
        return refusal;
    }
    let Ok(request) = serde_json::from_slice::<AccessCodeRequest>(&body) else {
        info!(grn = %grn, "EIS access-code call with an invalid payload");
        return eis_error(
            StatusCode::BAD_REQUEST,
            "Invalid request payload",
            uri.path(),
        );
    };
    let query = GuaranteeQuery::new(grn, None, None, Some(request.master_access_code));
    eis_answer(
        &shared,
        instance,
        EisCall::AccessCodes,
        query,
        &headers,
        uri.path(),
    )
    .await
}

async fn eis_balance(
    shared: Arc<Shared>,
    instance: Option<Country>,
    grn: String,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = unauthorised(&shared, &headers) {
        return refusal;
    }
    // EIS checked the code in the access-code call; the balance call does not carry it.
    let code = shared
        .dataset
        .guarantee(&grn)
        .map(|g| g.access_code.expose().to_owned());
    let query = GuaranteeQuery::new(grn, None, None, code);
    eis_answer(
        &shared,
        instance,
        EisCall::Balance,
        query,
        &headers,
        uri.path(),
    )
    .await
}

async fn eis_answer(
    shared: &Shared,
    instance: Option<Country>,
    call: EisCall,
    query: GuaranteeQuery,
    headers: &HeaderMap,
    path: &str,
) -> Response {
    let correlation_id = header_text(headers, "x-correlation-id").unwrap_or_default();
    let span =
        info_span!("gms_sim_eis", call = ?call, grn = %query.grn, correlation_id = %correlation_id);
    async {
        // An instance knows only its own country's guarantees.
        let grn_country = Grn::parse_v1(&query.grn).ok().and_then(|g| g.country());
        if instance.is_some_and(|i| grn_country != Some(i)) {
            info!("GRN of the other instance's country");
            return not_found(&query.grn, path);
        }
        let answer = {
            let mut usage = shared.usage.lock().unwrap_or_else(PoisonError::into_inner);
            rules::answer(
                &shared.dataset,
                &query,
                &mut usage,
                OffsetDateTime::now_utc(),
            )
        };
        let (reply, delivery, malformed) = match answer {
            SimulatedAnswer::SubmitRefused { status } => {
                info!(status, "answered with the guarantee's submit status");
                return status_only(status);
            }
            SimulatedAnswer::Reply {
                reply,
                delivery,
                malformed,
            } => (reply, delivery, malformed),
        };
        let wait = match delivery {
            Delivery::Immediate => Some(Duration::ZERO),
            Delivery::After(delay) => Some(delay),
            Delivery::Never => None,
        };
        let waited = match wait {
            Some(delay) => {
                tokio::select! {
                    () = shared.stopping.cancelled() => false,
                    () = tokio::time::sleep(delay) => true,
                }
            }
            None => {
                info!("never answering (no_reply)");
                shared.stopping.cancelled().await;
                false
            }
        };
        if !waited {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let response = match reply {
            SimulatedReply::Balance(g) => {
                let body = match call {
                    EisCall::AccessCodes => json!({
                        "grn": g.grn.as_str(),
                        "masterAccessCode": query.access_code().unwrap_or_default(),
                        "additionalAccessCodes": [],
                    })
                    .to_string(),
                    // Written straight to text: a `serde_json::Value` would pass the amount
                    // through a float.
                    EisCall::Balance => serde_json::to_string(&BalanceBody {
                        grn: g.grn.as_str(),
                        balance: g.balance,
                        currency: g.currency,
                    })
                    .unwrap_or_default(),
                };
                let body = if malformed {
                    info!("answering with a malformed body");
                    body[..body.len() / 2].to_owned()
                } else {
                    body
                };
                (
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "application/json")],
                    body,
                )
                    .into_response()
            }
            SimulatedReply::Refused(errors) => match Rejection::classify(&errors) {
                Some(Rejection::UnknownGrn) => not_found(&query.grn, path),
                Some(Rejection::WrongAccessCode) => {
                    eis_error(StatusCode::FORBIDDEN, MESSAGE_INVALID_ACCESS_CODE, path)
                }
                Some(Rejection::UnsupportedGuaranteeType) => {
                    eis_error(StatusCode::FORBIDDEN, MESSAGE_INVALID_GUARANTEE_TYPE, path)
                }
                other => {
                    warn!(rejection = ?other, "a refusal EIS has no answer for");
                    eis_error(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Internal server error",
                        path,
                    )
                }
            },
            // EIS has no IE917; a message it cannot process is a bad request.
            SimulatedReply::XmlError(_) => {
                eis_error(StatusCode::BAD_REQUEST, "Invalid request payload", path)
            }
        };
        info!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

fn not_found(grn: &str, path: &str) -> Response {
    eis_error(
        StatusCode::FORBIDDEN,
        &format!("{MESSAGE_NOT_FOUND}: {grn}"),
        path,
    )
}

/// EIS's error body: `{"message","timestamp","path"}`.
fn eis_error(status: StatusCode, message: &str, path: &str) -> Response {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]");
    let timestamp = OffsetDateTime::now_utc().format(format).unwrap_or_default();
    (
        status,
        axum::Json(json!({"message": message, "timestamp": timestamp, "path": path})),
    )
        .into_response()
}

fn status_only(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let mut response = (
        status,
        axum::Json(json!({"code": "SIMULATED", "message": "Simulated failure"})),
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"code": "BAD_REQUEST", "message": message})),
    )
        .into_response()
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
