//! The simulator inside gbal's process, behind the same `Gms` port as the real adapters.
//!
//! Every query takes the full message path: the IE034 is built and checked with gbal-ncts and
//! read back with `parse_ie034`; the reply is built as an IE037, IE906 or IE917 and read back
//! with `parse_reply`. Only the network is missing.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gbal_core::{
    BalanceQuery, Clock, Gms, GmsError, MessageId, Outcome, ReplySink, Submission, SubmitContext,
    SystemClock,
};
use gbal_ncts::{Header, Ie034, Limits, parse_ie034, parse_reply};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::dataset::Dataset;
use super::replies::{self, ReplyAddress};
use super::rules::{
    self, Delivery, GuaranteeQuery, QueryLimit, SimulatedAnswer, SimulatedReply, TinUsage,
};
use crate::call_metrics;

/// The transport's name in logs and metrics.
pub const TRANSPORT: &str = "simulator";

/// What the embedded simulator knows and how it addresses messages.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The guarantees and traders.
    pub dataset: Dataset,
    /// The per-TIN query limit.
    pub query_limit: QueryLimit,
    /// The prefix of gbal's recipient id.
    pub sender_prefix: String,
    /// MesRecMES6 of the IE034.
    pub recipient_office: String,
}

/// GMS simulated in process: answers at once, or accepts and delivers the reply later to a
/// [`ReplySink`]. Dropping it abandons the replies still waiting.
#[derive(Debug)]
pub struct EmbeddedSimulator {
    config: EmbeddedConfig,
    usage: Mutex<TinUsage>,
    sink: Arc<dyn ReplySink>,
    clock: Arc<dyn Clock>,
    pending: CancellationToken,
}

impl EmbeddedSimulator {
    /// A simulator delivering late replies to `sink`, on the system clock.
    pub fn new(config: EmbeddedConfig, sink: Arc<dyn ReplySink>) -> Self {
        Self {
            usage: Mutex::new(TinUsage::new(config.query_limit)),
            config,
            sink,
            clock: Arc::new(SystemClock),
            pending: CancellationToken::new(),
        }
    }

    /// The same simulator reading the time (for the query limit and reply dates) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn handle(
        &self,
        query: &BalanceQuery,
        context: &SubmitContext,
    ) -> Result<Submission, GmsError> {
        let ie034 = Ie034 {
            header: Header {
                sender: context.message_id.recipient(&self.config.sender_prefix),
                recipient: self.config.recipient_office.clone(),
                prepared_at: context.requested_at,
                message_ref: context.message_ref,
            },
            grn: query.grn.clone(),
            tin: query.tin.clone(),
            access_code: query.access_code.clone(),
        };
        let wire = ie034.build_wire().map_err(|errors| {
            GmsError::Internal(format!(
                "the IE034 failed its CD034A self-check ({} error(s))",
                errors.len()
            ))
        })?;
        let now = self.clock.now();
        let received = match parse_ie034(wire.as_bytes(), &Limits::default()) {
            Ok(received) => received,
            // As NCTS does: an IE034 it cannot read is answered with an IE917.
            Err(errors) => {
                return Ok(Submission::Answered(Outcome::XmlError {
                    errors: vec![replies::schema_error(&errors)],
                }));
            }
        };
        let sim_query = GuaranteeQuery::from_ie034(&received)
            .ok_or_else(|| GmsError::Internal("the IE034 names no guarantee".to_owned()))?;
        let answer = {
            let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
            rules::answer(&self.config.dataset, &sim_query, &mut usage, now)
        };
        let (reply, delivery, malformed) = match answer {
            SimulatedAnswer::SubmitRefused { status } => {
                info!(status, "simulated GMS refused the submission");
                return Err(refused_status(status));
            }
            SimulatedAnswer::Reply {
                reply,
                delivery,
                malformed,
            } => (reply, delivery, malformed),
        };
        let outcome = read_back(&reply, &ReplyAddress::of(&received), malformed, now)?;
        match delivery {
            Delivery::Immediate => {
                let outcome = outcome?;
                info!(outcome = outcome.status(), "simulated GMS answered");
                Ok(Submission::Answered(outcome))
            }
            Delivery::Never => {
                info!("simulated GMS accepted the query and will never reply");
                Ok(Submission::Accepted)
            }
            Delivery::After(delay) => {
                info!(
                    delay_ms = delay.as_millis() as u64,
                    "simulated GMS will reply later"
                );
                self.deliver_later(context.message_id, outcome, delay);
                Ok(Submission::Accepted)
            }
        }
    }

    fn deliver_later(
        &self,
        message_id: MessageId,
        outcome: Result<Outcome, GmsError>,
        delay: Duration,
    ) {
        let sink = Arc::clone(&self.sink);
        let cancelled = self.pending.clone();
        let span = info_span!("simulated_reply", transport = TRANSPORT, message_id = %message_id);
        tokio::spawn(
            async move {
                tokio::select! {
                    () = cancelled.cancelled() => return,
                    () = tokio::time::sleep(delay) => {}
                }
                match outcome {
                    Ok(outcome) => {
                        info!(outcome = outcome.status(), "simulated GMS replies");
                        sink.deliver(message_id, outcome).await;
                    }
                    // gbal's listener refuses a reply it cannot read; nothing is recorded.
                    Err(error) => {
                        warn!(error = %error, "simulated GMS sent a reply that cannot be read")
                    }
                }
            }
            .instrument(span),
        );
    }
}

/// Builds the reply message, breaks it if asked, and reads it back the way gbal's listener
/// would. The outer error is a simulator bug; the inner one a reply gbal cannot read.
fn read_back(
    reply: &SimulatedReply,
    to: &ReplyAddress,
    malformed: bool,
    now: time::OffsetDateTime,
) -> Result<Result<Outcome, GmsError>, GmsError> {
    let message = replies::build(reply, to, now).map_err(GmsError::Internal)?;
    let xml = if malformed {
        replies::malform(&message.xml)
    } else {
        message.xml
    };
    Ok(
        parse_reply(xml.as_bytes(), message.kind, &Limits::default())
            .map(|r| r.outcome)
            .map_err(|errors| {
                GmsError::Garbled(format!(
                    "{} reply: {}",
                    message.kind.header(),
                    errors.first().map_or("unreadable", |e| e.message.as_str())
                ))
            }),
    )
}

/// What an HTTP adapter makes of a status the submission was refused with.
fn refused_status(status: u16) -> GmsError {
    match status {
        400..=499 => GmsError::Rejected { status },
        _ => GmsError::Unavailable {
            retry_after: Duration::from_secs(1),
            reason: format!("simulated GMS answered HTTP {status}"),
        },
    }
}

impl Drop for EmbeddedSimulator {
    fn drop(&mut self) {
        self.pending.cancel();
    }
}

#[async_trait]
impl Gms for EmbeddedSimulator {
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
            message_id = %context.message_id,
        );
        let result = span.in_scope(|| self.handle(query, context));
        call_metrics::record(TRANSPORT, started, &result);
        result
    }

    fn transport(&self) -> &'static str {
        TRANSPORT
    }

    /// At once, unless the guarantee's behaviour delays its reply or sends none (its reply
    /// then comes to the [`ReplySink`], as an NCTS reply would, or never).
    fn answers_within_call(&self, query: &BalanceQuery) -> bool {
        self.config
            .dataset
            .guarantee(query.grn.as_str())
            .is_none_or(|g| !g.behaviour.no_reply && g.behaviour.reply_delay.is_none())
    }
}
