//! `cargo test --release --lib small_photo_stages -- --ignored --nocapture`: the service's work
//! beside the model for one small photo, stage by stage, on one thread (what decides 256 px at
//! c = 8 against raw ONNX Runtime, `bench/REPORT.md`). `STAGES_PHOTO` names a JPEG (default: a
//! synthetic 256 x 256 gray photo) and `STAGES_LOGITS` a raw little-endian f32 `[313, h, w]`
//! file of the model's output for it (default: `color::peaked_logits` of a 40 x 40 grid);
//! `STAGES_N` the photos timed (default 400: medians of 400).

use std::time::Instant;

use super::*;
use crate::color::{bilinear_at, NUM_BINS};
use crate::engine::Logits;

fn synthetic_photo() -> Vec<u8> {
    let (w, h) = (256usize, 256usize);
    let gray: Vec<u8> = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            (128.0 + 80.0 * (x * 0.05).sin() * (y * 0.031).cos() + ((i * 7919 % 23) as f32 - 11.0)) as u8
        })
        .collect();
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(&gray, w as u32, h as u32, image::ExtendedColorType::L8)
        .unwrap();
    out
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
#[ignore]
fn small_photo_stages() {
    let photo = std::env::var_os("STAGES_PHOTO").map(|p| std::fs::read(p).expect("STAGES_PHOTO")).unwrap_or_else(synthetic_photo);
    let logits: Vec<f32> = match std::env::var_os("STAGES_LOGITS") {
        Some(p) => std::fs::read(p).expect("STAGES_LOGITS").chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
        None => crate::color::peaked_logits(40, 40),
    };
    let side = ((logits.len() / NUM_BINS) as f64).sqrt() as usize;
    assert_eq!(side * side * NUM_BINS, logits.len(), "square logits only");
    let limits = Limits::default();
    let opts = OutputOptions { temperature: Temperature::DEFAULT, format: OutputFormat::Png, quality: JpegQuality::DEFAULT };
    let n: usize = std::env::var("STAGES_N").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let mut times: [Vec<f64>; 5] = Default::default();
    let mut bytes = 0;
    for i in 0..n + 20 {
        let t0 = Instant::now();
        let p = prepare_with(&photo, &limits, |_, _| ((side * 4) as u32, (side * 4) as u32)).unwrap();
        let t1 = Instant::now();
        let out = ModelOutput::Logits { data: Logits::Owned(logits.clone()), height: side, width: side };
        let t2 = Instant::now();
        let ab = out.into_ab(opts.temperature.get());
        let t3 = Instant::now();
        let (rgb, channels) = output::join(&p, &ab, opts.format);
        let t4 = Instant::now();
        let png = encode(&rgb, p.width, p.height, channels, &opts).unwrap();
        let t5 = Instant::now();
        bytes = png.len();
        if i >= 20 {
            for (v, d) in times.iter_mut().zip([t1 - t0, t3 - t2, t4 - t3, t5 - t4, (t5 - t0) - (t2 - t1)]) {
                v.push(d.as_secs_f64() * 1e3);
            }
        }
    }
    let p = prepare_with(&photo, &limits, |_, _| ((side * 4) as u32, (side * 4) as u32)).unwrap();
    let ab = ModelOutput::Logits { data: Logits::Owned(logits.clone()), height: side, width: side }.into_ab(opts.temperature.get());
    // How many of the photo's pixels fall outside the sRGB gamut (the join maps those one by one).
    let (cols, rows, conv) = (
        crate::color::Bilinear::new(ab.width, p.width as usize),
        crate::color::Bilinear::new(ab.height, p.height as usize),
        crate::color::LabToRgb8::new(),
    );
    let plane = p.l.plane(p.width as usize);
    let mut outside = 0usize;
    for y in 0..p.height as usize {
        for x in 0..p.width as usize {
            let (a, b) = (bilinear_at(&ab.a, ab.width, &rows, &cols, x, y), bilinear_at(&ab.b, ab.width, &rows, &cols, x, y));
            let lin = conv.to_linear_fast(plane[y * p.width as usize + x], a, b);
            outside += !crate::color::LabToRgb8::inside(&lin) as usize;
        }
    }
    println!("{:.1}% of the pixels outside the gamut", outside as f64 * 100.0 / plane.len() as f64);
    // The join again with ab halved and with ab zero (fewer and no colours outside the gamut).
    for scale in [1.0f32, 0.5, 0.0] {
        let mut ab = ab.clone();
        ab.a.iter_mut().chain(ab.b.iter_mut()).for_each(|v| *v *= scale);
        let mut v: Vec<f64> = (0..n)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(output::join(&p, &ab, opts.format));
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        println!("join with ab x {scale}: {:.3} ms", median(&mut v));
    }
    let [prep, ann, join, png, all] = times.map(|mut v| median(&mut v));
    println!("median ms per photo: prepare {prep:.3}, annealed mean {ann:.3}, join {join:.3}, png {png:.3} ({bytes} bytes); all {all:.3}");
}
