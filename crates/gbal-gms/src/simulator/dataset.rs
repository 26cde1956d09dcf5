//! The simulator's data: guarantees (GRN, type, principal TIN, access code, balance, currency,
//! optional behaviour) and traders, read from TOML.
//!
//! ```toml
//! [[guarantees]]
//! grn = "26GB0000010000012"
//! type = "1"
//! tin = "GB954131533000"
//! access_code = "AC01"
//! balance = "50000.00"     # a string (or an integer): exact, never a float
//! currency = "GBP"         # default GBP
//! reply_delay = "2s"       # optional behaviour: ms, s, m or h
//!
//! [[traders]]              # TINs GMS knows besides the principals above
//! tin = "GB000000000026"
//! query_limit = 0          # optional: this TIN's queries per window
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use gbal_core::{AccessCode, Amount, Currency, Grn, GuaranteeType, Tin};
use serde::Deserialize;

/// How a guarantee makes GMS misbehave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// The reply comes this long after the query.
    pub reply_delay: Option<Duration>,
    /// No reply ever comes.
    pub no_reply: bool,
    /// The reply is an IE917 (XML error) instead of the answer.
    pub ie917_reply: bool,
    /// The submission itself is answered with this HTTP status, and nothing more happens.
    pub submit_status: Option<u16>,
    /// The reply is not well-formed.
    pub malformed_reply: bool,
}

/// One guarantee GMS holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarantee {
    /// Its reference.
    pub grn: Grn,
    /// GuaTypREF22.
    pub guarantee_type: GuaranteeType,
    /// The principal's TIN.
    pub principal: Tin,
    /// The access code (matched without regard to case).
    pub access_code: AccessCode,
    /// The balance (types 0, 1 and 9 always have one).
    pub balance: Option<Amount>,
    /// Its currency.
    pub currency: Currency,
    /// ExpEXP1 of the IE037.
    pub exposure: Amount,
    /// CUSTOFFGUARNT/RefNumRNT1 of the IE037: 8 characters.
    pub office: String,
    /// AccDatREF24 of the IE037: `yyyyMMdd`.
    pub accepted_on: String,
    /// How GMS misbehaves for it.
    pub behaviour: Behaviour,
}

/// A trader GMS knows, with its own query limit when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trader {
    /// Its TIN.
    pub tin: Tin,
    /// Queries it may make per window, instead of the configured limit.
    pub query_limit: Option<u32>,
}

/// Everything the simulated GMS knows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dataset {
    guarantees: BTreeMap<String, Guarantee>,
    known_tins: BTreeSet<String>,
    limits: BTreeMap<String, u32>,
}

/// A dataset that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read the GMS dataset {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Not TOML of the expected shape.
    #[error("the GMS dataset is not valid: {0}")]
    Toml(String),
    /// One entry has a bad value.
    #[error("GMS dataset {entry}: {field}: {reason}")]
    Field {
        /// Which entry, e.g. `guarantee 3 (26GB0000010000012)`.
        entry: String,
        /// Which field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetFile {
    #[serde(default)]
    guarantees: Vec<GuaranteeEntry>,
    #[serde(default)]
    traders: Vec<TraderEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuaranteeEntry {
    grn: String,
    #[serde(rename = "type")]
    guarantee_type: String,
    tin: String,
    access_code: String,
    balance: Option<toml::Value>,
    currency: Option<String>,
    exposure: Option<toml::Value>,
    office: Option<String>,
    accepted_on: Option<String>,
    reply_delay: Option<String>,
    #[serde(default)]
    no_reply: bool,
    #[serde(default)]
    ie917_reply: bool,
    submit_status: Option<u16>,
    #[serde(default)]
    malformed_reply: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraderEntry {
    tin: String,
    query_limit: Option<u32>,
}

const SANDBOX: &str = include_str!("sandbox.toml");

impl Dataset {
    /// A dataset of these guarantees and traders; GRNs must be unique.
    pub fn new(guarantees: Vec<Guarantee>, traders: Vec<Trader>) -> Result<Self, DatasetError> {
        let mut dataset = Self::default();
        for g in guarantees {
            let key = g.grn.as_str().to_owned();
            dataset.known_tins.insert(g.principal.as_str().to_owned());
            if dataset.guarantees.insert(key.clone(), g).is_some() {
                return Err(DatasetError::Field {
                    entry: format!("guarantee {key}"),
                    field: "grn",
                    reason: "listed twice".to_owned(),
                });
            }
        }
        for t in traders {
            dataset.known_tins.insert(t.tin.as_str().to_owned());
            if let Some(limit) = t.query_limit {
                dataset.limits.insert(t.tin.as_str().to_owned(), limit);
            }
        }
        Ok(dataset)
    }

    /// Reads a dataset from TOML text.
    pub fn from_toml(text: &str) -> Result<Self, DatasetError> {
        let file: DatasetFile =
            toml::from_str(text).map_err(|e| DatasetError::Toml(e.to_string()))?;
        let guarantees = file
            .guarantees
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.into_guarantee(i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        let traders = file
            .traders
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                let tin = Tin::parse(&e.tin).map_err(|err| DatasetError::Field {
                    entry: format!("trader {}", i + 1),
                    field: "tin",
                    reason: err.to_string(),
                })?;
                Ok(Trader {
                    tin,
                    query_limit: e.query_limit,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(guarantees, traders)
    }

    /// Gives every guarantee that has no delay of its own (and is answered) this reply delay.
    pub fn with_default_reply_delay(mut self, delay: Duration) -> Self {
        if !delay.is_zero() {
            for g in self.guarantees.values_mut() {
                if g.behaviour.reply_delay.is_none() && !g.behaviour.no_reply {
                    g.behaviour.reply_delay = Some(delay);
                }
            }
        }
        self
    }

    /// Reads a dataset from a TOML file.
    pub fn load(path: &Path) -> Result<Self, DatasetError> {
        let text = std::fs::read_to_string(path).map_err(|e| DatasetError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text)
    }

    /// The built-in sandbox dataset, which covers every outcome (see `docs/sandbox.md`).
    pub fn sandbox() -> Self {
        // Checked by a unit test; it is part of the binary, not user input.
        Self::from_toml(SANDBOX).expect("the built-in sandbox dataset is valid")
    }

    /// The guarantee with this GRN (exact match).
    pub fn guarantee(&self, grn: &str) -> Option<&Guarantee> {
        self.guarantees.get(grn)
    }

    /// Every guarantee, ordered by GRN.
    pub fn guarantees(&self) -> impl Iterator<Item = &Guarantee> {
        self.guarantees.values()
    }

    /// Whether the TIN is a principal or a listed trader (exact match).
    pub fn knows_tin(&self, tin: &str) -> bool {
        self.known_tins.contains(tin)
    }

    /// The TIN's own query limit, when the dataset gives it one.
    pub fn query_limit_of(&self, tin: &str) -> Option<u32> {
        self.limits.get(tin).copied()
    }
}

impl GuaranteeEntry {
    fn into_guarantee(self, index: usize) -> Result<Guarantee, DatasetError> {
        let entry = format!("guarantee {index} ({})", self.grn);
        let bad = |field: &'static str, reason: String| DatasetError::Field {
            entry: entry.clone(),
            field,
            reason,
        };
        let grn = Grn::parse_v1(&self.grn).map_err(|e| bad("grn", e.to_string()))?;
        let guarantee_type: GuaranteeType = self.guarantee_type.parse().map_err(
            |e: gbal_core::guarantee_type::InvalidGuaranteeType| bad("type", e.to_string()),
        )?;
        let principal = Tin::parse(&self.tin).map_err(|e| bad("tin", e.to_string()))?;
        let access_code = AccessCode::parse(&self.access_code)
            .map_err(|_| bad("access_code", "not 4 letters or digits".to_owned()))?;
        let balance = self
            .balance
            .map(|v| ncts_decimal(&v))
            .transpose()
            .map_err(|e| bad("balance", e))?;
        if balance.is_none() && guarantee_type.has_balance() {
            return Err(bad(
                "balance",
                format!("required for a guarantee of type {guarantee_type}"),
            ));
        }
        let exposure = match self.exposure {
            Some(v) => ncts_decimal(&v).map_err(|e| bad("exposure", e))?,
            None => Amount::new(0, 0).map_err(|e| bad("exposure", e.to_string()))?,
        };
        let currency: Currency = self
            .currency
            .as_deref()
            .unwrap_or("GBP")
            .parse()
            .map_err(|e: gbal_core::amount::InvalidCurrency| bad("currency", e.to_string()))?;
        let office = match self.office {
            Some(o) => o,
            None => format!("{}000001", grn.country().map_or("GB", |c| c.code())),
        };
        if office.chars().count() != 8 {
            return Err(bad("office", "must be exactly 8 characters".to_owned()));
        }
        let accepted_on = self.accepted_on.unwrap_or_else(|| "20210114".to_owned());
        let date_format = time::macros::format_description!("[year][month][day]");
        if accepted_on.len() != 8 || time::Date::parse(&accepted_on, date_format).is_err() {
            return Err(bad(
                "accepted_on",
                "must be a date written yyyyMMdd".to_owned(),
            ));
        }
        let reply_delay = self
            .reply_delay
            .as_deref()
            .map(parse_duration)
            .transpose()
            .map_err(|e| bad("reply_delay", e))?;
        if let Some(status) = self.submit_status
            && !(400..=599).contains(&status)
        {
            return Err(bad(
                "submit_status",
                "must be an HTTP error status (400-599)".to_owned(),
            ));
        }
        Ok(Guarantee {
            grn,
            guarantee_type,
            principal,
            access_code,
            balance,
            currency,
            exposure,
            office,
            accepted_on,
            behaviour: Behaviour {
                reply_delay,
                no_reply: self.no_reply,
                ie917_reply: self.ie917_reply,
                submit_status: self.submit_status,
                malformed_reply: self.malformed_reply,
            },
        })
    }
}

/// An amount an IE037 can carry (Decimal_Max16: not negative, at most 2 decimals, 16
/// characters), written as a TOML string or integer so that it never passes through a float.
fn ncts_decimal(value: &toml::Value) -> Result<Amount, String> {
    let amount: Amount = match value {
        toml::Value::String(s) => s
            .parse()
            .map_err(|e: gbal_core::amount::InvalidAmount| e.to_string())?,
        toml::Value::Integer(i) => i
            .to_string()
            .parse()
            .map_err(|e: gbal_core::amount::InvalidAmount| e.to_string())?,
        toml::Value::Float(_) => {
            return Err("write it as a string (\"1234.56\") so that it stays exact".to_owned());
        }
        _ => return Err("not an amount".to_owned()),
    };
    if amount.is_negative() || amount.scale() > 2 || amount.to_string().len() > 16 {
        return Err(format!(
            "{amount} does not fit an NCTS amount (not negative, 2 decimals, 16 characters)"
        ));
    }
    Ok(amount)
}

/// Parses a duration in gbal's syntax (`250ms`, `2s`, `1m`, `1h30m`, `2d`; see `gbal_core::duration`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    gbal_core::duration::parse(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(3 * 3600)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        for bad in [
            "",
            "s",
            "2",
            "2 s",
            "1.5s",
            "-1s",
            "ms",
            "99999999999999999999s",
            "18446744073709551615h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_sandbox_is_valid_and_covers_every_behaviour() {
        let d = Dataset::sandbox();
        let behaviours: Vec<Behaviour> = d.guarantees().map(|g| g.behaviour).collect();
        assert!(behaviours.iter().any(|b| b.reply_delay.is_some()));
        assert!(behaviours.iter().any(|b| b.no_reply));
        assert!(behaviours.iter().any(|b| b.ie917_reply));
        assert!(behaviours.iter().any(|b| b.submit_status == Some(503)));
        assert!(behaviours.iter().any(|b| b.malformed_reply));
        for t in ["0", "1", "2", "4", "9"] {
            assert!(
                d.guarantees().any(|g| g.guarantee_type.to_string() == t),
                "type {t}"
            );
        }
        for g in d.guarantees() {
            assert!(
                Grn::parse_v2(g.grn.as_str()).is_ok(),
                "{} works with API v2",
                g.grn
            );
        }
    }

    #[test]
    fn reads_every_field() {
        let d = Dataset::from_toml(
            r#"
            [[guarantees]]
            grn = "26GB0000010000012"
            type = "9"
            tin = "GB1"
            access_code = "ab12"
            balance = "12345678.90"
            currency = "EUR"
            exposure = 100
            office = "GB123456"
            accepted_on = "20200229"
            reply_delay = "250ms"
            no_reply = true
            ie917_reply = true
            submit_status = 503
            malformed_reply = true

            [[traders]]
            tin = "XI2"
            query_limit = 3
            "#,
        )
        .expect("valid");
        let g = d.guarantee("26GB0000010000012").expect("present");
        assert_eq!(g.balance, Some("12345678.9".parse().unwrap()));
        assert_eq!(g.currency.as_str(), "EUR");
        assert_eq!(g.exposure.to_string(), "100");
        assert_eq!(g.office, "GB123456");
        assert!(g.access_code.matches("AB12"));
        assert_eq!(
            g.behaviour,
            Behaviour {
                reply_delay: Some(Duration::from_millis(250)),
                no_reply: true,
                ie917_reply: true,
                submit_status: Some(503),
                malformed_reply: true,
            }
        );
        assert!(d.knows_tin("GB1") && d.knows_tin("XI2") && !d.knows_tin("GB2"));
        assert_eq!(d.query_limit_of("XI2"), Some(3));
        assert_eq!(d.query_limit_of("GB1"), None);
        assert!(
            !format!("{d:?}").contains("ab12"),
            "the access code never shows"
        );
    }

    #[test]
    fn defaults() {
        let d = Dataset::from_toml(
            "[[guarantees]]\ngrn = \"26XI0000010000010\"\ntype = \"2\"\ntin = \"XI1\"\naccess_code = \"AC01\"\n",
        )
        .expect("valid");
        let g = d.guarantee("26XI0000010000010").expect("present");
        assert_eq!(g.balance, None);
        assert_eq!(g.currency.as_str(), "GBP");
        assert_eq!(g.office, "XI000001");
        assert_eq!(g.behaviour, Behaviour::default());
    }

    #[test]
    fn refuses_bad_entries_naming_them() {
        let base =
            "grn = \"26GB0000010000012\"\ntype = \"1\"\ntin = \"GB1\"\naccess_code = \"AC01\"\n";
        let cases = [
            ("balance = 1.5\n", "balance"),
            ("balance = \"-1\"\n", "balance"),
            ("balance = \"1.005\"\n", "balance"),
            ("balance = \"12345678901234567\"\n", "balance"),
            ("", "balance"),
            ("balance = \"1\"\nreply_delay = \"soon\"\n", "reply_delay"),
            ("balance = \"1\"\nsubmit_status = 200\n", "submit_status"),
            ("balance = \"1\"\ncurrency = \"gbp\"\n", "currency"),
            ("balance = \"1\"\noffice = \"GB1\"\n", "office"),
            (
                "balance = \"1\"\naccepted_on = \"20210230\"\n",
                "accepted_on",
            ),
        ];
        for (extra, field) in cases {
            let err =
                Dataset::from_toml(&format!("[[guarantees]]\n{base}{extra}")).expect_err(extra);
            assert!(
                matches!(&err, DatasetError::Field { field: f, .. } if *f == field),
                "{extra}: {err}"
            );
        }
        let err = Dataset::from_toml(&format!(
            "[[guarantees]]\n{base}balance = \"1\"\n[[guarantees]]\n{base}balance = \"2\"\n"
        ))
        .expect_err("duplicate");
        assert!(err.to_string().contains("listed twice"), "{err}");
        let err = Dataset::from_toml("[[guarantees]]\ngrn = \"x\"\n").expect_err("missing fields");
        assert!(matches!(err, DatasetError::Toml(_)));
        let err = Dataset::from_toml(&format!(
            "[[guarantees]]\n{base}balance = \"1\"\ncolour = \"red\"\n"
        ))
        .expect_err("unknown field");
        assert!(matches!(err, DatasetError::Toml(_)));
        let err = Dataset::from_toml("[[guarantees]]\ngrn = \"26GB0000010000012\"\ntype = \"1\"\ntin = \"GB1\"\naccess_code = \"SECRET\"\nbalance = \"1\"\n")
            .expect_err("bad code");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
}
