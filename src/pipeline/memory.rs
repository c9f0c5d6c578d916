//! What a request costs in memory, from its image's header, before any pixel is decoded.

use super::decode::Header;
use crate::params::OutputFormat;

/// Bytes the pipeline holds at once per pixel of an image, at the peak of its two heavy stages
/// (the larger wins; every buffer is the image's full size):
///
/// - decoding: the decoded pixels (twice when EXIF orientation turns them a quarter) and their
///   conversion to 8-bit gray+alpha or RGBA when the decoder gives another type; then, while the
///   converted (or decoded) pixels are still held, the L plane (f32) and the alpha channel (a
///   gray photo's L plane only for the resize to the model: its own bytes stand for it after);
/// - finishing: the join holds the L plane (a gray photo's bytes) and alpha and the output pixels
///   (RGB, or RGBA with alpha in PNG/WebP); then they are dropped and the encoder holds the output
///   pixels and its output and buffers: PNG at most the raw size (`png::write` compresses into one
///   buffer sized for stored blocks and touches only what it writes; counted as 1.5 times the raw
///   size, the bound of the image crate's encoder before it), JPEG 1.5 bytes, lossless WebP 6
///   (measured 4 to 5).
///
/// An upper bound, checked against measured peaks (RSS) in `docs/reliability/MEMORY.md`.
pub fn bytes_per_pixel(header: &Header, format: OutputFormat) -> f64 {
    use image::ColorType::*;
    let decoded = header.color.bytes_per_pixel() as f64 * if header.quarter_turn { 2.0 } else { 1.0 };
    let alpha = header.color.has_alpha();
    let converted = match header.color {
        L8 | La8 | Rgb8 | Rgba8 => 0.0,
        L16 | La16 => 2.0,
        _ => 4.0,
    };
    let held = if converted > 0.0 { converted } else { decoded };
    let l_alpha = 4.0 + alpha as u8 as f64;
    let decode = (decoded + converted).max(held + l_alpha);
    // What the join holds beside the output: a gray photo's bytes, else the L plane and alpha.
    let kept = if header.color == L8 { 1.0 } else { l_alpha };
    let out = if alpha && format != OutputFormat::Jpeg { 4.0 } else { 3.0 };
    let encoder = match format {
        OutputFormat::Png => out * 1.5,
        OutputFormat::Jpeg => 1.5,
        OutputFormat::Webp => 6.0,
    };
    decode.max(kept + out).max(out + encoder)
}

/// Bytes per pixel of the model's input held per request, for a model whose output has `channels`
/// values per cell on a grid `output_scale` times coarser than its input (4 for the 1/4-size
/// grids, 2 for a 1/2-size one): the input and the hint map (16 bytes), the output twice (ONNX
/// Runtime's output tensor and room for its arena's copy), the decoded ab and the resize buffers
/// (27 bytes in all). For the 1/4-size 313-bin models: 200 bytes.
pub fn model_bytes_per_pixel(channels: usize, output_scale: u32) -> u64 {
    let cells = output_scale as u64 * output_scale as u64;
    43 + (2 * 4 * channels as u64).div_ceil(cells)
}
/// What a request costs beside its image and model buffers: small buffers that do not grow with
/// the image, and the stacks and allocator arenas of the threads it wakes (measured: a 12 or
/// 48 MP request's peak is 4 to 5 MiB above its body and buffers, `docs/reliability/MEMORY.md`).
pub const REQUEST_OVERHEAD_BYTES: u64 = 8 << 20;

/// What the huge pages of large buffers (`crate::hugepages`) may add to an image's peak: each
/// buffer of 4 MiB and more is mapped in whole 2 MiB pages, so it may take up to 2 MiB beyond its
/// size, and the peak holds at most four of them (decoded pixels or L, output pixels, encoded
/// file, and the PNG or JPEG pieces).
pub fn huge_page_rounding(header: &Header) -> u64 {
    if header.pixels() * 3 >= crate::hugepages::HUGE_FROM as u64 {
        4 * (2 << 20)
    } else {
        0
    }
}

/// What one request costs in memory at its peak: its body, the pipeline's buffers for an image
/// of this header encoded as `format` (`bytes_per_pixel`, and their huge-page rounding), and the
/// model's buffers (`model_bytes`, `crate::engine::Engine::model_bytes` of its input size).
/// Admission reserves it before decoding.
pub fn memory_cost(header: &Header, format: OutputFormat, body_bytes: usize, model_bytes: u64) -> u64 {
    let image = (header.pixels() as f64 * bytes_per_pixel(header, format)).ceil() as u64 + huge_page_rounding(header);
    body_bytes as u64 + image + model_bytes + REQUEST_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_per_pixel_follow_the_stages() {
        let header = |color, quarter_turn| Header { format: image::ImageFormat::Png, width: 10, height: 10, color, quarter_turn };
        use image::ColorType::*;
        // Gray to PNG: RGB out and the PNG output (encoding is the peak; L is dropped by then).
        assert_eq!(bytes_per_pixel(&header(L8, false), OutputFormat::Png), 3.0 + 4.5);
        // Gray to JPEG: the L plane for the resize beside the gray bytes is the peak (the join
        // holds the gray bytes and RGB: 4).
        assert_eq!(bytes_per_pixel(&header(L8, false), OutputFormat::Jpeg), 1.0 + 4.0);
        // RGBA keeps alpha in PNG and WebP, not in JPEG.
        assert_eq!(bytes_per_pixel(&header(Rgba8, false), OutputFormat::Png), 4.0 + 6.0);
        assert_eq!(bytes_per_pixel(&header(Rgba8, false), OutputFormat::Jpeg), 4.0 + 5.0);
        // 16-bit RGBA: decoding is the peak (8 decoded + 4 converted).
        assert_eq!(bytes_per_pixel(&header(Rgba16, false), OutputFormat::Jpeg), 12.0);
        assert_eq!(bytes_per_pixel(&header(Rgba16, true), OutputFormat::Jpeg), 20.0);
        let h = Header { format: image::ImageFormat::Jpeg, width: 8000, height: 6000, color: L8, quarter_turn: false };
        let cost = memory_cost(&h, OutputFormat::Png, 3_000_000, 128 * 176 * 200);
        assert_eq!(cost, 3_000_000 + 360_000_000 + (8 << 20) + 128 * 176 * 200 + REQUEST_OVERHEAD_BYTES);
        // The model's part follows its output grid: 200 bytes a pixel at 1/4 size, 669 at 1/2.
        assert_eq!(model_bytes_per_pixel(313, 4), 200);
        assert_eq!(model_bytes_per_pixel(313, 2), 669);
        assert_eq!(model_bytes_per_pixel(2, 4), 44);
        // A small photo's buffers stay in the system allocator's pages.
        let small = Header { width: 256, height: 256, ..h };
        assert_eq!(huge_page_rounding(&small), 0);
    }
}
