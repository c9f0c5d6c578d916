//! The small endpoints: probes, `/info`, `/metrics`, and the answers to unknown routes and
//! methods.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::problem::Problem;
use super::AppState;
use crate::engine::ModelInfo;
use crate::params::OutputFormat;
use crate::pipeline::Limits;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// "ok" or "ready".
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "probes", responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: models loaded and warmed up, and not draining.
#[utoipa::path(get, path = "/readyz", tag = "probes", responses(
    (status = 200, description = "Ready", body = Health),
    (status = 503, description = "Starting or draining", body = Problem, content_type = "application/problem+json"),
))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        Json(Health { status: "ready" }).into_response()
    } else if state.draining.load(Ordering::Acquire) {
        Problem::not_ready("the service is shutting down").into_response()
    } else {
        Problem::not_ready("the models are loading or warming up").into_response()
    }
}

/// An output format, as `/info` lists it (the demo page builds its format list from these).
#[derive(Serialize, utoipa::ToSchema)]
pub struct FormatInfo {
    /// Its name in `?format=`.
    #[schema(value_type = OutputFormat)]
    pub name: &'static str,
    /// The media type of the answer (and for `Accept`).
    pub media_type: &'static str,
    /// The file name extension of its files.
    pub extension: &'static str,
    /// Whether it keeps every pixel.
    pub lossless: bool,
}

impl From<OutputFormat> for FormatInfo {
    fn from(f: OutputFormat) -> Self {
        Self { name: f.name(), media_type: f.mime(), extension: f.extension(), lossless: f.lossless() }
    }
}

/// What `/info` answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Info {
    /// Service version.
    pub version: String,
    /// Model used when a request names none.
    pub default_model: String,
    /// Every loaded model.
    pub models: Vec<ModelInfo>,
    /// Output formats, in the order the API lists them.
    pub output_formats: Vec<FormatInfo>,
    /// Decoding limits.
    pub limits: Limits,
    /// Largest request body in bytes.
    pub max_body_bytes: usize,
    /// Requests that may wait for a session beyond those running (per model).
    pub queue: usize,
    /// Memory that requests may hold at once, in bytes (each reserves its estimated cost before
    /// decoding).
    pub memory_budget_bytes: u64,
    /// How the memory budget was chosen.
    pub memory_budget_source: String,
    /// Request deadline in milliseconds.
    pub deadline_ms: u64,
    /// Time to read request headers, in milliseconds.
    pub header_timeout_ms: u64,
    /// Time to read a request body, in milliseconds.
    pub body_timeout_ms: u64,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Drain timeout on shutdown, in seconds.
    pub drain_timeout_s: u64,
    /// Whether /colorize needs an API key.
    pub auth_required: bool,
    /// Readiness now.
    pub ready: bool,
    /// Seconds since the process started.
    pub uptime_s: f64,
    /// Seconds from process start to ready.
    pub startup_s: Option<f64>,
}

/// Models, their hashes and settings, limits and version.
#[utoipa::path(get, path = "/info", tag = "service", responses((status = 200, description = "Service and model information", body = Info)))]
pub async fn info(State(state): State<Arc<AppState>>) -> Json<Info> {
    let models: Vec<ModelInfo> = state.models.iter().map(|e| e.info().clone()).collect();
    Json(Info {
        version: env!("CARGO_PKG_VERSION").to_string(),
        default_model: state.models.default_name().to_string(),
        models,
        output_formats: OutputFormat::ALL.into_iter().map(FormatInfo::from).collect(),
        limits: state.limits,
        max_body_bytes: state.max_body_bytes,
        queue: state.queue,
        memory_budget_bytes: state.budget.total(),
        memory_budget_source: state.budget_source.clone(),
        deadline_ms: state.deadline.as_millis() as u64,
        header_timeout_ms: state.header_timeout.as_millis() as u64,
        body_timeout_ms: state.body_timeout.as_millis() as u64,
        max_connections: state.max_connections,
        drain_timeout_s: state.drain_timeout.as_secs(),
        auth_required: !state.api_keys.is_empty(),
        ready: state.is_ready(),
        uptime_s: state.started.elapsed().as_secs_f64(),
        startup_s: state.startup.get().map(|d| d.as_secs_f64()),
    })
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "service", responses((status = 200, description = "Prometheus text", content_type = "text/plain; version=0.0.4", body = String)))]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    for m in state.models.iter_served() {
        state.metrics.queue_depth.with_label_values(&[m.engine.name()]).set(m.queue.queue_depth() as f64);
    }
    state.metrics.memory_reserved.set(state.budget.reserved() as i64);
    let mut resp = state.metrics.render().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    resp
}

pub async fn not_found(uri: axum::http::Uri) -> Problem {
    Problem::not_found(uri.path())
}

/// A known path with a method it does not take (axum adds the `Allow` header).
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!("{} does not take {method}; see the Allow header and /docs", uri.path()),
    )
}
