//! What a balance check asks, read from the request: the extractors [`V1Query`] and
//! [`V2Query`]. Both refuse a body that is not JSON by its `Content-Type` (415) or is over the
//! limit (413), then read the shape of their version's body, then parse the fields into
//! domain types (every broken rule reported, in the contract's order).
//!
//! [`v1_query`] and [`v2_query`] run the same steps on bytes, without an HTTP request, for
//! the fuzz target `request_bodies`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{StatusCode, header};
use gbal_core::{AccessCode, BalanceQuery, Grn, Tin};
use serde_json::Value;

use crate::error::ApiError;

/// The query of a v1 `POST /balances`: its body's TIN, GRN and access code.
#[derive(Debug)]
pub(crate) struct V1Query(pub BalanceQuery);

/// The query of a v2 `POST /{grn}/balance`: the path's GRN and the body's access code.
#[derive(Debug)]
pub(crate) struct V2Query(pub BalanceQuery);

/// The fields of a v1 body, as strings not yet checked against their rules.
#[derive(Debug)]
struct V1Body {
    tax_identifier: String,
    guarantee_reference: String,
    access_code: String,
}

/// The access code of a v2 body, not yet checked against its rules.
#[derive(Debug)]
struct V2Body {
    access_code: String,
}

/// `application/json`, `text/json` or any `+json` type, parameters ignored.
fn is_json(request: &Request) -> bool {
    let Some(value) = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let media = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    media == "application/json"
        || media == "text/json"
        || (media.starts_with("application/") && media.ends_with("+json"))
}

/// The body bytes of a JSON request.
async fn json_bytes<S: Send + Sync>(request: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(&request) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest("The request body could not be read".to_owned())
            }
        })
}

/// The three v1 fields in the order API v1 reports them.
const V1_FIELDS: [&str; 3] = ["taxIdentifier", "guaranteeReference", "accessCode"];

impl V1Body {
    /// The shape of a v1 body: a JSON object with the three fields as strings (extra fields
    /// ignored), or INVALID_REQUEST_JSON with a message by JSON path.
    fn from_json(bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|_| {
            ApiError::InvalidRequestJson(BTreeMap::from([("$".to_owned(), vec!["Invalid JSON"])]))
        })?;
        let mut errors = BTreeMap::new();
        let mut fields = Vec::with_capacity(V1_FIELDS.len());
        for name in V1_FIELDS {
            match value.get(name) {
                Some(Value::String(s)) => fields.push(s.clone()),
                // Play reports an explicit null like a wrong type, an absent field (or any
                // field of a root that is not an object) as missing.
                Some(_) => {
                    errors.insert(format!("$.{name}"), vec!["String value expected"]);
                }
                None => {
                    errors.insert(format!("$.{name}"), vec!["Missing path"]);
                }
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::InvalidRequestJson(errors));
        }
        let mut fields = fields.into_iter();
        Ok(V1Body {
            tax_identifier: fields.next().unwrap_or_default(),
            guarantee_reference: fields.next().unwrap_or_default(),
            access_code: fields.next().unwrap_or_default(),
        })
    }
}

impl From<V1Query> for BalanceQuery {
    fn from(V1Query(query): V1Query) -> Self {
        query
    }
}

impl From<V2Query> for BalanceQuery {
    fn from(V2Query(query): V2Query) -> Self {
        query
    }
}

impl<S: Send + Sync> FromRequest<S> for V1Query {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(request, state).await?;
        v1_query(&bytes).map(V1Query)
    }
}

/// The fields of a v1 body, every broken rule reported in order.
fn v1_fields(body: &V1Body) -> Result<BalanceQuery, ApiError> {
    let mut errors = Vec::new();
    let tin = Tin::parse(&body.tax_identifier)
        .map_err(|e| errors.extend(e.0))
        .ok();
    let grn = Grn::parse_v1(&body.guarantee_reference)
        .map_err(|e| errors.extend(e.0))
        .ok();
    let access_code = AccessCode::parse(&body.access_code)
        .map_err(|e| errors.extend(e.0))
        .ok();
    match (tin, grn, access_code) {
        (Some(tin), Some(grn), Some(access_code)) => Ok(BalanceQuery {
            grn,
            access_code,
            tin: Some(tin),
        }),
        _ => Err(ApiError::InvalidFields(errors)),
    }
}

/// The message of a v2 body without a string `accessCode`.
const ACCESS_CODE_NOT_SUPPLIED: &str = "The access code was not supplied.";
/// The message of an access code that breaks its rules (the value is never echoed).
const ACCESS_CODE_FORMAT: &str = "Access code must be four alphanumeric characters.";

impl V2Body {
    /// The shape of a v2 body: a JSON object with a string `accessCode` (extra fields
    /// ignored), or BAD_REQUEST "The access code was not supplied.".
    fn from_json(bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|_| ApiError::BadRequest(ACCESS_CODE_NOT_SUPPLIED.to_owned()))?;
        match value.get("accessCode") {
            Some(Value::String(code)) => Ok(V2Body {
                access_code: code.clone(),
            }),
            _ => Err(ApiError::BadRequest(ACCESS_CODE_NOT_SUPPLIED.to_owned())),
        }
    }
}

impl<S: Send + Sync> FromRequest<S> for V2Query {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let Path(grn) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(|rejection| ApiError::from_status(rejection.status()))?;
        let bytes = json_bytes(Request::from_parts(parts, body), state).await?;
        v2_query(&grn, &bytes).map(V2Query)
    }
}

/// The GRN of the path and the access code of the body, checked in that order.
fn v2_fields(grn: &str, body: &V2Body) -> Result<BalanceQuery, ApiError> {
    let grn = Grn::parse_v2(grn).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let access_code = AccessCode::parse(&body.access_code)
        .map_err(|_| ApiError::BadRequest(ACCESS_CODE_FORMAT.to_owned()))?;
    Ok(BalanceQuery {
        grn,
        access_code,
        tin: None,
    })
}

/// What API v1 makes of the bytes of a `POST /balances` body once the `Content-Type` and size
/// checks passed: the validated query, or the 400 it answers (INVALID_REQUEST_JSON for the
/// shape, BAD_REQUEST with every broken field rule). The steps of [`V1Query`], without the HTTP
/// request around them; used by the fuzz target `fuzz/fuzz_targets/request_bodies.rs`.
pub fn v1_query(body: &[u8]) -> Result<BalanceQuery, ApiError> {
    v1_fields(&V1Body::from_json(body)?)
}

/// What API v2 makes of the GRN path segment (percent-decoded) and the bytes of a
/// `POST /{grn}/balance` body once the `Content-Type` and size checks passed: the validated
/// query, or the 400 BAD_REQUEST it answers, checked in the order of [`V2Query`] (body, GRN,
/// access code). Used by the fuzz target `fuzz/fuzz_targets/request_bodies.rs`.
pub fn v2_query(grn: &str, body: &[u8]) -> Result<BalanceQuery, ApiError> {
    v2_fields(grn, &V2Body::from_json(body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(result: Result<BalanceQuery, ApiError>) -> &'static str {
        result.map(|_| ()).expect_err("refused").code()
    }

    #[test]
    fn v1_query_reads_the_shape_then_the_fields() {
        let query = v1_query(
            br#"{"taxIdentifier":"GB954131533000","guaranteeReference":"26GB0000010000021","accessCode":"AC01","x":1}"#,
        )
        .unwrap();
        assert_eq!(query.tin.unwrap().as_str(), "GB954131533000");
        assert_eq!(query.grn.as_str(), "26GB0000010000021");
        assert_eq!(query.access_code.expose(), "AC01");
        assert_eq!(code(v1_query(b"{")), "INVALID_REQUEST_JSON");
        assert_eq!(code(v1_query(b"[]")), "INVALID_REQUEST_JSON");
        assert_eq!(
            code(v1_query(
                br#"{"taxIdentifier":"GB1","guaranteeReference":"26GB","accessCode":null}"#
            )),
            "INVALID_REQUEST_JSON"
        );
        assert_eq!(
            code(v1_query(
                br#"{"taxIdentifier":"","guaranteeReference":"26GB","accessCode":"AC0!"}"#
            )),
            "BAD_REQUEST"
        );
    }

    #[test]
    fn v2_query_checks_the_body_then_the_grn_then_the_access_code() {
        let query = v2_query("26XI0000010000036", br#"{"accessCode":"ac01"}"#).unwrap();
        assert_eq!(query.grn.as_str(), "26XI0000010000036");
        assert!(query.tin.is_none());
        let message = |r: Result<BalanceQuery, ApiError>| r.map(|_| ()).unwrap_err().to_string();
        assert!(message(v2_query("nonsense", b"{}")).contains(ACCESS_CODE_NOT_SUPPLIED));
        assert!(
            message(v2_query("nonsense", br#"{"accessCode":"AC01"}"#))
                .contains("not in the correct format")
        );
        assert!(
            message(v2_query("26FR0000010000036", br#"{"accessCode":"AC01"}"#))
                .contains("GB or XI")
        );
        let refused = message(v2_query("26XI0000010000036", br#"{"accessCode":"SECRET"}"#));
        assert!(refused.contains("four alphanumeric"), "{refused}");
        assert!(!refused.contains("SECRET"));
    }
}
