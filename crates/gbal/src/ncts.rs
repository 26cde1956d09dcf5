//! `gbal ncts`: print the IE034 gbal would send, or validate and read any NCTS message file.

use std::fmt::Write as _;

use gbal_core::ncts_error::{describe_functional, describe_xml};
use gbal_core::{AccessCode, BalanceRequestId, Grn, Outcome, Rejection, Tin, UniqueReference};
use gbal_ncts::{Header, Ie034, Limits, Message, inspect};
use time::OffsetDateTime;

use crate::config::Config;

/// Inputs of `gbal ncts ie034` that break a rule, each reason on its own line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// The IE034 gbal would send for this query, as it travels (inside `<transitRequest>`).
pub fn ie034(
    config: &Config,
    grn: &str,
    access_code: &str,
    tin: Option<&str>,
) -> Result<String, InvalidInput> {
    let mut problems = Vec::new();
    let grn = Grn::parse_v1(grn)
        .map_err(|e| problems.extend(e.0.iter().map(|e| e.reason)))
        .ok();
    let tin = match tin {
        Some(t) => Tin::parse(t)
            .map(Some)
            .map_err(|e| problems.extend(e.0.iter().map(|e| e.reason)))
            .ok()
            .flatten(),
        None => None,
    };
    let code = AccessCode::parse(access_code)
        .map_err(|e| problems.extend(e.0.iter().map(|e| e.reason)))
        .ok();
    let (Some(grn), Some(access_code)) = (grn, code) else {
        return Err(InvalidInput(problems.join("\n")));
    };
    if !problems.is_empty() {
        return Err(InvalidInput(problems.join("\n")));
    }
    let message = Ie034 {
        header: Header {
            sender: BalanceRequestId::new()
                .message_id()
                .recipient(&config.gms.sender_prefix),
            recipient: config.gms.recipient.clone(),
            prepared_at: OffsetDateTime::now_utc(),
            message_ref: UniqueReference::random(),
        },
        grn,
        tin,
        access_code,
    };
    message.build_wire().map_err(|errors| {
        InvalidInput(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
        )
    })
}

/// Validates and reads a message file; `Ok` is the readable description of a valid message,
/// `Err` the description of every problem.
pub fn inspect_file(bytes: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    match inspect(bytes, &Limits::default()) {
        Ok(Message::Ie034(m)) => {
            let _ = writeln!(out, "valid IE034 (CD034A): query on guarantees");
            let _ = writeln!(
                out,
                "  from {} to {}, message reference {}",
                m.sender, m.recipient, m.message_ref
            );
            if let Some(tin) = &m.requester_tin {
                let _ = writeln!(out, "  requester TIN {tin}");
            }
            for g in &m.guarantees {
                let _ = writeln!(
                    out,
                    "  GRN {} (query {}){}, access code {}",
                    g.grn,
                    g.query_identifier,
                    g.principal_tin
                        .as_ref()
                        .map(|t| format!(", principal TIN {t}"))
                        .unwrap_or_default(),
                    if g.access_code().is_some() {
                        "present (not shown)"
                    } else {
                        "absent"
                    }
                );
            }
            Ok(out)
        }
        Ok(Message::Reply(r)) => {
            let _ = write!(
                out,
                "valid {} ({}) to {}",
                r.kind.header(),
                r.kind.root(),
                r.recipient
            );
            if let Some(o) = &r.original_ref {
                let _ = write!(out, ", answering message {o}");
            }
            out.push('\n');
            match &r.outcome {
                Outcome::Success(b) => {
                    let _ = writeln!(
                        out,
                        "  balance {} {}{}",
                        b.amount,
                        b.currency,
                        r.grn
                            .as_ref()
                            .map(|g| format!(" for GRN {g}"))
                            .unwrap_or_default()
                    );
                }
                Outcome::FunctionalError { errors } => {
                    match Rejection::classify(errors) {
                        Some(r) => {
                            let _ = writeln!(out, "  refused: {} ({r:?})", r.describe());
                        }
                        None => {
                            let _ = writeln!(out, "  refused");
                        }
                    }
                    let _ = writeln!(out, "  functional errors:");
                    for e in errors {
                        let _ = writeln!(
                            out,
                            "    {} {}: {}",
                            e.error_type,
                            e.error_pointer,
                            describe_functional(e)
                        );
                    }
                }
                Outcome::XmlError { errors } => {
                    let _ = writeln!(out, "  XML errors:");
                    for e in errors {
                        let _ = writeln!(
                            out,
                            "    {} {}: {}",
                            e.error_type,
                            e.error_pointer,
                            describe_xml(e)
                        );
                    }
                }
            }
            Ok(out)
        }
        Err(errors) => {
            let _ = writeln!(
                out,
                "invalid: {} problem{}",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
            for e in errors {
                let _ = writeln!(out, "  {e}");
            }
            Err(out)
        }
    }
}
