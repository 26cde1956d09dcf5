//! The reply GMS posts to the internal listener, read from the request: the extractor
//! [`ReplyMessage`].
//!
//! Checks, in order (after the sender's token, `auth::ReplySender`): the recipient has the form
//! of one of gbal's message ids (400, as HMRC's back end refuses a path it cannot bind),
//! `X-Message-Type` names a reply (400), the message is valid against its schema (400
//! SCHEMA_VALIDATION; the validator refuses any DOCTYPE or entity declaration), and the values
//! a reply must carry can be read from it (400 BAD_REQUEST: a schema-valid IE037 without a
//! balance, for one).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use gbal_core::{MessageId, ReplyFields};
use gbal_ncts::{Limits, MessageKind, parse_reply, validate};

use crate::error::{ApiError, SchemaProblem};
use crate::metric;
use crate::state::AppState;

/// A schema-valid reply, with the request it is posted for.
#[derive(Debug)]
pub(crate) struct ReplyMessage {
    /// The message id of the request, read from the path.
    pub recipient: MessageId,
    /// The recipient as posted, for the answer that names it.
    pub posted_to: String,
    /// IE037, IE906 or IE917.
    pub kind: MessageKind,
    /// What the reply says, and the values that say which request it answers.
    pub fields: ReplyFields,
}

const MESSAGE_TYPE_ERROR: &str = "Missing or incorrect X-Message-Type header";
/// HMRC's words for a recipient that is not `<prefix><24 hex>`.
const RECIPIENT_ERROR: &str = "Cannot parse parameter recipient as a message identifier value";

/// The 404 of a recipient that names no request.
pub(crate) fn recipient_not_found(posted_to: &str) -> ApiError {
    ApiError::NotFound(format!(
        "The balance request with message identifier {posted_to} was not found"
    ))
}

impl FromRequest<AppState> for ReplyMessage {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let Path(posted_to) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(|rejection| ApiError::from_status(rejection.status()))?;
        let kind = parts
            .headers
            .get("x-message-type")
            .and_then(|v| v.to_str().ok())
            .and_then(MessageKind::from_header)
            .filter(|kind| *kind != MessageKind::Ie034);
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| ApiError::from_status(rejection.status()))?;
        let prefix = &state.config().reply.recipient_prefix;
        let recipient = MessageId::parse_recipient(prefix, &posted_to)
            .map_err(|_| ApiError::BadRequest(RECIPIENT_ERROR.to_owned()))?;
        let kind = kind.ok_or_else(|| ApiError::BadRequest(MESSAGE_TYPE_ERROR.to_owned()))?;
        let limits = Limits {
            max_bytes: state.config().reply_body_limit,
            ..Limits::default()
        };
        let reply = parse_reply(&body, kind, &limits).map_err(|errors| {
            metric::reply(kind.header(), "schema_invalid");
            // Valid by the schema, yet without a value a reply needs (an IE037's balance):
            // HMRC's back end refuses it as a parse failure, not a schema one. Checked only on
            // this rare path, so a good reply is validated once.
            if validate(&body, kind, &limits).is_ok() {
                return ApiError::BadRequest(format!(
                    "Unable to parse required values from {} message",
                    kind.header()
                ));
            }
            ApiError::SchemaValidation {
                message_type: kind.header(),
                errors: errors
                    .into_iter()
                    .map(|e| SchemaProblem {
                        line_number: e.line,
                        column_number: e.column,
                        message: e.message,
                    })
                    .collect(),
            }
        })?;
        Ok(Self {
            recipient,
            posted_to,
            kind,
            fields: ReplyFields {
                addressed_to: MessageId::parse_recipient(prefix, &reply.recipient).ok(),
                original_ref: reply.original_ref,
                grn: reply.grn,
                outcome: reply.outcome,
            },
        })
    }
}
