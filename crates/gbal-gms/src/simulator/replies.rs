//! The reply messages the simulated GMS sends, built with gbal-ncts.

use gbal_core::{ErrorType, NctsError, UniqueReference};
use gbal_ncts::{Header, Ie037, Ie906, Ie917, MessageKind, ReceivedIe034, SchemaError};
use time::OffsetDateTime;

use super::rules::SimulatedReply;

/// Where a reply goes and what it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyAddress {
    /// The office that answers (the IE034's MesRecMES6): the reply's MesSenMES3.
    pub office: String,
    /// The IE034's MesSenMES3: the reply's MesRecMES6 and the reply route.
    pub recipient: String,
    /// The IE034's MesIdeMES19.
    pub original_ref: String,
    /// The IE034's requester TIN.
    pub requester_tin: Option<String>,
}

impl ReplyAddress {
    pub(crate) fn of(ie034: &ReceivedIe034) -> Self {
        Self {
            office: ie034.recipient.clone(),
            recipient: ie034.sender.clone(),
            original_ref: ie034.message_ref.clone(),
            requester_tin: ie034.requester_tin.clone(),
        }
    }
}

/// A reply message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyMessage {
    pub kind: MessageKind,
    pub xml: String,
}

/// Builds the IE037, IE906 or IE917 for a reply.
pub(crate) fn build(
    reply: &SimulatedReply,
    to: &ReplyAddress,
    now: OffsetDateTime,
) -> Result<ReplyMessage, String> {
    let header = Header {
        sender: to.office.clone(),
        recipient: to.recipient.clone(),
        prepared_at: now,
        message_ref: UniqueReference::random(),
    };
    match reply {
        SimulatedReply::Balance(g) => {
            let xml = Ie037 {
                header,
                requester_tin: to.requester_tin.clone(),
                guarantee_office: g.office.clone(),
                grn: g.grn.as_str().to_owned(),
                accepted_on: g.accepted_on.clone(),
                guarantee_type: g.guarantee_type,
                exposure: g.exposure,
                balance: g.balance,
                currency: g.currency,
            }
            .build()
            .map_err(|e| e.to_string())?;
            Ok(ReplyMessage {
                kind: MessageKind::Ie037,
                xml,
            })
        }
        SimulatedReply::Refused(errors) => Ok(ReplyMessage {
            kind: MessageKind::Ie906,
            xml: Ie906 {
                header,
                original_ref: to.original_ref.clone(),
                errors: errors.clone(),
            }
            .build(),
        }),
        SimulatedReply::XmlError(error) => Ok(ReplyMessage {
            kind: MessageKind::Ie917,
            xml: Ie917 {
                header,
                original_ref: to.original_ref.clone(),
                error: error.clone(),
            }
            .build(),
        }),
    }
}

/// The IE917 error NCTS answers an IE034 that breaks its schema with: the first broken rule.
/// A rule about the access code is named without its text, which may quote the code.
pub(crate) fn schema_error(errors: &[SchemaError]) -> NctsError {
    let first = errors.first();
    let reason = first.map(|e| {
        if e.message.contains("AccCodCOD729") {
            "AccCodCOD729 is not valid".to_owned()
        } else {
            e.message.chars().take(140).collect()
        }
    });
    let pointer = first.map_or_else(
        || "CD034A".to_owned(),
        |e| format!("CD034A line {} column {}", e.line, e.column),
    );
    NctsError {
        error_type: ErrorType::INCORRECT,
        error_pointer: pointer,
        error_reason: reason,
    }
}

/// A broken copy of a message: cut in the middle, so it is not well-formed.
pub(crate) fn malform(xml: &str) -> String {
    let cut = xml
        .char_indices()
        .nth(xml.chars().count() / 2)
        .map_or(xml.len(), |(i, _)| i);
    format!("{}<", &xml[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use gbal_core::Outcome;
    use gbal_ncts::{Limits, parse_reply};
    use time::macros::datetime;

    use crate::simulator::Dataset;
    use crate::simulator::rules::simulated_xml_error;

    fn address() -> ReplyAddress {
        ReplyAddress {
            office: "NTA.GB".to_owned(),
            recipient: "MDTP-GUA-22b9899e24ee48e6a18997d1".to_owned(),
            original_ref: "jh8v8a7z7hzmq3".to_owned(),
            requester_tin: Some("GB954131533000".to_owned()),
        }
    }

    #[test]
    fn every_reply_reads_back() {
        let d = Dataset::sandbox();
        let g = d.guarantee("26GB0000010000021").expect("sandbox").clone();
        let now = datetime!(2026-11-21 13:45 UTC);
        let cases = [
            (
                SimulatedReply::Balance(Box::new(g.clone())),
                MessageKind::Ie037,
            ),
            (
                SimulatedReply::Refused(gbal_core::Rejection::UnknownGrn.errors()),
                MessageKind::Ie906,
            ),
            (
                SimulatedReply::XmlError(simulated_xml_error()),
                MessageKind::Ie917,
            ),
        ];
        for (reply, kind) in cases {
            let m = build(&reply, &address(), now).expect("built");
            assert_eq!(m.kind, kind);
            let read = parse_reply(m.xml.as_bytes(), kind, &Limits::default()).expect("valid");
            assert_eq!(read.recipient, "MDTP-GUA-22b9899e24ee48e6a18997d1");
            match (&reply, read.outcome) {
                (SimulatedReply::Balance(g), Outcome::Success(b)) => {
                    assert_eq!(Some(b.amount), g.balance);
                    assert_eq!(read.grn.as_deref(), Some("26GB0000010000021"));
                }
                (SimulatedReply::Refused(errors), Outcome::FunctionalError { errors: read }) => {
                    assert_eq!(&read, errors);
                }
                (SimulatedReply::XmlError(e), Outcome::XmlError { errors }) => {
                    assert_eq!(errors, std::slice::from_ref(e));
                }
                (r, o) => panic!("{r:?} read back as {o:?}"),
            }
            assert!(parse_reply(malform(&m.xml).as_bytes(), kind, &Limits::default()).is_err());
        }
    }

    #[test]
    fn schema_errors_never_quote_the_access_code() {
        let e = schema_error(&[SchemaError {
            line: 1,
            column: 2,
            message: "AccCodCOD729: 'SECRET' is longer than 4".to_owned(),
        }]);
        assert!(!format!("{e:?}").contains("SECRET"));
        assert_eq!(e.error_pointer, "CD034A line 1 column 2");
    }
}
