//! Model output to bytes: ab upsampled and joined with the full-resolution L into 8-bit sRGB,
//! then encoded (PNG in parallel strips, JPEG through libjpeg-turbo, lossless WebP).

use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder};
use rayon::prelude::*;

use super::decode::PAR_MIN_PIXELS;
use super::{OutputOptions, PipelineError, Prepared};
use crate::color::{AbPlanes, AbUpsampler};
use crate::params::OutputFormat;

/// Upsamples ab to full size and joins it with full-resolution L into 8-bit RGB (or RGBA when
/// the input had alpha and the format keeps it); returns the pixels and the bytes per pixel.
pub(super) fn join(p: &Prepared, ab: &AbPlanes, format: OutputFormat) -> (Vec<u8>, usize) {
    let (w, h) = (p.width as usize, p.height as usize);
    let alpha = p.alpha.as_deref().filter(|_| format != OutputFormat::Jpeg);
    let channels = if alpha.is_some() { 4 } else { 3 };
    let up = AbUpsampler::new(ab, w, h);
    let mut out = vec![0u8; w * h * channels];
    let min_rows = PAR_MIN_PIXELS.div_ceil(w.max(1));
    // Each task turns a gray photo's rows into L in a row buffer of its own.
    out.par_chunks_mut(w * channels).enumerate().with_min_len(min_rows).for_each_init(
        || vec![0.0f32; w],
        |buf, (y, row)| {
            up.join_row(y, p.l.row(y * w, buf), row, channels);
            if let Some(alpha) = alpha {
                for (px, &a) in row.chunks_exact_mut(4).zip(&alpha[y * w..(y + 1) * w]) {
                    px[3] = a;
                }
            }
        },
    );
    (out, channels)
}

/// Encodes 8-bit RGB(A) pixels (PNG in strips over rayon's pool, `png::write`).
pub fn encode(pixels: &[u8], w: u32, h: u32, channels: usize, opts: &OutputOptions) -> Result<Vec<u8>, PipelineError> {
    let color = if channels == 4 { ExtendedColorType::Rgba8 } else { ExtendedColorType::Rgb8 };
    match opts.format {
        OutputFormat::Png => super::png::write(pixels, w, h, channels).map_err(|e| PipelineError::Encode(Box::new(e))),
        OutputFormat::Jpeg => {
            super::jpeg::encode(pixels, w, h, channels, opts.quality.get()).map_err(|e| PipelineError::Encode(Box::new(e)))
        }
        OutputFormat::Webp => {
            let mut buf = Vec::with_capacity(pixels.len() / 4 + 1024);
            WebPEncoder::new_lossless(&mut buf).write_image(pixels, w, h, color).map_err(|e| PipelineError::Encode(Box::new(e)))?;
            Ok(buf)
        }
    }
}
