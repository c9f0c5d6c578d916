//! What a model says of itself (`/info`): its hash, contract, inference size and default
//! temperature, read from its `colorizer.*` metadata.

use ort::session::Session;
use sha2::{Digest, Sha256};

use super::{Contract, InputSize, ModelSource, OutputKind, PoolOptions};
use crate::params::Temperature;

/// Default short side of the inference image for dynamic models without metadata.
pub(crate) const DEFAULT_INFERENCE_SIZE: u32 = 256;

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
    /// Short side the image is resized to for this model (dynamic models): the largest it runs at.
    pub inference_size: u32,
    /// Dynamic models: a photo whose short side lies between this and `inference_size` runs at its
    /// own size (each side rounded to a multiple of 16), a smaller one is enlarged to this. From the model's
    /// `colorizer.min_input_size` metadata (the scale it was trained at); without it, equal to
    /// `inference_size` (every photo is resized to that).
    pub min_inference_size: u32,
    /// Temperature used when a request gives none.
    #[schema(value_type = f32)]
    pub default_temperature: Temperature,
    /// Where the default temperature comes from: "model metadata" or "service default"; "not
    /// used" for models that output ab (they ignore temperature).
    pub temperature_source: String,
    /// The model's own `colorizer.trained` metadata (false for untrained fixtures).
    pub trained: Option<bool>,
    /// The model's `colorizer.description` metadata.
    pub description: Option<String>,
    /// The model's input side over its output side: its colours come on a grid this many times
    /// coarser than its input (4 for 1/4-size outputs, 2 for 1/2-size), upsampled to the photo.
    pub output_scale: u32,
    /// Whether the model takes colour hints (the `hints` part of `POST /colorize`).
    pub hints: bool,
    /// Sessions in the pool.
    pub pool_size: usize,
    /// Intra-op threads per session.
    pub threads: usize,
}

impl ModelInfo {
    /// The description of a model loaded from `source` into `pool_size` sessions like `session`.
    pub(super) fn describe(
        source: &ModelSource,
        contract: &Contract,
        session: &Session,
        opts: &PoolOptions,
        pool_size: usize,
        output_scale: u32,
    ) -> Self {
        let meta = |key: &str| session.metadata().ok().and_then(|m| m.custom(key));
        let (default_temperature, temperature_source) = match meta("colorizer.temperature").and_then(|t| t.parse::<Temperature>().ok()) {
            _ if contract.output == OutputKind::Ab => (Temperature::DEFAULT, "not used"),
            Some(t) => (t, "model metadata"),
            None => (Temperature::DEFAULT, "service default"),
        };
        let size_meta = |key: &str| meta(key).and_then(|s| s.trim().parse::<u32>().ok()).filter(|s| (16..=2048).contains(s));
        let model_size = size_meta("colorizer.input_size");
        let inference_size = match contract.input {
            InputSize::Fixed { height, width } => height.min(width),
            InputSize::Dynamic => round16(opts.inference_size.or(model_size).unwrap_or(DEFAULT_INFERENCE_SIZE)),
        };
        let min_inference_size = match contract.input {
            InputSize::Fixed { .. } => inference_size,
            InputSize::Dynamic => size_meta("colorizer.min_input_size").map_or(inference_size, |m| round16(m).min(inference_size)),
        };
        ModelInfo {
            name: source.name.clone(),
            sha256: hex::encode(Sha256::digest(&source.bytes)),
            file_bytes: source.bytes.len(),
            origin: source.origin.clone(),
            output: contract.output,
            fixed_input: match contract.input {
                InputSize::Fixed { height, width } => Some([height, width]),
                InputSize::Dynamic => None,
            },
            inference_size,
            min_inference_size,
            default_temperature,
            temperature_source: temperature_source.to_string(),
            trained: meta("colorizer.trained").map(|v| v.trim().eq_ignore_ascii_case("true")),
            description: meta("colorizer.description"),
            output_scale,
            hints: contract.hints,
            pool_size,
            threads: opts.threads,
        }
    }
}

fn round16(v: u32) -> u32 {
    (v.div_ceil(16) * 16).max(16)
}
