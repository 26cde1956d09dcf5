//! The `eis-json` adapter (NCTS phase 5): the access code is checked with
//! `POST {instance}/guarantees/{grn}/access-codes`, then the balance is read with
//! `GET {instance}/guarantees/{grn}/balance`, on the GB or XI instance the GRN names.
//!
//! EIS answers its three business refusals with HTTP 403 and tells them apart by `message`.
//! They become the error sets GMS sends in an IE906 for the same refusal (`Rejection`'s sets,
//! not single errors), so everything above the port sees one vocabulary and
//! `Rejection::classify` recognises them:
//!
//! | EIS 403 `message` | errors |
//! |---|---|
//! | `Guarantee not found for GRN…` | `Rejection::UnknownGrn`: 12 GRN; 12 `GRR(1).OTG(1).TIN`; 12 access code |
//! | `Not Valid Access Code for this operation` | `Rejection::WrongAccessCode`: 12 access code |
//! | `Not Valid Guarantee Type for this operation` | `Rejection::UnsupportedGuaranteeType`: 14 query identifier, R261 |

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use gbal_core::grn::Country;
use gbal_core::{
    Amount, Balance, BalanceQuery, Currency, Gms, GmsError, Outcome, Rejection, Submission,
    SubmitContext,
};
use http::StatusCode;
use http::header::{ACCEPT, CONTENT_TYPE, DATE};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tracing::{Instrument, info, info_span, warn};

use crate::call_metrics;
use crate::upstream::{
    Answer, ClientError, Upstream, UpstreamConfig, eis_date, propagated, status_error,
};

/// The transport's name in logs and metrics.
pub const TRANSPORT: &str = "eis-json";
/// The 403 `message` of an unknown GRN (EIS appends `: <grn>`).
pub const MESSAGE_NOT_FOUND: &str = "Guarantee not found for GRN";
/// The 403 `message` of a wrong access code.
pub const MESSAGE_INVALID_ACCESS_CODE: &str = "Not Valid Access Code for this operation";
/// The 403 `message` of a guarantee type without a balance.
pub const MESSAGE_INVALID_GUARANTEE_TYPE: &str = "Not Valid Guarantee Type for this operation";

/// The two EIS instances.
#[derive(Debug, Clone)]
pub struct EisJsonConfig {
    /// The GB instance (base URL, token, timeouts, retries, breaker).
    pub gb: UpstreamConfig,
    /// The XI instance.
    pub xi: UpstreamConfig,
}

/// GMS through EIS's JSON API; answers at once.
#[derive(Debug)]
pub struct EisJsonGms {
    gb: Upstream,
    xi: Upstream,
}

/// The body of the access-code call.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccessCodeRequest<'a> {
    master_access_code: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // The fields are required for the answer to be well-formed, not read.
struct AccessCodeAnswer {
    grn: String,
    master_access_code: String,
    additional_access_codes: Vec<String>,
}

#[derive(Deserialize)]
struct BalanceAnswer {
    grn: String,
    balance: Amount,
    #[serde(rename = "currencyCL")]
    currency: Currency,
}

#[derive(Deserialize)]
#[allow(dead_code)] // As EIS documents it; only `message` is read.
struct ErrorAnswer {
    message: String,
    timestamp: String,
    path: String,
}

impl EisJsonGms {
    /// Builds the adapter and one HTTP client, retry policy and breaker per instance.
    pub fn new(config: EisJsonConfig) -> Result<Self, ClientError> {
        Ok(Self {
            gb: Upstream::new(config.gb, TRANSPORT)?,
            xi: Upstream::new(config.xi, TRANSPORT)?,
        })
    }

    async fn ask(
        &self,
        query: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<Submission, GmsError> {
        let upstream = match query.grn.country() {
            Some(Country::Gb) => &self.gb,
            Some(Country::Xi) => &self.xi,
            None => {
                // Neither GMS holds it; an NCTS office would answer the same.
                info!("GRN of neither GB nor XI: answered as unknown");
                return Ok(answered(Rejection::UnknownGrn));
            }
        };
        let grn = query.grn.as_str();
        let base = &upstream.config().url;
        let access_codes = endpoint(base, grn, "access-codes")?;
        let balance = endpoint(base, grn, "balance")?;
        let body = serde_json::to_vec(&AccessCodeRequest {
            master_access_code: query.access_code.expose(),
        })
        .map(Bytes::from)
        .map_err(|e| GmsError::Internal(format!("access-code request: {e}")))?;

        let answer = self
            .call(upstream, context, "check access code", |r| {
                r.post(access_codes.clone()).body(body.clone())
            })
            .await?;
        if let Some(refusal) = refusal(&answer, "check access code", upstream)? {
            return Ok(refusal);
        }
        serde_json::from_slice::<AccessCodeAnswer>(&answer.body)
            .map_err(|e| GmsError::Garbled(format!("access-code answer: {e}")))?;

        let answer = self
            .call(upstream, context, "read balance", |r| {
                r.get(balance.clone())
            })
            .await?;
        if let Some(refusal) = refusal(&answer, "read balance", upstream)? {
            return Ok(refusal);
        }
        let read: BalanceAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| GmsError::Garbled(format!("balance answer: {e}")))?;
        if read.grn != grn {
            return Err(GmsError::Garbled(format!(
                "balance answer names another guarantee: {}",
                read.grn
            )));
        }
        info!("EIS answered with a balance");
        Ok(Submission::Answered(Outcome::Success(Balance {
            amount: read.balance,
            currency: read.currency,
        })))
    }

    async fn call(
        &self,
        upstream: &Upstream,
        context: &SubmitContext,
        call: &'static str,
        method: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Answer, GmsError> {
        let config = upstream.config();
        let request_id = propagated("X-Request-Id", context.request_id.as_deref());
        let traceparent = propagated("traceparent", context.traceparent.as_deref());
        upstream
            .exchange(
                call,
                &[StatusCode::SERVICE_UNAVAILABLE],
                context.deadline,
                || {
                    let mut request = method(upstream.client())
                        .header(DATE, eis_date(OffsetDateTime::now_utc()))
                        .header("CustomProcessHost", "Digital")
                        .header(ACCEPT, "application/json")
                        .header(CONTENT_TYPE, "application/json")
                        .bearer_auth(config.token.expose());
                    if let Some(v) = &request_id {
                        request = request.header("X-Request-Id", v.clone());
                    }
                    if let Some(v) = &traceparent {
                        request = request.header("traceparent", v.clone());
                    }
                    request
                },
            )
            .await
    }
}

/// `{base}/guarantees/{grn}/{last}`, from the instance's parsed base URL (its path kept, a
/// trailing slash or not): only the new segments are written, nothing is parsed again.
fn endpoint(base: &Url, grn: &str, last: &str) -> Result<Url, GmsError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| GmsError::Internal(format!("EIS URL {base} cannot have a path")))?
        .pop_if_empty()
        .extend(["guarantees", grn, last]);
    Ok(url)
}

fn answered(rejection: Rejection) -> Submission {
    Submission::Answered(Outcome::FunctionalError {
        errors: rejection.errors(),
    })
}

/// `Ok(None)` for a 2xx; the business refusal a 403 names; the error any other status means.
fn refusal(
    answer: &Answer,
    call: &str,
    upstream: &Upstream,
) -> Result<Option<Submission>, GmsError> {
    if answer.status.is_success() {
        return Ok(None);
    }
    if answer.status == StatusCode::FORBIDDEN {
        let message = serde_json::from_slice::<ErrorAnswer>(&answer.body).map(|e| e.message);
        let rejection = match message.as_deref() {
            Ok(m) if m.contains(MESSAGE_NOT_FOUND) => Some(Rejection::UnknownGrn),
            Ok(MESSAGE_INVALID_ACCESS_CODE) => Some(Rejection::WrongAccessCode),
            Ok(MESSAGE_INVALID_GUARANTEE_TYPE) => Some(Rejection::UnsupportedGuaranteeType),
            _ => None,
        };
        if let Some(rejection) = rejection {
            info!(
                call,
                refusal = rejection.describe(),
                "EIS refused the query"
            );
            return Ok(Some(answered(rejection)));
        }
    }
    let error = status_error(answer.status, call, upstream.retry_after(None));
    warn!(call, status = answer.status.as_u16(), error = %error, "EIS did not answer");
    Err(error)
}

#[async_trait]
impl Gms for EisJsonGms {
    async fn submit(
        &self,
        query: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<Submission, GmsError> {
        let started = Instant::now();
        let span = info_span!(
            "gms_submit",
            transport = TRANSPORT,
            grn = %query.grn,
            balance_id = %context.balance_id,
        );
        let result = self.ask(query, context).instrument(span).await;
        call_metrics::record(TRANSPORT, started, &result);
        result
    }

    fn transport(&self) -> &'static str {
        TRANSPORT
    }

    /// EIS answers both calls at once; no reply ever comes later.
    fn answers_within_call(&self, _: &BalanceQuery) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_go_under_the_instance_base_url_with_or_without_its_trailing_slash() {
        let at = |base: &str, last| {
            endpoint(&Url::parse(base).unwrap(), "26GB0000010000012", last)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            at("http://eis.example", "access-codes"),
            "http://eis.example/guarantees/26GB0000010000012/access-codes"
        );
        assert_eq!(
            at("http://eis.example/", "balance"),
            "http://eis.example/guarantees/26GB0000010000012/balance"
        );
        assert_eq!(
            at("https://eis.example:8443/gb/v1/", "balance"),
            "https://eis.example:8443/gb/v1/guarantees/26GB0000010000012/balance"
        );
        assert_eq!(
            at("https://eis.example/gb", "access-codes"),
            "https://eis.example/gb/guarantees/26GB0000010000012/access-codes"
        );
    }
}
