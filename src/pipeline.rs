//! Bytes in, bytes out: decode (with limits), EXIF orientation, L, resize to the model size,
//! inference, bin decoding, bilinear upsampling of ab joined with the ORIGINAL full-resolution L,
//! encoding. The CLI, the HTTP handler and the benchmarks all go through these functions.

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fast_image_resize::images::{Image as FirImage, ImageRef as FirImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageEncoder, ImageError, ImageReader};
use rayon::prelude::*;

use crate::color::{srgb_to_l, AbPlanes, AbUpsampler};
use crate::config::OutputFormat;
use crate::engine::{Engine, EngineError, ModelOutput};
use crate::hints::{self, ColourHint};

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
    pub temperature: f32,
    pub format: OutputFormat,
    /// JPEG quality 1..100.
    pub quality: u8,
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
    Encode(#[source] ImageError),
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
    /// Full-resolution L, row-major.
    pub l: Vec<f32>,
    /// Alpha channel, when the input had one.
    pub alpha: Option<Vec<u8>>,
    /// L resized to the model's input size.
    pub model_input: Arc<Vec<f32>>,
    /// The `[3, model_height, model_width]` hint map, when the request has hints.
    pub model_hints: Option<Arc<Vec<f32>>>,
    pub model_height: u32,
    pub model_width: u32,
    pub timings: Timings,
}

impl Prepared {
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

/// Checks a temperature (0 < T <= 1).
pub fn check_temperature(t: f32) -> Result<f32, PipelineError> {
    if crate::color::temperature_in_range(t as f64) {
        Ok(t)
    } else {
        Err(PipelineError::BadParameter(format!("temperature must be in (0, 1], got {t}")))
    }
}

fn decode_error(e: ImageError) -> PipelineError {
    match e {
        ImageError::Limits(l) => PipelineError::TooLarge(format!("the image is over the decoding limits: {l}")),
        ImageError::Unsupported(u) => PipelineError::Unsupported(u.to_string()),
        other => PipelineError::NotAnImage(other.to_string()),
    }
}

/// What an image's header says, read without decoding its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub format: image::ImageFormat,
    /// Width and height as stored (before EXIF orientation).
    pub width: u32,
    pub height: u32,
    /// The decoder's pixel type.
    pub color: image::ColorType,
    /// EXIF orientation turns the image a quarter (orientation 5 to 8): a second pixel buffer.
    pub quarter_turn: bool,
}

impl Header {
    pub fn pixels(&self) -> u64 {
        self.width as u64 * self.height as u64
    }
}

/// A decoder for `bytes` (format sniffed from the content) once the header has passed the
/// limits; truncated JPEGs are refused here, before any pixel is decoded.
fn open<'a>(bytes: &'a [u8], limits: &Limits) -> Result<impl ImageDecoder + 'a, PipelineError> {
    if bytes.is_empty() {
        return Err(PipelineError::NotAnImage("the body is empty".into()));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| PipelineError::NotAnImage(e.to_string()))?;
    if reader.format().is_none() {
        return Err(PipelineError::NotAnImage("no known image signature (JPEG, PNG, WebP, GIF, BMP, TIFF)".into()));
    }
    let mut lim = image::Limits::default();
    lim.max_image_width = Some(limits.max_side);
    lim.max_image_height = Some(limits.max_side);
    lim.max_alloc = Some(limits.max_decode_bytes);
    reader.limits(lim);
    if reader.format() == Some(image::ImageFormat::Jpeg) && !jpeg_is_complete(bytes) {
        // The JPEG decoder fills a scan that is cut short with gray and reports success.
        return Err(PipelineError::Truncated("the JPEG data ends before its end-of-image marker (a partial upload or a cut file?)".into()));
    }
    let decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    let pixels = w as u64 * h as u64;
    if pixels > limits.max_pixels {
        return Err(PipelineError::TooLarge(format!("the image is {w}x{h} = {pixels} pixels; the limit is {}", limits.max_pixels)));
    }
    if w == 0 || h == 0 {
        return Err(PipelineError::NotAnImage(format!("the image is {w}x{h}")));
    }
    Ok(decoder)
}

/// Reads an image's header (format, size, pixel type, orientation) and checks it against the
/// limits, without decoding pixels: what admission needs to know what the image will cost.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<Header, PipelineError> {
    let format = image::guess_format(bytes).map_err(|e| PipelineError::NotAnImage(e.to_string()))?;
    let mut decoder = open(bytes, limits)?;
    let (width, height) = decoder.dimensions();
    use image::metadata::Orientation::*;
    let quarter_turn = matches!(decoder.orientation(), Ok(Rotate90 | Rotate270 | Rotate90FlipH | Rotate270FlipH));
    Ok(Header { format, width, height, color: decoder.color_type(), quarter_turn })
}

/// Decodes `bytes` (format sniffed from the content), applies EXIF orientation and the limits.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<DynamicImage, PipelineError> {
    let mut decoder = open(bytes, limits)?;
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Bytes the pipeline holds at once per pixel of an image, at the peak of its two heavy stages
/// (the larger wins; every buffer is the image's full size):
///
/// - decoding: the decoded pixels (twice when EXIF orientation turns them a quarter) and their
///   conversion to 8-bit gray+alpha or RGBA when the decoder gives another type; then, while the
///   converted (or decoded) pixels are still held, the L plane (f32) and the alpha channel;
/// - finishing: the L plane and alpha, the output pixels (RGB, or RGBA with alpha in PNG/WebP),
///   and the encoder's output and buffers: PNG at most the raw size plus half of it for the
///   output buffer's growth, JPEG 1.5 bytes, lossless WebP 6 (measured 4 to 5).
///
/// An upper bound, checked against measured peaks (RSS) in `docs/reliability/MEMORY.md`.
pub fn bytes_per_pixel(header: &Header, format: OutputFormat) -> f64 {
    use image::ColorType::*;
    let decoded = header.color.bytes_per_pixel() as f64 * if header.quarter_turn { 2.0 } else { 1.0 };
    let alpha = header.color.has_alpha();
    let converted = match header.color {
        L8 | La8 | Rgba8 => 0.0,
        L16 | La16 => 2.0,
        _ => 4.0,
    };
    let held = if converted > 0.0 { converted } else { decoded };
    let l_alpha = 4.0 + alpha as u8 as f64;
    let decode = (decoded + converted).max(held + l_alpha);
    let out = if alpha && format != OutputFormat::Jpeg { 4.0 } else { 3.0 };
    let encoder = match format {
        OutputFormat::Png => out * 1.5,
        OutputFormat::Jpeg => 1.5,
        OutputFormat::Webp => 6.0,
    };
    decode.max(l_alpha + out + encoder)
}

/// Bytes per pixel of the model's input held per request: the input, the `[313, h/4, w/4]`
/// logits twice (ONNX Runtime's output and its copy) and the decoded ab, rounded up.
pub const MODEL_BYTES_PER_PIXEL: u64 = 200;
/// Small buffers of a request that do not grow with the image.
pub const REQUEST_OVERHEAD_BYTES: u64 = 1 << 20;

/// What one request costs in memory at its peak: its body, the pipeline's buffers for an image
/// of this header encoded as `format` (`bytes_per_pixel`), and the model's buffers for an input
/// of `model_pixels`. Admission reserves it before decoding.
pub fn memory_cost(header: &Header, format: OutputFormat, body_bytes: usize, model_pixels: u64) -> u64 {
    let image = (header.pixels() as f64 * bytes_per_pixel(header, format)).ceil() as u64;
    body_bytes as u64 + image + model_pixels * MODEL_BYTES_PER_PIXEL + REQUEST_OVERHEAD_BYTES
}

/// Whether a JPEG has an end-of-image marker after its last scan. Markers are followed segment by
/// segment (APPn, such as an EXIF thumbnail with its own markers, are skipped by their length);
/// inside a scan's entropy-coded data, 0xFF is followed only by a stuffed zero, a restart marker
/// or fill, so the first other marker ends the scan. Bytes after the end-of-image marker are
/// allowed (some cameras append data).
pub fn jpeg_is_complete(b: &[u8]) -> bool {
    let n = b.len();
    if n < 4 || b[0] != 0xFF || b[1] != 0xD8 {
        return false;
    }
    let mut i = 2;
    loop {
        // The next marker: 0xFF, any fill 0xFF, then its code.
        match b[i..].iter().position(|&x| x == 0xFF) {
            Some(p) => i += p,
            None => return false,
        }
        while i < n && b[i] == 0xFF {
            i += 1;
        }
        if i >= n {
            return false;
        }
        let code = b[i];
        i += 1;
        match code {
            0xD9 => return true,
            // Standalone markers (and a stray stuffed zero), no length.
            0x00 | 0x01 | 0xD0..=0xD8 => continue,
            _ => {}
        }
        if i + 2 > n {
            return false;
        }
        let len = u16::from_be_bytes([b[i], b[i + 1]]) as usize;
        if len < 2 {
            return false;
        }
        i += len;
        if i > n {
            return false;
        }
        if code == 0xDA {
            // Entropy-coded data up to the next real marker.
            loop {
                match b[i..].iter().position(|&x| x == 0xFF) {
                    Some(p) => i += p,
                    None => return false,
                }
                if i + 1 >= n {
                    return false;
                }
                match b[i + 1] {
                    0x00 | 0xD0..=0xD7 => i += 2,
                    0xFF => i += 1,
                    _ => break,
                }
            }
        }
    }
}

/// Pixels below which a per-pixel stage runs on the calling thread instead of being split over
/// rayon's pool: handing a small image to other threads costs more wake-ups than it saves, and
/// under load every core is busy with other requests anyway.
const PAR_MIN_PIXELS: usize = 1 << 18;

/// Full-resolution L (0..100) and alpha of an image.
fn lightness(img: DynamicImage) -> (Vec<f32>, Option<Vec<u8>>) {
    let w = img.width() as usize;
    let has_alpha = img.color().has_alpha();
    match img {
        // Gray photos (most inputs): one byte per pixel, no alpha to split off.
        DynamicImage::ImageLuma8(gray) => (l_plane(gray.as_raw(), 1, w, |px| srgb_to_l([px[0]; 3])), None),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => {
            let la = img.into_luma_alpha8();
            (l_plane(la.as_raw(), 2, w, |px| srgb_to_l([px[0]; 3])), alpha_channel(la.as_raw(), 2, has_alpha))
        }
        _ => {
            let rgba = img.into_rgba8();
            (l_plane(rgba.as_raw(), 4, w, |px| srgb_to_l([px[0], px[1], px[2]])), alpha_channel(rgba.as_raw(), 4, has_alpha))
        }
    }
}

/// L of every pixel of interleaved 8-bit pixels (`stride` bytes each, rows of `w` pixels), in
/// chunks of 64 rows over rayon's pool; small images stay on the calling thread.
fn l_plane(pixels: &[u8], stride: usize, w: usize, to_l: impl Fn(&[u8]) -> f32 + Sync) -> Vec<f32> {
    let rows = 64usize;
    let min_chunks = PAR_MIN_PIXELS.div_ceil(w.max(1) * rows);
    let mut l = vec![0.0f32; pixels.len() / stride];
    pixels.par_chunks(stride * w * rows).with_min_len(min_chunks).zip(l.par_chunks_mut(w * rows)).for_each(|(src, dst)| {
        for (px, out) in src.chunks_exact(stride).zip(dst) {
            *out = to_l(px);
        }
    });
    l
}

/// The last byte of every `stride`-byte pixel, when the image has alpha that is not fully opaque
/// (GIF frames decode as RGBA even when opaque).
fn alpha_channel(pixels: &[u8], stride: usize, has_alpha: bool) -> Option<Vec<u8>> {
    if !has_alpha || pixels.chunks_exact(stride).all(|p| p[stride - 1] == 255) {
        return None;
    }
    Some(pixels.chunks_exact(stride).map(|p| p[stride - 1]).collect())
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
    check_hints_accepted(engine, hints)?;
    let mut prepared = prepare_with(bytes, limits, |w, h| engine.input_size_for(w, h))?;
    if !hints.is_empty() {
        let p = &prepared;
        let map = hints::hint_map(hints, p.width, p.height, p.model_width, p.model_height).map_err(PipelineError::BadParameter)?;
        prepared.model_hints = Some(Arc::new(map));
    }
    Ok(prepared)
}

/// `prepare` with the model input size `(height, width)` given by `model_size(width, height)`
/// (the fuzz target runs the pipeline without ONNX Runtime through this).
pub fn prepare_with(bytes: &[u8], limits: &Limits, model_size: impl Fn(u32, u32) -> (u32, u32)) -> Result<Prepared, PipelineError> {
    let t0 = Instant::now();
    let img = decode(bytes, limits)?;
    let (width, height) = (img.width(), img.height());
    let (l, alpha) = lightness(img);
    let t1 = Instant::now();
    let (model_height, model_width) = model_size(width, height);
    let model_input = resize_l(&l, width, height, model_width, model_height);
    let t2 = Instant::now();
    Ok(Prepared {
        width,
        height,
        l,
        alpha,
        model_input: Arc::new(model_input),
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
    let ab = output.into_ab(opts.temperature);
    let t1 = Instant::now();
    let (rgb, channels) = join(&prepared, &ab, opts.format);
    let t2 = Instant::now();
    let bytes = encode(&rgb, prepared.width, prepared.height, channels, opts)?;
    timings.bin_decode = t1 - t0;
    timings.upsample = t2 - t1;
    timings.encode = t2.elapsed();
    Ok(Colorized { bytes, format: opts.format, width: prepared.width, height: prepared.height, timings })
}

/// Upsamples ab to full size and joins it with full-resolution L into 8-bit RGB (or RGBA when
/// the input had alpha and the format keeps it); returns the pixels and the bytes per pixel.
fn join(p: &Prepared, ab: &AbPlanes, format: OutputFormat) -> (Vec<u8>, usize) {
    let (w, h) = (p.width as usize, p.height as usize);
    let alpha = p.alpha.as_deref().filter(|_| format != OutputFormat::Jpeg);
    let channels = if alpha.is_some() { 4 } else { 3 };
    let up = AbUpsampler::new(ab, w, h);
    let mut out = vec![0u8; w * h * channels];
    let min_rows = PAR_MIN_PIXELS.div_ceil(w.max(1));
    out.par_chunks_mut(w * channels).enumerate().with_min_len(min_rows).for_each(|(y, row)| {
        up.join_row(y, &p.l[y * w..(y + 1) * w], row, channels);
        if let Some(alpha) = alpha {
            for (px, &a) in row.chunks_exact_mut(4).zip(&alpha[y * w..(y + 1) * w]) {
                px[3] = a;
            }
        }
    });
    (out, channels)
}

/// Encodes 8-bit RGB(A) pixels.
pub fn encode(pixels: &[u8], w: u32, h: u32, channels: usize, opts: &OutputOptions) -> Result<Vec<u8>, PipelineError> {
    let color = if channels == 4 { ExtendedColorType::Rgba8 } else { ExtendedColorType::Rgb8 };
    let mut buf = Vec::with_capacity(pixels.len() / 4 + 1024);
    let err = PipelineError::Encode;
    match opts.format {
        OutputFormat::Png => PngEncoder::new_with_quality(&mut buf, CompressionType::Fast, PngFilter::Adaptive)
            .write_image(pixels, w, h, color)
            .map_err(err)?,
        OutputFormat::Jpeg => {
            JpegEncoder::new_with_quality(&mut buf, opts.quality.clamp(1, 100)).write_image(pixels, w, h, color).map_err(err)?
        }
        OutputFormat::Webp => WebPEncoder::new_lossless(&mut buf).write_image(pixels, w, h, color).map_err(err)?,
    }
    Ok(buf)
}

/// The whole pipeline on the calling thread (CLI, benchmarks): prepare, infer, finish.
pub fn colorize(
    engine: &Engine,
    bytes: &[u8],
    limits: &Limits,
    opts: &OutputOptions,
    hints: &[ColourHint],
) -> Result<Colorized, PipelineError> {
    check_temperature(opts.temperature)?;
    let prepared = prepare(bytes, limits, engine, hints)?;
    let t0 = Instant::now();
    let output = engine.run_blocking(
        &prepared.model_input,
        prepared.model_hints.as_deref().map(Vec::as_slice),
        prepared.model_height,
        prepared.model_width,
    )?;
    let infer = t0.elapsed();
    let mut done = finish(prepared, output, opts)?;
    done.timings.infer = infer;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(fmt: image::ImageFormat, w: u32, h: u32) -> Vec<u8> {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 5) as u8, ((x ^ y) * 7) as u8])));
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, fmt).unwrap();
        buf.into_inner()
    }

    #[test]
    fn bytes_per_pixel_follow_the_stages() {
        let header = |color, quarter_turn| Header { format: image::ImageFormat::Png, width: 10, height: 10, color, quarter_turn };
        use image::ColorType::*;
        // Gray to PNG: L, RGB out, PNG output (finishing is the peak).
        assert_eq!(bytes_per_pixel(&header(L8, false), OutputFormat::Png), 4.0 + 3.0 + 4.5);
        assert_eq!(bytes_per_pixel(&header(L8, false), OutputFormat::Jpeg), 4.0 + 3.0 + 1.5);
        // RGBA keeps alpha in PNG and WebP, not in JPEG.
        assert_eq!(bytes_per_pixel(&header(Rgba8, false), OutputFormat::Png), 5.0 + 4.0 + 6.0);
        assert_eq!(bytes_per_pixel(&header(Rgba8, false), OutputFormat::Jpeg), 5.0 + 3.0 + 1.5);
        // 16-bit RGBA: decoding is the peak (8 decoded + 4 converted).
        assert_eq!(bytes_per_pixel(&header(Rgba16, false), OutputFormat::Jpeg), 12.0);
        assert_eq!(bytes_per_pixel(&header(Rgba16, true), OutputFormat::Jpeg), 20.0);
        let h = Header { format: image::ImageFormat::Jpeg, width: 8000, height: 6000, color: L8, quarter_turn: false };
        let cost = memory_cost(&h, OutputFormat::Png, 3_000_000, 128 * 176);
        assert_eq!(cost, 3_000_000 + 552_000_000 + 128 * 176 * MODEL_BYTES_PER_PIXEL + REQUEST_OVERHEAD_BYTES);
    }

    #[test]
    fn a_jpeg_is_complete_only_with_its_end_marker() {
        let jpeg = encoded(image::ImageFormat::Jpeg, 120, 80);
        assert!(jpeg_is_complete(&jpeg));
        assert!(jpeg_is_complete(&[&jpeg[..], b"trailing bytes \xff\xd8"].concat()));
        for cut in [3, 100, 500, jpeg.len() / 2, jpeg.len() - 2, jpeg.len() - 1] {
            assert!(!jpeg_is_complete(&jpeg[..cut]), "cut at {cut} of {}", jpeg.len());
        }
        // The end marker of an EXIF thumbnail (inside APP1) does not count.
        let thumb = encoded(image::ImageFormat::Jpeg, 16, 16);
        let mut app1 = vec![0xFF, 0xE1];
        app1.extend_from_slice(&((thumb.len() + 8) as u16).to_be_bytes());
        app1.extend_from_slice(b"Exif\0\0");
        app1.extend_from_slice(&thumb);
        let with_thumb = [&jpeg[..2], &app1[..], &jpeg[2..]].concat();
        assert!(jpeg_is_complete(&with_thumb));
        assert!(!jpeg_is_complete(&with_thumb[..app1.len() + 300]));
    }

    /// What the decoders do with a cut file: JPEG needs our check (zune-jpeg fills the rest with
    /// gray and reports success); PNG, WebP, GIF, BMP and TIFF fail by themselves. A file cut only
    /// in its last bytes may still decode when no pixel is lost (PNG's IEND, GIF's trailer, WebP's
    /// padding byte): then it must decode to exactly the whole file's pixels.
    #[test]
    fn truncated_images_are_refused() {
        use image::ImageFormat::*;
        for fmt in [Jpeg, Png, WebP, Gif, Bmp, Tiff] {
            let full = encoded(fmt, 300, 200);
            let n = full.len();
            let whole = decode(&full, &Limits::default()).unwrap_or_else(|e| panic!("{fmt:?} whole: {e}"));
            for cut in [20, 500, n / 3, n / 2, n * 9 / 10, n - 16] {
                match decode(&full[..cut], &Limits::default()) {
                    Err(PipelineError::Truncated(_) | PipelineError::NotAnImage(_)) => {}
                    other => panic!("{fmt:?} cut at {cut} of {n}: {:?}", other.map(|i| (i.width(), i.height()))),
                }
            }
            for cut in n - 15..n {
                if let Ok(img) = decode(&full[..cut], &Limits::default()) {
                    assert!(img.as_bytes() == whole.as_bytes(), "{fmt:?} cut at {cut} of {n} decodes to other pixels");
                }
            }
            let cut = decode(&full[..n / 2], &Limits::default());
            if fmt == Jpeg {
                assert!(matches!(cut, Err(PipelineError::Truncated(_))));
            }
        }
    }
}
