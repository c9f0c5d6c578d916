//! Route handlers: parse, call the pipeline, answer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::problem::Problem;
use super::AppState;
use crate::admission::{human_bytes, Refusal, Reservation};
use crate::config::OutputFormat;
use crate::engine::{InferError, ModelInfo, OutputKind};
use crate::hints;
use crate::pipeline::{self, Limits, OutputOptions};

/// Query parameters of `POST /colorize`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ColorizeQuery {
    /// Decoding temperature, 0 < T <= 1: lower is more vivid (T -> 0 is the mode), 1 is the
    /// mean (safe, duller). Default: the model's own, else 0.38. Ignored by models that output ab.
    #[param(value_type = Option<f64>, exclusive_minimum = 0.0, maximum = 1.0)]
    temperature: Option<f32>,
    /// Output format; default from `Accept`, else png. WebP is lossless.
    #[param(value_type = Option<OutputFormat>)]
    format: Option<String>,
    /// JPEG quality 1..100 (default 90).
    #[param(minimum = 1, maximum = 100)]
    quality: Option<u8>,
    /// Model to use, one of the loaded models (`/info`); default: the service's default model.
    model: Option<String>,
}

const QUERY_KEYS: [&str; 4] = ["temperature", "format", "quality", "model"];

struct Parsed {
    temperature: Option<f32>,
    format: Option<OutputFormat>,
    quality: u8,
    model: Option<String>,
}

fn parse_query(raw: Option<&str>) -> Result<Parsed, Problem> {
    let mut p = Parsed { temperature: None, format: None, quality: 90, model: None };
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| Problem::invalid_parameter(format!("malformed query string: {e}")))?;
    for (k, v) in pairs {
        match k.as_str() {
            "temperature" => {
                let bad = || Problem::invalid_parameter(format!("temperature must be a number in (0, 1], got {v:?}"));
                let t: f64 = v.trim().parse().map_err(|_| bad())?;
                if !crate::color::temperature_in_range(t) {
                    return Err(bad());
                }
                // Below f32's smallest normal value, T is the mode all the same.
                p.temperature = Some((t as f32).max(f32::MIN_POSITIVE));
            }
            "format" => {
                p.format = Some(OutputFormat::from_name(&v).ok_or_else(|| {
                    Problem::invalid_parameter(format!("format must be png, jpeg or webp, got {v:?}"))
                        .with_allowed(OutputFormat::ALL.iter().map(|f| f.name().to_string()).collect())
                })?);
            }
            "quality" => {
                p.quality = v
                    .trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| Problem::invalid_parameter(format!("quality must be an integer in 1..100, got {v:?}")))?;
            }
            "model" => p.model = Some(v),
            other => {
                return Err(Problem::invalid_parameter(format!("unknown query parameter {other:?}"))
                    .with_allowed(QUERY_KEYS.iter().map(|s| s.to_string()).collect()));
            }
        }
    }
    Ok(p)
}

/// The output format the `Accept` header prefers among png, jpeg and webp (q-values honoured);
/// None when it names none of them.
pub fn negotiate(accept: Option<&str>) -> Option<OutputFormat> {
    let accept = accept?;
    let mut best: Option<(f32, usize, OutputFormat)> = None;
    for (i, item) in accept.split(',').enumerate() {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let fmt = match media.as_str() {
            "image/png" => OutputFormat::Png,
            "image/jpeg" | "image/jpg" => OutputFormat::Jpeg,
            "image/webp" => OutputFormat::Webp,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi)) {
            best = Some((q, i, fmt));
        }
    }
    best.map(|b| b.2)
}

/// How the image travels in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    /// `multipart/form-data` with a part named `image`.
    Multipart,
    /// The raw bytes (`image/*` or `application/octet-stream`).
    Raw,
}

/// The body kind from `Content-Type`, or 415.
fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let media = ctype.split(';').next().unwrap_or("").trim();
    if media == "multipart/form-data" {
        Ok(BodyKind::Multipart)
    } else if media.starts_with("image/") || media == "application/octet-stream" {
        Ok(BodyKind::Raw)
    } else {
        let shown = if media.is_empty() { "no Content-Type" } else { media };
        Err(Problem::unsupported_media(format!(
            "{shown}: send the image as the raw body with Content-Type image/* (or application/octet-stream), or as multipart/form-data with a part named \"image\""
        )))
    }
}

/// What a request body carries: the image and, from a multipart body, the `hints` part.
struct Upload {
    image: bytes::Bytes,
    hints: Option<bytes::Bytes>,
}

/// Most bytes read and dropped from a body that is refused (over the size limit, or refused from
/// its headers), so that a client still sending it reads the answer instead of a reset
/// connection; past it, the connection is closed after the answer.
pub const DRAIN_BOUND: usize = 64 * 1024 * 1024;

/// Reads and drops the rest of a body that will not be used (at most `bound` bytes), so that a
/// client still sending it reads the answer instead of a reset connection. Nothing is read from
/// a client that waits for `100 Continue`: it is not sent one, and sends no body. Returns whether
/// the body was read to its end; if not, the answer closes the connection.
async fn drain(body: Body, headers: &HeaderMap, bound: usize, until: Instant) -> bool {
    use http_body_util::BodyExt;
    if headers.get(header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue")) {
        return false;
    }
    let mut body = body;
    let mut seen = 0usize;
    let read = async {
        while seen <= bound {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
                Some(Err(_)) => return false,
                None => return true,
            }
        }
        false
    };
    tokio::time::timeout_at(until.into(), read).await.unwrap_or(false)
}

/// A problem answered before the body was read: the body is drained first (bounded in bytes
/// and by the body deadline), and the connection closed when it could not be drained to its end.
async fn refuse_unread(problem: Problem, body: Body, headers: &HeaderMap, until: Instant) -> Problem {
    let drained = drain(body, headers, DRAIN_BOUND, until).await;
    problem.closing(!drained)
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<usize>().ok())
}

/// The body (at most `limit` bytes), read by `until` (408 past it, closing the connection): the
/// raw image, or the multipart parts `image` and `hints` (other parts are read and ignored). A
/// body over the limit gets 413 once it has been drained (up to `DRAIN_BOUND`), so that the
/// client reads the answer.
async fn read_body(req: Request, kind: BodyKind, limit: usize, until: Instant, timeout: Duration) -> Result<Upload, Problem> {
    let read = read_body_within(req, kind, limit, until);
    match tokio::time::timeout_at(until.into(), read).await {
        Ok(r) => r,
        Err(_) => Err(Problem::body_timeout(timeout.as_millis() as u64)),
    }
}

async fn read_body_within(req: Request, kind: BodyKind, limit: usize, until: Instant) -> Result<Upload, Problem> {
    let (parts, body) = req.into_parts();
    if content_length(&parts.headers).is_some_and(|len| len > limit) {
        return Err(refuse_unread(Problem::too_large(limit), body, &parts.headers, until).await);
    }
    if kind == BodyKind::Multipart {
        let req = Request::from_parts(parts, body);
        let mut mp = axum::extract::Multipart::from_request(req, &())
            .await
            .map_err(|e| Problem::bad_request(format!("malformed multipart body: {}", e.body_text())))?;
        let mut total = 0usize;
        let (mut image, mut hints) = (None, None);
        loop {
            let mut field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(multipart_problem(e.status(), e.body_text(), limit)),
            };
            let name = field.name().unwrap_or("").to_string();
            // Chunk by chunk, so that a part without a declared length cannot grow past the limit.
            let mut data = bytes::BytesMut::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        total += chunk.len();
                        if total > limit {
                            // The rest of a body without Content-Length is not drained: the
                            // connection closes after the answer.
                            return Err(Problem::too_large(limit).closing(true));
                        }
                        data.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(multipart_problem(e.status(), e.body_text(), limit)),
                }
            }
            let slot = match name.as_str() {
                "image" => &mut image,
                "hints" => &mut hints,
                _ => continue,
            };
            if slot.is_some() {
                return Err(Problem::bad_request(format!("the multipart body has more than one part named {name:?}")));
            }
            *slot = Some(data.freeze());
        }
        let image = image.ok_or_else(|| Problem::bad_request("the multipart body has no part named \"image\""))?;
        return Ok(Upload { image, hints });
    }
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf = bytes::BytesMut::with_capacity(content_length(&parts.headers).unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Problem::bad_request(format!("could not read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(refuse_unread(Problem::too_large(limit), body, &parts.headers, until).await);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Upload { image: buf.freeze(), hints: None })
}

fn multipart_problem(status: StatusCode, text: String, limit: usize) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::too_large(limit)
    } else {
        Problem::bad_request(format!("malformed multipart body: {text}"))
    }
}

fn check_auth(state: &AppState, headers: &HeaderMap) -> Result<(), Problem> {
    if state.api_keys.is_empty() {
        return Ok(());
    }
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    match given {
        Some(key) if state.api_keys.iter().any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())) => Ok(()),
        _ => {
            state.metrics.rejected.with_label_values(&["unauthorized"]).inc();
            Err(Problem::unauthorized())
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn server_timing(t: &pipeline::Timings) -> String {
    let stages: Vec<String> = t.stages().iter().map(|(name, d)| format!("{name};dur={:.2}", d.as_secs_f64() * 1000.0)).collect();
    stages.join(", ")
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Problem::internal_error("a pipeline stage panicked", &e))
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
    match tokio::time::timeout_at(deadline.into(), colorize_inner(state.clone(), query, req, deadline)).await {
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
    engine: Arc<crate::engine::Engine>,
    format: OutputFormat,
    temperature: f32,
    quality: u8,
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

/// Authentication, readiness, parameters, media type and model: everything decided from the
/// request line and headers. A model whose places (pool + queue) are all taken refuses here, so
/// that its clients need not send a body first; the place itself is taken once the body is read,
/// so that slow uploads do not hold places.
fn check(state: &AppState, query: Option<&str>, headers: &HeaderMap) -> Result<Checked, Problem> {
    check_auth(state, headers)?;
    if !state.is_ready() {
        return Err(Problem::not_ready("the service is starting or shutting down"));
    }
    let q = parse_query(query)?;
    let body_kind = body_kind(headers)?;
    let engine = state.models.get(q.model.as_deref()).cloned().ok_or_else(|| {
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
    if engine.is_full() {
        return Err(overloaded(state));
    }
    Ok(Checked { body_kind, engine, format, temperature, quality: q.quality, fault })
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

async fn colorize_inner(state: Arc<AppState>, query: Option<String>, req: Request, deadline: Instant) -> Result<Response, Problem> {
    let (parts, body) = req.into_parts();
    let body_deadline = Instant::now() + state.body_timeout;
    let Checked { body_kind, engine, format, temperature, quality, fault } = match check(&state, query.as_deref(), &parts.headers) {
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
    let slot = engine.admit().map_err(|_| overloaded(&state))?;

    // One blocking task runs the rest: the header, the memory it will cost reserved before any
    // pixel is decoded, decoding, the wait for a session, the model and the encoding. It owns the
    // reservation and the place while it runs: a request whose client has gone keeps them until
    // the task ends, as the memory and the CPU are in use (but the model does not start).
    let limits: Limits = state.limits;
    let hold = (fault == Some(Fault::Slow)).then_some(Duration::from_secs(2));
    let opts = OutputOptions { temperature, format, quality };
    let (_present, mut gone) = pipeline::Gone::pair();
    let (eng, st) = (engine.clone(), state.clone());
    let (done, mut reservation, _slot) = blocking(move || {
        if fault == Some(Fault::Panic) {
            panic!("fault injection: panic inside the pipeline");
        }
        let mut reservation = reservation;
        let done = pipeline::serve(&image, &limits, &eng, &hints, &opts, deadline, hold, &mut gone, |header| {
            let (mh, mw) = eng.input_size_for(header.width, header.height);
            let cost = pipeline::memory_cost(header, format, upload_bytes, mh as u64 * mw as u64);
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
    })
    .await?;
    let done = done.map_err(|e| match e {
        pipeline::ServeError::Refused(problem) => problem,
        pipeline::ServeError::Pipeline(e) => Problem::from(e),
        pipeline::ServeError::Infer(InferError::Deadline) => {
            state.metrics.rejected.with_label_values(&["deadline"]).inc();
            Problem::deadline(state.deadline.as_millis() as u64)
        }
        pipeline::ServeError::Infer(e @ (InferError::Engine(_) | InferError::Panicked(_))) => {
            Problem::internal_error("inference failed", &e)
        }
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

/// What `/info` answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Info {
    /// Service version.
    pub version: String,
    /// Model used when a request names none.
    pub default_model: String,
    /// Every loaded model.
    pub models: Vec<ModelInfo>,
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
    for e in state.models.iter() {
        state.metrics.queue_depth.with_label_values(&[e.name()]).set(e.queue_depth() as f64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_honours_q_values() {
        assert_eq!(negotiate(Some("image/webp")), Some(OutputFormat::Webp));
        assert_eq!(negotiate(Some("image/png;q=0.5, image/jpeg")), Some(OutputFormat::Jpeg));
        assert_eq!(negotiate(Some("image/jpeg;q=0, image/webp;q=0.1")), Some(OutputFormat::Webp));
        assert_eq!(negotiate(Some("*/*")), None);
        assert_eq!(negotiate(None), None);
    }

    #[test]
    fn query_is_strict() {
        assert!(parse_query(Some("temperature=0.5&format=jpeg&quality=80")).is_ok());
        // Any T in (0, 1] is taken; the tiniest are the mode.
        let t = parse_query(Some("temperature=1e-300")).ok().unwrap().temperature.unwrap();
        assert!(t > 0.0 && (1.0 / t).is_finite());
        for bad in [
            "temperature=0",
            "temperature=1.5",
            "temperature=NaN",
            "temperature=-1",
            "temperature=abc",
            "temperature=1e-400",
            "temperature=1.0000001",
            "format=gif",
            "format=PNG",
            "format=jpg",
            "quality=0",
            "quality=101",
            "temprature=0.5",
        ] {
            let p = parse_query(Some(bad)).err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(p.status, 422, "{bad}");
        }
    }
}
