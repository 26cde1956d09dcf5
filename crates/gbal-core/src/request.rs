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

/// A caller id that breaks [`CallerId`]'s rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a caller id has 1 to {max} characters, no control character and at least one visible one",
    max = CallerId::MAX_LEN
)]
pub struct InvalidCallerId;

impl CallerId {
    /// The longest caller id kept.
    pub const MAX_LEN: usize = 256;

    /// Parses a token subject. The rules, in one place: 1 to [`MAX_LEN`](Self::MAX_LEN)
    /// characters; no control character (a line break in a log line or a lock key); and at
    /// least one visible character, so that a subject of only spaces, zero-width or other
    /// format characters cannot pass for a caller that looks like no one (or like another).
    pub fn parse(value: &str) -> Result<Self, InvalidCallerId> {
        if value.is_empty()
            || value.chars().count() > Self::MAX_LEN
            || value.chars().any(char::is_control)
            || value.chars().all(draws_nothing)
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

/// Whether `c` shows nothing on its own: whitespace, a control character, a format
/// character (Unicode category Cf: zero-width spaces and joiners, direction marks and
/// overrides, the byte-order mark, invisible operators, tags...), or one of the letters and
/// marks that are drawn blank (the Hangul fillers, the braille blank, variation selectors,
/// the combining grapheme joiner, Khmer's inherent vowels, Mongolian's variation selectors).
fn draws_nothing(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            u32::from(c),
            // Cf, Unicode 16.
            0x00AD
                | 0x0600..=0x0605
                | 0x061C
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x180E
                | 0x200B..=0x200F
                | 0x202A..=0x202E
                | 0x2060..=0x2064
                | 0x2066..=0x206F
                | 0xFEFF
                | 0xFFF9..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0001
                | 0xE0020..=0xE007F
                // Drawn blank, though not Cf.
                | 0x034F
                | 0x115F
                | 0x1160
                | 0x17B4
                | 0x17B5
                | 0x180B..=0x180D
                | 0x180F
                | 0x2800
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFFA0
                | 0xE0100..=0xE01EF
        )
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
    fn a_caller_id_needs_a_visible_character() {
        for invisible in [
            " ",
            "   ",
            "\u{a0}",
            "\u{3000}",
            "\u{2003}\u{2009}",
            "\u{200b}",
            "\u{200b}\u{200c}\u{200d}",
            "\u{feff}",
            "\u{2060}\u{2061}",
            "\u{202e}",
            "\u{2066}\u{2069}",
            "\u{ad}",
            "\u{e0041}\u{e0042}",
            "\u{3164}",
            "\u{115f}\u{1160}",
            "\u{2800}",
            "\u{fe0f}",
            "\u{34f}",
            " \u{200b} \u{feff} ",
        ] {
            assert_eq!(
                CallerId::parse(invisible),
                Err(InvalidCallerId),
                "{:?}",
                invisible.escape_unicode().to_string()
            );
        }
        // One visible character is enough; invisible ones around it are kept as given.
        for visible in [
            "a",
            " a ",
            "\u{200b}a",
            "é",
            "東京",
            "client\u{200d}1",
            "-",
            "😀",
        ] {
            let id = CallerId::parse(visible).expect(visible);
            assert_eq!(id.as_str(), visible);
        }
        // Control characters are refused anywhere, even beside visible ones.
        for control in ["a\u{0}", "a\tb", "a\u{85}b", "a\u{7f}"] {
            assert_eq!(
                CallerId::parse(control),
                Err(InvalidCallerId),
                "{control:?}"
            );
        }
    }

    #[test]
    fn api_version_numbers() {
        for v in [ApiVersion::V1, ApiVersion::V2] {
            assert_eq!(ApiVersion::from_number(v.number()), Some(v));
        }
        assert_eq!(ApiVersion::from_number(3), None);
    }
}
