//! Building and running the service from its settings: [`Application`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::admission::{BudgetChoice, MemoryBudget};
use crate::config::ServeArgs;
use crate::engine::init_runtime;
use crate::http::{self, metrics::Metrics, AppState};
use crate::models::Models;

/// Logs to stderr, as text or JSON lines, filtered by RUST_LOG (default info).
pub fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = if json { builder.json().flatten_event(true).try_init() } else { builder.try_init() };
}

/// The service, built and bound, not yet serving: `build`, then `port`, then `run_until_stopped`
/// (main) or `run_until` a shutdown of the caller's choosing (tests).
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<AppState>,
    router: axum::Router,
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every in-flight request finished within the drain timeout.
    Drained,
    /// The drain timeout passed with requests still running.
    DrainTimedOut,
}

impl Application {
    /// Loads ONNX Runtime and the models (refusing models that break the contract), chooses the
    /// memory budget and binds the port. `started` is when the process started (`startup_s`).
    pub async fn build(args: &ServeArgs, started: Instant) -> anyhow::Result<Self> {
        init_runtime(args.model.runtime.ort_lib.as_deref())?;
        let models = Models::load(&args.model, args.queue as usize).context("loading the models")?;
        log_models(&models);
        let budget = crate::admission::choose_budget(args.memory_budget);
        tracing::info!(memory_budget = budget.bytes, source = %budget.source, "memory budget {}", crate::admission::human_bytes(budget.bytes));
        let state = Arc::new(app_state(args, models, budget, started));
        state.publish_models();
        let listener =
            TcpListener::bind((args.host.as_str(), args.port)).await.with_context(|| format!("binding {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        tracing::info!(addr = %addr, default_model = state.models.default_name(), "listening");
        let router = http::router(state.clone());
        Ok(Self { listener, addr, state, router })
    }

    /// The port it listens on (the one picked when `--port 0`).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// Warms every model up off the async runtime, then marks the service ready.
    pub fn spawn_warm_up(&self) -> tokio::task::JoinHandle<()> {
        spawn_warm_up(self.state.clone())
    }

    /// Serves until `shutdown` resolves; then readiness goes 503 at once, no new connections are
    /// accepted, and in-flight requests finish within the drain timeout.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Stopped {
        if http::serve(self.listener, self.router, self.state, shutdown).await {
            Stopped::Drained
        } else {
            Stopped::DrainTimedOut
        }
    }

    /// Serves until SIGTERM / Ctrl-C and the drain that follows; an error when the drain timed
    /// out (the process then exits non-zero).
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        match self.run_until(http::shutdown_signal()).await {
            Stopped::Drained => Ok(()),
            Stopped::DrainTimedOut => anyhow::bail!("the drain timeout passed with requests still in flight"),
        }
    }
}

fn log_models(models: &Models) {
    for e in models.iter() {
        let i = e.info();
        tracing::info!(model = %i.name, sha256 = %i.sha256, output = ?i.output, origin = %i.origin, trained = ?i.trained, pool = i.pool_size, threads = i.threads, "model loaded");
        if i.trained == Some(false) {
            tracing::warn!(model = %i.name, "this model is marked untrained (colorizer.trained=false): its colours are not meaningful");
        }
    }
}

/// The shared state from the settings, with the loaded models and the chosen memory budget.
fn app_state(args: &ServeArgs, models: Models, budget: BudgetChoice, started: Instant) -> AppState {
    let list = |items: &[String]| items.iter().map(|k| k.trim().to_string()).filter(|k| !k.is_empty()).collect();
    AppState {
        models,
        limits: args.limits.decode_limits(),
        budget: MemoryBudget::new(budget.bytes),
        budget_source: budget.source,
        max_body_bytes: args.limits.max_body_bytes,
        queue: args.queue as usize,
        deadline: Duration::from_millis(args.deadline_ms),
        header_timeout: Duration::from_millis(args.header_timeout_ms),
        body_timeout: Duration::from_millis(args.body_timeout_ms),
        max_connections: args.max_connections as usize,
        drain_timeout: Duration::from_secs(args.drain_timeout_s),
        api_keys: list(&args.api_keys),
        cors_origins: list(&args.cors_origins),
        fault_injection: args.fault_injection,
        metrics: Metrics::new(),
        warmed: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        started,
        startup: OnceLock::new(),
    }
}

/// Warms every model up off the async runtime, then marks the service ready.
pub fn spawn_warm_up(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        crate::color::warm_up();
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
