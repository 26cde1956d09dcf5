//! The NCTS error vocabulary: the pointers GMS uses, readable texts for errors, and the
//! error sets GMS answers for each known kind of refusal.

use crate::outcome::{ErrorType, NctsError};

/// ErrPoiER12 of a wrong access code.
pub const POINTER_ACCESS_CODE: &str = "GRR(1).ACC(1).Access code";
/// ErrPoiER12 of an unknown GRN.
pub const POINTER_GRN: &str = "GRR(1).Guarantee reference number (GRN)";
/// ErrPoiER12 of an unsupported query (guarantee type without a balance).
pub const POINTER_QUERY_IDENTIFIER: &str = "GRR(1).GQY(1).Query identifier";
/// ErrPoiER12 of the guarantee's principal TIN.
pub const POINTER_PRINCIPAL_TIN: &str = "GRR(1).OTG(1).TIN";
/// ErrPoiER12 of the requester's TIN.
pub const POINTER_TIN: &str = "RC1.TIN";
/// ErrReaER13 of an unsupported guarantee type.
pub const REASON_UNSUPPORTED_TYPE: &str = "R261";

/// The readable name of a pointer, or the pointer itself when it is not a known one.
pub fn pointer_name(pointer: &str) -> &str {
    match pointer {
        POINTER_ACCESS_CODE => "Access Code",
        POINTER_GRN => "Guarantee Reference Number",
        POINTER_QUERY_IDENTIFIER => "Guarantee Query Identifier",
        POINTER_PRINCIPAL_TIN => "Guarantee Principal EORI",
        POINTER_TIN => "EORI Number",
        other => other,
    }
}

/// A readable text for one IE906 error; the first matching rule wins.
pub fn describe_functional(error: &NctsError) -> String {
    let t = error.error_type;
    let p = error.error_pointer.as_str();
    let known = match (t, p, error.error_reason.as_deref()) {
        (ErrorType::INCORRECT, POINTER_ACCESS_CODE, _) => Some("Incorrect Access Code"),
        (ErrorType::INCORRECT, POINTER_GRN, _) => Some("Incorrect Guarantee Reference Number"),
        (ErrorType::UNSUPPORTED, POINTER_QUERY_IDENTIFIER, Some(REASON_UNSUPPORTED_TYPE)) => {
            Some("Unsupported Guarantee Type")
        }
        (ErrorType::INCORRECT, POINTER_PRINCIPAL_TIN, _) => {
            Some("EORI and Guarantee Reference Number do not match")
        }
        (ErrorType::INCORRECT, POINTER_TIN, _) => Some("Incorrect EORI Number"),
        _ => None,
    };
    match known {
        Some(text) => text.to_owned(),
        None => generic("Functional", error),
    }
}

/// A readable text for the error of an IE917.
pub fn describe_xml(error: &NctsError) -> String {
    generic("XML", error)
}

fn generic(kind: &str, error: &NctsError) -> String {
    let name = pointer_name(&error.error_pointer);
    match &error.error_reason {
        Some(r) => format!(
            "{kind} error {} with reason code {r} for {name} element",
            error.error_type
        ),
        None => format!("{kind} error {} for {name} element", error.error_type),
    }
}

/// The kinds of refusal GMS is known to answer, each with the exact error set it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    /// The requester's TIN is unknown to this GMS.
    UnknownTin,
    /// No guarantee has this GRN.
    UnknownGrn,
    /// The access code does not match.
    WrongAccessCode,
    /// The TIN is known but is not this guarantee's principal.
    TinMismatch,
    /// The guarantee's type has no balance (types other than 0, 1, 9).
    UnsupportedGuaranteeType,
    /// The TIN has used up its queries for the day.
    QueryLimit,
}

impl Rejection {
    /// Every kind, for tests and tables.
    pub const ALL: [Rejection; 6] = [
        Rejection::UnknownTin,
        Rejection::UnknownGrn,
        Rejection::WrongAccessCode,
        Rejection::TinMismatch,
        Rejection::UnsupportedGuaranteeType,
        Rejection::QueryLimit,
    ];

    /// The IE906 errors GMS sends for this refusal, in order.
    pub fn errors(self) -> Vec<NctsError> {
        use ErrorType as T;
        match self {
            Rejection::UnknownTin => vec![
                NctsError::new(T::INCORRECT, POINTER_TIN),
                NctsError::new(T::INCORRECT, POINTER_PRINCIPAL_TIN),
                NctsError::new(T::DUPLICATE_OR_LIMIT, POINTER_TIN),
            ],
            Rejection::UnknownGrn => vec![
                NctsError::new(T::INCORRECT, POINTER_GRN),
                NctsError::new(T::INCORRECT, POINTER_PRINCIPAL_TIN),
                NctsError::new(T::INCORRECT, POINTER_ACCESS_CODE),
            ],
            Rejection::WrongAccessCode => vec![NctsError::new(T::INCORRECT, POINTER_ACCESS_CODE)],
            Rejection::TinMismatch => vec![NctsError::new(T::INCORRECT, POINTER_PRINCIPAL_TIN)],
            Rejection::UnsupportedGuaranteeType => vec![NctsError::with_reason(
                T::UNSUPPORTED,
                POINTER_QUERY_IDENTIFIER,
                REASON_UNSUPPORTED_TYPE,
            )],
            Rejection::QueryLimit => vec![NctsError::new(T::DUPLICATE_OR_LIMIT, POINTER_TIN)],
        }
    }

    /// Recognises the exact error set of a known refusal.
    pub fn classify(errors: &[NctsError]) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.errors() == errors)
    }

    /// A short readable description.
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::UnknownTin => "Incorrect EORI Number",
            Rejection::UnknownGrn => "Incorrect Guarantee Reference Number",
            Rejection::WrongAccessCode => "Incorrect Access Code",
            Rejection::TinMismatch => "EORI and Guarantee Reference Number do not match",
            Rejection::UnsupportedGuaranteeType => "Unsupported Guarantee Type",
            Rejection::QueryLimit => "Query limit reached for this EORI",
        }
    }
}

/// Whether an IE906 is only a query-limit refusal: 26 `RC1.TIN` without 12 `RC1.TIN` (an
/// unknown TIN also carries 26 `RC1.TIN`, and must stay a functional error).
pub fn is_query_limit(errors: &[NctsError]) -> bool {
    errors
        .iter()
        .any(|e| e.is(ErrorType::DUPLICATE_OR_LIMIT, POINTER_TIN))
        && !errors
            .iter()
            .any(|e| e.is(ErrorType::INCORRECT, POINTER_TIN))
}

/// Whether an IE906 says the guarantee's type has no balance (14 with reason R261).
pub fn is_unsupported_guarantee_type(errors: &[NctsError]) -> bool {
    errors.iter().any(|e| {
        e.is(ErrorType::UNSUPPORTED, POINTER_QUERY_IDENTIFIER)
            && e.error_reason.as_deref() == Some(REASON_UNSUPPORTED_TYPE)
    })
}

/// Whether an IE906 says the GRN is unknown or the access code wrong.
pub fn is_not_found(errors: &[NctsError]) -> bool {
    errors.iter().any(|e| {
        e.is(ErrorType::INCORRECT, POINTER_GRN) || e.is(ErrorType::INCORRECT, POINTER_ACCESS_CODE)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(t: u8, p: &str, r: Option<&str>) -> NctsError {
        NctsError {
            error_type: ErrorType::new(t).unwrap(),
            error_pointer: p.to_owned(),
            error_reason: r.map(str::to_owned),
        }
    }

    #[test]
    fn readable_texts_first_rule_wins() {
        assert_eq!(
            describe_functional(&err(12, POINTER_ACCESS_CODE, Some("X"))),
            "Incorrect Access Code"
        );
        assert_eq!(
            describe_functional(&err(12, POINTER_GRN, None)),
            "Incorrect Guarantee Reference Number"
        );
        assert_eq!(
            describe_functional(&err(14, POINTER_QUERY_IDENTIFIER, Some("R261"))),
            "Unsupported Guarantee Type"
        );
        assert_eq!(
            describe_functional(&err(14, POINTER_QUERY_IDENTIFIER, Some("R262"))),
            "Functional error 14 with reason code R262 for Guarantee Query Identifier element"
        );
        assert_eq!(
            describe_functional(&err(12, POINTER_PRINCIPAL_TIN, None)),
            "EORI and Guarantee Reference Number do not match"
        );
        assert_eq!(
            describe_functional(&err(12, POINTER_TIN, None)),
            "Incorrect EORI Number"
        );
        assert_eq!(
            describe_functional(&err(89, "Foo.Bar(1).Baz", Some("R999"))),
            "Functional error 89 with reason code R999 for Foo.Bar(1).Baz element"
        );
        assert_eq!(
            describe_functional(&err(99, POINTER_TIN, None)),
            "Functional error 99 for EORI Number element"
        );
        assert_eq!(
            describe_functional(&err(26, POINTER_TIN, None)),
            "Functional error 26 for EORI Number element"
        );
    }

    #[test]
    fn xml_error_texts() {
        assert_eq!(
            describe_xml(&err(14, "MesRecMES3", None)),
            "XML error 14 for MesRecMES3 element"
        );
        assert_eq!(
            describe_xml(&err(15, POINTER_ACCESS_CODE, Some("R1"))),
            "XML error 15 with reason code R1 for Access Code element"
        );
    }

    #[test]
    fn every_rejection_classifies_back_to_itself() {
        for r in Rejection::ALL {
            assert_eq!(Rejection::classify(&r.errors()), Some(r), "{r:?}");
            assert!(!r.describe().is_empty());
        }
        assert_eq!(Rejection::classify(&[]), None);
        assert_eq!(Rejection::classify(&[err(12, POINTER_TIN, None)]), None);
    }

    #[test]
    fn observed_sets_in_order() {
        let unknown_tin: Vec<(u8, String)> = Rejection::UnknownTin
            .errors()
            .iter()
            .map(|e| (e.error_type.get(), e.error_pointer.clone()))
            .collect();
        assert_eq!(
            unknown_tin,
            [
                (12, "RC1.TIN".to_owned()),
                (12, "GRR(1).OTG(1).TIN".to_owned()),
                (26, "RC1.TIN".to_owned())
            ]
        );
    }

    #[test]
    fn query_limit_is_not_an_unknown_tin() {
        assert!(is_query_limit(&Rejection::QueryLimit.errors()));
        assert!(!is_query_limit(&Rejection::UnknownTin.errors()));
        assert!(!is_query_limit(&Rejection::WrongAccessCode.errors()));
    }

    #[test]
    fn v2_predicates() {
        assert!(is_unsupported_guarantee_type(
            &Rejection::UnsupportedGuaranteeType.errors()
        ));
        assert!(!is_unsupported_guarantee_type(&[err(
            14,
            POINTER_QUERY_IDENTIFIER,
            None
        )]));
        assert!(is_not_found(&Rejection::UnknownGrn.errors()));
        assert!(is_not_found(&Rejection::WrongAccessCode.errors()));
        assert!(!is_not_found(&Rejection::TinMismatch.errors()));
        assert!(!is_not_found(&Rejection::QueryLimit.errors()));
    }
}
