//! Property: every IE034 the builder makes from valid inputs passes gbal's own CD034A check
//! and `xmllint --schema CD034A.xsd`.

use gbal_core::{AccessCode, Grn, MessageId, Tin, UniqueReference};
use gbal_ncts::{Header, Ie034, Limits, MessageKind, parse_ie034};
use gbal_testkit::reference;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use time::OffsetDateTime;

use crate::support::xmllint_verdicts;

fn alnum(min: usize, max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[A-Za-z0-9]{{{min},{max}}}")).expect("regex")
}

fn inputs() -> impl Strategy<Value = Ie034> {
    (
        alnum(1, 24),
        proptest::option::of(alnum(1, 17)),
        alnum(4, 4),
        any::<[u8; 12]>(),
        "[A-Z]{1,4}-[A-Z]{1,4}-",
        "[A-Z.]{1,35}",
        0i64..4_102_444_800, // 1970 to 2100
        0u128..6_140_942_214_464_815_497_216,
    )
        .prop_map(
            |(grn, tin, code, id, prefix, office, secs, reference)| Ie034 {
                header: Header {
                    sender: MessageId::from_bytes(id).recipient(&prefix),
                    recipient: office,
                    prepared_at: OffsetDateTime::from_unix_timestamp(secs).expect("in range"),
                    message_ref: UniqueReference::from_value(reference),
                },
                grn: Grn::parse_v1(&grn).expect("valid GRN"),
                tin: tin.map(|t| Tin::parse(&t).expect("valid TIN")),
                access_code: AccessCode::parse(&code).expect("valid code"),
            },
        )
}

#[test]
fn built_ie034_passes_both_validators() {
    let mut runner = TestRunner::new(Config::default());
    let cases: Vec<Ie034> = (0..400)
        .map(|_| inputs().new_tree(&mut runner).expect("strategy").current())
        .collect();
    let docs: Vec<String> = cases.iter().map(Ie034::build).collect();
    for (case, doc) in cases.iter().zip(&docs) {
        let read = parse_ie034(doc.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("gbal refused its own IE034 {doc}: {e:?}"));
        // What was written reads back the same.
        assert_eq!(read.guarantees[0].grn, case.grn.as_str());
        assert_eq!(
            read.guarantees[0].access_code(),
            Some(case.access_code.expose())
        );
        assert_eq!(
            read.requester_tin.as_deref(),
            case.tin.as_ref().map(Tin::as_str)
        );
        assert_eq!(read.message_ref, case.header.message_ref.as_str());
    }
    let verdicts = xmllint_verdicts(MessageKind::Ie034, &docs);
    for (doc, ok) in docs.iter().zip(verdicts) {
        assert!(ok, "xmllint refused an IE034 gbal built: {doc}");
    }
}

#[test]
fn wire_form_is_wrapped_and_checked() {
    let case = inputs()
        .new_tree(&mut TestRunner::default())
        .expect("strategy")
        .current();
    let wire = case.build_wire().expect("valid");
    assert!(wire.starts_with("<transitRequest><CD034A>"));
    assert!(wire.ends_with("</CD034A></transitRequest>"));
    assert!(parse_ie034(wire.as_bytes(), &Limits::default()).is_ok());
}

#[test]
fn builder_matches_the_wire_example() {
    let case = Ie034 {
        header: Header {
            sender: "MDTP-GUA-3f9c2a7e51d04b8c96e0a4d2".to_owned(),
            recipient: "NTA.GB".to_owned(),
            prepared_at: time::macros::datetime!(2025-03-17 14:06:41 UTC),
            message_ref: "q7d2k9m4x1v8ce".parse().expect("reference"),
        },
        grn: Grn::parse_v1("25GB4K7P2W9X3M6T1").expect("grn"),
        tin: Some(Tin::parse("GB318274650000").expect("tin")),
        access_code: AccessCode::parse("K3V9").expect("code"),
    };
    let expected = reference::message("valid/IE034-transit-request.xml");
    assert_eq!(case.build_wire().expect("valid"), expected.trim_end());
}

#[test]
fn v2_ie034_has_no_tin() {
    let mut case = inputs()
        .new_tree(&mut TestRunner::default())
        .expect("strategy")
        .current();
    case.tin = None;
    let xml = case.build_checked().expect("valid without TIN");
    assert!(!xml.contains("TRAPRIRC1") && !xml.contains("TRAPRIOTG"));
}
