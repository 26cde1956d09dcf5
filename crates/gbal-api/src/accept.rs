//! Versioning by `Accept`: the extractors [`AcceptV1`] and [`AcceptV2`], the OpenAPI schemas
//! of the header, and the versions as types ([`V1`], [`V2`]) for the extractors whose refusals
//! differ by version.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use gbal_core::ApiVersion;

use crate::error::ApiError;

/// An API version as a type.
pub(crate) trait Version: Send + Sync + 'static {
    /// The version.
    const API: ApiVersion;
}

/// API v1, as a type.
#[derive(Debug)]
pub(crate) enum V1 {}

/// API v2, as a type.
#[derive(Debug)]
pub(crate) enum V2 {}

impl Version for V1 {
    const API: ApiVersion = ApiVersion::V1;
}

impl Version for V2 {
    const API: ApiVersion = ApiVersion::V2;
}

/// The media type of API v1.
pub(crate) const V1_MEDIA_TYPE: &str = "application/vnd.hmrc.1.0+json";
/// The media type of API v2.
pub(crate) const V2_MEDIA_TYPE: &str = "application/vnd.hmrc.2.0+json";

/// The request asks for API v1 (`Accept: application/vnd.hmrc.1.0+json`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptV1;

/// The request asks for API v2 (`Accept: application/vnd.hmrc.2.0+json`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AcceptV2;

/// Whether any `Accept` value lists `media_type` (parameters ignored, case-insensitive).
fn accepts(parts: &Parts, media_type: &str) -> bool {
    parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|item| item.split(';').next().unwrap_or_default().trim())
        .any(|item| item.eq_ignore_ascii_case(media_type))
}

impl<S: Send + Sync> FromRequestParts<S> for AcceptV1 {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if accepts(parts, V1_MEDIA_TYPE) {
            Ok(AcceptV1)
        } else {
            Err(ApiError::NotAcceptable(ApiVersion::V1))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AcceptV2 {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if accepts(parts, V2_MEDIA_TYPE) {
            Ok(AcceptV2)
        } else {
            Err(ApiError::NotAcceptable(ApiVersion::V2))
        }
    }
}

/// The header's schemas in the OpenAPI document.
pub(crate) mod schema {
    /// The `Accept` of API v1: the one media type that selects it (a request may list others
    /// beside it; without it the answer is 406).
    #[derive(Debug, utoipa::ToSchema)]
    #[allow(dead_code)]
    pub(crate) enum AcceptV1 {
        #[schema(rename = "application/vnd.hmrc.1.0+json")]
        V1,
    }

    /// The `Accept` of API v2: the one media type that selects it (a request may list others
    /// beside it; without it the answer is 406).
    #[derive(Debug, utoipa::ToSchema)]
    #[allow(dead_code)]
    pub(crate) enum AcceptV2 {
        #[schema(rename = "application/vnd.hmrc.2.0+json")]
        V2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(values: &[&str]) -> Parts {
        let mut builder = axum::http::Request::builder();
        for v in values {
            builder = builder.header("accept", *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn matches_listed_media_types_only() {
        assert!(accepts(&parts(&[V1_MEDIA_TYPE]), V1_MEDIA_TYPE));
        assert!(accepts(
            &parts(&["text/html, application/vnd.hmrc.1.0+json;q=0.9"]),
            V1_MEDIA_TYPE
        ));
        assert!(accepts(
            &parts(&["text/html", "Application/VND.hmrc.2.0+JSON"]),
            V2_MEDIA_TYPE
        ));
        assert!(!accepts(&parts(&[]), V1_MEDIA_TYPE));
        assert!(!accepts(
            &parts(&["application/vnd.hmrc.1x0+json"]),
            V1_MEDIA_TYPE
        ));
        assert!(!accepts(&parts(&["application/json"]), V1_MEDIA_TYPE));
        assert!(!accepts(&parts(&[V2_MEDIA_TYPE]), V1_MEDIA_TYPE));
        assert!(!accepts(&parts(&["*/*"]), V2_MEDIA_TYPE));
    }
}
