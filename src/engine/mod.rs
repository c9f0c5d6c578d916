//! The ONNX side, one [`Engine`] per model: its pool of `ort` sessions (a session serves one
//! request at a time, `Session::run` takes `&mut self`; a `Lease` lends one and gives it back),
//! the model contract detected from the input and output shapes (`contract.rs`), what the model
//! says of itself (`info.rs`), one inference (`run.rs`), and warm-up.
//!
//! Admission is not here: how many requests a model takes on (pool + queue), the queue of its
//! requests and the workers that run them (one per session), and the queue depth are the model's
//! `crate::admission::ModelQueue`, held beside its engine in `crate::models::Models`. The server
//! runs each request as one job on a worker there (`pipeline::serve`), which runs the model here;
//! the command line runs it here directly.

mod contract;
mod info;
mod run;
mod runtime;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ort::session::Session;

pub use contract::OutputKind;
pub(crate) use contract::{Contract, InputSize};
pub use info::ModelInfo;
pub(crate) use runtime::init_runtime;

use crate::color::AbPlanes;

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
}

/// Where a model's bytes came from.
#[derive(Debug, Clone)]
pub(crate) struct ModelSource {
    pub(crate) name: String,
    pub(crate) bytes: Arc<[u8]>,
    /// "embedded" or the file path.
    pub(crate) origin: String,
}

/// How sessions are built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolOptions {
    pub(crate) pool_size: usize,
    pub(crate) threads: usize,
    /// Overrides the model's preferred inference size (dynamic models only).
    pub(crate) inference_size: Option<u32>,
}

/// The raw output of one inference.
#[derive(Debug)]
pub enum ModelOutput {
    /// `[313, h, w]` logits.
    Logits { data: Logits, height: usize, width: usize },
    /// ab decoded by the model.
    Ab(AbPlanes),
}

impl ModelOutput {
    /// ab planes, decoding logits with temperature `t` (ignored for ab models).
    pub fn into_ab(self, t: f32) -> AbPlanes {
        match self {
            Self::Logits { data, height, width } => crate::color::annealed_mean(data.as_slice(), height, width, t),
            Self::Ab(ab) => ab,
        }
    }
}

/// `[313, h, w]` logits: the tensor ONNX Runtime wrote them into, kept as it is (a 256-px photo's
/// logits are 1.3 MB, which a copy would move once more per request), or a plain buffer.
pub enum Logits {
    /// The output tensor of the run, already checked to be `[1, 313, h, w]` f32.
    Ort(ort::value::Tensor<f32>),
    /// Logits from anywhere else (tests, the fuzz target).
    Owned(Vec<f32>),
}

impl Logits {
    pub fn as_slice(&self) -> &[f32] {
        match self {
            Self::Ort(t) => t.extract_tensor().1,
            Self::Owned(v) => v,
        }
    }
}

impl From<Vec<f32>> for Logits {
    fn from(v: Vec<f32>) -> Self {
        Self::Owned(v)
    }
}

impl std::fmt::Debug for Logits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = if matches!(self, Self::Ort(_)) { "ort" } else { "owned" };
        write!(f, "Logits({kind}, {} values)", self.as_slice().len())
    }
}

/// What one inference reads: the `[height, width]` L plane at the model's input size and, for hint
/// models, the `[3, height, width]` hint map.
#[derive(Debug, Clone, Copy)]
pub struct ModelInput<'a> {
    pub l: &'a [f32],
    pub hints: Option<&'a [f32]>,
    pub height: u32,
    pub width: u32,
}

/// One model with its pool of sessions.
pub struct Engine {
    info: ModelInfo,
    contract: Contract,
    sessions: Mutex<Vec<Session>>,
    available: Condvar,
    runs: AtomicU64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
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
    pub(crate) fn load(source: &ModelSource, opts: PoolOptions) -> Result<Self, EngineError> {
        let name = source.name.clone();
        let load_err = |source: ort::Error| EngineError::Load { name: name.clone(), source };
        let mut sessions = Vec::with_capacity(opts.pool_size);
        for _ in 0..opts.pool_size.max(1) {
            let session = runtime::session_builder(opts.threads).and_then(|mut b| b.commit_from_memory(&source.bytes)).map_err(load_err)?;
            sessions.push(session);
        }
        let contract = Contract::detect(&sessions[0]).map_err(|reason| EngineError::Contract { name: name.clone(), reason })?;
        let output_scale =
            probe_output_scale(&mut sessions[0], &contract).map_err(|e| EngineError::Contract { name: name.clone(), reason: e })?;
        let info = ModelInfo::describe(source, &contract, &sessions[0], &opts, sessions.len(), output_scale);
        Ok(Self { info, contract, sessions: Mutex::new(sessions), available: Condvar::new(), runs: AtomicU64::new(0) })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// Model input size `(height, width)` for an image of `width` x `height`: the fixed size, or
    /// the short side scaled to the inference size, where a short side between the model's minimum
    /// and its inference size is kept as it is (each side a multiple of 16, the long side at most
    /// 4x the inference size so that extreme aspect ratios stay affordable). Sixteen, not eight: the
    /// U-Net models join encoder taps down to stride 32, and where a side is an odd multiple of 8
    /// the stride-16 and stride-8 maps no longer line up (on 300 landscapes the default model lost
    /// 0.4-0.6 dB at 136 and 152 px against 128, 144 and 160; models/README.md).
    pub fn input_size_for(&self, width: u32, height: u32) -> (u32, u32) {
        match self.contract.input {
            InputSize::Fixed { height, width } => (height, width),
            InputSize::Dynamic => {
                let target = self.info.inference_size as f64;
                let (short, long) = (width.min(height).max(1) as f64, width.max(height).max(1) as f64);
                // between the model's minimum and its inference size a photo keeps its own size
                let want = short.clamp(self.info.min_inference_size as f64, target);
                let scale = (want / short).min(4.0 * target / long);
                let side = |v: u32| (((v as f64 * scale) / 16.0).round() as u32).max(1) * 16;
                (side(height), side(width))
            }
        }
    }

    /// Bytes the model's buffers of one request take for a `[height, width]` input
    /// (`pipeline::model_bytes_per_pixel` of its output grid).
    pub fn model_bytes(&self, height: u32, width: u32) -> u64 {
        height as u64 * width as u64 * crate::pipeline::model_bytes_per_pixel(self.contract.output.channels(), self.info.output_scale)
    }

    /// Inferences started since the model was loaded (warm-up included).
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Acquire)
    }

    /// Runs the model on one `[1, 1, height, width]` L image (and, for hint models, its
    /// `[1, 3, height, width]` hint map) on the calling thread, waiting for a free session if all
    /// are busy (the CLI's path; the server has had its turn from the model's
    /// `admission::ModelQueue` first, so a session is free for it).
    pub fn run_blocking(&self, model_input: ModelInput<'_>) -> Result<ModelOutput, EngineError> {
        let ModelInput { l: input, hints, height, width } = model_input;
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
        run::run(session, &self.contract, input, hints, h, w)
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

/// The model's input side over its output side (4 for the 1/4-size grids, 2 for a 1/2-size one),
/// from one run on a small mid-gray image (its fixed size, else 64 x 64). A model whose output
/// grid is not the same fraction of both sides is refused, as is one that does not run.
fn probe_output_scale(session: &mut Session, contract: &Contract) -> Result<u32, String> {
    let (h, w) = match contract.input {
        InputSize::Fixed { height, width } => (height as usize, width as usize),
        InputSize::Dynamic => (64, 64),
    };
    let out =
        run::run(session, contract, &vec![50.0f32; h * w], None, h, w).map_err(|e| format!("it does not run on a {h}x{w} input: {e}"))?;
    let (oh, ow) = match &out {
        ModelOutput::Logits { height, width, .. } => (*height, *width),
        ModelOutput::Ab(ab) => (ab.height, ab.width),
    };
    let scale = h / oh.max(1);
    if scale == 0 || h != oh * scale || w != ow * scale {
        return Err(format!("its output grid {oh}x{ow} for a {h}x{w} input is not the input divided by one whole number on both sides"));
    }
    Ok(scale as u32)
}
