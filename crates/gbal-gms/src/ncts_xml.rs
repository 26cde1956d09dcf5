//! The `ncts-xml` adapter: the IE034 posted to GMS over HTTP. GMS only accepts it here; the
//! IE037, IE906 or IE917 reply arrives later on gbal's internal listener.

use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use gbal_core::{BalanceQuery, Gms, GmsError, Submission, SubmitContext};
use gbal_ncts::{Header, Ie034};
use http::StatusCode;
use http::header::{ACCEPT, CONTENT_TYPE, DATE};
use tracing::{Instrument, error, info, info_span};

use crate::call_metrics;
use crate::upstream::{ClientError, Upstream, UpstreamConfig, propagated, rfc1123, status_error};

/// The transport's name in logs and metrics.
pub const TRANSPORT: &str = "ncts-xml";

/// How the ncts-xml adapter reaches GMS.
#[derive(Debug, Clone)]
pub struct NctsXmlConfig {
    /// The URL the IE034 is posted to, its token, timeouts, retries and breaker.
    pub upstream: UpstreamConfig,
    /// The prefix of gbal's recipient id (MesSenMES3, `X-Message-Sender`), which replies are
    /// addressed to.
    pub sender_prefix: String,
    /// The NCTS office the IE034 is addressed to (MesRecMES6).
    pub recipient_office: String,
}

/// GMS over NCTS XML: posts the IE034; any 2xx means accepted.
#[derive(Debug)]
pub struct NctsXmlGms {
    upstream: Upstream,
    sender_prefix: String,
    recipient_office: String,
}

impl NctsXmlGms {
    /// Builds the adapter and its HTTP client.
    pub fn new(config: NctsXmlConfig) -> Result<Self, ClientError> {
        Ok(Self {
            upstream: Upstream::new(config.upstream, TRANSPORT)?,
            sender_prefix: config.sender_prefix,
            recipient_office: config.recipient_office,
        })
    }

    /// The IE034 for a query, as it is sent: checked against CD034A, inside `<transitRequest>`.
    /// It holds the access code: never log it.
    pub fn message(
        &self,
        query: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<String, GmsError> {
        let ie034 = Ie034 {
            header: Header {
                sender: context.message_id.recipient(&self.sender_prefix),
                recipient: self.recipient_office.clone(),
                prepared_at: context.requested_at,
                message_ref: context.message_ref,
            },
            grn: query.grn.clone(),
            tin: query.tin.clone(),
            access_code: query.access_code.clone(),
        };
        ie034.build_wire().map_err(|errors| {
            let secret = query.access_code.expose();
            let detail = errors
                .iter()
                .map(|e| format!("{}:{} {}", e.line, e.column, e.message.replace(secret, "****")))
                .collect::<Vec<_>>()
                .join("; ");
            error!(transport = TRANSPORT, grn = %query.grn, detail, "the IE034 failed its CD034A self-check; not sent");
            GmsError::Internal(format!("the IE034 failed its CD034A self-check: {detail}"))
        })
    }

    async fn send(
        &self,
        query: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<Submission, GmsError> {
        let body = Bytes::from(self.message(query, context)?);
        let sender = context.message_id.recipient(&self.sender_prefix);
        let date = rfc1123(context.requested_at);
        let traceparent = propagated("traceparent", context.traceparent.as_deref());
        let request_id = propagated("X-Request-Id", context.request_id.as_deref());
        let config = self.upstream.config();
        let answer = self
            .upstream
            .exchange(
                "submit IE034",
                &[StatusCode::SERVICE_UNAVAILABLE],
                context.deadline,
                || {
                    let mut request = self
                        .upstream
                        .client()
                        .post(config.url.clone())
                        .header(CONTENT_TYPE, "application/xml; charset=utf-8")
                        .header(ACCEPT, "application/xml")
                        .header(DATE, &date)
                        .header("X-Message-Sender", &sender)
                        .header("X-Message-Type", "IE034")
                        // The routing layer in front of NCTS tells API traffic from the web
                        // front end's by it.
                        .header("Channel", "api")
                        .bearer_auth(config.token.expose())
                        .body(body.clone());
                    if let Some(v) = &traceparent {
                        request = request.header("traceparent", v.clone());
                    }
                    if let Some(v) = &request_id {
                        request = request.header("X-Request-Id", v.clone());
                    }
                    request
                },
            )
            .await?;
        if answer.status.is_success() {
            info!(status = answer.status.as_u16(), "GMS accepted the IE034");
            Ok(Submission::Accepted)
        } else {
            // Any other answer means GMS did not accept the IE034: nothing will come of it.
            let error = status_error(
                answer.status,
                "submit IE034",
                self.upstream.retry_after(None),
            );
            error!(status = answer.status.as_u16(), error = %error, "GMS did not accept the IE034");
            Err(error)
        }
    }
}

#[async_trait]
impl Gms for NctsXmlGms {
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
            recipient = %context.message_id.recipient(&self.sender_prefix),
            message_ref = %context.message_ref,
        );
        let result = self.send(query, context).instrument(span).await;
        call_metrics::record(TRANSPORT, started, &result);
        result
    }

    fn transport(&self) -> &'static str {
        TRANSPORT
    }
}
