//! The GMS rules of DESIGN.md, as one function both simulator modes call.
//!
//! For a query with a TIN the checks run in this order, and the first that fails decides the
//! answer:
//!
//! 1. the requester's TIN is known to the GMS of the GRN's country (the GB GMS knows GB TINs,
//!    the XI GMS GB and XI TINs; a GRN of another country goes to the GB GMS): otherwise
//!    unknown TIN (12 `RC1.TIN`; 12 `GRR(1).OTG(1).TIN`; 26 `RC1.TIN`);
//! 2. the TIN is below its query limit in the sliding window (it counts from here on):
//!    otherwise 26 `RC1.TIN`;
//! 3. the GRN is known: otherwise unknown GRN (12 GRN; 12 `GRR(1).OTG(1).TIN`; 12 access code);
//! 4. the access code matches, without regard to case: otherwise 12 access code;
//! 5. the principal TIN is the guarantee's: otherwise 12 `GRR(1).OTG(1).TIN`;
//! 6. the type has a balance (0, 1, 9): otherwise 14 `GRR(1).GQY(1).Query identifier` R261.
//!
//! The type comes last so that nothing about a guarantee is told to someone without its access
//! code. A query without a TIN (API v2) skips 1, 2 and 5; its unknown-GRN answer keeps the set
//! observed with a TIN, so that `Rejection::classify` still names it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use gbal_core::{ErrorType, NctsError, Rejection};
use gbal_ncts::ReceivedIe034;
use time::OffsetDateTime;

use super::dataset::{Dataset, Guarantee};

/// A balance query as GMS reads it from an IE034 (or from an EIS call, without TINs).
#[derive(Clone, PartialEq, Eq)]
pub struct GuaranteeQuery {
    /// GuaRefNumGRNREF21.
    pub grn: String,
    /// TRAPRIRC1/TINRC159.
    pub requester_tin: Option<String>,
    /// TRAPRIOTG/TINOTG59.
    pub principal_tin: Option<String>,
    access_code: Option<String>,
}

impl GuaranteeQuery {
    /// A query from its parts.
    pub fn new(
        grn: impl Into<String>,
        requester_tin: Option<String>,
        principal_tin: Option<String>,
        access_code: Option<String>,
    ) -> Self {
        Self {
            grn: grn.into(),
            requester_tin,
            principal_tin,
            access_code,
        }
    }

    /// The query of an IE034's first GUAREF2 (gbal sends exactly one).
    pub fn from_ie034(ie034: &ReceivedIe034) -> Option<Self> {
        let g = ie034.guarantees.first()?;
        Some(Self {
            grn: g.grn.clone(),
            requester_tin: ie034.requester_tin.clone(),
            principal_tin: g.principal_tin.clone(),
            access_code: g.access_code().map(str::to_owned),
        })
    }

    /// The access code asked with. Secret: never log it.
    pub fn access_code(&self) -> Option<&str> {
        self.access_code.as_deref()
    }
}

impl fmt::Debug for GuaranteeQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuaranteeQuery")
            .field("grn", &self.grn)
            .field("requester_tin", &self.requester_tin)
            .field("principal_tin", &self.principal_tin)
            .field("access_code", &self.access_code.as_ref().map(|_| "****"))
            .finish()
    }
}

/// How many queries a TIN may make, per how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimit {
    /// Queries per window (a trader in the dataset may have its own).
    pub per_tin: u32,
    /// The sliding window.
    pub window: Duration,
}

impl QueryLimit {
    /// GMS's window: 24 hours, sliding.
    pub const GMS_WINDOW: Duration = Duration::from_secs(24 * 3600);

    /// `per_tin` queries per TIN in GMS's window.
    pub const fn per_day(per_tin: u32) -> Self {
        Self {
            per_tin,
            window: Self::GMS_WINDOW,
        }
    }
}

/// The queries each TIN made within the window: the simulator's only state.
#[derive(Debug)]
pub struct TinUsage {
    limit: QueryLimit,
    queries: HashMap<String, Queries>,
}

/// One TIN's queries in the window, oldest first, as runs of queries less than a second
/// apart: (the run's latest query, how many), so that the memory is bounded by the window's
/// seconds whatever the limit (a limit raised out of the way, as the load benchmark does,
/// would otherwise keep every query of the last 24 hours). A run leaves the window with its
/// latest query, so no query leaves it early and the limit is never exceeded.
#[derive(Debug, Default)]
struct Queries {
    runs: VecDeque<(OffsetDateTime, u32)>,
    total: u64,
}

impl TinUsage {
    /// No queries yet, counted against `limit`.
    pub fn new(limit: QueryLimit) -> Self {
        Self {
            limit,
            queries: HashMap::new(),
        }
    }

    /// Counts a query at `now` when the TIN is below `limit` in the window.
    fn admit(&mut self, tin: &str, limit: u32, now: OffsetDateTime) -> bool {
        let window = time::Duration::try_from(self.limit.window).unwrap_or(time::Duration::MAX);
        let seen = self.queries.entry(tin.to_owned()).or_default();
        while let Some(&(latest, count)) = seen.runs.front() {
            if now - latest < window {
                break;
            }
            seen.runs.pop_front();
            seen.total -= u64::from(count);
        }
        if seen.total >= u64::from(limit) {
            return false;
        }
        seen.total += 1;
        match seen.runs.back_mut() {
            Some((latest, count)) if now - *latest < time::Duration::SECOND => {
                *latest = now.max(*latest);
                *count += 1;
            }
            _ => seen.runs.push_back((now, 1)),
        }
        true
    }

    /// How many runs of queries are remembered, over every TIN (for tests of the bound).
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.queries.values().map(|q| q.runs.len()).sum()
    }
}

/// What GMS puts in its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimulatedReply {
    /// An IE037 with this guarantee's balance.
    Balance(Box<Guarantee>),
    /// An IE906 with these errors.
    Refused(Vec<NctsError>),
    /// An IE917 with this error.
    XmlError(NctsError),
}

/// When the reply comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// At once.
    Immediate,
    /// This long after the query.
    After(Duration),
    /// Never.
    Never,
}

/// Everything the simulated GMS does with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimulatedAnswer {
    /// The submission is refused with this HTTP status; nothing else happens.
    SubmitRefused {
        /// The status.
        status: u16,
    },
    /// The submission is taken and answered.
    Reply {
        /// What the reply says.
        reply: SimulatedReply,
        /// When it comes.
        delivery: Delivery,
        /// Whether it is sent broken (not well-formed).
        malformed: bool,
    },
}

/// The error of the IE917 a guarantee with `ie917_reply` gets (as in the reference example).
pub fn simulated_xml_error() -> NctsError {
    NctsError::new(ErrorType::UNSUPPORTED, "MesRecMES3")
}

/// Answers a query as GMS would at `now`. A guarantee's behaviour applies to every query
/// naming its GRN, whatever the rules say.
pub fn answer(
    dataset: &Dataset,
    query: &GuaranteeQuery,
    usage: &mut TinUsage,
    now: OffsetDateTime,
) -> SimulatedAnswer {
    let behaviour = dataset
        .guarantee(&query.grn)
        .map(|g| g.behaviour)
        .unwrap_or_default();
    if let Some(status) = behaviour.submit_status {
        return SimulatedAnswer::SubmitRefused { status };
    }
    let reply = if behaviour.ie917_reply {
        SimulatedReply::XmlError(simulated_xml_error())
    } else {
        match verdict(dataset, query, usage, now) {
            Ok(g) => SimulatedReply::Balance(Box::new(g.clone())),
            Err(rejection) => SimulatedReply::Refused(rejection.errors()),
        }
    };
    let delivery = match (behaviour.no_reply, behaviour.reply_delay) {
        (true, _) => Delivery::Never,
        (false, Some(delay)) => Delivery::After(delay),
        (false, None) => Delivery::Immediate,
    };
    SimulatedAnswer::Reply {
        reply,
        delivery,
        malformed: behaviour.malformed_reply,
    }
}

fn verdict<'d>(
    dataset: &'d Dataset,
    query: &GuaranteeQuery,
    usage: &mut TinUsage,
    now: OffsetDateTime,
) -> Result<&'d Guarantee, Rejection> {
    if let Some(tin) = &query.requester_tin {
        if !dataset.knows_tin(tin) || !gms_knows_country_of(&query.grn, tin) {
            return Err(Rejection::UnknownTin);
        }
        let limit = dataset.query_limit_of(tin).unwrap_or(usage.limit.per_tin);
        if !usage.admit(tin, limit, now) {
            return Err(Rejection::QueryLimit);
        }
    }
    let guarantee = dataset.guarantee(&query.grn).ok_or(Rejection::UnknownGrn)?;
    if !query
        .access_code()
        .is_some_and(|code| guarantee.access_code.matches(code))
    {
        return Err(Rejection::WrongAccessCode);
    }
    if query
        .principal_tin
        .as_deref()
        .is_some_and(|tin| tin != guarantee.principal.as_str())
    {
        return Err(Rejection::TinMismatch);
    }
    if !guarantee.guarantee_type.has_balance() {
        return Err(Rejection::UnsupportedGuaranteeType);
    }
    Ok(guarantee)
}

/// Whether the GMS of the GRN's country knows TINs of this TIN's country.
fn gms_knows_country_of(grn: &str, tin: &str) -> bool {
    let tin_country = tin.get(..2);
    match grn.get(2..4) {
        Some("XI") => matches!(tin_country, Some("GB" | "XI")),
        _ => tin_country == Some("GB"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gbal_core::ncts_error::{
        POINTER_ACCESS_CODE, POINTER_GRN, POINTER_PRINCIPAL_TIN, POINTER_QUERY_IDENTIFIER,
        POINTER_TIN,
    };
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-21 13:45 UTC);
    const GB_TIN: &str = "GB954131533000";
    const GB_TIN_2: &str = "GB123456789000";
    const XI_TIN: &str = "XI954131533000";

    fn dataset() -> Dataset {
        Dataset::from_toml(
            r#"
            [[guarantees]]
            grn = "26GB0000010000012"
            type = "0"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "262626"

            [[guarantees]]
            grn = "26GB0000010000021"
            type = "1"
            tin = "GB954131533000"
            access_code = "ac01"
            balance = "10"

            [[guarantees]]
            grn = "26GB0000010000039"
            type = "9"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "9"

            [[guarantees]]
            grn = "26GB0000020000019"
            type = "2"
            tin = "GB954131533000"
            access_code = "AC01"

            [[guarantees]]
            grn = "26GB0000040000017"
            type = "4"
            tin = "GB954131533000"
            access_code = "AC01"

            [[guarantees]]
            grn = "26GB0000010000047"
            type = "1"
            tin = "GB123456789000"
            access_code = "AB12"
            balance = "50000"

            [[guarantees]]
            grn = "26XI0000010000010"
            type = "0"
            tin = "XI954131533000"
            access_code = "AC01"
            balance = "30000"

            [[guarantees]]
            grn = "26XI0000010000028"
            type = "1"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "50000"

            [[guarantees]]
            grn = "26GB0000090000011"
            type = "1"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "1"
            reply_delay = "2s"
            malformed_reply = true

            [[guarantees]]
            grn = "26GB0000090000029"
            type = "1"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "1"
            no_reply = true
            reply_delay = "2s"

            [[guarantees]]
            grn = "26GB0000090000037"
            type = "1"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "1"
            ie917_reply = true

            [[guarantees]]
            grn = "26GB0000090000045"
            type = "1"
            tin = "GB954131533000"
            access_code = "AC01"
            balance = "1"
            submit_status = 503

            [[traders]]
            tin = "GB000000000026"
            query_limit = 2
            "#,
        )
        .expect("test dataset")
    }

    fn v1(grn: &str, tin: &str, code: &str) -> GuaranteeQuery {
        GuaranteeQuery::new(
            grn,
            Some(tin.to_owned()),
            Some(tin.to_owned()),
            Some(code.to_owned()),
        )
    }

    fn v2(grn: &str, code: &str) -> GuaranteeQuery {
        GuaranteeQuery::new(grn, None, None, Some(code.to_owned()))
    }

    fn ask(d: &Dataset, q: &GuaranteeQuery) -> SimulatedAnswer {
        answer(d, q, &mut TinUsage::new(QueryLimit::per_day(1000)), NOW)
    }

    /// The IE906 errors as (type, pointer, reason) for readable assertions.
    fn refused(a: &SimulatedAnswer) -> Vec<(u8, &str, Option<&str>)> {
        match a {
            SimulatedAnswer::Reply {
                reply: SimulatedReply::Refused(errors),
                ..
            } => errors
                .iter()
                .map(|e| {
                    (
                        e.error_type.get(),
                        e.error_pointer.as_str(),
                        e.error_reason.as_deref(),
                    )
                })
                .collect(),
            other => panic!("not an IE906: {other:?}"),
        }
    }

    fn balance(a: &SimulatedAnswer) -> String {
        match a {
            SimulatedAnswer::Reply {
                reply: SimulatedReply::Balance(g),
                delivery: Delivery::Immediate,
                malformed: false,
            } => format!("{} {}", g.balance.expect("a balance"), g.currency),
            other => panic!("not an immediate balance: {other:?}"),
        }
    }

    #[test]
    fn types_0_1_and_9_have_a_balance_with_and_without_tin() {
        let d = dataset();
        assert_eq!(
            balance(&ask(&d, &v1("26GB0000010000012", GB_TIN, "AC01"))),
            "262626 GBP"
        );
        assert_eq!(
            balance(&ask(&d, &v1("26GB0000010000021", GB_TIN, "AC01"))),
            "10 GBP"
        );
        assert_eq!(
            balance(&ask(&d, &v1("26GB0000010000039", GB_TIN, "AC01"))),
            "9 GBP"
        );
        assert_eq!(
            balance(&ask(&d, &v2("26GB0000010000012", "AC01"))),
            "262626 GBP"
        );
        assert_eq!(
            balance(&ask(&d, &v1("26XI0000010000010", XI_TIN, "AC01"))),
            "30000 GBP"
        );
    }

    #[test]
    fn types_2_and_4_are_14_r261() {
        let d = dataset();
        for grn in ["26GB0000020000019", "26GB0000040000017"] {
            for q in [v1(grn, GB_TIN, "AC01"), v2(grn, "AC01")] {
                assert_eq!(
                    refused(&ask(&d, &q)),
                    [(14, POINTER_QUERY_IDENTIFIER, Some("R261"))],
                    "{grn}"
                );
            }
        }
    }

    #[test]
    fn access_codes_match_without_regard_to_case() {
        let d = dataset();
        assert_eq!(
            balance(&ask(&d, &v1("26GB0000010000012", GB_TIN, "ac01"))),
            "262626 GBP"
        );
        assert_eq!(
            balance(&ask(&d, &v2("26GB0000010000012", "Ac01"))),
            "262626 GBP"
        );
        assert_eq!(
            balance(&ask(&d, &v1("26GB0000010000021", GB_TIN, "AC01"))),
            "10 GBP",
            "stored lower case"
        );
    }

    #[test]
    fn unknown_tin() {
        let d = dataset();
        let expected = [
            (12, POINTER_TIN, None),
            (12, POINTER_PRINCIPAL_TIN, None),
            (26, POINTER_TIN, None),
        ];
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000010000012", "GB999999999999", "AC01"))),
            expected
        );
        // The TIN rules come first: even an unknown GRN is reported as an unknown TIN.
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000019999999", "GB999999999999", "AC01"))),
            expected
        );
        assert_eq!(
            Rejection::classify(&Rejection::UnknownTin.errors()),
            Some(Rejection::UnknownTin)
        );
    }

    #[test]
    fn unknown_grn() {
        let d = dataset();
        let expected = [
            (12, POINTER_GRN, None),
            (12, POINTER_PRINCIPAL_TIN, None),
            (12, POINTER_ACCESS_CODE, None),
        ];
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000019999999", GB_TIN, "AC01"))),
            expected
        );
        assert_eq!(
            refused(&ask(&d, &v2("26GB0000019999999", "AC01"))),
            expected,
            "without a TIN"
        );
    }

    #[test]
    fn wrong_access_code() {
        let d = dataset();
        let expected = [(12, POINTER_ACCESS_CODE, None)];
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000010000012", GB_TIN, "AC02"))),
            expected
        );
        assert_eq!(
            refused(&ask(&d, &v2("26GB0000010000012", "AC02"))),
            expected
        );
        let no_code = GuaranteeQuery::new("26GB0000010000012", None, None, None);
        assert_eq!(refused(&ask(&d, &no_code)), expected);
        // Before the type: a type-2 guarantee says nothing without its code.
        assert_eq!(
            refused(&ask(&d, &v2("26GB0000020000019", "ZZ99"))),
            expected
        );
    }

    #[test]
    fn tin_known_but_not_the_principal() {
        let d = dataset();
        let expected = [(12, POINTER_PRINCIPAL_TIN, None)];
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000010000012", GB_TIN_2, "AC01"))),
            expected
        );
        // A TIN known only as a trader is known too.
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000010000012", "GB000000000026", "AC01"))),
            expected
        );
    }

    #[test]
    fn gb_gms_knows_gb_tins_only_and_xi_gms_knows_gb_and_xi() {
        let d = dataset();
        // XI TIN, GB GRN: unknown to the GB GMS, even though the dataset holds the TIN.
        assert_eq!(
            refused(&ask(&d, &v1("26GB0000010000012", XI_TIN, "AC01"))),
            [
                (12, POINTER_TIN, None),
                (12, POINTER_PRINCIPAL_TIN, None),
                (26, POINTER_TIN, None)
            ]
        );
        // GB TIN, XI GRN it owns: answered by the XI GMS.
        assert_eq!(
            balance(&ask(&d, &v1("26XI0000010000028", GB_TIN, "AC01"))),
            "50000 GBP"
        );
        // GB TIN, XI GRN it does not own: a mismatch, not an unknown TIN.
        assert_eq!(
            refused(&ask(&d, &v1("26XI0000010000010", GB_TIN, "AC01"))),
            [(12, POINTER_PRINCIPAL_TIN, None)]
        );
        // XI TIN, XI GRN.
        assert_eq!(
            balance(&ask(&d, &v1("26XI0000010000010", XI_TIN, "AC01"))),
            "30000 GBP"
        );
    }

    #[test]
    fn no_tin_skips_the_tin_rules() {
        let d = dataset();
        // Another principal's guarantee, and a GRN an XI TIN could not ask the GB GMS about.
        assert_eq!(
            balance(&ask(&d, &v2("26GB0000010000047", "AB12"))),
            "50000 GBP"
        );
        let mut usage = TinUsage::new(QueryLimit {
            per_tin: 0,
            window: Duration::from_secs(60),
        });
        let a = answer(&d, &v2("26GB0000010000012", "AC01"), &mut usage, NOW);
        assert_eq!(balance(&a), "262626 GBP", "no TIN, no limit");
    }

    #[test]
    fn query_limit_per_tin_in_a_sliding_window() {
        let d = dataset();
        let mut usage = TinUsage::new(QueryLimit {
            per_tin: 3,
            window: Duration::from_secs(24 * 3600),
        });
        let q = v1("26GB0000010000012", GB_TIN, "AC01");
        let limited = [(26, POINTER_TIN, None)];
        for minutes in 0..3 {
            let a = answer(&d, &q, &mut usage, NOW + time::Duration::minutes(minutes));
            assert_eq!(balance(&a), "262626 GBP");
        }
        let a = answer(&d, &q, &mut usage, NOW + time::Duration::hours(23));
        assert_eq!(refused(&a), limited);
        assert!(
            Rejection::classify(&Rejection::QueryLimit.errors()) == Some(Rejection::QueryLimit)
        );
        // Over the limit, whatever the query asks.
        let other = v1("26GB0000010000012", GB_TIN, "ZZZZ");
        assert_eq!(
            refused(&answer(
                &d,
                &other,
                &mut usage,
                NOW + time::Duration::hours(23)
            )),
            limited
        );
        // 24 h after the first query, one slot is free again; refusals did not take slots.
        let a = answer(&d, &q, &mut usage, NOW + time::Duration::hours(24));
        assert_eq!(balance(&a), "262626 GBP");
        assert_eq!(
            refused(&answer(&d, &q, &mut usage, NOW + time::Duration::hours(24))),
            limited
        );
        // Another TIN has its own count.
        let a = answer(
            &d,
            &v1("26GB0000010000047", GB_TIN_2, "AB12"),
            &mut usage,
            NOW + time::Duration::hours(24),
        );
        assert_eq!(balance(&a), "50000 GBP");
    }

    #[test]
    fn memory_is_bounded_by_the_window_not_by_the_limit() {
        let d = dataset();
        let mut usage = TinUsage::new(QueryLimit {
            per_tin: u32::MAX,
            window: Duration::from_secs(24 * 3600),
        });
        let q = v1("26GB0000010000012", GB_TIN, "AC01");
        // 100,000 queries, 200 a second.
        for n in 0..100_000i64 {
            let at = NOW + time::Duration::milliseconds(n * 5);
            assert_eq!(balance(&answer(&d, &q, &mut usage, at)), "262626 GBP");
        }
        assert!(usage.remembered() <= 501, "{}", usage.remembered());
    }

    #[test]
    fn queries_less_than_a_second_apart_leave_the_window_with_the_latest() {
        let d = dataset();
        let mut usage = TinUsage::new(QueryLimit {
            per_tin: 2,
            window: Duration::from_secs(60),
        });
        let q = v1("26GB0000010000012", GB_TIN, "AC01");
        let limited = [(26, POINTER_TIN, None)];
        let ms = time::Duration::milliseconds;
        assert_eq!(balance(&answer(&d, &q, &mut usage, NOW)), "262626 GBP");
        assert_eq!(
            balance(&answer(&d, &q, &mut usage, NOW + ms(600))),
            "262626 GBP"
        );
        // The first query is a minute old, but the second is not: both still count.
        let first_gone = NOW + time::Duration::seconds(60);
        assert_eq!(refused(&answer(&d, &q, &mut usage, first_gone)), limited);
        // A minute after the second, both slots are free.
        let both_gone = NOW + ms(60_600);
        assert_eq!(
            balance(&answer(&d, &q, &mut usage, both_gone)),
            "262626 GBP"
        );
        assert_eq!(
            balance(&answer(&d, &q, &mut usage, both_gone)),
            "262626 GBP"
        );
        assert_eq!(refused(&answer(&d, &q, &mut usage, both_gone)), limited);
    }

    #[test]
    fn a_limit_of_1000_per_24_hours_refuses_the_1001st_query() {
        let d = dataset();
        let mut usage = TinUsage::new(QueryLimit::per_day(1000));
        let q = v1("26GB0000010000012", GB_TIN, "AC01");
        for i in 0..1000 {
            let a = answer(&d, &q, &mut usage, NOW + time::Duration::seconds(i));
            assert!(
                matches!(
                    a,
                    SimulatedAnswer::Reply {
                        reply: SimulatedReply::Balance(_),
                        ..
                    }
                ),
                "query {i}"
            );
        }
        assert_eq!(
            refused(&answer(&d, &q, &mut usage, NOW + time::Duration::hours(1))),
            [(26, POINTER_TIN, None)]
        );
    }

    #[test]
    fn a_trader_may_have_its_own_limit() {
        let d = dataset();
        let mut usage = TinUsage::new(QueryLimit::per_day(1000));
        let q = v1("26GB0000010000012", "GB000000000026", "AC01");
        for _ in 0..2 {
            assert_eq!(
                refused(&answer(&d, &q, &mut usage, NOW)),
                [(12, POINTER_PRINCIPAL_TIN, None)]
            );
        }
        assert_eq!(
            refused(&answer(&d, &q, &mut usage, NOW)),
            [(26, POINTER_TIN, None)]
        );
    }

    #[test]
    fn behaviours() {
        let d = dataset();
        let q = |grn: &str| v1(grn, GB_TIN, "AC01");
        assert_eq!(
            ask(&d, &q("26GB0000090000045")),
            SimulatedAnswer::SubmitRefused { status: 503 }
        );
        assert!(matches!(
            ask(&d, &q("26GB0000090000011")),
            SimulatedAnswer::Reply { reply: SimulatedReply::Balance(_), delivery: Delivery::After(d), malformed: true }
                if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            ask(&d, &q("26GB0000090000029")),
            SimulatedAnswer::Reply {
                delivery: Delivery::Never,
                ..
            }
        ));
        assert_eq!(
            ask(&d, &q("26GB0000090000037")),
            SimulatedAnswer::Reply {
                reply: SimulatedReply::XmlError(simulated_xml_error()),
                delivery: Delivery::Immediate,
                malformed: false
            }
        );
        // Behaviour follows the GRN, whatever the rules say.
        assert!(matches!(
            ask(&d, &v1("26GB0000090000029", GB_TIN, "ZZZZ")),
            SimulatedAnswer::Reply {
                reply: SimulatedReply::Refused(_),
                delivery: Delivery::Never,
                ..
            }
        ));
    }

    #[test]
    fn a_refused_submission_does_not_count() {
        let d = dataset();
        let mut usage = TinUsage::new(QueryLimit {
            per_tin: 1,
            window: Duration::from_secs(60),
        });
        for _ in 0..3 {
            let a = answer(
                &d,
                &v1("26GB0000090000045", GB_TIN, "AC01"),
                &mut usage,
                NOW,
            );
            assert_eq!(a, SimulatedAnswer::SubmitRefused { status: 503 });
        }
        assert_eq!(
            balance(&answer(
                &d,
                &v1("26GB0000010000012", GB_TIN, "AC01"),
                &mut usage,
                NOW
            )),
            "262626 GBP"
        );
    }

    #[test]
    fn query_debug_hides_the_access_code() {
        let q = v1("26GB0000010000012", GB_TIN, "QX7Z");
        assert!(!format!("{q:?}").contains("QX7Z"));
        assert_eq!(q.access_code(), Some("QX7Z"));
    }
}
