//! gbal's own example messages (`testdata/messages`): valid ones read as the message they
//! show, invalid ones are refused with the reason at the bad element, and xmllint agrees with
//! gbal's validator on each verdict.

use std::collections::BTreeSet;
use std::fs;

use gbal_core::{ErrorType, NctsError, Outcome, Rejection};
use gbal_ncts::{Limits, Message, MessageKind, SchemaError, inspect, parse_reply, validate};
use gbal_testkit::reference;

use crate::support::xmllint_verdicts;

/// Every valid example, with its kind.
const VALID: [(&str, MessageKind); 7] = [
    ("valid/IE034.xml", MessageKind::Ie034),
    ("valid/IE034-without-tin.xml", MessageKind::Ie034),
    ("valid/IE034-transit-request.xml", MessageKind::Ie034),
    ("valid/IE037.xml", MessageKind::Ie037),
    ("valid/IE906-unknown-tin.xml", MessageKind::Ie906),
    (
        "valid/IE906-unsupported-guarantee-type.xml",
        MessageKind::Ie906,
    ),
    ("valid/IE917.xml", MessageKind::Ie917),
];

/// Every invalid example, with its kind.
const INVALID: [(&str, MessageKind); 6] = [
    ("invalid/IE034-access-code-5-chars.xml", MessageKind::Ie034),
    ("invalid/IE034-bad-date.xml", MessageKind::Ie034),
    ("invalid/IE037-missing-MesTypMES20.xml", MessageKind::Ie037),
    ("invalid/IE037-negative-balance.xml", MessageKind::Ie037),
    (SCHEMA_VALID_BUT_UNREADABLE, MessageKind::Ie037),
    ("invalid/IE906-too-long-fields.xml", MessageKind::Ie906),
];

/// The one invalid example that the XSD allows: an IE037 without a balance.
const SCHEMA_VALID_BUT_UNREADABLE: &str = "invalid/IE037-without-BalEXP3.xml";

/// The query the examples answer, and gbal's recipient id in it.
const QUERY_REF: &str = "q7d2k9m4x1v8ce";
const RECIPIENT: &str = "MDTP-GUA-3f9c2a7e51d04b8c96e0a4d2";

fn read(name: &str) -> Vec<u8> {
    reference::message(name).into_bytes()
}

fn inspect_file(name: &str) -> Result<Message, Vec<SchemaError>> {
    inspect(&read(name), &Limits::default())
}

fn reply(name: &str) -> gbal_ncts::Reply {
    match inspect_file(name) {
        Ok(Message::Reply(r)) => r,
        other => panic!("{name}: expected a reply, got {other:?}"),
    }
}

fn refusal(name: &str) -> Vec<SchemaError> {
    match inspect_file(name) {
        Err(errors) => errors,
        Ok(m) => panic!("{name}: expected a refusal, got {m:?}"),
    }
}

fn texts(errors: &[SchemaError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Asserts one error is at `line` and its message names every word in `words`.
fn assert_error(name: &str, errors: &[SchemaError], line: u32, words: &[&str]) {
    assert!(
        errors
            .iter()
            .any(|e| e.line == line && e.column > 0 && words.iter().all(|w| e.message.contains(w))),
        "{name}: expected an error on line {line} naming {words:?}, got {errors:#?}"
    );
}

#[test]
fn every_example_file_has_an_expectation() {
    let dir = reference::messages_dir();
    let mut found = BTreeSet::new();
    for sub in ["valid", "invalid"] {
        for entry in fs::read_dir(dir.join(sub)).expect("examples folder") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(&dir).expect("under the examples folder");
            found.insert(rel.to_string_lossy().into_owned());
        }
    }
    let known: BTreeSet<String> = VALID
        .iter()
        .chain(INVALID.iter())
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(
        found, known,
        "a new example needs an expectation in this file"
    );
}

#[test]
fn ie034_examples_read_back() {
    for name in ["valid/IE034.xml", "valid/IE034-transit-request.xml"] {
        let Ok(Message::Ie034(m)) = inspect_file(name) else {
            panic!("{name} should be a valid IE034");
        };
        assert_eq!(m.sender, RECIPIENT, "{name}");
        assert_eq!(m.recipient, "NTA.GB");
        assert_eq!(m.message_ref, QUERY_REF);
        assert_eq!(m.requester_tin.as_deref(), Some("GB318274650000"));
        assert_eq!(m.guarantees.len(), 1);
        let g = &m.guarantees[0];
        assert_eq!(g.grn, "25GB4K7P2W9X3M6T1");
        assert_eq!(g.query_identifier, "2");
        assert_eq!(g.principal_tin.as_deref(), Some("GB318274650000"));
        assert_eq!(g.access_code(), Some("K3V9"));
        assert!(
            !format!("{g:?}").contains("K3V9"),
            "Debug must hide the access code"
        );
    }

    let Ok(Message::Ie034(m)) = inspect_file("valid/IE034-without-tin.xml") else {
        panic!("IE034-without-tin.xml should be a valid IE034");
    };
    assert_eq!(m.message_ref, "w0f4i8m2p6s1ux");
    assert_eq!(m.requester_tin, None);
    let g = &m.guarantees[0];
    assert_eq!(g.grn, "25XI8R3C6J1N5V2H7");
    assert_eq!(g.principal_tin, None);
    assert_eq!(g.access_code(), Some("7TQ2"));
}

#[test]
fn ie037_example_is_a_balance() {
    let r = reply("valid/IE037.xml");
    assert_eq!(r.kind, MessageKind::Ie037);
    assert_eq!(r.recipient, RECIPIENT);
    assert_eq!(r.grn.as_deref(), Some("25GB4K7P2W9X3M6T1"));
    let Outcome::Success(balance) = r.outcome else {
        panic!("expected a balance, got {:?}", r.outcome);
    };
    assert_eq!(balance.amount.to_string(), "18250.75");
    assert_eq!(balance.currency.as_str(), "GBP");
}

#[test]
fn ie906_examples_are_functional_errors() {
    let r = reply("valid/IE906-unknown-tin.xml");
    assert_eq!(r.original_ref.as_deref(), Some(QUERY_REF));
    let Outcome::FunctionalError { errors } = &r.outcome else {
        panic!("expected functional errors, got {:?}", r.outcome);
    };
    assert_eq!(Rejection::classify(errors), Some(Rejection::UnknownTin));

    let r = reply("valid/IE906-unsupported-guarantee-type.xml");
    assert_eq!(r.original_ref.as_deref(), Some("w0f4i8m2p6s1ux"));
    let Outcome::FunctionalError { errors } = &r.outcome else {
        panic!("expected functional errors, got {:?}", r.outcome);
    };
    assert_eq!(
        Rejection::classify(errors),
        Some(Rejection::UnsupportedGuaranteeType)
    );
    assert_eq!(errors[0].error_reason.as_deref(), Some("R261"));
}

#[test]
fn ie917_example_is_an_xml_error() {
    let r = reply("valid/IE917.xml");
    assert_eq!(r.original_ref.as_deref(), Some(QUERY_REF));
    assert_eq!(
        r.outcome,
        Outcome::XmlError {
            errors: vec![NctsError::new(ErrorType::INCORRECT, "DatOfPreMES9")]
        }
    );
}

#[test]
fn invalid_examples_are_refused_with_the_reason() {
    let e = refusal("invalid/IE034-access-code-5-chars.xml");
    assert_error("access code", &e, 24, &["AccCodCOD729"]);
    let e = refusal("invalid/IE034-bad-date.xml");
    assert_error("bad date", &e, 7, &["DatOfPreMES9", "17.03.25"]);
    let e = refusal("invalid/IE037-missing-MesTypMES20.xml");
    assert_error("missing", &e, 11, &["MesTypMES20"]);
    let e = refusal("invalid/IE037-negative-balance.xml");
    assert_error("negative", &e, 29, &["BalEXP3", "-120.50"]);
    let e = refusal(SCHEMA_VALID_BUT_UNREADABLE);
    assert_eq!(
        e.iter().map(|e| (e.line, e.column)).collect::<Vec<_>>(),
        [(18, 3)],
        "{e:#?}"
    );
    assert_error("no balance", &e, 18, &["BalEXP3"]);
    let e = refusal("invalid/IE906-too-long-fields.xml");
    assert_error("too long", &e, 12, &["OriMesIdeMES22"]);
    assert_error("too long", &e, 16, &["ErrReaER13"]);
}

#[test]
fn invalid_examples_point_at_the_bad_element() {
    let limits = Limits::default();
    let check = |name: &str, kind| validate(&read(name), kind, &limits);

    let errors = check("invalid/IE034-access-code-5-chars.xml", MessageKind::Ie034)
        .expect_err("5 characters");
    assert_eq!(
        texts(&errors),
        ["line 24, column 7: AccCodCOD729: value has 5 characters, exactly 4 required"]
    );
    let errors = check("invalid/IE034-bad-date.xml", MessageKind::Ie034).expect_err("bad date");
    assert_eq!(
        texts(&errors),
        ["line 7, column 3: DatOfPreMES9: value '17.03.25' does not match [0-9]{6,8}"]
    );
    let errors =
        check("invalid/IE037-missing-MesTypMES20.xml", MessageKind::Ie037).expect_err("missing");
    assert_eq!(
        texts(&errors),
        ["line 11, column 3: element MesTypMES20 is missing, expected after MesIdeMES19"]
    );
    let errors =
        check("invalid/IE037-negative-balance.xml", MessageKind::Ie037).expect_err("negative");
    assert_eq!((errors[0].line, errors[0].column), (29, 7));
    let errors =
        check("invalid/IE906-too-long-fields.xml", MessageKind::Ie906).expect_err("too long");
    assert_eq!(
        texts(&errors),
        [
            "line 12, column 3: OriMesIdeMES22: value has 20 characters, at most 14 allowed",
            "line 16, column 5: ErrReaER13: value has 28 characters, at most 6 allowed",
        ]
    );
    assert!(check(SCHEMA_VALID_BUT_UNREADABLE, MessageKind::Ie037).is_ok());
}

#[test]
fn valid_examples_pass() {
    for (name, kind) in VALID {
        let doc = validate(&read(name), kind, &Limits::default());
        assert!(doc.is_ok(), "{name}: {:?}", doc.err());
        assert_eq!(doc.map(|d| d.kind()).ok(), Some(kind), "{name}");
    }
}

#[test]
fn a_reply_of_another_kind_than_announced_is_refused() {
    let xml = read("valid/IE037.xml");
    let errors =
        parse_reply(&xml, MessageKind::Ie906, &Limits::default()).expect_err("root mismatch");
    assert!(
        errors.iter().any(|e| e.message.contains("CD037A")),
        "{errors:#?}"
    );
    let xml = read("valid/IE034.xml");
    assert!(parse_reply(&xml, MessageKind::Ie034, &Limits::default()).is_err());
}

/// The message inside the `<transitRequest>` wrapper gbal accepts around it, which the XSDs
/// do not declare.
fn unwrapped(text: &str) -> &str {
    let text = text.trim_end();
    text.strip_prefix("<transitRequest>")
        .and_then(|t| t.strip_suffix("</transitRequest>"))
        .unwrap_or(text)
}

#[test]
fn xmllint_and_gbal_agree_on_every_example() {
    let limits = Limits::default();
    for (name, kind) in VALID.iter().chain(INVALID.iter()) {
        let text = reference::message(name);
        let xmllint = xmllint_verdicts(*kind, &[unwrapped(&text).to_owned()])[0];
        let schema_valid = name.starts_with("valid/") || *name == SCHEMA_VALID_BUT_UNREADABLE;
        assert_eq!(xmllint, schema_valid, "{name}: xmllint's verdict");
        let gbal = validate(text.as_bytes(), *kind, &limits).is_ok();
        assert_eq!(gbal, xmllint, "{name}: gbal and xmllint disagree");
        // The parsers read every valid example and refuse every invalid one.
        let read = inspect(text.as_bytes(), &limits);
        assert_eq!(read.is_ok(), name.starts_with("valid/"), "{name}: {read:?}");
    }
}
