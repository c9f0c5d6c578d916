//! The server loop: hyper with a header read timeout (which also closes idle keep-alive
//! connections), at most `--max-connections` connections, graceful drain on SIGTERM / Ctrl-C.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AppState;

/// Resolves on SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// An open connection: holds its place under `--max-connections` and is counted in
/// `colorizer_open_connections` until it ends.
struct OpenConnection {
    gauge: prometheus::IntGauge,
    _permit: OwnedSemaphorePermit,
}

impl OpenConnection {
    fn new(state: &AppState, permit: OwnedSemaphorePermit) -> Self {
        let gauge = state.metrics.open_connections.clone();
        gauge.inc();
        Self { gauge, _permit: permit }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Serves `app` on `listener` until `shutdown` resolves; then readiness goes 503 at once, no new
/// connections are accepted, and in-flight requests finish within the drain timeout. Returns
/// whether they all did.
pub(crate) async fn serve(listener: TcpListener, app: axum::Router, state: Arc<AppState>, shutdown: impl Future<Output = ()>) -> bool {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(state.header_timeout).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    // One permit per open connection: at the cap, new connections wait in the listen backlog.
    let permits = Arc::new(Semaphore::new(state.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let svc = TowerToHyperService::new(app.clone());
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                let open = OpenConnection::new(&state, permit);
                tokio::spawn(async move {
                    let _open = open;
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    state.start_draining();
    drop(listener);
    tracing::info!(drain_timeout_s = state.drain_timeout.as_secs(), "shutting down: draining in-flight requests");
    let deadline = std::time::Instant::now() + state.drain_timeout;
    let drained = match tokio::time::timeout(state.drain_timeout, graceful.shutdown()).await {
        Ok(()) => {
            tracing::info!("drained");
            true
        }
        Err(_) => {
            tracing::warn!("drain timeout passed with requests still in flight");
            false
        }
    };
    // Jobs whose clients went away may still be running on the models' workers: the process
    // does not exit under them (within the same drain time).
    let s = state.clone();
    let stopped = tokio::task::spawn_blocking(move || {
        s.models.iter_served().map(|m| m.queue.close_and_wait(deadline)).fold(true, |all, ended| all & ended)
    })
    .await;
    if !matches!(stopped, Ok(true)) {
        tracing::warn!("drain timeout passed with a model's worker still running a job");
    }
    drained
}
