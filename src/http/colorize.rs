//! `POST /colorize`: everything decided from the request line and headers first (before the body
//! is read), then the body, and the rest as one job on one of the model's workers
//! (`pipeline::serve`): the memory reservation from the image header, and the pipeline's three
//! stages (prepare, model, finish). A model's places, its queue and its workers are its
//! `admission::ModelQueue`; the model itself runs on its `engine::Engine`.

mod query;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::body::{body_kind, content_length, read_body, refuse_unread, BodyKind, Upload};
use super::problem::Problem;
use super::AppState;
use crate::admission::ModelQueue;
use crate::admission::{human_bytes, Refusal, Reservation};
use crate::engine::{Engine, OutputKind};
use crate::hints;
use crate::models::Served;
use crate::params::{JpegQuality, OutputFormat, Temperature};
use crate::pipeline::{self, Limits, OutputOptions};
use query::{negotiate, parse_query, ColorizeQuery};

fn server_timing(t: &pipeline::Timings) -> String {
    let stages: Vec<String> = t.stages().iter().map(|(name, d)| format!("{name};dur={:.2}", d.as_secs_f64() * 1000.0)).collect();
    stages.join(", ")
}

/// Colorize an image.
///
/// Send the image as the raw body (`Content-Type: image/jpeg`, `image/png`, ...) or as
/// `multipart/form-data` with a part named `image`. Only the image's lightness is used; the answer
/// has the input's size (after EXIF orientation).
///
/// Colour hints (models whose `/info` entry says `hints: true`): add a multipart part named
/// `hints` holding JSON `[{"x": 120, "y": 48, "color": "#b03a2e"}, ...]` (optional `"radius"`
/// in pixels), points in the input image's pixels after EXIF orientation. The model spreads each
/// hinted colour over the region around it; the lightness stays the photo's own.
#[utoipa::path(
    post,
    path = "/colorize",
    tag = "colorize",
    params(ColorizeQuery),
    request_body(
        description = "The image: raw bytes with an image/* content type, or multipart/form-data with a part named `image`.",
        content(
            (UploadForm = "multipart/form-data"),
            (ImageBytes = "image/jpeg"),
            (ImageBytes = "image/png"),
            (ImageBytes = "image/webp"),
            (ImageBytes = "application/octet-stream"),
        )
    ),
    responses(
        (status = 200, description = "The colorized image (PNG, JPEG or WebP), same size as the input",
            headers(
                ("Server-Timing" = String, description = "Stage times in ms: decode, resize, queue, infer, bin_decode, upsample, encode (the stage names of the metrics)"),
                ("X-Request-Id" = String, description = "Request id (echoed if the client sent one)"),
                ("X-Colorizer-Model" = String, description = "Name of the model that answered"),
                ("X-Colorizer-Hints" = u32, description = "Number of colour hints applied"),
            ),
            content((ImageBytes = "image/png"), (ImageBytes = "image/jpeg"), (ImageBytes = "image/webp"))),
        (status = 400, description = "Not a decodable image, or malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong API key (when keys are configured)", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body was not received within the body timeout", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Unsupported media type", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameter, unknown model, image over the pixel limit, or bad hints (malformed, outside the image, too many, or for a model without hint input)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Overloaded (see Retry-After) or not ready", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "Over the request deadline", body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("api_key" = []))
)]
pub async fn colorize(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery, req: Request) -> Response {
    let deadline = Instant::now() + state.deadline;
    match tokio::time::timeout_at(deadline.into(), colorize_inner(state.clone(), query, req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(problem)) => problem.into_response(),
        Err(_) => {
            state.metrics.rejected.with_label_values(&["deadline"]).inc();
            Problem::deadline(state.deadline.as_millis() as u64).into_response()
        }
    }
}

/// What a request asks for, checked before its body is read.
struct Checked {
    body_kind: BodyKind,
    engine: Arc<Engine>,
    queue: Arc<ModelQueue>,
    format: OutputFormat,
    temperature: Temperature,
    quality: JpegQuality,
    fault: Option<Fault>,
}

/// Test-only faults (`--fault-injection` and the `X-Colorizer-Fault` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Panic inside the pipeline.
    Panic,
    /// Hold the model's session for 2 s before inference.
    Slow,
}

/// Readiness, parameters, media type and model: everything decided from the request line and
/// headers (the API key was checked by the `auth` layer). A model whose places (pool + queue)
/// are all taken refuses here, so that its clients need not send a body first; the place itself
/// is taken once the body is read, so that slow uploads do not hold places.
fn check(state: &AppState, query: Option<&str>, headers: &HeaderMap) -> Result<Checked, Problem> {
    if !state.is_ready() {
        return Err(Problem::not_ready("the service is starting or shutting down"));
    }
    let q = parse_query(query)?;
    let body_kind = body_kind(headers)?;
    let Served { engine, queue } = state.models.served(q.model.as_deref()).cloned().ok_or_else(|| {
        Problem::invalid_parameter(format!("unknown model {:?}", q.model.as_deref().unwrap_or(""))).with_allowed(state.models.names())
    })?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = q.format.or_else(|| negotiate(accept)).unwrap_or(OutputFormat::Png);
    let temperature = q.temperature.unwrap_or(engine.info().default_temperature);
    let fault = match headers.get("x-colorizer-fault").map(|v| v.as_bytes()) {
        _ if !state.fault_injection => None,
        Some(b"panic") => Some(Fault::Panic),
        Some(b"slow") => Some(Fault::Slow),
        _ => None,
    };
    if queue.is_full() {
        return Err(overloaded(state));
    }
    Ok(Checked { body_kind, engine, queue, format, temperature, quality: q.quality.unwrap_or(JpegQuality::DEFAULT), fault })
}

fn overloaded(state: &AppState) -> Problem {
    state.metrics.rejected.with_label_values(&["overloaded"]).inc();
    Problem::overloaded()
}

/// The answer to a memory reservation that was refused: 503 when other requests hold the budget
/// now; when the request alone is over the whole budget, `never` says why (413 / 422).
fn memory_refused(state: &AppState, refusal: Refusal, never: impl FnOnce(u64, u64) -> Problem) -> Problem {
    match refusal {
        Refusal::Busy { .. } => {
            state.metrics.rejected.with_label_values(&["memory"]).inc();
            Problem::memory_busy()
        }
        Refusal::NeverFits { needed, total } => never(needed, total),
    }
}

async fn colorize_inner(state: Arc<AppState>, query: Option<String>, req: Request) -> Result<Response, Problem> {
    let (parts, body) = req.into_parts();
    let body_deadline = Instant::now() + state.body_timeout;
    let Checked { body_kind, engine, queue, format, temperature, quality, fault } = match check(&state, query.as_deref(), &parts.headers) {
        Ok(c) => c,
        Err(problem) => return Err(refuse_unread(problem, body, &parts.headers, body_deadline).await),
    };
    // Memory for the body while it is read: its declared length, else the most it may be.
    let limit = state.max_body_bytes;
    let body_bytes = content_length(&parts.headers).unwrap_or(limit).min(limit);
    let mut reservation = match state.budget.reserve(body_bytes as u64) {
        Ok(r) => r,
        Err(refusal) => {
            let problem = memory_refused(&state, refusal, |needed, total| {
                Problem::too_large_for_memory(format!(
                    "the body ({}) is larger than the service's whole memory budget ({})",
                    human_bytes(needed),
                    human_bytes(total)
                ))
            });
            return Err(refuse_unread(problem, body, &parts.headers, body_deadline).await);
        }
    };
    let Upload { image, hints } = read_body(Request::from_parts(parts, body), body_kind, limit, body_deadline, state.body_timeout).await?;
    let upload_bytes = image.len() + hints.as_ref().map_or(0, |h| h.len());
    reservation.resize(upload_bytes as u64).expect("shrinking always succeeds");
    let hints = match hints {
        Some(json) => hints::parse(&json).map_err(Problem::invalid_parameter)?,
        None => Vec::new(),
    };
    pipeline::check_hints_accepted(&engine, &hints).map_err(|e| Problem::from(e).with_allowed(state.models.hint_model_names()))?;
    let hint_count = hints.len();
    let slot = queue.admit().map_err(|_| overloaded(&state))?;

    // One job on one of the model's workers runs the rest: the header, the memory it will cost
    // reserved before any pixel is decoded, decoding, the model and the encoding. The job owns
    // the reservation and the place: a request dropped (its client gone, or its deadline passed)
    // before a worker took its job gives both back at once, and its job never runs; one whose
    // job is running keeps them until the job ends, as the memory and the CPU are in use.
    let limits: Limits = state.limits;
    let hold = (fault == Some(Fault::Slow)).then_some(Duration::from_secs(2));
    let opts = OutputOptions { temperature, format, quality };
    let (eng, st) = (engine.clone(), state.clone());
    let job = move |waited, wanted: &dyn Fn() -> bool| {
        if fault == Some(Fault::Panic) {
            panic!("fault injection: panic inside the pipeline");
        }
        let mut reservation = reservation;
        let done = pipeline::serve(&image, &limits, &eng, &hints, &opts, waited, wanted, hold, |header| {
            let (mh, mw) = eng.input_size_for(header.width, header.height);
            let cost = pipeline::memory_cost(header, format, upload_bytes, eng.model_bytes(mh, mw));
            reservation.resize(cost).map_err(|refusal| {
                memory_refused(&st, refusal, |needed, total| {
                    Problem::image_too_large(format!(
                        "colorizing this {}x{} image as {} needs about {}, more than the service's whole memory budget ({}); send a smaller image{}",
                        header.width,
                        header.height,
                        format.name(),
                        human_bytes(needed),
                        human_bytes(total),
                        if format == OutputFormat::Jpeg { "" } else { " or ask for format=jpeg, which needs less" }
                    ))
                })
            })
        });
        (done, reservation, slot)
    };
    let (done, mut reservation, _slot) = queue.run(job).await.map_err(|e| Problem::internal_error("a pipeline stage panicked", &e))?;
    let done = done.map_err(|e| match e {
        pipeline::ServeError::Refused(problem) => problem,
        pipeline::ServeError::Pipeline(e) => Problem::from(e),
        pipeline::ServeError::Infer(e) => Problem::internal_error("inference failed", &e),
        // Only when this request was dropped, which is then not answered.
        pipeline::ServeError::Unwanted => Problem::deadline(state.deadline.as_millis() as u64),
    })?;
    state.metrics.input_megapixels.observe(done.megapixels());
    state.metrics.observe_stages(engine.name(), &done.timings);
    state.metrics.images.with_label_values(&[engine.name(), format.name()]).inc();

    // Only the encoded answer stays reserved, until it has been sent.
    reservation.resize(done.bytes.len() as u64).expect("shrinking always succeeds");
    let mut resp = (StatusCode::OK, reserved_body(done.bytes, reservation)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.mime()));
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("inline; filename=\"colorized.{}\"", format.extension())).expect("ascii"),
    );
    h.insert("server-timing", HeaderValue::from_str(&server_timing(&done.timings)).expect("ascii"));
    h.insert("x-colorizer-model", HeaderValue::from_str(engine.name()).unwrap_or(HeaderValue::from_static("model")));
    if engine.info().output == OutputKind::Logits313 {
        // Only where it applied: a model that outputs ab ignores the temperature.
        h.insert("x-colorizer-temperature", HeaderValue::from_str(&format!("{temperature}")).expect("ascii"));
    }
    h.insert("x-colorizer-hints", HeaderValue::from(hint_count));
    Ok(resp)
}

/// A response body that keeps `reservation` until the body is dropped (sent, or its client
/// gone), with its exact length.
fn reserved_body(bytes: Vec<u8>, reservation: Reservation) -> Body {
    use http_body_util::BodyExt;
    let full = http_body_util::Full::new(bytes::Bytes::from(bytes));
    // The closure owns the reservation and lives as long as the body.
    Body::new(full.map_err(move |never: std::convert::Infallible| {
        let _keep = &reservation;
        never
    }))
}

/// An image file's bytes.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub struct ImageBytes(Vec<u8>);

/// Multipart form of `POST /colorize`. (Other parts are read and ignored; the document lists
/// only these two.)
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The image file.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// Colour hints, JSON: an array of `Hint` objects, e.g.
    /// `[{"x": 120, "y": 48, "color": "#b03a2e"}]` (at most 64, each inside the image; models
    /// whose `/info` entry says `hints: true` only).
    #[schema(value_type = String, required = false, content_media_type = "application/json", example = json!(r##"[{"x": 120, "y": 48, "color": "#b03a2e"}]"##))]
    hints: Option<String>,
}
