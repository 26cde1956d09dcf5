//! Criterion benchmarks: building and checking the IE034, and validating and reading each
//! kind of reply.
//!
//! Run: `cargo bench -p gbal-ncts --bench messages`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gbal_core::{AccessCode, Grn, NctsError, Rejection, Tin, UniqueReference};
use gbal_ncts::{Header, Ie034, Ie037, Ie906, Ie917, Limits, MessageKind, parse_reply};
use time::macros::datetime;

fn header(sender: &str, recipient: &str) -> Header {
    Header {
        sender: sender.to_owned(),
        recipient: recipient.to_owned(),
        prepared_at: datetime!(2021-09-14 09:52 UTC),
        message_ref: UniqueReference::from_value(123_456_789),
    }
}

fn messages(c: &mut Criterion) {
    let ie034 = Ie034 {
        header: header("MDTP-GUA-614070cf24ee48e6a18997d1", "NTA.GB"),
        grn: Grn::parse_v1("22GB0000010000313").expect("grn"),
        tin: Some(Tin::parse("GB954131533000").expect("tin")),
        access_code: AccessCode::parse("AC01").expect("code"),
    };
    c.bench_function("ie034 build + validate", |b| {
        b.iter(|| black_box(&ie034).build_checked().expect("valid"))
    });

    let to_gbal = || header("NTA.GB", "MDTP-GUA-614070cf24ee48e6a18997d1");
    let ie037 = Ie037 {
        header: to_gbal(),
        requester_tin: Some("GB954131533000".to_owned()),
        guarantee_office: "GB000001".to_owned(),
        grn: "22GB0000010000313".to_owned(),
        accepted_on: "20210114".to_owned(),
        guarantee_type: "1".parse().expect("type"),
        exposure: "2751.95".parse().expect("amount"),
        balance: Some("50000.00".parse().expect("amount")),
        currency: "GBP".parse().expect("currency"),
    }
    .build()
    .expect("writable");
    let ie906 = Ie906 {
        header: to_gbal(),
        original_ref: "jh8v8a7z7hzmq3".to_owned(),
        errors: Rejection::UnknownTin.errors(),
    }
    .build();
    let ie917 = Ie917 {
        header: to_gbal(),
        original_ref: "jh8v8a7z7hzmq3".to_owned(),
        error: NctsError::new(gbal_core::ErrorType::UNSUPPORTED, "MesRecMES3"),
    }
    .build();
    let limits = Limits::default();
    for (name, kind, doc) in [
        ("ie037 parse + validate", MessageKind::Ie037, &ie037),
        ("ie906 parse + validate", MessageKind::Ie906, &ie906),
        ("ie917 parse + validate", MessageKind::Ie917, &ie917),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| parse_reply(black_box(doc.as_bytes()), kind, &limits).expect("valid"))
        });
    }
}

criterion_group!(benches, messages);
criterion_main!(benches);
