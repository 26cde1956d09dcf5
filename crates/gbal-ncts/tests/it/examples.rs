//! Every reference example: valid ones parse to the right outcome, invalid ones are refused
//! with the right reason and position, and xmllint agrees on each verdict.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use gbal_core::{ErrorType, NctsError, Outcome, Rejection};
use gbal_ncts::{Limits, Message, MessageKind, SchemaError, inspect, parse_reply};

use crate::support::{xmllint_verdicts, xsd_dir};

fn read(name: &str) -> Vec<u8> {
    let path = xsd_dir().join("examples").join(name);
    fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
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

/// Asserts one error is at `line` and its message names every word in `words`.
fn assert_error(name: &str, errors: &[SchemaError], line: u32, words: &[&str]) {
    assert!(
        errors
            .iter()
            .any(|e| e.line == line && e.column > 0 && words.iter().all(|w| e.message.contains(w))),
        "{name}: expected an error on line {line} naming {words:?}, got {errors:#?}"
    );
}

const VALID: [&str; 6] = [
    "IE034-example.xml",
    "IE034-wire-body-example.txt",
    "IE037-example.xml",
    "IE906-example.xml",
    "IE906-unsupported-guarantee-type-example.xml",
    "IE917-example.xml",
];
const INVALID: [&str; 6] = [
    "invalid/IE034-access-code-5-chars.xml",
    "invalid/IE034-bad-date.xml",
    "invalid/IE037-missing-MesTypMES20.xml",
    "invalid/IE037-negative-balance.xml",
    "invalid/IE037-no-BalEXP3-schema-valid-but-unparseable.xml",
    "invalid/IE906-test-fixture-style-too-long-fields.xml",
];

#[test]
fn every_example_file_has_an_expectation() {
    let dir = xsd_dir().join("examples");
    let mut found = BTreeSet::new();
    for sub in ["", "invalid"] {
        for entry in fs::read_dir(dir.join(sub)).expect("examples directory") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                let rel = path.strip_prefix(&dir).expect("under examples");
                found.insert(rel.to_string_lossy().into_owned());
            }
        }
    }
    let known: BTreeSet<String> = VALID
        .iter()
        .chain(INVALID.iter())
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        found, known,
        "a new example needs an expectation in this file"
    );
}

#[test]
fn ie034_example_reads_back() {
    for name in ["IE034-example.xml", "IE034-wire-body-example.txt"] {
        let Ok(Message::Ie034(m)) = inspect_file(name) else {
            panic!("{name} should be a valid IE034");
        };
        assert_eq!(m.sender, "MDTP-GUA-614070cf24ee48e6a18997d1", "{name}");
        assert_eq!(m.recipient, "NTA.GB");
        assert_eq!(m.message_ref, "jh8v8a7z7hzmq3");
        assert_eq!(m.requester_tin.as_deref(), Some("GB954131533000"));
        assert_eq!(m.guarantees.len(), 1);
        let g = &m.guarantees[0];
        assert_eq!(g.grn, "22GB0000010000313");
        assert_eq!(g.query_identifier, "2");
        assert_eq!(g.principal_tin.as_deref(), Some("GB954131533000"));
        assert_eq!(g.access_code(), Some("AC01"));
        assert!(
            !format!("{g:?}").contains("AC01"),
            "Debug must hide the access code"
        );
    }
}

#[test]
fn ie037_example_is_a_balance() {
    let r = reply("IE037-example.xml");
    assert_eq!(r.kind, MessageKind::Ie037);
    assert_eq!(r.recipient, "MDTP-GUA-614070cf24ee48e6a18997d1");
    assert_eq!(r.grn.as_deref(), Some("22GB0000010000313"));
    let Outcome::Success(balance) = r.outcome else {
        panic!("expected a balance, got {:?}", r.outcome);
    };
    assert_eq!(balance.amount.to_string(), "50000");
    assert_eq!(balance.currency.as_str(), "GBP");
}

#[test]
fn ie906_examples_are_functional_errors() {
    let r = reply("IE906-example.xml");
    assert_eq!(r.original_ref.as_deref(), Some("jh8v8a7z7hzmq3"));
    let Outcome::FunctionalError { errors } = &r.outcome else {
        panic!("expected functional errors, got {:?}", r.outcome);
    };
    assert_eq!(Rejection::classify(errors), Some(Rejection::UnknownTin));

    let r = reply("IE906-unsupported-guarantee-type-example.xml");
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
    let r = reply("IE917-example.xml");
    assert_eq!(r.original_ref.as_deref(), Some("jh8v8a7z7hzmq3"));
    assert_eq!(
        r.outcome,
        Outcome::XmlError {
            errors: vec![NctsError::new(ErrorType::UNSUPPORTED, "MesRecMES3")]
        }
    );
}

#[test]
fn invalid_examples_are_refused_with_the_reason() {
    let e = refusal("invalid/IE034-access-code-5-chars.xml");
    assert_error("access code", &e, 23, &["AccCodCOD729"]);
    let e = refusal("invalid/IE034-bad-date.xml");
    assert_error("bad date", &e, 6, &["DatOfPreMES9", "ABC12345"]);
    let e = refusal("invalid/IE037-missing-MesTypMES20.xml");
    assert!(
        e.iter().any(|e| e.message.contains("MesTypMES20")),
        "{e:#?}"
    );
    let e = refusal("invalid/IE037-negative-balance.xml");
    assert_error("negative", &e, 28, &["BalEXP3", "-5.00"]);
    let e = refusal("invalid/IE037-no-BalEXP3-schema-valid-but-unparseable.xml");
    assert!(
        e.iter()
            .any(|e| e.message.contains("BalEXP3") && e.line > 1),
        "{e:#?}"
    );
    let e = refusal("invalid/IE906-test-fixture-style-too-long-fields.xml");
    assert_error("too long", &e, 11, &["OriMesIdeMES22"]);
    assert_error("too long", &e, 15, &["ErrReaER13"]);
}

#[test]
fn a_reply_of_another_kind_than_announced_is_refused() {
    let xml = read("IE037-example.xml");
    let errors =
        parse_reply(&xml, MessageKind::Ie906, &Limits::default()).expect_err("root mismatch");
    assert!(
        errors.iter().any(|e| e.message.contains("CD037A")),
        "{errors:#?}"
    );
    let xml = read("IE034-example.xml");
    assert!(parse_reply(&xml, MessageKind::Ie034, &Limits::default()).is_err());
}

#[test]
fn xmllint_agrees_on_every_example() {
    let by_kind = |name: &str| {
        let n = Path::new(name)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        match &n[..5] {
            "IE034" => MessageKind::Ie034,
            "IE037" => MessageKind::Ie037,
            "IE906" => MessageKind::Ie906,
            _ => MessageKind::Ie917,
        }
    };
    for name in VALID
        .iter()
        .chain(INVALID.iter())
        .filter(|n| n.ends_with(".xml"))
    {
        let doc = String::from_utf8(read(name)).expect("UTF-8");
        let xmllint = xmllint_verdicts(by_kind(name), std::slice::from_ref(&doc))[0];
        let gbal = gbal_ncts::validate(doc.as_bytes(), by_kind(name), &Limits::default()).is_ok();
        assert_eq!(gbal, xmllint, "{name}: gbal and xmllint disagree");
        // Schema-valid but without a balance: the one invalid example xmllint accepts.
        let schema_valid = VALID.contains(name) || name.contains("no-BalEXP3");
        assert_eq!(xmllint, schema_valid, "{name}");
    }
}

#[test]
fn invalid_examples_point_at_the_bad_element() {
    let read = |name: &str| read(&format!("invalid/{name}"));
    let limits = Limits::default();

    let errors = gbal_ncts::validate(
        &read("IE034-access-code-5-chars.xml"),
        MessageKind::Ie034,
        &limits,
    )
    .expect_err("5 chars");
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["line 23, column 7: AccCodCOD729: value has 5 characters, exactly 4 required"]
    );
    let errors = gbal_ncts::validate(&read("IE034-bad-date.xml"), MessageKind::Ie034, &limits)
        .expect_err("bad date");
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["line 6, column 3: DatOfPreMES9: value 'ABC12345' does not match [0-9]{6,8}"]
    );
    let errors = gbal_ncts::validate(
        &read("IE037-missing-MesTypMES20.xml"),
        MessageKind::Ie037,
        &limits,
    )
    .expect_err("missing");
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["line 11, column 3: element MesTypMES20 is missing, expected after MesIdeMES19"]
    );
    let errors = gbal_ncts::validate(
        &read("IE037-negative-balance.xml"),
        MessageKind::Ie037,
        &limits,
    )
    .expect_err("negative");
    assert_eq!((errors[0].line, errors[0].column), (28, 7));
    let errors = gbal_ncts::validate(
        &read("IE906-test-fixture-style-too-long-fields.xml"),
        MessageKind::Ie906,
        &limits,
    )
    .expect_err("too long");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        gbal_ncts::validate(
            &read("IE037-no-BalEXP3-schema-valid-but-unparseable.xml"),
            MessageKind::Ie037,
            &limits
        )
        .is_ok()
    );
}

#[test]
fn valid_examples_pass() {
    for (file, kind) in [
        ("IE034-example.xml", MessageKind::Ie034),
        ("IE037-example.xml", MessageKind::Ie037),
        ("IE906-example.xml", MessageKind::Ie906),
        (
            "IE906-unsupported-guarantee-type-example.xml",
            MessageKind::Ie906,
        ),
        ("IE917-example.xml", MessageKind::Ie917),
        ("IE034-wire-body-example.txt", MessageKind::Ie034),
    ] {
        let xml = read(file);
        let doc = gbal_ncts::validate(&xml, kind, &Limits::default());
        assert!(doc.is_ok(), "{file}: {:?}", doc.err());
    }
}
