//! Building and running the service from its settings.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::ServeArgs;
use crate::engine::init_runtime;
use crate::http::{self, metrics::Metrics, AppState, ServerHandle};
use crate::models::Models;

/// Logs to stderr, as text or JSON lines, filtered by RUST_LOG (default info).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}

/// A bound, not yet serving, service.
pub struct Service {
    pub listener: TcpListener,
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub app: axum::Router,
}

/// Loads ONNX Runtime and the models (refusing models that break the contract), binds the port.
pub async fn build(args: &ServeArgs, started: Instant) -> anyhow::Result<Service> {
    init_runtime(args.model.ort_lib.as_deref())?;
    let models = Models::load(&args.model, args.queue as usize).context("loading the models")?;
    for e in models.iter() {
        let i = e.info();
        tracing::info!(model = %i.name, sha256 = %i.sha256, output = ?i.output, origin = %i.origin, trained = ?i.trained, pool = i.pool_size, threads = i.threads, "model loaded");
        if i.trained == Some(false) {
            tracing::warn!(model = %i.name, "this model is marked untrained (colorizer.trained=false): its colours are not meaningful");
        }
    }
    let budget = crate::admission::choose_budget(args.memory_budget);
    tracing::info!(
        memory_budget = budget.bytes,
        source = %budget.source,
        "memory budget {}",
        crate::admission::human_bytes(budget.bytes)
    );
    let state = Arc::new(AppState {
        models,
        limits: args.limits.decode_limits(),
        budget: crate::admission::MemoryBudget::new(budget.bytes),
        budget_source: budget.source,
        max_body_bytes: args.limits.max_body_bytes,
        queue: args.queue as usize,
        deadline: Duration::from_millis(args.deadline_ms),
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        body_timeout: Duration::from_millis(args.body_timeout_ms),
        max_connections: args.max_connections as usize,
        drain_timeout: Duration::from_secs(args.drain_timeout_s),
        api_keys: args.api_keys.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect(),
        cors_origins: args.cors_origins.iter().map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect(),
        fault_injection: args.fault_injection,
        metrics: Metrics::new(),
        warmed: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        started,
        startup: OnceLock::new(),
    });
    state.publish_models();
    let listener =
        TcpListener::bind((args.host.as_str(), args.port)).await.with_context(|| format!("binding {}:{}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    let app = http::router(state.clone());
    Ok(Service { listener, addr, state, app })
}

/// Warms every model up off the async runtime, then marks the service ready.
pub fn spawn_warm_up(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        for e in state.models.iter() {
            if let Err(err) = e.warm_up() {
                tracing::error!(model = e.name(), error = %err, "warm-up failed; the service stays not ready");
                return;
            }
        }
        state.set_ready();
        tracing::info!(startup_ms = state.started.elapsed().as_millis() as u64, "ready");
    })
}

/// Runs the service until SIGTERM / Ctrl-C and the drain that follows.
pub async fn run(args: ServeArgs, started: Instant) -> anyhow::Result<ServerHandle> {
    let svc = build(&args, started).await?;
    tracing::info!(addr = %svc.addr, default_model = svc.state.models.default_name(), "listening");
    spawn_warm_up(svc.state.clone());
    Ok(http::serve(svc.listener, svc.app, svc.state, http::shutdown_signal()).await)
}
