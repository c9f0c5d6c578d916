//! Fuzzes the pipeline entry: arbitrary bytes through decoding (with limits), EXIF orientation,
//! L, resizing, then a stand-in model output through bin decoding, upsampling, the join with
//! full-resolution L and encoding. ONNX Runtime is not involved: the model is replaced by
//! fixed logits derived from the input, so every other stage runs on what the bytes decode to.
#![no_main]

use colorizer::engine::ModelOutput;
use colorizer::params::{JpegQuality, OutputFormat, Temperature};
use colorizer::pipeline::{finish, prepare_with, Limits, OutputOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_pixels: 2_000_000, max_side: 8192, max_decode_bytes: 64 << 20 };
    let Ok(prepared) = prepare_with(data, &limits, |w, h| (((h / 4).clamp(1, 64) * 8), ((w / 4).clamp(1, 64) * 8))) else {
        return;
    };
    let (h, w) = (prepared.model_height as usize / 4, prepared.model_width as usize / 4);
    let seed = data.first().copied().unwrap_or(0) as f32;
    let logits: Vec<f32> = (0..313 * h * w).map(|i| ((i as f32 * 0.37 + seed).sin()) * 8.0).collect();
    let format = match data.last().copied().unwrap_or(0) % 3 {
        0 => OutputFormat::Png,
        1 => OutputFormat::Jpeg,
        _ => OutputFormat::Webp,
    };
    let (temperature, quality) = (Temperature::new(0.38).expect("in range"), JpegQuality::new(80).expect("in range"));
    let output = ModelOutput::Logits { data: logits.into(), height: h, width: w };
    let out = finish(prepared, output, &OutputOptions { temperature, format, quality }).expect("encoding a decoded image never fails");
    assert!(!out.bytes.is_empty());
});
