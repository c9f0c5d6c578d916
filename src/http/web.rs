//! The demo page (`web/`, embedded at build time): `/` and `/static/...`.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::problem::Problem;
use super::AppState;

mod files {
    include!(concat!(env!("OUT_DIR"), "/web_files.rs"));
}

fn file(path: &str) -> Response {
    match files::WEB_FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, bytes, mime)) => {
            let mut resp = bytes.into_response();
            resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        None => Problem::not_found(&format!("/static/{path}")).into_response(),
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { file("index.html") }))
        .route("/static/{*path}", get(|Path(p): Path<String>| async move { file(&p) }))
}
