//! The reply builders the GMS simulator uses make documents that both gbal and xmllint
//! accept, and that read back to what was put in.

use gbal_core::{Amount, GuaranteeType, NctsError, Outcome, Rejection, UniqueReference};
use gbal_ncts::{
    Header, Ie037, Ie906, Ie917, Limits, MessageKind, parse_reply, wrap_transit_request,
};
use time::macros::datetime;

use crate::support::xmllint_verdicts;

fn header(i: u128) -> Header {
    Header {
        sender: "NTA.GB".to_owned(),
        recipient: "MDTP-GUA-22b9899e24ee48e6a18997d1".to_owned(),
        prepared_at: datetime!(2026-11-21 13:45 UTC),
        message_ref: UniqueReference::from_value(i * 7919),
    }
}

fn ie037(i: u128, balance: Option<&str>) -> Ie037 {
    Ie037 {
        header: header(i),
        requester_tin: i.is_multiple_of(2).then(|| "GB954131533000".to_owned()),
        guarantee_office: "GB000001".to_owned(),
        grn: format!("22GB{:012}3", i),
        accepted_on: "20210114".to_owned(),
        guarantee_type: "1".parse::<GuaranteeType>().expect("type"),
        exposure: "2751.95".parse().expect("amount"),
        balance: balance.map(|b| b.parse().expect("amount")),
        currency: "GBP".parse().expect("currency"),
    }
}

#[test]
fn ie037_round_trips_and_xmllint_accepts() {
    let balances = [
        "0",
        "0.5",
        "0.05",
        "1",
        "50000.00",
        "12345678.90",
        "999999999999999",
        "9999999999999.99",
    ];
    let docs: Vec<String> = balances
        .iter()
        .enumerate()
        .map(|(i, b)| ie037(i as u128, Some(b)).build().expect("writable"))
        .collect();
    for (doc, b) in docs.iter().zip(balances) {
        let reply = parse_reply(doc.as_bytes(), MessageKind::Ie037, &Limits::default())
            .unwrap_or_else(|e| panic!("{doc}: {e:?}"));
        let Outcome::Success(balance) = reply.outcome else {
            panic!("not a balance: {doc}");
        };
        assert_eq!(balance.amount, b.parse::<Amount>().expect("amount"));
        assert_eq!(reply.recipient, "MDTP-GUA-22b9899e24ee48e6a18997d1");
    }
    assert!(
        xmllint_verdicts(MessageKind::Ie037, &docs)
            .into_iter()
            .all(|ok| ok)
    );
}

#[test]
fn ie037_refuses_unwritable_amounts() {
    for bad in ["-1", "0.001", "12345678901234567"] {
        assert!(ie037(1, Some(bad)).build().is_err(), "{bad}");
    }
}

#[test]
fn ie037_without_balance_is_schema_valid_but_refused() {
    let doc = ie037(3, None).build().expect("writable");
    assert!(xmllint_verdicts(MessageKind::Ie037, std::slice::from_ref(&doc))[0]);
    let errors = parse_reply(doc.as_bytes(), MessageKind::Ie037, &Limits::default())
        .expect_err("no balance");
    assert!(errors[0].message.contains("BalEXP3"), "{errors:?}");
}

#[test]
fn ie906_and_ie917_round_trip_and_xmllint_accepts() {
    let mut ie906_docs = Vec::new();
    for (i, r) in Rejection::ALL.into_iter().enumerate() {
        let doc = Ie906 {
            header: header(i as u128),
            original_ref: "jh8v8a7z7hzmq3".to_owned(),
            errors: r.errors(),
        }
        .build();
        let reply = parse_reply(
            wrap_transit_request(&doc).as_bytes(),
            MessageKind::Ie906,
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{doc}: {e:?}"));
        assert_eq!(
            reply.outcome,
            Outcome::FunctionalError { errors: r.errors() }
        );
        assert_eq!(reply.original_ref.as_deref(), Some("jh8v8a7z7hzmq3"));
        ie906_docs.push(doc);
    }
    assert!(
        xmllint_verdicts(MessageKind::Ie906, &ie906_docs)
            .into_iter()
            .all(|ok| ok)
    );

    let error = NctsError::with_reason(
        gbal_core::ErrorType::new(15).expect("type"),
        "MesRecMES6",
        "a long reason text",
    );
    let doc = Ie917 {
        header: header(9),
        original_ref: "0123456789abcd".to_owned(),
        error: error.clone(),
    }
    .build();
    let reply =
        parse_reply(doc.as_bytes(), MessageKind::Ie917, &Limits::default()).expect("valid IE917");
    assert_eq!(
        reply.outcome,
        Outcome::XmlError {
            errors: vec![error]
        }
    );
    assert!(xmllint_verdicts(MessageKind::Ie917, &[doc])[0]);
}

#[test]
fn replies_with_a_doctype_are_refused() {
    let doc = ie037(1, Some("10")).build().expect("writable");
    let hostile = format!("<!DOCTYPE CD037A [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{doc}");
    let errors = parse_reply(hostile.as_bytes(), MessageKind::Ie037, &Limits::default())
        .expect_err("DOCTYPE");
    assert!(
        errors
            .iter()
            .any(|e| e.message.to_ascii_lowercase().contains("doctype")),
        "{errors:?}"
    );
}
