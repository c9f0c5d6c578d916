//! API keys (`--api-keys`): a layer on the protected routes (`POST /colorize`), so that a route
//! is protected where it is declared; probes, `/info`, `/metrics` and the pages stay open.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::body::refuse_unread;
use super::problem::Problem;
use super::AppState;

/// Lets a request through when no keys are configured or it carries one of them as
/// `Authorization: Bearer <key>`; else 401, once its unread body has been drained (bounded as
/// every refusal decided from the headers is), so that its client reads the answer.
pub(crate) async fn require_api_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if state.api_keys.is_empty() || carries_a_key(&state.api_keys, req.headers()) {
        return next.run(req).await;
    }
    state.metrics.rejected.with_label_values(&["unauthorized"]).inc();
    let until = Instant::now() + state.body_timeout.min(state.deadline);
    let (parts, body) = req.into_parts();
    refuse_unread(Problem::unauthorized(), body, &parts.headers, until).await.into_response()
}

fn carries_a_key(keys: &[String], headers: &HeaderMap) -> bool {
    let given = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
    given.is_some_and(|key| keys.iter().any(|k| constant_time_eq(k.as_bytes(), key.as_bytes())))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_key_passes() {
        let keys = vec!["key-one".to_string(), "key-two".to_string()];
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(carries_a_key(&keys, &with("Bearer key-two")));
        assert!(carries_a_key(&keys, &with("Bearer  key-one ")));
        for bad in ["Bearer key-three", "Bearer key", "key-one", "Basic key-one", "Bearer "] {
            assert!(!carries_a_key(&keys, &with(bad)), "{bad}");
        }
        assert!(!carries_a_key(&keys, &HeaderMap::new()));
    }
}
