//! RFC 9457 problem details (`application/problem+json`) for every error the API answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::pipeline::PipelineError;

/// What a client is told of an internal error; the cause is logged with the request id.
pub const INTERNAL_DETAIL: &str = "the service failed to process this request; the cause is logged under this request's id (request_id)";

/// An RFC 9457 problem.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// URI that identifies the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "urn:colorizer:problem:not-an-image")]
    pub kind: String,
    /// Short summary of the kind of problem.
    #[schema(example = "Not a decodable image")]
    pub title: &'static str,
    /// HTTP status.
    #[schema(example = 400)]
    pub status: u16,
    /// What went wrong with this request.
    pub detail: String,
    /// Names a client may choose from (unknown model or parameter).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    pub allowed: Option<Box<[String]>>,
    /// The request's id (as in `X-Request-Id`); the service's log lines about this request carry
    /// it, so quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub request_id: Option<Box<str>>,
    #[serde(skip)]
    pub retry_after: Option<u16>,
    /// Close the connection after the answer (a request body that was not read to its end).
    #[serde(skip)]
    pub close: bool,
    /// The cause of an internal error, with its sources: logged (with the request id), never
    /// sent.
    #[serde(skip)]
    pub cause: Option<Box<str>>,
}

impl Problem {
    pub fn new(status: StatusCode, slug: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:colorizer:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            allowed: None,
            request_id: None,
            retry_after: None,
            close: false,
            cause: None,
        }
    }
    pub fn not_an_image(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "not-an-image", "Not a decodable image", detail)
    }
    pub fn truncated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "truncated-image", "Truncated image", detail)
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", "Bad request", detail)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Unauthorized",
            "this endpoint needs an API key: send `Authorization: Bearer <key>`",
        )
    }
    pub fn body_timeout(ms: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request body timeout",
            format!("the request body was not received within {ms} ms"),
        )
        .closing(true)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            format!("the body is over the limit of {limit} bytes"),
        )
    }
    pub fn unsupported_media(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type", detail)
    }
    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-parameter", "Invalid parameter", detail)
    }
    pub fn image_too_large(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "image-too-large", "Image too large", detail)
    }
    /// 503 "overloaded" with `Retry-After: 1`, saying which resource is taken.
    fn busy(detail: &str) -> Self {
        let mut p = Self::new(StatusCode::SERVICE_UNAVAILABLE, "overloaded", "Overloaded", detail);
        p.retry_after = Some(1);
        p
    }
    pub fn overloaded() -> Self {
        Self::busy("all sessions are busy and the queue is full; retry later")
    }
    pub fn memory_busy() -> Self {
        Self::busy("the memory the service may use for requests is taken by other requests now; retry later")
    }
    pub fn too_large_for_memory(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "Request body too large", detail)
    }
    pub fn not_ready(detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::SERVICE_UNAVAILABLE, "not-ready", "Not ready", detail);
        p.retry_after = Some(1);
        p
    }
    pub fn deadline(ms: u64) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "deadline-exceeded",
            "Deadline exceeded",
            format!("the request did not finish within its deadline of {ms} ms"),
        )
    }
    /// A 500 with the generic detail; the cause is for the log only (see `internal_error`).
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", INTERNAL_DETAIL)
    }
    /// A 500 that says nothing of `err`: the router logs `what` and the error with its sources at
    /// error level with the request id; internal text (ONNX Runtime, panics) stays in the log.
    pub fn internal_error(what: &str, err: &(dyn std::error::Error + 'static)) -> Self {
        Self::internal().with_cause(format!("{what}: {}", crate::error_chain(err)))
    }
    /// Sets the cause logged for this problem.
    pub fn with_cause(mut self, cause: String) -> Self {
        self.cause = Some(cause.into());
        self
    }
    pub fn not_found(path: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", format!("no route {path}; see /docs"))
    }
    /// Marks the answer as closing the connection (when `close`).
    pub fn closing(mut self, close: bool) -> Self {
        self.close |= close;
        self
    }
    pub fn with_allowed(mut self, allowed: Vec<String>) -> Self {
        self.allowed = Some(allowed.into());
        self
    }
}

impl From<PipelineError> for Problem {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::NotAnImage(_) => Problem::not_an_image(e.to_string()),
            PipelineError::Truncated(_) => Problem::truncated(e.to_string()),
            PipelineError::Unsupported(_) => Problem::unsupported_media(e.to_string()),
            PipelineError::TooLarge(_) => Problem::image_too_large(e.to_string()),
            PipelineError::BadParameter(_) => Problem::invalid_parameter(e.to_string()),
            PipelineError::Engine(_) | PipelineError::Encode(_) => Problem::internal_error("the pipeline failed", &e),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).expect("problem serialises");
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(s) = self.retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.close {
            resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // For the middleware that adds the request id and logs the cause.
        resp.extensions_mut().insert(self);
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineError;

    #[test]
    fn internal_errors_answer_a_generic_detail() {
        let cause = PipelineError::Engine(EngineError::Run(ort::Error::new("onnxruntime::Conv node 12: bad shape")));
        let p = Problem::from(cause);
        assert_eq!(p.status, 500);
        assert_eq!(p.detail, INTERNAL_DETAIL);
        assert!(p.cause.as_deref().unwrap().contains("onnxruntime::Conv node 12: bad shape"));
        let body = String::from_utf8(serde_json::to_vec(&p).unwrap()).unwrap();
        assert!(!body.contains("onnxruntime") && !body.contains("Conv"), "{body}");
        // The chain (for the log) keeps every source.
        let e = PipelineError::Engine(EngineError::Run(ort::Error::new("inner cause")));
        assert_eq!(crate::error_chain(&e), "ONNX Runtime failed to run the model: inner cause");
    }
}
