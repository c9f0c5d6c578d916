//! The OpenAPI document (generated from the handlers) and the vendored Swagger UI at `/docs`.

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::handlers;
use super::AppState;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("Needed only when the service runs with COLORIZER_API_KEYS"))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "colorizer", description = "Colorizes grayscale photos with the 313-bin classification method of Zhang et al. (ECCV 2016); hint models also take user colour points (Zhang et al., SIGGRAPH 2017)."),
    paths(handlers::colorize, handlers::healthz, handlers::readyz, handlers::info, handlers::metrics),
    components(schemas(super::problem::Problem, handlers::Info, handlers::Health, crate::engine::ModelInfo, crate::engine::OutputKind, crate::pipeline::Limits, crate::config::OutputFormat, crate::hints::Hint)),
    modifiers(&Security),
    tags(
        (name = "colorize", description = "Colorization"),
        (name = "probes", description = "Liveness and readiness"),
        (name = "service", description = "Information and metrics"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as pretty JSON (what `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc.to_pretty_json().expect("openapi serialises") + "\n"
}

/// `/docs` (Swagger UI, vendored: no network needed) and `/openapi.json`.
pub fn swagger() -> Router<Arc<AppState>> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
}
