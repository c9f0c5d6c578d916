//! The ONNX side: one pool of `ort` sessions per model behind a tokio `Semaphore` (a session
//! serves one request at a time, `Session::run` takes `&mut self`), the model contract detected
//! from the input and output shapes, and warm-up. How many requests a model takes on (pool +
//! queue) is `crate::admission::Slots`, held here per model.

mod blocking;
mod contract;
mod runtime;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::TensorRef;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

pub use contract::{Contract, InputSize, OutputKind};
pub use runtime::{init_runtime, RuntimeError};

use crate::admission::{Slot, Slots};
use crate::color::{AbPlanes, DEFAULT_TEMPERATURE};

/// Default short side of the inference image for dynamic models without metadata.
pub const DEFAULT_INFERENCE_SIZE: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model {name}: ONNX Runtime could not load it")]
    Load {
        name: String,
        #[source]
        source: ort::Error,
    },
    #[error("model {name} does not follow the model contract: {reason}")]
    Contract { name: String, reason: String },
    /// ONNX Runtime failed while running the model.
    #[error("ONNX Runtime failed to run the model")]
    Run(#[source] ort::Error),
    /// The input handed to the model does not have the size it was given for.
    #[error("bad model input: {0}")]
    Input(String),
    #[error("the model returned {got:?}, expected {expected}")]
    BadOutput { got: Vec<i64>, expected: String },
    #[error("the session pool is closed")]
    Closed,
}

/// Where a model's bytes came from.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub name: String,
    pub bytes: Arc<[u8]>,
    /// "embedded" or the file path.
    pub origin: String,
}

/// How sessions are built.
#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub pool_size: usize,
    pub threads: usize,
    /// Requests that may wait for a session beyond `pool_size`.
    pub queue: usize,
    /// Overrides the model's preferred inference size (dynamic models only).
    pub inference_size: Option<u32>,
}

/// What `/info` says of a model.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ModelInfo {
    /// Name used in `?model=`.
    pub name: String,
    /// sha256 of the ONNX file.
    pub sha256: String,
    /// Size of the ONNX file in bytes.
    pub file_bytes: usize,
    /// "embedded" or the path the model was loaded from.
    pub origin: String,
    /// `logits313` (decoded in the service, temperature applies) or `ab` (decoded by the model).
    pub output: OutputKind,
    /// Input size: fixed `[H, W]`, or null for dynamic.
    pub fixed_input: Option<[u32; 2]>,
    /// Short side the image is resized to for this model (dynamic models).
    pub inference_size: u32,
    /// Temperature used when a request gives none.
    pub default_temperature: f32,
    /// Where the default temperature comes from: "model metadata" or "service default"; "not
    /// used" for models that output ab (they ignore temperature).
    pub temperature_source: String,
    /// The model's own `colorizer.trained` metadata (false for untrained fixtures).
    pub trained: Option<bool>,
    /// The model's `colorizer.description` metadata.
    pub description: Option<String>,
    /// Whether the model takes colour hints (the `hints` part of `POST /colorize`).
    pub hints: bool,
    /// Sessions in the pool.
    pub pool_size: usize,
    /// Intra-op threads per session.
    pub threads: usize,
}

/// The raw output of one inference.
#[derive(Debug)]
pub enum ModelOutput {
    /// `[313, h, w]` logits.
    Logits { data: Vec<f32>, height: usize, width: usize },
    /// ab decoded by the model.
    Ab(AbPlanes),
}

impl ModelOutput {
    /// ab planes, decoding logits with temperature `t` (ignored for ab models).
    pub fn into_ab(self, t: f32) -> AbPlanes {
        match self {
            Self::Logits { data, height, width } => crate::color::annealed_mean(&data, height, width, t),
            Self::Ab(ab) => ab,
        }
    }
}

/// Pool and queue are full: the request is refused before any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overloaded;

/// One model with its pool of sessions.
pub struct Engine {
    info: ModelInfo,
    contract: Contract,
    sessions: Mutex<Vec<Session>>,
    available: Condvar,
    permits: Arc<Semaphore>,
    slots: Arc<Slots>,
    waiting: AtomicUsize,
    runs: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

/// One request waiting for a session; counted in `queue_depth` until dropped, however the wait
/// ends (a session, the deadline, or the request future dropped when its client goes away).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A session taken from the pool; goes back on drop, also when inference panics.
struct Lease<'a> {
    engine: &'a Engine,
    session: Option<Session>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            self.engine.sessions.lock().unwrap_or_else(|e| e.into_inner()).push(s);
            self.engine.available.notify_one();
        }
    }
}

impl Engine {
    /// Builds `pool_size` sessions of the model and checks its contract; refuses models that do
    /// not follow it, saying why.
    pub fn load(source: &ModelSource, opts: PoolOptions) -> Result<Self, EngineError> {
        let name = source.name.clone();
        let load_err = |source: ort::Error| EngineError::Load { name: name.clone(), source };
        let mut sessions = Vec::with_capacity(opts.pool_size);
        for _ in 0..opts.pool_size.max(1) {
            let session = runtime::session_builder(opts.threads).and_then(|mut b| b.commit_from_memory(&source.bytes)).map_err(load_err)?;
            sessions.push(session);
        }
        let first = &sessions[0];
        let contract = Contract::detect(first).map_err(|reason| EngineError::Contract { name: name.clone(), reason })?;
        let meta = |key: &str| first.metadata().ok().and_then(|m| m.custom(key));
        let (default_temperature, temperature_source) = match meta("colorizer.temperature").and_then(|t| t.trim().parse::<f32>().ok()) {
            _ if contract.output == OutputKind::Ab => (DEFAULT_TEMPERATURE, "not used"),
            Some(t) if crate::color::temperature_in_range(t as f64) => (t, "model metadata"),
            _ => (DEFAULT_TEMPERATURE, "service default"),
        };
        let model_size = meta("colorizer.input_size").and_then(|s| s.trim().parse::<u32>().ok()).filter(|s| (16..=2048).contains(s));
        let inference_size = match contract.input {
            InputSize::Fixed { height, width } => height.min(width),
            InputSize::Dynamic => round8(opts.inference_size.or(model_size).unwrap_or(DEFAULT_INFERENCE_SIZE)),
        };
        let info = ModelInfo {
            name: name.clone(),
            sha256: hex::encode(Sha256::digest(&source.bytes)),
            file_bytes: source.bytes.len(),
            origin: source.origin.clone(),
            output: contract.output,
            fixed_input: match contract.input {
                InputSize::Fixed { height, width } => Some([height, width]),
                InputSize::Dynamic => None,
            },
            inference_size,
            default_temperature,
            temperature_source: temperature_source.to_string(),
            trained: meta("colorizer.trained").map(|v| v.trim().eq_ignore_ascii_case("true")),
            description: meta("colorizer.description"),
            hints: contract.hints,
            pool_size: sessions.len(),
            threads: opts.threads,
        };
        let pool = sessions.len();
        Ok(Self {
            info,
            contract,
            sessions: Mutex::new(sessions),
            available: Condvar::new(),
            permits: Arc::new(Semaphore::new(pool)),
            slots: Slots::new(pool + opts.queue),
            waiting: AtomicUsize::new(0),
            runs: AtomicU64::new(0),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Model input size `(height, width)` for an image of `width` x `height`: the fixed size, or
    /// the short side scaled to the inference size (each side a multiple of 8, the long side at
    /// most 4x the inference size so that extreme aspect ratios stay affordable).
    pub fn input_size_for(&self, width: u32, height: u32) -> (u32, u32) {
        match self.contract.input {
            InputSize::Fixed { height, width } => (height, width),
            InputSize::Dynamic => {
                let target = self.info.inference_size as f64;
                let (short, long) = (width.min(height).max(1) as f64, width.max(height).max(1) as f64);
                let scale = (target / short).min(4.0 * target / long);
                let side = |v: u32| (((v as f64 * scale) / 8.0).round() as u32).max(1) * 8;
                (side(height), side(width))
            }
        }
    }

    /// Requests waiting for a free session now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Sessions held by requests now (running, or about to run).
    pub fn sessions_in_use(&self) -> usize {
        self.info.pool_size - self.permits.available_permits()
    }

    /// Inferences started since the model was loaded (warm-up included).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Acquire)
    }

    /// Takes a place among the requests this model takes on (pool + queue), or says the model
    /// is overloaded.
    pub fn admit(&self) -> Result<Slot, Overloaded> {
        self.slots.try_take().ok_or(Overloaded)
    }

    /// Whether every place (pool + queue) is taken now.
    pub fn is_full(&self) -> bool {
        self.slots.is_full()
    }

    /// Runs the model off the async runtime once a session is free. Waits at most until
    /// `deadline`; past it the inference is not started. Returns the output and the queue wait.
    /// `hints` is the `[3, height, width]` hint map (hint models only; none means no hints).
    /// `hold` keeps the session busy that long before running (test fault injection only).
    #[allow(clippy::too_many_arguments)]
    pub async fn infer(
        self: &Arc<Self>,
        input: Arc<Vec<f32>>,
        hints: Option<Arc<Vec<f32>>>,
        height: u32,
        width: u32,
        deadline: Instant,
        hold: Option<Duration>,
    ) -> Result<(ModelOutput, Duration), InferError> {
        let start = Instant::now();
        // Counted as waiting until a session is free, the deadline passes, or the request is
        // dropped (its client went away): then it never runs.
        let permit = {
            let _waiting = Waiting::enter(&self.waiting);
            tokio::time::timeout_at(deadline.into(), self.permits.clone().acquire_owned()).await
        };
        let permit = match permit {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => return Err(InferError::Engine(EngineError::Closed)),
            Err(_) => return Err(InferError::Deadline),
        };
        let waited = start.elapsed();
        let engine = self.clone();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            if let Some(hold) = hold {
                std::thread::sleep(hold);
            }
            engine.run_blocking(&input, hints.as_deref().map(Vec::as_slice), height, width)
        })
        .await;
        match out {
            Ok(r) => r.map(|o| (o, waited)).map_err(InferError::Engine),
            Err(join) => Err(InferError::Panicked(join)),
        }
    }

    /// Runs the model on one `[1, 1, height, width]` L image (and, for hint models, its
    /// `[1, 3, height, width]` hint map) on the calling thread, waiting for a free session if all
    /// are busy (the CLI's path; the server holds a permit first).
    pub fn run_blocking(&self, input: &[f32], hints: Option<&[f32]>, height: u32, width: u32) -> Result<ModelOutput, EngineError> {
        let (h, w) = (height as usize, width as usize);
        if input.len() != h * w {
            return Err(EngineError::Input(format!("input has {} values, expected {h}x{w}", input.len())));
        }
        if let Some(hints) = hints {
            if !self.contract.hints {
                return Err(EngineError::Input(format!("model {} takes no hints", self.info.name)));
            }
            if hints.len() != 3 * h * w {
                return Err(EngineError::Input(format!("hint map has {} values, expected 3x{h}x{w}", hints.len())));
            }
        }
        let mut lease = self.lease();
        self.run_on(lease.session.as_mut().expect("leased session"), input, hints, h, w)
    }

    /// One inference on a given session. A hint model without hints gets an all-zero hint map.
    fn run_on(&self, session: &mut Session, input: &[f32], hints: Option<&[f32]>, h: usize, w: usize) -> Result<ModelOutput, EngineError> {
        self.runs.fetch_add(1, Ordering::AcqRel);
        let run_err = EngineError::Run;
        let tensor = TensorRef::from_array_view(([1usize, 1, h, w], input)).map_err(run_err)?;
        let outputs = if self.contract.hints {
            let zeros;
            let map = match hints {
                Some(m) => m,
                None => {
                    zeros = vec![0.0f32; 3 * h * w];
                    &zeros
                }
            };
            let hint_tensor = TensorRef::from_array_view(([1usize, 3, h, w], map)).map_err(run_err)?;
            session.run(ort::inputs![tensor, hint_tensor]).map_err(run_err)?
        } else {
            session.run(ort::inputs![tensor]).map_err(run_err)?
        };
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(EngineError::Run)?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let channels = match self.contract.output {
            OutputKind::Logits313 => crate::color::NUM_BINS,
            OutputKind::Ab => 2,
        };
        if dims.len() != 4 || dims[0] != 1 || dims[1] != channels as i64 || dims[2] <= 0 || dims[3] <= 0 {
            return Err(EngineError::BadOutput { got: dims, expected: format!("[1, {channels}, h, w]") });
        }
        let (oh, ow) = (dims[2] as usize, dims[3] as usize);
        Ok(match self.contract.output {
            OutputKind::Logits313 => ModelOutput::Logits { data: data.to_vec(), height: oh, width: ow },
            OutputKind::Ab => {
                let (a, b) = data.split_at(oh * ow);
                ModelOutput::Ab(AbPlanes { width: ow, height: oh, a: a.to_vec(), b: b.to_vec() })
            }
        })
    }

    fn lease(&self) -> Lease<'_> {
        let mut pool = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(s) = pool.pop() {
                return Lease { engine: self, session: Some(s) };
            }
            pool = self.available.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Runs every session once on a mid-gray image of the inference size, so that the first
    /// request does not pay for ONNX Runtime's lazy initialisation.
    pub fn warm_up(&self) -> Result<(), EngineError> {
        let (h, w) = self.input_size_for(self.info.inference_size, self.info.inference_size);
        let input = vec![50.0f32; (h * w) as usize];
        // Hold each warmed session until all have run, so that every one runs once.
        let mut taken = Vec::new();
        for _ in 0..self.info.pool_size {
            let mut lease = self.lease();
            self.run_on(lease.session.as_mut().expect("leased session"), &input, None, h as usize, w as usize)?;
            taken.push(lease);
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The deadline passed while waiting for a session; no inference was started.
    #[error("the deadline passed while waiting for a session")]
    Deadline,
    #[error("inference failed")]
    Engine(#[source] EngineError),
    #[error("inference panicked")]
    Panicked(#[source] tokio::task::JoinError),
}

fn round8(v: u32) -> u32 {
    (v.div_ceil(8) * 8).max(8)
}
