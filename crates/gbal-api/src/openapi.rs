//! The OpenAPI 3.1 document, generated from the same route list as the public router.
//!
//! `docs/openapi.json` is this document for the default base path; a test regenerates it and
//! fails on any difference (`GBAL_UPDATE_OPENAPI=1` rewrites the file instead).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, Schema};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::{probe, v1, v2};

/// An error body: `code` and `message`, and for some codes `reason`, `errors` or `response`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ErrorBody {
    /// Stable machine-readable code, e.g. `BAD_REQUEST`.
    #[schema(example = "BAD_REQUEST")]
    code: String,
    /// What went wrong.
    message: String,
    /// Why a 429 was given: `API_RATE_LIMIT`, `CLIENT_RATE_LIMIT` or `GMS_QUERY_LIMIT` (v1).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// v1 INVALID_REQUEST_JSON: messages by JSON path (an object); v1 BAD_REQUEST: the broken
    /// field rules (an array of FieldErrorItem); v2 FUNCTIONAL_ERROR: the GMS errors (an array
    /// of FunctionalErrorItem).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = errors_schema)]
    errors: Option<serde_json::Value>,
    /// v1 FUNCTIONAL_ERROR: `{"errors": [...]}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<FunctionalErrorResponse>,
}

/// The schema of [`ErrorBody::errors`]: its three shapes, by code.
fn errors_schema() -> Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Type};
    let strings = ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String));
    let array_of = |name: &str| ArrayBuilder::new().items(Ref::from_schema_name(name));
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(strings))
                .description(Some("v1 INVALID_REQUEST_JSON: messages by JSON path")),
        )
        .item(
            array_of("FieldErrorItem").description(Some("v1 BAD_REQUEST: the broken field rules")),
        )
        .item(
            array_of("FunctionalErrorItem")
                .description(Some("v2 FUNCTIONAL_ERROR: the GMS errors")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "v1 INVALID_REQUEST_JSON: messages by JSON path; v1 BAD_REQUEST: the broken field \
             rules; v2 FUNCTIONAL_ERROR: the GMS errors.",
        ))
        .build()
        .into()
}

/// One broken field rule of a v1 BAD_REQUEST.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct FieldErrorItem {
    /// `INVALID_TAX_IDENTIFIER`, `INVALID_GUARANTEE_REFERENCE` or `INVALID_ACCESS_CODE`.
    #[schema(example = "INVALID_ACCESS_CODE")]
    code: String,
    /// The field's message, e.g. `Invalid access code value`.
    message: String,
    /// The rule, e.g. `Access code must be 4 characters in length`.
    reason: String,
}

/// The `response` of a v1 FUNCTIONAL_ERROR.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct FunctionalErrorResponse {
    /// The GMS errors, in order.
    errors: Vec<FunctionalErrorItem>,
}

/// One error GMS reported (an IE906 FUNERRER1).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct FunctionalErrorItem {
    /// ErrTypER11, e.g. 12.
    error_type: u8,
    /// ErrPoiER12, e.g. `GRR(1).ACC(1).Access code`.
    error_pointer: String,
    /// ErrReaER13, when GMS gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_reason: Option<String>,
}

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gbal: CTC Guarantee Balance API",
        description = "Guarantee balances from the NCTS Guarantee Management System. \
            Version 1 (`Accept: application/vnd.hmrc.1.0+json`) answers at once or with 202 and a \
            balance request to poll; version 2 (`Accept: application/vnd.hmrc.2.0+json`) answers \
            synchronously.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody, FieldErrorItem, FunctionalErrorItem, FunctionalErrorResponse)),
    tags(
        (name = "v1", description = "Phase 4, asynchronous"),
        (name = "v2", description = "Phase 5, synchronous"),
        (name = "probes", description = "Liveness, readiness and this document"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT granting the scope common-transit-convention-guarantee-balance",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every public route, documented: the API under `base_path`, the probes at the root.
pub(crate) fn public_routes(base_path: &str) -> OpenApiRouter<AppState> {
    public_routes_with(base_path, |api| api)
}

/// [`public_routes`], with `around_api` applied to the balance routes only (not the probes).
pub(crate) fn public_routes_with(
    base_path: &str,
    around_api: impl FnOnce(OpenApiRouter<AppState>) -> OpenApiRouter<AppState>,
) -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(v1::post_balances))
        .routes(routes!(v1::get_balance))
        .routes(routes!(v2::post_balance));
    let api = around_api(api);
    let probes = OpenApiRouter::new()
        .routes(routes!(probe::livez))
        .routes(routes!(probe::readyz))
        .routes(routes!(probe::openapi_json));
    let root = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let root = if base_path.is_empty() {
        root.merge(api)
    } else {
        root.nest(base_path, api)
    };
    root.merge(probes)
}

/// The OpenAPI document of the public routes under `base_path` (normalised: `""` or
/// `/segments` without a trailing slash).
pub fn document(base_path: &str) -> utoipa::openapi::OpenApi {
    public_routes(base_path).into_openapi()
}

/// [`document`] as pretty JSON, with a final newline.
pub fn document_json(base_path: &str) -> String {
    let mut json = document(base_path)
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
