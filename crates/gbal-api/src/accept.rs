//! Versioning by `Accept`: the extractors [`AcceptV1`] and [`AcceptV2`].

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use gbal_core::ApiVersion;

use crate::error::ApiError;

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
