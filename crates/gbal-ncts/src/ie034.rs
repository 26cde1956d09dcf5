//! IE034 (CD034A), the query on guarantees gbal sends to GMS.

use std::fmt;

use gbal_core::{AccessCode, Grn, Tin};

use crate::document::{Document, Node};
use crate::error::SchemaError;
use crate::header::{self, Header, close, element, open};
use crate::kind::MessageKind;
use crate::validate::{Limits, validate};

/// MesTypMES20 of an IE034.
pub const MESSAGE_TYPE: &str = "GB034A";
/// QueIdeQUE1 of a balance query.
pub const BALANCE_QUERY: &str = "2";

/// Everything an IE034 says.
#[derive(Debug, Clone)]
pub struct Ie034 {
    /// The header; `sender` is gbal's recipient id `<prefix><24 hex>`, `recipient` the NCTS
    /// office (`NTA.GB`).
    pub header: Header,
    /// The guarantee asked about.
    pub grn: Grn,
    /// The principal's TIN (API v1), written in TRAPRIRC1 and TRAPRIOTG.
    pub tin: Option<Tin>,
    /// The guarantee's access code.
    pub access_code: AccessCode,
}

impl Ie034 {
    /// The CD034A element, without whitespace or XML declaration.
    pub fn build(&self) -> String {
        let mut out = String::with_capacity(640);
        open(&mut out, "CD034A");
        self.header.write(&mut out, MESSAGE_TYPE);
        if let Some(tin) = &self.tin {
            open(&mut out, "TRAPRIRC1");
            element(&mut out, "TINRC159", tin.as_str());
            close(&mut out, "TRAPRIRC1");
        }
        open(&mut out, "GUAREF2");
        element(&mut out, "GuaRefNumGRNREF21", self.grn.as_str());
        open(&mut out, "GUAQUE");
        element(&mut out, "QueIdeQUE1", BALANCE_QUERY);
        close(&mut out, "GUAQUE");
        if let Some(tin) = &self.tin {
            open(&mut out, "TRAPRIOTG");
            element(&mut out, "TINOTG59", tin.as_str());
            close(&mut out, "TRAPRIOTG");
        }
        open(&mut out, "ACCDOC728");
        element(&mut out, "AccCodCOD729", self.access_code.expose());
        close(&mut out, "ACCDOC728");
        close(&mut out, "GUAREF2");
        close(&mut out, "CD034A");
        out
    }

    /// Builds the message and checks it against every CD034A rule before it may be sent.
    pub fn build_checked(&self) -> Result<String, Vec<SchemaError>> {
        let xml = self.build();
        validate(xml.as_bytes(), MessageKind::Ie034, &Limits::default())?;
        Ok(xml)
    }

    /// The message as it travels: inside `<transitRequest>`, checked.
    pub fn build_wire(&self) -> Result<String, Vec<SchemaError>> {
        self.build_checked()
            .map(|xml| header::wrap_transit_request(&xml))
    }
}

/// One GUAREF2 of a received IE034.
#[derive(Clone, PartialEq, Eq)]
pub struct QueriedGuarantee {
    /// GuaRefNumGRNREF21, as written.
    pub grn: String,
    /// QueIdeQUE1.
    pub query_identifier: String,
    /// TRAPRIOTG/TINOTG59, when present.
    pub principal_tin: Option<String>,
    access_code: Option<String>,
}

impl QueriedGuarantee {
    /// ACCDOC728/AccCodCOD729, when present. Secret: never log it.
    pub fn access_code(&self) -> Option<&str> {
        self.access_code.as_deref()
    }
}

impl fmt::Debug for QueriedGuarantee {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueriedGuarantee")
            .field("grn", &self.grn)
            .field("query_identifier", &self.query_identifier)
            .field("principal_tin", &self.principal_tin)
            .field("access_code", &self.access_code.as_ref().map(|_| "****"))
            .finish()
    }
}

/// A received IE034, as the GMS simulator reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedIe034 {
    /// MesSenMES3: where the reply goes.
    pub sender: String,
    /// MesRecMES6.
    pub recipient: String,
    /// MesIdeMES19: the reference replies name in OriMesIdeMES22.
    pub message_ref: String,
    /// TRAPRIRC1/TINRC159, when present.
    pub requester_tin: Option<String>,
    /// Every GUAREF2, in order (at least one).
    pub guarantees: Vec<QueriedGuarantee>,
}

/// Validates and reads an IE034 (optionally inside `<transitRequest>`).
pub fn parse_ie034(xml: &[u8], limits: &Limits) -> Result<ReceivedIe034, Vec<SchemaError>> {
    let doc = validate(xml, MessageKind::Ie034, limits)?;
    Ok(read_ie034(&doc))
}

pub(crate) fn read_ie034(doc: &Document) -> ReceivedIe034 {
    let root = doc.root();
    let text = |n: Node<'_>, name: &str| n.child_text(name).unwrap_or_default().to_owned();
    let guarantees = root
        .children()
        .filter(|c| c.name() == "GUAREF2")
        .map(|g| QueriedGuarantee {
            grn: text(g, "GuaRefNumGRNREF21"),
            query_identifier: g
                .child("GUAQUE")
                .map(|q| text(q, "QueIdeQUE1"))
                .unwrap_or_default(),
            principal_tin: g.child("TRAPRIOTG").map(|t| text(t, "TINOTG59")),
            access_code: g.child("ACCDOC728").map(|a| text(a, "AccCodCOD729")),
        })
        .collect();
    ReceivedIe034 {
        sender: text(root, "MesSenMES3"),
        recipient: text(root, "MesRecMES6"),
        message_ref: text(root, "MesIdeMES19"),
        requester_tin: root.child("TRAPRIRC1").map(|t| text(t, "TINRC159")),
        guarantees,
    }
}
