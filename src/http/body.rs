//! Request bodies of `POST /colorize`: the body kind from `Content-Type`, reading the image (raw or
//! multipart) within the size limit and the body deadline, and draining a body that is refused
//! unread so that its client reads the answer instead of a reset connection.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use http_body_util::BodyExt;

use super::problem::Problem;

/// How the image travels in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// `multipart/form-data` with a part named `image`.
    Multipart,
    /// The raw bytes (`image/*` or `application/octet-stream`).
    Raw,
}

/// The body kind from `Content-Type`, or 415.
pub(crate) fn body_kind(headers: &HeaderMap) -> Result<BodyKind, Problem> {
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
pub(crate) struct Upload {
    pub(crate) image: bytes::Bytes,
    pub(crate) hints: Option<bytes::Bytes>,
}

/// Most bytes read and dropped from a body that is refused (over the size limit, or refused from
/// its headers), so that a client still sending it reads the answer instead of a reset
/// connection; past it, the connection is closed after the answer.
pub(crate) const DRAIN_BOUND: usize = 64 * 1024 * 1024;

/// Reads and drops the rest of a body that will not be used (at most `bound` bytes), so that a
/// client still sending it reads the answer instead of a reset connection. Nothing is read from
/// a client that waits for `100 Continue`: it is not sent one, and sends no body. Returns whether
/// the body was read to its end; if not, the answer closes the connection.
async fn drain(body: Body, headers: &HeaderMap, bound: usize, until: Instant) -> bool {
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
pub(crate) async fn refuse_unread(problem: Problem, body: Body, headers: &HeaderMap, until: Instant) -> Problem {
    let drained = drain(body, headers, DRAIN_BOUND, until).await;
    problem.closing(!drained)
}

/// The declared `Content-Length`, if any.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<usize>().ok())
}

/// The body (at most `limit` bytes), read by `until` (408 past it, closing the connection): the
/// raw image, or the multipart parts `image` and `hints` (other parts are read and ignored). A
/// body over the limit gets 413 once it has been drained (up to `DRAIN_BOUND`), so that the
/// client reads the answer.
pub(crate) async fn read_body(req: Request, kind: BodyKind, limit: usize, until: Instant, timeout: Duration) -> Result<Upload, Problem> {
    let read = async {
        let (parts, body) = req.into_parts();
        if content_length(&parts.headers).is_some_and(|len| len > limit) {
            return Err(refuse_unread(Problem::too_large(limit), body, &parts.headers, until).await);
        }
        match kind {
            BodyKind::Multipart => read_multipart(Request::from_parts(parts, body), limit).await,
            BodyKind::Raw => read_raw(body, &parts.headers, limit, until).await,
        }
    };
    match tokio::time::timeout_at(until.into(), read).await {
        Ok(r) => r,
        Err(_) => Err(Problem::body_timeout(timeout.as_millis() as u64)),
    }
}

/// The raw body as the image.
async fn read_raw(mut body: Body, headers: &HeaderMap, limit: usize, until: Instant) -> Result<Upload, Problem> {
    let mut buf = bytes::BytesMut::with_capacity(content_length(headers).unwrap_or(0).min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Problem::bad_request(format!("could not read the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(refuse_unread(Problem::too_large(limit), body, headers, until).await);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Upload { image: buf.freeze(), hints: None })
}

/// The parts `image` and `hints` of a multipart body (other parts are read and ignored).
async fn read_multipart(req: Request, limit: usize) -> Result<Upload, Problem> {
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
    Ok(Upload { image, hints })
}

fn multipart_problem(status: StatusCode, text: String, limit: usize) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::too_large(limit)
    } else {
        Problem::bad_request(format!("malformed multipart body: {text}"))
    }
}
