//! A balance request: who asked, about what, and what became of it.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::access_code::AccessCode;
use crate::grn::Grn;
use crate::id::{BalanceRequestId, MessageId, UniqueReference};
use crate::outcome::Outcome;
use crate::tin::Tin;

/// The authenticated caller: the `sub` of its token. Requests are only visible to their caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallerId(String);

/// A caller id that is empty, too long or has control characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a caller id has 1 to {max} printable characters", max = CallerId::MAX_LEN)]
pub struct InvalidCallerId;

impl CallerId {
    /// The longest caller id kept.
    pub const MAX_LEN: usize = 256;

    /// Parses a token subject.
    pub fn parse(value: &str) -> Result<Self, InvalidCallerId> {
        if value.is_empty()
            || value.chars().count() > Self::MAX_LEN
            || value.chars().any(char::is_control)
        {
            return Err(InvalidCallerId);
        }
        Ok(Self(value.to_owned()))
    }

    /// The subject.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CallerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CallerId {
    type Error = InvalidCallerId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<CallerId> for String {
    fn from(value: CallerId) -> Self {
        value.0
    }
}

/// The public API version a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApiVersion {
    /// Phase 4, asynchronous: `application/vnd.hmrc.1.0+json`.
    V1,
    /// Phase 5, synchronous: `application/vnd.hmrc.2.0+json`.
    V2,
}

impl ApiVersion {
    /// The version number as stored: 1 or 2.
    pub fn number(self) -> i16 {
        match self {
            ApiVersion::V1 => 1,
            ApiVersion::V2 => 2,
        }
    }

    /// The version for a stored number.
    pub fn from_number(n: i16) -> Option<Self> {
        match n {
            1 => Some(ApiVersion::V1),
            2 => Some(ApiVersion::V2),
            _ => None,
        }
    }
}

/// What a caller asks GMS: a GRN, its access code and, in API v1, the principal's TIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceQuery {
    /// The guarantee.
    pub grn: Grn,
    /// Its access code (never stored, never logged).
    pub access_code: AccessCode,
    /// The principal's TIN (API v1 only).
    pub tin: Option<Tin>,
}

/// A request about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBalanceRequest {
    /// Its id; the message id is derived from it.
    pub id: BalanceRequestId,
    /// The IE034's MesIdeMES19, to cross-check replies.
    pub message_ref: UniqueReference,
    /// Who asked.
    pub caller: CallerId,
    /// Through which API version.
    pub api_version: ApiVersion,
    /// The guarantee asked about.
    pub grn: Grn,
    /// The principal's TIN, when given.
    pub tin: Option<Tin>,
    /// When it was asked.
    pub requested_at: OffsetDateTime,
    /// When it is forgotten.
    pub expires_at: OffsetDateTime,
}

impl NewBalanceRequest {
    /// The message id naming this request to GMS.
    pub fn message_id(&self) -> MessageId {
        self.id.message_id()
    }
}

/// A recorded request, pending or completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceRequest {
    /// Its id.
    pub id: BalanceRequestId,
    /// The first 12 bytes of the id.
    pub message_id: MessageId,
    /// The IE034's MesIdeMES19.
    pub message_ref: UniqueReference,
    /// Who asked.
    pub caller: CallerId,
    /// Through which API version.
    pub api_version: ApiVersion,
    /// The guarantee asked about.
    pub grn: Grn,
    /// The principal's TIN, when given.
    pub tin: Option<Tin>,
    /// When it was asked.
    pub requested_at: OffsetDateTime,
    /// When it is forgotten.
    pub expires_at: OffsetDateTime,
    /// When the reply came.
    pub completed_at: Option<OffsetDateTime>,
    /// The reply, once it came.
    pub outcome: Option<Outcome>,
}

impl BalanceRequest {
    /// The row a new request becomes when recorded.
    pub fn pending(new: &NewBalanceRequest) -> Self {
        Self {
            id: new.id,
            message_id: new.message_id(),
            message_ref: new.message_ref,
            caller: new.caller.clone(),
            api_version: new.api_version,
            grn: new.grn.clone(),
            tin: new.tin.clone(),
            requested_at: new.requested_at,
            expires_at: new.expires_at,
            completed_at: None,
            outcome: None,
        }
    }

    /// Whether a reply has been recorded.
    pub fn is_completed(&self) -> bool {
        self.outcome.is_some()
    }

    /// Whether the request is past its expiry at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids() {
        assert!(CallerId::parse("client-1").is_ok());
        assert!(CallerId::parse("").is_err());
        assert!(CallerId::parse("a\nb").is_err());
        assert!(CallerId::parse(&"x".repeat(256)).is_ok());
        assert!(CallerId::parse(&"x".repeat(257)).is_err());
    }

    #[test]
    fn api_version_numbers() {
        for v in [ApiVersion::V1, ApiVersion::V2] {
            assert_eq!(ApiVersion::from_number(v.number()), Some(v));
        }
        assert_eq!(ApiVersion::from_number(3), None);
    }
}
