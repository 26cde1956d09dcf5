//! HAL links and JSON answers, shared by the two versions.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::ApiError;

/// `{"self": {"href": ...}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Links {
    /// The resource itself.
    #[serde(rename = "self")]
    pub self_link: Link,
}

/// A HAL link.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Link {
    /// Its path.
    pub href: String,
}

impl Links {
    pub(crate) fn to(href: String) -> Self {
        Self {
            self_link: Link { href },
        }
    }
}

/// `value` as a JSON answer. Amounts serialize as exact numbers, so the value is written
/// straight to bytes (never through `serde_json::Value`, which would use a float).
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| ApiError::Internal(format!("an answer could not be written: {e}")))?;
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}
