//! Bytes in, bytes out: decode (with limits), EXIF orientation, L, resize to the model size,
//! inference, bin decoding, bilinear upsampling of ab joined with the ORIGINAL full-resolution L,
//! encoding. The CLI, the HTTP handler and the benchmarks all go through these functions.

mod decode;
mod jpeg;
mod memory;
mod output;
mod png;
mod serve;
#[cfg(test)]
mod speed;

use std::time::{Duration, Instant};

use fast_image_resize::images::{Image as FirImage, ImageRef as FirImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

pub use decode::{decode, jpeg_is_complete, open, probe, Header, Lightness, Opened};
pub use memory::{bytes_per_pixel, memory_cost, model_bytes_per_pixel, REQUEST_OVERHEAD_BYTES};
pub use output::encode;
pub(crate) use serve::{serve, ServeError};

use crate::engine::{Engine, EngineError, ModelOutput};
use crate::hints::{self, ColourHint};
use crate::params::{JpegQuality, OutputFormat, Temperature};

/// Limits applied before and during decoding.
#[derive(Debug, Clone, Copy, serde::Serialize, utoipa::ToSchema)]
pub struct Limits {
    /// Largest image in pixels (width x height, read from the header before decoding).
    pub max_pixels: u64,
    /// Largest side in pixels.
    pub max_side: u32,
    /// Most bytes a decoder may allocate.
    pub max_decode_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_pixels: 50_000_000, max_side: 32_768, max_decode_bytes: 512 * 1024 * 1024 }
    }
}

/// Output settings of one request.
#[derive(Debug, Clone, Copy)]
pub struct OutputOptions {
    pub temperature: Temperature,
    pub format: OutputFormat,
    /// JPEG quality (JPEG only).
    pub quality: JpegQuality,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The bytes are not an image in a format we read (400).
    #[error("the body is not a decodable image: {0}")]
    NotAnImage(String),
    /// The image ends before its data does: a partial upload or a cut file (400; the CLI counts
    /// it as failed, not skipped).
    #[error("the image is truncated: {0}")]
    Truncated(String),
    /// A recognised format whose variant we cannot decode (415).
    #[error("unsupported image format: {0}")]
    Unsupported(String),
    /// Over the pixel, side or allocation limits (422).
    #[error("{0}")]
    TooLarge(String),
    /// A request parameter is out of range (422).
    #[error("{0}")]
    BadParameter(String),
    /// The model failed (500).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The encoder failed (500).
    #[error("could not encode the result")]
    Encode(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Time spent in each stage of one image.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    pub decode: Duration,
    pub resize: Duration,
    pub queue: Duration,
    pub infer: Duration,
    pub bin_decode: Duration,
    pub upsample: Duration,
    pub encode: Duration,
}

impl Timings {
    /// Every stage with its name, in pipeline order: the one list behind `Server-Timing` and the
    /// `stage` label of the metrics (where the queue wait has its own histogram).
    pub fn stages(&self) -> [(&'static str, Duration); 7] {
        [
            ("decode", self.decode),
            ("resize", self.resize),
            ("queue", self.queue),
            ("infer", self.infer),
            ("bin_decode", self.bin_decode),
            ("upsample", self.upsample),
            ("encode", self.encode),
        ]
    }
}

/// A decoded image ready for the model: its full-resolution L and the model-size L.
pub struct Prepared {
    pub width: u32,
    pub height: u32,
    /// Full-resolution lightness (a gray photo's own bytes, else L).
    pub l: Lightness,
    /// Alpha channel, when the input had one.
    pub alpha: Option<Vec<u8>>,
    /// L resized to the model's input size.
    pub model_input: Vec<f32>,
    /// The `[3, model_height, model_width]` hint map, when the request has hints.
    pub model_hints: Option<Vec<f32>>,
    pub model_height: u32,
    pub model_width: u32,
    pub timings: Timings,
}

impl Prepared {
    /// What the model reads for this photo.
    pub fn model_input(&self) -> crate::engine::ModelInput<'_> {
        crate::engine::ModelInput {
            l: &self.model_input,
            hints: self.model_hints.as_deref(),
            height: self.model_height,
            width: self.model_width,
        }
    }

    pub fn megapixels(&self) -> f64 {
        self.width as f64 * self.height as f64 / 1e6
    }
}

/// An encoded result.
pub struct Colorized {
    pub bytes: Vec<u8>,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub timings: Timings,
}

impl Colorized {
    pub fn megapixels(&self) -> f64 {
        self.width as f64 * self.height as f64 / 1e6
    }
}

/// Resizes an L plane with an antialiased bilinear filter.
fn resize_l(l: &[f32], w: u32, h: u32, tw: u32, th: u32) -> Vec<f32> {
    if (w, h) == (tw, th) {
        return l.to_vec();
    }
    let src = FirImageRef::new(w, h, bytemuck::cast_slice(l), PixelType::F32).expect("L plane has w*h values");
    let mut dst = FirImage::new(tw, th, PixelType::F32);
    Resizer::new()
        .resize(&src, &mut dst, &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)))
        .expect("same pixel type");
    bytemuck::pod_collect_to_vec(dst.buffer())
}

/// Refuses hints for a model without a hint input (before any decoding).
pub fn check_hints_accepted(engine: &Engine, hints: &[ColourHint]) -> Result<(), PipelineError> {
    if hints.is_empty() || engine.info().hints {
        Ok(())
    } else {
        Err(PipelineError::BadParameter(format!("model {:?} takes no hints; use a model whose /info says hints: true", engine.name())))
    }
}

/// Stage 1: decode, orientation, L, resize to the model's input size, and the hint map (hints
/// are in the input's pixel coordinates after EXIF orientation).
pub fn prepare(bytes: &[u8], limits: &Limits, engine: &Engine, hints: &[ColourHint]) -> Result<Prepared, PipelineError> {
    let t0 = Instant::now();
    prepare_opened(open(bytes, limits)?, t0, engine, hints)
}

/// `prepare` of an image whose header has been read (at `t0`, the start of its decode time).
pub fn prepare_opened(opened: Opened<'_>, t0: Instant, engine: &Engine, hints: &[ColourHint]) -> Result<Prepared, PipelineError> {
    check_hints_accepted(engine, hints)?;
    let mut prepared = prepare_from(opened, t0, |w, h| engine.input_size_for(w, h))?;
    if !hints.is_empty() {
        let p = &prepared;
        let map = hints::hint_map(hints, p.width, p.height, p.model_width, p.model_height).map_err(PipelineError::BadParameter)?;
        prepared.model_hints = Some(map);
    }
    Ok(prepared)
}

/// `prepare` with the model input size `(height, width)` given by `model_size(width, height)`
/// (the fuzz target runs the pipeline without ONNX Runtime through this).
pub fn prepare_with(bytes: &[u8], limits: &Limits, model_size: impl Fn(u32, u32) -> (u32, u32)) -> Result<Prepared, PipelineError> {
    let t0 = Instant::now();
    prepare_from(open(bytes, limits)?, t0, model_size)
}

fn prepare_from(opened: Opened<'_>, t0: Instant, model_size: impl Fn(u32, u32) -> (u32, u32)) -> Result<Prepared, PipelineError> {
    let img = opened.decode()?;
    let (width, height) = (img.width(), img.height());
    let (l, alpha) = decode::lightness(img);
    let t1 = Instant::now();
    let (model_height, model_width) = model_size(width, height);
    // A gray photo's L plane lives only for the resize.
    let model_input = resize_l(&l.plane(width as usize), width, height, model_width, model_height);
    let t2 = Instant::now();
    Ok(Prepared {
        width,
        height,
        l,
        alpha,
        model_input,
        model_hints: None,
        model_height,
        model_width,
        timings: Timings { decode: t1 - t0, resize: t2 - t1, ..Default::default() },
    })
}

/// Stage 3: bin decoding, upsampling joined with full-resolution L, encoding.
pub fn finish(prepared: Prepared, output: ModelOutput, opts: &OutputOptions) -> Result<Colorized, PipelineError> {
    let mut timings = prepared.timings;
    let t0 = Instant::now();
    let ab = output.into_ab(opts.temperature.get());
    let t1 = Instant::now();
    let (rgb, channels) = output::join(&prepared, &ab, opts.format);
    let (width, height) = (prepared.width, prepared.height);
    // The L plane (4 bytes a pixel) and alpha are done with: not held while encoding.
    drop(prepared);
    let t2 = Instant::now();
    let bytes = encode(&rgb, width, height, channels, opts)?;
    timings.bin_decode = t1 - t0;
    timings.upsample = t2 - t1;
    timings.encode = t2.elapsed();
    Ok(Colorized { bytes, format: opts.format, width, height, timings })
}

/// The whole pipeline on the calling thread (CLI, benchmarks): prepare, infer, finish.
pub fn colorize(
    engine: &Engine,
    bytes: &[u8],
    limits: &Limits,
    opts: &OutputOptions,
    hints: &[ColourHint],
) -> Result<Colorized, PipelineError> {
    let prepared = prepare(bytes, limits, engine, hints)?;
    let t0 = Instant::now();
    let output = engine.run_blocking(prepared.model_input())?;
    let infer = t0.elapsed();
    let mut done = finish(prepared, output, opts)?;
    done.timings.infer = infer;
    Ok(done)
}
