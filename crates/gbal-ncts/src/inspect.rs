//! Reading any NCTS message gbal knows, whatever its kind.

use crate::error::SchemaError;
use crate::ie034::{ReceivedIe034, read_ie034};
use crate::kind::MessageKind;
use crate::reply::{Reply, read_reply};
use crate::validate::{Limits, validate_any};

/// Any message gbal knows, validated and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A query on guarantees.
    Ie034(ReceivedIe034),
    /// A reply.
    Reply(Reply),
}

/// Validates a document against the schema its root names and reads it.
pub fn inspect(xml: &[u8], limits: &Limits) -> Result<Message, Vec<SchemaError>> {
    let doc = validate_any(xml, limits)?;
    match doc.kind() {
        MessageKind::Ie034 => Ok(Message::Ie034(read_ie034(&doc))),
        _ => read_reply(&doc).map(Message::Reply).map_err(|e| vec![e]),
    }
}
