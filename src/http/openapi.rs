//! The OpenAPI document (generated from the handlers) and the vendored Swagger UI at `/docs`.

use std::sync::Arc;

use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::AppState;
use super::{colorize, handlers};

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
    paths(colorize::colorize, handlers::healthz, handlers::readyz, handlers::info, handlers::metrics),
    components(schemas(super::problem::Problem, handlers::Info, handlers::FormatInfo, handlers::Health, crate::engine::ModelInfo, crate::engine::OutputKind, crate::pipeline::Limits, crate::config::OutputFormat, crate::hints::Hint)),
    modifiers(&Security),
    tags(
        (name = "colorize", description = "Colorization"),
        (name = "probes", description = "Liveness and readiness"),
        (name = "service", description = "Information and metrics"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document of a service that serves `models`: their names are the values the
/// `model` parameter of `POST /colorize` takes.
pub fn spec(models: &[String]) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::RefOr;
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    let colorize = doc.paths.paths.get_mut("/colorize").and_then(|p| p.post.as_mut());
    for param in colorize.and_then(|op| op.parameters.as_mut()).into_iter().flatten() {
        let RefOr::T(param) = param else { continue };
        if param.name == "model" {
            let names = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(models.iter().cloned()));
            param.schema = Some(RefOr::T(names.build().into()));
        }
    }
    doc
}

/// The OpenAPI document as pretty JSON with the models embedded in this binary (what
/// `openapi/openapi.json` holds).
pub fn spec_json() -> String {
    let names: Vec<String> = crate::models::EMBEDDED.iter().map(|(n, _)| n.to_string()).collect();
    spec(&names).to_pretty_json().expect("openapi serialises") + "\n"
}

/// `/docs` (Swagger UI, vendored: no network needed) and `/openapi.json`, for the loaded models.
pub fn swagger(models: &[String]) -> Router<Arc<AppState>> {
    Router::new().merge(SwaggerUi::new("/docs").url("/openapi.json", spec(models)))
}
