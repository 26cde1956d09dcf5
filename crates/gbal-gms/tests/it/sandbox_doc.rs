//! docs/sandbox.md's table is the sandbox's specification: every row is checked against the
//! rules, and every row answered at once also through the embedded simulator.

use gbal_core::{Balance, Gms, Outcome, Submission};
use gbal_gms::simulator::{
    Delivery, GuaranteeQuery, SimulatedAnswer, SimulatedReply, TinUsage, answer, parse_duration,
};
use gbal_gms::{Dataset, EmbeddedSimulator};
use gbal_testkit::gms_rules::Case;
use time::macros::datetime;

use crate::defaults;
use crate::support::{RecordingSink, context, query};

struct Row {
    grn: String,
    tin: Option<String>,
    code: String,
    answer: String,
}

fn rows() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sandbox.md");
    let text = std::fs::read_to_string(path).expect("docs/sandbox.md");
    let rows: Vec<Row> = text
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let [grn, tin, code, answer, _notes] = cells.as_slice() else {
                return None;
            };
            (grn.len() == 17 && grn.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| Row {
                grn: (*grn).to_owned(),
                tin: (*tin != "–").then(|| (*tin).to_owned()),
                code: (*code).to_owned(),
                answer: (*answer).to_owned(),
            })
        })
        .collect();
    assert!(rows.len() >= 25, "the table was read: {} rows", rows.len());
    rows
}

fn rejection(name: &str) -> Option<Case> {
    Some(match name {
        "unknown TIN" => Case::UnknownTin,
        "unknown GRN" => Case::UnknownGrn,
        "wrong access code" => Case::WrongAccessCode,
        "TIN mismatch" => Case::TinMismatch,
        "unsupported type" => Case::UnsupportedType,
        "query limit" => Case::QueryLimit,
        _ => return None,
    })
}

/// What the row's `answer` cell says the simulator does.
fn expected(row: &Row, dataset: &Dataset) -> SimulatedAnswer {
    let reply = |reply, delivery, malformed| SimulatedAnswer::Reply {
        reply,
        delivery,
        malformed,
    };
    let guarantee = || Box::new(dataset.guarantee(&row.grn).expect("in the dataset").clone());
    let a = row.answer.as_str();
    if let Some(r) = rejection(a) {
        return reply(
            SimulatedReply::Refused(r.errors()),
            Delivery::Immediate,
            false,
        );
    }
    if let Some(rest) = a.strip_prefix("balance ") {
        let words: Vec<&str> = rest.split(' ').collect();
        let g = guarantee();
        assert_eq!(g.balance, Some(words[0].parse().expect("amount")), "{a}");
        assert_eq!(g.currency.as_str(), words[1], "{a}");
        let delivery = match words.as_slice() {
            [_, _] => Delivery::Immediate,
            [_, _, "after", d] => Delivery::After(parse_duration(d).expect("duration")),
            _ => panic!("unreadable answer {a}"),
        };
        return reply(SimulatedReply::Balance(g), delivery, false);
    }
    match a {
        "IE917" => reply(
            SimulatedReply::XmlError(gbal_gms::simulator::simulated_xml_error()),
            Delivery::Immediate,
            false,
        ),
        "HTTP 503" => SimulatedAnswer::SubmitRefused { status: 503 },
        "no reply" => reply(SimulatedReply::Balance(guarantee()), Delivery::Never, false),
        "malformed reply" => reply(
            SimulatedReply::Balance(guarantee()),
            Delivery::Immediate,
            true,
        ),
        other => panic!("unknown answer {other}"),
    }
}

fn sim_query(row: &Row) -> GuaranteeQuery {
    GuaranteeQuery::new(
        &row.grn,
        row.tin.clone(),
        row.tin.clone(),
        Some(row.code.clone()),
    )
}

#[test]
fn every_row_of_the_table_is_what_the_rules_answer() {
    let dataset = Dataset::sandbox();
    for row in rows() {
        let mut usage = TinUsage::new(defaults::query_limit());
        let got = answer(
            &dataset,
            &sim_query(&row),
            &mut usage,
            datetime!(2026-11-21 13:45 UTC),
        );
        assert_eq!(
            got,
            expected(&row, &dataset),
            "{} {:?} {}",
            row.grn,
            row.tin,
            row.code
        );
    }
}

#[tokio::test]
async fn immediate_rows_through_the_embedded_simulator() {
    let (sink, _) = RecordingSink::new();
    let sim = EmbeddedSimulator::new(defaults::embedded(Dataset::sandbox()), sink);
    let mut checked = 0;
    for row in rows() {
        let expected = if let Some(r) = rejection(&row.answer) {
            Outcome::FunctionalError { errors: r.errors() }
        } else if let Some(rest) = row.answer.strip_prefix("balance ") {
            let words: Vec<&str> = rest.split(' ').collect();
            if words.len() != 2 {
                continue;
            }
            Outcome::Success(Balance {
                amount: words[0].parse().expect("amount"),
                currency: words[1].parse().expect("currency"),
            })
        } else {
            continue;
        };
        let q = query(&row.grn, row.tin.as_deref(), &row.code);
        assert_eq!(
            sim.submit(&q, &context()).await,
            Ok(Submission::Answered(expected)),
            "{}",
            row.grn
        );
        checked += 1;
    }
    assert!(checked >= 20, "{checked}");
}
