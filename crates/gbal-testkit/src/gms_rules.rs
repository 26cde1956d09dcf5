//! The IE906 error sets GMS answers (observed GMS answers, as docs/sandbox.md lists them),
//! written out here independently of gbal's own table (`gbal_core::Rejection`): the tests
//! compare what the simulator, the adapters and the API answer with these.
//!
//! | case | IE906 errors |
//! |---|---|
//! | unknown TIN | 12 `RC1.TIN`; 12 `GRR(1).OTG(1).TIN`; 26 `RC1.TIN` |
//! | unknown GRN | 12 `GRR(1).Guarantee reference number (GRN)`; 12 `GRR(1).OTG(1).TIN`; 12 `GRR(1).ACC(1).Access code` |
//! | wrong access code | 12 `GRR(1).ACC(1).Access code` |
//! | TIN known but not this guarantee's principal | 12 `GRR(1).OTG(1).TIN` |
//! | type 2 or 4 | 14 `GRR(1).GQY(1).Query identifier` reason `R261` |
//! | query limit reached | 26 `RC1.TIN` |

use gbal_core::{ErrorType, NctsError};

/// A case of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// The requester's TIN is unknown to the GMS of the GRN's country.
    UnknownTin,
    /// No guarantee has the GRN.
    UnknownGrn,
    /// The access code does not match.
    WrongAccessCode,
    /// The TIN is known but is not the guarantee's principal.
    TinMismatch,
    /// A guarantee of type 2 or 4: no balance.
    UnsupportedType,
    /// The TIN has made its queries for the day.
    QueryLimit,
}

impl Case {
    /// Every case, in the table's order.
    pub const ALL: [Case; 6] = [
        Case::UnknownTin,
        Case::UnknownGrn,
        Case::WrongAccessCode,
        Case::TinMismatch,
        Case::UnsupportedType,
        Case::QueryLimit,
    ];

    /// The errors, in order, as (ErrTypER11, ErrPoiER12, ErrReaER13).
    pub fn rows(self) -> &'static [(u8, &'static str, Option<&'static str>)] {
        match self {
            Case::UnknownTin => &[
                (12, "RC1.TIN", None),
                (12, "GRR(1).OTG(1).TIN", None),
                (26, "RC1.TIN", None),
            ],
            Case::UnknownGrn => &[
                (12, "GRR(1).Guarantee reference number (GRN)", None),
                (12, "GRR(1).OTG(1).TIN", None),
                (12, "GRR(1).ACC(1).Access code", None),
            ],
            Case::WrongAccessCode => &[(12, "GRR(1).ACC(1).Access code", None)],
            Case::TinMismatch => &[(12, "GRR(1).OTG(1).TIN", None)],
            Case::UnsupportedType => &[(14, "GRR(1).GQY(1).Query identifier", Some("R261"))],
            Case::QueryLimit => &[(26, "RC1.TIN", None)],
        }
    }

    /// The errors as gbal's values.
    pub fn errors(self) -> Vec<NctsError> {
        self.rows()
            .iter()
            .map(|&(kind, pointer, reason)| {
                let kind = ErrorType::new(kind).expect("two digits");
                match reason {
                    Some(reason) => NctsError::with_reason(kind, pointer, reason),
                    None => NctsError::new(kind, pointer),
                }
            })
            .collect()
    }

    /// The errors as the API's JSON writes them: `[{"errorType":12,"errorPointer":"..."}]`,
    /// with `"errorReason"` when there is one.
    pub fn json(self) -> String {
        let items: Vec<String> = self
            .rows()
            .iter()
            .map(|&(kind, pointer, reason)| match reason {
                Some(reason) => format!(
                    r#"{{"errorType":{kind},"errorPointer":"{pointer}","errorReason":"{reason}"}}"#
                ),
                None => format!(r#"{{"errorType":{kind},"errorPointer":"{pointer}"}}"#),
            })
            .collect();
        format!("[{}]", items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_json_form_names_every_field() {
        assert_eq!(
            Case::UnsupportedType.json(),
            r#"[{"errorType":14,"errorPointer":"GRR(1).GQY(1).Query identifier","errorReason":"R261"}]"#
        );
        assert_eq!(Case::UnknownTin.errors().len(), 3);
    }

    /// gbal's own table (what the simulator answers and the adapters recognise) says what
    /// GMS says.
    #[test]
    fn gbal_s_rejection_table_agrees_with_the_observed_sets() {
        use gbal_core::Rejection;
        for (case, rejection) in Case::ALL.into_iter().zip([
            Rejection::UnknownTin,
            Rejection::UnknownGrn,
            Rejection::WrongAccessCode,
            Rejection::TinMismatch,
            Rejection::UnsupportedGuaranteeType,
            Rejection::QueryLimit,
        ]) {
            assert_eq!(rejection.errors(), case.errors(), "{case:?}");
            assert_eq!(Rejection::classify(&case.errors()), Some(rejection));
        }
    }
}
