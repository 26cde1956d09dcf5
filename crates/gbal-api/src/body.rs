//! Request bodies: the extractors [`V1Body`] and [`V2Body`]. Both refuse a body that is not
//! JSON by its `Content-Type` (415) or is over the limit (413), then read the shape of their
//! version. Field rules are the handlers' (parsing into domain types), after the body.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::Value;

use crate::error::ApiError;

/// The fields of a v1 `POST /balances` body, as strings not yet checked against their rules.
#[derive(Debug)]
pub(crate) struct V1Body {
    pub tax_identifier: String,
    pub guarantee_reference: String,
    pub access_code: String,
}

/// The access code of a v2 `POST /{grn}/balance` body, not yet checked against its rules.
#[derive(Debug)]
pub(crate) struct V2Body {
    pub access_code: String,
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

impl<S: Send + Sync> FromRequest<S> for V1Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(request, state).await?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
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

/// The message of a v2 body without a string `accessCode`.
pub(crate) const ACCESS_CODE_NOT_SUPPLIED: &str = "The access code was not supplied.";

impl<S: Send + Sync> FromRequest<S> for V2Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(request, state).await?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::BadRequest(ACCESS_CODE_NOT_SUPPLIED.to_owned()))?;
        match value.get("accessCode") {
            Some(Value::String(code)) => Ok(V2Body {
                access_code: code.clone(),
            }),
            _ => Err(ApiError::BadRequest(ACCESS_CODE_NOT_SUPPLIED.to_owned())),
        }
    }
}
