//! The replies GMS sends: IE037 (balance), IE906 (functional errors) and IE917 (XML errors).
//! Parsers apply every schema rule before they read a value; builders are for the GMS
//! simulator.

use gbal_core::{Amount, Balance, Currency, ErrorType, GuaranteeType, NctsError, Outcome};

use crate::document::{Document, Node};
use crate::error::SchemaError;
use crate::header::{self, Header, close, element, open};
use crate::kind::MessageKind;
use crate::validate::{Limits, validate};

/// A reply, validated and read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Which message it was.
    pub kind: MessageKind,
    /// MesRecMES6: the recipient id it is addressed to.
    pub recipient: String,
    /// OriMesIdeMES22 (IE906, IE917): the MesIdeMES19 of the IE034 it answers.
    pub original_ref: Option<String>,
    /// GuaRefNumGRNREF21 of the GUAREF2 the balance came from (IE037).
    pub grn: Option<String>,
    /// What it says.
    pub outcome: Outcome,
}

/// Validates a reply of the kind `kind` (optionally inside `<transitRequest>`) and reads it.
///
/// A schema-valid IE037 without a balance, or with a currency that is not three upper-case
/// letters, is refused with an error at the element that lacks it.
pub fn parse_reply(
    xml: &[u8],
    kind: MessageKind,
    limits: &Limits,
) -> Result<Reply, Vec<SchemaError>> {
    if kind == MessageKind::Ie034 {
        return Err(vec![SchemaError {
            line: 1,
            column: 1,
            message: "IE034 is a query, not a reply".to_owned(),
        }]);
    }
    let doc = validate(xml, kind, limits)?;
    read_reply(&doc).map_err(|e| vec![e])
}

pub(crate) fn read_reply(doc: &Document) -> Result<Reply, SchemaError> {
    let root = doc.root();
    let recipient = root.child_text("MesRecMES6").unwrap_or_default().to_owned();
    match doc.kind() {
        MessageKind::Ie037 => {
            let (grn, balance) = read_balance(root)?;
            Ok(Reply {
                kind: MessageKind::Ie037,
                recipient,
                original_ref: None,
                grn: Some(grn),
                outcome: Outcome::Success(balance),
            })
        }
        MessageKind::Ie906 => Ok(Reply {
            kind: MessageKind::Ie906,
            recipient,
            original_ref: root.child_text("OriMesIdeMES22").map(str::to_owned),
            grn: None,
            outcome: Outcome::FunctionalError {
                errors: read_errors(root)?,
            },
        }),
        MessageKind::Ie917 => Ok(Reply {
            kind: MessageKind::Ie917,
            recipient,
            original_ref: root
                .child("HEAHEA")
                .and_then(|h| h.child_text("OriMesIdeMES22"))
                .map(str::to_owned),
            grn: None,
            outcome: Outcome::XmlError {
                errors: read_errors(root)?,
            },
        }),
        MessageKind::Ie034 => Err(at(root, "IE034 is a query, not a reply".to_owned())),
    }
}

fn at(node: Node<'_>, message: String) -> SchemaError {
    SchemaError {
        line: node.line(),
        column: node.column(),
        message,
    }
}

/// The balance and currency of the first GUAREF2 whose EXPEXP has a BalEXP3.
fn read_balance(root: Node<'_>) -> Result<(String, Balance), SchemaError> {
    let mut first_guarantee = None;
    for guarantee in root.children().filter(|c| c.name() == "GUAREF2") {
        first_guarantee.get_or_insert(guarantee);
        let Some(exposure) = guarantee.child("EXPEXP") else {
            continue;
        };
        let Some(balance) = exposure.child("BalEXP3") else {
            continue;
        };
        let amount: Amount = balance.text().parse().map_err(|_| {
            at(
                balance,
                format!("BalEXP3: '{}' is not a decimal amount", balance.text()),
            )
        })?;
        let currency_node = exposure.child("CurEXP4");
        let currency_text = currency_node.map(|c| c.text()).unwrap_or_default();
        let currency: Currency = currency_text.parse().map_err(|_| {
            at(
                currency_node.unwrap_or(exposure),
                format!(
                    "CurEXP4: '{currency_text}' is not a currency code of three upper-case letters"
                ),
            )
        })?;
        let grn = guarantee
            .child_text("GuaRefNumGRNREF21")
            .unwrap_or_default()
            .to_owned();
        return Ok((grn, Balance { amount, currency }));
    }
    Err(at(
        first_guarantee.unwrap_or(root),
        "Unable to parse required values from IE037 message: no GUAREF2/EXPEXP has a BalEXP3 balance".to_owned(),
    ))
}

/// Every FUNERRER1 child of the root, in order.
fn read_errors(root: Node<'_>) -> Result<Vec<NctsError>, SchemaError> {
    let mut errors = Vec::new();
    for node in root.children().filter(|c| c.name() == "FUNERRER1") {
        let type_text = node.child_text("ErrTypER11").unwrap_or_default();
        let error_type = type_text
            .parse::<u8>()
            .ok()
            .and_then(|t| ErrorType::new(t).ok())
            .ok_or_else(|| {
                at(
                    node,
                    format!("ErrTypER11: '{type_text}' is not an error type"),
                )
            })?;
        errors.push(NctsError {
            error_type,
            error_pointer: node.child_text("ErrPoiER12").unwrap_or_default().to_owned(),
            error_reason: node.child_text("ErrReaER13").map(str::to_owned),
        });
    }
    if errors.is_empty() {
        return Err(at(root, "no FUNERRER1 error in the message".to_owned()));
    }
    Ok(errors)
}

/// What the GMS simulator puts in an IE037.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ie037 {
    /// The header (`sender` is GMS's office, `recipient` gbal's recipient id).
    pub header: Header,
    /// The requester's TIN, when the query had one.
    pub requester_tin: Option<String>,
    /// CUSTOFFGUARNT/RefNumRNT1: the guarantee office, exactly 8 characters.
    pub guarantee_office: String,
    /// The guarantee.
    pub grn: String,
    /// AccDatREF24: the guarantee's acceptance date, `yyyyMMdd`.
    pub accepted_on: String,
    /// GuaTypREF22.
    pub guarantee_type: GuaranteeType,
    /// ExpEXP1: the exposure.
    pub exposure: Amount,
    /// BalEXP3; `None` writes an EXPEXP without a balance.
    pub balance: Option<Amount>,
    /// CurEXP4.
    pub currency: Currency,
}

/// An amount that cannot be written as Decimal_Max16 (negative, more than 2 decimals, too long).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} cannot be written in an NCTS decimal field (non-negative, at most 2 decimals, 16 characters)"
)]
pub struct UnwritableAmount(pub Amount);

fn decimal16(amount: Amount) -> Result<String, UnwritableAmount> {
    let s = amount.to_string();
    if amount.is_negative() || amount.scale() > 2 || s.len() > 16 {
        return Err(UnwritableAmount(amount));
    }
    Ok(s)
}

impl Ie037 {
    /// The CD037A element.
    pub fn build(&self) -> Result<String, UnwritableAmount> {
        let exposure = decimal16(self.exposure)?;
        let balance = self.balance.map(decimal16).transpose()?;
        let mut out = String::with_capacity(900);
        open(&mut out, "CD037A");
        self.header.write(&mut out, "GB037A");
        if let Some(tin) = &self.requester_tin {
            open(&mut out, "TRAPRIRC1");
            element(&mut out, "TINRC159", tin);
            close(&mut out, "TRAPRIRC1");
        }
        open(&mut out, "CUSTOFFGUARNT");
        element(&mut out, "RefNumRNT1", &self.guarantee_office);
        close(&mut out, "CUSTOFFGUARNT");
        open(&mut out, "GUAREF2");
        element(&mut out, "GuaRefNumGRNREF21", &self.grn);
        element(&mut out, "AccDatREF24", &self.accepted_on);
        element(&mut out, "GuaTypREF22", &self.guarantee_type.to_string());
        element(&mut out, "GuaMonCodREF23", "1");
        open(&mut out, "GUAQUE");
        element(&mut out, "QueIdeQUE1", crate::ie034::BALANCE_QUERY);
        close(&mut out, "GUAQUE");
        open(&mut out, "EXPEXP");
        element(&mut out, "ExpEXP1", &exposure);
        element(&mut out, "ExpCouEXP2", "1");
        if let Some(balance) = &balance {
            element(&mut out, "BalEXP3", balance);
        }
        element(&mut out, "CurEXP4", self.currency.as_str());
        close(&mut out, "EXPEXP");
        close(&mut out, "GUAREF2");
        close(&mut out, "CD037A");
        Ok(out)
    }
}

/// What the GMS simulator puts in an IE906.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ie906 {
    /// The header.
    pub header: Header,
    /// OriMesIdeMES22: the MesIdeMES19 of the IE034 it answers.
    pub original_ref: String,
    /// The errors, at least one.
    pub errors: Vec<NctsError>,
}

impl Ie906 {
    /// The CD906A element.
    pub fn build(&self) -> String {
        let mut out = String::with_capacity(600 + 120 * self.errors.len());
        open(&mut out, "CD906A");
        self.header.write(&mut out, "GB906A");
        element(&mut out, "OriMesIdeMES22", &self.original_ref);
        write_errors(&mut out, &self.errors);
        close(&mut out, "CD906A");
        out
    }
}

/// What the GMS simulator puts in an IE917.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ie917 {
    /// The header.
    pub header: Header,
    /// HEAHEA/OriMesIdeMES22: the MesIdeMES19 of the IE034 it answers.
    pub original_ref: String,
    /// The one error.
    pub error: NctsError,
}

impl Ie917 {
    /// The CC917A element.
    pub fn build(&self) -> String {
        let mut out = String::with_capacity(700);
        open(&mut out, "CC917A");
        self.header.write(&mut out, "GB917A");
        open(&mut out, "HEAHEA");
        element(&mut out, "OriMesIdeMES22", &self.original_ref);
        close(&mut out, "HEAHEA");
        write_errors(&mut out, std::slice::from_ref(&self.error));
        close(&mut out, "CC917A");
        out
    }
}

fn write_errors(out: &mut String, errors: &[NctsError]) {
    for e in errors {
        open(out, "FUNERRER1");
        element(out, "ErrTypER11", &format!("{:02}", e.error_type.get()));
        element(out, "ErrPoiER12", &e.error_pointer);
        if let Some(reason) = &e.error_reason {
            element(out, "ErrReaER13", reason);
        }
        close(out, "FUNERRER1");
    }
}

/// Re-export for callers that build replies.
pub use header::wrap_transit_request;
