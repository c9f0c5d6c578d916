//! The HTTP API: axum router, handlers, problem+json errors, OpenAPI, metrics, demo page, and
//! the server loop with header timeouts and graceful drain.

mod auth;
mod body;
mod colorize;
mod handlers;
pub mod metrics;
pub mod openapi;
pub mod problem;
mod server;
mod web;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

pub(crate) use server::{serve, shutdown_signal};

use crate::admission::MemoryBudget;
use crate::models::Models;
use crate::pipeline::Limits;
use metrics::Metrics;
use problem::Problem;

/// Shared state of the service.
pub struct AppState {
    pub models: Models,
    pub limits: Limits,
    /// Memory that requests may hold at once, and how it was chosen.
    pub budget: Arc<MemoryBudget>,
    pub budget_source: String,
    pub max_body_bytes: usize,
    pub queue: usize,
    pub deadline: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub drain_timeout: Duration,
    pub api_keys: Vec<String>,
    pub cors_origins: Vec<String>,
    pub fault_injection: bool,
    pub metrics: Metrics,
    pub warmed: AtomicBool,
    pub draining: AtomicBool,
    pub started: Instant,
    pub startup: OnceLock<Duration>,
}

impl AppState {
    pub fn is_ready(&self) -> bool {
        self.warmed.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    pub(crate) fn set_ready(&self) {
        self.warmed.store(true, Ordering::Release);
        let _ = self.startup.set(self.started.elapsed());
        self.metrics.ready.set(1.0);
    }

    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
        self.metrics.ready.set(0.0);
    }

    /// Publishes the model gauges and the memory budget.
    pub(crate) fn publish_models(&self) {
        self.metrics.memory_budget.set(self.budget.total() as i64);
        for e in self.models.iter() {
            let i = e.info();
            let output = serde_json::to_value(i.output).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            self.metrics.model_info.with_label_values(&[&i.name, &i.sha256, &output]).set(1.0);
            self.metrics.pool_size.with_label_values(&[&i.name]).set(i.pool_size as f64);
            self.metrics.queue_depth.with_label_values(&[&i.name]).set(0.0);
            self.metrics.images.with_label_values(&[&i.name, "png"]);
        }
    }
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Status recorded for a request whose client went away before its answer (nginx's 499).
pub(crate) const CLIENT_CLOSED: &str = "499";

/// One request in flight: counted in `colorizer_in_flight_requests` until dropped, then counted
/// by route and status and timed. A request dropped before it has an answer (its client closed
/// the connection, and hyper dropped the handler) is counted with status 499.
struct Tracked<'a> {
    metrics: &'a Metrics,
    route: String,
    start: Instant,
    status: Option<axum::http::StatusCode>,
}

impl<'a> Tracked<'a> {
    fn start(metrics: &'a Metrics, route: String) -> Self {
        metrics.in_flight.inc();
        Self { metrics, route, start: Instant::now(), status: None }
    }
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        let m = self.metrics;
        m.in_flight.dec();
        let status = self.status.as_ref().map_or(CLIENT_CLOSED, |s| s.as_str());
        m.requests.with_label_values(&[&self.route, status]).inc();
        m.request_seconds.with_label_values(&[&self.route]).observe(self.start.elapsed().as_secs_f64());
    }
}

/// Counts requests by route and status, times them, and tracks in-flight requests.
async fn track(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let mut tracked = Tracked::start(&state.metrics, route);
    let resp = next.run(req).await;
    tracked.status = Some(resp.status());
    resp
}

fn panic_response(payload: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = payload.downcast_ref::<&str>().copied().or_else(|| payload.downcast_ref::<String>().map(String::as_str)).unwrap_or("");
    Problem::internal().with_cause(format!("a request handler panicked: {message}")).into_response()
}

/// Adds the request id to every problem answer, so that the client can quote it, and logs the
/// cause of an internal error at error level with the same id (whatever RUST_LOG filters out of
/// the request's span).
async fn stamp_request_id(req: Request, next: Next) -> Response {
    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
    let resp = next.run(req).await;
    let Some(problem) = resp.extensions().get::<Problem>() else { return resp };
    if let Some(cause) = &problem.cause {
        tracing::error!(request_id = id.as_deref().unwrap_or(""), status = problem.status, error = %cause, "internal error");
    }
    let Some(id) = id else { return resp };
    let mut problem = problem.clone();
    problem.request_id = Some(id.into());
    let body = serde_json::to_vec(&problem).expect("problem serialises");
    let (mut parts, _) = resp.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.extensions.insert(problem);
    Response::from_parts(parts, axum::body::Body::from(body))
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([axum::http::header::CONTENT_TYPE, axum::http::header::AUTHORIZATION, axum::http::header::ACCEPT])
            .expose_headers([HeaderName::from_static("server-timing"), REQUEST_ID.clone(), HeaderName::from_static("x-colorizer-model")]),
    )
}

/// The application router.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        // Protected routes: the API key layer runs only for the methods they take (a wrong method
        // is a 405 either way).
        .route("/colorize", post(colorize::colorize).route_layer(middleware::from_fn_with_state(state.clone(), auth::require_api_key)))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/info", get(handlers::info))
        .route("/metrics", get(handlers::metrics))
        .merge(web::routes())
        .merge(openapi::swagger(&state.models.names()))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::disable())
        // Inside `track`, so that a panic is counted as the 500 it is answered with.
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state.clone());
    let mut app = api
        .layer(middleware::from_fn(stamp_request_id))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    // Method, path and id only: no query strings, bodies or other request data in logs.
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                // One line per answered request at info (status and latency, in the request's span). A 5xx
                // is not logged again here: its cause is logged at error where it happens, and 503s
                // (overload, not ready) are expected answers, not faults.
                .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Millis))
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid));
    if let Some(c) = cors(&state.cors_origins) {
        app = app.layer(c);
    }
    app
}
