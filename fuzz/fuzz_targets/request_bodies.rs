//! Feeds arbitrary request bodies to what the public API makes of them (`gbal_api::v1_query`,
//! `gbal_api::v2_query`: the same steps as the handlers, after the Content-Type and size
//! checks). None may panic. Each answer is compared with a model of API.md's rules written
//! here: an accepted body's fields obey them and are the submitted strings; a refused one is a
//! 400 with the code and errors the rules call for; and an error body never depends on the
//! submitted access code (the same body with every character of the code replaced by another
//! of the same kind gives byte-identical error bodies), so it cannot echo it.
//!
//! Input: a first byte `2` means API v2, with the GRN path segment (percent-decoded) up to the
//! first newline and the body after it; any other first byte means API v1, with the rest as
//! the body.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use axum::response::IntoResponse;
use gbal_api::{ApiError, v1_query, v2_query};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'2', rest)) => {
            let (grn, body) = match rest.iter().position(|&b| b == b'\n') {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            // axum's `Path<String>` refuses a segment that is not UTF-8 before the handler.
            if let Ok(grn) = std::str::from_utf8(grn) {
                check_v2(grn, body);
            }
        }
        Some((_, body)) => check_v1(body),
        None => check_v1(data),
    }
});

/// API v1: the three fields' rules, every broken rule reported, shape errors by JSON path.
fn check_v1(body: &[u8]) {
    const FIELDS: [(&str, &str); 3] = [
        ("taxIdentifier", "INVALID_TAX_IDENTIFIER"),
        ("guaranteeReference", "INVALID_GUARANTEE_REFERENCE"),
        ("accessCode", "INVALID_ACCESS_CODE"),
    ];
    let result = v1_query(body);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        let error = result.expect_err("v1 accepted a body that is not JSON");
        let json = error_json(error, "INVALID_REQUEST_JSON");
        assert_eq!(json["errors"], serde_json::json!({"$": ["Invalid JSON"]}));
        return;
    };
    // The shape: each field present as a string.
    let mut shape = serde_json::Map::new();
    let mut fields = Vec::new();
    for (name, _) in FIELDS {
        match value.get(name) {
            Some(Value::String(s)) => fields.push(s.as_str()),
            Some(_) => {
                shape.insert(
                    format!("$.{name}"),
                    serde_json::json!(["String value expected"]),
                );
            }
            None => {
                shape.insert(format!("$.{name}"), serde_json::json!(["Missing path"]));
            }
        }
    }
    if !shape.is_empty() {
        let error = result.expect_err("v1 accepted a body of the wrong shape");
        let json = error_json(error, "INVALID_REQUEST_JSON");
        assert_eq!(json["errors"], Value::Object(shape));
        return;
    }
    let (tin, grn, code) = (fields[0], fields[1], fields[2]);
    let valid = [text_ok(tin, 17), text_ok(grn, 24), code_ok(code)];
    match result {
        Ok(query) => {
            assert!(
                valid.iter().all(|v| *v),
                "v1 accepted a field that breaks its rules"
            );
            assert_eq!(query.tin.as_ref().map(|t| t.as_str()), Some(tin));
            assert_eq!(query.grn.as_str(), grn);
            assert_eq!(query.access_code.expose(), code);
        }
        Err(error) => {
            assert!(
                !valid.iter().all(|v| *v),
                "v1 refused valid fields: {error}"
            );
            let bytes = error_body(error);
            let json = parse_error(&bytes, "BAD_REQUEST");
            let codes: Vec<&str> = json["errors"]
                .as_array()
                .expect("BAD_REQUEST errors are a list")
                .iter()
                .map(|e| e["code"].as_str().expect("a field error has a code"))
                .collect();
            // Every broken field is reported, in field order, and no other.
            let mut expected: Vec<&str> = Vec::new();
            for ((_, field_code), ok) in FIELDS.iter().zip(valid) {
                if !ok {
                    expected.push(field_code);
                }
            }
            let mut dedup = codes.clone();
            dedup.dedup();
            assert_eq!(
                dedup, expected,
                "field errors out of order or misattributed"
            );
            // The error does not depend on the access code's characters.
            let mut altered = value.clone();
            altered["accessCode"] = Value::String(same_kind(code));
            let altered = serde_json::to_vec(&altered).expect("JSON");
            let again = v1_query(&altered).expect_err("the altered body was accepted");
            assert_eq!(
                error_body(again),
                bytes,
                "a v1 error body depends on the access code"
            );
        }
    }
}

/// API v2: body, then GRN, then access code; each refusal a BAD_REQUEST with its message.
fn check_v2(grn: &str, body: &[u8]) {
    const NOT_SUPPLIED: &str = "The access code was not supplied.";
    const MALFORMED: &str = "The guarantee reference number is not in the correct format.";
    const NOT_GB_XI: &str = "The guarantee reference number must be for a GB or XI guarantee.";
    const CODE_FORMAT: &str = "Access code must be four alphanumeric characters.";
    let result = v2_query(grn, body);
    let code = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("accessCode")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let Some(code) = code else {
        let error = result.expect_err("v2 accepted a body without a string accessCode");
        let json = error_json(error, "BAD_REQUEST");
        assert_eq!(json["message"], NOT_SUPPLIED);
        return;
    };
    let expected = if !grn_well_formed(grn) {
        Some(MALFORMED)
    } else if !matches!(&grn[2..4], "GB" | "XI") {
        Some(NOT_GB_XI)
    } else if !code_ok(&code) {
        Some(CODE_FORMAT)
    } else {
        None
    };
    match (result, expected) {
        (Ok(query), None) => {
            assert_eq!(query.grn.as_str(), grn);
            assert_eq!(query.access_code.expose(), code);
            assert!(query.tin.is_none());
        }
        (Ok(_), Some(message)) => panic!("v2 accepted what should be refused with {message:?}"),
        (Err(error), None) => panic!("v2 refused a valid GRN and access code: {error}"),
        (Err(error), Some(message)) => {
            let bytes = error_body(error);
            let json = parse_error(&bytes, "BAD_REQUEST");
            assert_eq!(json["message"], message);
            // The error does not depend on the access code's characters.
            let mut altered: Value = serde_json::from_slice(body).expect("JSON");
            altered["accessCode"] = Value::String(same_kind(&code));
            let altered = serde_json::to_vec(&altered).expect("JSON");
            let again = v2_query(grn, &altered).expect_err("the altered body was accepted");
            assert_eq!(
                error_body(again),
                bytes,
                "a v2 error body depends on the access code"
            );
        }
    }
}

/// v1 TIN and GRN: 1 to `max` characters, ASCII letters and digits.
fn text_ok(s: &str, max: usize) -> bool {
    !s.is_empty() && s.chars().count() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The access code: exactly 4 ASCII letters or digits.
fn code_ok(s: &str) -> bool {
    s.chars().count() == 4 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `^[0-9]{2}[A-Z]{2}[A-Z0-9]{12}[0-9]$`.
fn grn_well_formed(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 17
        && b[..2].iter().all(u8::is_ascii_digit)
        && b[2..4].iter().all(u8::is_ascii_uppercase)
        && b[4..16]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && b[16].is_ascii_digit()
}

/// `code` with every character replaced by a different one of the same kind (letter, digit,
/// anything else), so that it breaks exactly the same rules.
fn same_kind(code: &str) -> String {
    code.chars()
        .map(|c| match c {
            'Q' => 'R',
            c if c.is_ascii_alphabetic() => 'Q',
            '7' => '8',
            c if c.is_ascii_digit() => '7',
            '#' => '%',
            _ => '#',
        })
        .collect()
}

/// The body the API answers with for `error`, which must be a 400 with `code`.
fn error_json(error: ApiError, code: &str) -> Value {
    parse_error(&error_body(error), code)
}

fn parse_error(bytes: &[u8], code: &str) -> Value {
    let json: Value = serde_json::from_slice(bytes).expect("an error body is JSON");
    assert_eq!(json["code"], code, "{}", String::from_utf8_lossy(bytes));
    assert!(json["message"].is_string());
    json
}

/// The bytes of the response `error` turns into; always a 400 here.
fn error_body(error: ApiError) -> Vec<u8> {
    assert_eq!(error.status().as_u16(), 400, "{error}");
    let response = error.into_response();
    let future = pin!(axum::body::to_bytes(response.into_body(), usize::MAX));
    match future.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(Ok(bytes)) => bytes.to_vec(),
        Poll::Ready(Err(e)) => panic!("an error body that cannot be read: {e}"),
        Poll::Pending => panic!("an error body that is not in memory"),
    }
}
