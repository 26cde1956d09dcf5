//! The four NCTS message schemas (CD034A, CD037A, CD906A, CC917A) as static tables.
//!
//! The facts come from the NCTS XSDs: no namespace, every complex type is a plain
//! `xs:sequence` of distinct element names, and every simple type used is an `xs:token`
//! restriction with one length facet and one pattern. The patterns are matched by
//! [`Pattern::matches`], a small hand-written matcher per pattern; [`Pattern`]'s `Display`
//! prints the XSD pattern text so that messages (and the tests) can quote it exactly.

use std::fmt;

use crate::kind::MessageKind;

/// One element of a sequence: its name, occurrence bounds and content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementDecl {
    /// Element name (no namespace).
    pub name: &'static str,
    /// `minOccurs`.
    pub min_occurs: u16,
    /// `maxOccurs`.
    pub max_occurs: u16,
    /// What the element holds.
    pub content: Content,
}

/// The content of an element: a simple-type value or a sequence of child elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// A token value of the given simple type.
    Simple(&'static SimpleType),
    /// Element-only content: the children, in sequence order.
    Complex(&'static [ElementDecl]),
}

/// A simple type derived from `xs:token`: whitespace collapsed, then one length facet and
/// one pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimpleType {
    /// The XSD type name, e.g. `Alphanumeric_Max35`.
    pub name: &'static str,
    /// The `length` or `maxLength` facet, in characters (Unicode code points).
    pub length: Length,
    /// The `pattern` facet.
    pub pattern: Pattern,
}

/// A length facet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// `xs:length`.
    Exactly(u16),
    /// `xs:maxLength`.
    AtMost(u16),
}

impl Length {
    /// Whether a value of `chars` characters satisfies the facet.
    pub fn allows(self, chars: usize) -> bool {
        match self {
            Length::Exactly(n) => chars == usize::from(n),
            Length::AtMost(n) => chars <= usize::from(n),
        }
    }
}

/// The XSD patterns used by the four messages. Patterns are implicitly anchored and are
/// applied to the collapsed value, so `.` matches every character left in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// `.{min,max}` (printed `.{n}` when `min == max`).
    AnyChars { min: u16, max: u16 },
    /// `[a-zA-Z]{n}`.
    Letters(u16),
    /// `[^0-9]*`.
    NoDigits,
    /// `[0-9]{min,max}` (printed `[0-9]{n}` when `min == max`).
    Digits { min: u16, max: u16 },
    /// Numeric_4, a time `HHMM` from 0000 to 2359.
    Time,
    /// Numeric_8, a date `YYYYMMDD`. Its classes `[1|2]` and `[0|1]` are written the way the
    /// XSD writes them, so they also accept a literal `|`.
    Date,
    /// Decimal_Max16: `0`, or no leading zero, at most two decimals, at most 15 integer
    /// digits without a fraction.
    Decimal,
}

const TIME_PATTERN: &str = "[0-1]{1}[0-9]{1}[0-5]{1}[0-9]{1}|[2]{1}[0-3]{1}[0-5]{1}[0-9]{1}";
const DATE_PATTERN: &str = "[1-2][0-9]{3}[0][1-9][0][1-9]|[1-2][0-9]{3}[0][1-9][1|2][0-9]|\
[1-2][0-9]{3}[0][1-9][3][0|1]|[1-2][0-9]{3}[1][0-2][0][1-9]|\
[1-2][0-9]{3}[1][0-2][1|2][0-9]|[1-2][0-9]{3}[1][0-2][3][0|1]";
const DECIMAL_PATTERN: &str = r"0|0\.[0-9]{1,2}|[1-9][0-9]*\.[0-9]{1,2}|[1-9][0-9]{0,14}";

impl Pattern {
    /// Whether the whole (already collapsed) `value` matches the pattern.
    pub fn matches(self, value: &str) -> bool {
        let bytes = value.as_bytes();
        match self {
            Pattern::AnyChars { min, max } => {
                let n = value.chars().count();
                usize::from(min) <= n && n <= usize::from(max)
            }
            Pattern::Letters(n) => {
                bytes.len() == usize::from(n) && bytes.iter().all(u8::is_ascii_alphabetic)
            }
            Pattern::NoDigits => !bytes.iter().any(u8::is_ascii_digit),
            Pattern::Digits { min, max } => {
                (usize::from(min)..=usize::from(max)).contains(&bytes.len())
                    && bytes.iter().all(u8::is_ascii_digit)
            }
            Pattern::Time => match bytes {
                [h1, h2, m1, m2] => {
                    let hour = matches!((h1, h2), (b'0'..=b'1', b'0'..=b'9') | (b'2', b'0'..=b'3'));
                    hour && matches!(m1, b'0'..=b'5') && m2.is_ascii_digit()
                }
                _ => false,
            },
            Pattern::Date => match bytes {
                [y1, y2, y3, y4, m1, m2, d1, d2] => {
                    let year = matches!(y1, b'1'..=b'2')
                        && y2.is_ascii_digit()
                        && y3.is_ascii_digit()
                        && y4.is_ascii_digit();
                    let month = matches!((m1, m2), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'));
                    let day = matches!(
                        (d1, d2),
                        (b'0', b'1'..=b'9')
                            | (b'1' | b'2' | b'|', b'0'..=b'9')
                            | (b'3', b'0' | b'1' | b'|')
                    );
                    year && month && day
                }
                _ => false,
            },
            Pattern::Decimal => {
                let (int, frac) = match value.split_once('.') {
                    Some((int, frac)) => (int, Some(frac)),
                    None => (value, None),
                };
                let int_ok = int == "0"
                    || (matches!(int.as_bytes().first(), Some(b'1'..=b'9'))
                        && int.bytes().all(|b| b.is_ascii_digit()));
                match frac {
                    Some(frac) => {
                        int_ok
                            && (1..=2).contains(&frac.len())
                            && frac.bytes().all(|b| b.is_ascii_digit())
                    }
                    None => int_ok && int.len() <= 15,
                }
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Pattern::AnyChars { min, max } if min == max => write!(f, ".{{{min}}}"),
            Pattern::AnyChars { min, max } => write!(f, ".{{{min},{max}}}"),
            Pattern::Letters(n) => write!(f, "[a-zA-Z]{{{n}}}"),
            Pattern::NoDigits => f.write_str("[^0-9]*"),
            Pattern::Digits { min, max } if min == max => write!(f, "[0-9]{{{min}}}"),
            Pattern::Digits { min, max } => write!(f, "[0-9]{{{min},{max}}}"),
            Pattern::Time => f.write_str(TIME_PATTERN),
            Pattern::Date => f.write_str(DATE_PATTERN),
            Pattern::Decimal => f.write_str(DECIMAL_PATTERN),
        }
    }
}

/// The root element declaration of a message.
pub fn message(kind: MessageKind) -> &'static ElementDecl {
    match kind {
        MessageKind::Ie034 => &CD034A,
        MessageKind::Ie037 => &CD037A,
        MessageKind::Ie906 => &CD906A,
        MessageKind::Ie917 => &CC917A,
    }
}

// ---------------------------------------------------------------------------------------
// Simple types (simple_types.xsd), one per XSD type name used by the four messages.

const fn alpha(name: &'static str, n: u16, pattern: Pattern) -> SimpleType {
    SimpleType {
        name,
        length: Length::Exactly(n),
        pattern,
    }
}
const fn alnum(name: &'static str, n: u16) -> SimpleType {
    let pattern = Pattern::AnyChars { min: n, max: n };
    SimpleType {
        name,
        length: Length::Exactly(n),
        pattern,
    }
}
const fn alnum_max(name: &'static str, n: u16) -> SimpleType {
    let pattern = Pattern::AnyChars { min: 1, max: n };
    SimpleType {
        name,
        length: Length::AtMost(n),
        pattern,
    }
}
const fn numeric(name: &'static str, n: u16) -> SimpleType {
    let pattern = Pattern::Digits { min: n, max: n };
    SimpleType {
        name,
        length: Length::Exactly(n),
        pattern,
    }
}

const ALPHA_1: SimpleType = alpha("Alpha_1", 1, Pattern::NoDigits);
const ALPHA_1_47: SimpleType = alpha("Alpha_1_-47", 1, Pattern::Letters(1));
const ALPHA_2: SimpleType = alpha("Alpha_2", 2, Pattern::Letters(2));
const ALPHA_2_1: SimpleType = alpha("Alpha_2_-1", 2, Pattern::Letters(2));
const ALPHA_2_26: SimpleType = alpha("Alpha_2_-26", 2, Pattern::Letters(2));
const ALPHA_2_33: SimpleType = alpha("Alpha_2_-33", 2, Pattern::Letters(2));
const ALPHA_4: SimpleType = alpha("Alpha_4", 4, Pattern::Letters(4));

const ALPHANUMERIC_1: SimpleType = alnum("Alphanumeric_1", 1);
const ALPHANUMERIC_2_6: SimpleType = alnum("Alphanumeric_2_-6", 2);
const ALPHANUMERIC_3: SimpleType = alnum("Alphanumeric_3", 3);
const ALPHANUMERIC_3_48: SimpleType = alnum("Alphanumeric_3_-48", 3);
const ALPHANUMERIC_4_25: SimpleType = alnum("Alphanumeric_4_-25", 4);
const ALPHANUMERIC_8: SimpleType = alnum("Alphanumeric_8", 8);
const ALPHANUMERIC_MAX3_49: SimpleType = alnum_max("Alphanumeric_Max3_-49", 3);
const ALPHANUMERIC_MAX4_5: SimpleType = alnum_max("Alphanumeric_Max4_-5", 4);
const ALPHANUMERIC_MAX6: SimpleType = alnum_max("Alphanumeric_Max6", 6);
const ALPHANUMERIC_MAX6_21: SimpleType = alnum_max("Alphanumeric_Max6_-21", 6);
const ALPHANUMERIC_MAX8: SimpleType = alnum_max("Alphanumeric_Max8", 8);
const ALPHANUMERIC_MAX9_3: SimpleType = alnum_max("Alphanumeric_Max9_-3", 9);
const ALPHANUMERIC_MAX14: SimpleType = alnum_max("Alphanumeric_Max14", 14);
const ALPHANUMERIC_MAX17: SimpleType = alnum_max("Alphanumeric_Max17", 17);
const ALPHANUMERIC_MAX21: SimpleType = alnum_max("Alphanumeric_Max21", 21);
const ALPHANUMERIC_MAX22: SimpleType = alnum_max("Alphanumeric_Max22", 22);
const ALPHANUMERIC_MAX24: SimpleType = alnum_max("Alphanumeric_Max24", 24);
const ALPHANUMERIC_MAX35: SimpleType = alnum_max("Alphanumeric_Max35", 35);
const ALPHANUMERIC_MAX70: SimpleType = alnum_max("Alphanumeric_Max70", 70);
const ALPHANUMERIC_MAX140: SimpleType = alnum_max("Alphanumeric_Max140", 140);
const ALPHANUMERIC_MAX210: SimpleType = alnum_max("Alphanumeric_Max210", 210);
const ALPHANUMERIC_MAX280: SimpleType = alnum_max("Alphanumeric_Max280", 280);
const ALPHANUMERIC_MAX350: SimpleType = alnum_max("Alphanumeric_Max350", 350);

const DECIMAL_MAX16: SimpleType = SimpleType {
    name: "Decimal_Max16",
    length: Length::AtMost(16),
    pattern: Pattern::Decimal,
};

const NUMERIC_1: SimpleType = numeric("Numeric_1", 1);
const NUMERIC_1_8: SimpleType = numeric("Numeric_1_-8", 1);
const NUMERIC_1_46: SimpleType = numeric("Numeric_1_-46", 1);
const NUMERIC_1_50: SimpleType = numeric("Numeric_1_-50", 1);
const NUMERIC_2: SimpleType = numeric("Numeric_2", 2);
const NUMERIC_4: SimpleType = SimpleType {
    name: "Numeric_4",
    length: Length::Exactly(4),
    pattern: Pattern::Time,
};
const NUMERIC_8: SimpleType = SimpleType {
    name: "Numeric_8",
    length: Length::Exactly(8),
    pattern: Pattern::Date,
};
const NUMERIC_8_22: SimpleType = numeric("Numeric_8_-22", 8);
const NUMERIC_MAX2: SimpleType = SimpleType {
    name: "Numeric_Max2",
    length: Length::AtMost(2),
    pattern: Pattern::Digits { min: 1, max: 2 },
};
const NUMERIC_MAX3: SimpleType = SimpleType {
    name: "Numeric_Max3",
    length: Length::AtMost(3),
    pattern: Pattern::Digits { min: 1, max: 3 },
};
const NUMERIC_MIN6_MAX8: SimpleType = SimpleType {
    name: "Numeric_Min6Max8",
    length: Length::AtMost(8),
    pattern: Pattern::Digits { min: 6, max: 8 },
};

// ---------------------------------------------------------------------------------------
// Helpers that keep the tables one line per element.

const fn decl(name: &'static str, min: u16, max: u16, content: Content) -> ElementDecl {
    ElementDecl {
        name,
        min_occurs: min,
        max_occurs: max,
        content,
    }
}
/// A required simple element (1..1).
const fn req(name: &'static str, t: &'static SimpleType) -> ElementDecl {
    decl(name, 1, 1, Content::Simple(t))
}
/// An optional simple element (0..1).
const fn opt(name: &'static str, t: &'static SimpleType) -> ElementDecl {
    decl(name, 0, 1, Content::Simple(t))
}
/// A complex element.
const fn group(
    name: &'static str,
    min: u16,
    max: u16,
    children: &'static [ElementDecl],
) -> ElementDecl {
    decl(name, min, max, Content::Complex(children))
}

// ---------------------------------------------------------------------------------------
// CD034A (IE034, the balance request).

/// The CD034A root element (IE034, the guarantee balance query).
pub static CD034A: ElementDecl = group("CD034A", 1, 1, CD034A_CHILDREN);

const CD034A_CHILDREN: &[ElementDecl] = &[
    req("SynIdeMES1", &ALPHA_4),
    req("SynVerNumMES2", &NUMERIC_1_8),
    req("MesSenMES3", &ALPHANUMERIC_MAX35),
    opt("SenIdeCodQuaMES4", &ALPHANUMERIC_MAX4_5),
    req("MesRecMES6", &ALPHANUMERIC_MAX35),
    opt("RecIdeCodQuaMES7", &ALPHANUMERIC_MAX4_5),
    req("DatOfPreMES9", &NUMERIC_MIN6_MAX8),
    req("TimOfPreMES10", &NUMERIC_4),
    req("IntConRefMES11", &ALPHANUMERIC_MAX14),
    opt("RecRefMES12", &ALPHANUMERIC_MAX14),
    opt("RecRefQuaMES13", &ALPHANUMERIC_2_6),
    opt("AppRefMES14", &ALPHANUMERIC_MAX14),
    opt("PriMES15", &ALPHA_1),
    opt("AckReqMES16", &NUMERIC_1),
    opt("ComAgrIdMES17", &ALPHANUMERIC_MAX35),
    opt("TesIndMES18", &NUMERIC_1),
    req("MesIdeMES19", &ALPHANUMERIC_MAX14),
    req("MesTypMES20", &ALPHANUMERIC_MAX6),
    opt("ComAccRefMES21", &ALPHANUMERIC_MAX35),
    group("TRAPRIRC1", 0, 1, TRAPRIRC1),
    group("COUGRT", 0, 1, &[req("CouCodGRT764", &ALPHA_2_1)]),
    group("CUSOFFREQ", 0, 1, CUSOFFREQ),
    group("AUTFORGUASIM", 0, 1, AUTFORGUASIM),
    group("CUSOFFRECRCV", 0, 1, CUSOFFRECRCV),
    group("GUAREF2", 1, 99, CD034A_GUAREF2),
];

const TRAPRIRC1: &[ElementDecl] = &[req("TINRC159", &ALPHANUMERIC_MAX17)];
const CUSOFFREQ: &[ElementDecl] = &[req("RefNumEPR1", &ALPHANUMERIC_8)];
const AUTFORGUASIM: &[ElementDecl] = &[req("RefNumSIM1", &ALPHANUMERIC_8)];
const CUSOFFRECRCV: &[ElementDecl] = &[req("RefNumRCV1", &ALPHANUMERIC_8)];

const CD034A_GUAREF2: &[ElementDecl] = &[
    req("GuaRefNumGRNREF21", &ALPHANUMERIC_MAX24),
    group(
        "GUAQUE",
        1,
        1,
        &[
            req("QueIdeQUE1", &NUMERIC_1_46),
            opt("PerFroQUE2", &NUMERIC_8),
            opt("PerToDatQUE3", &NUMERIC_8),
        ],
    ),
    group("TRAPRIOTG", 0, 1, &[req("TINOTG59", &ALPHANUMERIC_MAX17)]),
    group(
        "ACCDOC728",
        0,
        1,
        &[req("AccCodCOD729", &ALPHANUMERIC_4_25)],
    ),
];

// ---------------------------------------------------------------------------------------
// CD037A (IE037, the balance response).

/// The CD037A root element (IE037, the balance response).
pub static CD037A: ElementDecl = group("CD037A", 1, 1, CD037A_CHILDREN);

const CD037A_CHILDREN: &[ElementDecl] = &[
    req("SynIdeMES1", &ALPHA_4),
    req("SynVerNumMES2", &NUMERIC_1_8),
    req("MesSenMES3", &ALPHANUMERIC_MAX35),
    opt("SenIdeCodQuaMES4", &ALPHANUMERIC_MAX4_5),
    req("MesRecMES6", &ALPHANUMERIC_MAX35),
    opt("RecIdeCodQuaMES7", &ALPHANUMERIC_MAX4_5),
    req("DatOfPreMES9", &NUMERIC_MIN6_MAX8),
    req("TimOfPreMES10", &NUMERIC_4),
    req("IntConRefMES11", &ALPHANUMERIC_MAX14),
    opt("RecRefMES12", &ALPHANUMERIC_MAX14),
    opt("RecRefQuaMES13", &ALPHANUMERIC_2_6),
    opt("AppRefMES14", &ALPHANUMERIC_MAX14),
    opt("PriMES15", &ALPHA_1),
    opt("AckReqMES16", &NUMERIC_1),
    opt("ComAgrIdMES17", &ALPHANUMERIC_MAX35),
    opt("TesIndMES18", &NUMERIC_1),
    req("MesIdeMES19", &ALPHANUMERIC_MAX14),
    req("MesTypMES20", &ALPHANUMERIC_MAX6),
    opt("ComAccRefMES21", &ALPHANUMERIC_MAX35),
    group("TRAPRIRC1", 0, 1, TRAPRIRC1),
    group("CUSTOFFGUARNT", 1, 1, &[req("RefNumRNT1", &ALPHANUMERIC_8)]),
    group("CUSOFFREQ", 0, 1, CUSOFFREQ),
    group("AUTFORGUASIM", 0, 1, AUTFORGUASIM),
    group("CUSOFFRECRCV", 0, 1, CUSOFFRECRCV),
    group("GUAREF2", 1, 99, CD037A_GUAREF2),
];

const CD037A_GUAREF2: &[ElementDecl] = &[
    req("GuaRefNumGRNREF21", &ALPHANUMERIC_MAX24),
    req("AccDatREF24", &NUMERIC_8),
    req("GuaTypREF22", &ALPHANUMERIC_1),
    req("GuaMonCodREF23", &NUMERIC_1_50),
    group(
        "GUAQUE",
        1,
        1,
        &[
            req("QueIdeQUE1", &NUMERIC_1_46),
            opt("PerFroQUE2", &NUMERIC_8),
            opt("PerToDatQUE3", &NUMERIC_8_22),
        ],
    ),
    group("TRAPRIOTG", 0, 1, CD037A_TRAPRIOTG),
    group("USAUSA", 0, 9999, USAUSA),
    group("EXPEXP", 0, 1, EXPEXP),
    group("GUARNR", 0, 1, GUARNR),
    group("COMGUACMP", 0, 1, COMGUACMP),
    group("INDGUABYGNR", 0, 1, INDGUABYGNR),
    group("INDGUAVOU", 0, 1, INDGUAVOU),
];

const CD037A_TRAPRIOTG: &[ElementDecl] = &[
    req("NamOTG7", &ALPHANUMERIC_MAX35),
    req("StrAndNumOTG22", &ALPHANUMERIC_MAX35),
    req("PosCodOTG23", &ALPHANUMERIC_MAX9_3),
    req("CitOTG24", &ALPHANUMERIC_MAX35),
    req("CouOTG25", &ALPHA_2_1),
    opt("NADLNGOTG", &ALPHA_2),
    req("TINOTG59", &ALPHANUMERIC_MAX17),
];

const USAUSA: &[ElementDecl] = &[
    req("DocNumUSA1", &ALPHANUMERIC_MAX21),
    req("CovAmoUSA2", &DECIMAL_MAX16),
    req("CurUSA3", &ALPHANUMERIC_MAX3_49),
    req("LocDatUSA4", &NUMERIC_8),
    opt("ArrDatUSA5", &NUMERIC_8),
    opt("DatOfRelUSA6", &NUMERIC_8),
];

const EXPEXP: &[ElementDecl] = &[
    req("ExpEXP1", &DECIMAL_MAX16),
    req("ExpCouEXP2", &ALPHANUMERIC_MAX8),
    opt("BalEXP3", &DECIMAL_MAX16),
    req("CurEXP4", &ALPHANUMERIC_3_48),
];

const GUARNR: &[ElementDecl] = &[
    req("NamRNR735", &ALPHANUMERIC_MAX35),
    req("StrAndNumRNR736", &ALPHANUMERIC_MAX35),
    req("PosCodRNR737", &ALPHANUMERIC_MAX9_3),
    req("CitRNR738", &ALPHANUMERIC_MAX35),
    req("CouRNR745", &ALPHA_2_33),
    opt("NADLNGGGR", &ALPHA_2),
    opt("ConPerRNR739", &ALPHANUMERIC_MAX35),
    opt("PhoNumRNR740", &ALPHANUMERIC_MAX35),
    opt("FaxNumRNR741", &ALPHANUMERIC_MAX35),
    opt("TelNumRNR742", &ALPHANUMERIC_MAX35),
    opt("MaiAddRNR743", &ALPHANUMERIC_MAX70),
    opt("LanCodRNR744", &ALPHA_2),
    opt("TINRNR746", &ALPHANUMERIC_MAX17),
    group("GUAOTHADD", 0, 99, GUAOTHADD),
];

const GUAOTHADD: &[ElementDecl] = &[
    req("AddTypADD11", &ALPHA_1_47),
    req("NamADD12", &ALPHANUMERIC_MAX35),
    req("StrAndNumADD13", &ALPHANUMERIC_MAX35),
    req("PosCodADD22", &ALPHANUMERIC_MAX9_3),
    req("CitADD15", &ALPHANUMERIC_MAX35),
    req("CouADD14", &ALPHA_2_33),
    opt("NADLNGGOA", &ALPHA_2),
    opt("ConPerADD16", &ALPHANUMERIC_MAX35),
    opt("PhoNumADD17", &ALPHANUMERIC_MAX35),
    opt("FaxNumADD18", &ALPHANUMERIC_MAX35),
    opt("TelNumADD19", &ALPHANUMERIC_MAX35),
    opt("MaiAddADD20", &ALPHANUMERIC_MAX70),
    opt("LanCodADD21", &ALPHA_2),
];

const COMGUACMP: &[ElementDecl] = &[
    opt("RefAmoCMP11", &DECIMAL_MAX16),
    opt("PerOfRefAmoCMP12", &NUMERIC_MAX3),
    opt("GuaAmoCMP13", &DECIMAL_MAX16),
    req("CurCMP14", &ALPHANUMERIC_3_48),
    req("NumOfCerCMP15", &ALPHANUMERIC_MAX8),
    req("ValDatCMP16", &NUMERIC_8),
    opt("InvDatCMP17", &NUMERIC_8),
    opt("InvReaCodCMP18", &ALPHANUMERIC_3),
    opt("InvReaCMP19", &ALPHANUMERIC_MAX350),
    opt("InvReaCMP19LNG", &ALPHA_2),
    opt("LiaLibDatCMP21", &NUMERIC_8),
    req("LimValCMP22", &NUMERIC_1),
    req("ResUseCMP23", &NUMERIC_1),
    group(
        "GUACOMGUAGDS2",
        0,
        99,
        &[
            opt("ComCodGDS210", &ALPHANUMERIC_MAX22),
            opt("SenGooCodGDS213", &NUMERIC_MAX2),
            req("GooDesGDS211", &ALPHANUMERIC_MAX280),
            opt("GooDesGDS211LNG", &ALPHA_2),
        ],
    ),
    group("VALLIMECCMG", 0, 1, &[req("NotValForECCMG2", &NUMERIC_1)]),
    group(
        "VALLIMNONECVLD",
        0,
        99,
        &[req("NotValForOthConPVLD2", &ALPHA_2_26)],
    ),
];

const INDGUABYGNR: &[ElementDecl] = &[
    req("GuaAmoGNR11", &DECIMAL_MAX16),
    req("CurGNR12", &ALPHANUMERIC_3_48),
    group(
        "GUAGRTGDS3",
        1,
        99,
        &[
            opt("ComCodGDS311", &ALPHANUMERIC_MAX22),
            opt("SenGooGDS314", &NUMERIC_MAX2),
            req("GooDesGDS312", &ALPHANUMERIC_MAX280),
            opt("GooDesGDS312LNG", &ALPHA_2),
        ],
    ),
    group(
        "CUSTOFFDEPEPT2",
        1,
        1,
        &[req("RefNumEPT22", &ALPHANUMERIC_8)],
    ),
    group(
        "CUSTOFFDESEST2",
        1,
        1,
        &[req("RefNumEST22", &ALPHANUMERIC_8)],
    ),
    group("VALLIMECVLD", 0, 1, &[req("NotValForECVLD1", &NUMERIC_1)]),
    group(
        "VALLIMNONECMIT",
        0,
        99,
        &[req("NoValForOthConPMIT2", &ALPHA_2_26)],
    ),
];

const INDGUAVOU: &[ElementDecl] = &[
    req("DatOfIssVOU745", &NUMERIC_8),
    req("ExpDatVOU746", &NUMERIC_8),
    req("HarCopGivToPriVOU747", &NUMERIC_1),
    req("LimValVOU748", &NUMERIC_1),
    req("TIRCarVOU749", &NUMERIC_1),
    opt("VouAmoVOU750", &DECIMAL_MAX16),
    opt("CurVOU751", &ALPHANUMERIC_3_48),
];

// ---------------------------------------------------------------------------------------
// CD906A (IE906, functional NACK).

/// The CD906A root element (IE906, the functional NACK).
pub static CD906A: ElementDecl = group("CD906A", 1, 1, CD906A_CHILDREN);

const CD906A_CHILDREN: &[ElementDecl] = &[
    req("SynIdeMES1", &ALPHA_4),
    req("SynVerNumMES2", &NUMERIC_1_8),
    req("MesSenMES3", &ALPHANUMERIC_MAX35),
    opt("SenIdeCodQuaMES4", &ALPHANUMERIC_MAX4_5),
    req("MesRecMES6", &ALPHANUMERIC_MAX35),
    opt("RecIdeCodQuaMES7", &ALPHANUMERIC_MAX4_5),
    req("DatOfPreMES9", &NUMERIC_MIN6_MAX8),
    req("TimOfPreMES10", &NUMERIC_4),
    req("IntConRefMES11", &ALPHANUMERIC_MAX14),
    opt("RecRefMES12", &ALPHANUMERIC_MAX14),
    opt("RecRefQuaMES13", &ALPHANUMERIC_2_6),
    opt("AppRefMES14", &ALPHANUMERIC_MAX14),
    opt("PriMES15", &ALPHA_1),
    opt("AckReqMES16", &NUMERIC_1),
    opt("ComAgrIdMES17", &ALPHANUMERIC_MAX35),
    opt("TesIndMES18", &NUMERIC_1),
    req("MesIdeMES19", &ALPHANUMERIC_MAX14),
    req("MesTypMES20", &ALPHANUMERIC_MAX6),
    opt("ComAccRefMES21", &ALPHANUMERIC_MAX35),
    req("OriMesIdeMES22", &ALPHANUMERIC_MAX14),
    group("HEAHEA", 0, 1, &[req("DocNumHEA5", &ALPHANUMERIC_MAX21)]),
    group(
        "FUNERRER1",
        1,
        999,
        &[
            req("ErrTypER11", &NUMERIC_2),
            req("ErrPoiER12", &ALPHANUMERIC_MAX210),
            opt("ErrReaER13", &ALPHANUMERIC_MAX6_21),
            opt("OriAttValER14", &ALPHANUMERIC_MAX140),
        ],
    ),
];

// ---------------------------------------------------------------------------------------
// CC917A (IE917, XML NACK).

/// The CC917A root element (IE917, the XML NACK).
pub static CC917A: ElementDecl = group("CC917A", 1, 1, CC917A_CHILDREN);

const CC917A_CHILDREN: &[ElementDecl] = &[
    opt("SynIdeMES1", &ALPHA_4),
    opt("SynVerNumMES2", &NUMERIC_1_8),
    req("MesSenMES3", &ALPHANUMERIC_MAX35),
    opt("SenIdeCodQuaMES4", &ALPHANUMERIC_MAX4_5),
    req("MesRecMES6", &ALPHANUMERIC_MAX35),
    opt("RecIdeCodQuaMES7", &ALPHANUMERIC_MAX4_5),
    req("DatOfPreMES9", &NUMERIC_MIN6_MAX8),
    req("TimOfPreMES10", &NUMERIC_4),
    req("IntConRefMES11", &ALPHANUMERIC_MAX14),
    opt("RecRefMES12", &ALPHANUMERIC_MAX14),
    opt("RecRefQuaMES13", &ALPHANUMERIC_2_6),
    opt("AppRefMES14", &ALPHANUMERIC_MAX14),
    opt("PriMES15", &ALPHA_1),
    opt("AckReqMES16", &NUMERIC_1),
    opt("ComAgrIdMES17", &ALPHANUMERIC_MAX35),
    opt("TesIndMES18", &NUMERIC_1),
    req("MesIdeMES19", &ALPHANUMERIC_MAX14),
    req("MesTypMES20", &ALPHANUMERIC_MAX6),
    opt("ComAccRefMES21", &ALPHANUMERIC_MAX35),
    group(
        "HEAHEA",
        1,
        1,
        &[
            req("OriMesIdeMES22", &ALPHANUMERIC_MAX14),
            opt("DocNumHEA5", &ALPHANUMERIC_MAX21),
            opt("RefNumHEA4", &ALPHANUMERIC_MAX22),
        ],
    ),
    group(
        "FUNERRER1",
        1,
        1,
        &[
            req("ErrTypER11", &NUMERIC_2),
            req("ErrPoiER12", &ALPHANUMERIC_MAX210),
            opt("ErrReaER13", &ALPHANUMERIC_MAX140),
            opt("OriAttValER14", &ALPHANUMERIC_MAX140),
        ],
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_chars_counts_code_points() {
        let p = Pattern::AnyChars { min: 1, max: 4 };
        assert!(!p.matches(""));
        assert!(p.matches("a"));
        assert!(p.matches("A\u{1F600}C1"));
        assert!(p.matches("a b "));
        assert!(!p.matches("abcde"));
        assert!(Pattern::AnyChars { min: 4, max: 4 }.matches("AC01"));
        assert!(!Pattern::AnyChars { min: 4, max: 4 }.matches("AC0"));
    }

    #[test]
    fn letters_are_ascii_only() {
        let p = Pattern::Letters(2);
        assert!(p.matches("GB"));
        assert!(p.matches("gb"));
        assert!(!p.matches("G1"));
        assert!(!p.matches("G"));
        assert!(!p.matches("GBR"));
        assert!(!p.matches("Gé"));
        assert!(!p.matches("G "));
    }

    #[test]
    fn no_digits_accepts_anything_but_ascii_digits() {
        let p = Pattern::NoDigits;
        assert!(p.matches(""));
        assert!(p.matches("|"));
        assert!(p.matches("\u{a0}"));
        assert!(p.matches("\u{1F600}"));
        assert!(!p.matches("5"));
        assert!(!p.matches("a0"));
        // Arabic-Indic digit: not in [0-9].
        assert!(p.matches("\u{663}"));
    }

    #[test]
    fn digits_bounds() {
        let p = Pattern::Digits { min: 6, max: 8 };
        assert!(!p.matches("12345"));
        assert!(p.matches("123456"));
        assert!(p.matches("12345678"));
        assert!(!p.matches("123456789"));
        assert!(!p.matches("12345a"));
        assert!(!p.matches("||||||"));
        assert!(Pattern::Digits { min: 1, max: 1 }.matches("0"));
        assert!(!Pattern::Digits { min: 1, max: 1 }.matches(""));
    }

    #[test]
    fn time_boundaries() {
        let p = Pattern::Time;
        for ok in ["0000", "0959", "1959", "2000", "2359", "1230"] {
            assert!(p.matches(ok), "{ok}");
        }
        for bad in [
            "2400", "1960", "0060", "3000", "235", "23590", "2a00", "-100", "|000",
        ] {
            assert!(!p.matches(bad), "{bad}");
        }
    }

    #[test]
    fn date_boundaries_including_literal_pipe() {
        let p = Pattern::Date;
        for ok in [
            "20210914", "10000101", "29991231", "20210231", "20211230", "202101|9", "2021013|",
        ] {
            assert!(p.matches(ok), "{ok}");
        }
        for bad in [
            "20210001",
            "20211301",
            "20210100",
            "20210132",
            "20210140",
            "30210101",
            "00210101",
            "2021|011",
            "2021011",
            "202101011",
            "2021-1-1",
            "2021013a",
        ] {
            assert!(!p.matches(bad), "{bad}");
        }
    }

    #[test]
    fn decimal_boundaries() {
        let p = Pattern::Decimal;
        for ok in [
            "0",
            "0.5",
            "0.55",
            "0.0",
            "1.0",
            "10",
            "9.99",
            "2751.95",
            "123456789012345",
            "1234567890123.45",
            "12345678901234.5",
        ] {
            assert!(p.matches(ok), "{ok}");
        }
        for bad in [
            "",
            "0.555",
            "00",
            "01",
            "1.",
            ".5",
            "0.",
            "1.234",
            "1234567890123456",
            "-1",
            "1,5",
            "+1",
            "1e3",
            "1 2",
            "1.2.3",
            "0.a",
        ] {
            assert!(!p.matches(bad), "{bad}");
        }
    }

    #[test]
    fn patterns_print_as_in_the_xsd() {
        assert_eq!(Pattern::AnyChars { min: 1, max: 35 }.to_string(), ".{1,35}");
        assert_eq!(Pattern::AnyChars { min: 4, max: 4 }.to_string(), ".{4}");
        assert_eq!(Pattern::Letters(4).to_string(), "[a-zA-Z]{4}");
        assert_eq!(Pattern::Digits { min: 6, max: 8 }.to_string(), "[0-9]{6,8}");
        assert_eq!(Pattern::Digits { min: 8, max: 8 }.to_string(), "[0-9]{8}");
        assert!(Pattern::Date.to_string().contains("[1|2][0-9]"));
    }

    #[test]
    fn sequences_have_distinct_names_and_sane_bounds() {
        fn walk(decl: &ElementDecl) {
            assert!(
                decl.min_occurs <= decl.max_occurs && decl.max_occurs >= 1,
                "{}",
                decl.name
            );
            if let Content::Complex(children) = decl.content {
                assert!(!children.is_empty(), "{}", decl.name);
                for (i, child) in children.iter().enumerate() {
                    assert!(
                        children.iter().skip(i + 1).all(|c| c.name != child.name),
                        "{} repeats {}",
                        decl.name,
                        child.name
                    );
                    walk(child);
                }
            }
        }
        for kind in [
            MessageKind::Ie034,
            MessageKind::Ie037,
            MessageKind::Ie906,
            MessageKind::Ie917,
        ] {
            let root = message(kind);
            assert_eq!(root.name, kind.root());
            walk(root);
        }
    }
}
