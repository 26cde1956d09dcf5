//! Identifiers: the balance request id, the message id derived from it, and the IE034's
//! unique message reference.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The id of a balance request: a time-ordered UUID (version 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BalanceRequestId(Uuid);

impl BalanceRequestId {
    /// A fresh id, ordered by creation time.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    /// Wraps a UUID read back from storage.
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The message id that travels to GMS and back: the first 12 bytes of this id.
    pub fn message_id(&self) -> MessageId {
        let mut bytes = [0u8; MessageId::LEN];
        bytes.copy_from_slice(&self.0.as_bytes()[..MessageId::LEN]);
        MessageId(bytes)
    }
}

impl Default for BalanceRequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for BalanceRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

/// A balance request id that is not a UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The balance request ID is not a valid UUID")]
pub struct InvalidBalanceRequestId;

impl FromStr for BalanceRequestId {
    type Err = InvalidBalanceRequestId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Only the hyphenated form callers were given is accepted.
        if s.len() != 36 {
            return Err(InvalidBalanceRequestId);
        }
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| InvalidBalanceRequestId)
    }
}

/// The message id: the first 12 bytes of the balance request id. It names the request in
/// MesSenMES3, `X-Message-Sender` and the reply route as `<prefix><24 hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId([u8; MessageId::LEN]);

/// A recipient that is not `<prefix><24 hex digits>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a message recipient of the form <prefix><24 hex digits>")]
pub struct InvalidMessageId;

impl MessageId {
    /// Length in bytes.
    pub const LEN: usize = 12;

    /// Wraps bytes read back from storage.
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; Self::LEN] {
        &self.0
    }

    /// 24 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(Self::LEN * 2);
        for b in self.0 {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        }
        out
    }

    /// The recipient form: `prefix` followed by 24 lower-case hex digits.
    pub fn recipient(&self, prefix: &str) -> String {
        let mut out = String::with_capacity(prefix.len() + Self::LEN * 2);
        out.push_str(prefix);
        out.push_str(&self.to_hex());
        out
    }

    /// Parses 24 hex digits, in either case.
    pub fn parse_hex(hex: &str) -> Result<Self, InvalidMessageId> {
        let b = hex.as_bytes();
        if b.len() != Self::LEN * 2 {
            return Err(InvalidMessageId);
        }
        let mut out = [0u8; Self::LEN];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Ok(Self(out))
    }

    /// Parses the recipient form `<prefix><24 hex>`; the prefix must match exactly, the hex
    /// digits may be in either case.
    pub fn parse_recipient(prefix: &str, recipient: &str) -> Result<Self, InvalidMessageId> {
        let hex = recipient.strip_prefix(prefix).ok_or(InvalidMessageId)?;
        Self::parse_hex(hex)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn nibble(c: u8) -> Result<u8, InvalidMessageId> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(InvalidMessageId),
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The IE034's message reference (IntConRefMES11 = MesIdeMES19): 14 base-36 characters,
/// lower-case, drawn at random. Replies name it in OriMesIdeMES22.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct UniqueReference([u8; UniqueReference::LEN]);

/// A message reference that is not 14 base-36 characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a message reference of 14 base-36 characters")]
pub struct InvalidUniqueReference;

impl UniqueReference {
    /// Length in characters.
    pub const LEN: usize = 14;
    /// 36^14: every reference is below it.
    const LIMIT: u128 = 6_140_942_214_464_815_497_216;
    const ALPHABET: &'static [u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

    /// A fresh random reference (73 random bits, redrawn above 36^14 - 1), from the thread's
    /// CSPRNG (seeded and reseeded from the operating system: no system call per reference).
    pub fn random() -> Self {
        loop {
            let value = rand::random::<u128>() & ((1u128 << 73) - 1);
            if value < Self::LIMIT {
                return Self::from_value(value);
            }
        }
    }

    /// The reference for a number below 36^14, zero-padded to 14 characters.
    pub fn from_value(mut value: u128) -> Self {
        value %= Self::LIMIT;
        let mut out = [b'0'; Self::LEN];
        for slot in out.iter_mut().rev() {
            *slot = Self::ALPHABET[(value % 36) as usize];
            value /= 36;
        }
        Self(out)
    }

    /// The 14 characters.
    pub fn as_str(&self) -> &str {
        // Only ALPHABET bytes are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for UniqueReference {
    type Err = InvalidUniqueReference;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        if b.len() != Self::LEN
            || !b
                .iter()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        {
            return Err(InvalidUniqueReference);
        }
        let mut out = [0u8; Self::LEN];
        out.copy_from_slice(b);
        Ok(Self(out))
    }
}

impl fmt::Debug for UniqueReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UniqueReference({})", self.as_str())
    }
}

impl fmt::Display for UniqueReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ids_are_time_ordered_v7() {
        let a = BalanceRequestId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = BalanceRequestId::new();
        assert!(a < b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
    }

    #[test]
    fn balance_id_parses_only_hyphenated_uuids() {
        let id = BalanceRequestId::new();
        assert_eq!(id.to_string().parse::<BalanceRequestId>(), Ok(id));
        assert_eq!(
            "22b9899e-24ee-48e6-a189-97d1f45391c4"
                .parse::<BalanceRequestId>()
                .map(|i| i.to_string()),
            Ok("22b9899e-24ee-48e6-a189-97d1f45391c4".to_owned())
        );
        for bad in [
            "",
            "not-a-uuid",
            "22b9899e24ee48e6a18997d1f45391c4",
            "22b9899e-24ee-48e6-a189-97d1f45391cz",
        ] {
            assert_eq!(
                bad.parse::<BalanceRequestId>(),
                Err(InvalidBalanceRequestId),
                "{bad}"
            );
        }
    }

    #[test]
    fn message_id_is_the_first_12_bytes() {
        let id: BalanceRequestId = "22b9899e-24ee-48e6-a189-97d1f45391c4".parse().unwrap();
        assert_eq!(id.message_id().to_hex(), "22b9899e24ee48e6a18997d1");
        assert_eq!(
            id.message_id().recipient("MDTP-GUA-"),
            "MDTP-GUA-22b9899e24ee48e6a18997d1"
        );
        assert_eq!(id.message_id().recipient("MDTP-GUA-").len(), 33);
    }

    #[test]
    fn recipient_parses_either_case() {
        let expected = MessageId::parse_hex("22b9899e24ee48e6a18997d1").unwrap();
        assert_eq!(
            MessageId::parse_recipient("MDTP-GUA-", "MDTP-GUA-22B9899E24EE48E6A18997D1"),
            Ok(expected)
        );
        assert_eq!(
            MessageId::parse_recipient("MDTP-GUA-", "MDTP-GUA-22b9899e24ee48e6a18997d1"),
            Ok(expected)
        );
    }

    #[test]
    fn recipient_refuses_wrong_prefix_length_or_digits() {
        for bad in [
            "22b9899e24ee48e6a18997d1",
            "mdtp-gua-22b9899e24ee48e6a18997d1",
            "MDTP-GUA-22b9899e24ee48e6a18997d",
            "MDTP-GUA-22b9899e24ee48e6a18997d1f",
            "MDTP-GUA-22b9899e24ee48e6a18997dg",
            "MDTP-GUA-",
            "MDTP-GUA-22b9899e24ee48e6a18997é",
        ] {
            assert_eq!(
                MessageId::parse_recipient("MDTP-GUA-", bad),
                Err(InvalidMessageId),
                "{bad}"
            );
        }
    }

    #[test]
    fn unique_reference_vectors() {
        assert_eq!(UniqueReference::from_value(0).as_str(), "00000000000000");
        assert_eq!(UniqueReference::from_value(1).as_str(), "00000000000001");
        assert_eq!(UniqueReference::from_value(35).as_str(), "0000000000000z");
        assert_eq!(UniqueReference::from_value(36).as_str(), "00000000000010");
        assert_eq!(
            UniqueReference::from_value(UniqueReference::LIMIT - 1).as_str(),
            "zzzzzzzzzzzzzz"
        );
    }

    #[test]
    fn unique_reference_parse() {
        assert!("jh8v8a7z7hzmq3".parse::<UniqueReference>().is_ok());
        assert!("JH8V8A7Z7HZMQ3".parse::<UniqueReference>().is_err());
        assert!("jh8v8a7z7hzmq".parse::<UniqueReference>().is_err());
        assert!("jh8v8a7z7hzmq3x".parse::<UniqueReference>().is_err());
    }

    #[test]
    fn random_references_differ_and_are_well_formed() {
        let refs: std::collections::HashSet<String> = (0..1000)
            .map(|_| UniqueReference::random().to_string())
            .collect();
        assert_eq!(refs.len(), 1000);
        assert!(refs.iter().all(|r| r.parse::<UniqueReference>().is_ok()));
    }

    proptest! {
        #[test]
        fn hex_round_trips(bytes in any::<[u8; 12]>()) {
            let id = MessageId::from_bytes(bytes);
            prop_assert_eq!(MessageId::parse_hex(&id.to_hex()), Ok(id));
            prop_assert_eq!(MessageId::parse_hex(&id.to_hex().to_uppercase()), Ok(id));
        }

        #[test]
        fn references_round_trip(value in 0u128..UniqueReference::LIMIT) {
            let r = UniqueReference::from_value(value);
            prop_assert_eq!(r.as_str().len(), 14);
            prop_assert_eq!(u128::from_str_radix(r.as_str(), 36).ok(), Some(value));
        }
    }
}
