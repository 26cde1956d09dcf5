//! The OpenAPI 3.1 document, generated from the same route list as the public router.
//!
//! `docs/openapi.json` is this document for the default base path; a test regenerates it and
//! fails on any difference (`GBAL_UPDATE_OPENAPI=1` rewrites the file instead).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, FieldErrorItem, FunctionalErrorItem, FunctionalErrorResponse};
use crate::state::AppState;
use crate::{probe, v1, v2};

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
    // The arrival a check's deadline counts from, as routing hands the request over.
    let api = api.route_layer(axum::middleware::from_fn(crate::deadline::stamp_arrival));
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
    to_json(&document(base_path))
}

/// A document as pretty JSON, with a final newline.
pub(crate) fn to_json(document: &utoipa::openapi::OpenApi) -> String {
    let mut json = document
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    json.push('\n');
    json
}
